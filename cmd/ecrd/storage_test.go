package main

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFlushesPerCapture counts, with strace, the flushes (fsync, fdatasync, syncfs, ...) the
// daemon makes over a run of captures on a printer without a drawer, and then with one. The
// goal (docs/performance.md): at most two per capture without a drawer, three with one — two
// either way, as built (docs/durability.md): the intent, and the answer with its receipt
// jobs, each a flushed commit of SQLite's log (ecrd.db-wal); the printed mark is not flushed,
// nor is the drawer pulse (the drawer rule).
//
// Every flush is given to the capture during which it began — strace's timestamps against
// the test's, the trace read once the daemon has stopped — and sorted by what made it:
//
//   - a checkpoint: the store's checkpointer, in the background on a thread of its own, flushes
//     the log and ecrd.db (the only flushes of ecrd.db itself in WAL mode) through its own
//     connection, and, starting the log again, the new log's header through the writer's.
//     Every flush of a thread that flushes through a descriptor other than the writer's log
//     is its;
//   - a connection opened: its first flush, of the log, flushes the state directory too;
//   - a commit: any other flush — a new log's header too, had a commit started the log again
//     itself, as one did after SQLite's automatic checkpoint.
//
// The checkpoints run beside the captures, off the POS's path: every capture's commits must
// make at most the goal's flushes, and the run, on average, at most the goal's plus 0.1
// with the checkpoints.
func TestFlushesPerCapture(t *testing.T) {
	for _, c := range []struct {
		name   string
		env    []string
		goal   int
		prefix string
	}{
		{"no drawer", nil, 2, "STX_FLUSH"},
		{"drawer", []string{"ECRD_DRAWER_KICK=0"}, 3, "STX_FLUSHKICK"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel() // two daemons, each under its own strace: the counts do not mix
			e := newDaemonEnv(t)
			trace := filepath.Join(e.dir, "flushes.trace")
			// -y names each descriptor's file: the file printer's own fsync per job (its
			// "paper") is the printer's, not the state's, and is not counted. -ttt stamps each
			// call with the wall clock the test reads too. --seccomp-bpf stops the daemon only
			// at the calls traced, not at every system call.
			e.wrap = []string{"strace", "-f", "--seccomp-bpf", "-qq", "-y", "-ttt", "-o", trace,
				"-e", "trace=" + flushCalls}
			e.extraEnv = c.env
			p := e.start()
			const n = 500
			begin := make([]time.Time, n+1) // begin[n]: the end of the last capture's share
			answered := make([]time.Time, n)
			for i := range n {
				id := fmt.Sprintf("%s%04d", c.prefix, i)
				begin[i] = time.Now()
				status, out := e.capture(id)
				answered[i] = time.Now()
				if status != 200 || out["status"] != "ok" {
					t.Fatalf("capture %s: %d %v", id, status, out)
				}
			}
			waitQueueEmpty(t, e.client())
			begin[n] = time.Now()
			stopTraced(t, p) // strace writes its last lines as the daemon exits
			s := flushesPerCapture(t, readFlushes(t, trace), begin, answered, e.state, e.printerFile)
			t.Logf("%s, %d captures: %s", c.name, n, s)
			if len(s.other) > 0 {
				t.Errorf("flushes of files other than the database, its log and the state directory: %v", s.other)
			}
			if s.total < 2*n {
				t.Fatalf("%d flushes for %d captures: fewer than two commits each, so strace counted too few (the test proves nothing)", s.total, n)
			}
			if s.commits[0] < 2 {
				t.Errorf("a capture's commits made %d flushes, fewer than its two flushed commits: a commit's flush was taken for the checkpointer's", s.commits[0])
			}
			if s.commits[2] > c.goal {
				t.Errorf("a capture's commits made %d flushes, want at most %d", s.commits[2], c.goal)
			}
			if s.mean > float64(c.goal)+0.1 {
				t.Errorf("%.3f flushes per capture over the run, checkpoints included, want at most %.1f", s.mean, float64(c.goal)+0.1)
			}
		})
	}
}

// flushCalls are the system calls that flush: every one counts, whichever SQLite (or the Go
// runtime under it) uses. modernc.org/sqlite calls fsync.
const flushCalls = "fsync,fdatasync,syncfs,sync_file_range,msync,sync"

// flush is one flush call in strace's trace.
type flush struct {
	at   time.Time
	tid  int    // the thread that made it
	fd   int    // the descriptor flushed
	file string // the file flushed, as strace -y names it
	kind string // what made it: "commit", "checkpoint", "open" (flushesPerCapture)
}

// flushLine matches a flush in `strace -f -y -ttt` output, whole or "<unfinished ...>" (whose
// "resumed" half starts otherwise and is not counted again).
var flushLine = regexp.MustCompile(`(?m)^(\d+)\s+(\d+)\.(\d+)\s+(?:` + strings.ReplaceAll(flushCalls, ",", "|") + `)\((?:(\d+)<([^>]*)>)?`)

func readFlushes(t *testing.T, trace string) []flush {
	t.Helper()
	b, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	var out []flush
	for _, m := range flushLine.FindAllSubmatch(b, -1) {
		tid, _ := strconv.Atoi(string(m[1]))
		sec, _ := strconv.ParseInt(string(m[2]), 10, 64)
		usec, _ := strconv.ParseInt((string(m[3]) + "000000")[:6], 10, 64)
		fd, _ := strconv.Atoi(string(m[4]))
		out = append(out, flush{at: time.Unix(sec, usec*1000), tid: tid, fd: fd, file: string(m[5])})
	}
	slices.SortStableFunc(out, func(a, b flush) int { return a.at.Compare(b.at) })
	return out
}

// stopTraced stops the daemon run under strace with SIGTERM — the daemon, not strace, which
// would detach and leave the daemon's flushes failing — and waits until both have exited.
func stopTraced(t *testing.T, p *proc) {
	t.Helper()
	pid := p.cmd.Process.Pid
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		t.Fatal(err)
	}
	kids := strings.Fields(string(b))
	if len(kids) != 1 {
		t.Fatalf("strace (%d) has children %q, want the daemon alone", pid, kids)
	}
	daemon, _ := strconv.Atoi(kids[0])
	if err := syscall.Kill(daemon, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.wait(t)
}

// flushStats is what a run of captures flushed, capture by capture. The triples are min,
// median and max over the captures.
type flushStats struct {
	n       int
	total   int     // every flush from the first request to the end
	mean    float64 // total / n
	all     [3]int  // per capture, from its request to the next, every flush
	commits [3]int  // the same, its commits' flushes alone
	answer  [3]int  // the commits' up to its answer: what the POS waited on
	kinds   map[string]int
	files   map[string]int // flushes by file: ecrd.db-wal, ecrd.db, the state directory
	other   []string       // flushes of any other file
	hist    map[int]int    // captures by their number of flushes
	// checkpoints: how many ran, on how many captures their flushes fell, and on how many of
	// those before the answer.
	checkpoints, onCaptures, beforeAnswer int
	opens                                 int // connections opened (a flush of the directory)
}

func (s flushStats) String() string {
	var h []string
	for _, k := range slices.Sorted(maps.Keys(s.hist)) {
		h = append(h, fmt.Sprintf("%d on %d", k, s.hist[k]))
	}
	tri := func(v [3]int) string { return fmt.Sprintf("min %d / median %d / max %d", v[0], v[1], v[2]) }
	return fmt.Sprintf("%d flushes, %.3f per capture (ecrd.db-wal %d, ecrd.db %d, state directory %d; commits %d, checkpoints %d, connections opened %d). "+
		"Per capture: every flush %s (captures by flushes: %s); commits alone %s, before the answer %s. "+
		"The checkpointer flushed ecrd.db %d times, %d flushes in all, on %d captures (%d of them before the answer); %d connections opened",
		s.total, s.mean, s.files["ecrd.db-wal"], s.files["ecrd.db"], s.files["dir"],
		s.kinds["commit"], s.kinds["checkpoint"], s.kinds["open"],
		tri(s.all), strings.Join(h, ", "), tri(s.commits), tri(s.answer),
		s.checkpoints, s.kinds["checkpoint"], s.onCaptures, s.beforeAnswer, s.opens)
}

// flushesPerCapture sorts the flushes by what made them and gives each to the capture whose
// request came last before it: capture i's share runs from begin[i] to begin[i+1], and the
// part up to answered[i] is what the POS waited on. Flushes before the first request and
// after the end (the start's, the stop's) are left out.
func flushesPerCapture(t *testing.T, flushes []flush, begin, answered []time.Time, state, printer string) flushStats {
	t.Helper()
	n := len(answered)
	wal, db := filepath.Join(state, "ecrd.db-wal"), filepath.Join(state, "ecrd.db")
	s := flushStats{n: n, kinds: map[string]int{}, files: map[string]int{}, hist: map[int]int{}}
	// The writer's log: the descriptor most flushes of the log go through. The checkpointer's
	// thread: one that flushes the log or ecrd.db through another, in the run (before it the
	// database's creation flushes ecrd.db, after it the last checkpoint at the stop, on
	// threads that commit too).
	inRun := func(f flush) bool { return !f.at.Before(begin[0]) && f.at.Before(begin[n]) }
	byFD := map[int]int{}
	for _, f := range flushes {
		if f.file == wal && inRun(f) {
			byFD[f.fd]++
		}
	}
	writer := -1
	for fd, k := range byFD {
		if writer < 0 || k > byFD[writer] {
			writer = fd
		}
	}
	checkpointer := map[int]bool{}
	for _, f := range flushes {
		if (f.file == wal || f.file == db) && f.fd != writer && inRun(f) {
			checkpointer[f.tid] = true
		}
	}
	// Keep the state's flushes in the run; the printer's (its paper) and those of pipes and
	// sockets (the log's sync) are not the disk's.
	var fs []flush
	for _, f := range flushes {
		if !inRun(f) || f.file == printer || !strings.HasPrefix(f.file, "/") {
			continue
		}
		switch f.file {
		case wal:
			s.files["ecrd.db-wal"]++
		case db:
			s.files["ecrd.db"]++
			s.checkpoints++
		case state:
			s.files["dir"]++
		default:
			s.other = append(s.other, f.file)
			continue
		}
		fs = append(fs, f)
	}
	// Sort them: the checkpointer's by its thread, which it keeps (it runs locked to it) and
	// no other goroutine uses; a connection opened by the flush of the directory and the
	// same thread's flush of the log just before it; the rest are commits.
	for i := range fs {
		switch {
		case checkpointer[fs[i].tid]:
			fs[i].kind = "checkpoint"
		case fs[i].file == state:
			fs[i].kind = "open"
			for j := i - 1; j >= 0; j-- {
				if fs[j].file == wal && fs[j].tid == fs[i].tid && fs[j].kind == "commit" {
					fs[j].kind = "open"
					break
				}
			}
			s.opens++
		default:
			fs[i].kind = "commit"
		}
	}
	all, front, commits := make([]int, n), make([]int, n), make([]int, n)
	ckpt, ckptFront := make([]bool, n), make([]bool, n)
	for _, f := range fs {
		i, found := slices.BinarySearchFunc(begin[:n], f.at, func(b, at time.Time) int { return b.Compare(at) })
		if !found {
			i-- // begin[i-1] < at < begin[i]
		}
		s.total++
		s.kinds[f.kind]++
		all[i]++
		inFront := !f.at.After(answered[i])

		switch f.kind {
		case "commit":
			commits[i]++
			if inFront {
				front[i]++
			}
		case "checkpoint":
			ckpt[i] = true
			ckptFront[i] = ckptFront[i] || inFront
		}
	}
	for i := range n {
		s.hist[all[i]]++
		if ckpt[i] {
			s.onCaptures++
		}
		if ckptFront[i] {
			s.beforeAnswer++
		}
	}
	tri := func(v []int) [3]int {
		v = slices.Sorted(slices.Values(v))
		return [3]int{v[0], v[len(v)/2], v[len(v)-1]}
	}
	s.mean = float64(s.total) / float64(n)
	s.all, s.answer, s.commits = tri(all), tri(front), tri(commits)
	return s
}
