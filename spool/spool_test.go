package spool

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
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

func TestQueuedJobsResumeAfterRestart(t *testing.T) {
	dir := t.TempDir()
	p := newFake()
	p.set(printer.StateCoverOpen)
	s, err := openSpool(t, dir, p, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, s)
	for _, j := range []Job{{ID: "a", Data: []byte("A")}, {ID: "b", Data: []byte("B")}} {
		if _, err := s.Add(j); err != nil {
			t.Fatal(err)
		}
	}
	waitHeld(t, s, "b", "cover_open")
	stop()
	s.st.Close() // the process ends

	p2 := newFake()
	s2, err := openSpool(t, dir, p2, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	q, err := s2.st.QueuedJobs()
	if err != nil || len(q) != 2 || q[0].ID != "a" || q[1].ID != "b" {
		t.Fatalf("queued rows after restart: %+v, %v; want a then b", q, err)
	}
	if b, err := s2.JobData("a"); err != nil || string(b) != "A" {
		t.Fatalf("a's bytes after restart: %q, %v", b, err)
	}
	if pend := s2.Pending(); len(pend) != 2 || pend[0].ID != "a" || pend[1].ID != "b" || pend[0].Held {
		t.Fatalf("pending after restart: %+v; want a then b, not held yet", pend)
	}
	stop = run(t, s2)
	waitPrinted(t, s2, "b")
	stop()
	if got := p2.printed(); len(got) != 2 || string(got[0]) != "A" || string(got[1]) != "B" {
		t.Fatalf("printed %q after restart, want A then B", got)
	}
	if q, err := s2.st.QueuedJobs(); err != nil || len(q) != 0 {
		t.Fatalf("queued rows after printing: %+v, %v", q, err)
	}
	s2.st.Close()

	// A third life: printed jobs stay printed.
	p3 := newFake()
	s3, err := openSpool(t, dir, p3, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(s3.Pending()); n != 0 {
		t.Fatalf("%d jobs pending after they printed", n)
	}
	if in, err := s3.Job("a"); err != nil || in.State != StatePrinted || in.Printed.IsZero() {
		t.Fatalf("job a = %+v, %v", in, err)
	}
	if _, err := s3.JobData("a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("JobData of a printed job: %v, want ErrNotFound", err)
	}
}

// A queued job whose row vanished behind the spool's back (a technician's DELETE) lets the
// queue move on: it is not printed, and the spool no longer knows it.
func TestJobWhoseRowVanishedIsSkipped(t *testing.T) {
	dir := t.TempDir()
	p := newFake()
	p.set(printer.StatePaperOut)
	s, err := openSpool(t, dir, p, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	run(t, s)
	for _, j := range []Job{{ID: "gone", Data: []byte("gone")}, {ID: "next", Data: []byte("next")}} {
		if _, err := s.Add(j); err != nil {
			t.Fatal(err)
		}
	}
	waitHeld(t, s, "next", "paper_out")
	res, err := openDB(t, dir).Exec(`DELETE FROM jobs WHERE id = 'gone'`)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("deleted %d rows", n)
	}
	p.set(printer.StateOnline)
	waitPrinted(t, s, "next")
	if got := p.printed(); len(got) != 1 || string(got[0]) != "next" {
		t.Fatalf("printed %q; want only the job whose row is there", got)
	}
	if in, err := s.Job("gone"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("vanished job = %+v, %v; want ErrNotFound", in, err)
	}
	if pend := s.Pending(); len(pend) != 0 {
		t.Fatalf("pending %+v", pend)
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
	for _, j := range []Job{{ID: "a", Data: []byte("A")}, {ID: "b", Data: []byte("B")}} {
		if _, err := s.Add(j); err != nil {
			t.Fatal(err)
		}
	}
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
	if a, b := row(t, s.st, "a"), row(t, s.st, "b"); a.State != store.Printed || b.State != store.Queued || b.Bytes != 1 {
		t.Fatalf("rows a %+v, b %+v; want a printed, b queued with its byte", a, b)
	}
}

func TestPruneKeepsNewestDone(t *testing.T) {
	dir := t.TempDir()
	p := newFake()
	opt := fastOpts()
	opt.KeepDone = 10
	s, err := openSpool(t, dir, p, opt)
	if err != nil {
		t.Fatal(err)
	}
	// The worker prunes in the background every KeepDone/10 printed jobs; held off here, so
	// that the rows Prune finds are all 25 and what it leaves is its own doing.
	s.pruning.Lock()
	defer s.pruning.Unlock()
	before := time.Now()
	stop := run(t, s)
	for i := 0; i < 25; i++ {
		if _, err := s.Add(Job{ID: fmt.Sprintf("j%02d", i), Data: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	waitPrinted(t, s, "j24")
	// Queued jobs, which a prune must leave alone.
	p.set(printer.StatePaperOut)
	for i := 0; i < 3; i++ {
		if _, err := s.Add(Job{ID: fmt.Sprintf("q%d", i), Data: []byte(fmt.Sprintf("queued %d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	waitHeld(t, s, "q2", "paper_out")
	stop()

	printedRows := func(st *store.Store) []string {
		t.Helper()
		rows, err := st.RecentJobs(100)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, j := range rows {
			if j.State == store.Printed {
				ids = append(ids, j.ID)
			}
		}
		return ids
	}
	if ids := printedRows(s.st); len(ids) != 25 {
		t.Fatalf("%d printed rows before the prune, want 25: %v", len(ids), ids)
	}
	if err := s.Prune(); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := 24; i >= 15; i-- {
		want = append(want, fmt.Sprintf("j%02d", i))
	}
	if ids := printedRows(s.st); strings.Join(ids, " ") != strings.Join(want, " ") {
		t.Fatalf("printed rows kept %v, want the newest 10 %v", ids, want)
	}
	q, err := s.st.QueuedJobs()
	if err != nil || len(q) != 3 {
		t.Fatalf("queued rows after the prune: %+v, %v", q, err)
	}
	for i, j := range q {
		b, err := s.st.JobData(j.ID)
		if id, data := fmt.Sprintf("q%d", i), fmt.Sprintf("queued %d", i); j.ID != id || string(b) != data || err != nil {
			t.Fatalf("queued row %d: %s %q, %v; want %s %q", i, j.ID, b, err, id, data)
		}
	}
	// A second prune finds nothing more to forget.
	if err := s.Prune(); err != nil {
		t.Fatal(err)
	}
	if n := len(printedRows(s.st)); n != 10 {
		t.Fatalf("%d printed rows after a second prune, want 10", n)
	}
	// What the status line counts is bounded the same way.
	if n := s.PrintedSince(before); n != 10 {
		t.Fatalf("PrintedSince(start of the test) = %d after the prune, want the 10 kept", n)
	}
	s.st.Close()
	// A new life knows the printed jobs only from the store: the newest are kept, the oldest
	// gone; the queued ones wait.
	s2, err := openSpool(t, dir, newFake(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if in, err := s2.Job("j24"); err != nil || in.State != StatePrinted {
		t.Fatalf("newest job forgotten: %+v %v", in, err)
	}
	if _, err := s2.Job("j00"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("oldest job kept: %v", err)
	}
	if pend := s2.Pending(); len(pend) != 3 || pend[0].ID != "q0" {
		t.Fatalf("pending in the new life: %+v", pend)
	}
}

// A capture commits its journal record and its receipt jobs in one transaction (Stage,
// AddTo inside the transaction, Enqueue after the commit). The jobs are rows only if the
// transaction commits, and the worker hears of them only on Enqueue. A staged job whose id
// the store holds already (printed here) is left alone, and Enqueue ignores it.
func TestStagedJobsAreQueuedOnlyAfterCommit(t *testing.T) {
	p := newFake()
	s, err := openSpool(t, t.TempDir(), p, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	st := s.st
	run(t, s)
	staged, err := s.Stage(
		Job{ID: "STX_A.receipt", TransactionID: "STX_A", Kind: "receipt", Data: []byte("customer")},
		Job{ID: "STX_A.merchant", TransactionID: "STX_A", Kind: "merchant", Data: []byte("merchant")})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	capture := &store.Capture{ID: "STX_A", Phase: "captured", Created: now, Updated: now,
		Answer: []byte(`{"status":"ok"}`), TransID: "T1", Spooled: true}

	// Rolled back: neither the capture's row nor the jobs'.
	abort := errors.New("abort")
	err = st.Flushed(func(tx *store.Tx) error {
		if err := tx.PutCapture(capture); err != nil {
			return err
		}
		if err := staged.AddTo(tx); err != nil {
			return err
		}
		return abort
	})
	if !errors.Is(err, abort) {
		t.Fatalf("Flushed = %v, want the abort", err)
	}
	if _, err := st.Capture("STX_A"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("capture row after a rollback: %v", err)
	}
	if _, err := st.Job("STX_A.receipt"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("job row after a rollback: %v", err)
	}

	// Committed, with the capture's row.
	err = st.Flushed(func(tx *store.Tx) error {
		if err := tx.PutCapture(capture); err != nil {
			return err
		}
		if err := staged.AddTo(tx); err != nil {
			return err
		}
		// Until the commit nobody sees the rows, and the worker has nothing.
		if _, err := st.Job("STX_A.receipt"); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("job row seen before the commit: %v", err)
		}
		if pend := s.Pending(); len(pend) != 0 {
			return fmt.Errorf("pending before the commit: %+v", pend)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := st.Capture("STX_A"); err != nil || !c.Spooled {
		t.Fatalf("capture row after the commit: %+v, %v", c, err)
	}
	for _, id := range []string{"STX_A.receipt", "STX_A.merchant"} {
		if j := row(t, st, id); j.State != store.Queued || j.TransactionID != "STX_A" {
			t.Fatalf("row %+v after the commit; want queued", j)
		}
	}
	// Committed but not enqueued: the worker does not print them. A job added after them
	// prints, and alone: had they been in the queue, they would have printed first.
	if pend := s.Pending(); len(pend) != 0 {
		t.Fatalf("pending before Enqueue: %+v", pend)
	}
	if _, err := s.Add(Job{ID: "probe", Kind: "lines", Data: []byte("probe")}); err != nil {
		t.Fatal(err)
	}
	waitPrinted(t, s, "probe")
	if got := p.printed(); len(got) != 1 || string(got[0]) != "probe" {
		t.Fatalf("printed %q before Enqueue; want only the probe", got)
	}
	staged.Enqueue()
	waitPrinted(t, s, "STX_A.merchant")
	if got := p.printed(); len(got) != 3 || string(got[1]) != "customer" || string(got[2]) != "merchant" {
		t.Fatalf("printed %q; want the probe, then the customer's and the merchant's copy", got)
	}

	// Staged again (a capture retried after a crash between commit and reply): the printed
	// receipt is left alone, the new reprint is queued. The paper is out meanwhile, so that
	// what Enqueue queued stays to be seen.
	p.set(printer.StatePaperOut)
	again, err := s.Stage(
		Job{ID: "STX_A.receipt", TransactionID: "STX_A", Kind: "receipt", Data: []byte("again")},
		Job{ID: "STX_A.reprint-1", TransactionID: "STX_A", Kind: "reprint", Data: []byte("reprint")})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Flushed(again.AddTo); err != nil {
		t.Fatal(err)
	}
	if j := row(t, st, "STX_A.receipt"); j.State != store.Printed || j.Bytes != 8 || len(j.Data) != 0 {
		t.Fatalf("printed row after AddTo of its id: %+v; want it unchanged", j)
	}
	again.Enqueue()
	if pend := s.Pending(); len(pend) != 1 || pend[0].ID != "STX_A.reprint-1" {
		t.Fatalf("pending after Enqueue %+v; want the reprint only", pend)
	}
	if in, err := s.Job("STX_A.receipt"); err != nil || in.State != StatePrinted {
		t.Fatalf("printed job after Enqueue of its id: %+v, %v", in, err)
	}
	p.set(printer.StateOnline)
	waitPrinted(t, s, "STX_A.reprint-1")
	if got := p.printed(); len(got) != 4 || string(got[3]) != "reprint" {
		t.Fatalf("printed %q; want the reprint, and the receipt not again", got)
	}
}

// Jobs committed by concurrent callers may reach Enqueue in the other order; the queue is
// still the order of their commits (their rows' seq): the order a restart would print them in.
func TestQueueKeepsCommitOrder(t *testing.T) {
	p := newFake()
	s, err := openSpool(t, t.TempDir(), p, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	first, err := s.Stage(Job{ID: "first", Data: []byte("first")})
	if err != nil {
		t.Fatal(err)
	}
	second, err := s.Stage(Job{ID: "second", Data: []byte("second")})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.st.Flushed(first.AddTo); err != nil {
		t.Fatal(err)
	}
	if err := s.st.Flushed(second.AddTo); err != nil {
		t.Fatal(err)
	}
	second.Enqueue()
	first.Enqueue()
	q, err := s.st.QueuedJobs()
	if err != nil || len(q) != 2 || q[0].ID != "first" {
		t.Fatalf("queued rows %+v, %v", q, err)
	}
	if pend := s.Pending(); len(pend) != 2 || pend[0].ID != "first" || pend[1].ID != "second" {
		t.Fatalf("pending %+v; want first, then second, as committed", pend)
	}
	run(t, s)
	waitPrinted(t, s, "second")
	if got := p.printed(); len(got) != 2 || string(got[0]) != "first" {
		t.Fatalf("printed %q; want first, then second", got)
	}
}

// A job that printed but whose row could not be marked printed (a full disk: here a trigger
// refuses the update) is not printed again in this life, and its drawer pulse was sent; its
// row stays queued, so the next life prints it once more (a duplicate, never a loss) without
// the pulse, which belonged to the first life.
func TestPrintedButNotMarkedPrintsOnceMoreAfterRestart(t *testing.T) {
	dir := t.TempDir()
	p := newFake()
	s, err := openSpool(t, dir, p, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	db := openDB(t, dir)
	if _, err := db.Exec(`CREATE TRIGGER disk_full BEFORE UPDATE OF state ON jobs WHEN NEW.state = 'printed'
BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`); err != nil {
		t.Fatal(err)
	}
	stop := run(t, s)
	if _, err := s.Add(Job{ID: "j", Kind: "receipt", Data: []byte("receipt"), Kick: []byte("KICK")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Add(Job{ID: "j2", Kind: "lines", Data: []byte("two")}); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, wait.Long, "both jobs on paper and the queue empty", func() bool {
		return len(p.printed()) >= 3 && len(s.Pending()) == 0
	})
	stop()
	if got := bytes.Join(p.printed(), []byte(" ")); string(got) != "receipt KICK two" {
		t.Fatalf("printed %q; want each job once and the pulse", got)
	}
	if j := row(t, s.st, "j"); j.State != store.Queued || j.KickLife != pulseSent {
		t.Fatalf("row of the unmarked job %+v; want queued, its pulse noted sent", j)
	}
	s.st.Close()
	if _, err := db.Exec(`DROP TRIGGER disk_full`); err != nil { // room on the disk again
		t.Fatal(err)
	}

	p2 := newFake()
	s2, err := openSpool(t, dir, p2, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	run(t, s2)
	waitPrinted(t, s2, "j2")
	if got := bytes.Join(p2.printed(), []byte(" ")); string(got) != "receipt two" {
		t.Fatalf("printed %q in the next life; want both jobs again, without the pulse", got)
	}
	if j := row(t, s2.st, "j"); j.State != store.Printed {
		t.Fatalf("row %+v; want printed", j)
	}
}

func TestPrintedSinceCountsPrintedRows(t *testing.T) {
	p := newFake()
	s, err := openSpool(t, t.TempDir(), p, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	run(t, s)
	var at []time.Time
	for _, id := range []string{"a", "b", "c"} {
		if _, err := s.Add(Job{ID: id, Data: []byte(id)}); err != nil {
			t.Fatal(err)
		}
		waitPrinted(t, s, id)
		at = append(at, row(t, s.st, id).Printed)
	}
	if !at[0].Before(at[1]) || !at[1].Before(at[2]) {
		t.Fatalf("printed times %v not increasing", at)
	}
	// A queued job is not counted.
	p.set(printer.StatePaperOut)
	if _, err := s.Add(Job{ID: "d", Data: []byte("d")}); err != nil {
		t.Fatal(err)
	}
	waitHeld(t, s, "d", "paper_out")
	elsewhere := time.FixedZone("UTC+5", 5*3600)
	for _, c := range []struct {
		since time.Time
		want  int
	}{
		{at[0].Add(-time.Hour), 3},
		{at[0], 3},
		{at[1], 2}, // at t counts
		{at[1].Add(time.Nanosecond), 1},
		{at[1].In(elsewhere), 2}, // the same instant in another zone
		{at[2], 1},
		{at[2].Add(time.Nanosecond), 0},
	} {
		if n := s.PrintedSince(c.since); n != c.want {
			t.Errorf("PrintedSince(%v) = %d, want %d", c.since, n, c.want)
		}
	}
}

func TestRecentListsNewestFirst(t *testing.T) {
	p := newFake()
	s, err := openSpool(t, t.TempDir(), p, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	run(t, s)
	for _, id := range []string{"a", "b"} {
		if _, err := s.Add(Job{ID: id, Kind: "receipt", Data: []byte(id)}); err != nil {
			t.Fatal(err)
		}
	}
	waitPrinted(t, s, "b")
	p.set(printer.StatePaperOut)
	for _, id := range []string{"c", "d"} {
		if _, err := s.Add(Job{ID: id, Kind: "receipt", Data: []byte(id + id)}); err != nil {
			t.Fatal(err)
		}
	}
	waitHeld(t, s, "d", "paper_out")
	waitHeld(t, s, "c", "paper_out")

	got, err := s.Recent(3)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, in := range got {
		ids = append(ids, in.ID)
	}
	if strings.Join(ids, " ") != "d c b" {
		t.Fatalf("Recent(3) = %v, want d c b", ids)
	}
	for _, in := range got[:2] {
		if in.State != StateQueued || !in.Held || !strings.Contains(in.Reason, "paper_out") || in.Bytes != 2 {
			t.Fatalf("queued job in Recent: %+v; want held, its reason and 2 bytes", in)
		}
	}
	if b := got[2]; b.State != StatePrinted || b.Held || b.Reason != "" || b.Printed.IsZero() || b.Bytes != 1 {
		t.Fatalf("printed job in Recent: %+v", b)
	}
	all, err := s.Recent(10)
	if err != nil || len(all) != 4 || all[3].ID != "a" || all[3].State != StatePrinted {
		t.Fatalf("Recent(10) = %+v, %v; want d c b a", all, err)
	}
}

// The drawer pulse goes right after the job, once; the printed row keeps neither bytes nor
// pulse, and a restart that finds the job printed sends neither again.
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
	if j := row(t, s.st, "j"); j.State != store.Printed || len(j.Kick) != 0 || j.KickLife != "" || j.Bytes != len("receipt") {
		t.Fatalf("printed row %+v: the pulse and the bytes must not outlive the job, their length must", j)
	}
	var dataNull, kickNull, lifeNull bool
	err = openDB(t, dir).QueryRow(`SELECT data IS NULL, kick IS NULL, kick_life IS NULL FROM jobs WHERE id = 'j'`).
		Scan(&dataNull, &kickNull, &lifeNull)
	if err != nil || !dataNull || !kickNull || !lifeNull {
		t.Fatalf("printed row: data, kick, kick_life NULL = %v %v %v, %v; want all NULL", dataNull, kickNull, lifeNull, err)
	}
	s.st.Close()
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
	if got := p.printed(); len(got) != 3 || string(got[2]) != "other" {
		t.Fatalf("printed %q after a restart; want only the new job more", got)
	}
}

// A pulse belongs to the life that queued its receipt. A crash (no Close) drops it: the
// receipt prints in the next life, the drawer stays shut. A clean stop hands it over: the
// next life claims it in the store before it can send it, so that if that life crashes too,
// the third sends nothing.
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
		if j := row(t, s.st, "j"); string(j.Kick) != "KICK" || j.KickLife != s.life {
			t.Fatalf("queued row %+v: want the pulse, owned by the life %s", j, s.life)
		}
		return s
	}
	// cleanStop closes s (handing its pulses over) and its store, as a clean exit does.
	cleanStop := func(t *testing.T, s *Spool) {
		t.Helper()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if j := row(t, s.st, "j"); string(j.Kick) != "KICK" || j.KickLife != "" {
			t.Fatalf("row after Close %+v: want the pulse, handed over", j)
		}
		s.st.Close()
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
		if j := row(t, s.st, "j"); len(j.Kick) != 0 || j.KickLife != "" {
			t.Fatalf("printed row %+v still has a pulse", j)
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
		cleanStop(t, queue(t, dir))
		if _, got := printNext(t, dir); strings.Join(got, " ") != "receipt KICK" {
			t.Fatalf("printed %q after a clean stop, want the receipt and its pulse", got)
		}
	})
	t.Run("clean stop, then a crash after the claim", func(t *testing.T) {
		dir := t.TempDir()
		cleanStop(t, queue(t, dir))
		p := newFake()
		p.set(printer.StatePaperOut)
		s2, err := openSpool(t, dir, p, fastOpts())
		if err != nil {
			t.Fatal(err)
		}
		// Claimed, and committed, by the time Open returned: another connection sees it.
		var life sql.NullString
		if err := openDB(t, dir).QueryRow(`SELECT kick_life FROM jobs WHERE id = 'j'`).Scan(&life); err != nil || life.String != s2.life {
			t.Fatalf("kick_life after the claim: %+v, %v; want %s", life, err, s2.life)
		}
		// s2 dies without Close.
		if _, got := printNext(t, dir); strings.Join(got, " ") != "receipt" {
			t.Fatalf("printed %q after the claiming life crashed, want no pulse", got)
		}
	})
	// A queued row with a pulse and no life (NULL, or '' as an older version's import may
	// write it) is handed over: the next life claims it and sends it.
	for _, c := range []struct {
		name string
		life any
	}{{"no life (NULL)", nil}, {"no life ('')", ""}} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			st, err := store.Open(dir) // the schema
			if err != nil {
				t.Fatal(err)
			}
			st.Close()
			_, err = openDB(t, dir).Exec(`INSERT INTO jobs (id, kind, state, data, kick, kick_life, created)
VALUES ('j', 'receipt', 'queued', ?, ?, ?, '2026-11-01T10:00:00Z')`, []byte("receipt"), []byte("KICK"), c.life)
			if err != nil {
				t.Fatal(err)
			}
			if _, got := printNext(t, dir); strings.Join(got, " ") != "receipt KICK" {
				t.Fatalf("printed %q, want the receipt and its pulse", got)
			}
		})
	}
}
