package spool

import (
	"sync"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/internal/wait"
)

// TestObserveSeesPrintedAndFailedJobs: the hook that feeds ecrd_print_jobs_total hears
// every failed write and every printed job, and nothing for a job merely held.
func TestObserveSeesPrintedAndFailedJobs(t *testing.T) {
	p := newFake()
	p.failNext = 1
	var mu sync.Mutex
	var seen []string
	opt := fastOpts()
	opt.Observe = func(in Info, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			seen = append(seen, in.ID+" failed")
		} else {
			seen = append(seen, in.ID+" "+string(in.State))
		}
	}
	s, err := openSpool(t, t.TempDir(), p, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer run(t, s)()
	before := time.Now()
	if _, err := s.Add(Job{ID: "a", Kind: "receipt", Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	waitPrinted(t, s, "a")
	// The hook runs just after the job is marked printed.
	wait.Until(t, wait.Long, "the hook to hear both attempts", func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) >= 2 })
	mu.Lock()
	got := append([]string(nil), seen...)
	mu.Unlock()
	if len(got) != 2 || got[0] != "a failed" || got[1] != "a printed" {
		t.Fatalf("observed %q, want a failed, a printed", got)
	}
	if n := s.PrintedSince(before); n != 1 {
		t.Fatalf("PrintedSince(before) = %d, want 1", n)
	}
	if n := s.PrintedSince(time.Now().Add(time.Second)); n != 0 {
		t.Fatalf("PrintedSince(future) = %d, want 0", n)
	}
	// A prune keeps the printed row (one of the KeepDone newest): still counted, once.
	if err := s.Prune(); err != nil {
		t.Fatal(err)
	}
	if n := s.PrintedSince(before); n != 1 {
		t.Fatalf("PrintedSince(before) = %d after a prune, want 1", n)
	}
	if st := s.LastStatus(); st.Status.State != "online" || st.Checked.IsZero() {
		t.Fatalf("LastStatus = %+v, want online and checked", st)
	}
}

// TestAliveTellsAStuckWorker: a worker waiting for jobs is alive; one whose Print ignores
// its deadline (a driver stuck in the kernel) is reported stuck once PrintTimeout and the
// slack have passed; a stopped worker is not running.
func TestAliveTellsAStuckWorker(t *testing.T) {
	p := newFake()
	opt := fastOpts()
	opt.PrintTimeout = 50 * time.Millisecond
	s, err := openSpool(t, t.TempDir(), p, opt)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Alive(time.Now()); err == nil {
		t.Fatal("Alive before Run: want an error")
	}
	stop := run(t, s)
	wait.Until(t, wait.Long, "the worker alive", func() bool { return s.Alive(time.Now()) == nil })
	// Idle for many polls: the loop came round again and again (each turn moves when it is
	// next due), and it is still alive.
	first := time.Duration(s.due.Load())
	wait.Until(t, wait.Long, "the idle worker to come round its loop for ten polls", func() bool {
		return time.Duration(s.due.Load()) >= first+10*opt.Poll
	})
	if err := s.Alive(time.Now()); err != nil {
		t.Fatalf("idle worker: %v", err)
	}

	p.mu.Lock()
	p.block = make(chan struct{})
	p.printing = make(chan struct{}, 1)
	p.mu.Unlock()
	if _, err := s.Add(Job{ID: "stuck", Kind: "receipt", Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	<-p.printing
	if err := s.Alive(time.Now()); err != nil {
		t.Fatalf("worker printing within its timeout: %v", err)
	}
	// Past PrintTimeout plus the second of slack the worker is overdue.
	if err := s.Alive(time.Now().Add(opt.PrintTimeout + 2*time.Second)); err == nil {
		t.Fatal("worker stuck in Print past its deadline: want an error")
	}
	close(p.block)
	waitPrinted(t, s, "stuck")
	wait.Until(t, wait.Long, "the worker alive again", func() bool { return s.Alive(time.Now()) == nil })
	stop()
	if err := s.Alive(time.Now()); err == nil {
		t.Fatal("Alive after Run returned: want an error")
	}
}
