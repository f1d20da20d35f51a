package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/capture"
	"github.com/ecrd-pos/ecrd/printer"
	"github.com/ecrd-pos/ecrd/receipt"
	"github.com/ecrd-pos/ecrd/spool"
)

// stubs stand in for the capture service and the spool: which status and code the POS gets
// for which answer needs no secupay, no journal and no printer.
type stubs struct {
	res   *capture.Result
	err   error
	lines capture.JobResult
	lerr  error
	job   spool.Info
	jerr  error
	ps    spool.PrinterStatus
	queue []spool.Info
}

func (s *stubs) Capture(ctx context.Context, id string) (*capture.Result, error) { return s.res, s.err }
func (s *stubs) Reprint(ctx context.Context, id string) (*capture.Result, error) { return s.res, s.err }
func (s *stubs) PrintLines(ctx context.Context, lines []receipt.Line) (capture.JobResult, error) {
	return s.lines, s.lerr
}
func (s *stubs) Job(id string) (spool.Info, error)              { return s.job, s.jerr }
func (s *stubs) Status(ctx context.Context) spool.PrinterStatus { return s.ps }
func (s *stubs) Pending() []spool.Info                          { return s.queue }

func (s *stubs) handler() http.Handler { return Handler(Config{Capture: s, Lines: s, Spool: s}) }

// serve sends one request to h and decodes the JSON object it answers.
func serve(t *testing.T, h http.Handler, method, path, body string) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, path, strings.NewReader(body)))
	var out map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s %s: answer is not a JSON object: %q", method, path, w.Body.Bytes())
	}
	return w, out
}

// Every error class of the capture service has one status, one code and one outcome.
func TestCaptureErrorMapping(t *testing.T) {
	const id = "STX_A1"
	refusal := capture.Refusal{HTTPStatus: 400, Status: "error", Error: "ProductFormatException",
		ErrorUser: "Der Betrag stimmt nicht", ErrorDetails: "basket sum mismatch", Code: "2010", SupportID: "sup1"}
	cases := []struct {
		name       string
		err        error
		status     int
		code       string
		outcome    string
		retryAfter string
	}{
		{"invalid id", fmt.Errorf("capture: %w", capture.ErrInvalidID), 400, "invalid_id", OutcomeNotCaptured, ""},
		{"in progress", fmt.Errorf("capture: %w", capture.ErrInProgress), 409, "in_progress", OutcomeInDoubt, ""},
		{"captured, not recorded", fmt.Errorf("capture: %w: %w", capture.ErrCapturedNotRecorded, capture.ErrStorage),
			500, "captured_not_recorded", OutcomeCaptured, ""},
		{"refused", &capture.RefusedError{TransactionID: id, Refusal: refusal}, 502, "secupay_refused", OutcomeNotCaptured, ""},
		{"unreachable", fmt.Errorf("capture: %w", capture.ErrUnreachable), 502, "secupay_unreachable", OutcomeNotCaptured, ""},
		{"storage, nothing sent", fmt.Errorf("capture: %w: disk full", capture.ErrStorage), 500, "storage", OutcomeNotCaptured, ""},
		{"storage, journal unreadable", fmt.Errorf("%w: %w", capture.ErrStorage, &capture.InDoubtError{TransactionID: id}),
			500, "storage", OutcomeInDoubt, ""},
		{"this call got no answer", &capture.InDoubtError{TransactionID: id, NoAnswer: true, RetryAfter: 1500 * time.Millisecond},
			504, "secupay_timeout", OutcomeInDoubt, "2"},
		{"an earlier call unsettled", &capture.InDoubtError{TransactionID: id, RetryAfter: 90 * time.Second},
			504, "in_doubt", OutcomeInDoubt, "90"},
		{"in doubt, ask whenever", &capture.InDoubtError{TransactionID: id}, 504, "in_doubt", OutcomeInDoubt, ""},
		{"not captured here", fmt.Errorf("reprint: %w", capture.ErrNotCaptured), 404, "not_captured", OutcomeNotCaptured, ""},
		{"captured, receipt pruned", fmt.Errorf("reprint: %w", capture.ErrReceiptPruned), 410, "receipt_pruned", OutcomeCaptured, ""},
		{"a bug", errors.New("surprise"), 500, "internal", OutcomeInDoubt, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := (&stubs{err: c.err}).handler()
			w, out := serve(t, h, "POST", "/v1/transactions/"+id+"/cash", "")
			info, _ := out["error"].(map[string]any)
			if w.Code != c.status || info["code"] != c.code || info["outcome"] != c.outcome {
				t.Fatalf("%d %v, want %d %s %s", w.Code, out, c.status, c.code, c.outcome)
			}
			if got := w.Header().Get("Retry-After"); got != c.retryAfter {
				t.Errorf("Retry-After %q, want %q", got, c.retryAfter)
			}
			if c.retryAfter != "" && fmt.Sprint(info["retry_after"]) != c.retryAfter {
				t.Errorf("retry_after %v, want %s", info["retry_after"], c.retryAfter)
			}
			if info["message"] == "" {
				t.Error("no message")
			}
		})
	}
}

// secupay's refusal reaches the POS field by field: error_user for the cashier, support_id
// for support.
func TestRefusalFieldsAreMappedOnce(t *testing.T) {
	h := (&stubs{err: &capture.RefusedError{TransactionID: "STX_A1", Refusal: capture.Refusal{HTTPStatus: 404,
		Status: "error", Error: "ProductNotFoundException", ErrorUser: "unbekannt", ErrorDetails: "Not found",
		Code: "1002", SupportID: "s1"}}}).handler()
	_, out := serve(t, h, "POST", "/v1/transactions/STX_A1/cash", "")
	want := map[string]any{"code": "secupay_refused", "transaction_id": "STX_A1", "outcome": "not_captured",
		"secupay_http_status": 404.0, "secupay_status": "error", "secupay_error": "ProductNotFoundException",
		"error_user": "unbekannt", "error_details": "Not found", "secupay_code": "1002", "support_id": "s1"}
	info := out["error"].(map[string]any)
	for k, v := range want {
		if info[k] != v {
			t.Errorf("%s = %v, want %v", k, info[k], v)
		}
	}
}

// secupay's own words reach the POS on an answer in doubt too: a 500 with its error body.
func TestSecupayWordsInADoubt(t *testing.T) {
	h := (&stubs{err: &capture.InDoubtError{TransactionID: "STX_A1", NoAnswer: true, Secupay: &capture.Refusal{
		HTTPStatus: 500, Status: "error", Error: "ProductInternalException", ErrorUser: "Es ist ein interner Fehler aufgetreten"}}}).handler()
	w, out := serve(t, h, "POST", "/v1/transactions/STX_A1/cash", "")
	info := out["error"].(map[string]any)
	if w.Code != 504 || info["outcome"] != "in_doubt" || info["error_user"] != "Es ist ein interner Fehler aufgetreten" ||
		info["secupay_error"] != "ProductInternalException" || info["secupay_http_status"] != 500.0 {
		t.Fatalf("%d %v", w.Code, info)
	}
}

func TestCapturedAnswer(t *testing.T) {
	s := &stubs{res: &capture.Result{TransactionID: "STX_A1", Status: "ok", TransID: "29008411", PaymentMethod: "cash",
		Replayed: true, Job: capture.JobResult{ID: "STX_A1.receipt", State: capture.JobQueued, Error: "paper_out"},
		MerchantJob: &capture.JobResult{ID: "STX_A1.merchant", State: capture.JobPrinted}}}
	for _, path := range []string{"/v1/transactions/STX_A1/cash", "/v1/transactions/STX_A1/reprint"} {
		w, out := serve(t, s.handler(), "POST", path, "")
		job, _ := out["job"].(map[string]any)
		mj, _ := out["merchant_job"].(map[string]any)
		if w.Code != 200 || out["outcome"] != "captured" || out["status"] != "ok" || out["replayed"] != true ||
			out["trans_id"] != "29008411" || out["payment_method"] != "cash" ||
			job["state"] != "queued" || job["error"] != "paper_out" || mj["state"] != "printed" {
			t.Fatalf("%s: %d %v", path, w.Code, out)
		}
	}
}

func TestJobPrinterAndHealthAnswers(t *testing.T) {
	created := time.Date(2026, 11, 25, 13, 19, 37, 0, time.UTC)
	s := &stubs{
		job: spool.Info{ID: "STX_A1.receipt", TransactionID: "STX_A1", Kind: "receipt", State: spool.StatePrinted,
			Attempts: 1, Bytes: 812, Created: created, Printed: created.Add(time.Second)},
		ps: spool.PrinterStatus{URI: "file:/x", Status: printer.Status{State: printer.StatePaperOut, Detail: "paper end",
			Completion: "in-order (GS r 1)", Model: "TM-T20II", ModelSource: "--model TM-T20II"},
			Checked: created, Queued: 2},
		queue: make([]spool.Info, 2),
		lines: capture.JobResult{ID: "pos-1", State: capture.JobPrinted},
	}
	h := s.handler()
	w, out := serve(t, h, "GET", "/v1/jobs/STX_A1.receipt", "")
	if w.Code != 200 || out["state"] != "printed" || out["bytes"] != 812.0 || out["created"] != "2026-11-25T13:19:37Z" ||
		out["printed"] != "2026-11-25T13:19:38Z" || out["kind"] != "receipt" {
		t.Fatalf("job: %d %v", w.Code, out)
	}
	w, out = serve(t, h, "GET", "/v1/printer", "")
	st, _ := out["status"].(map[string]any)
	if w.Code != 200 || out["uri"] != "file:/x" || st["state"] != "paper_out" || st["detail"] != "paper end" || out["queued"] != 2.0 ||
		st["completion"] != "in-order (GS r 1)" || st["model"] != "TM-T20II" || st["model_source"] != "--model TM-T20II" {
		t.Fatalf("printer: %d %v", w.Code, out)
	}
	w, out = serve(t, h, "GET", "/healthz", "")
	if w.Code != 200 || out["status"] != "ok" || out["queued"] != 2.0 {
		t.Fatalf("healthz: %d %v", w.Code, out)
	}
	w, out = serve(t, h, "POST", "/v1/receipts", `[{"type":"textline","value":{"text":"x"}}]`)
	if job, _ := out["job"].(map[string]any); w.Code != 200 || job["id"] != "pos-1" || job["state"] != "printed" {
		t.Fatalf("receipts: %d %v", w.Code, out)
	}

	s.jerr = spool.ErrNotFound
	if w, out = serve(t, h, "GET", "/v1/jobs/STX_A1.receipt", ""); w.Code != 404 || errCode(out) != "not_found" {
		t.Fatalf("unknown job: %d %v", w.Code, out)
	}
	s.lerr = fmt.Errorf("print lines: %w: disk full", capture.ErrStorage)
	if w, out = serve(t, h, "POST", "/v1/receipts", `[{"type":"textline","value":{"text":"x"}}]`); w.Code != 500 || errCode(out) != "storage" {
		t.Fatalf("receipts, disk full: %d %v", w.Code, out)
	}
	degraded := Handler(Config{Capture: s, Lines: s, Spool: s, Health: func() Health {
		return Health{Status: "degraded", Problems: []Problem{{Code: "storage", Message: "disk full"}}, UnfinishedCaptures: 1}
	}})
	if w, out = serve(t, degraded, "GET", "/healthz", ""); w.Code != 503 || out["status"] != "degraded" ||
		out["queued"] != 2.0 || out["unfinished_captures"] != 1.0 || out["problems"].([]any)[0].(map[string]any)["code"] != "storage" {
		t.Fatalf("degraded healthz: %d %v", w.Code, out)
	}
}
