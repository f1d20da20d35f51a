package store

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"
)

func TestRollback(t *testing.T) {
	s := open(t)
	now := time.Now()
	put(t, s, &Capture{ID: "keep", Phase: "intent", Unfinished: true, Created: now, Updated: now})
	f0, u0 := s.Commits()
	boom := errors.New("boom")
	for _, commit := range []func(func(*Tx) error) error{s.Flushed, s.Unflushed} {
		err := commit(func(tx *Tx) error {
			c := fullCapture("T1")
			if err := tx.PutCapture(c); err != nil {
				return err
			}
			if err := tx.PutCapture(&Capture{ID: "keep", Phase: "refused", Created: now, Updated: now}); err != nil {
				return err
			}
			if err := tx.DeleteCapture("keep"); err != nil {
				return err
			}
			if _, err := tx.AddJob(&Job{ID: "j1", TransactionID: "T1", Kind: "receipt", Data: []byte("x"), Created: now}); err != nil {
				return err
			}
			if err := tx.PutMeta("m", []byte("v")); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("commit returned %v, want boom", err)
		}
		if _, err := s.Capture("T1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("rolled-back capture is there: %v", err)
		}
		if c, err := s.Capture("keep"); err != nil || c.Phase != "intent" {
			t.Errorf("rolled-back change to another capture: %+v, %v", c, err)
		}
		if _, err := s.Job("j1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("rolled-back job is there: %v", err)
		}
		if _, err := s.Meta("m"); !errors.Is(err, ErrNotFound) {
			t.Errorf("rolled-back meta is there: %v", err)
		}
	}
	// A statement that fails in the middle takes the ones before it along.
	err := s.Flushed(func(tx *Tx) error {
		if _, err := tx.AddJob(&Job{ID: "j2", Kind: "receipt", Data: []byte("x"), Created: now}); err != nil {
			return err
		}
		return tx.PutCapture(&Capture{ID: "bad", Phase: "captured", Unfinished: true, Created: now, Updated: now})
	})
	if err == nil {
		t.Fatal("a captured row without answer was written")
	}
	if _, err := s.Job("j2"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the job before the failed statement is there: %v", err)
	}
	if f, u := s.Commits(); f != f0 || u != u0 {
		t.Errorf("commits went from %d/%d to %d/%d on failed transactions", f0, u0, f, u)
	}
	// The writer is not left inside a transaction (nor held by one: the next commit would
	// wait for its connection forever).
	next := make(chan error, 1)
	go func() { next <- s.Flushed(func(tx *Tx) error { return tx.PutCapture(fullCapture("after")) }) }()
	select {
	case err := <-next:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the commit after a rolled-back one hangs: the writer's connection is still held")
	}
	unflushed(t, s, func(tx *Tx) error { return tx.PutMeta("m", []byte("v")) })
	unflushed(t, s, func(tx *Tx) error { return tx.PutMeta("m", []byte("w")) })
	if f, u := s.Commits(); f != f0+1 || u != u0+2 {
		t.Errorf("commits %d/%d, want %d/%d", f, u, f0+1, u0+2)
	}
	// A reopened store sees only what was committed.
	s.Close()
	s2, err := Open(filepath.Dir(s.Path()))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := s2.Capture("after"); err != nil {
		t.Error(err)
	}
	if _, err := s2.Capture("T1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("reopened: rolled-back capture: %v", err)
	}
	if f, u := s2.Commits(); f != 0 || u != 0 {
		t.Errorf("a new store counts %d/%d commits", f, u)
	}
}

// The synchronous level is the connection's: read it inside the transaction, on the
// transaction's own connection, where the commit will use it.
func TestSynchronousLevel(t *testing.T) {
	s := open(t)
	var ops []string
	s.Observe = func(op string, d time.Duration, err error) {
		if err != nil || d < 0 {
			t.Errorf("observe %s: %v %v", op, d, err)
		}
		ops = append(ops, op)
	}
	level := func(tx *Tx) int {
		var n int
		if err := tx.tx.QueryRow("PRAGMA synchronous").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	var mode string
	if err := s.w.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode %q, %v; want wal", mode, err)
	}
	// Alternate, so that a level left over from the previous commit would show.
	for i, flush := range []bool{true, false, false, true, false, true} {
		var got int
		fn := func(tx *Tx) error {
			got = level(tx)
			return tx.PutMeta("k", []byte{byte(i)})
		}
		if flush {
			flushed(t, s, fn)
		} else {
			unflushed(t, s, fn)
		}
		want := 1 // NORMAL
		if flush {
			want = 2 // FULL
		}
		if got != want {
			t.Errorf("commit %d (flushed %v): synchronous = %d, want %d", i, flush, got, want)
		}
	}
	if w := []string{"fsync", "commit", "commit", "fsync", "commit", "fsync"}; !reflect.DeepEqual(ops, w) {
		t.Errorf("observed %v, want %v", ops, w)
	}
	if f, u := s.Commits(); f != 3 || u != 3 {
		t.Errorf("commits %d/%d, want 3/3", f, u)
	}
}

func TestConcurrent(t *testing.T) {
	s := open(t)
	const workers, each = 8, 15
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := func() error {
				for i := range each {
					id := fmt.Sprintf("w%d-%03d", w, i)
					c := fullCapture(id)
					var seq int64
					err := s.Flushed(func(tx *Tx) error {
						if err := tx.PutCapture(c); err != nil {
							return err
						}
						j := &Job{ID: id, TransactionID: id, Kind: "receipt", Data: []byte(id), Created: time.Now()}
						if _, err := tx.AddJob(j); err != nil {
							return err
						}
						seq = j.Seq
						return nil
					})
					if err != nil {
						return err
					}
					got, err := s.Capture(id)
					if err != nil {
						return err
					}
					if got.ID != id || !bytes.Equal(got.Answer, c.Answer) {
						return fmt.Errorf("read back %s: %+v", id, got)
					}
					if b, err := s.JobData(id); err != nil || string(b) != id {
						return fmt.Errorf("job data %s: %q, %v", id, b, err)
					}
					if _, err := s.QueuedJobs(); err != nil {
						return err
					}
					if _, err := s.UnfinishedCaptures(); err != nil {
						return err
					}
					err = s.Unflushed(func(tx *Tx) error { return tx.MarkPrinted(id, time.Now(), 1) })
					if err != nil {
						return err
					}
					if j, err := s.Job(id); err != nil || j.State != Printed || j.Seq != seq {
						return fmt.Errorf("job %s after print: %+v, %v", id, j, err)
					}
				}
				return nil
			}()
			if err != nil {
				errs <- fmt.Errorf("worker %d: %w", w, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	all, err := s.UnfinishedCaptures()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != workers*each {
		t.Errorf("%d captures, want %d", len(all), workers*each)
	}
	jobs, err := s.RecentJobs(1000)
	if err != nil {
		t.Fatal(err)
	}
	seqs := map[int64]bool{}
	for _, j := range jobs {
		if j.State != Printed || seqs[j.Seq] {
			t.Errorf("job %+v", j)
		}
		seqs[j.Seq] = true
	}
	if len(jobs) != workers*each {
		t.Errorf("%d jobs, want %d", len(jobs), workers*each)
	}
	if f, u := s.Commits(); f != workers*each || u != workers*each {
		t.Errorf("commits %d/%d, want %d each", f, u, workers*each)
	}
	if n, err := s.PrintedSince(time.Time{}.Add(time.Nanosecond)); err != nil || n != workers*each {
		t.Errorf("PrintedSince: %d, %v", n, err)
	}
}

// TestPanicInTransaction: a panic in fn reaches the caller, leaves nothing, and leaves the
// store able to commit: the writer's one connection is not held by a transaction nobody ends.
func TestPanicInTransaction(t *testing.T) {
	s := open(t)
	done := make(chan any, 1)
	go func() {
		defer func() { done <- recover() }()
		s.Flushed(func(tx *Tx) error {
			if err := tx.PutCapture(fullCapture("T1")); err != nil {
				return err
			}
			panic("bug in a caller")
		})
	}()
	select {
	case p := <-done:
		if p != "bug in a caller" {
			t.Fatalf("recovered %v, want the caller's panic", p)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Flushed hangs after a panic in fn: the transaction holds the writer's connection")
	}
	next := make(chan error, 1)
	go func() { next <- s.Unflushed(func(tx *Tx) error { return tx.PutMeta("k", []byte("v")) }) }()
	select {
	case err := <-next:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the commit after a panic hangs")
	}
	if _, err := s.Capture("T1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the panicked transaction's row is there: %v", err)
	}
}
