package capture

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/secupay"
	"github.com/ecrd-pos/ecrd/secupay/secupaytest"
)

// outcome is the kind of error a capture ends with.
type outcome int

const (
	captured outcome = iota // nil error, job printed
	refused                 // *RefusedError
	unknown                 // ErrOutcomeUnknown
)

func (o outcome) String() string {
	return [...]string{"captured", "refused", "unknown"}[o]
}

// want is what one capture must end with, and what the fake and the printer must have seen
// by then (counts are totals since the row started).
type want struct {
	outcome  outcome
	http     int    // refused: Refusal.HTTPStatus
	status   string // refused: Refusal.Status
	errName  string // refused: Refusal.Error
	code     string // refused: Refusal.Code
	support  string // refused: Refusal.SupportID ("" = not checked)
	starts   int    // start/cash requests at the fake
	captures int    // start/cash requests that captured
	gets     int    // GET requests (-1: not checked)
	receipts int    // receipts on paper
	phase    Phase
	replayed bool
}

// withBody answers start/cash with secupay's error body for status.
func withBody(status int, exception, support string) secupaytest.Fault {
	return secupaytest.Fault{Op: "start", ID: seed, Status: status,
		Body: secupaytest.ErrorBody(exception, "injected "+exception, "Es ist ein Fehler aufgetreten", 1000+status, support)}
}

// seedWithStatus is the seed's documented answer with another status.
func seedWithStatus(t *testing.T, status string) string {
	s := strings.Replace(string(secupaytest.SeedAnswer()), `"status": "ok"`, `"status": "`+status+`"`, 1)
	if !strings.Contains(s, `"status": "`+status+`"`) {
		t.Fatal("seed answer has no status to replace")
	}
	return s
}

// rewriteKeepingStamp writes tok into the token file and restores the file's modification
// time: with the same size the FileToken's cache cannot see the change, so the stale token
// is sent and only the renewal after secupay's refusal reads the new one.
func rewriteKeepingStamp(t *testing.T, path, tok string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if int(fi.Size()) != len(tok) {
		t.Fatalf("token sizes differ (%d, %d): the cache would notice", fi.Size(), len(tok))
	}
	if err := os.WriteFile(path, []byte(tok), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
}

// TestSecupayFaultTable runs one capture per row against the loopback fake with a fault
// set, asserts the outcome, the fake's counters, the paper and the journal, then sends the
// POS's follow-up request and asserts that too.
func TestSecupayFaultTable(t *testing.T) {
	t.Parallel()
	html := func(status int) secupaytest.Fault {
		return secupaytest.Fault{Op: "start", ID: seed, Status: status,
			Body: "<html><head><title>" + strconv.Itoa(status) + " " + http.StatusText(status) + "</title></head><body>nginx</body></html>"}
	}
	retried := want{outcome: captured, starts: 2, captures: 1, gets: -1, receipts: 1, phase: PhaseCaptured}
	replay := want{outcome: captured, starts: 1, captures: 1, gets: -1, receipts: 1, phase: PhaseCaptured, replayed: true}
	refusal := func(status int, exception, support string) want {
		return want{outcome: refused, http: status, status: "error", errName: exception, code: strconv.Itoa(1000 + status),
			support: support, starts: 1, gets: 1, phase: PhaseRefused} // a refusal is read back before it is believed
	}
	// In doubt: the answer settles nothing (a 5xx, a 409 or 429, a 200 whose status is not
	// exactly "ok"), and the read-back right after it shows secupay may still be working.
	lost := want{outcome: unknown, starts: 1, captures: 0, gets: 1, phase: PhaseInDoubt}
	lostButCaptured := want{outcome: captured, starts: 1, captures: 1, gets: 1, receipts: 1, phase: PhaseCaptured}

	rows := []struct {
		name   string
		setup  func(t *testing.T, e *env)
		first  want
		before func(t *testing.T, e *env) // before the follow-up request
		then   want
	}{
		{name: "400 ProductFormatException",
			setup: func(t *testing.T, e *env) { e.fake.Fault(withBody(400, "ProductFormatException", "s400")) },
			first: refusal(400, "ProductFormatException", "s400"), then: retried},
		{name: "401 with the token file unchanged",
			setup: func(t *testing.T, e *env) { e.fake.Fault(withBody(401, "ProductNotAllowedException", "s401")) },
			// The token cannot be renewed, so the refused call's effect is read back: in doubt.
			first: lost, then: retried},
		{name: "403 ProductNotAllowedException, renewed token refused too",
			setup: func(t *testing.T, e *env) {
				tokFile := e.tokenFile
				if _, err := e.tokens.Token(context.Background()); err != nil { // cache "test-token"
					t.Fatal(err)
				}
				e.fake.ExpireToken()
				rewriteKeepingStamp(t, tokFile, "bad-token0") // also refused: the fake accepts none
			},
			// Refused token; the renewed one (from the file) is refused on the client's own
			// read-back and again on capture's: in doubt.
			first:  want{outcome: unknown, starts: 1, gets: 2, phase: PhaseInDoubt},
			before: func(t *testing.T, e *env) { e.fake.SetToken("bad-token0") }, // the technician fixes the account
			then:   retried},
		{name: "404 ProductNotFoundException",
			setup: func(t *testing.T, e *env) { e.fake.Fault(withBody(404, "ProductNotFoundException", "s404")) },
			first: refusal(404, "ProductNotFoundException", "s404"), then: retried},
		{name: "409 conflict",
			setup: func(t *testing.T, e *env) { e.fake.Fault(withBody(409, "ProductInternalException", "s409")) },
			first: lost, then: retried},
		{name: "422 unprocessable",
			setup: func(t *testing.T, e *env) { e.fake.Fault(withBody(422, "ProductFormatException", "s422")) },
			first: refusal(422, "ProductFormatException", "s422"), then: retried},
		{name: "429 too many requests",
			setup: func(t *testing.T, e *env) { e.fake.Fault(withBody(429, "ProductInternalException", "s429")) },
			first: lost, then: retried},
		{name: "500 JSON",
			setup: func(t *testing.T, e *env) { e.fake.Fault(withBody(500, "ProductInternalException", "s500")) },
			first: lost, then: retried},
		{name: "502 JSON",
			setup: func(t *testing.T, e *env) { e.fake.Fault(withBody(502, "ProductInternalException", "s502")) },
			first: lost, then: retried},
		{name: "503 JSON",
			setup: func(t *testing.T, e *env) { e.fake.Fault(withBody(503, "ProductInternalException", "s503")) },
			first: lost, then: retried},
		{name: "504 JSON",
			setup: func(t *testing.T, e *env) { e.fake.Fault(withBody(504, "ProductInternalException", "s504")) },
			first: lost, then: retried},
		{name: "502 JSON after secupay captured",
			setup: func(t *testing.T, e *env) {
				f := withBody(502, "ProductInternalException", "s502c")
				f.CaptureFirst = true
				e.fake.Fault(f)
			},
			first: lostButCaptured, then: replay},
		{name: "500 HTML", setup: func(t *testing.T, e *env) { e.fake.Fault(html(500)) }, first: lost, then: retried},
		{name: "502 HTML", setup: func(t *testing.T, e *env) { e.fake.Fault(html(502)) }, first: lost, then: retried},
		{name: "503 HTML", setup: func(t *testing.T, e *env) { e.fake.Fault(html(503)) }, first: lost, then: retried},
		{name: "504 HTML", setup: func(t *testing.T, e *env) { e.fake.Fault(html(504)) }, first: lost, then: retried},
		{name: "slow past the client timeout, nothing done",
			setup: func(t *testing.T, e *env) {
				e.fake.Fault(secupaytest.Fault{Op: "start", ID: seed, Delay: 10 * time.Second})
			},
			first: lost, then: retried},
		{name: "slow past the client timeout, captured first",
			setup: func(t *testing.T, e *env) {
				e.fake.Fault(secupaytest.Fault{Op: "start", ID: seed, Delay: 10 * time.Second, CaptureFirst: true})
			},
			first: lostButCaptured, then: replay},
		{name: "cut mid-body, nothing done",
			setup: func(t *testing.T, e *env) {
				e.fake.Fault(secupaytest.Fault{Op: "start", ID: seed, Cut: true, Status: 200, Body: string(secupaytest.SeedAnswer())})
			},
			first: lost, then: retried},
		{name: "cut mid-body, captured first",
			setup: func(t *testing.T, e *env) {
				e.fake.Fault(secupaytest.Fault{Op: "start", ID: seed, Cut: true, CaptureFirst: true})
			},
			first: lostButCaptured, then: replay},
		{name: "malformed JSON on 200",
			setup: func(t *testing.T, e *env) {
				e.fake.Fault(secupaytest.Fault{Op: "start", ID: seed, Status: 200, Body: `{"id": "` + seed + `", "status": ok}`})
			},
			first: lost, then: retried},
		{name: "truncated JSON on 200",
			setup: func(t *testing.T, e *env) {
				a := secupaytest.SeedAnswer()
				e.fake.Fault(secupaytest.Fault{Op: "start", ID: seed, Status: 200, Body: string(a[:len(a)/2])})
			},
			first: lost, then: retried},
		{name: "truncated JSON on 200 after secupay captured",
			setup: func(t *testing.T, e *env) {
				a := secupaytest.SeedAnswer()
				e.fake.Fault(secupaytest.Fault{Op: "start", ID: seed, Status: 200, Body: string(a[:len(a)/2]), CaptureFirst: true})
			},
			first: lostButCaptured, then: replay},
		{name: "200 status pending (secupay still working)",
			setup: func(t *testing.T, e *env) {
				e.fake.Fault(secupaytest.Fault{Op: "start", ID: seed, Status: 200, Body: seedWithStatus(t, "pending")})
				e.fake.SetStatus(seed, "pending")
			},
			first: lost,
			// Still pending, even after the in-doubt wait: the POS hears "in doubt" again and no
			// second start/cash is sent.
			then: want{outcome: unknown, starts: 1, captures: 0, gets: 2, phase: PhaseInDoubt}},
		{name: "200 status failed",
			setup: func(t *testing.T, e *env) {
				e.fake.Fault(secupaytest.Fault{Op: "start", ID: seed, Status: 200, Body: seedWithStatus(t, "failed")})
			},
			first: lost, then: retried},
		{name: "200 status cancelled",
			setup: func(t *testing.T, e *env) {
				e.fake.Fault(secupaytest.Fault{Op: "start", ID: seed, Status: 200, Body: seedWithStatus(t, "cancelled")})
				e.fake.SetStatus(seed, "cancelled")
			},
			// The read-back shows it cancelled: settled, not captured.
			first: want{outcome: refused, http: 200, status: "cancelled", starts: 1, gets: 1, phase: PhaseNotCaptured},
			// Asking again sends start/cash once more; secupay refuses a cancelled one, and since
			// the first call was in doubt the refusal is read back before it is believed.
			then: want{outcome: refused, http: 400, status: "error", errName: "ProductInternalException", code: "1001",
				starts: 2, captures: 0, gets: 2, phase: PhaseRefused}},
		{name: "200 status created",
			setup: func(t *testing.T, e *env) {
				e.fake.Fault(secupaytest.Fault{Op: "start", ID: seed, Status: 200, Body: seedWithStatus(t, "created")})
			},
			first: lost, then: retried},
		{name: "token rotated, new token written to the file",
			setup: func(t *testing.T, e *env) {
				if _, err := e.tokens.Token(context.Background()); err != nil { // cache the old token
					t.Fatal(err)
				}
				tok := e.fake.RotateToken() // secupay invalidates the old one
				old, err := os.Stat(e.tokenFile)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(e.tokenFile, []byte(tok), 0o600); err != nil {
					t.Fatal(err)
				}
				// Written later, so stamped later: said outright, since the kernel stamps files
				// with a clock coarser than this test is quick.
				later := old.ModTime().Add(time.Second)
				if err := os.Chtimes(e.tokenFile, later, later); err != nil {
					t.Fatal(err)
				}
			},
			first: want{outcome: captured, starts: 1, captures: 1, gets: 0, receipts: 1, phase: PhaseCaptured}, then: replay},
		{name: "token expired, cached token refused, renewal reads the file",
			setup: func(t *testing.T, e *env) {
				tokFile := e.tokenFile
				old := e.fake.RotateToken()
				if err := os.WriteFile(tokFile, []byte(old), 0o600); err != nil {
					t.Fatal(err)
				}
				if got, err := e.tokens.Token(context.Background()); err != nil || got != old {
					t.Fatalf("token %q, %v", got, err)
				}
				rewriteKeepingStamp(t, tokFile, e.fake.RotateToken()) // the old one is expired now
			},
			// 403 on the stale token, renewal, GET shows "created", start/cash once more: one capture.
			first: want{outcome: captured, starts: 2, captures: 1, gets: 1, receipts: 1, phase: PhaseCaptured},
			then:  want{outcome: captured, starts: 2, captures: 1, gets: -1, receipts: 1, phase: PhaseCaptured, replayed: true}},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			// A short client timeout keeps the slow rows quick; loopback answers in microseconds.
			e.client.set(t, secupay.Config{BaseURL: e.fake.URL, Tokens: e.tokens, Timeout: 750 * time.Millisecond})
			row.setup(t, e)
			res, err := e.svc.Capture(context.Background(), seed)
			e.check(t, "first request", row.first, res, err)
			e.fake.ClearFaults()
			// The POS asks again after the in-doubt wait (asking sooner is TestInDoubtWait's).
			e.passInDoubtWait()
			if row.before != nil {
				row.before(t, e)
			}
			res, err = e.svc.Capture(context.Background(), seed)
			e.check(t, "follow-up request", row.then, res, err)
		})
	}
}

func (e *env) check(t *testing.T, when string, w want, res *Result, err error) {
	t.Helper()
	var ref *RefusedError
	switch w.outcome {
	case captured:
		if err != nil {
			t.Fatalf("%s: err = %v, want captured", when, err)
		}
		if res.Status != "ok" || res.Job.State != JobPrinted || res.Replayed != w.replayed {
			t.Errorf("%s: answer %+v, want ok, printed, replayed=%v", when, res, w.replayed)
		}
	case refused:
		if !errors.As(err, &ref) {
			t.Fatalf("%s: err = %v, want *RefusedError", when, err)
		}
		if errors.Is(err, ErrOutcomeUnknown) {
			t.Errorf("%s: a refusal also claims an unknown outcome: %v", when, err)
		}
		r := ref.Refusal
		if r.HTTPStatus != w.http || r.Status != w.status || r.Error != w.errName || r.Code != w.code {
			t.Errorf("%s: refusal %+v, want http %d status %q error %q code %q", when, r, w.http, w.status, w.errName, w.code)
		}
		if w.support != "" && r.SupportID != w.support {
			t.Errorf("%s: support id %q, want %q", when, r.SupportID, w.support)
		}
		if w.errName != "" && r.ErrorUser == "" {
			t.Errorf("%s: refusal lost error_user: %+v", when, r)
		}
		if res != nil {
			t.Errorf("%s: refusal with an answer %+v", when, res)
		}
	case unknown:
		if !errors.Is(err, ErrOutcomeUnknown) || errors.As(err, &ref) {
			t.Fatalf("%s: err = %v, want ErrOutcomeUnknown", when, err)
		}
	}
	if n := e.fake.Calls().StartCash[seed]; n != w.starts {
		t.Errorf("%s: %d start/cash calls, want %d", when, n, w.starts)
	}
	if n := e.fake.Calls().Captures[seed]; n != w.captures {
		t.Errorf("%s: captured %d times at secupay, want %d", when, n, w.captures)
	}
	if n := e.fake.Calls().Get[seed]; w.gets >= 0 && n != w.gets {
		t.Errorf("%s: %d GETs, want %d", when, n, w.gets)
	}
	// A refused or unknown capture must print nothing, even later: nothing is on paper and
	// nothing is queued that could print (only the spool prints, and only what it holds).
	if q := e.spool.Pending(); w.receipts == 0 && len(q) != 0 {
		t.Errorf("%s: jobs queued for a capture that must print nothing: %+v", when, q)
	}
	if n := e.receipts(); n != w.receipts {
		t.Errorf("%s: %d receipts on paper, want %d", when, n, w.receipts)
	}
	rec, jerr := e.journal.Get(seed)
	if jerr != nil {
		t.Fatalf("%s: journal: %v", when, jerr)
	}
	if rec.Phase != w.phase || rec.Attempts != w.starts && w.phase != PhaseCaptured {
		t.Errorf("%s: journal phase %s attempts %d, want %s", when, rec.Phase, rec.Attempts, w.phase)
	}
	if w.phase == PhaseCaptured && (len(rec.Answer) == 0 || !rec.Spooled) {
		t.Errorf("%s: captured record without answer or spool: %+v", when, rec)
	}
}
