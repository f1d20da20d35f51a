package spool

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/printer"
	"github.com/ecrd-pos/ecrd/store"
)

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
