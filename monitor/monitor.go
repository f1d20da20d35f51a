// Package monitor watches a running ecrd for the people who run a fleet of tills: it keeps
// the Prometheus metrics (GET /metrics), the document behind `ecrd status --json` and
// GET /v1/status, the verdict of GET /healthz, and the one-line summary systemd shows.
//
// It reads the daemon's parts through small interfaces and hears events through hooks
// (ObserveCapture, ObserveSecupay, ObserveJob, ObserveStorage). It must never change what
// the daemon does — no printing, no secupay calls, no writes to the state directory — and
// its hooks must never block the paths that call them: they take one short lock and never
// call back into the daemon's parts while holding it.
package monitor

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/ecrd-pos/ecrd/capture"
	"github.com/ecrd-pos/ecrd/printer"
	"github.com/ecrd-pos/ecrd/spool"
)

// Spool is what the monitor reads of the print spool. None of it asks the printer: a
// status page must not wait behind a receipt being printed.
type Spool interface {
	Pending() []spool.Info
	LastStatus() spool.PrinterStatus
	PrintedSince(t time.Time) int
}

// Config names the parts the monitor reads and the limits of "healthy".
type Config struct {
	Version string
	// Revision is ecrd_build_info's revision label; "" takes the commit from the binary's
	// build info (vcs.revision), "unknown" when it has none.
	Revision string
	// SecupayEnvironment is the secupay system the till captures with, as
	// secupay.Environment says from the base URL: live, testing, local or other. It is the
	// ecrd_secupay_environment_info metric and Status.SecupayEnvironment; "" exports nothing.
	SecupayEnvironment string
	Spool              Spool
	// Unfinished counts the captures whose outcome or receipt is still open
	// (capture.Service.Unfinished).
	Unfinished func() int
	// Alive reports a print worker stuck past its deadline (spool.Spool.Alive); nil: not checked.
	Alive func(now time.Time) error
	// TokenExpires is when the secupay access token runs out; nil when the token source
	// cannot know (a static token file).
	TokenExpires func() time.Time
	// Model is the printer profile in use (a key of package profile); nil or "" when unknown.
	Model func() string
	// ModelSource says why that profile: "--model TM-T88V", "Device ID …", "generic: …".
	ModelSource func() string
	// Characters reads the renderer's counts of characters printed otherwise than from a code
	// page (receipt.Counters); nil exports nothing.
	Characters *CharacterCounts
	// PrinterGrace is how long the printer may be not ready (paper out, cover open, offline)
	// before /healthz says degraded (default 5 min: a cashier changing the roll is no alarm).
	PrinterGrace time.Duration
	// UnfinishedLimit is how long captures may stay unfinished (outcome in doubt, receipt not
	// spooled) before /healthz says degraded (default 10 min).
	UnfinishedLimit time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger gets one line whenever the printer's state changes (default: none).
	Logger *zap.Logger
}

// Capture outcomes as counted in ecrd_captures_total: how every capture request ended for
// the POS. Replayed answers are counted apart so that "captured" counts payments.
const (
	OutcomeCaptured = "captured" // captured now; receipt spooled
	OutcomeReplayed = "replayed" // answered from the journal: captured earlier
	OutcomeRefused  = "refused"  // secupay refused: nothing captured
	OutcomeInDoubt  = "in_doubt" // no usable answer: resolved later by reading the transaction
	OutcomeNotSent  = "not_sent" // secupay unreachable: nothing was sent
	OutcomeStorage  = "storage"  // the state directory failed (see the storage problem)
	OutcomeRejected = "rejected" // bad id, or a capture of that id already running
	OutcomeError    = "error"    // anything else: a bug to report
)

var outcomes = []string{OutcomeCaptured, OutcomeReplayed, OutcomeRefused, OutcomeInDoubt,
	OutcomeNotSent, OutcomeStorage, OutcomeRejected, OutcomeError}

// Outcome puts a capture's answer in exactly one class.
func Outcome(res *capture.Result, err error) string {
	var refused *capture.RefusedError
	switch {
	case err == nil && res != nil && res.Replayed:
		return OutcomeReplayed
	case err == nil, errors.Is(err, capture.ErrCapturedNotRecorded):
		return OutcomeCaptured // captured at secupay, even when the journal could not keep it
	case errors.As(err, &refused):
		return OutcomeRefused
	case errors.Is(err, capture.ErrOutcomeUnknown):
		return OutcomeInDoubt
	case errors.Is(err, capture.ErrUnreachable):
		return OutcomeNotSent
	case errors.Is(err, capture.ErrStorage):
		return OutcomeStorage
	case errors.Is(err, capture.ErrInvalidID), errors.Is(err, capture.ErrInProgress):
		return OutcomeRejected
	}
	return OutcomeError
}

// Monitor is one daemon's metrics, status and health. Create it with New.
type Monitor struct {
	cfg     Config
	log     *zap.Logger
	started time.Time
	reg     *prometheus.Registry
	handler http.Handler

	captures      *prometheus.CounterVec
	secupay       *prometheus.HistogramVec
	jobs          *prometheus.CounterVec
	fsync         prometheus.Histogram
	storageErrors prometheus.Counter

	refreshMu sync.Mutex // serialises refresh
	mu        sync.Mutex
	// The printer's state as last seen and since when; unfinished captures since when
	// (zero while there are none). Kept by refresh.
	printerState    printer.State
	printerSince    time.Time
	unfinishedSince time.Time
	secupayOK       *Event
	secupayErr      *Event
	storageErr      *Event
	storageOK       time.Time
}

// New returns a Monitor reading cfg's parts.
func New(cfg Config) *Monitor {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PrinterGrace <= 0 {
		cfg.PrinterGrace = 5 * time.Minute
	}
	if cfg.UnfinishedLimit <= 0 {
		cfg.UnfinishedLimit = 10 * time.Minute
	}
	if cfg.Unfinished == nil {
		cfg.Unfinished = func() int { return 0 }
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	m := &Monitor{cfg: cfg, log: cfg.Logger, started: cfg.Now()}
	m.printerSince = m.started
	m.registerMetrics()
	return m
}

// ObserveCapture counts a capture request's outcome (api.Config.ObserveCapture).
func (m *Monitor) ObserveCapture(id string, res *capture.Result, err error) {
	o := Outcome(res, err)
	m.captures.WithLabelValues(o).Inc()
	if errors.Is(err, capture.ErrStorage) {
		m.mu.Lock()
		m.storageErr = &Event{At: m.cfg.Now().UTC(), Op: "capture", Error: err.Error()}
		m.mu.Unlock()
	}
}

// ObserveSecupay records one secupay call (secupay.Client.Observe).
func (m *Monitor) ObserveSecupay(op string, httpStatus int, d time.Duration, err error) {
	status := "none" // no HTTP answer came back
	if httpStatus != 0 {
		status = strconv.Itoa(httpStatus)
	}
	m.secupay.WithLabelValues(op, status).Observe(d.Seconds())
	ev := &Event{At: m.cfg.Now().UTC(), Op: op, HTTPStatus: httpStatus}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err == nil {
		m.secupayOK = ev
		return
	}
	ev.Error = err.Error()
	m.secupayErr = ev
}

// ObserveJob counts a print attempt (spool.Options.Observe).
func (m *Monitor) ObserveJob(job spool.Info, err error) {
	if err != nil {
		m.jobs.WithLabelValues("failed").Inc()
		return
	}
	m.jobs.WithLabelValues("printed").Inc()
}

// ObserveStorage records an fsync or a failed write of the state directory
// (atomicfile.Observe).
func (m *Monitor) ObserveStorage(op string, d time.Duration, err error) {
	if op == "fsync" {
		m.fsync.Observe(d.Seconds())
	}
	now := m.cfg.Now().UTC()
	if err != nil {
		m.storageErrors.Inc()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case err != nil:
		m.storageErr = &Event{At: now, Op: op, Error: err.Error()}
	case op == "fsync":
		m.storageOK = now
	}
}

// snapshot is what the daemon's parts say right now.
type snapshot struct {
	now        time.Time
	printer    spool.PrinterStatus
	pending    []spool.Info
	unfinished int
	alive      error
}

// refresh reads the parts (without holding m.mu: the spool calls the storage hook under
// its own lock) and then updates the "since when" bookkeeping.
func (m *Monitor) refresh() snapshot {
	// One refresh at a time, from reading the parts to logging a change: one that read the
	// spool before another but came to the lock after it would take the printer back to the
	// older state and log a change that never happened. The hooks never take refreshMu.
	m.refreshMu.Lock()
	defer m.refreshMu.Unlock()
	s := snapshot{now: m.cfg.Now(), printer: m.cfg.Spool.LastStatus(), pending: m.cfg.Spool.Pending(),
		unfinished: m.cfg.Unfinished()}
	if m.cfg.Alive != nil {
		s.alive = m.cfg.Alive(s.now)
	}
	m.mu.Lock()
	var change *printerChange
	if st := s.printer.Status.State; st != m.printerState {
		if m.printerState != "" { // the first state seen is no change
			change = &printerChange{from: m.printerState, fromSince: m.printerSince}
		}
		m.printerState = st
		m.printerSince = s.printer.Checked
		if m.printerSince.IsZero() || m.printerSince.Before(m.started) {
			m.printerSince = s.now
		}
	}
	switch {
	case s.unfinished == 0:
		m.unfinishedSince = time.Time{}
	case m.unfinishedSince.IsZero():
		m.unfinishedSince = s.now
	}
	since := m.printerSince
	m.mu.Unlock()
	if change != nil {
		// Logged outside the lock: the hooks on the capture path take it.
		m.logPrinterChange(s, *change, since)
	}
	return s
}

// printerChange is the state the printer left, and since when it had been in it.
type printerChange struct {
	from      printer.State
	fromSince time.Time
}

// logPrinterChange writes one line for a change of the printer's state: at warn when the
// printer can no longer print (receipts wait in the spool), else at info; with the state it
// left and for how long, the printer's URI and what waits for it. The change is seen by the
// refresh after it (every few seconds, and at each scrape or status request); since is when
// the print worker saw the new state.
func (m *Monitor) logPrinterChange(s snapshot, c printerChange, since time.Time) {
	p := s.printer
	fields := []zap.Field{zap.String("printer", p.URI), zap.String("state", string(p.Status.State)),
		zap.String("previous_state", string(c.from)), zap.Duration("previous_for", since.Sub(c.fromSince).Round(time.Second)),
		zap.Time("since", since.UTC()), zap.Int("queued", len(s.pending))}
	if p.Status.Detail != "" {
		fields = append(fields, zap.String("detail", p.Status.Detail))
	}
	if p.Error != "" {
		fields = append(fields, zap.String("error", p.Error))
	}
	if len(s.pending) > 0 {
		oldest := s.pending[0]
		fields = append(fields, zap.String("oldest_job", oldest.ID),
			zap.Duration("oldest_job_age", s.now.Sub(oldest.Created).Round(time.Second)))
	}
	if !p.Status.Ready() {
		m.log.Warn("printer state changed: not ready, receipts wait", fields...)
		return
	}
	m.log.Info("printer state changed", fields...)
}

// Refresh brings the "since when" bookkeeping up to date. The daemon calls it every few
// seconds so that a state that came and went between two scrapes still has its time.
func (m *Monitor) Refresh() { m.refresh() }

// Problem is one reason the daemon is degraded.
type Problem struct {
	Code    string // printer_not_ready, captures_unfinished, storage, print_worker_stuck
	Message string
	Since   time.Time
}

// problems judges a snapshot; m.mu must be held.
func (m *Monitor) problemsLocked(s snapshot) []Problem {
	out := []Problem{}
	ps := s.printer.Status
	if !ps.Ready() && s.now.Sub(m.printerSince) > m.cfg.PrinterGrace {
		msg := fmt.Sprintf("printer %s for %s", ps.State, s.now.Sub(m.printerSince).Round(time.Second))
		if ps.Detail != "" {
			msg += " (" + ps.Detail + ")"
		}
		out = append(out, Problem{Code: "printer_not_ready", Message: msg + fmt.Sprintf("; %d job(s) waiting", len(s.pending)),
			Since: m.printerSince.UTC()})
	}
	if s.unfinished > 0 && s.now.Sub(m.unfinishedSince) > m.cfg.UnfinishedLimit {
		out = append(out, Problem{Code: "captures_unfinished",
			Message: fmt.Sprintf("%d capture(s) with their outcome in doubt or receipt not spooled for %s", s.unfinished,
				s.now.Sub(m.unfinishedSince).Round(time.Second)),
			Since: m.unfinishedSince.UTC()})
	}
	if e := m.storageErr; e != nil && !m.storageOK.After(e.At) {
		out = append(out, Problem{Code: "storage", Message: "state directory: " + e.Error, Since: e.At})
	}
	if s.alive != nil {
		out = append(out, Problem{Code: "print_worker_stuck", Message: s.alive.Error()})
	}
	return out
}

// Health is GET /healthz's verdict: Status is "ok" or "degraded", Problems says why (empty
// when ok). The API answers 503 when degraded.
type Health struct {
	Status   string
	Problems []Problem
}

// Health judges the daemon now.
func (m *Monitor) Health() Health {
	s := m.refresh()
	m.mu.Lock()
	probs := m.problemsLocked(s)
	m.mu.Unlock()
	status := "ok"
	if len(probs) > 0 {
		status = "degraded"
	}
	return Health{Status: status, Problems: probs}
}

// StatusLine is the one line `systemctl status ecrd` shows:
// "printer online, 0 queued, 1,234 receipts today".
func (m *Monitor) StatusLine() string {
	s := m.refresh()
	today := m.cfg.Spool.PrintedSince(startOfDay(s.now))
	var b strings.Builder
	fmt.Fprintf(&b, "printer %s, %d queued, %s receipt", strings.ReplaceAll(string(s.printer.Status.State), "_", " "),
		len(s.pending), thousands(today))
	if today != 1 {
		b.WriteString("s")
	}
	b.WriteString(" today")
	if s.unfinished > 0 {
		fmt.Fprintf(&b, ", %d capture(s) unfinished", s.unfinished)
	}
	m.mu.Lock()
	probs := m.problemsLocked(s)
	m.mu.Unlock()
	if len(probs) > 0 {
		codes := make([]string, len(probs))
		for i, p := range probs {
			codes[i] = p.Code
		}
		b.WriteString("; degraded: " + strings.Join(codes, ", "))
	}
	return b.String()
}

func startOfDay(t time.Time) time.Time {
	y, mo, d := t.Date()
	return time.Date(y, mo, d, 0, 0, 0, 0, t.Location())
}

// thousands writes n with a comma between groups of three digits: 1,234.
func thousands(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// CharacterCounts reads the renderer's counters (receipt.Counters) without monitor importing
// the renderer.
type CharacterCounts struct {
	Pictured, Substituted, Missing func() uint64
}
