package capture

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/secupay"
	"github.com/ecrd-pos/ecrd/secupay/secupaytest"
)

// A 200 whose status is not exactly "ok" settles nothing (issue: "OK", duplicate keys, words
// secupay does not use, "failed" in the answer while the transaction says otherwise): the
// capture is in doubt, nothing is journaled as refused, and no start/cash is sent again until
// a read-back settles it.
func TestTwoHundredNotCleanOKIsInDoubt(t *testing.T) {
	t.Parallel()
	withStatus := func(st string) string {
		return strings.Replace(string(secupaytest.SeedAnswer()), `"status": "ok"`, `"status": `+st, 1)
	}
	for _, tc := range []struct {
		name, body   string
		captureFirst bool // secupay did capture: the read-back shows it
	}{
		{"OK upper case, captured", withStatus(`"OK"`), true},
		{"OK upper case, not captured", withStatus(`"OK"`), false},
		{"duplicate status keys, captured", withStatus(`"error", "status": "ok"`), true},
		{"duplicate status keys, not captured", withStatus(`"ok", "status": "error"`), false},
		{"unknown word", withStatus(`"paid"`), false},
		{"failed in the answer only", withStatus(`"failed"`), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.fake.Fault(secupaytest.Fault{Op: "start", ID: seed, Status: 200, Body: tc.body, CaptureFirst: tc.captureFirst})
			res, err := e.svc.Capture(context.Background(), seed)
			if tc.captureFirst {
				if err != nil || res.Job.State != JobPrinted {
					t.Fatalf("captured at secupay, but the POS hears %+v, %v", res, err)
				}
				return
			}
			var refused *RefusedError
			if !errors.Is(err, ErrOutcomeUnknown) || errors.As(err, &refused) {
				t.Fatalf("err = %v, want in doubt", err)
			}
			if rec, _ := e.journal.Get(seed); rec.Phase != PhaseInDoubt {
				t.Fatalf("journal phase %s, want in_doubt", rec.Phase)
			}
			// Asking again at once: read back, still in doubt, no second start/cash.
			if _, err := e.svc.Capture(context.Background(), seed); !errors.Is(err, ErrOutcomeUnknown) {
				t.Fatalf("asked again: %v, want in doubt", err)
			}
			if n := e.fake.Calls().StartCash[seed]; n != 1 {
				t.Fatalf("%d start/cash calls while in doubt", n)
			}
			if n := e.receipts(); n != 0 {
				t.Fatalf("printed %d", n)
			}
		})
	}
}

// A 200 "failed" whose read-back says failed too is settled: not captured.
func TestStatusFailedReadBackIsNotCaptured(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	tx := strings.Replace(string(secupaytest.SeedAnswer()), `"status": "ok"`, `"status": "failed"`, 1)
	e.fake.Fault(secupaytest.Fault{Op: "start", ID: seed, Status: 200, Body: tx})
	e.fake.SetStatus(seed, "failed")
	_, err := e.svc.Capture(context.Background(), seed)
	var refused *RefusedError
	if !errors.As(err, &refused) || refused.Refusal.Status != "failed" {
		t.Fatalf("err = %v, want refusal with status failed", err)
	}
	if n := e.receipts(); n != 0 {
		t.Fatalf("printed %d", n)
	}
}

func TestLostAnswerIsResolvedByReading(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	// secupay captures, then the connection is cut before the answer arrives.
	e.fake.Fault(secupaytest.Fault{Op: "start", ID: seed, Cut: true, CaptureFirst: true})
	res, err := e.svc.Capture(context.Background(), seed)
	if err != nil {
		t.Fatal(err)
	}
	if res.Job.State != JobPrinted {
		t.Fatalf("job %+v", res.Job)
	}
	if n := e.fake.Calls().StartCash[seed]; n != 1 {
		t.Fatalf("%d start/cash calls: a lost answer must be resolved by GET, not a second start", n)
	}
	if n := e.fake.Calls().Get[seed]; n < 1 {
		t.Fatal("outcome not read back")
	}
	if n := e.receipts(); n != 1 {
		t.Fatalf("%d receipts", n)
	}
}

func TestTimeoutWithoutCaptureIsUnknownThenRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	// The answer takes longer than the client's timeout and secupay did nothing; the GET
	// that follows fails too, so the outcome stays unknown.
	e.fake.Fault(secupaytest.Fault{Op: "start", ID: seed, Delay: 5 * time.Second})
	e.fake.Fault(secupaytest.Fault{Op: "get", ID: seed, Status: 503, Body: "<html>Service Unavailable</html>"})
	_, err := e.svc.Capture(context.Background(), seed)
	if !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("err = %v, want ErrOutcomeUnknown", err)
	}
	rec, _ := e.journal.Get(seed)
	if rec.Phase != PhaseInDoubt {
		t.Fatalf("phase %s", rec.Phase)
	}
	if n := e.receipts(); n != 0 {
		t.Fatalf("printed %d", n)
	}
	// The POS asks again after the in-doubt wait: the GET shows "created", so secupay is not
	// working on the first call any more, and a new start/cash is safe.
	e.passInDoubtWait()
	res, err := e.svc.Capture(context.Background(), seed)
	if err != nil {
		t.Fatal(err)
	}
	if res.Job.State != JobPrinted {
		t.Fatalf("job %+v", res.Job)
	}
	if n := e.fake.Calls().Captures[seed]; n != 1 {
		t.Fatalf("captured %d times", n)
	}
}

// A 5xx settles nothing, even with secupay's JSON error body: the backend may have acted.
func TestServerErrorIsInDoubtUntilReadBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.fake.Fault(secupaytest.Fault{Op: "start", ID: seed, Status: 500})
	_, err := e.svc.Capture(context.Background(), seed)
	var doubt *InDoubtError
	if !errors.As(err, &doubt) || !doubt.NoAnswer || doubt.RetryAfter <= 0 {
		t.Fatalf("err = %#v, want in doubt with a retry time", err)
	}
	if n := e.fake.Calls().Get[seed]; n != 1 {
		t.Fatalf("%d GETs: a 5xx must be checked by reading the transaction", n)
	}
	e.passInDoubtWait()
	if res, err := e.svc.Capture(context.Background(), seed); err != nil || res.Job.State != JobPrinted {
		t.Fatalf("after the wait: %+v, %v", res, err)
	}
	if n := e.fake.Calls().Captures[seed]; n != 1 {
		t.Fatalf("captured %d times", n)
	}
}

func TestPendingAtSecupayIsNotRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.fake.Fault(secupaytest.Fault{Op: "start", ID: seed, Cut: true})
	e.fake.SetStatus(seed, "pending")
	_, err := e.svc.Capture(context.Background(), seed)
	if !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("err = %v", err)
	}
	if _, err := e.svc.Capture(context.Background(), seed); !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("second ask while pending: %v", err)
	}
	if n := e.fake.Calls().StartCash[seed]; n != 1 {
		t.Fatalf("%d start/cash calls while secupay reports pending", n)
	}
}

func TestUnreachableSecupayIsNotAnUnknownOutcome(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	// A port nobody listens on: the connection is refused, nothing is sent.
	e.client.set(t, secupay.Config{BaseURL: "http://127.0.0.1:1", Tokens: e.tokens, Timeout: 2 * time.Second})
	_, err := e.svc.Capture(context.Background(), seed)
	if !errors.Is(err, ErrUnreachable) || errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
	if rec, _ := e.journal.Get(seed); rec.Phase != PhaseNotCaptured {
		t.Fatalf("journal phase %s, want not_captured (nothing sent)", rec.Phase)
	}
	if n := e.svc.Unfinished(); n != 0 {
		t.Fatalf("%d unfinished: nothing is left to resolve", n)
	}
	e.client.set(t, secupay.Config{BaseURL: e.fake.URL, Tokens: e.tokens, Timeout: 2 * time.Second})
	res, err := e.svc.Capture(context.Background(), seed)
	if err != nil || res.Job.State != JobPrinted {
		t.Fatalf("secupay back: %+v, %v", res, err)
	}
	if n := e.fake.Calls().Get[seed]; n != 0 {
		t.Fatalf("%d GETs: nothing was sent, so nothing had to be read back", n)
	}
}
