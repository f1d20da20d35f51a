package capture

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/internal/wait"
	"github.com/ecrd-pos/ecrd/secupay"
	"github.com/ecrd-pos/ecrd/secupay/secupaytest"
)

// slowSecupay makes the env's client give up after 300 ms while secupay keeps working on the
// start/cash for processing, then captures. Tests that use it do not run in parallel: under
// load the 300 ms could pass before the start/cash reaches secupay.
func slowSecupay(t *testing.T, e *env, processing time.Duration) {
	t.Helper()
	e.client.set(t, secupay.Config{BaseURL: e.fake.URL, Tokens: e.tokens, Timeout: 300 * time.Millisecond})
	e.fake.Fault(secupaytest.Fault{Op: "start", ID: seed, Processing: processing})
}

// waitCaptured waits until the fake has captured id (its processing finished).
func waitCaptured(t *testing.T, e *env, id string) {
	t.Helper()
	wait.Until(t, 10*time.Second, "secupay to finish the capture", func() bool { return e.fake.Calls().Captures[id] == 1 })
}

// The review's defect: secupay is still working on a start/cash when the client gives up.
// The POS asking again at once must not send another start/cash (which secupay refuses as
// "being processed", and which was then journaled as a refusal of a paid transaction).
func TestSlowSecupayIsNeverSentASecondStartCash(t *testing.T) {
	e := newEnv(t, nil)
	slowSecupay(t, e, time.Second)

	_, err := e.svc.Capture(context.Background(), seed)
	var doubt *InDoubtError
	if !errors.As(err, &doubt) || !doubt.NoAnswer {
		t.Fatalf("first answer: %v, want in doubt (no answer in time)", err)
	}
	// The POS asks again right away, twice: in doubt, read back, no start/cash.
	for i := range 2 {
		_, err := e.svc.Capture(context.Background(), seed)
		var refused *RefusedError
		if !errors.As(err, &doubt) || errors.As(err, &refused) || doubt.RetryAfter <= 0 {
			t.Fatalf("asked again (%d): %v, want in doubt with a retry time", i, err)
		}
	}
	if n := e.fake.Calls().StartCash[seed]; n != 1 {
		t.Fatalf("%d start/cash calls while the first was still processed", n)
	}
	if rec, _ := e.journal.Get(seed); rec.Phase != PhaseInDoubt || rec.Refusal != nil {
		t.Fatalf("journal %+v, want in doubt and no refusal", rec)
	}

	// secupay finishes: the next ask (even within the in-doubt wait) reads it back captured.
	waitCaptured(t, e, seed)
	res, err := e.svc.Capture(context.Background(), seed)
	if err != nil || res.Status != "ok" || res.Job.State != JobPrinted {
		t.Fatalf("after secupay finished: %+v, %v", res, err)
	}
	if n := e.fake.Calls().StartCash[seed]; n != 1 {
		t.Fatalf("%d start/cash calls", n)
	}
	if n := e.receipts(); n != 1 {
		t.Fatalf("%d receipts", n)
	}
}

// Without the POS: the resolver settles the capture in doubt once secupay has finished, and
// the receipt prints.
func TestResolverSettlesASlowCaptureWithoutThePOS(t *testing.T) {
	e := newEnv(t, nil)
	slowSecupay(t, e, 700*time.Millisecond)
	if _, err := e.svc.Capture(context.Background(), seed); !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("first answer: %v", err)
	}
	e.svc.Resolve(context.Background()) // secupay still working: stays in doubt
	if e.svc.Unfinished() != 1 || e.receipts() != 0 {
		t.Fatalf("settled too early: unfinished %d, receipts %d", e.svc.Unfinished(), e.receipts())
	}
	waitCaptured(t, e, seed)
	e.svc.Resolve(context.Background())
	wait.Until(t, 10*time.Second, "the receipt", func() bool { return e.receipts() == 1 })
	if e.svc.Unfinished() != 0 {
		t.Fatalf("%d unfinished after settling", e.svc.Unfinished())
	}
	if n := e.fake.Calls().StartCash[seed]; n != 1 {
		t.Fatalf("%d start/cash calls", n)
	}
}

// A read-back showing "created" settles a capture in doubt only after the in-doubt wait;
// within it, the resolver leaves it alone and the POS hears "in doubt" with a retry time.
func TestInDoubtWait(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.fake.Fault(secupaytest.Fault{Op: "start", ID: seed, Status: 502, Body: "<html>Bad Gateway</html>"})
	if _, err := e.svc.Capture(context.Background(), seed); !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("first answer: %v", err)
	}
	e.clock.Advance(DefaultInDoubtWait - 10*time.Second)
	var doubt *InDoubtError
	if _, err := e.svc.Capture(context.Background(), seed); !errors.As(err, &doubt) || doubt.RetryAfter > 11*time.Second {
		t.Fatalf("10 s before the wait ends: %v, want in doubt for at most 11 s", err)
	}
	e.clock.Advance(11 * time.Second)
	e.svc.Resolve(context.Background())
	if rec, _ := e.journal.Get(seed); rec.Phase != PhaseNotCaptured {
		t.Fatalf("after the wait the resolver left %s, want not_captured", rec.Phase)
	}
	if n := e.fake.Calls().StartCash[seed]; n != 1 {
		t.Fatalf("the resolver sent start/cash: %d calls", n)
	}
	if res, err := e.svc.Capture(context.Background(), seed); err != nil || res.Job.State != JobPrinted {
		t.Fatalf("the POS asking after the wait: %+v, %v", res, err)
	}
	if n := e.fake.Calls().Captures[seed]; n != 1 {
		t.Fatalf("captured %d times", n)
	}
}

// A refusal answered to a later start/cash is not believed without a read-back: here the
// first call captured although every read-back before the second call said "created", and
// secupay refuses the second as already started.
func TestRefusalOfALaterAttemptIsReadBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.fake.Fault(secupaytest.Fault{Op: "start", ID: seed, Cut: true, CaptureFirst: true})
	stale := `{"id":"` + seed + `","object":"smart.transactions","status":"created"}`
	e.fake.Fault(secupaytest.Fault{Op: "get", ID: seed, Status: 200, Body: stale, Times: 2})
	if _, err := e.svc.Capture(context.Background(), seed); !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("first answer: %v", err)
	}
	e.passInDoubtWait()
	res, err := e.svc.Capture(context.Background(), seed)
	if err != nil || res.Job.State != JobPrinted {
		t.Fatalf("the second start/cash was refused as already started; the read-back shows it captured: %+v, %v", res, err)
	}
	if n := e.fake.Calls().Captures[seed]; n != 1 {
		t.Fatalf("captured %d times", n)
	}
}

// A journal that cannot be read is not "no record": whether an earlier request sent
// start/cash is unknown, so nothing is sent, and the POS hears a storage error in doubt.
// (A damaged database is found by SQLite and stops the daemon: store's tests.)
func TestUnreadableJournalSendsNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.stop()
	if err := e.journal.st.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.Capture(context.Background(), seed)
	if !errors.Is(err, ErrStorage) || !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("err = %v; want ErrStorage, in doubt", err)
	}
	if n := e.fake.Calls().Requests; n != 0 {
		t.Fatalf("%d requests to secupay without a readable journal", n)
	}
}

// A job's bytes for its picture: a queued job's from the spool, a printed capture receipt's
// rendered again from the journal — the same bytes the printer took.
func TestJobBytesForThePreview(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.setPrinter("paper_out")
	res, err := e.svc.Capture(context.Background(), seed)
	if err != nil {
		t.Fatal(err)
	}
	queued, err := e.svc.JobBytes(res.Job.ID)
	if err != nil || len(queued) == 0 {
		t.Fatalf("queued job: %d bytes, %v", len(queued), err)
	}
	e.setPrinter("online")
	wait.Until(t, 10*time.Second, "the receipt", func() bool { return e.receipts() == 1 })
	wait.Until(t, 10*time.Second, "the job recorded printed", func() bool {
		in, err := e.spool.Job(res.Job.ID)
		return err == nil && in.State == "printed"
	})
	printed, err := e.svc.JobBytes(res.Job.ID)
	if err != nil {
		t.Fatal(err)
	}
	paper, _ := os.ReadFile(e.printerFile)
	if !bytes.Equal(printed, queued) || !bytes.Equal(paper, printed) {
		t.Fatalf("re-rendered %d bytes, queued %d, on paper %d: want the same bytes", len(printed), len(queued), len(paper))
	}
	if _, err := e.svc.JobBytes("pos-1-abc"); err == nil {
		t.Fatal("bytes of a job that never existed")
	}
}
