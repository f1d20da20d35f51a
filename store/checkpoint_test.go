package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/internal/wait"
)

// setCheckpointer sets the checkpointer's knobs for one test.
func setCheckpointer(t *testing.T, idle time.Duration, grown, commits, hard int64) {
	t.Helper()
	oldIdle, oldGrown, oldCommits, oldHard, oldKeep := ckptIdle, ckptGrown, ckptCommits, walHardLimit, walKeepLimit
	ckptIdle, ckptGrown, ckptCommits, walHardLimit, walKeepLimit = idle, grown, commits, hard, min(hard/2, walKeepLimit)
	t.Cleanup(func() {
		ckptIdle, ckptGrown, ckptCommits, walHardLimit, walKeepLimit = oldIdle, oldGrown, oldCommits, oldHard, oldKeep
	})
}

// caughtUp waits until the checkpointer owes nothing: no checkpoint runs, and fewer than
// ckptCommits commits came since the last began.
func caughtUp(t *testing.T, s *Store) {
	t.Helper()
	seq := s.seq.Load()
	err := wait.TryEvery(30*time.Second, time.Millisecond, func() error {
		last, finished := s.ckpt.last.Load(), s.ckpt.finished.Load()
		if last != finished || seq-last >= ckptCommits {
			return fmt.Errorf("at commit %d the checkpointer is behind: the last checkpoint began at %d, the last ended began at %d", seq, last, finished)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func walSize(t *testing.T, s *Store) int64 {
	t.Helper()
	fi, err := os.Stat(s.Path() + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// commitMany makes n flushed commits of about 8 KiB each, as a capture's answer with its
// receipt.
func commitMany(t *testing.T, s *Store, prefix string, n int, each func()) {
	t.Helper()
	for i := range n {
		c := fullCapture(fmt.Sprintf("%s%05d", prefix, i))
		c.Answer = bytes.Repeat([]byte{byte(i)}, 8<<10)
		put(t, s, c)
		if each != nil {
			each()
		}
	}
}

// TestCheckpointerBoundsTheLog: with SQLite's automatic checkpoint off, only the checkpointer
// keeps the log from growing. Commits without a pause (the idle checkpoint never comes): the
// checkpoints after every ckptCommits copy the log, and once it passes walHardLimit the log
// starts again. A reader that holds the log back lets it grow; once it is done, the log is
// bounded again.
func TestCheckpointerBoundsTheLog(t *testing.T) {
	const hard = 2 << 20
	setCheckpointer(t, time.Hour, 1, 20, hard)
	s := open(t)
	const n = 1000 // 8 MiB of answers: without checkpoints the log would hold all of them
	// After each ckptCommits commits a checkpoint must have run: the bound is the
	// checkpointer's, not how soon the scheduler runs it beside a test's tight loop.
	var largest int64
	i := 0
	eachRound := func() {
		largest = max(largest, walSize(t, s))
		if i++; i%20 == 0 {
			caughtUp(t, s)
		}
	}
	commitMany(t, s, "B", n, eachRound)
	t.Logf("%d commits: the log's file at most %d KiB (hard limit %d KiB)", n, largest>>10, hard>>10)
	// Past the hard limit by at most the commits between two checkpoints.
	if largest > hard+hard/2 {
		t.Errorf("the log's file reached %d KiB over %d commits of 8 KiB, hard limit %d KiB", largest>>10, n, hard>>10)
	}

	// A reader's transaction holds the log back: it grows past the limit while the reader reads.
	db := rawDB(t, s.Path())
	rtx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	if err := rtx.QueryRow("SELECT count(*) FROM captures").Scan(&v); err != nil {
		t.Fatal(err)
	}
	commitMany(t, s, "R", 300, nil)
	pinned := walSize(t, s)
	rtx.Rollback()
	if pinned <= hard {
		t.Errorf("the log's file is %d KiB with a reader holding it: the test proves nothing", pinned>>10)
	}
	largest, i = 0, 0
	commitMany(t, s, "A", 20, eachRound)
	after := walSize(t, s)
	largest = 0
	commitMany(t, s, "A", 300, eachRound)
	t.Logf("the log's file: %d KiB with a reader holding it, %d KiB once it ended, at most %d KiB after", pinned>>10, after>>10, largest>>10)
	if after > hard || largest > hard+hard/2 {
		t.Errorf("after the reader ended, the log's file held %d KiB, then at most %d KiB, hard limit %d KiB", after>>10, largest>>10, hard>>10)
	}
	if err := s.Check(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Capture("B00042"); err != nil || len(got.Answer) != 8<<10 {
		t.Fatalf("a capture after the checkpoints: %v", err)
	}
}

// TestCommitDoesNotWaitForCheckpoint: a checkpoint that runs holds no lock a commit needs.
// The checkpoint is stopped as it begins; commits go on (were it holding wmu, they would wait
// for ever, and the test with them).
func TestCommitDoesNotWaitForCheckpoint(t *testing.T) {
	setCheckpointer(t, time.Millisecond, 1, 1000, 64<<20)
	entered, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	ckptHook = func() {
		if calls.Add(1) == 1 {
			close(entered)
			<-release
		}
	}
	t.Cleanup(func() { ckptHook = nil })
	s := open(t)
	put(t, s, fullCapture("T0"))
	<-entered
	commitMany(t, s, "W", 20, nil)
	close(release)
	// The checkpoint that was held goes through once released, and another copies the
	// commits made meanwhile.
	err := wait.TryEvery(30*time.Second, 10*time.Millisecond, func() error {
		if n := calls.Load(); n < 2 {
			return fmt.Errorf("%d checkpoints; want the held one and one after the commits", n)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

// TestCheckpointIOErrorLatches: a checkpoint whose flush of ecrd.db fails (EIO, injected by
// strace into the first fsync of ecrd.db, which in WAL mode only a checkpoint makes) latches
// ErrDiskFailed as a failed commit does: OnDiskFailed is told once, and nothing more is
// written — a later checkpoint must not start the log again over pages the kernel dropped.
func TestCheckpointIOErrorLatches(t *testing.T) {
	if dir := os.Getenv("ECRD_STORE_CHECKPOINT_EIO"); dir != "" {
		checkpointEIO(t, dir)
		return
	}
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Fatal("strace is needed (apt-get install strace)")
	}
	dir := t.TempDir()
	s, err := Open(dir) // the database made, and its creation's flushes of ecrd.db done
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, fullCapture("T0"))
	s.Close()
	cmd := exec.Command(strace, "-f", "-qq", "-o", "/dev/null", "-P", filepath.Join(dir, File),
		"-e", "trace=fsync,fdatasync", "-e", "inject=fsync,fdatasync:error=EIO:when=1",
		os.Args[0], "-test.run", "^TestCheckpointIOErrorLatches$", "-test.v")
	cmd.Env = append(os.Environ(), "ECRD_STORE_CHECKPOINT_EIO="+dir)
	out, err := cmd.CombinedOutput()
	t.Logf("under strace:\n%s", out)
	if err != nil || !strings.Contains(string(out), "--- PASS") {
		t.Fatalf("the store under strace: %v", err)
	}
}

// checkpointEIO is TestCheckpointIOErrorLatches under strace.
func checkpointEIO(t *testing.T, dir string) {
	setCheckpointer(t, time.Millisecond, 1, 1000, 64<<20)
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var told []error
	told1 := make(chan struct{})
	s.OnDiskFailed = func(err error) {
		told = append(told, err)
		close(told1)
	}
	put(t, s, fullCapture("T1"))
	<-told1 // the checkpoint after the commit, once it fails
	if !errors.Is(told[0], ErrDiskFailed) {
		t.Errorf("OnDiskFailed told %v, want ErrDiskFailed", told[0])
	}
	t.Logf("OnDiskFailed: %v", told[0])
	if err := s.Flushed(func(tx *Tx) error { return tx.PutCapture(fullCapture("T2")) }); !errors.Is(err, ErrDiskFailed) {
		t.Errorf("a commit after the checkpoint failed: %v, want ErrDiskFailed", err)
	}
	if err := s.Shrink(); !errors.Is(err, ErrDiskFailed) {
		t.Errorf("Shrink after the checkpoint failed: %v, want ErrDiskFailed", err)
	}
	if len(told) != 1 {
		t.Errorf("OnDiskFailed told %d times", len(told))
	}
	if _, err := s.Capture("T1"); err != nil {
		t.Errorf("reading after the failed checkpoint: %v", err)
	}
}

// TestIdleCheckpointStartsTheLogAgain: once the log has grown and the commits pause, the
// checkpointer copies it and starts it again itself, so that the next commit — a capture's —
// does not flush a new log's header.
func TestIdleCheckpointStartsTheLogAgain(t *testing.T) {
	setCheckpointer(t, time.Millisecond, 30, 1000, 64<<20)
	s := open(t)
	commitMany(t, s, "I", 30, nil)
	err := wait.TryEvery(30*time.Second, time.Millisecond, func() error {
		if n := s.ckpt.finished.Load(); n < 30 {
			return fmt.Errorf("no checkpoint after the 30 commits has ended (the last began at commit %d)", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var busy, log, copied int
	if err := rawDB(t, s.Path()).QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &log, &copied); err != nil {
		t.Fatal(err)
	}
	// The checkpointer's own write (one page) is all the new log holds.
	if busy != 0 || log != 1 {
		t.Errorf("after the checkpoint the log holds %d frames (busy %d), want the one the checkpointer wrote to start it again", log, busy)
	}
}
