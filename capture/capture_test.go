package capture

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/internal/steady"
	"github.com/ecrd-pos/ecrd/internal/testbed"
	"github.com/ecrd-pos/ecrd/internal/wait"
	"github.com/ecrd-pos/ecrd/receipt"
	"github.com/ecrd-pos/ecrd/secupay"
	"github.com/ecrd-pos/ecrd/secupay/secupaytest"
	"github.com/ecrd-pos/ecrd/spool"
)

// env is a capture service wired to the real loopback secupay fake, a real journal and
// spool in a temporary state directory, and the file-backed fake printer.
type env struct {
	t           *testing.T
	till        *testbed.Till
	fake        *secupaytest.Server
	client      *switchClient // the real client, replaceable by a test
	tokens      secupay.TokenSource
	clock       *steady.Manual // the journal's clock source: time passes, and the wall steps, when a test says so
	svc         *Service
	journal     *Journal
	spool       *spool.Spool
	state       string // holds the state database
	tokenFile   string
	printerFile string
	stop        func()
}

// passInDoubtWait moves the service's clock past the in-doubt wait: secupay can no longer be
// working on any start/cash sent so far.
func (e *env) passInDoubtWait() { e.clock.Advance(DefaultInDoubtWait + time.Second) }

// switchClient is a real secupay client that a test can swap for one configured otherwise.
type switchClient struct {
	mu sync.Mutex
	c  *secupay.Client
}

func (s *switchClient) set(t testing.TB, cfg secupay.Config) {
	t.Helper()
	c, err := secupay.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.c = c
	s.mu.Unlock()
}

func (s *switchClient) get() *secupay.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c
}

func (s *switchClient) CaptureCash(ctx context.Context, id string) (*secupay.Transaction, error) {
	return s.get().CaptureCash(ctx, id)
}

func (s *switchClient) Transaction(ctx context.Context, id string) (*secupay.Transaction, error) {
	return s.get().Transaction(ctx, id)
}

func newEnv(t *testing.T, mod func(*Config)) *env {
	t.Helper()
	return newEnvAt(t, t.TempDir(), nil, mod)
}

// receipts returns how many jobs the printer file holds.
func (e *env) receipts() int { return e.till.Receipts(e.t) }

// waitPrinted waits until the spool has printed job id.
func (e *env) waitPrinted(t *testing.T, id string) {
	t.Helper()
	wait.For(t, 10*time.Second, "job "+id+" printed", func() error {
		in, err := e.spool.Job(id)
		if err == nil && in.State != spool.StatePrinted {
			err = fmt.Errorf("%+v", in)
		}
		return err
	})
}

func (e *env) setPrinter(state string) {
	if err := os.WriteFile(e.printerFile+".status", []byte(state+"\n"), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

const seed = secupaytest.SeedID

func TestCaptureOnceAndPrint(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	res, err := e.svc.Capture(context.Background(), seed)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != "ok" || res.TransID != "29008411" || res.Replayed {
		t.Fatalf("answer %+v", res)
	}
	if res.Job.State != JobPrinted || res.Job.ID != seed+".receipt" {
		t.Fatalf("job %+v, want printed", res.Job)
	}
	if n := e.fake.Calls().StartCash[seed]; n != 1 {
		t.Fatalf("%d start/cash calls", n)
	}
	if n := e.receipts(); n != 1 {
		t.Fatalf("%d receipts printed", n)
	}
	b, _ := os.ReadFile(e.printerFile)
	if !bytes.Contains(b, []byte("Kundenkarte")) || !bytes.Contains(b, []byte("9276004429942845")) {
		t.Fatalf("printed receipt lacks the seed's lines: %q", b)
	}
	rec, err := e.journal.Get(seed)
	if err != nil || rec.Phase != PhaseCaptured || !rec.Spooled || rec.Attempts != 1 {
		t.Fatalf("journal %+v, %v", rec, err)
	}
	var answer map[string]any
	if err := json.Unmarshal(rec.Answer, &answer); err != nil || answer["status"] != "ok" {
		t.Fatalf("journal does not hold secupay's whole answer: %s", rec.Answer)
	}
}

func TestSameIDAgainIsReplayed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	first, err := e.svc.Capture(context.Background(), seed)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		again, err := e.svc.Capture(context.Background(), seed)
		if err != nil {
			t.Fatal(err)
		}
		if !again.Replayed || again.TransID != first.TransID || again.Job.State != JobPrinted {
			t.Fatalf("repeat %d = %+v", i, again)
		}
	}
	if n := e.fake.Calls().StartCash[seed]; n != 1 {
		t.Fatalf("%d start/cash calls for one payment", n)
	}
	if n := e.receipts(); n != 1 {
		t.Fatalf("%d receipts for one payment", n)
	}
}

func TestConcurrentCapturesOfOneID(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.fake.Fault(secupaytest.Fault{Op: "start", ID: seed, Delay: 300 * time.Millisecond, Status: 0, CaptureFirst: true,
		Body: string(secupaytest.SeedAnswer())})
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); _, errs[i] = e.svc.Capture(context.Background(), seed) }()
	}
	wg.Wait()
	ok, busy := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrInProgress):
			busy++
		default:
			t.Fatalf("unexpected error %v", err)
		}
	}
	if ok < 1 || ok+busy != len(errs) {
		t.Fatalf("%d ok, %d in progress", ok, busy)
	}
	if n := e.fake.Calls().Captures[seed]; n != 1 {
		t.Fatalf("captured %d times", n)
	}
	if n := e.receipts(); n != 1 {
		t.Fatalf("%d receipts", n)
	}
}

func TestRefusalIsTypedAndPrintsNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.fake.Fault(secupaytest.Fault{Op: "start", ID: seed, Status: 400,
		Body: `{"status":"error","error":"ProductInternalException","error_details":"Could not cancel loyalty transaction","error_user":"Es ist ein interner Fehler aufgetreten","code":"1007","supportId":"d1f0c0ffee"}`})
	_, err := e.svc.Capture(context.Background(), seed)
	var refused *RefusedError
	if !errors.As(err, &refused) {
		t.Fatalf("err = %v, want *RefusedError", err)
	}
	r := refused.Refusal
	if r.HTTPStatus != 400 || r.Error != "ProductInternalException" || r.ErrorUser != "Es ist ein interner Fehler aufgetreten" ||
		r.Code != "1007" || r.SupportID != "d1f0c0ffee" {
		t.Fatalf("refusal %+v", r)
	}
	if !strings.Contains(err.Error(), "d1f0c0ffee") || !strings.Contains(err.Error(), seed) {
		t.Errorf("message %q does not name the transaction and support id", err)
	}
	if n := e.receipts(); n != 0 {
		t.Fatalf("%d receipts printed for a refused capture", n)
	}
	rec, _ := e.journal.Get(seed)
	if rec.Phase != PhaseRefused {
		t.Fatalf("journal phase %s", rec.Phase)
	}
	// The cashier fixes the problem and tries again: a new capture is allowed.
	res, err := e.svc.Capture(context.Background(), seed)
	if err != nil || res.Job.State != JobPrinted {
		t.Fatalf("retry after refusal: %+v, %v", res, err)
	}
	if n := e.fake.Calls().Captures[seed]; n != 1 {
		t.Fatalf("captured %d times", n)
	}
}

func TestPaperOutQueuesThenPrints(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.PrintWait = 2 * time.Second })
	e.setPrinter("paper_out")
	res, err := e.svc.Capture(context.Background(), seed)
	if err != nil {
		t.Fatal(err)
	}
	if res.Job.State != JobQueued || !strings.Contains(res.Job.Error, "paper_out") {
		t.Fatalf("job %+v, want queued because of paper_out", res.Job)
	}
	if n := e.receipts(); n != 0 {
		t.Fatalf("printed while paper out")
	}
	e.setPrinter("online")
	e.waitPrinted(t, res.Job.ID)
	if n := e.receipts(); n != 1 {
		t.Fatalf("%d receipts", n)
	}
	again, _ := e.svc.Capture(context.Background(), seed)
	if again.Job.State != JobPrinted {
		t.Fatalf("replay reports %+v", again.Job)
	}
}

func TestInvalidIDsNeverReachSecupay(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for _, id := range []string{"", "../x", "STX_a/b", "STX_%2F", "STX_?", "STX_" + strings.Repeat("A", 65), "STX_Ä", "stx_ABC", "STX_A B"} {
		if _, err := e.svc.Capture(context.Background(), id); !errors.Is(err, ErrInvalidID) {
			t.Errorf("Capture(%q) = %v, want ErrInvalidID", id, err)
		}
	}
	if n := e.fake.Calls().Requests; n != 0 {
		t.Fatalf("%d requests reached secupay", n)
	}
}

func TestJournalFailureMeansNoCapture(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	refuseWrites(t, e)
	_, err := e.svc.Capture(context.Background(), seed)
	if !errors.Is(err, ErrStorage) {
		t.Fatalf("err = %v, want ErrStorage", err)
	}
	if n := e.fake.Calls().Requests; n != 0 {
		t.Fatalf("secupay called %d times without the intent journaled", n)
	}
	// Nothing was sent: nothing for the resolver to settle (no phantom unfinished capture
	// and no error line per pass).
	if n := e.svc.Unfinished(); n != 0 {
		t.Fatalf("%d unfinished captures after a capture that sent nothing", n)
	}
}

// stubSecupay answers captures with a fixed transaction.
type stubSecupay struct{ tx string }

func (s stubSecupay) CaptureCash(ctx context.Context, id string) (*secupay.Transaction, error) {
	var tx secupay.Transaction
	if err := json.Unmarshal([]byte(s.tx), &tx); err != nil {
		return nil, err
	}
	tx.Raw = json.RawMessage(s.tx)
	return &tx, nil
}

func (s stubSecupay) Transaction(ctx context.Context, id string) (*secupay.Transaction, error) {
	return s.CaptureCash(ctx, id)
}

func TestCapturedWithoutReceiptSaysWhy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) {
		c.Secupay = stubSecupay{`{"id":"` + seed + `","status":"ok","trans_id":1,"receipt":[]}`}
	})
	res, err := e.svc.Capture(context.Background(), seed)
	if err != nil {
		t.Fatal(err)
	}
	if res.Job.State != JobFailed || !strings.Contains(res.Job.Error, "no receipt lines") {
		t.Fatalf("job %+v, want failed with the reason", res.Job)
	}
	again, err := e.svc.Capture(context.Background(), seed)
	if err != nil || !again.Replayed || again.Job.State != JobFailed {
		t.Fatalf("replay %+v, %v", again, err)
	}
}

func TestMerchantCopyAndDrawerKick(t *testing.T) {
	t.Parallel()
	pin := 0
	tx := `{"id":"` + seed + `","status":"ok","payment_method":"cash","trans_id":"7",
		"receipt":[{"type":"textline","value":{"text":"Kundenbeleg"}}],
		"receipt_merchant":[{"type":"textline","value":{"text":"Händlerbeleg"}}],"receipt_merchant_print":true}`
	e := newEnv(t, func(c *Config) { c.Secupay = stubSecupay{tx}; c.DrawerPin = &pin })
	res, err := e.svc.Capture(context.Background(), seed)
	if err != nil {
		t.Fatal(err)
	}
	if res.MerchantJob == nil {
		t.Fatal("no merchant copy although secupay asked for it")
	}
	wait.Until(t, 10*time.Second, "both copies on paper", func() bool { return e.receipts() >= 2 })
	b, _ := os.ReadFile(e.printerFile)
	kick := receipt.DrawerKick(0)
	// The drawer opens once, after the customer receipt, before the merchant copy.
	at := bytes.Index(b, kick)
	if at < 0 || !bytes.Contains(b[:at], []byte("Kundenbeleg")) || bytes.Contains(b[:at], []byte("ndlerbeleg")) {
		t.Fatalf("the drawer kick is not right after the customer receipt: %q", b)
	}
	if bytes.Count(b, kick) != 1 {
		t.Fatalf("drawer kicked %d times", bytes.Count(b, kick))
	}
	if !bytes.Contains(b, []byte("H\x84ndlerbeleg")) {
		t.Fatalf("merchant copy missing or wrongly encoded (want cp858 ä = 0x84)")
	}
	// A reprint never opens the drawer.
	rp, err := e.svc.Reprint(context.Background(), seed)
	if err != nil || rp.Job.State != JobPrinted {
		t.Fatalf("reprint %+v, %v", rp, err)
	}
	b, _ = os.ReadFile(e.printerFile)
	if bytes.Count(b, kick) != 1 {
		t.Fatal("reprint kicked the drawer")
	}
}

func TestReprintNeedsACapture(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	if _, err := e.svc.Reprint(context.Background(), seed); !errors.Is(err, ErrNotCaptured) {
		t.Fatalf("err = %v", err)
	}
	if _, err := e.svc.Capture(context.Background(), seed); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		res, err := e.svc.Reprint(context.Background(), seed)
		if err != nil {
			t.Fatal(err)
		}
		if want := seed + ".reprint-" + string(rune('0'+i)); res.Job.ID != want || res.Job.State != JobPrinted {
			t.Fatalf("reprint %d job %+v, want %s printed", i, res.Job, want)
		}
	}
	if n := e.receipts(); n != 3 {
		t.Fatalf("%d receipts, want the original and two reprints", n)
	}
	if n := e.fake.Calls().StartCash[seed]; n != 1 {
		t.Fatalf("reprint called start/cash: %d", n)
	}
}
