package wal

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestPowerCutAfterEveryCommit cuts the power, in a model, after every change of a random
// run: what survives a power cut is the files as the last checkpoint's syncfs flushed them,
// plus every log up to its last fdatasync — nothing written since is certain. The checkpoint's
// background steps are held back and run at random points between changes, so the power also
// fails with the next log prepared, and between the switch to it and the syncfs (two logs on
// disk). Booting that disk (Open) must give every file a value it had at or after the last
// flushed change: every change reported durable survives, and no file goes back to a value
// older than that. (Not exactly the value at the last flush: a change made since may have
// reached the disk through the syncfs, as through the kernel's own writeback.)
func TestPowerCutAfterEveryCommit(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	root := memDir(t)
	state := filepath.Join(root, "state")
	l, err := Open(state, 600) // a small limit: checkpoints happen during the run
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	held := holdBackground(l)
	checkpoint := snapshot(t, state) // the files as the last checkpoint flushed them
	syncfs := l.flushFiles
	l.flushFiles = func() error { // what syncfs flushes survives: every file as it is now
		checkpoint = snapshot(t, state)
		return syncfs()
	}
	paths := []string{"journal/a.json", "journal/finished/a.json", "spool/queue/j.json", "spool/done/j.json", "x"}
	const absent = "<absent>"
	model := map[string]string{} // the files as the changes so far make them
	// allowed holds, per file, the values it has had since the last flushed change: what a
	// boot may give it.
	allowed := map[string]map[string]bool{}
	flushedNow := func() {
		for _, p := range paths {
			v, ok := model[p]
			if !ok {
				v = absent
			}
			allowed[p] = map[string]bool{v: true}
		}
	}
	flushedNow()
	switches, finishes, twoLogs := 0, 0, 0
	for i := range 400 {
		var ops []Op
		for range 1 + rng.IntN(3) {
			p := paths[rng.IntN(len(paths))]
			if rng.IntN(4) == 0 {
				ops = append(ops, Op{Path: p, Remove: true})
				delete(model, p)
				allowed[p][absent] = true
			} else {
				v := fmt.Sprintf("change %d of %s", i, p)
				ops = append(ops, Op{Path: p, Data: []byte(v)})
				model[p] = v
				allowed[p][v] = true
			}
		}
		sync := rng.IntN(3) != 0
		gen := l.gen
		if err := l.Commit(sync, ops...); err != nil {
			t.Fatal(err)
		}
		if sync {
			flushedNow()
		}
		if l.gen != gen {
			switches++
		}
		// The background steps run now or later.
		for len(held.queue) > 0 && rng.IntN(2) == 0 {
			if held.run() == "finish" {
				finishes++
			}
		}

		// The power fails now. Boot the disk it leaves.
		disk := filepath.Join(root, fmt.Sprintf("boot%03d", i))
		restore(t, checkpoint, disk)
		os.MkdirAll(filepath.Join(disk, "wal"), 0o750)
		gens, err := l.generations()
		if err != nil {
			t.Fatal(err)
		}
		if gens[0] < l.gen {
			twoLogs++ // switched, not finished: the old log is still there
		}
		for _, g := range gens {
			log, err := os.ReadFile(l.path(g))
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case g == l.gen:
				log = log[:l.flushed]
			case g == l.gen-1:
				log = log[:l.prevFlushed]
			case g < l.gen:
				t.Fatalf("logs %v: an old log outlived its checkpoint", gens)
			}
			os.WriteFile(filepath.Join(disk, "wal", filepath.Base(l.path(g))), log, 0o640)
		}
		booted, err := Open(disk, 600)
		if err != nil {
			t.Fatalf("after change %d: boot: %v", i, err)
		}
		booted.Close()
		got := snapshot(t, disk)
		for _, p := range paths {
			v, ok := got[p]
			if !ok {
				v = absent
			}
			if !allowed[p][v] {
				t.Fatalf("after change %d (flushed: %v, logs %v), a power cut and a boot leave %s = %q, want one of %v",
					i, sync, gens, p, v, allowed[p])
			}
		}
	}
	// The run must have gone through every state it claims to cover.
	if switches < 3 || finishes < 3 || twoLogs == 0 {
		t.Fatalf("%d switches, %d finished checkpoints, %d cuts with two logs: the run covers too little", switches, finishes, twoLogs)
	}
	t.Logf("%d switches, %d checkpoints finished, %d cuts with two logs on disk", switches, finishes, twoLogs)
}

// memDir is a new directory on a tmpfs (/dev/shm) if the machine has one, else t.TempDir().
// The power-cut test's disks are copies it makes itself, and what a flush keeps is what its
// snapshots say; but each of its 400 boots runs syncfs, which on a real disk flushes the whole
// file system every build and test on the machine writes to (a few seconds to a minute).
func memDir(t *testing.T) string {
	t.Helper()
	var st unix.Statfs_t
	if unix.Statfs("/dev/shm", &st) != nil || st.Type != unix.TMPFS_MAGIC {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp("/dev/shm", "ecrd-wal-test-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// held is a log's background steps, held back for the test to run one by one.
type held struct{ queue []func() string }

func holdBackground(l *Log) *held {
	h := &held{}
	l.background = func(step string, f func()) {
		h.queue = append(h.queue, func() string { f(); return step })
	}
	return h
}

// run runs the oldest held step and says which it was.
func (h *held) run() string {
	f := h.queue[0]
	h.queue = h.queue[1:]
	return f()
}

// snapshot reads every file under dir but the log.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			if d != nil && d.IsDir() && d.Name() == "wal" {
				return filepath.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		b, _ := os.ReadFile(p)
		out[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	return out
}

func restore(t *testing.T, files map[string]string, dir string) {
	t.Helper()
	for p, v := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		os.MkdirAll(filepath.Dir(full), 0o750)
		if err := os.WriteFile(full, []byte(v), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(dir, 0o750)
}
