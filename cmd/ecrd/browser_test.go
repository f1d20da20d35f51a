//go:build browser

// The browser test (make test-browser): Debian's headless Chromium loads the example POS page
// (examples/browser-pos/index.html) and captures through the built daemon's browser listener,
// as a POS in a browser does. Not part of `make test`: it needs Chromium, which
// `make test-browser` installs when it is missing; without it the test fails, never skips.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/internal/wait"
	"github.com/ecrd-pos/ecrd/secupay/secupaytest"
)

// chromiumFlags keep a headless Chromium to the page it is given: no sandbox (the tests run as
// root, where Chromium refuses one), no GPU, no QUIC, no first-run, sync or component fetches,
// and a profile of its own.
func chromiumFlags(t *testing.T) []string {
	return []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--user-data-dir=" + t.TempDir()}
}

// dumpDOM loads url in headless Chromium, lets its scripts and fetches run for up to ten
// seconds of the page's time, and returns the DOM as it is then.
func dumpDOM(t *testing.T, url string, extra ...string) string {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed: `make test-browser` installs it (apt-get install chromium)")
	}
	args := append(chromiumFlags(t), extra...)
	args = append(args, "--virtual-time-budget=10000", "--dump-dom", url)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v\n%s", url, err, stderr.String())
	}
	t.Logf("chromium loaded %s in %v", redactToken(url), time.Since(start).Round(time.Millisecond))
	return stdout.String()
}

var tokenInURL = regexp.MustCompile(`token=[^&]*`)

func redactToken(s string) string { return tokenInURL.ReplaceAllString(s, "token=…") }

// pageResult is what the example page wrote into <pre id="result">.
type pageResult struct {
	state  string
	status int
	body   string
}

var resultPre = regexp.MustCompile(`(?s)<pre id="result"([^>]*)>(.*?)</pre>`)

func readResult(t *testing.T, dom string) pageResult {
	t.Helper()
	m := resultPre.FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("no result element in the page:\n%s", dom)
	}
	attr := func(name string) string {
		a := regexp.MustCompile(name + `="([^"]*)"`).FindStringSubmatch(m[1])
		if a == nil {
			return ""
		}
		return html.UnescapeString(a[1])
	}
	status, _ := strconv.Atoi(attr("data-status"))
	return pageResult{state: attr("data-state"), status: status, body: html.UnescapeString(m[2])}
}

// pageServer serves the example POS page on its own loopback port: its origin is
// http://127.0.0.1:PORT.
func pageServer(t *testing.T) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.FileServer(http.Dir("../../examples/browser-pos")))
	t.Cleanup(s.Close)
	return s
}

func TestBrowserPOSPage(t *testing.T) {
	allowed, foreign := pageServer(t), pageServer(t)
	e := newDaemonEnv(t)
	tokenFile := writeHTTPToken(t, e.dir)
	lport := strconv.Itoa(freePort(t))
	listener := "http://127.0.0.1:" + lport
	p := e.start("ECRD_HTTP_LISTEN=127.0.0.1:"+lport, "ECRD_HTTP_TOKEN_FILE="+tokenFile, "ECRD_ALLOW_ORIGIN="+allowed.URL)
	t.Logf("listener %s; allowed page origin %s; foreign page origin %s", listener, allowed.URL, foreign.URL)

	page := func(base, id string) string {
		return fmt.Sprintf("%s/index.html#url=%s&token=%s&id=%s&capture", base, listener, testHTTPToken, id)
	}

	t.Run("allowed origin captures", func(t *testing.T) {
		r := readResult(t, dumpDOM(t, page(allowed.URL, secupaytest.SeedID)))
		t.Logf("page from %s: state=%s status=%d\n%s", allowed.URL, r.state, r.status, r.body)
		var out map[string]any
		if r.state != "done" || r.status != 200 || json.Unmarshal([]byte(r.body), &out) != nil || out["outcome"] != "captured" {
			t.Fatalf("the allowed page did not capture: %+v", r)
		}
		if n := e.fake.Calls().StartCash[secupaytest.SeedID]; n != 1 {
			t.Fatalf("%d start/cash calls, want 1", n)
		}
		e.waitReceipts(1)
	})

	t.Run("foreign origin refused", func(t *testing.T) {
		r := readResult(t, dumpDOM(t, page(foreign.URL, "STX_FOREIGNPAGE")))
		t.Logf("page from %s: state=%s status=%d %s", foreign.URL, r.state, r.status, r.body)
		if r.state != "error" || !strings.Contains(r.body, "Failed to fetch") {
			t.Fatalf("the foreign page got an answer it may read: %+v", r)
		}
		if n := e.fake.Calls().StartCash["STX_FOREIGNPAGE"]; n != 0 {
			t.Fatalf("the foreign page's capture reached secupay: %d start/cash", n)
		}
		// The browser was refused by the gate (its preflight), not by a closed port.
		want := `"origin":"` + foreign.URL + `"`
		wait.For(t, 5*time.Second, "the gate's refusal in the log", func() error {
			if !strings.Contains(p.logs.String(), `"origin_not_allowed"`) || !strings.Contains(p.logs.String(), want) {
				return fmt.Errorf("no refusal of %s in the daemon's log", foreign.URL)
			}
			return nil
		})
	})

	t.Run("foreign host refused", func(t *testing.T) {
		// A name that resolves to this machine (DNS rebinding, here by a resolver rule): the
		// browser sends it as Host, and the listener refuses before anything runs.
		dom := dumpDOM(t, "http://rebound.test:"+lport+"/v1/printer", "--host-resolver-rules=MAP rebound.test 127.0.0.1")
		t.Logf("http://rebound.test:%s/v1/printer in the browser:\n%s", lport, dom)
		if !strings.Contains(dom, "host_not_allowed") {
			t.Fatalf("a foreign Host was not refused:\n%s", dom)
		}
		// And from a plain client, with the token and an allowed origin: still refused.
		status, _, out := browserCall(t, "POST", listener, "/v1/transactions/STX_REBOUND/cash", testHTTPToken, allowed.URL,
			net.JoinHostPort("rebound.test", lport))
		if status != 421 || errorCode(out) != "host_not_allowed" {
			t.Fatalf("foreign Host: %d %v", status, out)
		}
		if n := e.fake.Calls().StartCash["STX_REBOUND"]; n != 0 {
			t.Fatalf("a foreign Host's capture reached secupay: %d start/cash", n)
		}
	})
	t.Run("page Chromium takes for public", func(t *testing.T) {
		// Chromium's Local Network Access: a page it takes for one on the internet (here by an
		// override of its address space) may call loopback only with the user's permission or
		// the LocalNetworkAccessAllowedForUrls policy, and only from a secure context. What a
		// browser decides is its own; what the test holds is that the page's answer is the
		// truth: it reads "captured" exactly when secupay was called.
		u, _ := neturl.Parse(allowed.URL)
		r := readResult(t, dumpDOM(t, page(allowed.URL, "STX_PUBLICPAGE"), "--ip-address-space-overrides="+u.Host+"=public"))
		calls := e.fake.Calls().StartCash["STX_PUBLICPAGE"]
		t.Logf("Chromium with the page's origin taken for public: state=%s status=%d, start/cash calls %d: %s",
			r.state, r.status, calls, firstLine(r.body))
		if (r.state == "done" && r.status == 200) != (calls == 1) || calls > 1 {
			t.Fatalf("the page's answer and secupay disagree: %+v, %d start/cash", r, calls)
		}
	})
	if t.Failed() {
		os.Stderr.WriteString(p.logs.String())
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
