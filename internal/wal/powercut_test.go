package wal

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// TestPowerCutAfterEveryCommit cuts the power, in a model, after every change of a random
// run: what survives a power cut is the files as the last checkpoint flushed them, plus the
// log up to its last fdatasync — nothing written since is certain. Booting that disk (Open)
// must give exactly the files as they were after the last flushed change: every change
// reported durable survives, and nothing half-applied remains.
func TestPowerCutAfterEveryCommit(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	root := t.TempDir()
	state := filepath.Join(root, "state")
	l, err := Open(state, 600) // a small limit: checkpoints happen during the run
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	paths := []string{"journal/a.json", "journal/finished/a.json", "spool/queue/j.json", "spool/done/j.json", "x"}
	model := map[string]string{}       // the files as the changes so far make them
	var flushedModel map[string]string // ... as of the last flushed change
	checkpoint := snapshot(t, state)   // the files as the last checkpoint flushed them
	flushedModel = copyMap(model)
	gen := l.gen
	for i := range 120 {
		var ops []Op
		for range 1 + rng.IntN(3) {
			p := paths[rng.IntN(len(paths))]
			if rng.IntN(4) == 0 {
				ops = append(ops, Op{Path: p, Remove: true})
				delete(model, p)
			} else {
				v := fmt.Sprintf("change %d of %s", i, p)
				ops = append(ops, Op{Path: p, Data: []byte(v)})
				model[p] = v
			}
		}
		sync := rng.IntN(2) == 0
		if err := l.Commit(sync, ops...); err != nil {
			t.Fatal(err)
		}
		if sync {
			flushedModel = copyMap(model)
		}
		if l.gen != gen { // a checkpoint flushed every file: all of it survives
			gen = l.gen
			checkpoint = snapshot(t, state)
			flushedModel = copyMap(model)
		}

		// The power fails now. Boot the disk it leaves.
		disk := filepath.Join(root, fmt.Sprintf("boot%03d", i))
		restore(t, checkpoint, disk)
		log, err := os.ReadFile(l.path(l.gen))
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(disk, "wal"), 0o750)
		os.WriteFile(filepath.Join(disk, "wal", filepath.Base(l.path(l.gen))), log[:l.flushed], 0o640)
		booted, err := Open(disk, 600)
		if err != nil {
			t.Fatalf("after change %d: boot: %v", i, err)
		}
		booted.Close()
		got := snapshot(t, disk)
		for _, p := range paths {
			if got[p] != flushedModel[p] {
				t.Fatalf("after change %d (flushed: %v), a power cut and a boot leave %s = %q, want %q",
					i, sync, p, got[p], flushedModel[p])
			}
		}
	}
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

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
