package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/ecrd-pos/ecrd/capture"
	"github.com/ecrd-pos/ecrd/internal/wait"
	"github.com/ecrd-pos/ecrd/monitor"
	"github.com/ecrd-pos/ecrd/printer"
	"github.com/ecrd-pos/ecrd/receipt"
	"github.com/ecrd-pos/ecrd/secupay/secupaytest"
	"github.com/ecrd-pos/ecrd/spool"
)

// contract is docs/openapi.yaml, loaded and checked, with a record of what the tests saw.
type contract struct {
	doc    *openapi3.T
	router routers.Router

	mu    sync.Mutex
	ops   map[string]bool // "METHOD /path" of the spec answered at least once
	codes map[string]bool // error codes answered
}

func loadContract(t *testing.T) *contract {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(filepath.Join("..", "docs", "openapi.yaml"))
	if err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("docs/openapi.yaml is not a valid OpenAPI document: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("docs/openapi.yaml is OpenAPI %s, want 3.1", doc.OpenAPI)
	}
	closeObjects(doc)
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &contract{doc: doc, router: router, ops: map[string]bool{}, codes: map[string]bool{}}
}

// closeObjects forbids, for this test only, every property the spec does not name. The
// published spec leaves objects open, since fields are only ever added and clients must ignore
// what they do not know; but a field the code sends and the spec does not document is drift.
func closeObjects(doc *openapi3.T) {
	seen := map[*openapi3.Schema]bool{}
	var walk func(*openapi3.SchemaRef)
	walk = func(ref *openapi3.SchemaRef) {
		if ref == nil || ref.Value == nil || seen[ref.Value] {
			return
		}
		sc := ref.Value
		seen[sc] = true
		if len(sc.Properties) > 0 && sc.AdditionalProperties.Has == nil && sc.AdditionalProperties.Schema == nil {
			no := false
			sc.AdditionalProperties.Has = &no
		}
		for _, p := range sc.Properties {
			walk(p)
		}
		walk(sc.Items)
		for _, list := range [][]*openapi3.SchemaRef{sc.OneOf, sc.AnyOf, sc.AllOf} {
			for _, r := range list {
				walk(r)
			}
		}
	}
	for _, sc := range doc.Components.Schemas {
		walk(sc)
	}
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			for _, resp := range op.Responses.Map() {
				if resp.Value == nil {
					continue
				}
				for _, mt := range resp.Value.Content {
					walk(mt.Schema)
				}
			}
		}
	}
}

// check validates one real answer against the spec: its status must be declared for the
// operation, its headers and body must match. An answer to a path or method the spec does not
// have (the mux's own 404 and 405) must still be the error shape.
func (c *contract) check(t *testing.T, req *http.Request, status int, header http.Header, body []byte) {
	t.Helper()
	what := fmt.Sprintf("%s %s → %d %s", req.Method, req.URL.RequestURI(), status, bytes.TrimSpace(body))
	var e ErrorBody
	if status >= 400 && req.URL.Path != "/healthz" {
		if err := json.Unmarshal(body, &e); err != nil || e.Error.Code == "" {
			t.Errorf("%s: not an error body", what)
		}
		c.mu.Lock()
		c.codes[e.Error.Code] = true
		c.mu.Unlock()
	}
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		if status != http.StatusNotFound && status != http.StatusMethodNotAllowed {
			t.Errorf("%s: answered a request the spec has no operation for: %v", what, err)
		}
		schema := c.doc.Components.Schemas["ErrorBody"].Value
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Errorf("%s: %v", what, err)
		} else if err := schema.VisitJSON(v); err != nil {
			t.Errorf("%s: not an ErrorBody: %v", what, err)
		}
		return
	}
	c.mu.Lock()
	c.ops[req.Method+" "+route.Path] = true
	c.mu.Unlock()
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 status,
		Header:                 header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("%s: does not match docs/openapi.yaml: %v", what, err)
	}
}

// covered fails for every operation of the spec no test answered, and for every error code
// the spec lists that no answer carried: the spec may not promise what the code never does.
func (c *contract) covered(t *testing.T) {
	t.Helper()
	for p, item := range c.doc.Paths.Map() {
		for method := range item.Operations() {
			if !c.ops[method+" "+p] {
				t.Errorf("docs/openapi.yaml: %s %s was never answered by the tests", method, p)
			}
		}
	}
	for _, code := range c.doc.Components.Schemas["ErrorCode"].Value.Enum {
		if !c.codes[code.(string)] {
			t.Errorf("docs/openapi.yaml: error code %s was never answered by the tests", code)
		}
	}
}

// probe is one request and, optionally, what must come back.
type probe struct {
	method, path, body string
	status             int
	code               string
	// host and header, when set, are the request's Host and extra headers: the loopback
	// listener's checks (BrowserGate) read them.
	host   string
	header http.Header
}

// send runs p through h (a real handler) and checks the answer against the contract.
func (c *contract) send(t *testing.T, h http.Handler, p probe) []byte {
	t.Helper()
	host := "ecrd"
	if p.host != "" {
		host = p.host
	}
	req := httptest.NewRequest(p.method, "http://"+host+p.path, strings.NewReader(p.body))
	if p.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range p.header {
		req.Header[k] = v
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if p.status != 0 && w.Code != p.status {
		t.Errorf("%s %s: status %d, want %d: %s", p.method, p.path, w.Code, p.status, w.Body.Bytes())
	}
	if p.code != "" {
		var e ErrorBody
		if json.Unmarshal(w.Body.Bytes(), &e); e.Error.Code != p.code {
			t.Errorf("%s %s: code %q, want %q", p.method, p.path, e.Error.Code, p.code)
		}
	}
	// The request as the spec's router sees it: a fresh one, since the handler read the body.
	c.check(t, httptest.NewRequest(p.method, "http://ecrd"+p.path, nil), w.Code, w.Header(), w.Body.Bytes())
	return w.Body.Bytes()
}

// wiredHandler is the API as the daemon wires it: the capture service, spool, file printer,
// monitor (status, metrics, health) against the loopback secupay fake at baseURL.
func wiredHandler(t *testing.T, fake *secupaytest.Server, baseURL string) (http.Handler, string) {
	svc, sp, pf := newService(t, fake, baseURL, 2*time.Second)
	mon := monitor.New(monitor.Config{Version: "test", Spool: sp, Unfinished: svc.Unfinished})
	return Handler(Config{Capture: svc, Lines: svc, Spool: sp, CaptureTimeout: 10 * time.Second,
		Health: func() Health {
			out := HealthOf(mon.Health())
			out.UnfinishedCaptures = svc.Unfinished()
			out.DeviceAuthorization = &DeviceAuthorization{UserCode: "ABCD-EFGH", VerificationURL: "http://www.secuoffice.com"}
			return out
		},
		Status: mon.Status, Metrics: mon.Handler(), ObserveCapture: mon.ObserveCapture,
		Preview: func(w io.Writer, id string) error {
			job, err := svc.JobBytes(id)
			if err != nil {
				return err
			}
			return receipt.WriteJobPNG(w, job, nil)
		}}), pf
}

// TestAnswersMatchOpenAPI sends every endpoint real requests, good and bad, and checks each
// answer — status, headers and body — against docs/openapi.yaml.
func TestAnswersMatchOpenAPI(t *testing.T) {
	c := loadContract(t)

	fake := secupaytest.NewServer()
	t.Cleanup(fake.Close)
	fake.AddSeed()
	fake.SetAutoCreate(true)
	h, pf := wiredHandler(t, fake, fake.URL)
	cash := func(id string) string { return "/v1/transactions/" + id + "/cash" }

	body := c.send(t, h, probe{method: "POST", path: cash(secupaytest.SeedID), status: 200})
	var res Result
	json.Unmarshal(body, &res)
	probes := []probe{
		{method: "POST", path: cash(secupaytest.SeedID), body: "{}", status: 200},
		{method: "POST", path: "/v1/transactions/" + secupaytest.SeedID + "/reprint", status: 200},
		{method: "GET", path: "/v1/jobs/" + res.Job.ID, status: 200},
		{method: "GET", path: "/v1/jobs/" + res.Job.ID + "/preview.png", status: 200},
		{method: "GET", path: "/v1/jobs/nope/preview.png", status: 404, code: "not_found"},
		{method: "GET", path: "/v1/jobs/..%2Fqueue/preview.png", status: 400, code: "invalid_id"},
		{method: "GET", path: "/v1/printer", status: 200},
		{method: "GET", path: "/v1/status", status: 200},
		{method: "GET", path: "/metrics", status: 200},
		{method: "GET", path: "/healthz", status: 200},
		{method: "POST", path: "/v1/receipts", body: `[{"type":"textline","value":{"text":"Grüße"}}]`, status: 200},
		{method: "POST", path: "/v1/receipts", body: `{"receipt":[{"type":"space"}]}`, status: 200},
		{method: "POST", path: "/v1/transactions/STX_..%2Fx/cash", status: 400, code: "invalid_id"},
		{method: "POST", path: "/v1/transactions/STX_A%3Fb/reprint", status: 400, code: "invalid_id"},
		{method: "POST", path: cash("STX_BODY"), body: "null", status: 400, code: "bad_request"},
		{method: "POST", path: cash("STX_BODY"), body: strings.Repeat("x", MaxCaptureBody+1), status: 413, code: "body_too_large"},
		{method: "POST", path: "/v1/transactions/STX_NEVER/reprint", status: 404, code: "not_captured"},
		{method: "POST", path: "/v1/receipts", body: `[]`, status: 400, code: "bad_receipt"},
		{method: "POST", path: "/v1/receipts", body: string(hugeReceipt()), status: 413, code: "too_many_lines"},
		{method: "GET", path: "/v1/jobs/nope", status: 404, code: "not_found"},
		{method: "GET", path: "/v1/jobs", status: 200},
		{method: "GET", path: "/v1/jobs?limit=0", status: 400, code: "bad_request"},
		{method: "POST", path: "/v1/jobs/" + res.Job.ID + "/reprint", status: 200},
		{method: "POST", path: "/v1/jobs/nope/reprint", status: 404, code: "not_found"},
		{method: "GET", path: "/v1/jobs/..%2Fqueue", status: 400, code: "invalid_id"},
		{method: "GET", path: "/v2/nothing", status: 404, code: "not_found"},
		{method: "GET", path: "/v1/transactions/STX_A/../STX_B/cash", status: 404, code: "not_found"},
		{method: "DELETE", path: cash(secupaytest.SeedID), status: 405, code: "method_not_allowed"},
	}
	for _, p := range probes {
		c.send(t, h, p)
	}
	// The loopback listener serves the same handler behind its gate: with the token, from an
	// allowed page, every probe is answered as on the socket.
	gated := c.browserProbes(t, h, fake)
	for _, p := range probes {
		p.host, p.header = browserAddr, browserHeader(browserToken, browserOrigin)
		c.send(t, gated, p)
	}

	// secupay refuses: its fields reach the POS.
	fake.Fault(secupaytest.Fault{Op: "start", Status: 400, Body: secupaytest.ErrorBody("ProductFormatException",
		"basket sum mismatch", "Der Betrag stimmt nicht", 2010, "sup1")})
	c.send(t, h, probe{method: "POST", path: cash("STX_REFUSED"), status: 502, code: "secupay_refused"})

	// No answer, and no read-back: in doubt, then (asked again) still in doubt within the wait.
	fake.Fault(secupaytest.Fault{Op: "start", ID: "STX_DOUBT", Cut: true})
	fake.Fault(secupaytest.Fault{Op: "get", ID: "STX_DOUBT", Cut: true, Times: 2})
	c.send(t, h, probe{method: "POST", path: cash("STX_DOUBT"), status: 504, code: "secupay_timeout"})
	c.send(t, h, probe{method: "POST", path: cash("STX_DOUBT"), status: 504, code: "in_doubt"})

	// Two at once: the second hears 409 while the first is at secupay.
	fake.Fault(secupaytest.Fault{Op: "start", ID: "STX_TWICE", Delay: 300 * time.Millisecond})
	first := make(chan struct{})
	go func() {
		defer close(first)
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "http://ecrd"+cash("STX_TWICE"), nil))
	}()
	wait.Until(t, 5*time.Second, "the first capture at secupay", func() bool { return fake.Calls().StartCash["STX_TWICE"] > 0 })
	c.send(t, h, probe{method: "POST", path: cash("STX_TWICE"), status: 409, code: "in_progress"})
	<-first

	// Paper out: /healthz stays 200 within the grace, the printer says so.
	os.WriteFile(pf+".status", []byte("paper_out"), 0o644)
	c.send(t, h, probe{method: "GET", path: "/v1/printer", status: 200})

	// secupay unreachable: nothing was sent.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	down, _ := wiredHandler(t, fake, closed)
	c.send(t, down, probe{method: "POST", path: cash("STX_DOWN"), status: 502, code: "secupay_unreachable"})

	// What a working till cannot be made to say on demand comes from stubs, through the same
	// handler: the disk failing, a bug, a degraded health, a busy renderer.
	stub := &stubs{}
	sh := stub.handler()
	for _, e := range []struct {
		err     error
		status  int
		code    string
		reprint bool // a reprint can fail so too
	}{
		{fmt.Errorf("capture: %w: %w", capture.ErrCapturedNotRecorded, capture.ErrStorage), 500, "captured_not_recorded", false},
		{fmt.Errorf("capture: %w: disk full", capture.ErrStorage), 500, "storage", true},
		{errors.New("a bug"), 500, "internal", true},
		{&capture.InDoubtError{TransactionID: "STX_A", RetryAfter: time.Minute}, 504, "in_doubt", false},
	} {
		stub.err = e.err
		c.send(t, sh, probe{method: "POST", path: cash("STX_A"), status: e.status, code: e.code})
		if e.reprint {
			c.send(t, sh, probe{method: "POST", path: "/v1/transactions/STX_A/reprint", status: e.status, code: e.code})
		}
	}
	stub.err = fmt.Errorf("reprint STX_A: %w", capture.ErrReceiptPruned)
	c.send(t, sh, probe{method: "POST", path: "/v1/transactions/STX_A/reprint", status: 410, code: "receipt_pruned"})
	gone := Handler(Config{Capture: stub, Lines: stub, Spool: stub, Reprinter: reprinterFunc(func(context.Context, string) (*capture.Result, error) {
		return nil, fmt.Errorf("reprint job pos-1: %w", capture.ErrJobBytesGone)
	})})
	c.send(t, gone, probe{method: "POST", path: "/v1/jobs/pos-1/reprint", status: 410, code: "job_bytes_gone"})
	stub.ps = spool.PrinterStatus{URI: "usb:04b8:0e15", Status: printer.Status{State: printer.StateOnline,
		Completion: "in-order (GS r 1)", Model: "TM-T20II", ModelSource: "Device ID MFG:EPSON;MDL:TM-T20II"}, Checked: time.Now()}
	c.send(t, sh, probe{method: "GET", path: "/v1/printer", status: 200})
	stub.lerr = fmt.Errorf("print lines: %w: disk full", capture.ErrStorage)
	c.send(t, sh, probe{method: "POST", path: "/v1/receipts", body: `[{"type":"space"}]`, status: 500, code: "storage"})
	degraded := Handler(Config{Capture: stub, Lines: stub, Spool: stub, Health: func() Health {
		return HealthOf(monitor.Health{Status: "degraded", Problems: []monitor.Problem{{Code: "printer_not_ready",
			Message: "paper out for 6m", Since: time.Now().UTC()}}})
	}})
	c.send(t, degraded, probe{method: "GET", path: "/healthz", status: 503})
	c.send(t, sh, probe{method: "GET", path: "/v1/status", status: 404, code: "not_found"})
	c.send(t, sh, probe{method: "GET", path: "/metrics", status: 404, code: "not_found"})
	undrawable := Handler(Config{Capture: stub, Lines: stub, Spool: stub,
		Preview: func(io.Writer, string) error { return errors.New("job bytes cannot be drawn") }})
	c.send(t, undrawable, probe{method: "GET", path: "/v1/jobs/STX_A.receipt/preview.png", status: 500, code: "internal"})
	c.send(t, busyHandler(t), probe{method: "POST", path: "/v1/receipts", body: `[{"type":"space"}]`, status: 503, code: "busy"})
	c.send(t, busyPreviewHandler(t), probe{method: "GET", path: "/v1/jobs/" + previewJob + "/preview.png", status: 503, code: "busy"})

	c.covered(t)
}

// browserProbes sends the loopback listener's refusals through BrowserGate around h and
// checks that none of them reached secupay; it returns the gated handler.
func (c *contract) browserProbes(t *testing.T, h http.Handler, fake *secupaytest.Server) http.Handler {
	t.Helper()
	gated := newGate(t, h)
	path := "/v1/transactions/STX_GATED/cash"
	for _, p := range []probe{
		{method: "POST", path: path, status: 401, code: "unauthorized", header: browserHeader("", browserOrigin)},
		{method: "POST", path: path, status: 401, code: "unauthorized", header: browserHeader("0123456789abcdef0123", "")},
		{method: "GET", path: "/healthz", status: 401, code: "unauthorized"},
		{method: "POST", path: path, status: 403, code: "origin_not_allowed", header: browserHeader(browserToken, "https://evil.example")},
		{method: "POST", path: "/v1/receipts", body: `[{"type":"space"}]`, status: 403, code: "origin_not_allowed",
			header: browserHeader(browserToken, "null")},
		{method: "POST", path: path, status: 421, code: "host_not_allowed", host: "rebound.example:8765",
			header: browserHeader(browserToken, browserOrigin)},
		{method: "GET", path: "/v1/printer", status: 421, code: "host_not_allowed", host: "127.0.0.1:9999",
			header: browserHeader(browserToken, "")},
	} {
		if p.host == "" {
			p.host = browserAddr
		}
		c.send(t, gated, p)
	}
	if n := fake.Calls().StartCash["STX_GATED"]; n != 0 {
		t.Errorf("refused requests reached secupay: %d start/cash calls", n)
	}
	return gated
}

// busyHandler is an API whose two render slots are taken by receipts that never finish, so
// that the next POS receipt, whose client has given up, is answered "busy".
func busyHandler(t *testing.T) http.Handler {
	block := &blockingLines{release: make(chan struct{}), started: make(chan struct{}, receiptsAtOnce)}
	stub := &stubs{}
	h := Handler(Config{Capture: stub, Lines: block, Spool: stub})
	var wg sync.WaitGroup
	t.Cleanup(func() { close(block.release); wg.Wait() })
	for range receiptsAtOnce {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "http://ecrd/v1/receipts", strings.NewReader(`[{"type":"space"}]`)))
		}()
		<-block.started
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r.WithContext(ctx)) })
}

type blockingLines struct {
	release, started chan struct{}
}

func (b *blockingLines) PrintLines(ctx context.Context, lines []receipt.Line) (capture.JobResult, error) {
	b.started <- struct{}{}
	<-b.release
	return capture.JobResult{State: capture.JobPrinted}, nil
}

// TestEveryErrorCodeIsInTheSpec reads the API's source for every error code it can write —
// the literal codes of writeError calls and of the variables they pass — so that a code added
// to the code but not to docs/openapi.yaml fails here even before a test answers it.
func TestEveryErrorCodeIsInTheSpec(t *testing.T) {
	c := loadContract(t)
	inSpec := map[string]bool{}
	for _, v := range c.doc.Components.Schemas["ErrorCode"].Value.Enum {
		inSpec[v.(string)] = true
	}
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		literal := func(e ast.Expr) {
			if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				code, _ := strconv.Unquote(lit.Value)
				found++
				if !inSpec[code] {
					t.Errorf("%s: error code %q is not in docs/openapi.yaml's ErrorCode", fset.Position(lit.Pos()), code)
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				if id, ok := n.Fun.(*ast.Ident); ok && id.Name == "writeError" && len(n.Args) > 2 {
					literal(n.Args[2])
				}
				// the loopback listener's refusals: g.refuse(w, r, status, "code", …)
				if sel, ok := n.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "refuse" && len(n.Args) > 3 {
					literal(n.Args[3])
				}
			case *ast.AssignStmt:
				// code := "…" / code = "…", passed to writeError by name
				for i, lhs := range n.Lhs {
					if id, ok := lhs.(*ast.Ident); ok && id.Name == "code" && i < len(n.Rhs) {
						literal(n.Rhs[i])
					}
				}
			}
			return true
		})
	}
	if found < len(inSpec) {
		t.Fatalf("found %d error codes in the source, fewer than the spec's %d: the scan is broken", found, len(inSpec))
	}
}
