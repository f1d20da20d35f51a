package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/secupay"
	"github.com/ecrd-pos/ecrd/secupay/secupaytest"
)

// seenPaths records every path that reached secupay, through a proxy in front of the fake.
type seenPaths struct {
	mu    sync.Mutex
	paths []string
}

func (s *seenPaths) since(n int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.paths[n:]...)
}

func (s *seenPaths) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.paths)
}

// fuzzHandler is the API handler wired to the real capture service, spool and file printer,
// with secupay's loopback fake behind a recording proxy.
func fuzzHandler(f *testing.F) (http.Handler, *seenPaths) {
	fake := secupaytest.NewServer()
	f.Cleanup(fake.Close)
	fake.AddSeed()
	fake.SetAutoCreate(true)
	seen := &seenPaths{}
	target, _ := url.Parse(fake.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.mu.Lock()
		seen.paths = append(seen.paths, r.URL.EscapedPath())
		seen.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	f.Cleanup(proxy.Close)

	svc, sp, _ := newService(f, fake, proxy.URL, 100*time.Millisecond)
	return Handler(Config{Capture: svc, Lines: svc, Spool: sp, CaptureTimeout: 5 * time.Second}), seen
}

// FuzzAPIRequest sends arbitrary methods, paths and bodies through the API handler. The
// answer is always JSON, a 500 is only ever a storage problem (a panic answers 500
// "internal"), and no request for an invalid transaction id reaches secupay.
func FuzzAPIRequest(f *testing.F) {
	for _, s := range []struct{ method, path, body string }{
		{"POST", "/v1/transactions/" + secupaytest.SeedID + "/cash", ""},
		{"POST", "/v1/transactions/STX_FUZZ1/cash", "{}"},
		{"POST", "/v1/transactions/STX_FUZZ1/reprint", ""},
		{"POST", "/v1/transactions/STX_..%2F..%2Fx/cash", ""},
		{"POST", "/v1/transactions/../cash", ""},
		{"POST", "/v1/transactions/STX_A%00/cash", ""},
		{"POST", "/v1/receipts", `{"receipt":[{"type":"textline","value":{"text":"x\u001bp"}}]}`},
		{"POST", "/v1/receipts", `[{"type":"name-value","value":{"name":"a","value":"b","decoration":["important"]}}]`},
		{"GET", "/v1/jobs/STX_FUZZ1.receipt", ""},
		{"GET", "/v1/jobs/..%2Fqueue", ""},
		{"GET", "/v1/printer", ""},
		{"GET", "/healthz", ""},
		{"DELETE", "/v1/transactions/STX_A/cash", ""},
		{"OPTIONS", "*", ""},
		{"GET", "//v1//jobs/./x", ""},
	} {
		f.Add(s.method, s.path, []byte(s.body))
	}
	h, seen := fuzzHandler(f)
	f.Fuzz(func(t *testing.T, method, path string, body []byte) {
		req, err := http.NewRequest(method, "http://ecrd"+path, strings.NewReader(string(body)))
		if err != nil || req.URL.Host != "ecrd" {
			t.Skip() // net/http's server would answer 400 before the handler runs
		}
		if path == "*" || !strings.HasPrefix(path, "/") {
			t.Skip()
		}
		req.RequestURI = req.URL.RequestURI()
		before := seen.len()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)

		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("%s %q: status %d, Content-Type %q, body %q", method, path, w.Code, ct, w.Body.Bytes())
		}
		var out map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s %q: status %d, answer is not a JSON object: %q", method, path, w.Code, w.Body.Bytes())
		}
		if w.Code >= 400 {
			if errCode(out) == "" {
				t.Fatalf("%s %q: status %d without an error code: %s", method, path, w.Code, w.Body.Bytes())
			}
		}
		if w.Code == http.StatusInternalServerError && errCode(out) != "storage" {
			t.Fatalf("%s %q: 500 %s", method, path, w.Body.Bytes())
		}
		for _, p := range seen.since(before) {
			rest, ok := strings.CutPrefix(p, "/api/v2/Smart/Transactions/")
			seg, _, _ := strings.Cut(rest, "/")
			id, err := url.PathUnescape(seg)
			if !ok || err != nil || !secupay.ValidID(id) {
				t.Fatalf("%s %q: secupay received %q", method, path, p)
			}
		}
	})
}
