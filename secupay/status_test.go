package secupay

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/secupay/secupaytest"
)

func TestStatusQuestions(t *testing.T) {
	for _, tc := range []struct {
		s                           Status
		captured, capturable, final bool
	}{
		{"ok", true, false, false},
		{"received", true, false, false},
		{"collected", true, false, false},
		{"created", false, true, false},
		{"processing", false, true, false},
		{"approved", false, true, false},
		{"pending", false, false, false},
		{"failed", false, false, true},
		{"cancelled", false, false, true},
		{"canceled", false, false, true},
		// Not secupay's words: neither captured, nor capturable, nor final — in doubt.
		{"OK", false, false, false},
		{"Ok", false, false, false},
		{"ok ", false, false, false},
		{"", false, false, false},
		{"paid", false, false, false},
	} {
		if got := tc.s.Captured(); got != tc.captured {
			t.Errorf("%q.Captured() = %v", tc.s, got)
		}
		if got := tc.s.Capturable(); got != tc.capturable {
			t.Errorf("%q.Capturable() = %v", tc.s, got)
		}
		if got := tc.s.Final(); got != tc.final {
			t.Errorf("%q.Final() = %v", tc.s, got)
		}
	}
}

// TestClassifyEveryAnswer puts real answers of the loopback fake through CaptureCash and
// Classify: each lands in exactly the class the money rules need.
func TestClassifyEveryAnswer(t *testing.T) {
	htmlBody := "<html><body>502 Bad Gateway</body></html>"
	for _, tc := range []struct {
		name string
		f    secupaytest.Fault
		want Outcome
	}{
		{"clean ok", secupaytest.Fault{Op: "none"}, Captured},
		{"400 refusal", secupaytest.Fault{Status: 400}, Refused},
		{"404 not found", secupaytest.Fault{Status: 404}, Refused},
		{"422", secupaytest.Fault{Status: 422}, Refused},
		// A refusal must prove itself: only secupay's documented error body is one. A proxy's
		// or gateway's 4xx says nothing about what secupay did behind it.
		{"400 empty object", secupaytest.Fault{Status: 400, Body: `{}`}, InDoubt},
		{"400 status ok", secupaytest.Fault{Status: 400, Body: `{"status":"ok"}`}, InDoubt},
		{"404 foreign body", secupaytest.Fault{Status: 404, Body: `{"message":"no route"}`}, InDoubt},
		{"400 error without a name", secupaytest.Fault{Status: 400, Body: `{"status":"error","error_details":"x"}`}, InDoubt},
		{"400 named, status not error", secupaytest.Fault{Status: 400, Body: `{"status":"failed","error":"ProductFormatException"}`}, InDoubt},
		{"400 documented body", secupaytest.Fault{Status: 400, Body: secupaytest.ErrorBody("ProductFormatException", "no payload", "Fehler", 1001, "s1")}, Refused},
		{"409 busy with it", secupaytest.Fault{Status: 409}, InDoubt},
		{"429 slow down", secupaytest.Fault{Status: 429}, InDoubt},
		{"500 JSON", secupaytest.Fault{Status: 500}, InDoubt},
		{"502 HTML", secupaytest.Fault{Status: 502, Body: htmlBody}, InDoubt},
		{"503 JSON", secupaytest.Fault{Status: 503}, InDoubt},
		{"200 status OK (not ok)", secupaytest.Fault{Status: 200, Body: `{"id":"` + secupaytest.SeedID + `","status":"OK"}`}, InDoubt},
		{"200 unknown word", secupaytest.Fault{Status: 200, Body: `{"id":"` + secupaytest.SeedID + `","status":"paid"}`}, InDoubt},
		{"200 pending", secupaytest.Fault{Status: 200, Body: `{"id":"` + secupaytest.SeedID + `","status":"pending"}`}, InDoubt},
		{"200 duplicate status", secupaytest.Fault{Status: 200, Body: `{"id":"` + secupaytest.SeedID + `","status":"error","status":"ok"}`}, InDoubt},
		{"200 duplicate status ok first", secupaytest.Fault{Status: 200, Body: `{"status":"ok","id":"` + secupaytest.SeedID + `","status":"failed"}`}, InDoubt},
		{"cut after capture", secupaytest.Fault{CaptureFirst: true, Cut: true}, InDoubt},
		{"slow beyond the timeout", secupaytest.Fault{Delay: time.Minute}, InDoubt},
		{"still processing at the timeout", secupaytest.Fault{Processing: time.Second}, InDoubt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, c, _ := newFake(t)
			c = c.with(t, func(cfg *Config) { cfg.Timeout = 300 * time.Millisecond })
			if tc.f.Op == "" {
				tc.f.Op = "start"
			}
			srv.Fault(tc.f)
			tx, err := c.CaptureCash(context.Background(), secupaytest.SeedID)
			if got := Classify(err); got != tc.want {
				t.Fatalf("Classify(%v) = %v, want %v", err, got, tc.want)
			}
			if (err == nil) != (tx != nil) {
				t.Errorf("tx = %v with err = %v", tx, err)
			}
		})
	}
}

// A 403 on start/cash whose token cannot be renewed is in doubt, not a refusal: secupay may
// have captured (an answer lying about auth), and the read-back that would tell needs a token.
func TestTokenRefusedAndNotRenewableIsInDoubt(t *testing.T) {
	srv := secupaytest.NewServer()
	t.Cleanup(srv.Close)
	srv.AddSeed()
	srv.Fault(secupaytest.Fault{Op: "start", Status: 403, Body: secupaytest.TokenRefusedBody(), CaptureFirst: true})
	c := mustClient(t, Config{BaseURL: srv.URL, Tokens: NewFileToken(writeSecret(t, srv.Token()))})
	_, err := c.CaptureCash(context.Background(), secupaytest.SeedID)
	if got := Classify(err); got != InDoubt {
		t.Fatalf("Classify(%v) = %v, want in_doubt", err, got)
	}
	if srv.Calls().Captures[secupaytest.SeedID] != 1 {
		t.Fatal("the fault should have captured first")
	}
}

// No token means nothing was sent: a missing, empty or unreadable token file is NotSent,
// never "outcome unknown" (which would leave a record the resolver retries forever).
func TestNoTokenIsNotSent(t *testing.T) {
	srv := secupaytest.NewServer()
	t.Cleanup(srv.Close)
	srv.AddSeed()
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	open := filepath.Join(dir, "open")
	os.WriteFile(open, []byte("tok"), 0o644)
	for name, path := range map[string]string{"missing": filepath.Join(dir, "nope"), "empty": empty, "world-readable": open} {
		t.Run(name, func(t *testing.T) {
			c := mustClient(t, Config{BaseURL: srv.URL, Tokens: NewFileToken(path)})
			_, err := c.CaptureCash(context.Background(), secupaytest.SeedID)
			if got := Classify(err); got != NotSent || !errors.Is(err, ErrNotSent) {
				t.Errorf("Classify(%v) = %v, want not_sent", err, got)
			}
		})
	}
	if n := srv.Calls().Requests; n != 0 {
		t.Errorf("%d requests reached secupay without a token", n)
	}
}

func TestDuplicateStatusInAReadBackIsUnusable(t *testing.T) {
	srv, c, _ := newFake(t)
	srv.Fault(secupaytest.Fault{Op: "get", Status: 200, Body: `{"id":"` + secupaytest.SeedID + `","status":"created","status":"ok"}`})
	tx, err := c.Transaction(context.Background(), secupaytest.SeedID)
	if !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("tx = %+v, err = %v; want an unusable answer", tx, err)
	}
}
