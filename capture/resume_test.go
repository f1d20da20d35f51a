package capture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/internal/wait"
	"github.com/ecrd-pos/ecrd/secupay/secupaytest"
	"github.com/ecrd-pos/ecrd/spool"
)

func TestResumeSpoolsAndResolves(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	// Life 1 died after journaling the answer, before spooling: simulate by writing the record.
	captured := "STX_RESUMECAPTURED"
	e.fake.Add(`{"id":"` + captured + `"}`)
	tx, err := e.client.CaptureCash(context.Background(), captured)
	if err != nil {
		t.Fatal(err)
	}
	e.journal.PutFlushed(&Record{TransactionID: captured, Phase: PhaseCaptured, Attempts: 1, Answer: tx.Raw})
	// Life 1 died after sending start/cash (secupay captured) before journaling the answer.
	lost := "STX_RESUMELOST"
	e.fake.Add(`{"id":"` + lost + `"}`)
	if _, err := e.client.CaptureCash(context.Background(), lost); err != nil {
		t.Fatal(err)
	}
	e.journal.PutFlushed(&Record{TransactionID: lost, Phase: PhaseIntent, Attempts: 1})
	// And one whose start/cash never left.
	never := "STX_RESUMENEVER"
	e.fake.Add(`{"id":"` + never + `"}`)
	e.journal.PutFlushed(&Record{TransactionID: never, Phase: PhaseIntent, Attempts: 1})

	e.svc.Resume(context.Background())
	for _, id := range []string{captured, lost} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		in, err := e.spool.WaitPrinted(ctx, id+".receipt")
		cancel()
		if err != nil || in.State != spool.StatePrinted {
			t.Fatalf("%s: %+v, %v", id, in, err)
		}
	}
	if n := e.receipts(); n != 2 {
		t.Fatalf("%d receipts after resume, want 2", n)
	}
	if e.fake.Calls().StartCash[never] != 0 {
		t.Fatal("resume sent start/cash")
	}
	if rec, _ := e.journal.Get(never); rec.Phase != PhaseIntent {
		t.Fatalf("untouched transaction's record changed to %s", rec.Phase)
	}
	// Resuming again prints nothing more.
	e.svc.Resume(context.Background())
	if n := e.receipts(); n != 2 {
		t.Fatalf("%d receipts after a second resume", n)
	}
}

func TestResolverFinishesALostCaptureWithoutThePOS(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	// secupay captures but the answer is cut, and the read-back fails too: the POS hears 504.
	e.fake.Fault(secupaytest.Fault{Op: "start", ID: seed, Cut: true, CaptureFirst: true})
	e.fake.Fault(secupaytest.Fault{Op: "get", ID: seed, Cut: true})
	if _, err := e.svc.Capture(context.Background(), seed); !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("err = %v", err)
	}
	if n := e.svc.Unfinished(); n != 1 {
		t.Fatalf("%d unfinished, want the lost capture", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.svc.RunResolver(ctx, 5*time.Millisecond); close(done) }()
	defer func() { cancel(); <-done }()
	// The spool says when (not the printer file: the bytes land before the job is marked done).
	e.waitPrinted(t, seed+".receipt")
	if n := e.receipts(); n != 1 {
		t.Fatalf("%d receipts", n)
	}
	wait.For(t, 10*time.Second, "the lost capture finished", func() error {
		if n := e.svc.Unfinished(); n != 0 {
			return fmt.Errorf("%d still unfinished", n)
		}
		return nil
	})
	if n := e.fake.Calls().StartCash[seed]; n != 1 {
		t.Fatalf("%d start/cash calls", n)
	}
	res, err := e.svc.Capture(context.Background(), seed)
	if err != nil || !res.Replayed || res.Job.State != JobPrinted {
		t.Fatalf("the POS asks again: %+v, %v", res, err)
	}
}

func TestResumePrunesOldFinishedRecords(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.KeepFinished = time.Hour })
	old := time.Now().Add(-2 * time.Hour)
	// Rows an older ecrd left, without steady times: judged by their wall time.
	write := func(r *Record) {
		r.Created, r.Updated = old, old
		putRows(t, e, rowOf(r))
	}
	e.fake.Add(`{"id":"STX_OLDUNKNOWN","status":"created"}`)
	write(&Record{TransactionID: "STX_OLDDONE", Phase: PhaseCaptured, Spooled: true, Answer: json.RawMessage(`{"status":"ok"}`)})
	write(&Record{TransactionID: "STX_OLDREFUSED", Phase: PhaseRefused})
	write(&Record{TransactionID: "STX_OLDUNKNOWN", Phase: PhaseInDoubt})
	if _, err := e.svc.Capture(context.Background(), seed); err != nil { // a fresh, finished record
		t.Fatal(err)
	}
	e.svc.Resume(context.Background())
	e.svc.Prune()
	// An old captured record (an older ecrd's, without steady times: judged by its wall
	// time) keeps its id, trans_id and payment method; an old refusal is forgotten.
	for id, kept := range map[string]bool{"STX_OLDREFUSED": false, "STX_OLDUNKNOWN": true, seed: true} {
		rec, err := e.journal.Get(id)
		if (err == nil) != kept || kept && rec.Pruned {
			t.Errorf("%s: kept = %v (%+v), want %v, whole", id, err == nil, rec, kept)
		}
	}
	if rec, err := e.journal.Get("STX_OLDDONE"); err != nil || !rec.Pruned || rec.Phase != PhaseCaptured {
		t.Errorf("STX_OLDDONE: %+v, %v; want captured and pruned", rec, err)
	}
}
