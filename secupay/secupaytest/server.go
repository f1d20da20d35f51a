// Package secupaytest is a loopback fake of the secupay Smart Transactions API and its OAuth
// token endpoint, for ecrd's tests and for `ecrd demo`. It answers as secupay's documentation
// and SDKs say secupay answers (paths, status codes, error bodies, token invalidation) and can
// be told to misbehave the ways a real network does: slow, cut, lying, malformed (see Fault).
//
// It owns only its own in-memory state. It must never listen on anything but loopback, import
// package testing (the demo binary links it), or borrow package secupay's logic: a fake that
// shares the client's assumptions cannot catch them. Where secupay's behaviour is not
// documented the fake makes a choice and says so in a comment starting "Fake's choice".
package secupaytest

import (
	"bytes"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SeedID is the Smart Transaction of secupay's "Step 4: Capture the Payment" example.
const SeedID = "STX_KJXJDUN542NR3WMRHRVU5WWM6ZQEA2"

// Credentials the fake's /oauth/token accepts.
const (
	ClientID     = "ecrd-test-client"
	ClientSecret = "ecrd-test-secret"
	// DefaultToken is the bearer token accepted when the server starts.
	DefaultToken = "test-token"
	// VerificationURL is what the device grant tells the technician to open (as in the docs).
	VerificationURL = "http://www.secuoffice.com"
)

// seedJSON is the documented capture answer made valid JSON: the "// ..." elisions dropped,
// a missing comma added, and the receipt completed with the lines of secupay's
// "Pay the Full Amount at the Cash Register" example.
//
//go:embed seed.json
var seedJSON []byte

// Server is the fake. All methods are safe for concurrent use.
type Server struct {
	// URL is the base URL (http://127.0.0.1:port), without /api/v2.
	URL string

	srv  *httptest.Server
	done chan struct{}

	mu          sync.Mutex
	autoCreate  bool
	token       string
	issued      []string
	txs         map[string]map[string]any
	refresh     map[string]bool
	devices     map[string]*device // by device_code
	interval    int
	faults      []*Fault
	calls       Calls
	inFlightTok int
	nextTransID int
	processing  map[string]bool               // start/cash calls secupay is still working on
	procTime    func(id string) time.Duration // SetProcessingTime
}

// NewServer starts the fake on 127.0.0.1 with no transactions, accepting DefaultToken.
func NewServer() *Server {
	s := &Server{
		done:        make(chan struct{}),
		token:       DefaultToken,
		txs:         map[string]map[string]any{},
		refresh:     map[string]bool{},
		devices:     map[string]*device{},
		interval:    5,
		calls:       Calls{StartCash: map[string]int{}, Get: map[string]int{}, Captures: map[string]int{}},
		processing:  map[string]bool{},
		nextTransID: 29008412,
	}
	// httptest.NewServer listens on 127.0.0.1 (or [::1]) only: the fake never faces a network.
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Close stops the server; answers held back by a Delay fault are abandoned.
func (s *Server) Close() {
	s.mu.Lock()
	select {
	case <-s.done:
	default:
		close(s.done)
	}
	s.mu.Unlock()
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// SetProcessingTime makes every start/cash without a fault take fn(id) to process, as a
// Fault's Processing does: the capture happens after that time even if the client gave up.
// nil restores instant answers.
func (s *Server) SetProcessingTime(fn func(id string) time.Duration) {
	s.mu.Lock()
	s.procTime = fn
	s.mu.Unlock()
}

// Client returns an HTTP client for the server (plain http on loopback).
func (s *Server) Client() *http.Client { return s.srv.Client() }

// SetAutoCreate makes an unknown but valid id exist on demand, in status "created" with a
// generated receipt, so load tests can use thousands of ids without adding each.
func (s *Server) SetAutoCreate(on bool) {
	s.mu.Lock()
	s.autoCreate = on
	s.mu.Unlock()
}

// AddSeed adds the seed's transaction in status "created", with the seed's receipt.
func (s *Server) AddSeed() {
	tx, err := decodeMap(seedJSON)
	if err != nil {
		panic("secupaytest: embedded seed.json: " + err.Error())
	}
	tx["status"] = "created"
	tx["updated"] = tx["created"]
	delete(tx, "payment_method")
	delete(tx, "trans_id")
	s.mu.Lock()
	s.txs[SeedID] = tx
	s.mu.Unlock()
}

// SeedAnswer returns the seed's documented capture answer (status "ok"), as embedded.
func SeedAnswer() []byte { return bytes.Clone(seedJSON) }

// Add adds a transaction: a JSON object (json.RawMessage, []byte, string) or any value that
// marshals to one. It needs an "id"; "status" defaults to "created" and "object" to
// "smart.transactions". A given status is kept, so tests can set up cancelled or captured ones.
func (s *Server) Add(tx any) error {
	var data []byte
	switch v := tx.(type) {
	case json.RawMessage:
		data = v
	case []byte:
		data = v
	case string:
		data = []byte(v)
	default:
		var err error
		if data, err = json.Marshal(v); err != nil {
			return fmt.Errorf("secupaytest: add: %w", err)
		}
	}
	m, err := decodeMap(data)
	if err != nil {
		return fmt.Errorf("secupaytest: add: %w", err)
	}
	id, _ := m["id"].(string)
	if id == "" {
		return fmt.Errorf("secupaytest: add: transaction has no id")
	}
	if _, ok := m["status"]; !ok {
		m["status"] = "created"
	}
	if _, ok := m["object"]; !ok {
		m["object"] = "smart.transactions"
	}
	s.mu.Lock()
	s.txs[id] = m
	s.mu.Unlock()
	return nil
}

// SetStatus changes a transaction's status (e.g. to "pending" or "cancelled").
func (s *Server) SetStatus(id, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tx, ok := s.txs[id]; ok {
		tx["status"] = status
	}
}

// Transaction returns the stored transaction as JSON, or nil if unknown.
func (s *Server) Transaction(id string) json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	tx, ok := s.txs[id]
	if !ok {
		return nil
	}
	data, _ := json.Marshal(tx)
	return data
}

// --- HTTP ---

const apiPrefix = "/api/v2/Smart/Transactions/"

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	op, id, method := route(r)
	s.mu.Lock()
	s.calls.Requests++
	switch op {
	case "start":
		s.calls.StartCash[id]++
		s.calls.TotalStartCash++
	case "get":
		s.calls.Get[id]++
	case "token":
		s.calls.Token++
		s.inFlightTok++
		s.calls.MaxConcurrentToken = max(s.calls.MaxConcurrentToken, s.inFlightTok)
	}
	f := s.takeFaultLocked(op, id)
	var processing time.Duration
	switch {
	case op != "start":
	case f != nil:
		processing = f.Processing
	case s.procTime != nil:
		processing = s.procTime(id)
	}
	s.mu.Unlock()
	if processing > 0 {
		s.process(w, r, op, id, method, processing, f)
		return
	}
	if op == "token" {
		defer func() {
			s.mu.Lock()
			s.inFlightTok--
			s.mu.Unlock()
		}()
	}

	var a answer
	switch {
	case f == nil:
		a = s.handle(op, id, method, r)
	case f.CaptureFirst:
		// The server did the work; only the answer goes wrong.
		a = s.handle(op, id, method, r)
		if !s.delay(r, f.Delay) {
			return
		}
		if f.Status != 0 || f.Body != "" {
			a = f.answer()
		}
	default:
		if !s.delay(r, f.Delay) {
			return // the client gave up: a slow server that notices does nothing
		}
		if f.Status != 0 || f.Body != "" {
			a = f.answer()
		} else {
			a = s.handle(op, id, method, r)
		}
	}
	if f != nil && f.Cut {
		cut(w, a)
		return
	}
	a.write(w)
}

// process is a start/cash that secupay works on for d, whatever the client does: the capture
// happens at the end even if the client hung up long before (its answer is then lost).
func (s *Server) process(w http.ResponseWriter, r *http.Request, op, id, method string, d time.Duration, f *Fault) {
	s.mu.Lock()
	busy := s.processing[id]
	if !busy {
		s.processing[id] = true
	}
	s.mu.Unlock()
	if busy {
		answer{http.StatusBadRequest, errBody("ProductInternalException", "transaction is being processed",
			"Transaktion wurde bereits abgeschlossen", 1001, NewSupportID())}.write(w)
		return
	}
	t := time.NewTimer(d)
	select {
	case <-t.C:
	case <-s.done:
		t.Stop()
	}
	a := s.handle(op, id, method, r)
	s.mu.Lock()
	delete(s.processing, id)
	s.mu.Unlock()
	if r.Context().Err() != nil {
		return // the client gave up; secupay captured all the same
	}
	if f != nil && (f.Status != 0 || f.Body != "") {
		a = f.answer()
	}
	if f != nil && f.Cut {
		cut(w, a)
		return
	}
	a.write(w)
}

// route maps a request to an operation. Path segments are unescaped one by one, so an
// escaped slash stays inside the id (and then fails the id check) instead of making a path.
func route(r *http.Request) (op, id, method string) {
	p := r.URL.EscapedPath()
	if p == "/oauth/token" && r.Method == http.MethodPost {
		return "token", "", ""
	}
	if !strings.HasPrefix(p, apiPrefix) {
		return "other", "", ""
	}
	parts := strings.Split(strings.TrimPrefix(p, apiPrefix), "/")
	for i, part := range parts {
		u, err := url.PathUnescape(part)
		if err != nil {
			return "other", "", ""
		}
		parts[i] = u
	}
	switch {
	case len(parts) == 1 && r.Method == http.MethodGet:
		return "get", parts[0], ""
	case len(parts) == 3 && parts[1] == "start" && r.Method == http.MethodPost:
		return "start", parts[0], parts[2]
	}
	return "other", parts[0], ""
}

type answer struct {
	status int
	body   []byte
}

func (a answer) write(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(a.body)))
	w.WriteHeader(a.status)
	w.Write(a.body)
}

func (s *Server) handle(op, id, method string, r *http.Request) answer {
	switch op {
	case "token":
		return s.handleToken(r)
	case "start", "get":
		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.authorizedLocked(r) {
			return tokenRefused()
		}
		tx, a, ok := s.lookupLocked(id)
		if !ok {
			return a
		}
		if op == "get" {
			return ok200(tx)
		}
		return s.startLocked(id, method, tx)
	default:
		return answer{http.StatusNotFound, errBody("ProductNotFoundException",
			"Not found: "+r.Method+" "+r.URL.EscapedPath(), "Es ist ein unbekannter Fehler aufgetreten", 0, NewSupportID())}
	}
}

// authorizedLocked accepts only "Authorization: Bearer <current token>". The seed's
// "Authenticate:" header is a documentation typo (every SDK sends Authorization); a client
// following the seed literally is refused here as it would be by secupay.
func (s *Server) authorizedLocked(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	return ok && s.token != "" && tok == s.token
}

// tokenRefused is secupay's documented answer to a missing or expired token. (secupay also
// sends the exception name as the reason phrase, "403 ProductNotAllowedException"; net/http
// cannot, and clients must not depend on it.)
func tokenRefused() answer {
	return answer{http.StatusForbidden, errBody("ProductNotAllowedException",
		"Valid auth token required", "Es ist ein unbekannter Fehler aufgetreten (Code 2003)", 2003, NewSupportID())}
}

func (s *Server) lookupLocked(id string) (map[string]any, answer, bool) {
	if tx, ok := s.txs[id]; ok {
		return tx, answer{}, true
	}
	if s.autoCreate && validID(id) {
		tx := generated(id)
		s.txs[id] = tx
		return tx, answer{}, true
	}
	return nil, answer{http.StatusNotFound, errBody("ProductNotFoundException",
		"Not found", "Es ist ein unbekannter Fehler aufgetreten", 0, NewSupportID())}, false
}

// startLocked captures. Fake's choice: only "cash" is implemented (ecrd needs nothing else);
// another method answers 400 ProductFormatException. And a start on a transaction that is not
// "created" or "processing" — undocumented by secupay — answers 400 ProductInternalException
// "transaction already started" (or naming the status), and changes nothing.
func (s *Server) startLocked(id, method string, tx map[string]any) answer {
	if method != "cash" {
		return answer{http.StatusBadRequest, errBody("ProductFormatException",
			"payment method "+strconv.Quote(method)+" is not supported by the fake", "Es ist ein unbekannter Fehler aufgetreten", 1001, NewSupportID())}
	}
	switch st, _ := tx["status"].(string); st {
	case "created", "processing":
	case "ok":
		return answer{http.StatusBadRequest, errBody("ProductInternalException",
			"transaction already started", "Die Transaktion wurde bereits gestartet", 1001, NewSupportID())}
	default:
		return answer{http.StatusBadRequest, errBody("ProductInternalException",
			"transaction in status "+strconv.Quote(st)+" cannot be started", "Es ist ein interner Fehler aufgetreten", 1001, NewSupportID())}
	}
	tx["status"] = "ok"
	tx["payment_method"] = "cash"
	tx["updated"] = time.Now().Format(time.RFC3339)
	if id == SeedID {
		tx["trans_id"] = "29008411" // as the seed's answer shows it: a string
	} else {
		tx["trans_id"] = s.nextTransID // as the SDK types it: a number
		s.nextTransID++
	}
	if r, ok := tx["receipt"].([]any); !ok || len(r) == 0 {
		tx["receipt"] = generatedReceipt(tx)
	}
	s.calls.Captures[id]++
	return ok200(tx)
}

func ok200(tx map[string]any) answer {
	data, err := json.Marshal(tx)
	if err != nil {
		panic("secupaytest: " + err.Error())
	}
	return answer{http.StatusOK, data}
}

// generated is an AutoCreate transaction: the smallest one secupay documents (a demo basket
// info), plus a receipt so that printing can be load-tested too.
func generated(id string) map[string]any {
	now := time.Now().Format(time.RFC3339)
	tx := map[string]any{
		"object":        "smart.transactions",
		"id":            id,
		"merchant":      map[string]any{"object": "general.merchants", "id": "MRC_35SZ3R5GGQQP4T0U2T5GFAN9P6C4PG", "companyname": "John's Bakery"},
		"device_source": map[string]any{"object": "smart.devices", "id": "SDV_2YJDXYESB2YBHECVB5GQGSYPNM8UA6"},
		"created":       now,
		"updated":       now,
		"status":        "created",
		"basket_info":   map[string]any{"sum": 796, "currency": "EUR"},
		"is_demo":       true,
	}
	tx["receipt"] = generatedReceipt(tx)
	return tx
}

func generatedReceipt(tx map[string]any) []any {
	id, _ := tx["id"].(string)
	line := func(typ string, v map[string]any) map[string]any {
		if v == nil {
			return map[string]any{"type": typ}
		}
		return map[string]any{"type": typ, "value": v}
	}
	return []any{
		line("separator", map[string]any{"caption": "Barzahlung"}),
		line("name-value", map[string]any{"name": "Vorgang:", "value": id, "decoration": []any{}}),
		line("space", nil),
		line("textline", map[string]any{"text": "Umsatz erfasst:", "decoration": []any{}}),
		line("textline", map[string]any{"text": "7,96 EUR", "decoration": []any{"important"}}),
	}
}

// --- helpers ---

// ErrorBody is secupay's error payload (ProductExceptionPayload). code is written as given:
// pass an int for the documented number, a string for the SDK's type, nil to leave it out;
// supportID "" leaves supportId out (secupay's proxy does). The HTTP status goes in the Fault.
func ErrorBody(exception, details, user string, code any, supportID string) string {
	return string(errBody(exception, details, user, code, supportID))
}

func errBody(exception, details, user string, code any, supportID string) []byte {
	m := map[string]any{"status": "error", "error": exception, "error_details": details, "error_user": user}
	if code != nil {
		m["code"] = code
	}
	if supportID != "" {
		m["supportId"] = supportID
	}
	data, err := json.Marshal(m)
	if err != nil {
		panic("secupaytest: " + err.Error())
	}
	return data
}

// TokenRefusedBody is the documented 403 body for an expired or missing token.
func TokenRefusedBody() string { return string(tokenRefused().body) }

// NewSupportID returns a support id shaped like secupay's (32 hex digits).
func NewSupportID() string { return randHex(16) }

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// validID is the fake's own check of an id (not package secupay's, on purpose).
func validID(id string) bool {
	rest, ok := strings.CutPrefix(id, "STX_")
	if !ok || len(rest) == 0 || len(rest) > 64 {
		return false
	}
	for _, c := range []byte(rest) {
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

func decodeMap(data []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber() // keep 29008411 a number and big numbers exact
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, fmt.Errorf("not a JSON object")
	}
	return maps.Clone(m), nil
}
