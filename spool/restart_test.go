package spool

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/ecrd-pos/ecrd/internal/wait"
	"github.com/ecrd-pos/ecrd/printer"
	"github.com/ecrd-pos/ecrd/store"
)

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
