package secupay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"
)

// ErrOutcomeUnknown is wrapped when the request may have reached secupay but no usable answer
// came back: timeout, connection cut, truncated or non-JSON body (on any status), an answer
// larger than the read limit. The caller must read the transaction back before deciding.
var ErrOutcomeUnknown = errors.New("secupay: no usable answer")

// ErrNotSent is wrapped when the request certainly did not reach secupay: the connection
// could not be made, the name not resolved, or the server's certificate was not trusted.
// Nothing can have been captured.
var ErrNotSent = errors.New("secupay not reachable, nothing sent")

const (
	// DefaultTimeout bounds one Client call (including a token renewal and its retries) when
	// Client.Timeout is 0.
	DefaultTimeout = 30 * time.Second
	// maxBody bounds what is read of an answer. A Smart Transaction with a long receipt is tens
	// of KiB; 8 MiB is generous and still keeps a broken proxy from filling the till's memory.
	maxBody = 8 << 20

	errNotAllowed = "ProductNotAllowedException"
)

// Config is what a Client needs. NewClient checks it, so that a till configured wrongly fails
// when the daemon starts instead of answering every capture with an error.
type Config struct {
	BaseURL    string        // e.g. https://connect-testing.secuconnect.com — without /api/v2; plain http only to loopback
	Tokens     TokenSource   // one per daemon, see TokenSource
	HTTPClient *http.Client  // nil: a default with sane timeouts; TLS verification is never disabled
	Timeout    time.Duration // per call (CaptureCash or Transaction, retries included); 0 means 30 s
	Logger     *zap.Logger   // nil means no logs; the token is never logged
	// Observe, if set, is told about every public call when it ends (for metrics): op is
	// "capture" or "get", httpStatus the last answer's HTTP status (0: none came back), d the
	// whole call including a token renewal, err nil on success. It must not block.
	Observe func(op string, httpStatus int, d time.Duration, err error)
}

// Client speaks to the Smart Transactions API. It is safe for concurrent use.
type Client struct {
	base   string // checked BaseURL, without a trailing slash
	tokens TokenSource
	hc     *http.Client
	cfg    Config
}

// NewClient checks cfg and returns a Client: the base URL must be https (or http to
// loopback, for tests and the demo), a token source must be given, and an HTTP client that
// skips TLS verification is refused.
func NewClient(cfg Config) (*Client, error) {
	base, err := checkBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("secupay: %w", err)
	}
	if cfg.Tokens == nil {
		return nil, errors.New("secupay: no token source configured")
	}
	hc, err := httpClient(cfg.HTTPClient)
	if err != nil {
		return nil, fmt.Errorf("secupay: %w", err)
	}
	return &Client{base: base, tokens: cfg.Tokens, hc: hc, cfg: cfg}, nil
}

// CaptureCash tells secupay that the merchant took the money itself:
// POST /api/v2/Smart/Transactions/{id}/start/cash. It succeeds only on 200 with a transaction
// whose status is "ok". A 200 with another status is an *Error with Transaction set.
//
// After a refused token (401, or 403 ProductNotAllowedException) it renews the token once and
// then reads the transaction before anything else: secupay documents no idempotency, so a
// blind second start/cash could capture twice or fail confusingly. "ok" means the first call
// did capture (its answer was just a lie about auth, or lost); "created"/"processing" means it
// did not, and start/cash is sent once more.
func (c *Client) CaptureCash(ctx context.Context, id string) (tx *Transaction, err error) {
	start := time.Now()
	cl := &call{c: c, op: "capture", id: id}
	defer func() { cl.log(start, tx, err) }()
	if !ValidID(id) {
		return nil, fmt.Errorf("secupay: capture %q: not a valid Smart Transaction id", id)
	}
	ctx, cancel := c.callContext(ctx)
	defer cancel()

	path := "/api/v2/Smart/Transactions/" + url.PathEscape(id) + "/start/cash"
	tok, err := c.token(ctx, cl)
	if err != nil {
		return nil, err
	}
	ans, err := cl.do(ctx, http.MethodPost, path, tok)
	if err != nil {
		return nil, err
	}
	if !ans.authRefused() {
		return ans.captureResult()
	}

	// The token was refused. Renew once, then learn what the refused call did.
	tok, err = c.renew(ctx, cl, tok, ans)
	if err != nil {
		return nil, err
	}
	cl.op = "get"
	got, err := cl.do(ctx, http.MethodGet, "/api/v2/Smart/Transactions/"+url.PathEscape(id), tok)
	cl.op = "capture"
	if err != nil {
		return nil, err
	}
	read, err := got.transaction()
	if err != nil {
		return nil, err
	}
	switch {
	case read.Status.Captured():
		return read, nil
	case read.Status.Capturable():
		// secupay refused the token, so it did not act on the call (the one answer it
		// documents as "not executed", on which the SDKs retry too): this is the first
		// call that counts.
		ans, err = cl.do(ctx, http.MethodPost, path, tok)
		if err != nil {
			return nil, err
		}
		return ans.captureResult()
	default:
		// Neither captured nor capturable (pending, failed, cancelled, a word ecrd does not
		// know): report the status read back, which says more than the refused token did.
		return nil, &Error{Op: "capture", TransactionID: id, HTTPStatus: got.status, Status: string(read.Status), Transaction: read}
	}
}

// Transaction reads a Smart Transaction: GET /api/v2/Smart/Transactions/{id}. Any status on a
// 200 is success — deciding what it means is the caller's job. A refused token is renewed and
// the read retried once: a GET changes nothing, so retrying is safe.
func (c *Client) Transaction(ctx context.Context, id string) (tx *Transaction, err error) {
	start := time.Now()
	cl := &call{c: c, op: "get", id: id}
	defer func() { cl.log(start, tx, err) }()
	if !ValidID(id) {
		return nil, fmt.Errorf("secupay: get %q: not a valid Smart Transaction id", id)
	}
	ctx, cancel := c.callContext(ctx)
	defer cancel()

	path := "/api/v2/Smart/Transactions/" + url.PathEscape(id)
	tok, err := c.token(ctx, cl)
	if err != nil {
		return nil, err
	}
	ans, err := cl.do(ctx, http.MethodGet, path, tok)
	if err != nil {
		return nil, err
	}
	if ans.authRefused() {
		if tok, err = c.renew(ctx, cl, tok, ans); err != nil {
			return nil, err
		}
		if ans, err = cl.do(ctx, http.MethodGet, path, tok); err != nil {
			return nil, err
		}
	}
	return ans.transaction()
}

func (c *Client) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	d := c.cfg.Timeout
	if d <= 0 {
		d = DefaultTimeout
	}
	return context.WithTimeout(ctx, d)
}

// token gets the bearer token. Without one nothing is sent, so its errors are ErrNotSent.
func (c *Client) token(ctx context.Context, cl *call) (string, error) {
	tok, err := c.tokens.Token(ctx)
	if err == nil && tok == "" {
		err = errors.New("token source returned an empty token")
	}
	if err != nil {
		return "", fmt.Errorf("secupay: %s %s: %w: token: %w", cl.op, cl.id, ErrNotSent, err)
	}
	return tok, nil
}

// renew asks for a new token after secupay refused bad. If that fails, the caller gets both
// reasons: the refusal (an *Error) and why no new token could be had.
func (c *Client) renew(ctx context.Context, cl *call, bad string, refused *answer) (string, error) {
	cl.renewed = true
	tok, err := c.tokens.Renew(ctx, bad)
	if err == nil && tok == "" {
		err = errors.New("token source returned an empty token")
	}
	if err != nil {
		return "", fmt.Errorf("%w; renewing the token: %w", refused.asError(), err)
	}
	return tok, nil
}

// call carries what one public method's log line needs.
type call struct {
	c        *Client
	op, id   string
	requests int
	renewed  bool
	last     int // HTTP status of the last answer
}

func (cl *call) log(start time.Time, tx *Transaction, err error) {
	if cl.c.cfg.Observe != nil {
		cl.c.cfg.Observe(cl.op, cl.last, time.Since(start), err)
	}
	logger := cl.c.cfg.Logger
	if logger == nil {
		return
	}
	fields := []zap.Field{
		zap.String("op", cl.op),
		zap.String("transaction_id", cl.id),
		zap.Int("http_status", cl.last),
		zap.Int("requests", cl.requests),
		zap.Bool("token_renewed", cl.renewed),
		zap.Duration("duration", time.Since(start)),
	}
	if tx != nil {
		fields = append(fields, zap.String("status", string(tx.Status)), zap.String("trans_id", tx.TransID))
	}
	var se *Error
	switch {
	case err == nil:
		logger.Info("secupay call", fields...)
	case errors.As(err, &se):
		fields = append(fields, zap.String("status", se.Status), zap.String("error", se.Err),
			zap.String("error_details", se.ErrorDetails), zap.String("code", se.Code),
			zap.String("support_id", se.SupportID), zap.Error(err))
		logger.Warn("secupay call failed", fields...)
	default:
		fields = append(fields, zap.Bool("outcome_unknown", errors.Is(err, ErrOutcomeUnknown)), zap.Error(err))
		logger.Warn("secupay call failed", fields...)
	}
}

// answer is a response read whole (up to maxBody).
type answer struct {
	cl     *call
	op, id string
	status int
	body   []byte
	ctype  string
}

// do sends one request. Errors it returns mean no answer to interpret: either nothing was sent
// (bad base URL, connection refused — plain errors) or the outcome is unknown (wraps
// ErrOutcomeUnknown).
func (cl *call) do(ctx context.Context, method, path, tok string) (*answer, error) {
	var body io.Reader
	if method == http.MethodPost {
		body = http.NoBody
	}
	req, err := http.NewRequestWithContext(ctx, method, cl.c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("secupay: %s %s: %w: %w", cl.op, cl.id, ErrNotSent, err)
	}
	// The seed (secupay's "Step 4: Capture the Payment") shows an "Authenticate: Bearer …"
	// header. That is a documentation typo: secupay's OAuth page, its other examples and every
	// SDK send "Authorization: Bearer …" (docs/secupay.md, "Authentication"), so only
	// Authorization is sent.
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	if method == http.MethodPost {
		// The PHP SDK sends a JSON content type on start/cash even with an empty body.
		req.Header.Set("Content-Type", "application/json")
	}
	cl.requests++
	resp, err := cl.c.hc.Do(req)
	if err != nil {
		if notSent(err) {
			return nil, fmt.Errorf("secupay: %s %s: %w: %w", cl.op, cl.id, ErrNotSent, err)
		}
		return nil, fmt.Errorf("secupay: %s %s: %w: %w", cl.op, cl.id, ErrOutcomeUnknown, err)
	}
	defer resp.Body.Close()
	cl.last = resp.StatusCode
	data, err := readBody(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("secupay: %s %s: %d: %w: %w", cl.op, cl.id, resp.StatusCode, ErrOutcomeUnknown, err)
	}
	return &answer{cl: cl, op: cl.op, id: cl.id, status: resp.StatusCode, body: data, ctype: resp.Header.Get("Content-Type")}, nil
}

func readBody(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("reading the answer: %w", err)
	}
	if len(data) > maxBody {
		return nil, fmt.Errorf("answer larger than %d MiB, not read", maxBody>>20)
	}
	return data, nil
}

// notSent reports errors that happen before a request can have left the till: no route,
// connection refused, DNS, a certificate that does not verify. Then secupay cannot have acted.
func notSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	var cert *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostname x509.HostnameError
	return errors.As(err, &dns) || errors.As(err, &cert) || errors.As(err, &unknownAuth) || errors.As(err, &hostname)
}

// authRefused: secupay says "Valid auth token required" with 403 ProductNotAllowedException;
// the SDKs also re-authenticate on 401 (whatever its body).
func (a *answer) authRefused() bool {
	if a.status == http.StatusUnauthorized {
		return true
	}
	e, err := decodeError(a.op, a.id, a.status, a.body)
	return err == nil && e.authRefused()
}

// asError turns a non-200 answer into an *Error, or into an outcome-unknown error when the
// body is not a JSON object (a proxy's HTML page tells nothing about what secupay did).
func (a *answer) asError() error {
	e, err := decodeError(a.op, a.id, a.status, a.body)
	if err != nil {
		return a.unusable(err)
	}
	return e
}

func (a *answer) unusable(why error) error {
	return fmt.Errorf("secupay: %s %s: %d answer (%s, %d bytes): %w: %w", a.op, a.id, a.status, orNone(a.ctype), len(a.body), ErrOutcomeUnknown, why)
}

func orNone(s string) string {
	if s == "" {
		return "no content type"
	}
	return s
}

// transaction decodes a 200 answer. A 2xx other than 200, or a 3xx (redirects are not
// followed), is not an answer secupay documents: unusable, not an *Error, because secupay may
// have acted on it.
func (a *answer) transaction() (*Transaction, error) {
	if a.status != http.StatusOK {
		if a.status >= 400 {
			return nil, a.asError()
		}
		return nil, a.unusable(fmt.Errorf("HTTP status %d is not 200", a.status))
	}
	tx, err := decodeTransaction(a.body)
	if err != nil {
		return nil, a.unusable(err)
	}
	if tx.Status == "" {
		return nil, a.unusable(errors.New("no status in the answer"))
	}
	if tx.ID != "" && tx.ID != a.id {
		return nil, a.unusable(fmt.Errorf("answer is about %q", tx.ID))
	}
	return tx, nil
}

func (a *answer) captureResult() (*Transaction, error) {
	tx, err := a.transaction()
	if err != nil {
		return nil, err
	}
	if tx.Status != StatusOK {
		return nil, &Error{Op: "capture", TransactionID: a.id, HTTPStatus: a.status, Status: string(tx.Status), Transaction: tx}
	}
	return tx, nil
}

// checkBaseURL refuses plain HTTP except to loopback: the token and the payment travel in it.
// Tests and `ecrd demo` use http://127.0.0.1.
func checkBaseURL(raw string) (string, error) {
	if raw == "" {
		return "", errors.New("no base URL configured")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("base URL: %w", err)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Host == "" {
		return "", fmt.Errorf("base URL %q: want scheme://host[:port][/path] without credentials, query or fragment", u.Redacted())
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return "", fmt.Errorf("base URL %q: plain http is allowed only to loopback; use https", u.Redacted())
		}
	default:
		return "", fmt.Errorf("base URL %q: scheme must be https", u.Redacted())
	}
	return strings.TrimRight(u.String(), "/"), nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

var defaultHTTPClient = &http.Client{
	Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second, // the call's context is usually shorter
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
		// HTTP/1.1 with keep-alive: a till makes one call at a time, so HTTP/2's streams buy
		// nothing, and the daemon is built without it (scripts/build-ecrd: its half megabyte
		// of code would only sit in memory). A connection that hangs then holds one call.
		ForceAttemptHTTP2: false,
	},
	// A redirect would turn POST start/cash into a GET elsewhere; secupay does not redirect,
	// so a 3xx is reported, not followed.
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// httpClient returns hc or the default, refusing one that skips TLS verification: a till that
// accepts any certificate hands its token to whoever sits on the network.
func httpClient(hc *http.Client) (*http.Client, error) {
	if hc == nil {
		return defaultHTTPClient, nil
	}
	if t, ok := hc.Transport.(*http.Transport); ok && t.TLSClientConfig != nil && t.TLSClientConfig.InsecureSkipVerify {
		return nil, errors.New("HTTP client has TLS verification disabled; refused")
	}
	return hc, nil
}
