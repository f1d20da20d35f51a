package secupay

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/internal/steady"
	"github.com/ecrd-pos/ecrd/secupay/secupaytest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// newOAuth returns an OAuth whose clock is the test's (ecrd's one test clock, steady.Manual:
// its Wall is the OAuth's now, Advance lets time pass) and whose waits return at once.
func newOAuth(t *testing.T, srv *secupaytest.Server, grant string, logger *zap.Logger) (*OAuth, *steady.Manual) {
	t.Helper()
	dir := t.TempDir()
	secret := filepath.Join(dir, "client-secret")
	if err := os.WriteFile(secret, []byte(secupaytest.ClientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := NewOAuth(OAuthConfig{
		BaseURL: srv.URL, ClientID: secupaytest.ClientID, ClientSecretFile: secret, GrantType: grant,
		DeviceUUID: "/vendor/ecrd/serial/1234", StateFile: filepath.Join(dir, "oauth.json"), Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	clk := steady.NewManual(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC), time.Hour)
	o.now = clk.Wall
	o.wait = func(context.Context, time.Duration) error { return nil }
	return o, clk
}

func TestOAuthClientCredentialsCaches(t *testing.T) {
	srv := secupaytest.NewServer()
	defer srv.Close()
	srv.AddSeed()
	o, _ := newOAuth(t, srv, "client_credentials", nil)
	c := mustClient(t, Config{BaseURL: srv.URL, Tokens: o})
	for range 20 {
		if _, err := c.Transaction(context.Background(), secupaytest.SeedID); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.Calls().Token; n != 1 {
		t.Errorf("token requests = %d, want 1", n)
	}
}

func TestOAuthRenewsBeforeExpiry(t *testing.T) {
	srv := secupaytest.NewServer()
	defer srv.Close()
	o, clk := newOAuth(t, srv, "client_credentials", nil)
	ctx := context.Background()
	first, err := o.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(1200*time.Second - 61*time.Second)
	if tok, _ := o.Token(ctx); tok != first || srv.Calls().Token != 1 {
		t.Errorf("renewed too early")
	}
	clk.Advance(2 * time.Second) // now 59 s before expiry
	second, err := o.Token(ctx)
	if err != nil || second == first || srv.Calls().Token != 2 {
		t.Errorf("not renewed within the last minute: %v, calls %d", err, srv.Calls().Token)
	}
	if second != srv.Token() {
		t.Error("holding a token the server no longer accepts")
	}
}

func TestOAuthRenewAfterRefusal(t *testing.T) {
	srv := secupaytest.NewServer()
	defer srv.Close()
	srv.AddSeed()
	o, _ := newOAuth(t, srv, "client_credentials", nil)
	c := mustClient(t, Config{BaseURL: srv.URL, Tokens: o})
	if _, err := c.Transaction(context.Background(), secupaytest.SeedID); err != nil {
		t.Fatal(err)
	}
	srv.ExpireToken() // secupay ended the session early
	tx, err := c.CaptureCash(context.Background(), secupaytest.SeedID)
	if err != nil || tx.Status != "ok" {
		t.Fatalf("%v", err)
	}
	if srv.Calls().Token != 2 || srv.Calls().Captures[secupaytest.SeedID] != 1 {
		t.Errorf("token calls %d captures %d", srv.Calls().Token, srv.Calls().Captures[secupaytest.SeedID])
	}
	// Renew with a token that is no longer the cached one returns the cached one: another
	// caller already renewed, and asking again would log that caller out.
	cur, _ := o.Token(context.Background())
	if tok, _ := o.Renew(context.Background(), "an-old-token"); tok != cur || srv.Calls().Token != 2 {
		t.Error("renewed although the refused token was already replaced")
	}
}

func TestOAuthDeviceFlow(t *testing.T) {
	srv := secupaytest.NewServer()
	defer srv.Close()
	o, clk := newOAuth(t, srv, "device", nil)
	polls := 0
	var shown string
	o.wait = func(ctx context.Context, d time.Duration) error {
		polls++
		if d != 5*time.Second {
			t.Errorf("interval %v", d)
		}
		code, url := o.PendingUserCode()
		if code == "" || url != secupaytest.VerificationURL {
			t.Errorf("pending user code %q %q", code, url)
		}
		shown = code
		if polls == 3 {
			srv.ConfirmDevice()
		}
		clk.Advance(d)
		return nil
	}
	tok, err := o.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if tok != srv.Token() || polls != 3 {
		t.Errorf("token accepted %v, polls %d", tok == srv.Token(), polls)
	}
	if code, _ := o.PendingUserCode(); code != "" {
		t.Errorf("user code still shown after confirmation: %q", code)
	}
	if shown == "" {
		t.Error("no user code shown")
	}
	// 1 registration + 3 pending polls + 1 granted.
	if g := srv.Calls().Grants; len(g) != 5 || g[0] != "device" {
		t.Errorf("grants %v", g)
	}

	// State persisted with owner-only mode.
	st := o.cfg.StateFile
	if err := CheckSecretFile(st); err != nil {
		t.Error(err)
	}
	data, _ := os.ReadFile(st)
	var saved oauthState
	json.Unmarshal(data, &saved)
	if saved.DeviceCode == "" || saved.RefreshToken == "" {
		t.Errorf("state %s", data)
	}

	// After expiry the refresh token is used, not a new registration.
	clk.Advance(20 * time.Minute)
	tok2, err := o.Token(context.Background())
	if err != nil || tok2 == tok {
		t.Fatal(err)
	}
	if g := srv.Calls().Grants; g[len(g)-1] != "refresh_token" {
		t.Errorf("grants %v", g)
	}

	// A restarted daemon resumes from the state file without a new user code.
	o2, _ := newOAuth(t, srv, "device", nil)
	o2.cfg.StateFile = st
	if err := o2.loadState(); err != nil {
		t.Fatal(err)
	}
	if _, err := o2.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	if g := srv.Calls().Grants; g[len(g)-1] != "refresh_token" {
		t.Errorf("grants after restart %v", g)
	}
}

func TestOAuthDeviceCodeExpires(t *testing.T) {
	srv := secupaytest.NewServer()
	defer srv.Close()
	o, clk := newOAuth(t, srv, "device", nil)
	o.wait = func(ctx context.Context, d time.Duration) error { clk.Advance(d); return nil }
	_, err := o.Token(context.Background())
	if err == nil || !strings.Contains(err.Error(), "not confirmed") {
		t.Fatalf("err = %v", err)
	}
}

func TestOAuthNoConcurrentTokenRequests(t *testing.T) {
	srv := secupaytest.NewServer()
	defer srv.Close()
	o, _ := newOAuth(t, srv, "client_credentials", nil)
	// Slow token answers widen the window in which a second request could start.
	srv.Fault(secupaytest.Fault{Op: "token", Delay: 20 * time.Millisecond, Times: 100})
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := o.Token(context.Background())
			if err == nil && i%2 == 0 {
				_, err = o.Renew(context.Background(), tok)
			}
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := srv.Calls().MaxConcurrentToken; n != 1 {
		t.Errorf("%d token requests at once", n)
	}
}

func TestOAuthBadSecret(t *testing.T) {
	srv := secupaytest.NewServer()
	defer srv.Close()
	o, _ := newOAuth(t, srv, "client_credentials", nil)
	os.WriteFile(o.secretPath, []byte("wrong"), 0o600)
	_, err := o.Token(context.Background())
	var se *Error
	if !asError(err, &se) || se.Op != "token" || se.Err != "invalid_client" || se.HTTPStatus != 400 {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Error("secret in the error")
	}
}

func TestOAuthConfigChecks(t *testing.T) {
	p := writeSecret(t, "s")
	os.Chmod(p, 0o644)
	if _, err := NewOAuth(OAuthConfig{BaseURL: "https://x", ClientID: "c", ClientSecretFile: p, GrantType: "client_credentials"}); err == nil {
		t.Error("readable secret accepted")
	}
	os.Chmod(p, 0o600)
	t.Setenv("CREDENTIALS_DIRECTORY", filepath.Dir(p))
	if _, err := NewOAuth(OAuthConfig{BaseURL: "https://x", ClientID: "c", ClientSecretFile: filepath.Base(p), GrantType: "client_credentials"}); err != nil {
		t.Errorf("credentials directory: %v", err)
	}
	if _, err := NewOAuth(OAuthConfig{BaseURL: "http://x", ClientID: "c", ClientSecretFile: p, GrantType: "client_credentials"}); err == nil {
		t.Error("plain http accepted")
	}
	if _, err := NewOAuth(OAuthConfig{BaseURL: "https://x", ClientID: "c", ClientSecretFile: p, GrantType: "password"}); err == nil {
		t.Error("unknown grant accepted")
	}
}

// TestLogsNeverContainSecrets runs captures, renewals, errors and the device flow with a
// logger and checks no entry carries a token, refresh token or the client secret.
func TestLogsNeverContainSecrets(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	logger := zap.New(core)
	srv := secupaytest.NewServer()
	defer srv.Close()
	srv.SetAutoCreate(true)
	srv.AddSeed()
	o, clk := newOAuth(t, srv, "device", logger)
	o.wait = func(ctx context.Context, d time.Duration) error { srv.ConfirmDevice(); return nil }
	c := mustClient(t, Config{BaseURL: srv.URL, Tokens: o, Logger: logger, Timeout: 2 * time.Second})
	ctx := context.Background()
	c.CaptureCash(ctx, secupaytest.SeedID)
	c.CaptureCash(ctx, secupaytest.SeedID) // refused: already captured
	srv.ExpireToken()
	c.CaptureCash(ctx, "STX_LOG1")
	srv.Fault(secupaytest.Fault{Op: "get", Status: 200, Body: "{not json"})
	c.Transaction(ctx, "STX_LOG1")
	clk.Advance(time.Hour)
	c.Transaction(ctx, "STX_LOG1")
	ft := mustClient(t, Config{BaseURL: srv.URL, Tokens: NewFileToken(writeSecret(t, "file-token-secret")), Logger: logger})
	ft.CaptureCash(ctx, "STX_LOG2")

	st, _ := os.ReadFile(o.cfg.StateFile)
	var saved oauthState
	json.Unmarshal(st, &saved)
	secrets := append(srv.IssuedTokens(), secupaytest.ClientSecret, saved.RefreshToken, saved.DeviceCode, "file-token-secret")
	if logs.Len() < 6 {
		t.Fatalf("only %d log lines", logs.Len())
	}
	sawUserCode := false
	for _, e := range logs.All() {
		line, _ := json.Marshal(e.ContextMap())
		text := e.Message + " " + string(line)
		for _, s := range secrets {
			if s != "" && strings.Contains(text, s) {
				t.Errorf("log line contains a secret: %s", text)
			}
		}
		if _, ok := e.ContextMap()["user_code"]; ok && e.Level == zap.WarnLevel {
			sawUserCode = true
		}
		if e.Message == "secupay call" || e.Message == "secupay call failed" {
			if _, ok := e.ContextMap()["transaction_id"]; !ok {
				t.Errorf("no transaction_id: %s", text)
			}
		}
	}
	if !sawUserCode {
		t.Error("user code not logged for the technician")
	}
}

func asError(err error, target **Error) bool { return errors.As(err, target) }
