package capture

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/secupay/secupaytest"
)

// The steps of the wall clock the red team used: NTP correcting a till whose RTC drifted, a
// clock set back an hour, a VM resumed after a quarter of a year.
var wallSteps = []time.Duration{180 * time.Second, -time.Hour, 91 * 24 * time.Hour}

// A step of the wall clock, either way, never shortens the in-doubt wait: secupay takes
// longer than the client waits to apply a start/cash, the till's clock steps, and neither the
// POS asking again nor the resolver sends a second start/cash while the wait lasts on the
// steady clock. Once it has passed, the capture settles as it should.
func TestWallClockStepsNeverShortenTheInDoubtWait(t *testing.T) {
	for _, step := range wallSteps {
		t.Run(fmt.Sprintf("step %v", step), func(t *testing.T) {
			e := newEnv(t, nil)
			slowSecupay(t, e, time.Hour) // secupay works on it longer than this test runs
			if _, err := e.svc.Capture(context.Background(), seed); !errors.Is(err, ErrOutcomeUnknown) {
				t.Fatalf("first answer: %v, want in doubt", err)
			}
			e.clock.Advance(time.Second)
			e.clock.Step(step)
			var doubt *InDoubtError
			if _, err := e.svc.Capture(context.Background(), seed); !errors.As(err, &doubt) {
				t.Fatalf("after a wall step of %v: %v, want in doubt", step, err)
			}
			if doubt.RetryAfter > DefaultInDoubtWait {
				t.Fatalf("retry after %v, more than the wait itself", doubt.RetryAfter)
			}
			e.svc.Resolve(context.Background())
			if rec, _ := e.journal.Get(seed); !rec.inDoubt() {
				t.Fatalf("after a wall step of %v the resolver settled it %s", step, rec.Phase)
			}
			if n := e.fake.Calls().StartCash[seed]; n != 1 {
				t.Fatalf("after a wall step of %v: %d start/cash calls, want 1", step, n)
			}

			// A restart on another boot after the step: the wait goes on from the mark, so
			// it is still not over 30 s into the new boot.
			e.clock.Reboot(8*time.Hour, 30*time.Second)
			j2, err := OpenJournal(e.journal.st, e.clock)
			if err != nil {
				t.Fatal(err)
			}
			svc2 := New(Config{Journal: j2, Secupay: e.client, Spool: e.spool, Render: e.svc.cfg.Render})
			if _, err := svc2.Capture(context.Background(), seed); !errors.Is(err, ErrOutcomeUnknown) {
				t.Fatalf("after a reboot 30 s in: %v, want in doubt", err)
			}
			if n := e.fake.Calls().StartCash[seed]; n != 1 {
				t.Fatalf("after a reboot: %d start/cash calls, want 1", n)
			}

			// The wait does end on the steady clock.
			e.clock.Advance(DefaultInDoubtWait)
			svc2.Resume(context.Background())
			if rec, _ := j2.Get(seed); rec.Phase != PhaseNotCaptured {
				t.Fatalf("after the wait on the steady clock: %s, want not_captured", rec.Phase)
			}
		})
	}
}

// A capture is pruned by its age on the steady clock, never the wall's; pruned, it leaves its
// id in the paid index and a repeat is answered "captured" from it without a word to secupay
// — even when secupay would now answer a second start/cash with "already completed".
func TestPruneKeepsAPaidCaptureForever(t *testing.T) {
	t.Parallel()
	const keep = 90 * 24 * time.Hour
	e := newEnv(t, func(c *Config) { c.KeepFinished = keep })
	res, err := e.svc.Capture(context.Background(), seed)
	if err != nil || res.Job.State != JobPrinted {
		t.Fatalf("capture: %+v, %v", res, err)
	}

	for _, step := range wallSteps {
		e.clock.Step(step)
		e.svc.Prune()
		if rec, err := e.journal.Get(seed); err != nil || rec.Pruned || len(rec.Answer) == 0 {
			t.Fatalf("after a wall step of %v the prune took the record: %+v, %v", step, rec, err)
		}
	}

	e.clock.Advance(keep)
	e.svc.Prune()
	rec, err := e.journal.Get(seed)
	if err != nil || !rec.Pruned || rec.Phase != PhaseCaptured || rec.TransID != "29008411" || rec.PaymentMethod != "cash" {
		t.Fatalf("after keep on the steady clock: %+v, %v; want a pruned captured record", rec, err)
	}

	// secupay answers a second start/cash "already completed"; it must never be asked.
	e.fake.Fault(secupaytest.Fault{Op: "start", ID: seed, Status: 400,
		Body: secupaytest.ErrorBody("ProductInternalException", "transaction already completed", "bereits abgeschlossen", 1001, "s1")})
	for range 2 {
		res, err = e.svc.Capture(context.Background(), seed)
		if err != nil || !res.Replayed || res.Status != "ok" || res.TransID != "29008411" || res.Job.State != JobPrinted {
			t.Fatalf("repeat after the prune: %+v, %v; want captured, replayed", res, err)
		}
	}
	if n := e.fake.Calls().StartCash[seed]; n != 1 {
		t.Fatalf("%d start/cash calls, want 1", n)
	}
	if _, err := e.svc.Reprint(context.Background(), seed); !errors.Is(err, ErrReceiptPruned) {
		t.Fatalf("reprint of a pruned capture: %v, want ErrReceiptPruned", err)
	}
	if n := e.receipts(); n != 1 {
		t.Fatalf("%d receipts, want 1", n)
	}
}

// A prune longer than one batch keeps every captured id and forgets refused ones.
func TestPruneOfManyRecordsFillsThePaidIndex(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	const n = 2*pruneBatch + 17
	id := func(i int) string { return fmt.Sprintf("STX_PRUNE%06d", i) }
	for i := range n {
		r := &Record{TransactionID: id(i), Phase: PhaseRefused, Refusal: &Refusal{HTTPStatus: 400}}
		if i%3 != 0 {
			r = &Record{TransactionID: id(i), Phase: PhaseCaptured, Spooled: true, TransID: fmt.Sprint(i),
				Answer: []byte(`{"id":"` + id(i) + `","status":"ok","payment_method":"cash","trans_id":` + fmt.Sprint(i) + `}`)}
		}
		if err := e.journal.PutUnflushed(r); err != nil {
			t.Fatal(err)
		}
	}
	e.clock.Advance(time.Hour + time.Minute) // the files' times are the machine's, a moment before
	got, err := e.journal.PruneFinished(time.Hour, nil)
	if err != nil || got != n {
		t.Fatalf("pruned %d, %v; want %d", got, err, n)
	}
	for i := range n {
		rec, err := e.journal.Get(id(i))
		switch {
		case i%3 == 0 && !errors.Is(err, errNoRecord):
			t.Fatalf("refused %s after the prune: %+v, %v; want no record", id(i), rec, err)
		case i%3 != 0 && (err != nil || !rec.Pruned || rec.TransID != fmt.Sprint(i) || rec.PaymentMethod != "cash"):
			t.Fatalf("captured %s after the prune: %+v, %v", id(i), rec, err)
		}
	}
	if _, err := e.journal.Get("STX_NEVERSEEN"); !errors.Is(err, errNoRecord) {
		t.Fatalf("an id never captured: %v", err)
	}
}

// A refusal must prove itself: a 4xx whose body is not secupay's documented error, after
// secupay did capture, is in doubt and read back — one start/cash, a receipt, "captured".
// And a documented refusal is believed only once the transaction reads back not captured.
func TestRefusalsMustProveThemselves(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, body string }{
		{"400 {}", `{}`},
		{`400 {"status":"ok"}`, `{"status":"ok"}`},
		{"404 foreign body", `{"message":"no route"}`},
		{"400 documented, already completed", secupaytest.ErrorBody("ProductInternalException",
			"transaction already completed", "Die Transaktion wurde bereits abgeschlossen", 1001, "s1")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			status := 400
			if strings.HasPrefix(tc.name, "404") {
				status = 404
			}
			e.fake.Fault(secupaytest.Fault{Op: "start", ID: seed, Status: status, Body: tc.body, CaptureFirst: true})
			res, err := e.svc.Capture(context.Background(), seed)
			if err != nil || res.Status != "ok" || res.Job.State != JobPrinted {
				t.Fatalf("%s after secupay captured: %+v, %v; want captured and printed", tc.name, res, err)
			}
			if n := e.fake.Calls().StartCash[seed]; n != 1 {
				t.Fatalf("%d start/cash calls", n)
			}
			if n := e.receipts(); n != 1 {
				t.Fatalf("%d receipts", n)
			}
		})
	}

	t.Run("documented refusal, not captured", func(t *testing.T) {
		e := newEnv(t, nil)
		e.fake.Fault(secupaytest.Fault{Op: "start", ID: seed, Status: 400,
			Body: secupaytest.ErrorBody("ProductFormatException", "no payload", "Fehler", 1001, "s2")})
		_, err := e.svc.Capture(context.Background(), seed)
		var refused *RefusedError
		if !errors.As(err, &refused) || refused.Refusal.Error != "ProductFormatException" {
			t.Fatalf("err = %v, want secupay's refusal", err)
		}
		if n := e.fake.Calls().Get[seed]; n != 1 {
			t.Fatalf("%d read-backs before believing the refusal, want 1", n)
		}
	})

	t.Run("500 with secupay's words", func(t *testing.T) {
		e := newEnv(t, nil)
		e.fake.Fault(secupaytest.Fault{Op: "start", ID: seed, Status: 500,
			Body: secupaytest.ErrorBody("ProductInternalException", "Proxy: Backend not availble", "Es ist ein interner Fehler aufgetreten", 0, "")})
		e.fake.Fault(secupaytest.Fault{Op: "get", ID: seed, Status: 503, Body: "<html>down</html>"})
		_, err := e.svc.Capture(context.Background(), seed)
		var doubt *InDoubtError
		if !errors.As(err, &doubt) || doubt.Secupay == nil || doubt.Secupay.ErrorUser != "Es ist ein interner Fehler aufgetreten" {
			t.Fatalf("err = %v (%+v), want in doubt with secupay's error_user", err, doubt)
		}
	})

	t.Run("documented refusal, read-back fails", func(t *testing.T) {
		e := newEnv(t, nil)
		e.fake.Fault(secupaytest.Fault{Op: "start", ID: seed, Status: 400,
			Body: secupaytest.ErrorBody("ProductFormatException", "no payload", "Fehler", 1001, "s3")})
		e.fake.Fault(secupaytest.Fault{Op: "get", ID: seed, Status: 503})
		if _, err := e.svc.Capture(context.Background(), seed); !errors.Is(err, ErrOutcomeUnknown) {
			t.Fatalf("err = %v, want in doubt: the refusal is not proven", err)
		}
		if rec, _ := e.journal.Get(seed); !rec.inDoubt() {
			t.Fatalf("journal %s, want in doubt", rec.Phase)
		}
	})
}
