package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/internal/wait"
	"github.com/ecrd-pos/ecrd/receipt"
)

// The review's defect, against the real daemon: secupay is slow, the daemon is killed while
// its start/cash is in flight, and the POS asks again right after the restart. secupay goes
// on and captures. The daemon must not send a second start/cash, must never answer
// "refused", and must print the receipt once secupay is done.
func TestDaemonKilledWhileSecupayIsSlow(t *testing.T) {
	e := newDaemonEnv(t)
	const id = "STX_SLOWSECUPAYKILLED"
	e.fake.SetProcessingTime(func(string) time.Duration { return 1500 * time.Millisecond })
	p := e.start()
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.request("POST", "/v1/transactions/"+id+"/cash") // killed under it
	}()
	wait.Until(t, wait.Long, "start/cash to reach secupay", func() bool { return e.fake.Calls().StartCash[id] == 1 })
	p.kill(t)
	<-done

	e.start()
	for range 3 {
		status, out := e.capture(id)
		info, _ := out["error"].(map[string]any)
		if status == 200 {
			break // secupay finished already: read back captured
		}
		if status != 504 || info["outcome"] != "in_doubt" {
			t.Fatalf("asked again while secupay still works: %d %v, want 504 in_doubt", status, out)
		}
	}
	wait.Until(t, wait.Long, "secupay to finish", func() bool { return e.fake.Calls().Captures[id] == 1 })
	status, out := e.capture(id)
	if status != 200 || out["outcome"] != "captured" || out["status"] != "ok" {
		t.Fatalf("after secupay finished: %d %v", status, out)
	}
	if n := e.fake.Calls().StartCash[id]; n != 1 {
		t.Fatalf("%d start/cash calls for one payment", n)
	}
	waitJobPrinted(t, e.client(), id+".receipt")
	if whole, _ := countJobs(t, e.receipts(), id); whole != 1 {
		t.Fatalf("%d whole receipts", whole)
	}
}

// The drawer opens at most once per capture, whichever step a crash hits. The pulse belongs
// to the daemon's life that queued the receipt (docs/durability.md, "The drawer rule"): a
// receipt printed again after a crash opens nothing, and a crash while the receipt waits for
// paper leaves the drawer shut; a clean stop hands the pulse to the next start.
func TestDaemonDrawerOpensAtMostOnce(t *testing.T) {
	kick := receipt.DrawerKick(0)
	for i, c := range []struct {
		name              string
		point             string // crash point; "" with paperOut: a clean stop (SIGTERM)
		paperOut          bool   // the receipt waits for paper when the daemon ends
		copies, wantKicks int
	}{
		{"crash after printing", "after-print", false, 2, 0},   // printed again, by a life that does not own the pulse
		{"crash before the pulse", "before-kick", false, 1, 0}, // recorded printed; the pulse died with its life
		{"crash while queued", "", true, 1, 0},                 // SIGKILL with the paper out
		{"clean stop while queued", "", true, 1, 1},            // SIGTERM with the paper out: handed over
		{"no crash", "", false, 1, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newDaemonEnv(t)
			e.extraEnv = []string{"ECRD_DRAWER_KICK=0"}
			id := fmt.Sprintf("STX_DRAWER%03d", i)
			if c.paperOut {
				os.WriteFile(e.printerFile+".status", []byte("paper_out\n"), 0o644)
			}
			p := e.start("ECRD_CRASHPOINT=" + c.point)
			status, body, err := e.request("POST", "/v1/transactions/"+id+"/cash")
			switch {
			case c.point != "":
				p.wait(t)
			case c.paperOut && c.wantKicks == 0:
				if err != nil || status != 200 {
					t.Fatalf("capture: %d %s %v", status, body, err)
				}
				p.kill(t)
			case c.paperOut:
				if err != nil || status != 200 {
					t.Fatalf("capture: %d %s %v", status, body, err)
				}
				p.cmd.Process.Signal(syscall.SIGTERM)
				p.wait(t)
			}
			if c.point != "" || c.paperOut {
				os.WriteFile(e.printerFile+".status", []byte("online\n"), 0o644)
				e.start()
				if status, out := e.capture(id); status != 200 {
					t.Fatalf("after restart: %d %v", status, out)
				}
			}
			waitJobPrinted(t, e.client(), id+".receipt")
			waitQueueEmpty(t, e.client())
			b, err := os.ReadFile(e.printerFile)
			if err != nil {
				t.Fatal(err)
			}
			if n := bytes.Count(b, kick); n != c.wantKicks {
				t.Fatalf("drawer opened %d times, want %d", n, c.wantKicks)
			}
			whole, _ := countJobs(t, splitJobs(bytes.ReplaceAll(b, kick, nil)), id)
			if whole != c.copies {
				t.Fatalf("%d whole receipts, want %d", whole, c.copies)
			}
			// A reprint never opens the drawer.
			if status, body, err := e.request("POST", "/v1/transactions/"+id+"/reprint"); err != nil || status != 200 {
				var out map[string]any
				json.Unmarshal(body, &out)
				t.Fatalf("reprint: %d %v %v", status, out, err)
			}
			waitQueueEmpty(t, e.client())
			b, _ = os.ReadFile(e.printerFile)
			if n := bytes.Count(b, kick); n != c.wantKicks {
				t.Fatalf("after a reprint the drawer opened %d times, want %d", n, c.wantKicks)
			}
		})
	}
}

// A flush that fails (EIO from fsync of SQLite's log, injected by strace into the first one
// after the start: the intent's) sends nothing: the POS hears 500 storage, not captured, and
// the daemon stops — after a failed fsync the kernel may have dropped what it could not write,
// so nothing more is written in that life (store.ErrDiskFailed). SQLite may have left the
// intent's frames in its log, so the next start may find it after all: then it is in doubt
// and read back, never sent twice. Asking again captures once.
func TestDaemonFlushEIOSendsNothing(t *testing.T) {
	e := newDaemonEnv(t)
	e.extraEnv = []string{"ECRD_IN_DOUBT_WAIT=300ms"}
	const id = "STX_EIOFLUSH"
	p := e.start() // makes the database, whose schema's commit is a flush of its own
	p.kill(t)
	e.wrap = []string{"strace", "-f", "-qq", "-o", "/dev/null", "-P", e.state + "/ecrd.db-wal",
		"-e", "trace=fsync,fdatasync", "-e", "inject=fsync,fdatasync:error=EIO:when=1"}
	p = e.start()
	status, out := e.capture(id)
	info, _ := out["error"].(map[string]any)
	if status != 500 || info["code"] != "storage" || info["outcome"] != "not_captured" {
		t.Fatalf("capture with the intent's flush failing: %d %v; want 500 storage, not_captured", status, out)
	}
	if n := e.fake.Calls().StartCash[id]; n != 0 {
		t.Fatalf("%d start/cash calls without a flushed intent", n)
	}
	logs := exitsOnItsOwn(t, p, 30*time.Second)
	if !strings.Contains(logs, "disk I/O error") || !strings.Contains(logs, "next start recovers") {
		t.Fatalf("the daemon did not stop on the failed flush, naming it:\n%s", logs)
	}
	e.wrap = nil
	e.start()
	// The POS asks until it hears "captured"; "not captured" must mean nothing was sent.
	for try := 0; ; try++ {
		before := e.fake.Calls().StartCash[id]
		status, out := e.capture(id)
		if status == 200 && out["status"] == "ok" {
			break
		}
		info, _ := out["error"].(map[string]any)
		if try == 50 || status != 500 && status != 504 {
			t.Fatalf("asked again (%d): %d %v", try, status, out)
		}
		if n := e.fake.Calls().StartCash[id]; info["outcome"] == "not_captured" && n != before || n > 1 {
			t.Fatalf("%d start/cash calls after %d %v", n, status, out)
		}
		time.Sleep(100 * time.Millisecond) // the POS's pace between tries, not an assertion's wait
	}
	waitJobPrinted(t, e.client(), id+".receipt")
	if n := e.fake.Calls().StartCash[id]; n != 1 {
		t.Fatalf("%d start/cash calls, want 1", n)
	}
	if whole, _ := countJobs(t, e.receipts(), id); whole != 1 {
		t.Fatalf("%d whole receipts", whole)
	}
}
