package api

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/secupay/secupaytest"
)

const (
	browserAddr   = "127.0.0.1:8765"
	browserToken  = "b7c1e0f4a9d24c3e8f6a5b1d2c3e4f5a"
	browserOrigin = "https://pos.example.com"
)

// newGate is the loopback listener's gate around h, as the daemon builds it for
// --http-listen 127.0.0.1:8765 --allow-origin https://pos.example.com.
func newGate(t testing.TB, h http.Handler) http.Handler {
	t.Helper()
	g, err := BrowserGate(h, BrowserConfig{Token: browserToken, Origins: []string{browserOrigin, "http://localhost:3000"},
		Addr: browserAddr, MaxAge: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// browserHeader is what a POS page sends: the bearer token (if any) and its Origin (if any).
func browserHeader(token, origin string) http.Header {
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	if origin != "" {
		h.Set("Origin", origin)
	}
	return h
}

// gatedAPI is the real API — capture service, journal, spool, file printer — behind the gate,
// against the loopback secupay fake.
func gatedAPI(t *testing.T) (http.Handler, *secupaytest.Server) {
	t.Helper()
	fake := secupaytest.NewServer()
	t.Cleanup(fake.Close)
	fake.AddSeed()
	fake.SetAutoCreate(true)
	h, _ := wiredHandler(t, fake, fake.URL)
	return newGate(t, h), fake
}

func send(h http.Handler, method, host, path string, header http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "http://"+host+path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func assertNoCookie(t *testing.T, what string, w *httptest.ResponseRecorder) {
	t.Helper()
	if c := w.Header().Values("Set-Cookie"); len(c) > 0 {
		t.Errorf("%s: Set-Cookie %q", what, c)
	}
}

// A page from an allowed origin captures with the token, and may read the answer.
func TestGateAllowedOriginCaptures(t *testing.T) {
	h, fake := gatedAPI(t)
	w := send(h, "POST", browserAddr, "/v1/transactions/"+secupaytest.SeedID+"/cash", browserHeader(browserToken, browserOrigin))
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"outcome":"captured"`) {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	hd := w.Header()
	if hd.Get("Access-Control-Allow-Origin") != browserOrigin || hd.Get("Vary") != "Origin" ||
		hd.Get("Access-Control-Expose-Headers") != "Retry-After" || hd.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("CORS headers: %v", hd)
	}
	assertNoCookie(t, "capture", w)
	if n := fake.Calls().StartCash[secupaytest.SeedID]; n != 1 {
		t.Errorf("%d start/cash calls, want 1", n)
	}
	// No Origin (curl, a native POS): the token is enough, and no CORS header is sent.
	w = send(h, "GET", "localhost:8765", "/v1/printer", browserHeader(browserToken, ""))
	if w.Code != 200 || w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("no Origin: %d %v %s", w.Code, w.Header(), w.Body)
	}
}

// A page from any other origin is refused before anything runs: secupay sees no call, even
// with the right token; the refusal names the setting to change and carries no CORS header,
// so the page cannot even read it.
func TestGateForeignOriginRefused(t *testing.T) {
	h, fake := gatedAPI(t)
	for _, origin := range []string{"https://evil.example", "https://pos.example.com.evil.example", "http://pos.example.com",
		"https://pos.example.com:8443", "null", "HTTPS://POS.EXAMPLE.COM"} {
		w := send(h, "POST", browserAddr, "/v1/transactions/STX_FOREIGN/cash", browserHeader(browserToken, origin))
		if w.Code != 403 || errCodeOf(w) != "origin_not_allowed" || !strings.Contains(w.Body.String(), "--allow-origin") {
			t.Errorf("Origin %s: %d %s", origin, w.Code, w.Body)
		}
		if w.Header().Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("Origin %s: refusal readable by the page: %v", origin, w.Header())
		}
		assertNoCookie(t, origin, w)
	}
	// Two Origin headers: not a browser's; refused.
	hd := browserHeader(browserToken, browserOrigin)
	hd.Add("Origin", "https://evil.example")
	if w := send(h, "POST", browserAddr, "/v1/transactions/STX_FOREIGN/cash", hd); w.Code != 403 {
		t.Errorf("two Origins: %d", w.Code)
	}
	if n := fake.Calls().TotalStartCash; n != 0 {
		t.Fatalf("%d start/cash calls for refused pages", n)
	}
}

// A preflight is answered for a listed origin only, with that origin (never *), the methods
// and headers the API takes, and the private-network opt-in when Chromium asks for it.
func TestGatePreflight(t *testing.T) {
	h, fake := gatedAPI(t)
	path := "/v1/transactions/" + secupaytest.SeedID + "/cash"
	pre := func(origin string, pna bool) *httptest.ResponseRecorder {
		hd := browserHeader("", origin)
		hd.Set("Access-Control-Request-Method", "POST")
		hd.Set("Access-Control-Request-Headers", "authorization,content-type")
		if pna {
			hd.Set("Access-Control-Request-Private-Network", "true")
		}
		return send(h, "OPTIONS", browserAddr, path, hd)
	}
	for _, pna := range []bool{false, true} {
		w := pre(browserOrigin, pna)
		hd := w.Header()
		want := map[string]string{"Access-Control-Allow-Origin": browserOrigin, "Vary": "Origin",
			"Access-Control-Allow-Methods": "GET, POST", "Access-Control-Allow-Headers": "Authorization, Content-Type",
			"Access-Control-Max-Age": "300"}
		if pna {
			want["Access-Control-Allow-Private-Network"] = "true"
		}
		if w.Code != 204 || w.Body.Len() != 0 {
			t.Errorf("preflight (PNA %v): %d %q", pna, w.Code, w.Body)
		}
		for k, v := range want {
			if hd.Get(k) != v {
				t.Errorf("preflight (PNA %v): %s = %q, want %q", pna, k, hd.Get(k), v)
			}
		}
		if !pna && hd.Get("Access-Control-Allow-Private-Network") != "" {
			t.Errorf("private network allowed unasked")
		}
		assertNoCookie(t, "preflight", w)
	}
	w := pre("https://evil.example", true)
	if w.Code != 403 || errCodeOf(w) != "origin_not_allowed" || w.Header().Get("Access-Control-Allow-Origin") != "" ||
		w.Header().Get("Access-Control-Allow-Private-Network") != "" {
		t.Errorf("foreign preflight: %d %v %s", w.Code, w.Header(), w.Body)
	}
	// OPTIONS without Origin is no preflight: it needs the token like any request.
	hd := http.Header{}
	hd.Set("Access-Control-Request-Method", "POST")
	if w := send(h, "OPTIONS", browserAddr, path, hd); w.Code != 401 {
		t.Errorf("OPTIONS without Origin: %d", w.Code)
	}
	if n := fake.Calls().TotalStartCash; n != 0 {
		t.Fatalf("%d start/cash calls for preflights", n)
	}
}

// No token, another token, another scheme: 401 in the API's error shape, before anything runs.
func TestGateToken(t *testing.T) {
	h, fake := gatedAPI(t)
	for name, auth := range map[string]string{
		"none":          "",
		"wrong":         "Bearer " + strings.Repeat("0", len(browserToken)),
		"prefix":        "Bearer " + browserToken[:len(browserToken)-1],
		"longer":        "Bearer " + browserToken + "0",
		"basic":         "Basic " + browserToken,
		"bare":          browserToken,
		"empty bearer":  "Bearer ",
		"twice":         "Bearer " + browserToken + " " + browserToken,
		"query instead": "",
	} {
		hd := browserHeader("", browserOrigin)
		if auth != "" {
			hd.Set("Authorization", auth)
		}
		path := "/v1/transactions/STX_TOKEN/cash"
		if name == "query instead" {
			path += "?access_token=" + browserToken
		}
		w := send(h, "POST", browserAddr, path, hd)
		if w.Code != 401 || errCodeOf(w) != "unauthorized" || w.Header().Get("WWW-Authenticate") != `Bearer realm="ecrd"` {
			t.Errorf("%s: %d %v %s", name, w.Code, w.Header(), w.Body)
		}
		// The page may read why (the origin is allowed), so it can tell the cashier.
		if w.Header().Get("Access-Control-Allow-Origin") != browserOrigin {
			t.Errorf("%s: 401 not readable by the allowed page", name)
		}
		assertNoCookie(t, name, w)
	}
	// The scheme's name is case-insensitive (RFC 9110).
	hd := browserHeader("", "")
	hd.Set("Authorization", "bearer "+browserToken)
	if w := send(h, "GET", browserAddr, "/healthz", hd); w.Code != 200 {
		t.Errorf("lower-case bearer: %d %s", w.Code, w.Body)
	}
	if n := fake.Calls().TotalStartCash; n != 0 {
		t.Fatalf("%d start/cash calls without the token", n)
	}
}

// Host must name the listener: a page on a name rebound to 127.0.0.1 sends its own name.
func TestGateHost(t *testing.T) {
	h, fake := gatedAPI(t)
	for _, host := range []string{"evil.example:8765", "evil.example", "127.0.0.1:8766", "localhost", "127.0.0.2:8765",
		"localhost.:8765", "", "192.168.1.10:8765"} {
		req := httptest.NewRequest("POST", "http://x/v1/transactions/STX_HOST/cash", nil)
		req.Host = host
		req.Header = browserHeader(browserToken, browserOrigin)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 421 || errCodeOf(rec) != "host_not_allowed" || !strings.Contains(rec.Body.String(), "http://"+browserAddr) {
			t.Errorf("Host %q: %d %s", host, rec.Code, rec.Body)
		}
		assertNoCookie(t, host, rec)
	}
	for _, host := range []string{"127.0.0.1:8765", "localhost:8765", "LOCALHOST:8765", "[::1]:8765"} {
		if w := send(h, "GET", host, "/v1/printer", browserHeader(browserToken, browserOrigin)); w.Code != 200 {
			t.Errorf("Host %q: %d %s", host, w.Code, w.Body)
		}
	}
	if n := fake.Calls().TotalStartCash; n != 0 {
		t.Fatalf("%d start/cash calls for foreign hosts", n)
	}
}

// A cookie set behind the gate never leaves it.
func TestGateSetsNoCookie(t *testing.T) {
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "s", Value: "1"})
		if r.URL.Path == "/write" {
			io.WriteString(w, "x")
			return
		}
		w.WriteHeader(http.StatusTeapot)
	})
	g := newGate(t, inner)
	for _, path := range []string{"/write", "/status"} {
		w := send(g, "GET", browserAddr, path, browserHeader(browserToken, browserOrigin))
		if w.Code == 401 {
			t.Fatal("token refused")
		}
		assertNoCookie(t, path, w)
	}
}

func TestParseOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"https://pos.example.com":     "https://pos.example.com",
		" HTTPS://POS.Example.COM ":   "https://pos.example.com",
		"https://pos.example.com:443": "https://pos.example.com",
		"http://localhost:80":         "http://localhost",
		"http://127.0.0.1:3000":       "http://127.0.0.1:3000",
		"http://[::1]:3000":           "http://[::1]:3000",
		"https://pos.example.com:80":  "https://pos.example.com:80",
	} {
		if got, err := ParseOrigin(in); err != nil || got != want {
			t.Errorf("ParseOrigin(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, why := range map[string]string{
		"*":                             "wildcard",
		"null":                          "null",
		"pos.example.com":               "scheme",
		"ftp://pos.example.com":         "scheme",
		"https://pos.example.com/":      "did you mean https://pos.example.com?",
		"https://pos.example.com/till":  "no path",
		"https://pos.example.com?x=1":   "no path",
		"https://user@pos.example.com":  "no user",
		"https://":                      "no host",
		"https://pos.example.com:0":     "port",
		"https://pos.example.com:99999": "port",
		"https://pos.example.com:":      "empty port",
		"https://kassé.example":         "ASCII",
		"":                              "scheme",
	} {
		if _, err := ParseOrigin(in); err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("ParseOrigin(%q) = %v, want an error saying %q", in, err, why)
		}
	}
}

func TestGateRefusesWeakConfig(t *testing.T) {
	h := http.NotFoundHandler()
	for name, cfg := range map[string]BrowserConfig{
		"short token":    {Token: "short", Addr: browserAddr},
		"token spaces":   {Token: "a token with spaces in it", Addr: browserAddr},
		"bad origin":     {Token: browserToken, Addr: browserAddr, Origins: []string{"*"}},
		"no port":        {Token: browserToken, Addr: "127.0.0.1"},
		"token newline!": {Token: browserToken + "\n", Addr: browserAddr},
	} {
		if _, err := BrowserGate(h, cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func errCodeOf(w *httptest.ResponseRecorder) string {
	var out map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		return ""
	}
	return errCode(out)
}
