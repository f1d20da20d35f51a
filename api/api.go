// Package api is ecrd's local HTTP API, served over a Unix socket to the POS app on the till
// (docs/api.md, docs/openapi.yaml). It validates requests, calls the capture service and the
// spool through the small interfaces it declares (Captures, LinePrinter, Spool; JobLister and
// JobReprinter, which it finds on the same two), and owns the JSON the POS reads: its wire
// types (wire.go, status.go) are mapped once from the other packages' types, and every error
// onto one HTTP status, code and outcome. It must never talk to secupay or to a printer
// itself, and never answer "captured" for a payment the journal does not hold.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/ecrd-pos/ecrd/capture"
	"github.com/ecrd-pos/ecrd/monitor"
	"github.com/ecrd-pos/ecrd/receipt"
	"github.com/ecrd-pos/ecrd/spool"
)

// Body size limits. A capture needs no body at all; receipt lines from the POS are small,
// but a long receipt of several thousand lines must still fit.
const (
	MaxCaptureBody  = 64 << 10
	MaxReceiptsBody = 4 << 20
	// MaxReceiptLines bounds one receipt from the POS: 4 MiB of "{}" would otherwise decode
	// into a million lines and hundreds of megabytes.
	MaxReceiptLines = 10000
	// receiptsAtOnce bounds the POS receipts decoded and rendered at once, so that the
	// daemon's memory stays within a small multiple of one receipt's (a till may have
	// 1 GiB, and the OOM killer would take the daemon with the journal in its hands).
	receiptsAtOnce = 2
	// previewsAtOnce bounds the pictures drawn at once. Each takes the same memory whatever
	// the receipt's height: its job's bytes (5.6 MB for the tallest receipt the POS may send)
	// and about 1 MiB of strip and PNG encoder. But that receipt takes a minute of CPU, so
	// previews have slots of their own and never hold up the POS's receipts.
	previewsAtOnce = 2
	// DefaultJobsLimit and MaxJobsLimit bound GET /v1/jobs?limit=N: the newest 50 jobs unless
	// told, at most 1000 (a technician's screen, not an export: sqlite3 reads the rest).
	DefaultJobsLimit = 50
	MaxJobsLimit     = 1000
)

// Captures is what the API asks of the capture service (capture.Service).
type Captures interface {
	Capture(ctx context.Context, id string) (*capture.Result, error)
	Reprint(ctx context.Context, id string) (*capture.Result, error)
}

// LinePrinter prints receipt lines the POS sends itself, with no secupay involved.
type LinePrinter interface {
	PrintLines(ctx context.Context, lines []receipt.Line) (capture.JobResult, error)
}

// Spool is what the API reads of the print spool (spool.Spool). Status may ask the printer.
type Spool interface {
	Job(id string) (spool.Info, error)
	Status(ctx context.Context) spool.PrinterStatus
	Pending() []spool.Info
}

// JobLister lists the newest print jobs the spool remembers, queued or printed, newest first
// (spool.Spool.Recent), for GET /v1/jobs.
type JobLister interface {
	Recent(n int) ([]spool.Info, error)
}

// JobReprinter prints a job's bytes once more as a new job, never with a drawer pulse
// (capture.Service.ReprintJob), for POST /v1/jobs/{id}/reprint.
type JobReprinter interface {
	ReprintJob(ctx context.Context, jobID string) (*capture.Result, error)
}

// Config wires the API. Capture, Lines and Spool are required.
type Config struct {
	Capture Captures
	Lines   LinePrinter
	Spool   Spool
	// Jobs answers GET /v1/jobs and Reprinter POST /v1/jobs/{id}/reprint. Nil: Spool and
	// Capture themselves, when they have the method (the daemon's spool.Spool and
	// capture.Service do); else that path answers 404.
	Jobs      JobLister
	Reprinter JobReprinter
	// CaptureTimeout bounds one capture, including the wait for the receipt to print. The
	// capture does not end when the POS hangs up: a half-done capture is worse than a late one.
	CaptureTimeout time.Duration
	// Health judges the daemon for GET /healthz (nil: always ok); the API adds the queue.
	// A Status other than "ok" answers 503, for a monitor to act on.
	Health func() Health
	// ObserveCapture, if set, is told every capture request's outcome as the POS hears it
	// (res set, or err as the capture service returned it), for metrics.
	ObserveCapture func(id string, res *capture.Result, err error)
	// Preview writes a job's picture to w as the printer will print it, as PNG, for
	// GET /v1/jobs/{id}/preview.png (nil: 404), streaming it (receipt.WriteJobPNG) so that
	// its memory does not grow with the receipt. An error before its first write is answered:
	// errors.Is(err, spool.ErrNotFound) 404, any other 500. After the first write the status
	// is sent, so an error cuts the connection: a client never takes half a PNG for a whole.
	Preview func(w io.Writer, jobID string) error
	// Status answers GET /v1/status (nil: 404). Metrics answers GET /metrics (nil: 404).
	Status  func() monitor.Status
	Metrics http.Handler
	Logger  *zap.Logger
}

// Handler returns the API's HTTP handler.
func Handler(cfg Config) http.Handler {
	if cfg.CaptureTimeout <= 0 {
		cfg.CaptureTimeout = 90 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Jobs == nil {
		cfg.Jobs, _ = cfg.Spool.(JobLister)
	}
	if cfg.Reprinter == nil {
		cfg.Reprinter, _ = cfg.Capture.(JobReprinter)
	}
	h := &handler{cfg: cfg, log: cfg.Logger, renderSlots: make(chan struct{}, receiptsAtOnce),
		previewSlots: make(chan struct{}, previewsAtOnce)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/transactions/{id}/cash", h.capture)
	mux.HandleFunc("POST /v1/transactions/{id}/reprint", h.reprint)
	mux.HandleFunc("POST /v1/receipts", h.receipts)
	mux.HandleFunc("GET /v1/jobs/{id}", h.job)
	if cfg.Jobs != nil {
		mux.HandleFunc("GET /v1/jobs", h.jobs)
	}
	if cfg.Reprinter != nil {
		mux.HandleFunc("POST /v1/jobs/{id}/reprint", h.reprintJob)
	}
	if cfg.Preview != nil {
		mux.HandleFunc("GET /v1/jobs/{id}/preview.png", h.preview)
	}
	mux.HandleFunc("GET /v1/printer", h.printer)
	mux.HandleFunc("GET /healthz", h.health)
	if cfg.Status != nil {
		mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
			st := statusOf(cfg.Status())
			if cfg.Health != nil {
				st.DeviceAuthorization = cfg.Health().DeviceAuthorization
			}
			writeJSON(w, http.StatusOK, st)
		})
	}
	if cfg.Metrics != nil {
		mux.Handle("GET /metrics", cfg.Metrics)
	}
	return h.traceRefusals(h.recover(jsonMuxErrors(mux)))
}

// jsonMuxErrors answers the mux's own 404 and 405 in the API's JSON error shape, keeping
// the mux's status and Allow header, so a POS always gets JSON it can parse.
func jsonMuxErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The mux answers a path that is not canonical ("/a/../b", "//a", "/a/./b") with a
		// redirect to the cleaned one. That is not JSON, and a POS client following it would
		// act on something it did not name: .../STX_A/../STX_B/cash would capture STX_B. Such
		// a path names nothing here. (Cleaned as the mux does, on the escaped path, so that
		// %2F stays inside a segment and fails the id check instead.)
		if p := r.URL.EscapedPath(); r.Method != http.MethodConnect {
			clean := path.Clean("/" + p)
			if strings.HasSuffix(p, "/") && clean != "/" {
				clean += "/"
			}
			if clean != p {
				writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("%s %q: not a canonical path", r.Method, p), nil)
				return
			}
		}
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		probe := &statusProbe{header: http.Header{}}
		mux.ServeHTTP(probe, r)
		if allow := probe.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		code := "not_found"
		if probe.status == http.StatusMethodNotAllowed {
			code = "method_not_allowed"
		}
		writeError(w, probe.status, code, fmt.Sprintf("%s %s: %s", r.Method, r.URL.Path,
			strings.ToLower(http.StatusText(probe.status))), nil)
	})
}

// statusProbe records the status and headers the mux would send, discarding its body.
type statusProbe struct {
	header http.Header
	status int
}

func (p *statusProbe) Header() http.Header         { return p.header }
func (p *statusProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *statusProbe) WriteHeader(status int)      { p.status = status }

type handler struct {
	cfg          Config
	log          *zap.Logger
	renderSlots  chan struct{} // receiptsAtOnce
	previewSlots chan struct{} // previewsAtOnce
}

// recover turns a panic in a handler into a 500 answer and a log line, so a bug triggered
// by one request cannot take the till's daemon down.
// traceRefusals logs each request answered with a 4xx at debug, so that a POS developer who
// turns --log-level to debug sees why the daemon refused a request; at info a till's journal
// stays quiet (a POS polling a bad path would fill it).
func (h *handler) traceRefusals(next http.Handler) http.Handler {
	if !h.log.Core().Enabled(zap.DebugLevel) {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status >= 400 && rec.status < 500 {
			h.log.Debug("api: request refused", zap.String("method", r.Method), zap.String("path", r.URL.EscapedPath()),
				zap.Int("status", rec.status))
		}
	})
}

// statusRecorder notes the status a handler answers; Unwrap lets http.ResponseController
// reach the connection (the preview flushes as it draws).
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (h *handler) recover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				h.log.Error("api: panic", zap.Any("panic", v), zap.String("path", r.URL.Path))
				writeError(w, http.StatusInternalServerError, "internal", "internal error", nil)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string, extra func(*ErrorInfo)) {
	info := ErrorInfo{Code: code, Message: msg}
	if extra != nil {
		extra(&info)
	}
	writeJSON(w, status, ErrorBody{Error: info})
}

// writeCaptureError maps the capture service's errors onto the contract's statuses, and
// says on each what is true of the money.
func (h *handler) writeCaptureError(w http.ResponseWriter, id string, err error) {
	outcome := func(o string) func(*ErrorInfo) {
		return func(i *ErrorInfo) { i.TransactionID, i.Outcome = id, o }
	}
	var refused *capture.RefusedError
	var doubt *capture.InDoubtError
	switch {
	case errors.Is(err, capture.ErrInvalidID):
		writeError(w, http.StatusBadRequest, "invalid_id",
			"transaction id must be STX_ followed by 1 to 64 letters or digits", func(i *ErrorInfo) { i.Outcome = OutcomeNotCaptured })
	case errors.Is(err, capture.ErrInProgress):
		writeError(w, http.StatusConflict, "in_progress", err.Error(), outcome(OutcomeInDoubt))
	case errors.Is(err, capture.ErrCapturedNotRecorded):
		writeError(w, http.StatusInternalServerError, "captured_not_recorded", err.Error(), outcome(OutcomeCaptured))
	case errors.As(err, &refused):
		writeError(w, http.StatusBadGateway, "secupay_refused", err.Error(), func(i *ErrorInfo) {
			outcome(OutcomeNotCaptured)(i)
			refusalInfo(i, refused.Refusal)
		})
	case errors.Is(err, capture.ErrUnreachable):
		writeError(w, http.StatusBadGateway, "secupay_unreachable", err.Error(), outcome(OutcomeNotCaptured))
	case errors.Is(err, capture.ErrStorage):
		o := OutcomeNotCaptured // the intent could not be journaled, so nothing was sent
		if errors.As(err, &doubt) {
			o = OutcomeInDoubt // the journal could not be read
		}
		writeError(w, http.StatusInternalServerError, "storage", err.Error(), outcome(o))
	case errors.As(err, &doubt):
		code := "in_doubt"
		if doubt.NoAnswer {
			code = "secupay_timeout" // this request's own start/cash got no usable answer
		}
		retry := int((doubt.RetryAfter + time.Second - 1) / time.Second)
		if retry > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(retry))
		}
		writeError(w, http.StatusGatewayTimeout, code, err.Error(), func(i *ErrorInfo) {
			if doubt.Secupay != nil {
				refusalInfo(i, *doubt.Secupay) // secupay's own words, error_user for the cashier
			}
			outcome(OutcomeInDoubt)(i)
			i.RetryAfter = retry
		})
	case errors.Is(err, capture.ErrNotCaptured):
		writeError(w, http.StatusNotFound, "not_captured", err.Error(), outcome(OutcomeNotCaptured))
	case errors.Is(err, capture.ErrReceiptPruned):
		writeError(w, http.StatusGone, "receipt_pruned", err.Error(), outcome(OutcomeCaptured))
	default:
		h.log.Error("api: unexpected error", zap.String("transaction_id", id), zap.Error(err))
		writeError(w, http.StatusInternalServerError, "internal", err.Error(), outcome(OutcomeInDoubt))
	}
}

// readBody reads at most limit bytes; it answers 413 itself when the body is larger.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, "body_too_large",
			fmt.Sprintf("request body larger than %d bytes", limit), nil)
		return nil, false
	case err != nil:
		writeError(w, http.StatusBadRequest, "bad_request", "reading request body: "+err.Error(), nil)
		return nil, false
	}
	return b, true
}

// detached gives a capture its own deadline, independent of the POS connection.
func (h *handler) detached(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(r.Context()), h.cfg.CaptureTimeout)
}

func (h *handler) capture(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	body, ok := readBody(w, r, MaxCaptureBody)
	if !ok {
		return
	}
	// No options are defined yet; a body, if sent, must at least be a JSON object so that
	// a POS sending garbage (or null) hears about it instead of it being ignored silently.
	if b := bytes.TrimSpace(body); len(b) > 0 {
		var obj map[string]json.RawMessage
		err := json.Unmarshal(b, &obj)
		if err == nil && b[0] != '{' {
			err = errors.New("not an object")
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", "request body must be empty or a JSON object: "+err.Error(),
				func(i *ErrorInfo) { i.Outcome = OutcomeNotCaptured })
			return
		}
	}
	ctx, cancel := h.detached(r)
	defer cancel()
	res, err := h.cfg.Capture.Capture(ctx, id)
	if h.cfg.ObserveCapture != nil {
		h.cfg.ObserveCapture(id, res, err)
	}
	if err != nil {
		h.writeCaptureError(w, id, err)
		return
	}
	writeJSON(w, http.StatusOK, resultOf(res))
}

func (h *handler) reprint(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, ok := readBody(w, r, MaxCaptureBody); !ok {
		return
	}
	ctx, cancel := h.detached(r)
	defer cancel()
	res, err := h.cfg.Capture.Reprint(ctx, id)
	if err != nil {
		h.writeCaptureError(w, id, err)
		return
	}
	writeJSON(w, http.StatusOK, resultOf(res))
}

func (h *handler) receipts(w http.ResponseWriter, r *http.Request) {
	select {
	case h.renderSlots <- struct{}{}:
		defer func() { <-h.renderSlots }()
	case <-r.Context().Done():
		writeError(w, http.StatusServiceUnavailable, "busy", "other receipts are being rendered; try again", nil)
		return
	}
	body, ok := readBody(w, r, MaxReceiptsBody)
	if !ok {
		return
	}
	lines, err := receipt.DecodeLimited(body, MaxReceiptLines)
	if errors.Is(err, receipt.ErrTooManyLines) {
		writeError(w, http.StatusRequestEntityTooLarge, "too_many_lines",
			fmt.Sprintf("a receipt may have at most %d lines", MaxReceiptLines), nil)
		return
	}
	body = nil // the lines are decoded; let the collector have the body while rendering
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_receipt", err.Error(), nil)
		return
	}
	ctx, cancel := h.detached(r)
	defer cancel()
	job, err := h.cfg.Lines.PrintLines(ctx, lines)
	if err != nil {
		if errors.Is(err, capture.ErrStorage) {
			writeError(w, http.StatusInternalServerError, "storage", err.Error(), nil)
			return
		}
		writeError(w, http.StatusBadRequest, "bad_receipt", err.Error(), nil)
		return
	}
	writeJSON(w, http.StatusOK, receiptsAnswer{Job: jobResultOf(job)})
}

func (h *handler) printer(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, printerStatusOf(h.cfg.Spool.Status(r.Context())))
}

func (h *handler) health(w http.ResponseWriter, r *http.Request) {
	out := Health{Status: "ok", Problems: []Problem{}}
	if h.cfg.Health != nil {
		out = h.cfg.Health()
	}
	if out.Problems == nil {
		out.Problems = []Problem{}
	}
	out.Queued = len(h.cfg.Spool.Pending())
	code := http.StatusOK
	if out.Status != "ok" {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, out)
}

// Listen creates the Unix socket at path with mode 0660 (the POS app's user shares the
// socket's group). A stale socket left by a killed daemon is removed first; any other kind
// of file at path is an error rather than something to delete.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("api: %s exists and is not a socket", path)
		}
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("api: %s: another daemon is listening", path)
		}
		os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	// net.Listen creates the socket with the umask's mode; set it explicitly.
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("api: %w", err)
	}
	return ln, nil
}

// NewServer returns an http.Server for the API with timeouts suited to a local socket.
// log may be nil.
func NewServer(h http.Handler, log *zap.Logger) *http.Server {
	if log == nil {
		log = zap.NewNop()
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          zap.NewStdLog(log),
	}
}
