package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/capture"
	"github.com/ecrd-pos/ecrd/internal/testbed"
	"github.com/ecrd-pos/ecrd/internal/wait"
	"github.com/ecrd-pos/ecrd/receipt"
	"github.com/ecrd-pos/ecrd/secupay"
	"github.com/ecrd-pos/ecrd/secupay/secupaytest"
	"github.com/ecrd-pos/ecrd/spool"
)

type apiEnv struct {
	fake        *secupaytest.Server
	c           *http.Client
	socket      string
	printerFile string
}

// newService wires the capture service the way the daemon does — a real journal and spool
// in a temporary state directory, the file printer, a static token file (internal/testbed) —
// against secupay at baseURL, and runs the spool's worker until the test ends.
func newService(tb testing.TB, fake *secupaytest.Server, baseURL string, printWait time.Duration) (*capture.Service, *spool.Spool, string) {
	tb.Helper()
	till := testbed.New(tb, testbed.Options{Fake: fake})
	j, err := capture.OpenJournal(till.Store, nil)
	if err != nil {
		tb.Fatal(err)
	}
	sc := till.Secupay()
	sc.BaseURL = baseURL
	client, err := secupay.NewClient(sc)
	if err != nil {
		tb.Fatal(err)
	}
	svc := capture.New(capture.Config{Journal: j, Spool: till.Spool, Render: receipt.Options{Columns: 32}, PrintWait: printWait,
		Secupay: client})
	return svc, till.Spool, till.PrinterFile
}

// newAPI serves the API on a real Unix socket in a temporary directory, wired to the
// loopback secupay fake and a file printer.
func newAPI(tb testing.TB) *apiEnv {
	tb.Helper()
	fake := secupaytest.NewServer()
	tb.Cleanup(fake.Close)
	fake.AddSeed()
	fake.SetAutoCreate(true)
	svc, sp, pf := newService(tb, fake, fake.URL, 3*time.Second)
	sock := filepath.Join(tb.TempDir(), "ecrd.sock")
	ln, err := Listen(sock)
	if err != nil {
		tb.Fatal(err)
	}
	srv := NewServer(Handler(Config{Capture: svc, Lines: svc, Spool: sp}), nil)
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	tb.Cleanup(func() { srv.Close(); <-done })
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	return &apiEnv{fake: fake, c: c, socket: sock, printerFile: pf}
}

func (e *apiEnv) do(t *testing.T, method, path string, body io.Reader) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, "http://ecrd"+path, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: answer is not JSON: %v", method, path, err)
	}
	return resp.StatusCode, out
}

func errCode(out map[string]any) string {
	e, _ := out["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func TestSocketMode(t *testing.T) {
	e := newAPI(t)
	fi, err := os.Stat(e.socket)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket mode %v, want a socket with 0660", fi.Mode())
	}
}

func TestListenRefusesLiveSocketAndNonSocket(t *testing.T) {
	e := newAPI(t)
	if _, err := Listen(e.socket); err == nil || !strings.Contains(err.Error(), "another daemon") {
		t.Fatalf("second Listen on a live socket: %v", err)
	}
	f := filepath.Join(t.TempDir(), "plain")
	os.WriteFile(f, []byte("keep me"), 0o600)
	if _, err := Listen(f); err == nil {
		t.Fatal("Listen replaced a regular file")
	}
	if b, _ := os.ReadFile(f); string(b) != "keep me" {
		t.Fatal("regular file was touched")
	}
}

func TestCaptureContract(t *testing.T) {
	e := newAPI(t)
	path := "/v1/transactions/" + secupaytest.SeedID + "/cash"
	status, out := e.do(t, "POST", path, nil)
	if status != 200 {
		t.Fatalf("status %d: %v", status, out)
	}
	job, _ := out["job"].(map[string]any)
	if out["transaction_id"] != secupaytest.SeedID || out["status"] != "ok" || out["trans_id"] != "29008411" ||
		job["state"] != "printed" || job["id"] == "" {
		t.Fatalf("answer %v", out)
	}
	if _, ok := out["replayed"]; ok {
		t.Fatal("first answer says replayed")
	}
	status, again := e.do(t, "POST", path, strings.NewReader("{}"))
	if status != 200 || again["replayed"] != true || again["trans_id"] != "29008411" {
		t.Fatalf("repeat: %d %v", status, again)
	}
	if n := e.fake.Calls().StartCash[secupaytest.SeedID]; n != 1 {
		t.Fatalf("%d start/cash calls", n)
	}
	status, jobOut := e.do(t, "GET", "/v1/jobs/"+job["id"].(string), nil)
	if status != 200 || jobOut["state"] != "printed" || jobOut["transaction_id"] != secupaytest.SeedID {
		t.Fatalf("GET job: %d %v", status, jobOut)
	}
}

func TestRefusalCarriesSecupayFields(t *testing.T) {
	e := newAPI(t)
	e.fake.Fault(secupaytest.Fault{Op: "start", Status: 400, Body: secupaytest.ErrorBody("ProductFormatException",
		"basket sum mismatch", "Der Betrag stimmt nicht", 2010, "sup1")})
	status, out := e.do(t, "POST", "/v1/transactions/"+secupaytest.SeedID+"/cash", nil)
	if status != 502 || errCode(out) != "secupay_refused" {
		t.Fatalf("status %d %v", status, out)
	}
	info := out["error"].(map[string]any)
	if info["error_user"] != "Der Betrag stimmt nicht" || info["support_id"] != "sup1" || info["outcome"] != "not_captured" ||
		info["secupay_error"] != "ProductFormatException" || info["secupay_code"] != "2010" {
		t.Fatalf("error %v", info)
	}
	if b, _ := os.ReadFile(e.printerFile); len(b) != 0 {
		t.Fatal("something printed for a refused capture")
	}
}

func TestTimeoutIs504(t *testing.T) {
	e := newAPI(t)
	e.fake.Fault(secupaytest.Fault{Op: "start", Cut: true})
	e.fake.Fault(secupaytest.Fault{Op: "get", Cut: true})
	status, out := e.do(t, "POST", "/v1/transactions/"+secupaytest.SeedID+"/cash", nil)
	if status != 504 || errCode(out) != "secupay_timeout" || out["error"].(map[string]any)["outcome"] != "in_doubt" {
		t.Fatalf("status %d %v", status, out)
	}
}

// An expired token that cannot be renewed leaves a capture in doubt (the refused call's
// effect cannot be read back), never "refused".
func TestExpiredTokenIsInDoubt(t *testing.T) {
	e := newAPI(t)
	e.fake.ExpireToken() // every call is now refused with the documented 403
	status, out := e.do(t, "POST", "/v1/transactions/"+secupaytest.SeedID+"/cash", nil)
	if status != 504 || out["error"].(map[string]any)["outcome"] != "in_doubt" {
		t.Fatalf("status %d %v", status, out)
	}
}

func TestBadRequests(t *testing.T) {
	e := newAPI(t)
	cases := []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"POST", "/v1/transactions/STX_..%2F..%2Fx/cash", "", 400, "invalid_id"},
		{"POST", "/v1/transactions/STX_A%3Fb/cash", "", 400, "invalid_id"},
		{"POST", "/v1/transactions/" + strings.Repeat("A", 300) + "/cash", "", 400, "invalid_id"},
		{"POST", "/v1/transactions/STX_%C3%84/cash", "", 400, "invalid_id"},
		{"POST", "/v1/transactions/" + secupaytest.SeedID + "/cash", "{not json", 400, "bad_request"},
		{"POST", "/v1/transactions/" + secupaytest.SeedID + "/cash", "null", 400, "bad_request"},
		{"POST", "/v1/transactions/" + secupaytest.SeedID + "/cash", "[]", 400, "bad_request"},
		{"POST", "/v1/transactions/" + secupaytest.SeedID + "/cash", strings.Repeat("x", MaxCaptureBody+1), 413, "body_too_large"},
		{"POST", "/v1/transactions/" + secupaytest.SeedID + "/reprint", "", 404, "not_captured"},
		{"POST", "/v1/receipts", `[{"type":"textline","value":{"text":1}}`, 400, "bad_receipt"},
		{"POST", "/v1/receipts", `[]`, 400, "bad_receipt"},
		{"GET", "/v1/jobs/nope", "", 404, "not_found"},
		{"GET", "/v1/jobs/..%2Fqueue", "", 400, "invalid_id"},
		{"GET", "/v2/nothing", "", 404, "not_found"},
		{"DELETE", "/v1/transactions/" + secupaytest.SeedID + "/cash", "", 405, "method_not_allowed"},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, "http://ecrd"+c.path, strings.NewReader(c.body))
		resp, err := e.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("%s %s: status %d, want %d (%s)", c.method, c.path, resp.StatusCode, c.status, b)
			continue
		}
		if c.code != "" {
			var out map[string]any
			if err := json.Unmarshal(b, &out); err != nil || errCode(out) != c.code {
				t.Errorf("%s %s: answer %s, want error code %s", c.method, c.path, b, c.code)
			}
		}
	}
	if n := e.fake.Calls().Requests; n != 0 {
		t.Fatalf("bad requests reached secupay %d times", n)
	}
	if b, _ := os.ReadFile(e.printerFile); len(b) != 0 {
		t.Fatal("a bad request printed something")
	}
}

func TestPrintLinesAndPrinterStatus(t *testing.T) {
	e := newAPI(t)
	status, out := e.do(t, "POST", "/v1/receipts",
		strings.NewReader(`{"receipt":[{"type":"textline","value":{"text":"Grüße \u001b\u0070\u0000 aus der Kasse","decoration":["important"]}}]}`))
	if status != 200 {
		t.Fatalf("status %d %v", status, out)
	}
	if job := out["job"].(map[string]any); job["state"] != "printed" {
		t.Fatalf("job %v", job)
	}
	b, _ := os.ReadFile(e.printerFile)
	if !bytes.Contains(b, []byte("Gr\x81\xe1e")) {
		t.Fatalf("umlauts not in cp858: %q", b)
	}
	if bytes.Contains(b, []byte{0x1b, 0x70}) {
		t.Fatal("an ESC p from receipt text reached the printer")
	}
	os.WriteFile(e.printerFile+".status", []byte("cover_open"), 0o644)
	status, out = e.do(t, "GET", "/v1/printer", nil)
	st := out["status"].(map[string]any)
	if status != 200 || st["state"] != "cover_open" {
		t.Fatalf("printer %d %v", status, out)
	}
	status, out = e.do(t, "GET", "/healthz", nil)
	if status != 200 || out["status"] != "ok" {
		t.Fatalf("healthz %d %v", status, out)
	}
}

func TestConcurrentSameIDAnswers409OrReplay(t *testing.T) {
	e := newAPI(t)
	e.fake.Fault(secupaytest.Fault{Op: "start", Delay: 500 * time.Millisecond, CaptureFirst: true,
		Body: string(secupaytest.SeedAnswer())})
	path := "/v1/transactions/" + secupaytest.SeedID + "/cash"
	first := make(chan int)
	go func() {
		req, _ := http.NewRequest("POST", "http://ecrd"+path, nil)
		resp, err := e.c.Do(req)
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	// Wait until the first capture is at secupay, then ask again.
	wait.Until(t, 5*time.Second, "the first capture at secupay", func() bool { return e.fake.Calls().StartCash[secupaytest.SeedID] > 0 })
	status, out := e.do(t, "POST", path, nil)
	if status != 409 || errCode(out) != "in_progress" {
		t.Fatalf("concurrent capture: %d %v", status, out)
	}
	if s := <-first; s != 200 {
		t.Fatalf("first capture: %d", s)
	}
}
