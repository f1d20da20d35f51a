package secupay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ecrd-pos/ecrd/internal/atomicfile"
	"go.uber.org/zap"
)

// OAuthConfig configures the OAuth token source. Secrets come only from files: the command
// line and the environment are visible to other users of the till.
type OAuthConfig struct {
	BaseURL          string // same base as the API; the token endpoint is BaseURL + "/oauth/token"
	ClientID         string
	ClientSecretFile string // a relative name is looked up in $CREDENTIALS_DIRECTORY (systemd LoadCredential=) when set
	GrantType        string // "client_credentials" or "device"
	DeviceUUID       string // for the device grant, e.g. /vendor/acme/serial/1234
	StateFile        string // where device_code and refresh_token are persisted (0600, atomic write); "" keeps them in memory only
	HTTPClient       *http.Client
	Logger           *zap.Logger // the user code and verification URL are logged at warn level for the technician; never secrets or tokens
}

const (
	// renewMargin: renew this long before expires_in runs out, so a token never expires in
	// flight between the check and secupay reading it.
	renewMargin = 60 * time.Second
	// defaultExpiresIn is secupay's documented lifetime, used when an answer omits it.
	defaultExpiresIn = 1200 * time.Second
	// defaultInterval is the device-flow polling interval when the answer has none (SDKs use 5 s).
	defaultInterval = 5 * time.Second
	tokenTimeout    = 30 * time.Second
)

// OAuth is a TokenSource backed by secupay's /oauth/token. It caches the access token until
// shortly before it expires, renews with the refresh token, and falls back to the grant.
// Token requests are serialised: secupay invalidates the old token when it issues a new one,
// so two concurrent requests would leave one caller with a dead token.
type OAuth struct {
	cfg        OAuthConfig
	secretPath string

	// Seams for tests: the clock, and the wait between device-flow polls.
	now  func() time.Time
	wait func(ctx context.Context, d time.Duration) error

	sem chan struct{} // one token request at a time; a channel so waiting respects ctx

	// Guarded by sem.
	access   string
	expires  time.Time
	st       oauthState
	interval time.Duration

	mu                  sync.Mutex // guards the pending user code, read by the daemon while a poll runs
	userCode, verifyURL string
	userCodeExpires     time.Time
	tokenExpires        time.Time // when the current access token runs out, for ecrd status
}

// oauthState is what survives a restart: without the device code a till would need a
// technician to confirm it again; without the refresh token it would need a full grant.
type oauthState struct {
	DeviceCode        string    `json:"device_code,omitempty"`
	DeviceCodeExpires time.Time `json:"device_code_expires,omitzero"` // while unconfirmed; zero once confirmed
	RefreshToken      string    `json:"refresh_token,omitempty"`
}

// NewOAuth checks cfg, the secret file and the state file, and loads the state. It does not
// talk to secupay: the first Token call does.
func NewOAuth(cfg OAuthConfig) (*OAuth, error) {
	if _, err := checkBaseURL(cfg.BaseURL); err != nil {
		return nil, fmt.Errorf("secupay: oauth: %w", err)
	}
	if _, err := httpClient(cfg.HTTPClient); err != nil {
		return nil, fmt.Errorf("secupay: oauth: %w", err)
	}
	if cfg.ClientID == "" {
		return nil, errors.New("secupay: oauth: no client id")
	}
	switch cfg.GrantType {
	case "client_credentials":
	case "device":
		if cfg.DeviceUUID == "" {
			return nil, errors.New("secupay: oauth: the device grant needs a device uuid")
		}
	default:
		return nil, fmt.Errorf("secupay: oauth: grant type %q: want client_credentials or device", cfg.GrantType)
	}
	if cfg.ClientSecretFile == "" {
		return nil, errors.New("secupay: oauth: no client secret file")
	}
	o := &OAuth{
		cfg:        cfg,
		secretPath: secretPath(cfg.ClientSecretFile),
		now:        time.Now,
		wait:       sleepCtx,
		sem:        make(chan struct{}, 1),
	}
	if _, _, err := readSecret(o.secretPath); err != nil {
		return nil, fmt.Errorf("secupay: oauth: client secret: %w", err)
	}
	if cfg.StateFile != "" {
		if err := o.loadState(); err != nil {
			return nil, fmt.Errorf("secupay: oauth: state: %w", err)
		}
	}
	return o, nil
}

// secretPath resolves a relative name against systemd's credentials directory, so a unit can
// say LoadCredential=secupay-secret:/etc/ecrd/secret and ecrd be given just "secupay-secret".
func secretPath(p string) string {
	if dir := os.Getenv("CREDENTIALS_DIRECTORY"); dir != "" && !filepath.IsAbs(p) {
		return filepath.Join(dir, p)
	}
	return p
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TokenExpires returns when the access token in use runs out (zero before the first one).
// It never waits for a token request in progress.
func (o *OAuth) TokenExpires() time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.tokenExpires
}

// PendingUserCode returns the user code a technician must confirm in SecuOffice (or with
// secupay's help desk) and where, while the device grant waits for it; empty otherwise.
func (o *OAuth) PendingUserCode() (code, verificationURL string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.userCode == "" || !o.now().Before(o.userCodeExpires) {
		return "", ""
	}
	return o.userCode, o.verifyURL
}

func (o *OAuth) lock(ctx context.Context) error {
	select {
	case o.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("secupay: token: waiting for another token request: %w", ctx.Err())
	}
}

func (o *OAuth) unlock() { <-o.sem }

func (o *OAuth) valid() bool {
	return o.access != "" && o.now().Before(o.expires)
}

// Token returns the cached access token or obtains a new one.
func (o *OAuth) Token(ctx context.Context) (string, error) {
	if err := o.lock(ctx); err != nil {
		return "", err
	}
	defer o.unlock()
	if o.valid() {
		return o.access, nil
	}
	return o.obtain(ctx)
}

// Renew drops bad and obtains a new token — unless another caller already did, in which case
// that token is returned: requesting another would invalidate it under the other caller.
func (o *OAuth) Renew(ctx context.Context, bad string) (string, error) {
	if err := o.lock(ctx); err != nil {
		return "", err
	}
	defer o.unlock()
	if o.valid() && o.access != bad {
		return o.access, nil
	}
	o.access = ""
	return o.obtain(ctx)
}

// obtain: refresh token first (no user interaction, keeps the session), then the grant.
func (o *OAuth) obtain(ctx context.Context) (string, error) {
	if o.st.RefreshToken != "" {
		tok, err := o.request(ctx, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {o.st.RefreshToken}})
		if err == nil {
			return o.accept(tok)
		}
		var se *Error
		if !errors.As(err, &se) || se.HTTPStatus >= 500 {
			return "", err // secupay unreachable or broken: the grant would fail the same way
		}
		// Refused (session ended): forget the refresh token and fall back to the grant.
		o.st.RefreshToken = ""
		o.saveState()
	}
	if o.cfg.GrantType == "client_credentials" {
		tok, err := o.request(ctx, url.Values{"grant_type": {"client_credentials"}})
		if err != nil {
			return "", err
		}
		return o.accept(tok)
	}
	return o.device(ctx)
}

// device runs the device grant: reuse a known device code (confirmed, or still waiting for
// confirmation), else register the device anew and show the user code; then poll.
func (o *OAuth) device(ctx context.Context) (string, error) {
	for attempt := 0; attempt < 2; attempt++ {
		if o.st.DeviceCode == "" || (!o.st.DeviceCodeExpires.IsZero() && !o.now().Before(o.st.DeviceCodeExpires)) {
			if err := o.register(ctx); err != nil {
				return "", err
			}
		}
		tok, err := o.poll(ctx)
		if err == nil {
			return o.accept(tok)
		}
		var se *Error
		if !errors.As(err, &se) || attempt > 0 {
			return "", err
		}
		// The device code was refused (expired, revoked): register again, once.
		o.st.DeviceCode, o.st.DeviceCodeExpires = "", time.Time{}
		o.saveState()
	}
	panic("unreachable")
}

func (o *OAuth) register(ctx context.Context) error {
	ans, err := o.post(ctx, url.Values{"grant_type": {"device"}, "uuid": {o.cfg.DeviceUUID}})
	if err != nil {
		return err
	}
	var w struct {
		DeviceCode      flexString `json:"device_code"`
		UserCode        flexString `json:"user_code"`
		VerificationURL flexString `json:"verification_url"`
		ExpiresIn       flexString `json:"expires_in"`
		Interval        flexString `json:"interval"`
	}
	if err := decodeObject(ans, &w); err != nil || w.DeviceCode == "" {
		return fmt.Errorf("secupay: token: device registration: %w: answer without device_code", ErrOutcomeUnknown)
	}
	expires := o.now().Add(seconds(string(w.ExpiresIn), defaultExpiresIn))
	o.st.DeviceCode, o.st.DeviceCodeExpires = string(w.DeviceCode), expires
	o.interval = seconds(string(w.Interval), defaultInterval)
	o.saveState()
	o.mu.Lock()
	o.userCode, o.verifyURL, o.userCodeExpires = string(w.UserCode), string(w.VerificationURL), expires
	o.mu.Unlock()
	if o.cfg.Logger != nil {
		o.cfg.Logger.Warn("secupay device registration: confirm this till's user code in SecuOffice or with secupay support",
			zap.String("user_code", string(w.UserCode)), zap.String("verification_url", string(w.VerificationURL)),
			zap.String("device_uuid", o.cfg.DeviceUUID), zap.Time("expires", expires))
	}
	return nil
}

// poll asks with the device code until secupay issues a token. 401 or authorization_pending
// mean "not confirmed yet": wait interval and ask again, until the code expires or ctx ends.
// The device code survives ctx ending, so the next call resumes without a new user code.
func (o *OAuth) poll(ctx context.Context) (*tokenAnswer, error) {
	interval := o.interval
	if interval <= 0 {
		interval = defaultInterval
	}
	for {
		tok, err := o.request(ctx, url.Values{"grant_type": {"device"}, "code": {o.st.DeviceCode}})
		if err == nil {
			o.st.DeviceCodeExpires = time.Time{} // confirmed: the code now stands for the session
			o.mu.Lock()
			o.userCode, o.verifyURL = "", ""
			o.mu.Unlock()
			return tok, nil
		}
		var se *Error
		if !errors.As(err, &se) || !(se.HTTPStatus == http.StatusUnauthorized || se.Err == "authorization_pending") {
			return nil, err
		}
		if !o.st.DeviceCodeExpires.IsZero() && !o.now().Add(interval).Before(o.st.DeviceCodeExpires) {
			return nil, fmt.Errorf("secupay: token: the user code was not confirmed before it expired: %w", err)
		}
		if err := o.wait(ctx, interval); err != nil {
			return nil, fmt.Errorf("secupay: token: waiting for the user code to be confirmed: %w", err)
		}
	}
}

type tokenAnswer struct {
	access, refresh string
	expiresIn       time.Duration
}

func (o *OAuth) accept(t *tokenAnswer) (string, error) {
	margin := renewMargin
	if t.expiresIn < 2*margin {
		margin = t.expiresIn / 2
	}
	o.access, o.expires = t.access, o.now().Add(t.expiresIn-margin)
	o.mu.Lock()
	o.tokenExpires = o.now().Add(t.expiresIn)
	o.mu.Unlock()
	// secupay answers a refresh without a refresh_token: the session's one stays valid.
	if t.refresh != "" && t.refresh != o.st.RefreshToken {
		o.st.RefreshToken = t.refresh
		o.saveState()
	}
	return t.access, nil
}

// request posts a grant and decodes a token answer.
func (o *OAuth) request(ctx context.Context, form url.Values) (*tokenAnswer, error) {
	data, err := o.post(ctx, form)
	if err != nil {
		return nil, err
	}
	var w struct {
		AccessToken  flexString `json:"access_token"`
		RefreshToken flexString `json:"refresh_token"`
		ExpiresIn    flexString `json:"expires_in"`
	}
	if err := decodeObject(data, &w); err != nil || w.AccessToken == "" {
		return nil, fmt.Errorf("secupay: token: %w: answer without access_token", ErrOutcomeUnknown)
	}
	return &tokenAnswer{access: string(w.AccessToken), refresh: string(w.RefreshToken), expiresIn: seconds(string(w.ExpiresIn), defaultExpiresIn)}, nil
}

// post sends form to /oauth/token as application/x-www-form-urlencoded (as the PHP SDK does)
// and returns the body of a 200. Errors never contain the form: it carries the secret.
func (o *OAuth) post(ctx context.Context, form url.Values) ([]byte, error) {
	base, err := checkBaseURL(o.cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("secupay: token: %w", err)
	}
	hc, err := httpClient(o.cfg.HTTPClient)
	if err != nil {
		return nil, fmt.Errorf("secupay: token: %w", err)
	}
	secret, _, err := readSecret(o.secretPath) // re-read: a rotated secret needs no restart
	if err != nil {
		return nil, fmt.Errorf("secupay: token: client secret: %w", err)
	}
	form.Set("client_id", o.cfg.ClientID)
	form.Set("client_secret", secret)
	ctx, cancel := context.WithTimeout(ctx, tokenTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("secupay: token: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("secupay: token: %w", redactURLError(err))
	}
	defer resp.Body.Close()
	data, err := readBody(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("secupay: token: %d: %w: %w", resp.StatusCode, ErrOutcomeUnknown, err)
	}
	if resp.StatusCode != http.StatusOK {
		e, derr := decodeError("token", "", resp.StatusCode, data)
		if derr != nil {
			return nil, fmt.Errorf("secupay: token: %d answer (%d bytes): %w: %w", resp.StatusCode, len(data), ErrOutcomeUnknown, derr)
		}
		return nil, e
	}
	return data, nil
}

// redactURLError keeps the operation and cause of a transport error; the URL carries no
// secret (the form is in the body), but being strict here costs nothing.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s /oauth/token: %w", ue.Op, ue.Err)
	}
	return err
}

func seconds(s string, def time.Duration) time.Duration {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || f <= 0 {
		return def
	}
	return time.Duration(f * float64(time.Second))
}

func (o *OAuth) loadState() error {
	if err := CheckSecretFile(o.cfg.StateFile); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	data, err := os.ReadFile(o.cfg.StateFile)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, &o.st); err != nil {
		return fmt.Errorf("%s: %w", o.cfg.StateFile, err)
	}
	return nil
}

// saveState persists the device code and refresh token. A failure is logged, not returned:
// the token in hand still works, and losing the state only costs a new confirmation later.
func (o *OAuth) saveState() {
	if o.cfg.StateFile == "" {
		return
	}
	data, err := json.Marshal(o.st)
	if err == nil {
		err = atomicfile.WriteFile(o.cfg.StateFile, data, 0o600)
	}
	if err != nil && o.cfg.Logger != nil {
		o.cfg.Logger.Error("secupay: saving OAuth state", zap.String("path", o.cfg.StateFile), zap.Error(err))
	}
}
