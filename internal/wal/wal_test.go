package wal

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// openHeld opens the log of root with its checkpoint's background steps held back for the
// test to run (holdBackground); the log is closed when the test ends.
func openHeld(t *testing.T, root string, limit int64) (*Log, *held) {
	t.Helper()
	l, err := Open(root, limit)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, holdBackground(l)
}

func read(t *testing.T, root, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

// A committed change survives the loss of every file it wrote (what power loss does to files
// written without a flush): the next Open replays it from the log.
func TestCommittedChangeSurvivesLostFiles(t *testing.T) {
	root := t.TempDir()
	l, err := Open(root, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(true, Op{Path: "journal/a.json", Data: []byte("A1")}, Op{Path: "spool/queue/j.json", Data: []byte("J")}); err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(true, Op{Path: "journal/a.json", Data: []byte("A2")}, Op{Path: "spool/queue/j.json", Remove: true},
		Op{Path: "spool/done/j.json", Data: []byte("D")}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, root, "journal/a.json"); got != "A2" {
		t.Fatalf("applied %q", got)
	}
	l.Close()
	// The power failed before the files reached the disk.
	os.RemoveAll(filepath.Join(root, "journal"))
	os.WriteFile(filepath.Join(root, "spool", "queue", "j.json"), []byte("J"), 0o640) // its removal lost too
	os.Remove(filepath.Join(root, "spool", "done", "j.json"))

	l, err = Open(root, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got := read(t, root, "journal/a.json"); got != "A2" {
		t.Fatalf("after replay journal/a.json = %q, want A2", got)
	}
	if _, err := os.Stat(filepath.Join(root, "spool", "queue", "j.json")); !os.IsNotExist(err) {
		t.Fatalf("removal not replayed: %v", err)
	}
	if got := read(t, root, "spool/done/j.json"); got != "D" {
		t.Fatalf("spool/done/j.json = %q", got)
	}
	// Open checkpointed: the old log is gone, a new empty one is in place, and the one after
	// it is prepared.
	if l.Size() != 0 {
		t.Fatalf("new log holds %d bytes", l.Size())
	}
	if gens, _ := l.generations(); len(gens) != 2 || gens[0] != l.gen || gens[1] != l.gen+1 {
		t.Fatalf("logs after checkpoint: %v, want %d and %d", gens, l.gen, l.gen+1)
	}
}

// A frame torn by a power cut in the middle of its write was never reported committed: it
// and anything after it are ignored; every whole frame before it is applied.
func TestTornTailIsIgnored(t *testing.T) {
	root := t.TempDir()
	l, err := Open(root, 0)
	if err != nil {
		t.Fatal(err)
	}
	l.Commit(true, Op{Path: "a", Data: []byte("whole")})
	l.Commit(true, Op{Path: "b", Data: []byte("torn")})
	path := l.path(l.gen)
	l.Close()
	os.RemoveAll(filepath.Join(root, "a"))
	os.RemoveAll(filepath.Join(root, "b"))
	fi, _ := os.Stat(path)
	os.Truncate(path, fi.Size()-3)
	if l, err = Open(root, 0); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got := read(t, root, "a"); got != "whole" {
		t.Fatalf("a = %q", got)
	}
	if _, err := os.Stat(filepath.Join(root, "b")); !os.IsNotExist(err) {
		t.Fatalf("torn frame applied: %v", err)
	}
}

// A corrupt byte inside a frame (CRC mismatch) costs that frame only: the committed frames
// before and after it are applied.
func TestCorruptFrameIsSkipped(t *testing.T) {
	root := t.TempDir()
	l, _ := Open(root, 0)
	l.Commit(true, Op{Path: "a", Data: []byte("one")})
	mid := l.size
	l.Commit(true, Op{Path: "b", Data: []byte("two")})
	l.Commit(true, Op{Path: "c", Data: []byte("three")})
	path := l.path(l.gen)
	l.Close()
	b, _ := os.ReadFile(path)
	b[mid+headerLen+3] ^= 0xff // inside b's payload
	os.WriteFile(path, b, 0o640)
	for _, f := range []string{"a", "b", "c"} {
		os.Remove(filepath.Join(root, f))
	}
	l, err := Open(root, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if read(t, root, "a") != "one" || read(t, root, "c") != "three" {
		t.Fatalf("the frames around the corrupt one: a=%q c=%q", read(t, root, "a"), read(t, root, "c"))
	}
	if _, err := os.Stat(filepath.Join(root, "b")); !os.IsNotExist(err) {
		t.Fatal("a corrupt frame was applied")
	}
}

// FuzzReplay: whatever bytes a log holds, replay neither panics nor writes outside the
// state directory.
func FuzzReplay(f *testing.F) {
	root := f.TempDir()
	l, _ := Open(root, 0)
	l.Commit(true, Op{Path: "x/a", Data: []byte("one")}, Op{Path: "x/b", Remove: true})
	b, _ := os.ReadFile(l.path(l.gen))
	l.Close()
	f.Add(b)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		state := filepath.Join(dir, "state")
		os.MkdirAll(filepath.Join(state, "wal"), 0o750)
		os.WriteFile(filepath.Join(state, "wal", "0000000000000001.log"), data, 0o640)
		l, err := Open(state, 0)
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
		ents, _ := os.ReadDir(dir)
		if len(ents) != 1 {
			t.Fatalf("replay wrote outside the state directory: %v", ents)
		}
	})
}

// The next log is ready from the start (Open prepares it); past the limit, at the first synced
// change, the log switches to it; the old log goes only after syncfs has flushed the files,
// and the log after the next is prepared in the background at once. No step of it runs
// inside Commit but the switch.
func TestCheckpointAtLimit(t *testing.T) {
	root := t.TempDir()
	l, h := openHeld(t, root, 200)
	first := l.gen
	if l.next == nil || l.nextGen != first+1 {
		t.Fatalf("after Open the next log is %v (gen %d), want log %d ready", l.next, l.nextGen, first+1)
	}
	commit := func(sync bool, v byte) {
		t.Helper()
		if err := l.Commit(sync, Op{Path: "x", Data: []byte{v}}); err != nil {
			t.Fatal(err)
		}
	}
	i := byte('0')
	for l.gen == first {
		before := l.size
		commit(true, i)
		i++
		if before >= 200 && l.gen == first {
			t.Fatalf("log at %d bytes, past its limit, not switched at a synced change", before)
		}
		if l.gen == first && len(h.queue) != 0 {
			t.Fatalf("%d background steps before the switch, want none", len(h.queue))
		}
	}
	if gens, _ := l.generations(); len(gens) != 2 || gens[0] != first || gens[1] != l.gen || l.next != nil {
		t.Fatalf("after the switch logs %v (next %v), want %d and %d until syncfs", gens, l.next, first, l.gen)
	}
	if len(h.queue) != 2 || h.run() != "finish" {
		t.Fatal("no finish step after the switch")
	}
	if gens, _ := l.generations(); len(gens) != 1 || gens[0] != l.gen {
		t.Fatalf("after the checkpoint logs %v, want only %d", gens, l.gen)
	}
	if h.run() != "prepare" || l.next == nil || l.nextGen != l.gen+1 {
		t.Fatal("the log after the next was not prepared")
	}
	if gens, _ := l.generations(); len(gens) != 2 || gens[1] != l.gen+1 {
		t.Fatalf("after the prepare logs %v, want %d and %d", gens, l.gen, l.gen+1)
	}
	if read(t, root, "x") != string(i-1) {
		t.Fatal("last change not applied")
	}
}

// A log that only ever gets unsynced changes is switched at twice its limit, after flushing
// it once: a synced change in the next log must never outlive one in this log.
func TestUnsyncedLogSwitchesAtTwiceTheLimit(t *testing.T) {
	root := t.TempDir()
	l, h := openHeld(t, root, 200)
	first := l.gen
	for i := 0; l.gen == first; i++ {
		if err := l.Commit(false, Op{Path: "x", Data: []byte("0123456789")}); err != nil {
			t.Fatal(err)
		}
		for len(h.queue) > 0 {
			h.run()
		}
		if l.gen == first && l.size >= 400 {
			t.Fatalf("an unsynced log of %d bytes (limit 200) was not switched", l.size)
		}
		if i > 100 {
			t.Fatal("no switch")
		}
	}
	if gens, _ := l.generations(); len(gens) != 2 || gens[0] != l.gen {
		t.Fatalf("logs %v after the checkpoint, want %d and the prepared one", gens, l.gen)
	}
}

func TestOpsStayInsideTheStateDirectory(t *testing.T) {
	root := t.TempDir()
	l, _ := Open(root, 0)
	defer l.Close()
	for _, p := range []string{"../x", "/etc/x", "a/../../x"} {
		if err := l.Commit(false, Op{Path: p, Data: []byte("x")}); err == nil {
			t.Errorf("op on %q applied", p)
		}
	}
}

// A change replay cannot apply (something in the way of its file) waits in pending with every
// later one, in order, and its log is kept — through the checkpoints of the life that started
// with it — until the files have taken it. Then a checkpoint may drop that log.
func TestChangeReplayCannotApplyIsNeverDropped(t *testing.T) {
	root := t.TempDir()
	l, err := Open(root, 300)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(true, Op{Path: "a/x", Data: []byte("X1")}); err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(true, Op{Path: "a/y", Data: []byte("Y1")}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	// The power failed before the files reached the disk, and a directory now stands where
	// a/x must go.
	os.RemoveAll(filepath.Join(root, "a"))
	if err := os.MkdirAll(filepath.Join(root, "a", "x", "in-the-way"), 0o750); err != nil {
		t.Fatal(err)
	}

	l, h := openHeld(t, root, 300)
	if len(l.ReplayErrors()) != 1 {
		t.Fatalf("replay errors %v, want the one change", l.ReplayErrors())
	}
	if n, _ := l.Pending(); n != 2 {
		t.Fatalf("%d changes pending, want a/x and a/y behind it", n)
	}
	if got := read(t, root, "a/y"); got != "<open "+filepath.Join(root, "a/y")+": no such file or directory>" {
		t.Fatalf("a/y = %q: applied ahead of the change before it", got)
	}
	// Commits while it waits: no checkpoint may drop the log holding a/x.
	gens, _ := l.generations()
	holding := gens[0]
	for i := range 20 {
		if err := l.Commit(true, Op{Path: "b", Data: []byte{byte('a' + i)}}); err != nil {
			t.Fatal(err)
		}
		for len(h.queue) > 0 {
			h.run()
		}
	}
	if gens, _ := l.generations(); gens[0] != holding {
		t.Fatalf("logs %v: log %d, holding the waiting change, is gone", gens, holding)
	}
	// The obstacle goes; the next commit applies everything in order, and a checkpoint
	// after that may drop the old log.
	os.RemoveAll(filepath.Join(root, "a", "x"))
	for i := range 20 {
		if err := l.Commit(true, Op{Path: "b", Data: []byte{byte('A' + i)}}); err != nil {
			t.Fatal(err)
		}
		for len(h.queue) > 0 {
			h.run()
		}
	}
	if n, _ := l.Pending(); n != 0 {
		t.Fatalf("%d changes still pending", n)
	}
	l.Close()
	l, err = Open(root, 300)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for p, want := range map[string]string{"a/x": "X1", "a/y": "Y1", "b": "T"} {
		if got := read(t, root, p); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
}

// A Batch commits a frame each batchSize ops, and the rest at Flush; Committed counts what
// was committed, and a Batch with nothing added commits no frame.
func TestBatchCommitsFullFramesThenTheRest(t *testing.T) {
	root := t.TempDir()
	l, _ := openHeld(t, root, 0)
	n := batchSize + 3
	ops := make([]Op, n)
	for i := range ops {
		ops[i] = Op{Path: fmt.Sprintf("spool/done/%d.json", i), Data: []byte("x")}
	}
	if err := l.Commit(false, ops...); err != nil {
		t.Fatal(err)
	}
	b := l.Batch()
	size := l.Size()
	if err := b.Flush(); err != nil || l.Size() != size || b.Committed() != 0 {
		t.Fatalf("an empty batch's Flush: %v, log %d -> %d bytes, Committed %d", err, size, l.Size(), b.Committed())
	}
	for i := range n {
		if err := b.Add(Op{Path: ops[i].Path, Remove: true}); err != nil {
			t.Fatal(err)
		}
		gone := read(t, root, ops[0].Path) != "x"
		if full := i+1 >= batchSize; gone != full {
			t.Fatalf("after %d removals added, the first file gone: %v, want %v", i+1, gone, full)
		}
	}
	if b.Committed() != batchSize {
		t.Fatalf("Committed %d before Flush, want %d", b.Committed(), batchSize)
	}
	if read(t, root, ops[n-1].Path) != "x" {
		t.Fatal("the last removals were committed before Flush")
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	if b.Committed() != n || read(t, root, ops[n-1].Path) == "x" || l.Size() == size {
		t.Fatalf("after Flush: Committed %d of %d, last file %q", b.Committed(), n, read(t, root, ops[n-1].Path))
	}
}
