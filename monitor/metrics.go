package monitor

import (
	"net/http"
	"runtime"
	"runtime/debug"

	"github.com/ecrd-pos/ecrd/internal/promtext"
	"github.com/ecrd-pos/ecrd/printer"
)

// printerStates are the values of ecrd_printer_state's state label: every one is exported
// (1 for the current state, 0 for the others) so that a query never meets a missing series.
var printerStates = []printer.State{printer.StateOnline, printer.StatePaperNearEnd, printer.StatePaperOut,
	printer.StateCoverOpen, printer.StateOffline, printer.StateUnknown}

// Latency buckets: a local fsync takes a millisecond or a few, a bad SD card hundreds; a
// secupay call a few hundred milliseconds, up to its 30 s timeout.
var (
	fsyncBuckets   = []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}
	secupayBuckets = []float64{.05, .1, .25, .5, 1, 2, 5, 10, 20, 30, 60}
)

func (m *Monitor) registerMetrics() {
	r := &promtext.Registry{}
	m.reg = r
	m.captures = r.NewCounterVec("ecrd_captures_total",
		"Capture requests by how they ended for the POS: captured, replayed, refused, in_doubt, not_sent, storage, rejected, error.",
		"outcome")
	for _, o := range outcomes {
		m.captures.With(o)
	}
	m.secupay = r.NewHistogramVec("ecrd_secupay_request_duration_seconds",
		"secupay API calls by op (capture, get) and the last HTTP status (none: no answer came back).",
		secupayBuckets, "op", "status")
	m.jobs = r.NewCounterVec("ecrd_print_jobs_total",
		"Print attempts by result: printed, or failed (the job stays queued and is tried again).", "result")
	m.jobs.With("printed")
	m.jobs.With("failed")
	m.fsync = r.NewHistogram("ecrd_fsync_duration_seconds", "fsync of journal and spool files and their directories.", fsyncBuckets)
	m.storageErrors = r.NewCounter("ecrd_storage_errors_total", "Writes to the state directory that failed.")
	revision := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	version := m.cfg.Version
	started := float64(m.started.UnixNano()) / 1e9
	r.Collect(func(w *promtext.Writer) {
		w.Gauge("ecrd_build_info", "Always 1; the labels say which ecrd build runs.", 1,
			"goversion", runtime.Version(), "revision", revision, "version", version)
		w.Gauge("ecrd_start_time_seconds", "When the daemon started, in seconds since the epoch.", started)
	})
	r.Collect(m.writeState)
	r.StandardMetrics()
}

// Handler serves the metrics in Prometheus' text format.
func (m *Monitor) Handler() http.Handler { return m.reg }

// writeState writes the daemon's state as read at scrape time, so the numbers are never stale.
func (m *Monitor) writeState(w *promtext.Writer) {
	s := m.refresh()
	oldest := 0.0
	if len(s.pending) > 0 {
		oldest = s.now.Sub(s.pending[0].Created).Seconds()
	}
	w.Gauge("ecrd_queue_jobs", "Print jobs waiting for the printer.", float64(len(s.pending)))
	w.Gauge("ecrd_queue_oldest_job_age_seconds", "Age of the oldest queued print job (0 when none).", oldest)
	for _, st := range printerStates {
		v := 0.0
		if st == s.printer.Status.State {
			v = 1
		}
		w.Gauge("ecrd_printer_state", "The printer's state as last seen: 1 for the current state, 0 for the others.", v, "state", string(st))
	}
	w.Gauge("ecrd_unfinished_captures", "Captures whose outcome is in doubt or whose receipt is not spooled yet.", float64(s.unfinished))
	var expires float64
	if m.cfg.TokenExpires != nil {
		if t := m.cfg.TokenExpires(); !t.IsZero() {
			expires = float64(t.UnixNano()) / 1e9
		}
	}
	m.mu.Lock()
	since := float64(m.printerSince.UnixNano()) / 1e9
	degraded := 0.0
	if len(m.problemsLocked(s)) > 0 {
		degraded = 1
	}
	var ok float64
	if m.secupayOK != nil {
		ok = float64(m.secupayOK.At.UnixNano()) / 1e9
	}
	m.mu.Unlock()
	w.Gauge("ecrd_printer_state_since_timestamp_seconds", "When the printer entered its current state.", since)
	w.Gauge("ecrd_degraded", "1 while /healthz answers degraded, else 0.", degraded)
	if ok != 0 {
		w.Gauge("ecrd_secupay_last_success_timestamp_seconds", "When a secupay call last succeeded.", ok)
	}
	if expires != 0 {
		w.Gauge("ecrd_secupay_token_expiry_timestamp_seconds", "When the OAuth access token runs out (absent for a static token).", expires)
	}
}
