package spool

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/internal/wait"
	"github.com/ecrd-pos/ecrd/printer"
	"github.com/ecrd-pos/ecrd/store"
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

// openSpool opens the state database in dir (closed when the test ends) and the spool on it.
// A test that plays a restart opens it again on the same dir: a new store, as a new process
// has.
func openSpool(t *testing.T, dir string, p printer.Printer, opt Options) (*Spool, error) {
	t.Helper()
	st, err := store.Open(dir)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { st.Close() })
	return Open(st, p, opt)
}

// openDB opens the database in dir behind the spool's back, as a technician's sqlite3 would:
// for what a test must see or change below the store's reads and writes.
func openDB(t *testing.T, dir string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, store.File)+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// row reads job id's row through the store.
func row(t *testing.T, st *store.Store, id string) *store.Job {
	t.Helper()
	j, err := st.Job(id)
	if err != nil {
		t.Fatalf("row of job %s: %v", id, err)
	}
	return j
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
	// The rows agree: every job printed, in the order it was added.
	var last time.Time
	for _, id := range ids {
		j := row(t, s.st, id)
		if j.State != store.Printed || !j.Printed.After(last) {
			t.Fatalf("row %+v: want printed after %v", j, last)
		}
		last = j.Printed
	}
}

func TestAddIsDurableAndIdempotent(t *testing.T) {
	dir := t.TempDir()
	s, err := openSpool(t, dir, newFake(), fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	f0, u0 := s.st.Commits()
	in, err := s.Add(Job{ID: "STX_A.receipt", TransactionID: "STX_A", Kind: "receipt", Data: []byte("abc")})
	if err != nil {
		t.Fatal(err)
	}
	if in.State != StateQueued || in.Bytes != 3 || in.TransactionID != "STX_A" {
		t.Fatalf("Add = %+v", in)
	}
	if f, u := s.st.Commits(); f-f0 != 1 || u != u0 {
		t.Fatalf("Add committed %d flushed and %d unflushed transactions; want one flush", f-f0, u-u0)
	}
	// Committed when Add returned: another connection to the file (a new store, as the next
	// process has) reads the row and its bytes.
	other, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	j := row(t, other, "STX_A.receipt")
	if j.State != store.Queued || j.TransactionID != "STX_A" || j.Kind != "receipt" || j.Bytes != 3 {
		t.Fatalf("row after Add: %+v", j)
	}
	if b, err := other.JobData("STX_A.receipt"); err != nil || string(b) != "abc" {
		t.Fatalf("row's bytes %q, %v", b, err)
	}

	again, err := s.Add(Job{ID: "STX_A.receipt", Kind: "receipt", Data: []byte("other")})
	if err != nil || again.Bytes != 3 || again.TransactionID != "STX_A" {
		t.Fatalf("second Add = %+v, %v; want the first job unchanged", again, err)
	}
	if b, err := other.JobData("STX_A.receipt"); err != nil || string(b) != "abc" {
		t.Fatalf("row's bytes after the second Add: %q, %v", b, err)
	}
	if q, err := other.QueuedJobs(); err != nil || len(q) != 1 || q[0].Seq != j.Seq {
		t.Fatalf("queued rows %+v, %v; want the one", q, err)
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
	if rows, err := s.st.RecentJobs(10); err != nil || len(rows) != 0 {
		t.Fatalf("rows after refused jobs: %+v, %v", rows, err)
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
	if _, err := s.Add(Job{ID: "j1", Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
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
	if _, err := s.Add(Job{ID: "j1", Data: []byte("whole job")}); err != nil {
		t.Fatal(err)
	}
	// A printed job's attempts are those its row records: the two that failed and the one
	// that printed.
	in := waitPrinted(t, s, "j1")
	if in.Attempts != 3 {
		t.Errorf("attempts = %d, want 3 (2 failed, then the one that printed)", in.Attempts)
	}
	if j := row(t, s.st, "j1"); j.Attempts != 3 {
		t.Errorf("row's attempts = %d, want 3", j.Attempts)
	}
	if got := p.printed(); len(got) != 1 || string(got[0]) != "whole job" {
		t.Fatalf("printed %q", got)
	}
}
