package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/internal/wait"
)

// crashCase is one step of a capture at which the daemon dies (SIGKILL, as on a power cut),
// and what secupay and the paper must show before and after the restart.
type crashCase struct {
	point string
	// At the crash: start/cash calls secupay saw, and what the printer file holds.
	startsAtCrash int
	// mayAnswer: the point is in a background step, which the POS's answer may beat.
	mayAnswer    bool
	paperAtCrash string // "none", "half", "whole", or "any" where the spool worker races the kill
	// After the restart and the POS asking again: whole copies of the receipt on paper.
	minCopies, maxCopies int
	halfCopies           int // torn jobs left by a crash in mid-write
	// The journal held only the intent: the restart must read the transaction (GET) before
	// anything else, never decide blind (docs/durability.md, rule 2). Otherwise it must not:
	// the journal holds secupay's answer, and reading it back would mean the answer was lost.
	readsBack bool
}

var crashMatrix = []crashCase{
	// The intent is journaled but start/cash never left: resume reads the transaction, sees it
	// "created", and the POS asking again sends the one and only start/cash.
	{point: "before-start", startsAtCrash: 0, paperAtCrash: "none", minCopies: 1, maxCopies: 1, readsBack: true},
	// secupay captured, the journal still says "intent": resolved by GET, never a second start.
	{point: "after-answer", startsAtCrash: 1, paperAtCrash: "none", minCopies: 1, maxCopies: 1, readsBack: true},
	{point: "after-journal", startsAtCrash: 1, paperAtCrash: "none", minCopies: 1, maxCopies: 1},
	// The job is durable and the worker was woken: it may print (whole) before the kill lands.
	// If it did but had not marked the job done, the restart prints it again: at most twice.
	{point: "after-spool", startsAtCrash: 1, paperAtCrash: "any", minCopies: 1, maxCopies: 2},
	{point: "before-print", startsAtCrash: 1, paperAtCrash: "none", minCopies: 1, maxCopies: 1},
	// Half the job is on paper: the restart prints the whole job again (docs/durability.md, rule 3).
	{point: "mid-print", startsAtCrash: 1, paperAtCrash: "half", minCopies: 1, maxCopies: 1, halfCopies: 1},
	// The printer took the last byte but the spool had not recorded it: printed twice, the
	// documented rare duplicate, never zero times.
	{point: "after-print", startsAtCrash: 1, paperAtCrash: "whole", minCopies: 2, maxCopies: 2},
	// The state database's commits (package store), at the intent (#1) and at the commit
	// holding secupay's answer with the receipt (#2): before SQLite's COMMIT (the transaction
	// is rolled back when the process dies) and after it returned. The power cuts of make
	// test-power-cuts drop what was not flushed.
	{point: "store-commit#1", startsAtCrash: 0, paperAtCrash: "none", minCopies: 1, maxCopies: 1},
	{point: "store-committed#1", startsAtCrash: 0, paperAtCrash: "none", minCopies: 1, maxCopies: 1, readsBack: true},
	{point: "store-commit#2", startsAtCrash: 1, paperAtCrash: "none", minCopies: 1, maxCopies: 1, readsBack: true},
	{point: "store-committed#2", startsAtCrash: 1, paperAtCrash: "none", minCopies: 1, maxCopies: 1},
}

// crashID is the transaction a crash case captures. The fake creates it on demand (AutoCreate)
// with a receipt that prints the id, so every job on paper can be traced to its transaction.
func crashID(point string) string {
	return "STX_CRASH" + strings.ToUpper(strings.NewReplacer("-", "", "#", "N").Replace(point))
}

// TestCrashMatrix kills the real daemon at every crash point of a capture, restarts it without
// the crash point, and checks the durability rules of docs/durability.md from the outside: secupay captured
// exactly once and never saw a blind second start/cash, the POS asking again hears "ok", and
// the receipt is on paper whole at least once and at most twice — and a further restart adds
// nothing.
func TestCrashMatrix(t *testing.T) {
	for _, c := range crashMatrix {
		t.Run(c.point, func(t *testing.T) {
			t.Parallel()
			testCrashPoint(t, c)
		})
	}
}

func testCrashPoint(t *testing.T, c crashCase) {
	e := newDaemonEnv(t)
	e.extraEnv = []string{"ECRD_IN_DOUBT_WAIT=500ms"}
	id := crashID(c.point)
	jobID := id + ".receipt"

	// First life: dies at the crash point while the POS waits for its answer.
	p := e.start("ECRD_CRASHPOINT=" + c.point)
	if status, body, err := e.request("POST", "/v1/transactions/"+id+"/cash"); err == nil && !c.mayAnswer {
		t.Fatalf("the daemon answered %d %s although it should have died at %s", status, body, c.point)
	}
	p.wait(t)
	if !killedBySIGKILL(p) {
		t.Fatalf("daemon ended with %v, not by its crash point's SIGKILL\n%s", p.err, p.logs)
	}
	if n := e.fake.Calls().StartCash[id]; n != c.startsAtCrash {
		t.Fatalf("at the crash secupay saw %d start/cash calls, want %d", n, c.startsAtCrash)
	}
	if n := e.fake.Calls().Captures[id]; n != c.startsAtCrash {
		t.Fatalf("at the crash secupay captured %d times, want %d", n, c.startsAtCrash)
	}
	whole, half := countJobs(t, e.receipts(), id)
	switch c.paperAtCrash {
	case "none":
		if whole+half != 0 {
			t.Fatalf("at the crash the paper holds %d whole and %d torn jobs, want none", whole, half)
		}
	case "half":
		if whole != 0 || half != 1 {
			t.Fatalf("at the crash the paper holds %d whole and %d torn jobs, want one torn", whole, half)
		}
	case "whole":
		if whole != 1 || half != 0 {
			t.Fatalf("at the crash the paper holds %d whole and %d torn jobs, want one whole", whole, half)
		}
	case "any":
		if whole > 1 || half != 0 {
			t.Fatalf("at the crash the paper holds %d whole and %d torn jobs", whole, half)
		}
	}

	// Second life, no crash point: the POS asks again, as it does after a dropped connection.
	// A capture left in "intent" is in doubt (start/cash may have left): the POS hears so
	// until a read-back after the in-doubt wait settles it, then it is captured once.
	p = e.start()
	c2 := socketClient(e.socket, 30*time.Second)
	status, out := postCapture(t, c2, id)
	if status == 504 && c.readsBack {
		// The POS asks again every 100 ms until the in-doubt wait (500 ms here) has passed; a
		// status still 504 after that fails below.
		wait.TryEvery(wait.Long, 100*time.Millisecond, func() error {
			if info, _ := out["error"].(map[string]any); info["outcome"] != "in_doubt" {
				t.Fatalf("504 without outcome in_doubt: %v", out)
			}
			if status, out = postCapture(t, c2, id); status == 504 {
				return fmt.Errorf("504 %v", out)
			}
			return nil
		})
	}
	if status != 200 || out["status"] != "ok" || out["transaction_id"] != id {
		t.Fatalf("asked again after the restart: %d %v", status, out)
	}
	if got := fmt.Sprint(jobOf(out)["id"]); got != jobID {
		t.Fatalf("answer names job %q, want %q", got, jobID)
	}
	waitJobPrinted(t, c2, jobID)
	waitQueueEmpty(t, c2)
	if n := e.fake.Calls().StartCash[id]; n != 1 {
		t.Fatalf("secupay saw %d start/cash calls in all, want 1", n)
	}
	if n := e.fake.Calls().Captures[id]; n != 1 {
		t.Fatalf("secupay captured %d times, want 1", n)
	}
	switch gets := e.fake.Calls().Get[id]; {
	case c.readsBack && gets == 0:
		t.Fatal("the capture left in \"intent\" was resolved without reading the transaction")
	case !c.readsBack && gets > 0:
		t.Fatalf("the transaction was read back %d times although its answer was journaled", gets)
	}
	if n := e.fake.Calls().TotalStartCash; n != 1 {
		t.Fatalf("secupay saw %d start/cash calls for any transaction, want 1", n)
	}
	paper := readPrinterFile(t, e)
	whole, half = countJobs(t, splitJobs(paper), id)
	if whole < c.minCopies || whole > c.maxCopies || half != c.halfCopies {
		t.Fatalf("after the restart the paper holds %d whole and %d torn receipts, want %d..%d whole and %d torn",
			whole, half, c.minCopies, c.maxCopies, c.halfCopies)
	}
	t.Logf("%s: %d start/cash, paper holds %d whole and %d torn receipts", c.point, e.fake.Calls().StartCash[id], whole, half)
	if whole+half > 2 {
		t.Fatalf("%d jobs on paper for one payment", whole+half)
	}
	if jobs := splitJobs(paper); !wholeReceipt(jobs[len(jobs)-1]) {
		t.Fatal("the last job on paper is torn: a whole copy must follow a torn one")
	}

	// Third life: everything was finished; nothing prints, nothing reaches secupay's start.
	p.kill(t)
	e.start()
	c3 := socketClient(e.socket, 30*time.Second)
	if q := queued(t, c3); q != 0 {
		t.Fatalf("%d jobs queued after a restart with nothing left to do", q)
	}
	status, out = postCapture(t, c3, id)
	if status != 200 || out["status"] != "ok" || out["replayed"] != true || jobOf(out)["state"] != "printed" {
		t.Fatalf("asked again after the second restart: %d %v", status, out)
	}
	if n := e.fake.Calls().StartCash[id]; n != 1 {
		t.Fatalf("after the second restart secupay saw %d start/cash calls, want 1", n)
	}
	if again := readPrinterFile(t, e); !bytes.Equal(again, paper) {
		t.Fatalf("the second restart printed %d more bytes", len(again)-len(paper))
	}
}

// killedBySIGKILL reports whether the process died of SIGKILL (its crash point), not of a
// panic or an exit.
func killedBySIGKILL(p *proc) bool {
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// countJobs counts whole and torn jobs on paper and fails if any job is not id's receipt.
func countJobs(t *testing.T, jobs [][]byte, id string) (whole, torn int) {
	t.Helper()
	for i, j := range jobs {
		if wholeReceipt(j) {
			if !bytes.Contains(j, []byte(id)) {
				t.Fatalf("job %d on paper is not the receipt of %s: %q", i, id, j)
			}
			whole++
			continue
		}
		if !bytes.HasPrefix(j, jobStart) {
			t.Fatalf("job %d on paper does not start with ESC @ ESC R 0: %q", i, j)
		}
		torn++
	}
	return whole, torn
}

func readPrinterFile(t *testing.T, e *daemonEnv) []byte {
	t.Helper()
	b, err := os.ReadFile(e.printerFile)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return b
}

// getJSON asks the daemon over c and decodes the JSON answer.
func getJSON(t testing.TB, c *http.Client, method, path string) (int, map[string]any) {
	t.Helper()
	status, body, err := call(c, method, path)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("%s %s: answer %q: %v", method, path, body, err)
	}
	return status, out
}

func postCapture(t testing.TB, c *http.Client, id string) (int, map[string]any) {
	t.Helper()
	return getJSON(t, c, "POST", "/v1/transactions/"+id+"/cash")
}

func waitJobPrinted(t testing.TB, c *http.Client, jobID string) {
	t.Helper()
	var last map[string]any
	wait.Until(t, wait.Long, "job "+jobID+" to print", func() bool {
		_, last = getJSON(t, c, "GET", "/v1/jobs/"+jobID)
		return last["state"] == "printed"
	})
}

func queued(t testing.TB, c *http.Client) int {
	t.Helper()
	status, out := getJSON(t, c, "GET", "/healthz")
	n, ok := out["queued"].(float64)
	if status != 200 || !ok {
		t.Fatalf("healthz: %d %v", status, out)
	}
	return int(n)
}

func waitQueueEmpty(t testing.TB, c *http.Client) {
	t.Helper()
	wait.Until(t, wait.Long, "the spool to drain", func() bool { return queued(t, c) == 0 })
}
