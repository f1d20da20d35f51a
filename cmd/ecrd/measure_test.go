//go:build measure

package main

// Measurements of the storage on a slow disk and a long history (issue: "fast on a cheap SD
// card"). `make measure-storage` runs them; they report figures and assert nothing about
// time: the machine decides those.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/internal/wait"
	"github.com/ecrd-pos/ecrd/printer/printertest"
	"github.com/ecrd-pos/ecrd/secupay/secupaytest"
)

// TestMeasureCaptureOnSlowFlushes runs the daemon under strace with every flush delayed
// 10 ms (an SD card's fsync) and compares, one by one and interleaved, a capture through
// ecrd with a bare start/cash to the same fake: what ecrd adds for its own bookkeeping. Twice:
// on the file printer of the tests, whose own fsync per job (its "paper") is delayed too,
// and on a network printer (the ESC/POS simulator on loopback), as a till's printer is.
func TestMeasureCaptureOnSlowFlushes(t *testing.T) {
	for _, printer := range []string{"file", "tcp"} {
		t.Run(printer, func(t *testing.T) {
			e := newDaemonEnv(t)
			if printer == "tcp" {
				e.extraEnv = []string{"ECRD_PRINTER=" + printertest.NewTCP(t).URI("")}
			}
			e.wrap = []string{"strace", "-f", "-qq", "-o", "/dev/null", "--seccomp-bpf",
				"-e", "trace=fsync,fdatasync,syncfs", "-e", "inject=fsync,fdatasync,syncfs:delay_exit=10000"}
			e.start()
			measureCaptures(t, e, printer)
		})
	}
}

func measureCaptures(t *testing.T, e *daemonEnv, printer string) {
	c := e.client()
	direct := &http.Client{Timeout: 10 * time.Second}
	const n = 200
	var through, bare []time.Duration
	for i := range n {
		id := fmt.Sprintf("STX_MEASURE%05d", i)
		start := time.Now()
		status, out := postCapture(t, c, id)
		through = append(through, time.Since(start))
		if status != 200 || jobOf(out)["state"] != "printed" {
			t.Fatalf("capture %s: %d %v", id, status, out)
		}
		// The same call without ecrd: start/cash on a fresh transaction.
		bid := fmt.Sprintf("STX_MEASUREBARE%05d", i)
		req, _ := http.NewRequest("POST", e.fake.URL+"/api/v2/Smart/Transactions/"+bid+"/start/cash", nil)
		req.Header.Set("Authorization", "Bearer "+e.fake.Token())
		start = time.Now()
		resp, err := direct.Do(req)
		bare = append(bare, time.Since(start))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("bare start/cash: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	added := make([]time.Duration, n)
	for i := range added {
		added[i] = through[i] - bare[i]
	}
	t.Logf("%s printer, every flush delayed 10 ms, over %d captures answered printed: through ecrd %s; bare start/cash %s; ecrd adds %s",
		printer, n, spread(through), spread(bare), spread(added))
}

// TestMeasureStartWithLongHistory fills a state directory with 100,000 finished captures and
// their printed receipts, then measures exec → /healthz 200 and the daemon's resident memory
// right after start, started as on a till after boot (the binary's pages evicted from the
// page cache first). The first start also flushes the freshly written history (its
// checkpoint). VmRSS is reported with its parts: the daemon's own anonymous memory, and the
// pages of the binary and libc the kernel has mapped, which vary with the page cache.
func TestMeasureStartWithLongHistory(t *testing.T) {
	e := newDaemonEnv(t)
	const past = 100000
	fillHistory(t, e.state, past)
	var starts []time.Duration
	var rss []int64
	var parts []string
	for range 6 {
		evictBinary(t)
		t0 := time.Now()
		p := e.start()
		starts = append(starts, time.Since(t0))
		// Not an assertion's wait: the memory reported is a daemon's idle for 500 ms, as a till
		// sits; the prune comes 30 s later (TestMeasureIdleAfterPrune).
		time.Sleep(500 * time.Millisecond)
		rss = append(rss, vmRSS(t, p.cmd.Process.Pid))
		parts = append(parts, rssParts(t, p.cmd.Process.Pid))
		p.kill(t)
	}
	slices.Sort(rss)
	t.Logf("%d past captures: exec → /healthz 200 %s; VmRSS idle after start %.1f–%.1f MiB (%s)",
		past, spread(starts), float64(rss[0])/(1<<20), float64(rss[len(rss)-1])/(1<<20), strings.Join(parts, "; "))
}

// fillHistory writes n finished captures (journal/finished) and printed jobs (spool/done) as
// the daemon leaves them, with secupay's seed answer.
func fillHistory(t *testing.T, state string, n int) {
	t.Helper()
	fin := filepath.Join(state, "journal", "finished")
	done := filepath.Join(state, "spool", "done")
	for _, d := range []string{fin, done} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	answer := secupaytest.SeedAnswer()
	now := time.Now().UTC()
	for i := range n {
		id := fmt.Sprintf("STX_HISTORY%08d", i)
		rec, _ := json.Marshal(map[string]any{"transaction_id": id, "phase": "captured", "attempts": 1,
			"created": now, "updated": now, "sent": now, "answer": json.RawMessage(answer), "trans_id": strconv.Itoa(i),
			"spooled": true})
		if err := os.WriteFile(filepath.Join(fin, id+".json"), rec, 0o640); err != nil {
			t.Fatal(err)
		}
		job, _ := json.Marshal(map[string]any{"id": id + ".receipt", "transaction_id": id, "kind": "receipt",
			"seq": i + 1, "created": now, "printed": now})
		if err := os.WriteFile(filepath.Join(done, id+".receipt.json"), job, 0o640); err != nil {
			t.Fatal(err)
		}
	}
}

func vmRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// spread is "min / median / max".
func spread(d []time.Duration) string {
	s := slices.Clone(d)
	slices.Sort(s)
	r := func(x time.Duration) string { return x.Round(100 * time.Microsecond).String() }
	return fmt.Sprintf("min %s / median %s / max %s", r(s[0]), r(s[len(s)/2]), r(s[len(s)-1]))
}

// TestMeasureIdleAfterRestart measures what a till's daemon holds right after an ordinary
// restart: 2,000 captures through the daemon (so that its write-ahead log is as full as the
// checkpoint lets it grow, and the spool remembers its last printed jobs), a clean stop, then
// starts as after a boot, each followed by the idle wait of TestMeasureStartWithLongHistory.
// (That test's history is written straight to the files, with no log to replay.)
func TestMeasureIdleAfterRestart(t *testing.T) {
	e := newDaemonEnv(t)
	p := e.start()
	c, _ := loadClient(e.socket, 1)
	for i := range 2000 {
		if status, ans, err := captureOnce(c, loadID(i)); err != nil || status != 200 || ans.Status != "ok" {
			t.Fatalf("capture %d: %d %+v %v", i, status, ans, err)
		}
	}
	waitQueueEmpty(t, c)
	var parts []string
	var rss []int64
	for range 4 {
		p.cmd.Process.Signal(syscall.SIGTERM)
		p.wait(t)
		evictBinary(t)
		p = e.start()
		time.Sleep(500 * time.Millisecond) // idle, as in TestMeasureStartWithLongHistory (not an assertion's wait)
		rss = append(rss, vmRSS(t, p.cmd.Process.Pid))
		parts = append(parts, rssParts(t, p.cmd.Process.Pid))
	}
	slices.Sort(rss)
	t.Logf("after 2,000 captures and a clean stop: VmRSS idle after start %.1f–%.1f MiB (%s)",
		float64(rss[0])/(1<<20), float64(rss[len(rss)-1])/(1<<20), strings.Join(parts, "; "))
}

// TestMeasureIdleAfterPrune measures the daemon idle once the background prune a while after
// start has gone through a 100,000-capture history (the spool keeps the newest 10,000 printed
// jobs): a burst of work whose garbage an idle daemon, running no collection, would keep.
func TestMeasureIdleAfterPrune(t *testing.T) {
	e := newDaemonEnv(t)
	fillHistory(t, e.state, 100000)
	evictBinary(t)
	p := e.start()
	time.Sleep(500 * time.Millisecond) // idle, as in TestMeasureStartWithLongHistory (not an assertion's wait)
	before := rssParts(t, p.cmd.Process.Pid)
	rssBefore := vmRSS(t, p.cmd.Process.Pid)
	done := filepath.Join(e.state, "spool", "done")
	err := wait.TryEvery(3*time.Minute, time.Second, func() error {
		ents, err := os.ReadDir(done)
		if err != nil {
			t.Fatal(err)
		}
		// The newest 10,000 by modification time are kept, and with them any that share the
		// cut's (coarse) time; the prune removes in batches of 512, so the first count this
		// close is its last.
		if len(ents) > 10100 {
			return fmt.Errorf("%d printed jobs kept", len(ents))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("3 minutes after start: %v: the prune did not run", err)
	}
	// Not an assertion's wait: what is reported is the memory 2 s after the prune's last batch
	// began (the daemon says nothing when it has handed its memory back).
	time.Sleep(2 * time.Second)
	t.Logf("100000 past captures: VmRSS idle %.1f MiB after start (%s), %.1f MiB after the prune (%s)",
		float64(rssBefore)/(1<<20), before, float64(vmRSS(t, p.cmd.Process.Pid))/(1<<20), rssParts(t, p.cmd.Process.Pid))
}

// TestMeasureIdleAfterPruneOfATillsHistory is TestMeasureIdleAfterPrune on the history a till
// that has run for months leaves at a restart: 100,000 finished captures of which the oldest
// 1,000 are past --journal-keep (90 days), and 11,000 printed jobs of which the oldest 1,000
// are beyond the 10,000 the spool keeps. The prune 30 s after the start removes those 2,000,
// as every later prune does.
func TestMeasureIdleAfterPruneOfATillsHistory(t *testing.T) {
	e := newDaemonEnv(t)
	fillHistory(t, e.state, 100000)
	done := filepath.Join(e.state, "spool", "done")
	fin := filepath.Join(e.state, "journal", "finished")
	age := func(path string, d time.Duration) {
		if err := os.Chtimes(path, time.Now().Add(-d), time.Now().Add(-d)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 90000 {
		name := fmt.Sprintf("STX_HISTORY%08d", i)
		switch {
		case i < 89000:
			if err := os.Remove(filepath.Join(done, name+".receipt.json")); err != nil {
				t.Fatal(err)
			}
		default:
			age(filepath.Join(done, name+".receipt.json"), 24*time.Hour)
		}
		if i < 1000 {
			age(filepath.Join(fin, name+".json"), 91*24*time.Hour)
		}
	}
	evictBinary(t)
	p := e.start()
	time.Sleep(500 * time.Millisecond) // idle, as in TestMeasureStartWithLongHistory (not an assertion's wait)
	before := rssParts(t, p.cmd.Process.Pid)
	rssBefore := vmRSS(t, p.cmd.Process.Pid)
	err := wait.TryEvery(3*time.Minute, time.Second, func() error {
		ents, err := os.ReadDir(done)
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) != 10000 || !strings.Contains(p.logs.String(), `"records":1000`) {
			return fmt.Errorf("%d printed jobs kept, want 10000", len(ents))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("3 minutes after start: %v; the log:\n%s", err, p.logs)
	}
	// Not an assertion's wait: what is reported is the memory 2 s after the prunes (the daemon
	// says nothing when it has handed its memory back).
	time.Sleep(2 * time.Second)
	t.Logf("a till's history: VmRSS idle %.1f MiB after start (%s), %.1f MiB after the prune of 1,000 captures and 1,000 printed jobs (%s)",
		float64(rssBefore)/(1<<20), before, float64(vmRSS(t, p.cmd.Process.Pid))/(1<<20), rssParts(t, p.cmd.Process.Pid))
}
