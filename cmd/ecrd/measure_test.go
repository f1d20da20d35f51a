//go:build measure

package main

// Measurements of the storage on a slow disk and a long history (issue: "fast on a cheap SD
// card"). `make measure-storage` runs them; they report figures and assert nothing about
// time: the machine decides those. Memory is checked against the goal of docs/performance.md
// (32 MiB), which is the daemon's, not the machine's.
//
// The history is written as the daemon leaves it, into the state database (fillHistory); the
// daemon is then started on it as on a till after a boot: its binary and the database evicted
// from the page cache.

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ecrd-pos/ecrd/internal/steady"
	"github.com/ecrd-pos/ecrd/internal/wait"
	"github.com/ecrd-pos/ecrd/printer/printertest"
	"github.com/ecrd-pos/ecrd/secupay/secupaytest"
	"github.com/ecrd-pos/ecrd/store"
)

// rssGoal is the goal for VmRSS after 10,000 captures, and idle after a start and after a
// prune on a long history (docs/performance.md).
const rssGoal = 32 << 20

// TestMeasureCaptureOnSlowFlushes runs the daemon under strace with every flush delayed
// 10 ms (an SD card's fsync: SQLite's of its log and of ecrd.db, which modernc.org/sqlite
// makes with fsync; TestFlushesPerCapture counts them) and compares, one by one and
// interleaved, a capture through ecrd with a bare start/cash to the same fake: what ecrd adds
// for its own bookkeeping. On the file printer of the tests, whose own fsync per job (its
// "paper") is delayed too, and on a network printer (the ESC/POS simulator on loopback), as a
// till's printer is; then on the network printer without delays.
func TestMeasureCaptureOnSlowFlushes(t *testing.T) {
	for _, c := range []struct {
		name, printer string
		delay         bool
	}{
		{"file", "file", true},
		{"tcp", "tcp", true},
		{"tcp without delays", "tcp", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newDaemonEnv(t)
			if c.printer == "tcp" {
				e.extraEnv = []string{"ECRD_PRINTER=" + printertest.NewTCP(t).URI("")}
			}
			if c.delay {
				// The same calls as TestFlushesPerCapture counts.
				e.wrap = []string{"strace", "-f", "-qq", "-o", "/dev/null", "--seccomp-bpf",
					"-e", "trace=" + flushCalls, "-e", "inject=" + flushCalls + ":delay_exit=10000"}
			}
			e.start()
			measureCaptures(t, e, c.name)
		})
	}
}

func measureCaptures(t *testing.T, e *daemonEnv, name string) {
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
	t.Logf("%s, over %d captures answered printed: through ecrd %s; bare start/cash %s; ecrd adds %s (%s)",
		name, n, spread(through), spread(bare), spread(added), tail(added))
}

// tail is the slow end of d: its 90th and 99th percentiles, and how many exceed the median by
// 25 ms or more — with every flush delayed 10 ms, a capture that waited for three flushes
// more (a checkpoint in front of it) does; on a loaded machine, so does one the scheduler
// held back.
func tail(d []time.Duration) string {
	s := slices.Clone(d)
	slices.Sort(s)
	r := func(x time.Duration) string { return x.Round(100 * time.Microsecond).String() }
	med, slow := s[len(s)/2], 0
	for _, x := range s {
		if x >= med+25*time.Millisecond {
			slow++
		}
	}
	return fmt.Sprintf("p90 %s, p99 %s; %d at least 25 ms over the median", r(s[len(s)*9/10]), r(s[len(s)*99/100]), slow)
}

// history is a till's past, as fillHistory writes it.
type history struct {
	captures int // finished captures: captured, spooled, with secupay's seed answer
	jobs     int // printed receipts: those of the newest captures
	// age is how long before the daemon's start capture i (0 the oldest) last changed and
	// its receipt printed; nil: one a minute, the newest a minute ago.
	age func(i int) time.Duration
}

// tillRunning is how long the history's till has run, on its steady clock.
const tillRunning = 365 * 24 * time.Hour

// fillHistory writes h into the state database in state as the daemon leaves it: finished
// captures, each captured and spooled with secupay's seed answer (5 kB, its id made the
// capture's), and the printed rows of their receipt jobs (added, then marked printed, which
// drops their bytes). It writes the journal's steady clock mark too, of a till that has run
// for a year: the daemon's clock goes on from it, and each row is stamped on that clock with
// its age, as a running daemon stamps them, so that a prune judges them as it would on a
// till. Then it closes the database, which checkpoints it: the daemon starts on ecrd.db
// alone.
func fillHistory(t *testing.T, state string, h history) {
	t.Helper()
	if h.age == nil {
		h.age = func(i int) time.Duration { return time.Duration(h.captures-i) * time.Minute }
	}
	st, err := store.Open(state)
	if err != nil {
		t.Fatal(err)
	}
	// A clock of another boot that read tillRunning at its last mark: the daemon's reads
	// tillRunning plus this boot's uptime (steady.New), which is what the rows are stamped on.
	clock := steady.New(steady.NewManual(time.Now(), tillRunning), nil)
	mark, epoch := clock.Mark(), clock.Epoch()
	now, wallNow := steady.Instant(tillRunning+steady.System().Uptime()), time.Now().UTC()
	seed := secupaytest.SeedAnswer()
	receipt := append(bytes.Clone(jobStart), bytes.Repeat([]byte("a line of a receipt\n"), 10)...)
	const batch = 5000 // rows a commit: ecrd.db-wal stays small
	for from := 0; from < h.captures || from == 0; from += batch {
		err := st.Unflushed(func(tx *store.Tx) error {
			if err := tx.PutMeta("steady_clock", mark); err != nil { // capture's clockKey
				return err
			}
			for i := from; i < min(from+batch, h.captures); i++ {
				id := fmt.Sprintf("STX_HISTORY%08d", i)
				age := h.age(i)
				at, steadyAt := wallNow.Add(-age), now.Add(-age)
				c := &store.Capture{ID: id, Phase: "captured", Attempts: 1,
					Created: at.Add(-time.Second), Updated: at, Sent: at.Add(-time.Second),
					SentSteady: int64(steadyAt.Add(-time.Second)), UpdatedSteady: int64(steadyAt), SteadyClock: epoch,
					Answer:  bytes.Replace(seed, []byte(secupaytest.SeedID), []byte(id), 1),
					TransID: strconv.Itoa(30000000 + i), PaymentMethod: "cash", Spooled: true}
				if err := tx.PutCapture(c); err != nil {
					return err
				}
				if i < h.captures-h.jobs {
					continue
				}
				if _, err := tx.AddJob(&store.Job{ID: id + ".receipt", TransactionID: id, Kind: "receipt",
					Data: receipt, Created: at}); err != nil {
					return err
				}
				if err := tx.MarkPrinted(id+".receipt", at, 1); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}

// evictState drops the state database's pages from the page cache, as on a till that has just
// booted (evictBinary does the binary's): written back first, since the kernel drops only
// clean pages.
func evictState(t *testing.T, state string) {
	t.Helper()
	for _, name := range []string{store.File, store.File + "-wal"} {
		f, err := os.OpenFile(filepath.Join(state, name), os.O_RDWR, 0)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
			t.Fatalf("fadvise %s: %v", f.Name(), err)
		}
		f.Close()
	}
}

// startTimed starts the daemon as after a boot and returns it with the time from exec to its
// socket's first answer and to /healthz 200: asked every millisecond, so that the figure is
// not the asking's (start waits 10 ms between questions).
func startTimed(t *testing.T, e *daemonEnv) (p *proc, socket, healthy time.Duration) {
	t.Helper()
	evictBinary(t)
	evictState(t, e.state)
	t0 := time.Now()
	p = e.launch()
	err := wait.TryEvery(20*time.Second, time.Millisecond, func() error {
		status, _, err := e.request("GET", "/healthz")
		if err == nil && socket == 0 {
			socket = time.Since(t0)
		}
		if err == nil && status == 200 {
			healthy = time.Since(t0)
			return nil
		}
		select {
		case <-p.exited:
			t.Fatalf("daemon exited at start: %v\n%s", p.err, p.logs)
		default:
		}
		if err == nil {
			err = fmt.Errorf("/healthz answered %d", status)
		}
		return err
	})
	if err != nil {
		t.Fatalf("daemon did not answer on %s: %v\n%s", e.socket, err, p.logs)
	}
	return p, socket, healthy
}

// idle waits until the daemon has used no CPU for a second (its start's background work done:
// the resume, and the integrity check that reads every page of ecrd.db), at most until 25 s
// after start (the prunes come at 30 s), and returns when that was, after start.
func idle(t *testing.T, pid int, started time.Time) time.Duration {
	t.Helper()
	last, still := cpuTicks(t, pid), 0
	for time.Since(started) < 25*time.Second {
		// Not an assertion's wait: the sampling of the daemon's CPU time.
		time.Sleep(250 * time.Millisecond)
		now := cpuTicks(t, pid)
		if now == last {
			still++
		} else {
			still = 0
		}
		last = now
		if still == 4 {
			return time.Since(started) - time.Second
		}
	}
	return time.Since(started)
}

// cpuTicks is the CPU time the process has used (utime + stime, in clock ticks).
func cpuTicks(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the command's name, which is in parentheses and may hold spaces.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}

// TestMeasureStartWithLongHistory starts the daemon, as on a till after a boot, alternately on
// a state directory with 100,000 past captures and the 10,000 printed receipts the spool keeps,
// and on one with none, six times each: exec → the socket's first answer and → /healthz 200,
// and VmRSS (with its parts: the daemon's own anonymous memory, and the pages of the binary
// and libc the kernel has mapped, which vary with the page cache) at two moments: 500 ms after
// start, as a till sits idle, and once the start's background work is done — the integrity
// check reads every page of ecrd.db — before the prunes at 30 s. VmHWM is the peak.
func TestMeasureStartWithLongHistory(t *testing.T) {
	const past = 100000
	envs := map[string]*daemonEnv{"100,000 past captures": newDaemonEnv(t), "no past captures": newDaemonEnv(t)}
	began := time.Now()
	fillHistory(t, envs["100,000 past captures"].state, history{captures: past, jobs: 10000})
	t.Logf("history of %d captures written in %s", past, time.Since(began).Round(time.Second))
	fillHistory(t, envs["no past captures"].state, history{})
	fi, err := os.Stat(filepath.Join(envs["100,000 past captures"].state, store.File))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ecrd.db: %.0f MB with %d past captures", float64(fi.Size())/1e6, past)
	type figures struct {
		socket, healthy, idleAfter []time.Duration
		rss500, rssIdle, hwm       []int64
		parts                      []string
	}
	got := map[string]*figures{}
	order := []string{"100,000 past captures", "no past captures"}
	for range 6 {
		for _, name := range order {
			e, f := envs[name], got[name]
			if f == nil {
				f = &figures{}
				got[name] = f
			}
			t0 := time.Now()
			p, socket, healthy := startTimed(t, e)
			pid := p.cmd.Process.Pid
			f.socket, f.healthy = append(f.socket, socket), append(f.healthy, healthy)
			// Not an assertion's wait: the memory reported is a daemon's idle for 500 ms.
			time.Sleep(time.Until(t0.Add(500 * time.Millisecond)))
			f.rss500 = append(f.rss500, vmRSS(t, pid))
			f.idleAfter = append(f.idleAfter, idle(t, pid, t0))
			f.rssIdle = append(f.rssIdle, vmRSS(t, pid))
			f.hwm = append(f.hwm, procStatus(t, pid, "VmHWM:"))
			f.parts = append(f.parts, rssParts(t, pid))
			stopCleanly(t, p)
		}
		slices.Reverse(order) // each goes first in turn
	}
	for _, name := range []string{"100,000 past captures", "no past captures"} {
		f := got[name]
		t.Logf("%s: exec → socket answers %s; exec → /healthz 200 %s; VmRSS 500 ms after start %s; idle (no CPU for 1 s) %s after start; VmRSS then %s (%s); VmHWM %s",
			name, spread(f.socket), spread(f.healthy), spreadMiB(f.rss500), spread(f.idleAfter),
			spreadMiB(f.rssIdle), strings.Join(f.parts, "; "), spreadMiB(f.hwm))
		if m := slices.Max(f.rssIdle); m > rssGoal {
			t.Errorf("%s: VmRSS idle after start up to %.1f MiB, goal %d MiB", name, float64(m)/(1<<20), rssGoal>>20)
		}
	}
	long, none := got["100,000 past captures"], got["no past captures"]
	t.Logf("100,000 past captures against none: VmRSS idle after start %+.1f MiB (medians), 500 ms after start %+.1f MiB; exec → /healthz 200 %+.1f ms",
		float64(median(long.rssIdle)-median(none.rssIdle))/(1<<20), float64(median(long.rss500)-median(none.rss500))/(1<<20),
		float64(median(long.healthy)-median(none.healthy))/float64(time.Millisecond))
}

func median[T int64 | time.Duration](v []T) T {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func vmRSS(t *testing.T, pid int) int64 { return procStatus(t, pid, "VmRSS:") }

// procStatus reads a size (kB) of /proc/PID/status, in bytes.
func procStatus(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// spread is "min / median / max".
func spread(d []time.Duration) string {
	s := slices.Clone(d)
	slices.Sort(s)
	r := func(x time.Duration) string { return x.Round(100 * time.Microsecond).String() }
	return fmt.Sprintf("min %s / median %s / max %s", r(s[0]), r(s[len(s)/2]), r(s[len(s)-1]))
}

// spreadMiB is "min / median / max" of sizes, in MiB.
func spreadMiB(v []int64) string {
	s := slices.Clone(v)
	slices.Sort(s)
	m := func(x int64) float64 { return float64(x) / (1 << 20) }
	return fmt.Sprintf("%.1f / %.1f / %.1f MiB", m(s[0]), m(s[len(s)/2]), m(s[len(s)-1]))
}

// leakRunMeasure is the soak's run (leakRunSoak, soak_test.go): 10,000 captures, 9,000
// measured after a warm-up of 1,000.
var leakRunMeasure = leakRun{warmup: 1000, total: 10000, maxRSSGrow: 5 << 20, maxFDGrow: 3}

// TestMeasureRSSAfterCaptures is the soak's leak test (TestSoakSequentialCapturesNoLeak):
// 10,000 captures in a row over one connection, the daemon started as after a boot; VmRSS
// after them against the goal.
func TestMeasureRSSAfterCaptures(t *testing.T) {
	if rss := testSequentialCapturesNoLeak(t, leakRunMeasure); rss > rssGoal {
		t.Errorf("VmRSS %.1f MiB after %d captures, goal %d MiB", float64(rss)/(1<<20), leakRunMeasure.total, rssGoal>>20)
	}
}

// TestMeasureIdleAfterRestart measures what a till's daemon holds right after an ordinary
// restart: 2,000 captures through the daemon (the spool remembers its last printed jobs), a
// clean stop (SQLite checkpoints its log into ecrd.db at the last close), then starts as after
// a boot, each followed by the idle wait of TestMeasureStartWithLongHistory.
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
		stopCleanly(t, p)
		t0 := time.Now()
		p, _, _ = startTimed(t, e)
		idle(t, p.cmd.Process.Pid, t0)
		rss = append(rss, vmRSS(t, p.cmd.Process.Pid))
		parts = append(parts, rssParts(t, p.cmd.Process.Pid))
	}
	t.Logf("after 2,000 captures and a clean stop: VmRSS idle after start %s (%s)", spreadMiB(rss), strings.Join(parts, "; "))
}

// TestMeasureIdleAfterPrune measures the daemon idle once the background prune a while after
// start has gone through a 100,000-capture history with all its printed receipts: the spool
// keeps the newest 10,000 and forgets 90,000 at once (as after an upgrade from a version that
// kept them all), a burst of work whose garbage an idle daemon, running no collection, would
// keep.
func TestMeasureIdleAfterPrune(t *testing.T) {
	e := newDaemonEnv(t)
	fillHistory(t, e.state, history{captures: 100000, jobs: 100000})
	measurePrune(t, e, "100,000 past captures and printed receipts", 0, 90000)
}

// TestMeasureIdleAfterPruneOfATillsHistory is TestMeasureIdleAfterPrune on the history a till
// that has run for months leaves at a restart: 100,000 finished captures of which the oldest
// 1,000 are past --journal-keep (90 days), and 11,000 printed receipts of which the oldest
// 1,000 are beyond the 10,000 the spool keeps. The prunes 30 s after the start take those
// 2,000, as every later prune does; then the store gives the freed pages back (Shrink).
func TestMeasureIdleAfterPruneOfATillsHistory(t *testing.T) {
	e := newDaemonEnv(t)
	fillHistory(t, e.state, history{captures: 100000, jobs: 11000, age: func(i int) time.Duration {
		if i < 1000 {
			return 91 * 24 * time.Hour
		}
		// The rest over the 89 days since: the newest a minute ago.
		return time.Minute + time.Duration(99999-i)*(89*24*time.Hour/99000)
	}})
	measurePrune(t, e, "a till's history", 1000, 1000)
}

// measurePrune starts the daemon on e's history as after a boot, waits for the journal's prune
// to prune records and the spool's to forget jobs (their log lines), and reports VmRSS idle
// after start and 2 s after the prunes. Then it checks, in the stopped daemon's database, that
// the spool kept 10,000 printed jobs.
func measurePrune(t *testing.T, e *daemonEnv, what string, records, jobs int) {
	t.Helper()
	t0 := time.Now()
	p, _, _ := startTimed(t, e)
	pid := p.cmd.Process.Pid
	// Not an assertion's wait: the memory reported is a daemon's idle for 500 ms.
	time.Sleep(time.Until(t0.Add(500 * time.Millisecond)))
	before, rssBefore := rssParts(t, pid), vmRSS(t, pid)
	want := []*regexp.Regexp{regexp.MustCompile(fmt.Sprintf(`(?m)^.*"msg":"spool: printed jobs forgotten".*"jobs":%d\b`, jobs))}
	if records > 0 {
		want = append(want, regexp.MustCompile(fmt.Sprintf(`(?m)^.*"msg":"journal: finished records pruned".*"records":%d\b`, records)))
	}
	err := wait.TryEvery(3*time.Minute, 100*time.Millisecond, func() error {
		for _, re := range want {
			if !re.MatchString(p.logs.String()) {
				return fmt.Errorf("no line matching %s in the log", re)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("3 minutes after start: %v: the prune did not run; the log:\n%s", err, p.logs)
	}
	pruned := time.Since(t0)
	// Not an assertion's wait: what is reported is the memory 2 s after the prunes (the daemon
	// says nothing when it has given its memory and the database's pages back).
	time.Sleep(2 * time.Second)
	rssAfter, after, hwm := vmRSS(t, pid), rssParts(t, pid), procStatus(t, pid, "VmHWM:")
	t.Logf("%s: VmRSS idle %.1f MiB after start (%s), %.1f MiB 2 s after the prune of %d captures and %d printed jobs, done %s after start (%s); VmHWM %.1f MiB",
		what, float64(rssBefore)/(1<<20), before, float64(rssAfter)/(1<<20), records, jobs, pruned.Round(time.Second), after, float64(hwm)/(1<<20))
	if rssAfter > rssGoal {
		t.Errorf("VmRSS %.1f MiB after the prune, goal %d MiB", float64(rssAfter)/(1<<20), rssGoal>>20)
	}
	stopCleanly(t, p)
	st, err := store.Open(e.state)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n, err := st.PrintedSince(time.Time{}); err != nil || n != 10000 {
		t.Errorf("%d printed jobs kept (%v), want 10000", n, err)
	}
}
