package secupay

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/secupay/secupaytest"
)

// staticTokens hands out a fixed token; Renew asks the fake to issue a new one, as a real
// OAuth renewal would (which also invalidates the old).
type staticTokens struct {
	srv *secupaytest.Server

	mu     sync.Mutex
	tok    string
	renews int
}

func (s *staticTokens) Token(context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tok, nil
}

func (s *staticTokens) Renew(_ context.Context, bad string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.renews++
	s.tok = s.srv.RotateToken()
	return s.tok, nil
}

func newFake(t *testing.T) (*secupaytest.Server, *Client, *staticTokens) {
	t.Helper()
	srv := secupaytest.NewServer()
	t.Cleanup(srv.Close)
	srv.AddSeed()
	toks := &staticTokens{srv: srv, tok: srv.Token()}
	c := mustClient(t, Config{BaseURL: srv.URL, Tokens: toks, Timeout: 5 * time.Second})
	return srv, c, toks
}

func TestCaptureCashSeed(t *testing.T) {
	srv, c, _ := newFake(t)
	tx, err := c.CaptureCash(context.Background(), secupaytest.SeedID)
	if err != nil {
		t.Fatal(err)
	}
	if tx.Status != "ok" || tx.ID != secupaytest.SeedID || tx.TransID != "29008411" || tx.PaymentMethod != "cash" ||
		tx.Object != "smart.transactions" || !tx.IsDemo {
		t.Errorf("got %+v", tx)
	}
	var lines []map[string]any
	if err := json.Unmarshal(tx.Receipt, &lines); err != nil || len(lines) < 4 {
		t.Errorf("receipt %s: %v", tx.Receipt, err)
	}
	if !json.Valid(tx.Raw) || !strings.Contains(string(tx.Raw), "John's Bakery") {
		t.Errorf("Raw does not keep the whole answer: %.100s", tx.Raw)
	}
	if n := srv.Calls().StartCash[secupaytest.SeedID]; n != 1 {
		t.Errorf("start/cash calls = %d, want 1", n)
	}

	got, err := c.Transaction(context.Background(), secupaytest.SeedID)
	if err != nil || got.Status != "ok" {
		t.Fatalf("read back: %v %+v", err, got)
	}
}

func TestRequestHeaders(t *testing.T) {
	var got http.Header
	var method, path string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, method, path = r.Header.Clone(), r.Method, r.URL.EscapedPath()
		w.Write([]byte(`{"id":"STX_A1","status":"ok"}`))
	}))
	defer ts.Close()
	c := mustClient(t, Config{BaseURL: ts.URL + "/", Tokens: &staticTokens{tok: "abc"}})
	if _, err := c.CaptureCash(context.Background(), "STX_A1"); err != nil {
		t.Fatal(err)
	}
	if method != "POST" || path != "/api/v2/Smart/Transactions/STX_A1/start/cash" {
		t.Errorf("request %s %s", method, path)
	}
	if got.Get("Authorization") != "Bearer abc" || got.Get("Accept") != "application/json" ||
		got.Get("Content-Type") != "application/json" || got.Get("Authenticate") != "" {
		t.Errorf("headers %v", got)
	}
}

func TestCaptureStatusNotOK(t *testing.T) {
	srv, c, _ := newFake(t)
	srv.Fault(secupaytest.Fault{Op: "start", Status: 200,
		Body: `{"object":"smart.transactions","id":"` + secupaytest.SeedID + `","status":"pending","trans_id":12}`})
	_, err := c.CaptureCash(context.Background(), secupaytest.SeedID)
	var se *Error
	if !errors.As(err, &se) || se.Transaction == nil || se.Status != "pending" || se.HTTPStatus != 200 {
		t.Fatalf("err = %#v", err)
	}
	if se.Transaction.TransID != "12" {
		t.Errorf("trans_id %q", se.Transaction.TransID)
	}
	want := `secupay: capture ` + secupaytest.SeedID + `: status "pending", not "ok"`
	if err.Error() != want {
		t.Errorf("Error() = %q, want %q", err, want)
	}
	if errors.Is(err, ErrOutcomeUnknown) {
		t.Error("a readable answer is not an unknown outcome")
	}
}

func TestCaptureRenewsExpiredToken(t *testing.T) {
	srv, c, toks := newFake(t)
	srv.ExpireToken()
	tx, err := c.CaptureCash(context.Background(), secupaytest.SeedID)
	if err != nil {
		t.Fatal(err)
	}
	if tx.Status != "ok" || toks.renews != 1 {
		t.Errorf("status %q, renews %d", tx.Status, toks.renews)
	}
	// Refused, read back ("created"), then captured once.
	if s, g, cap := srv.Calls().StartCash[secupaytest.SeedID], srv.Calls().Get[secupaytest.SeedID], srv.Calls().Captures[secupaytest.SeedID]; s != 2 || g != 1 || cap != 1 {
		t.Errorf("start calls %d, gets %d, captures %d; want 2, 1, 1", s, g, cap)
	}
}

func TestCaptureFirstThenTokenRefusedDoesNotStartAgain(t *testing.T) {
	srv, c, toks := newFake(t)
	srv.Fault(secupaytest.Fault{Op: "start", CaptureFirst: true, Status: 403, Body: secupaytest.TokenRefusedBody()})
	tx, err := c.CaptureCash(context.Background(), secupaytest.SeedID)
	if err != nil {
		t.Fatal(err)
	}
	if tx.Status != "ok" || tx.TransID != "29008411" || toks.renews != 1 {
		t.Errorf("got %+v, renews %d", tx, toks.renews)
	}
	if n := srv.Calls().StartCash[secupaytest.SeedID]; n != 1 {
		t.Errorf("start/cash calls = %d, want 1: a captured transaction was started again", n)
	}
}

func TestCaptureAfterRenewReadsOtherStatus(t *testing.T) {
	srv, c, _ := newFake(t)
	srv.SetStatus(secupaytest.SeedID, "cancelled")
	srv.ExpireToken()
	_, err := c.CaptureCash(context.Background(), secupaytest.SeedID)
	var se *Error
	if !errors.As(err, &se) || se.Status != "cancelled" || se.Transaction == nil {
		t.Fatalf("err = %v", err)
	}
	if n := srv.Calls().StartCash[secupaytest.SeedID]; n != 1 {
		t.Errorf("start/cash calls = %d, want 1", n)
	}
}

func TestTransactionRetriesOnceAfter401(t *testing.T) {
	srv, c, toks := newFake(t)
	srv.Fault(secupaytest.Fault{Op: "get", Status: 401, Body: `{"error":"invalid_token","error_description":"The access token is invalid"}`})
	tx, err := c.Transaction(context.Background(), secupaytest.SeedID)
	if err != nil || tx.Status != "created" {
		t.Fatalf("%v %+v", err, tx)
	}
	if toks.renews != 1 || srv.Calls().Get[secupaytest.SeedID] != 2 {
		t.Errorf("renews %d gets %d", toks.renews, srv.Calls().Get[secupaytest.SeedID])
	}

	// Refused twice: the second refusal is the answer, no loop.
	srv.Fault(secupaytest.Fault{Op: "get", Status: 401, Times: 2})
	if _, err := c.Transaction(context.Background(), secupaytest.SeedID); err == nil {
		t.Fatal("want an error")
	}
	if toks.renews != 2 {
		t.Errorf("renews %d, want 2", toks.renews)
	}
}

func TestSecondCaptureIsRefused(t *testing.T) {
	srv, c, _ := newFake(t)
	if _, err := c.CaptureCash(context.Background(), secupaytest.SeedID); err != nil {
		t.Fatal(err)
	}
	_, err := c.CaptureCash(context.Background(), secupaytest.SeedID)
	var se *Error
	if !errors.As(err, &se) || se.HTTPStatus != 400 || se.Err != "ProductInternalException" {
		t.Fatalf("err = %v", err)
	}
	if srv.Calls().Captures[secupaytest.SeedID] != 1 {
		t.Error("captured twice")
	}
}

func TestErrorBodies(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   Error
		text   string
	}{
		{"400 code as string", 400,
			secupaytest.ErrorBody("ProductFormatException", "no payload", "Ungültige Daten", "1001", "abc123"),
			Error{HTTPStatus: 400, Status: "error", Err: "ProductFormatException", ErrorDetails: "no payload", ErrorUser: "Ungültige Daten", Code: "1001", SupportID: "abc123"},
			"400 ProductFormatException: no payload (code 1001, support id abc123)"},
		{"403 other exception, code as number", 403,
			secupaytest.ErrorBody("ProductSecurityException", "forbidden", "Nicht erlaubt", 2011, "f8e0"),
			Error{HTTPStatus: 403, Status: "error", Err: "ProductSecurityException", ErrorDetails: "forbidden", ErrorUser: "Nicht erlaubt", Code: "2011", SupportID: "f8e0"},
			"403 ProductSecurityException: forbidden (code 2011, support id f8e0)"},
		{"409 duplicate", 409,
			secupaytest.ErrorBody("ProductDuplicateException", "duplicate", "Doppelt", 1005, "d1"),
			Error{HTTPStatus: 409, Status: "error", Err: "ProductDuplicateException", ErrorDetails: "duplicate", ErrorUser: "Doppelt", Code: "1005", SupportID: "d1"},
			"409 ProductDuplicateException: duplicate (code 1005, support id d1)"},
		{"502 proxy without supportId, code 0", 502,
			`{"status":"error","error":"ProductInternalException","error_details":"Proxy: Backend not availble","error_user":"Es ist ein interner Fehler aufgetreten","code":0}`,
			Error{HTTPStatus: 502, Status: "error", Err: "ProductInternalException", ErrorDetails: "Proxy: Backend not availble", ErrorUser: "Es ist ein interner Fehler aufgetreten", Code: "0"},
			"502 ProductInternalException: Proxy: Backend not availble (code 0)"},
		{"500 nulls and unknown keys", 500,
			`{"status":"error","error":"ProductInternalException","error_details":null,"error_user":"Fehler","code":null,"supportId":7,"extra":{"a":[1]}}`,
			Error{HTTPStatus: 500, Status: "error", Err: "ProductInternalException", ErrorUser: "Fehler", SupportID: "7"},
			"500 ProductInternalException: Fehler (support id 7)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, c, _ := newFake(t)
			srv.Fault(secupaytest.Fault{Op: "start", Status: tc.status, Body: tc.body})
			_, err := c.CaptureCash(context.Background(), secupaytest.SeedID)
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want *Error", err)
			}
			want := tc.want
			want.Op, want.TransactionID = "capture", secupaytest.SeedID
			if *se != want {
				t.Errorf("got  %+v\nwant %+v", *se, want)
			}
			if text := "secupay: capture " + secupaytest.SeedID + ": " + tc.text; err.Error() != text {
				t.Errorf("Error() = %q\nwant      %q", err, text)
			}
			if errors.Is(err, ErrOutcomeUnknown) {
				t.Error("a JSON error body is a usable answer")
			}
		})
	}
}

func TestUnknownTransaction(t *testing.T) {
	_, c, _ := newFake(t)
	_, err := c.Transaction(context.Background(), "STX_NOSUCH")
	var se *Error
	if !errors.As(err, &se) || se.HTTPStatus != 404 || se.Err != "ProductNotFoundException" || se.SupportID == "" {
		t.Fatalf("err = %v", err)
	}
}

func TestTokenRefusedDocumentedError(t *testing.T) {
	srv, _, _ := newFake(t)
	c := mustClient(t, Config{BaseURL: srv.URL, Tokens: NewFileToken(writeSecret(t, "wrong"))})
	_, err := c.CaptureCash(context.Background(), secupaytest.SeedID)
	var se *Error
	if !errors.As(err, &se) {
		t.Fatalf("err = %v", err)
	}
	if se.HTTPStatus != 403 || se.Err != "ProductNotAllowedException" || se.ErrorDetails != "Valid auth token required" ||
		se.ErrorUser != "Es ist ein unbekannter Fehler aufgetreten (Code 2003)" || se.Code != "2003" || len(se.SupportID) != 32 {
		t.Errorf("%+v", se)
	}
	if !strings.Contains(err.Error(), "403 ProductNotAllowedException: Valid auth token required (code 2003, support id ") ||
		!strings.Contains(err.Error(), "was refused by secupay") {
		t.Errorf("Error() = %q", err)
	}
	if srv.Calls().StartCash[secupaytest.SeedID] != 1 || srv.Calls().Get[secupaytest.SeedID] != 0 {
		t.Error("a static token that cannot be renewed must not be retried")
	}
}

func TestOutcomeUnknown(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    secupaytest.Fault
	}{
		{"malformed JSON", secupaytest.Fault{Status: 200, Body: `{"status":"ok",}`}},
		{"truncated JSON", secupaytest.Fault{Status: 200, Body: `{"status":"ok","id":"` + secupaytest.SeedID}},
		{"not an object", secupaytest.Fault{Status: 200, Body: `[]`}},
		{"no status", secupaytest.Fault{Status: 200, Body: `{"id":"` + secupaytest.SeedID + `"}`}},
		{"other transaction", secupaytest.Fault{Status: 200, Body: `{"id":"STX_OTHER","status":"ok"}`}},
		{"HTML from a proxy", secupaytest.Fault{Status: 502, Body: `<html><body>Bad Gateway</body></html>`}},
		{"empty 500", secupaytest.Fault{Status: 500, Body: " "}},
		{"403 not JSON", secupaytest.Fault{Status: 403, Body: `Forbidden`}},
		{"204", secupaytest.Fault{Status: 204, Body: " "}},
		{"cut after capture", secupaytest.Fault{CaptureFirst: true, Cut: true}},
		{"cut error", secupaytest.Fault{Status: 500, Cut: true}},
		{"slow beyond timeout", secupaytest.Fault{Delay: time.Minute}},
		{"slow after capture", secupaytest.Fault{Delay: time.Minute, CaptureFirst: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, c, _ := newFake(t)
			c = c.with(t, func(cfg *Config) { cfg.Timeout = 300 * time.Millisecond })
			tc.f.Op = "start"
			srv.Fault(tc.f)
			tx, err := c.CaptureCash(context.Background(), secupaytest.SeedID)
			if !errors.Is(err, ErrOutcomeUnknown) {
				t.Fatalf("err = %v, tx = %+v; want ErrOutcomeUnknown", err, tx)
			}
			var se *Error
			if errors.As(err, &se) {
				t.Errorf("an unusable answer must not look like secupay's refusal: %v", err)
			}
			if srv.Calls().StartCash[secupaytest.SeedID] != 1 {
				t.Error("retried start/cash after an unknown outcome")
			}
		})
	}
}

func TestOversizeAnswer(t *testing.T) {
	srv, c, _ := newFake(t)
	big := `{"status":"ok","id":"` + secupaytest.SeedID + `","pad":"` + strings.Repeat("x", maxBody) + `"}`
	srv.Fault(secupaytest.Fault{Op: "get", Status: 200, Body: big})
	_, err := c.Transaction(context.Background(), secupaytest.SeedID)
	if !errors.Is(err, ErrOutcomeUnknown) || !strings.Contains(err.Error(), "larger than 8 MiB") {
		t.Fatalf("err = %v", err)
	}
}

func TestInvalidIDsSendNothing(t *testing.T) {
	srv, c, _ := newFake(t)
	srv.SetAutoCreate(true)
	for _, id := range []string{"../x", "STX_a/b", "STX_%2F", "?", "", "STX_", "STX_" + strings.Repeat("A", 196),
		"STX_Ä1", "STX_A B", "stx_ABC", "STX_A\x00", "STX_A?x=1", "STX_A#f", "STX_.."} {
		if _, err := c.CaptureCash(context.Background(), id); err == nil {
			t.Errorf("capture %q: no error", id)
		}
		if _, err := c.Transaction(context.Background(), id); err == nil {
			t.Errorf("get %q: no error", id)
		}
	}
	if n := srv.Calls().Requests; n != 0 {
		t.Errorf("%d requests reached the server", n)
	}
	if !ValidID("STX_"+strings.Repeat("A", 64)) || ValidID("STX_"+strings.Repeat("A", 65)) || !ValidID(secupaytest.SeedID) {
		t.Error("length bounds")
	}
}

func TestBaseURL(t *testing.T) {
	for _, ok := range []string{"https://connect-testing.secuconnect.com", "https://connect.secucard.com/", "http://127.0.0.1:8080",
		"http://127.1.2.3", "http://localhost:9", "http://[::1]:80"} {
		if _, err := checkBaseURL(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "http://connect.secucard.com", "http://10.0.0.1", "http://localhost.example.com", "ftp://x",
		"https://user:pw@connect.secucard.com", "https://x?y=1", "connect.secucard.com", "http://[::2]"} {
		if _, err := checkBaseURL(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	// Refused when the client is made, before anything can be sent: the unresolvable host
	// would otherwise give a DNS error at the first capture.
	_, err := NewClient(Config{BaseURL: "http://secupay.invalid", Tokens: &staticTokens{tok: "t"}})
	if err == nil || !strings.Contains(err.Error(), "plain http is allowed only to loopback") {
		t.Errorf("err = %v", err)
	}
	if _, err := NewClient(Config{BaseURL: "https://connect.secucard.com"}); err == nil {
		t.Error("a client without a token source was made")
	}
}

func TestConnectionRefusedIsNotUnknown(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	url := ts.URL
	ts.Close()
	c := mustClient(t, Config{BaseURL: url, Tokens: &staticTokens{tok: "t"}})
	_, err := c.CaptureCash(context.Background(), "STX_A")
	if err == nil || errors.Is(err, ErrOutcomeUnknown) {
		t.Errorf("err = %v: nothing was sent, so the outcome is known", err)
	}
}

func TestCallerDeadline(t *testing.T) {
	srv, c, _ := newFake(t)
	srv.Fault(secupaytest.Fault{Op: "start", Delay: time.Minute})
	// The caller's deadline (shorter than Client.Timeout) reaches the HTTP call.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := c.CaptureCash(ctx, secupaytest.SeedID)
	if !errors.Is(err, ErrOutcomeUnknown) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v", err)
	}
}

func TestAutoCreateManyConcurrent(t *testing.T) {
	srv, c, _ := newFake(t)
	srv.SetAutoCreate(true)
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := "STX_LOAD" + strings.Repeat("0", 3) + string(rune('A'+i%26)) + strings.Repeat("B", i/26)
			tx, err := c.CaptureCash(context.Background(), id)
			if err == nil && (tx.Status != "ok" || tx.TransID == "" || len(tx.Receipt) == 0) {
				err = errors.New("bad answer " + string(tx.Raw))
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := srv.Calls().TotalStartCash; n != 200 {
		t.Errorf("start calls %d", n)
	}
}

func TestInsecureHTTPClientRefused(t *testing.T) {
	srv, c, _ := newFake(t)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig.InsecureSkipVerify = true
	cfg := c.cfg
	cfg.HTTPClient = &http.Client{Transport: tr}
	if _, err := NewClient(cfg); err == nil || !strings.Contains(err.Error(), "TLS verification disabled") {
		t.Errorf("InsecureSkipVerify accepted: %v", err)
	}
	if srv.Calls().Requests != 0 {
		t.Error("request sent")
	}
}

// mustClient is NewClient for a configuration the test knows to be valid.
func mustClient(t testing.TB, cfg Config) *Client {
	t.Helper()
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// with returns a client configured as c, changed by change.
func (c *Client) with(t testing.TB, change func(*Config)) *Client {
	cfg := c.cfg
	change(&cfg)
	return mustClient(t, cfg)
}
