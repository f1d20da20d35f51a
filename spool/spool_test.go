package spool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ecrd-pos/ecrd/internal/wait"
	"github.com/ecrd-pos/ecrd/internal/wal"
	"github.com/ecrd-pos/ecrd/printer"
)

// fakePrinter records jobs and can be told to be not ready or to fail writes.
type fakePrinter struct {
	mu       sync.Mutex
	state    printer.State
	statErr  error
	failNext int // fail this many Print calls
	inPrint  int
	maxPar   int
	jobs     [][]byte
	block    chan struct{} // when set, Print waits for it
	printing chan struct{} // when set, Print signals entry
}

func newFake() *fakePrinter { return &fakePrinter{state: printer.StateOnline} }

func (f *fakePrinter) String() string { return "fake:" }
func (f *fakePrinter) Close() error   { return nil }

func (f *fakePrinter) Status(ctx context.Context) (printer.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return printer.Status{State: f.state}, f.statErr
}

func (f *fakePrinter) Print(ctx context.Context, job []byte) error {
	f.mu.Lock()
	f.inPrint++
	f.maxPar = max(f.maxPar, f.inPrint)
	block, printing := f.block, f.printing
	f.mu.Unlock()
	defer func() { f.mu.Lock(); f.inPrint--; f.mu.Unlock() }()
	if printing != nil {
		printing <- struct{}{}
	}
	if block != nil {
		<-block
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failNext > 0 {
		f.failNext--
		return errors.New("printer: wrote 3 of 10 bytes: unplugged")
	}
	f.jobs = append(f.jobs, append([]byte(nil), job...))
	return nil
}

func (f *fakePrinter) set(st printer.State) { f.mu.Lock(); f.state = st; f.mu.Unlock() }
func (f *fakePrinter) printed() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]byte(nil), f.jobs...)
}

// openSpool opens the spool kept in dir, with dir as its own state directory (and log).
func openSpool(t *testing.T, dir string, p printer.Printer, opt Options) (*Spool, error) {
	t.Helper()
	log, err := wal.Open(dir, 0)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { log.Close() })
	return Open(log, ".", p, opt)
}

func fastOpts() Options {
	return Options{Poll: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond}
}

func run(t *testing.T, s *Spool) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return stop
}

// waitPrinted waits until job id is printed, and returns what the spool then knows of it.
func waitPrinted(t *testing.T, s *Spool, id string) Info {
	t.Helper()
	var in Info
	wait.For(t, 10*time.Second, "job "+id+" printed", func() error {
		var err error
		if in, err = s.Job(id); err == nil && in.State != StatePrinted {
			err = fmt.Errorf("%+v", in)
		}
		return err
	})
	return in
}

func TestJobsPrintInOrderOneAtATime(t *testing.T) {
	p := newFake()
	s, err := openSpool(t, t.TempDir(), p, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := 0; i < 20; i++ {
		id := fmt.Sprintf("job-%02d", i)
		ids = append(ids, id)
		if _, err := s.Add(Job{ID: id, Kind: "receipt", Data: []byte(id)}); err != nil {
			t.Fatal(err)
		}
	}
	run(t, s)
	waitPrinted(t, s, ids[len(ids)-1])
	got := p.printed()
	if len(got) != len(ids) {
		t.Fatalf("printed %d jobs, want %d", len(got), len(ids))
	}
	for i, j := range got {
		if string(j) != ids[i] {
			t.Fatalf("job %d printed %q, want %q (FIFO)", i, j, ids[i])
		}
	}
	if p.maxPar != 1 {
		t.Fatalf("up to %d Print calls ran at once; jobs must never interleave", p.maxPar)
	}
}

func TestAddIsDurableAndIdempotent(t *testing.T) {
	dir := t.TempDir()
	s, err := openSpool(t, dir, newFake(), fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	in, err := s.Add(Job{ID: "STX_A.receipt", TransactionID: "STX_A", Kind: "receipt", Data: []byte("abc")})
	if err != nil {
		t.Fatal(err)
	}
	if in.State != StateQueued {
		t.Fatalf("state %s", in.State)
	}
	if _, err := os.Stat(filepath.Join(dir, "queue", "STX_A.receipt.json")); err != nil {
		t.Fatalf("job not on disk after Add returned: %v", err)
	}
	again, err := s.Add(Job{ID: "STX_A.receipt", Kind: "receipt", Data: []byte("other")})
	if err != nil || again.Bytes != 3 {
		t.Fatalf("second Add = %+v, %v; want the first job unchanged", again, err)
	}
	if n := len(s.Pending()); n != 1 {
		t.Fatalf("%d pending, want 1", n)
	}
}

func TestAddRejectsBadJobs(t *testing.T) {
	s, err := openSpool(t, t.TempDir(), newFake(), fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range []Job{
		{ID: "", Data: []byte("x")},
		{ID: "../escape", Data: []byte("x")},
		{ID: ".hidden", Data: []byte("x")},
		{ID: "a/b", Data: []byte("x")},
		{ID: "empty"},
	} {
		if _, err := s.Add(j); err == nil {
			t.Errorf("Add(%q, %d bytes) accepted", j.ID, len(j.Data))
		}
	}
}

func TestHeldWhileNotReadyPrintsOnRecovery(t *testing.T) {
	p := newFake()
	p.set(printer.StatePaperOut)
	s, err := openSpool(t, t.TempDir(), p, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	run(t, s)
	if _, err := s.Add(Job{ID: "j1", Kind: "receipt", Data: []byte("receipt")}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	in, err := s.WaitPrinted(ctx, "j1")
	if err != nil {
		t.Fatal(err)
	}
	if in.State != StateQueued || !in.Held || in.Reason == "" {
		t.Fatalf("settled as %+v; want queued and held with a reason", in)
	}
	if want := "paper_out"; !bytes.Contains([]byte(in.Reason), []byte(want)) {
		t.Fatalf("reason %q does not say %s", in.Reason, want)
	}
	if n := len(p.printed()); n != 0 {
		t.Fatalf("printed %d jobs while paper out", n)
	}
	p.set(printer.StateOnline)
	waitPrinted(t, s, "j1")
	if got := p.printed(); len(got) != 1 || string(got[0]) != "receipt" {
		t.Fatalf("printed %q", got)
	}
}

func TestUnreachablePrinterHoldsJob(t *testing.T) {
	p := newFake()
	p.statErr = errors.New("open /dev/usb/lp0: no such device")
	s, err := openSpool(t, t.TempDir(), p, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	run(t, s)
	s.Add(Job{ID: "j1", Data: []byte("x")})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	in, _ := s.WaitPrinted(ctx, "j1")
	if !in.Held || !bytes.Contains([]byte(in.Reason), []byte("no such device")) {
		t.Fatalf("got %+v; want held with the device error as reason", in)
	}
	ps := s.Status(ctx)
	if ps.Status.State != printer.StateOffline || ps.Error == "" || ps.Queued != 1 {
		t.Fatalf("status %+v", ps)
	}
}

func TestFailedWriteIsRetriedWhole(t *testing.T) {
	p := newFake()
	p.failNext = 2
	s, err := openSpool(t, t.TempDir(), p, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	run(t, s)
	s.Add(Job{ID: "j1", Data: []byte("whole job")})
	in := waitPrinted(t, s, "j1")
	if in.Attempts != 2 {
		t.Errorf("attempts = %d, want 2 failed before success", in.Attempts)
	}
	if got := p.printed(); len(got) != 1 || string(got[0]) != "whole job" {
		t.Fatalf("printed %q", got)
	}
}

func TestQueuedJobsResumeAfterRestart(t *testing.T) {
	dir := t.TempDir()
	p := newFake()
	p.set(printer.StateCoverOpen)
	s, err := openSpool(t, dir, p, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, s)
	s.Add(Job{ID: "a", Data: []byte("A")})
	s.Add(Job{ID: "b", Data: []byte("B")})
	stop()
	// A leftover temporary file from a crash inside atomicfile.WriteFile must be ignored.
	os.WriteFile(filepath.Join(dir, "queue", ".c.json.123.tmp"), []byte("{"), 0o600)

	p2 := newFake()
	s2, err := openSpool(t, dir, p2, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(s2.Pending()); n != 2 {
		t.Fatalf("%d jobs pending after restart, want 2", n)
	}
	run(t, s2)
	waitPrinted(t, s2, "b")
	if got := p2.printed(); len(got) != 2 || string(got[0]) != "A" || string(got[1]) != "B" {
		t.Fatalf("printed %q after restart, want A then B", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "queue", ".c.json.123.tmp")); !os.IsNotExist(err) {
		t.Errorf("temporary file not cleaned: %v", err)
	}
	// A third life: printed jobs stay printed.
	p3 := newFake()
	s3, err := openSpool(t, dir, p3, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(s3.Pending()); n != 0 {
		t.Fatalf("%d jobs pending after they printed", n)
	}
	if in, err := s3.Job("a"); err != nil || in.State != StatePrinted {
		t.Fatalf("job a = %+v, %v", in, err)
	}
}

func TestCrashBetweenDoneAndRemoveDoesNotReprint(t *testing.T) {
	dir := t.TempDir()
	s, err := openSpool(t, dir, newFake(), fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, s)
	s.Add(Job{ID: "a", Data: []byte("A")})
	waitPrinted(t, s, "a")
	stop()
	// Put the queue file back as if the crash came right after the done record was written.
	b, _ := os.ReadFile(filepath.Join(dir, "done", "a.json"))
	os.WriteFile(filepath.Join(dir, "queue", "a.json"), b, 0o600)
	p := newFake()
	s2, err := openSpool(t, dir, p, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(s2.Pending()); n != 0 {
		t.Fatalf("%d pending: a printed job would print again", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "queue", "a.json")); !os.IsNotExist(err) {
		t.Errorf("queue file not removed: %v", err)
	}
}

func TestCorruptJobFileIsSetAsideNotFatal(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "queue"), 0o750)
	os.WriteFile(filepath.Join(dir, "queue", "x.json"), []byte("{not json"), 0o600)
	s, err := openSpool(t, dir, newFake(), fastOpts())
	if err != nil {
		t.Fatalf("Open failed on a corrupt file: %v", err)
	}
	if n := len(s.Pending()); n != 0 {
		t.Fatalf("%d pending", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "queue", "x.json.bad")); err != nil {
		t.Fatalf("corrupt file not set aside: %v", err)
	}
}

func TestShutdownFinishesTheJobOnThePaper(t *testing.T) {
	p := newFake()
	p.block = make(chan struct{})
	p.printing = make(chan struct{}, 1)
	s, err := openSpool(t, t.TempDir(), p, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	s.Add(Job{ID: "a", Data: []byte("A")})
	s.Add(Job{ID: "b", Data: []byte("B")})
	<-p.printing // job a is on its way to the paper
	cancel()
	close(p.block)
	<-done
	if got := p.printed(); len(got) != 1 || string(got[0]) != "A" {
		t.Fatalf("printed %q; want job a finished and b left queued", got)
	}
	if in, _ := s.Job("a"); in.State != StatePrinted {
		t.Fatalf("a is %s", in.State)
	}
	if in, _ := s.Job("b"); in.State != StateQueued {
		t.Fatalf("b is %s", in.State)
	}
}

func TestPruneKeepsNewestDone(t *testing.T) {
	dir := t.TempDir()
	opt := fastOpts()
	opt.KeepDone = 10
	s, err := openSpool(t, dir, newFake(), opt)
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, s)
	for i := 0; i < 30; i++ {
		s.Add(Job{ID: fmt.Sprintf("j%02d", i), Data: []byte("x")})
		// Not an assertion's wait: the done records get distinct modification times, as
		// receipts minutes apart have, so that "the newest" is one set.
		time.Sleep(time.Millisecond)
	}
	waitPrinted(t, s, "j29")
	stop()
	if err := s.Prune(); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "done"))
	if len(ents) != 10 {
		t.Fatalf("%d done records kept, want 10", len(ents))
	}
	// What the status line counts is bounded the same way: memory does not grow with a day's
	// receipts beyond what the spool keeps.
	if n := s.PrintedSince(startOfDay(time.Now())); n != 10 {
		t.Fatalf("PrintedSince(midnight) = %d after the prune, want the 10 kept", n)
	}
	// A new life knows the printed jobs only from disk: the newest are kept, the oldest gone.
	s2, err := openSpool(t, dir, newFake(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if in, err := s2.Job("j29"); err != nil || in.State != StatePrinted {
		t.Fatalf("newest job forgotten: %+v %v", in, err)
	}
	if _, err := s2.Job("j00"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("oldest job kept: %v", err)
	}
}

// A job file that cannot be read for a while (an I/O error: here a directory stands where
// the file was) keeps its job: the worker tries again and prints it once the file reads.
// Only a file that reads but does not parse is set aside.
func TestUnreadableJobFileIsRetriedNotDropped(t *testing.T) {
	dir := t.TempDir()
	p := newFake()
	p.set(printer.StatePaperOut)
	s, err := openSpool(t, dir, p, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Add(Job{ID: "j1", Kind: "receipt", Data: []byte("receipt one")}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "queue", "j1.json")
	saved := path + ".saved"
	if err := os.Rename(path, saved); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(path, 0o750) // read(2) on it fails with EISDIR, as a bad sector fails with EIO
	stop := run(t, s)
	p.set(printer.StateOnline)
	wait.Until(t, wait.Long, "j1 held for its unreadable file", func() bool {
		in, err := s.Job("j1")
		return err == nil && in.Held && in.Reason != ""
	})
	if ids := s.Damaged(); len(ids) != 0 {
		t.Fatalf("an unreadable job was taken for damaged: %v", ids)
	}
	// The file comes back in one step (the directory and the file swap places): a worker
	// that looked between a removal and a rename would find no file at all, and rightly drop
	// the job as vanished.
	if err := unix.Renameat2(unix.AT_FDCWD, saved, unix.AT_FDCWD, path, unix.RENAME_EXCHANGE); err != nil {
		t.Fatal(err)
	}
	os.Remove(saved)
	waitPrinted(t, s, "j1")
	stop()
	if got := p.printed(); len(got) != 1 || string(got[0]) != "receipt one" {
		t.Fatalf("printed %q", got)
	}

	// The same at start-up: the file cannot be read when the spool opens.
	if _, err := s.Add(Job{ID: "j2", Kind: "receipt", Data: []byte("receipt two")}); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, "queue", "j2.json")
	os.Rename(path, saved)
	os.Mkdir(path, 0o750)
	s2, err := openSpool(t, dir, p, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	if pend := s2.Pending(); len(pend) != 1 || pend[0].ID != "j2" {
		t.Fatalf("pending after an unreadable start: %+v", pend)
	}
	os.Remove(path)
	os.Rename(saved, path)
	stop = run(t, s2)
	waitPrinted(t, s2, "j2")
	stop()
}

// A queued job file that does not parse is set aside and reported as damaged, so that its
// owner can remake it; Replace queues the remade job and removes the damaged file.
func TestDamagedJobIsReportedAndReplaced(t *testing.T) {
	dir := t.TempDir()
	p := newFake()
	os.MkdirAll(filepath.Join(dir, "queue"), 0o750)
	os.WriteFile(filepath.Join(dir, "queue", "STX_A.receipt.json"), []byte(`{"id":"STX_A.receipt","da`), 0o640)
	s, err := openSpool(t, dir, p, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Damaged(); len(got) != 1 || got[0] != "STX_A.receipt" {
		t.Fatalf("damaged %v", got)
	}
	// Still damaged after a restart: the set-aside file is the reminder.
	if s, err = openSpool(t, dir, p, fastOpts()); err != nil || len(s.Damaged()) != 1 {
		t.Fatalf("after a restart: %v, %v", s.Damaged(), err)
	}
	if _, err := s.Replace(Job{ID: "STX_A.receipt", Kind: "receipt", Data: []byte("remade")}); err != nil {
		t.Fatal(err)
	}
	if got := s.Damaged(); len(got) != 0 {
		t.Fatalf("still damaged after Replace: %v", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "queue", "STX_A.receipt.json.bad")); !os.IsNotExist(err) {
		t.Fatalf("damaged file left behind: %v", err)
	}
	stop := run(t, s)
	waitPrinted(t, s, "STX_A.receipt")
	stop()
}

// The drawer pulse goes right after the job, once; the done record keeps no pulse, and a
// restart that finds the job printed sends neither again.
func TestKickFollowsTheJobOnce(t *testing.T) {
	dir := t.TempDir()
	p := newFake()
	s, err := openSpool(t, dir, p, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, s)
	if _, err := s.Add(Job{ID: "j", Kind: "receipt", Data: []byte("receipt"), Kick: []byte("KICK")}); err != nil {
		t.Fatal(err)
	}
	waitPrinted(t, s, "j")
	stop()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := p.printed(); len(got) != 2 || string(got[0]) != "receipt" || string(got[1]) != "KICK" {
		t.Fatalf("printed %q, want the receipt then the pulse", got)
	}
	b, err := os.ReadFile(filepath.Join(dir, "done", "j.json"))
	if err != nil || bytes.Contains(b, []byte("KICK")) || bytes.Contains(b, []byte(`"kick`)) {
		t.Fatalf("done record %s, %v: the pulse must not outlive the job", b, err)
	}
	s2, err := openSpool(t, dir, p, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	stop = run(t, s2)
	if _, err := s2.Add(Job{ID: "j2", Kind: "receipt", Data: []byte("other")}); err != nil {
		t.Fatal(err)
	}
	waitPrinted(t, s2, "j2")
	stop()
	if got := p.printed(); len(got) != 3 {
		t.Fatalf("printed %q after a restart", got)
	}
}

// A pulse belongs to the life that queued its receipt. A crash (no Close) drops it: the
// receipt prints in the next life, the drawer stays shut. A clean stop hands it over: the
// next life claims it on disk before it can send it, so that if that life crashes too, the
// third sends nothing.
func TestKickBelongsToTheLifeThatQueuedIt(t *testing.T) {
	queue := func(t *testing.T, dir string) *Spool {
		t.Helper()
		p := newFake()
		p.set(printer.StatePaperOut)
		s, err := openSpool(t, dir, p, fastOpts())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Add(Job{ID: "j", Kind: "receipt", Data: []byte("receipt"), Kick: []byte("KICK")}); err != nil {
			t.Fatal(err)
		}
		return s
	}
	// printNext opens the spool as the next life with the paper back and returns what it
	// printed.
	printNext := func(t *testing.T, dir string) (*Spool, []string) {
		t.Helper()
		p := newFake()
		s, err := openSpool(t, dir, p, fastOpts())
		if err != nil {
			t.Fatal(err)
		}
		stop := run(t, s)
		waitPrinted(t, s, "j")
		stop()
		var got []string
		for _, b := range p.printed() {
			got = append(got, string(b))
		}
		return s, got
	}
	t.Run("crash", func(t *testing.T) {
		dir := t.TempDir()
		queue(t, dir) // and never closed
		if _, got := printNext(t, dir); strings.Join(got, " ") != "receipt" {
			t.Fatalf("printed %q after a crash, want the receipt and no pulse", got)
		}
	})
	t.Run("clean stop", func(t *testing.T) {
		dir := t.TempDir()
		if err := queue(t, dir).Close(); err != nil {
			t.Fatal(err)
		}
		if _, got := printNext(t, dir); strings.Join(got, " ") != "receipt KICK" {
			t.Fatalf("printed %q after a clean stop, want the receipt and its pulse", got)
		}
	})
	t.Run("clean stop, then a crash after the claim", func(t *testing.T) {
		dir := t.TempDir()
		if err := queue(t, dir).Close(); err != nil {
			t.Fatal(err)
		}
		p := newFake()
		p.set(printer.StatePaperOut)
		s2, err := openSpool(t, dir, p, fastOpts())
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, "queue", "j.json"))
		if err != nil || !bytes.Contains(b, []byte(`"kick_life":"`+s2.life+`"`)) {
			t.Fatalf("queue file after the claim: %s, %v", b, err)
		}
		// s2 dies without Close.
		if _, got := printNext(t, dir); strings.Join(got, " ") != "receipt" {
			t.Fatalf("printed %q after the claiming life crashed, want no pulse", got)
		}
	})
	t.Run("written before lives", func(t *testing.T) {
		// A queue file of an earlier version (no kick_life) was never pulsed: that version
		// pulsed only after removing the job from the queue durably.
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "queue"), 0o750)
		old := `{"id":"j","kind":"receipt","data":"cmVjZWlwdA==","kick":"S0lDSw==","seq":1,"created":"2026-11-01T10:00:00Z"}`
		if err := os.WriteFile(filepath.Join(dir, "queue", "j.json"), []byte(old), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, got := printNext(t, dir); strings.Join(got, " ") != "receipt KICK" {
			t.Fatalf("printed %q, want the receipt and its pulse", got)
		}
	})
}
