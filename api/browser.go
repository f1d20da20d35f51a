package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// The API's second door: a loopback TCP listener for a POS that runs in a browser, which
// cannot open a Unix socket (docs/api.md, "A POS in a browser"). The socket needs no checks:
// its file mode says who may connect. A loopback port can be reached by every program on the
// till and, through the browser, by every page the browser shows, so BrowserGate lets a
// request reach the API only when
//
//   - its Host names this listener: a page on a name rebound to 127.0.0.1 (DNS rebinding)
//     sends its own name;
//   - it comes from a listed page origin, or from no page at all (no Origin: curl, a native
//     POS);
//   - it carries the bearer token.
//
// What passes reaches the very handler the socket serves: the same paths and answers, the
// same body limits and the same render and preview slots.

// MinTokenLength is the shortest bearer token BrowserGate takes. The package makes 64 hex
// digits (256 bits); a person's password is not a token.
const MinTokenLength = 16

// BrowserConfig configures BrowserGate.
type BrowserConfig struct {
	// Token is the bearer token every request must carry: "Authorization: Bearer <Token>".
	Token string
	// Origins are the origins whose pages may call, as ParseOrigin returns them. None: only
	// clients that send no Origin get in.
	Origins []string
	// Addr is the listener's address as bound (host:port): Host must name it, or localhost,
	// 127.0.0.1 or [::1] with its port.
	Addr string
	// MaxAge is how long a browser may keep a preflight's answer (0: 10 minutes).
	MaxAge time.Duration
	// Logger is told of refusals, at most one line a second (nil: none).
	Logger *zap.Logger
}

// Headers a page may send and read, and the methods the API has.
const (
	browserMethods = "GET, POST"
	browserHeaders = "Authorization, Content-Type"
	// Retry-After is not one of the response headers a page may read unless told.
	browserExposed = "Retry-After"
)

// BrowserGate wraps the API's handler for the loopback listener. Refusals are answered in the
// API's error shape: 421 host_not_allowed, 403 origin_not_allowed, 401 unauthorized; nothing
// behind the gate runs for them. A CORS preflight from a listed origin is answered here (204)
// and needs no token: browsers send none with it. No answer through the gate sets a cookie.
func BrowserGate(next http.Handler, cfg BrowserConfig) (http.Handler, error) {
	if len(cfg.Token) < MinTokenLength {
		return nil, fmt.Errorf("api: the listener's token must have at least %d characters", MinTokenLength)
	}
	for _, c := range []byte(cfg.Token) {
		if c <= ' ' || c > '~' {
			return nil, errors.New("api: the listener's token must be printable ASCII without spaces")
		}
	}
	g := &gate{next: next, token: sha256.Sum256([]byte(cfg.Token)), origins: map[string]bool{},
		hosts: map[string]bool{}, addr: cfg.Addr, log: cfg.Logger}
	for _, o := range cfg.Origins {
		canon, err := ParseOrigin(o)
		if err != nil {
			return nil, err
		}
		g.origins[canon] = true
	}
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("api: listener address %q: %v", cfg.Addr, err)
	}
	for _, name := range []string{"localhost", "127.0.0.1", "[::1]", bracket(host)} {
		name = strings.ToLower(name)
		g.hosts[name+":"+port] = true
		if port == "80" { // a browser leaves out the scheme's own port
			g.hosts[name] = true
		}
	}
	maxAge := cfg.MaxAge
	if maxAge <= 0 {
		maxAge = 10 * time.Minute
	}
	g.maxAge = strconv.Itoa(int(maxAge / time.Second))
	return g, nil
}

func bracket(host string) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]"
	}
	return host
}

// ParseOrigin checks an origin as an administrator writes it — scheme://host[:port], http or
// https — and returns it as a browser sends it in Origin: lower case, without the scheme's own
// port. A path, a wildcard or "null" is refused: each would let in pages nobody named.
func ParseOrigin(s string) (string, error) {
	s = strings.TrimSpace(s)
	why := ""
	switch s {
	case "*":
		why = "a wildcard would let every page on the web call the till"
	case "null":
		why = `"null" is what sandboxed frames and local files send: any page can be one`
	}
	var canon string
	if why == "" {
		canon, why = canonicalOrigin(s)
	}
	if why != "" {
		return "", fmt.Errorf("origin %q: %s; an origin is scheme://host[:port], e.g. https://pos.example.com", s, why)
	}
	return canon, nil
}

// notAnOrigin says why u has parts an origin has not, or "".
func notAnOrigin(u *url.URL, scheme string) string {
	switch {
	case scheme != "http" && scheme != "https":
		return "the scheme must be http or https"
	case u.Opaque != "" || u.Host == "":
		return "no host"
	case u.User != nil:
		return "no user or password"
	case u.Path == "/" && u.RawQuery == "" && u.Fragment == "":
		return fmt.Sprintf("no path, not even /: did you mean %s://%s?", scheme, u.Host)
	case u.Path != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "no path, query or fragment: an origin is the part of a page's address before its path"
	case strings.HasSuffix(u.Host, ":"):
		return "an empty port"
	}
	return ""
}

// canonicalOrigin is ParseOrigin's work: the origin as browsers send it, or why s is none.
func canonicalOrigin(s string) (canon, why string) {
	u, err := url.Parse(s)
	if err != nil {
		return "", err.Error()
	}
	scheme := strings.ToLower(u.Scheme)
	if why := notAnOrigin(u, scheme); why != "" {
		return "", why
	}
	host := strings.ToLower(u.Hostname())
	if strings.ContainsFunc(host, func(c rune) bool { return c > '~' }) {
		return "", "write the host name in its ASCII form (xn--…), as browsers send it"
	}
	canon = scheme + "://" + bracket(host)
	if port := u.Port(); port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return "", "the port must be 1 to 65535"
		}
		// Browsers leave the scheme's own port out.
		if !(scheme == "http" && n == 80) && !(scheme == "https" && n == 443) {
			canon += ":" + port
		}
	}
	return canon, ""
}

type gate struct {
	next    http.Handler
	token   [sha256.Size]byte
	origins map[string]bool
	hosts   map[string]bool
	addr    string
	maxAge  string
	log     *zap.Logger

	mu         sync.Mutex
	lastLog    time.Time
	suppressed int
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w = &noCookies{ResponseWriter: w}
	h := w.Header()
	h.Add("Vary", "Origin") // an answer differs by Origin: a cache must not hand one to another
	if !g.hosts[strings.ToLower(r.Host)] {
		g.refuse(w, r, http.StatusMisdirectedRequest, "host_not_allowed", fmt.Sprintf(
			"Host %q does not name this listener; use http://%s (or localhost or 127.0.0.1 with its port): a page on another name may have been rebound to this machine", r.Host, g.addr))
		return
	}
	origins := r.Header.Values("Origin")
	fromPage := len(origins) > 0
	if fromPage {
		if len(origins) > 1 || !g.origins[origins[0]] {
			g.refuse(w, r, http.StatusForbidden, "origin_not_allowed", fmt.Sprintf(
				"pages from %q may not call ecrd; an administrator allows an origin with --allow-origin (ECRD_ALLOW_ORIGIN)", strings.Join(origins, ", ")))
			return
		}
		h.Set("Access-Control-Allow-Origin", origins[0])
		h.Set("Access-Control-Expose-Headers", browserExposed)
	}
	if fromPage && r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		h.Set("Access-Control-Allow-Methods", browserMethods)
		h.Set("Access-Control-Allow-Headers", browserHeaders)
		h.Set("Access-Control-Max-Age", g.maxAge)
		// Chromium's Private Network Access asks before a page on the internet may call a
		// loopback address; its successor, Local Network Access, asks the user instead.
		if strings.EqualFold(r.Header.Get("Access-Control-Request-Private-Network"), "true") {
			h.Set("Access-Control-Allow-Private-Network", "true")
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if !g.authorized(r) {
		h.Set("WWW-Authenticate", `Bearer realm="ecrd"`)
		g.refuse(w, r, http.StatusUnauthorized, "unauthorized",
			"send the listener's token as Authorization: Bearer <token> ('ecrd pair' on the till prints it)")
		return
	}
	g.next.ServeHTTP(w, r)
}

// authorized compares the bearer token in constant time; hashing both first hides the
// token's length too.
func (g *gate) authorized(r *http.Request) bool {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	return subtle.ConstantTimeCompare(sum[:], g.token[:]) == 1
}

// refuse answers a request the gate stops, and logs it — at most one line a second, with the
// number left out since, so that a page knocking in a loop cannot fill the journal.
func (g *gate) refuse(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	writeError(w, status, code, msg, nil)
	if g.log == nil {
		return
	}
	g.mu.Lock()
	now := time.Now()
	if now.Sub(g.lastLog) < time.Second {
		g.suppressed++
		g.mu.Unlock()
		return
	}
	n := g.suppressed
	g.lastLog, g.suppressed = now, 0
	g.mu.Unlock()
	g.log.Warn("browser listener: request refused", zap.String("code", code), zap.String("method", r.Method),
		zap.String("path", r.URL.Path), zap.String("host", r.Host), zap.String("origin", r.Header.Get("Origin")),
		zap.String("remote", r.RemoteAddr), zap.Int("refusals_not_logged", n))
}

// noCookies drops any Set-Cookie before the headers go out: the token is the listener's only
// credential, and a cookie would be one a browser sends by itself.
type noCookies struct {
	http.ResponseWriter
	sent bool
}

func (n *noCookies) WriteHeader(status int) {
	if !n.sent {
		n.Header().Del("Set-Cookie")
		n.sent = status >= 200 // 1xx answers come before the real one
	}
	n.ResponseWriter.WriteHeader(status)
}

func (n *noCookies) Write(b []byte) (int, error) {
	if !n.sent {
		n.Header().Del("Set-Cookie")
		n.sent = true
	}
	return n.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (n *noCookies) Unwrap() http.ResponseWriter { return n.ResponseWriter }
