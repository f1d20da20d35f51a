package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/ecrd-pos/ecrd/secupay/secupaytest"
)

// raw sends one request over the real socket and returns status, headers and body; it does
// not fail on a non-JSON answer so that the caller can say what was wrong.
func (e *apiEnv) raw(t *testing.T, req *http.Request) (int, http.Header, []byte) {
	t.Helper()
	resp, err := e.c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func mustJSONError(t *testing.T, what string, status int, h http.Header, b []byte, wantStatus int, wantCode string) {
	t.Helper()
	var out map[string]any
	if ct := h.Get("Content-Type"); ct != "application/json" || json.Unmarshal(b, &out) != nil {
		t.Errorf("%s: %d %q %q: not a JSON answer", what, status, ct, b)
		return
	}
	if status != wantStatus || errCode(out) != wantCode {
		t.Errorf("%s: %d %s, want %d %s", what, status, b, wantStatus, wantCode)
	}
}

func (e *apiEnv) nothingHappened(t *testing.T) {
	t.Helper()
	if n := e.fake.Calls().Requests; n != 0 {
		t.Errorf("%d requests reached secupay", n)
	}
	if b, _ := os.ReadFile(e.printerFile); len(b) != 0 {
		t.Errorf("%d bytes printed", len(b))
	}
	if status, out := e.do(t, "GET", "/healthz", nil); status != 200 || out["status"] != "ok" {
		t.Errorf("daemon unhealthy afterwards: %d %v", status, out)
	}
}

func TestOversizedBodies(t *testing.T) {
	e := newAPI(t)
	capturePath := "http://ecrd/v1/transactions/" + secupaytest.SeedID + "/cash"
	big := func(n int) []byte { return bytes.Repeat([]byte(" "), n) }
	for _, c := range []struct {
		name string
		url  string
		body []byte
		// chunked hides the length, so only reading can find out
		chunked bool
	}{
		{"capture, declared length", capturePath, big(MaxCaptureBody + 1), false},
		{"capture, chunked", capturePath, big(MaxCaptureBody + 1), true},
		{"capture, 64 MiB chunked", capturePath, big(64 << 20), true},
		{"reprint, chunked", "http://ecrd/v1/transactions/" + secupaytest.SeedID + "/reprint", big(MaxCaptureBody + 1), true},
		{"receipts, declared length", "http://ecrd/v1/receipts", big(MaxReceiptsBody + 1), false},
		{"receipts, chunked", "http://ecrd/v1/receipts", big(MaxReceiptsBody + 1), true},
	} {
		var body io.Reader = bytes.NewReader(c.body)
		if c.chunked {
			body = io.MultiReader(body) // no Len: the client sends it chunked
		}
		req, _ := http.NewRequest("POST", c.url, body)
		status, h, b := e.raw(t, req)
		mustJSONError(t, c.name, status, h, b, http.StatusRequestEntityTooLarge, "body_too_large")
	}
	e.nothingHappened(t)
}

func TestHostileTransactionIDs(t *testing.T) {
	e := newAPI(t)
	for _, c := range []struct {
		id     string // as it appears in the path (already escaped where needed)
		status int
		code   string
	}{
		{"..%2F..%2Fjournal", 400, "invalid_id"},
		{"STX_A%2Fb", 400, "invalid_id"},
		{"%2E%2E", 400, "invalid_id"},
		{"STX_A%3Fb", 400, "invalid_id"},
		{"STX_A%23b", 400, "invalid_id"},
		{"STX_" + strings.Repeat("A", 65), 400, "invalid_id"},
		{"STX_" + strings.Repeat("A", 8000), 400, "invalid_id"},
		{"STX_%C3%84", 400, "invalid_id"},
		{"STX_\u00c4", 400, "invalid_id"},
		{"STX_A%00", 400, "invalid_id"},
		{"STX_A%00B", 400, "invalid_id"},
		{"STX_A%0D%0AX-Injected:%201", 400, "invalid_id"},
		{"STX_A%20", 400, "invalid_id"},
		{"STX_A%252F", 400, "invalid_id"},
		{"stx_abc", 400, "invalid_id"},
		// Paths that do not name a route at all.
		{"STX_A?x=", 404, "not_found"},
		{"STX_A/b", 404, "not_found"},
		// Dot segments: the mux would redirect to the cleaned path, and a POS client that
		// follows redirects would then capture another transaction than it named.
		{"..", 404, "not_found"},
		{"STX_A/..", 404, "not_found"},
		{"STX_A/../" + secupaytest.SeedID, 404, "not_found"},
		{"./" + secupaytest.SeedID, 404, "not_found"},
		{"/" + secupaytest.SeedID, 404, "not_found"},
	} {
		for _, op := range []string{"cash", "reprint"} {
			url := "http://ecrd/v1/transactions/" + c.id + "/" + op
			req, err := http.NewRequest("POST", url, nil)
			if err != nil {
				t.Fatalf("%q: %v", c.id, err)
			}
			status, h, b := e.raw(t, req)
			mustJSONError(t, fmt.Sprintf("POST %.80s", url), status, h, b, c.status, c.code)
		}
	}
	for _, id := range []string{"..%2Fqueue%2Fx", "%00", strings.Repeat("j", 200), "a%2Fb", "..", ".x"} {
		req, _ := http.NewRequest("GET", "http://ecrd/v1/jobs/"+id, nil)
		status, h, b := e.raw(t, req)
		if status != 400 && status != 404 {
			t.Errorf("GET job %.40q: %d %s", id, status, b)
		}
		if h.Get("Content-Type") != "application/json" {
			t.Errorf("GET job %.40q: Content-Type %q", id, h.Get("Content-Type"))
		}
	}
	e.nothingHappened(t)
}

// A redirect is never an answer: non-canonical paths get a JSON 404, whatever the method.
func TestNonCanonicalPathsAreNotRedirected(t *testing.T) {
	e := newAPI(t)
	for _, p := range []string{"//healthz", "/v1/./printer", "/v1//jobs/x", "/v1/transactions/STX_A//cash", "/v1/../healthz"} {
		for _, m := range []string{"GET", "POST"} {
			req, _ := http.NewRequest(m, "http://ecrd"+p, nil)
			req.URL.Opaque = p // send the path as written; the client would not clean it anyway
			status, h, b := e.raw(t, req)
			mustJSONError(t, m+" "+p, status, h, b, 404, "not_found")
		}
	}
	e.nothingHappened(t)
}

// Control bytes in receipt lines the POS sends never reach the printer as commands.
func TestControlBytesInPOSReceiptLines(t *testing.T) {
	e := newAPI(t)
	texts := []string{"init \x1b@ x", "cut \x1dV\x00 x", "dle \x10\x04\x01 x", "kick \x1bp\x00\x19\xfa x",
		"c1 \u009b2J \u0085 \u0090 x", "feed \x1bd\xff x", "size \x1d!\x77 x", "nul \x00 del \x7f x"}
	var lines []map[string]any
	for _, s := range texts {
		lines = append(lines,
			map[string]any{"type": "textline", "value": map[string]any{"text": s, "decoration": []string{"important", "center"}}},
			map[string]any{"type": "name-value", "value": map[string]any{"name": s, "value": s}},
			map[string]any{"type": "separator", "value": map[string]any{"caption": s}})
	}
	body, _ := json.Marshal(map[string]any{"receipt": lines})
	status, out := e.do(t, "POST", "/v1/receipts", bytes.NewReader(body))
	if status != 200 {
		t.Fatalf("%d %v", status, out)
	}
	if job := out["job"].(map[string]any); job["state"] != "printed" {
		t.Fatalf("job %v", job)
	}
	job, _ := os.ReadFile(e.printerFile)
	if len(job) < 12 || !bytes.HasPrefix(job, []byte{0x1b, '@', 0x1b, 'R', 0, 0x1b, 't'}) {
		t.Fatalf("job head % x", job[:min(len(job), 12)])
	}
	cut := job[len(job)-4:]
	if cut[0] != 0x1d || cut[1] != 'V' {
		t.Fatalf("job does not end with its cut: % x", cut)
	}
	body2 := job[8 : len(job)-4]
	for i := 0; i < len(body2); i++ {
		switch b := body2[i]; {
		case b == '\n':
		case b == 0x1b || b == 0x1d:
			cmd, n := body2[i+1], body2[i+2]
			if !(b == 0x1b && cmd == 'E' && n <= 1 || b == 0x1b && cmd == 'a' && n <= 2 || b == 0x1d && cmd == '!' && n <= 1) {
				t.Fatalf("command % x at %d came from receipt text", body2[i:i+3], i)
			}
			i += 2
		case b < 0x20 || b == 0x7f:
			t.Fatalf("control byte %#02x at %d came from receipt text", b, i)
		}
	}
	if n := e.fake.Calls().Requests; n != 0 {
		t.Fatalf("printing POS lines called secupay %d times", n)
	}
}

// A receipt of more than MaxReceiptLines lines is refused before its lines are decoded:
// eight concurrent 4 MiB bodies of empty lines once took the daemon past 2 GiB.
func TestReceiptOfTooManyLinesIsRefused(t *testing.T) {
	e := newAPI(t)
	body := hugeReceipt()
	errs := make(chan string, 8)
	for range 8 {
		go func() {
			req, _ := http.NewRequest("POST", "http://ecrd/v1/receipts", bytes.NewReader(body))
			status, h, b := e.raw(t, req)
			var out map[string]any
			if json.Unmarshal(b, &out) != nil || h.Get("Content-Type") != "application/json" || status != 413 || errCode(out) != "too_many_lines" {
				errs <- fmt.Sprintf("%d %s", status, b)
				return
			}
			errs <- ""
		}()
	}
	for range 8 {
		if msg := <-errs; msg != "" {
			t.Errorf("huge receipt: %s, want 413 too_many_lines", msg)
		}
	}
	e.nothingHappened(t)
}

// hugeReceipt is just under MaxReceiptsBody of empty line objects: about 1.3 million lines.
func hugeReceipt() []byte {
	n := (MaxReceiptsBody - 2) / 3
	b := make([]byte, 0, MaxReceiptsBody)
	b = append(b, '[')
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{', '}')
	}
	return append(b, ']')
}

// BenchmarkHugeReceiptRefused measures what refusing a 4 MiB receipt of empty lines costs
// (-benchmem): bytes per op stay near the body's size, not the lines'.
func BenchmarkHugeReceiptRefused(b *testing.B) {
	e := newAPI(b)
	body := hugeReceipt()
	b.ReportAllocs()
	for b.Loop() {
		req, _ := http.NewRequest("POST", "http://ecrd/v1/receipts", bytes.NewReader(body))
		resp, err := e.c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 413 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}
