package monitor

import (
	"net/http"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

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
	m.reg = prometheus.NewRegistry()
	m.captures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ecrd_captures_total",
		Help: "Capture requests by how they ended for the POS: captured, replayed, refused, in_doubt, not_sent, storage, rejected, error.",
	}, []string{"outcome"})
	for _, o := range outcomes {
		m.captures.WithLabelValues(o)
	}
	m.secupay = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ecrd_secupay_request_duration_seconds",
		Help:    "secupay API calls by op (capture, get) and the last HTTP status (none: no answer came back).",
		Buckets: secupayBuckets,
	}, []string{"op", "status"})
	m.jobs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ecrd_print_jobs_total",
		Help: "Print attempts by result: printed, or failed (the job stays queued and is tried again).",
	}, []string{"result"})
	m.jobs.WithLabelValues("printed")
	m.jobs.WithLabelValues("failed")
	m.fsync = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "ecrd_fsync_duration_seconds",
		Help:    "fsync of journal and spool files and their directories.",
		Buckets: fsyncBuckets,
	})
	m.storageErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ecrd_storage_errors_total",
		Help: "Writes to the state directory that failed.",
	})
	revision := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "ecrd_build_info",
		Help:        "Always 1; the labels say which ecrd build runs.",
		ConstLabels: prometheus.Labels{"version": m.cfg.Version, "revision": revision, "goversion": runtime.Version()},
	})
	build.Set(1)
	start := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ecrd_start_time_seconds",
		Help: "When the daemon started, in seconds since the epoch.",
	})
	start.Set(float64(m.started.UnixNano()) / 1e9)
	m.reg.MustRegister(m.captures, m.secupay, m.jobs, m.fsync, m.storageErrors, build, start,
		&stateCollector{m: m},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}

// Handler serves the metrics in Prometheus' text format.
func (m *Monitor) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// stateCollector reads the daemon's state at scrape time, so the numbers are never stale.
type stateCollector struct{ m *Monitor }

var (
	descQueue        = prometheus.NewDesc("ecrd_queue_jobs", "Print jobs waiting for the printer.", nil, nil)
	descOldest       = prometheus.NewDesc("ecrd_queue_oldest_job_age_seconds", "Age of the oldest queued print job (0 when none).", nil, nil)
	descPrinter      = prometheus.NewDesc("ecrd_printer_state", "The printer's state as last seen: 1 for the current state, 0 for the others.", []string{"state"}, nil)
	descPrinterSince = prometheus.NewDesc("ecrd_printer_state_since_timestamp_seconds", "When the printer entered its current state.", nil, nil)
	descUnfinished   = prometheus.NewDesc("ecrd_unfinished_captures", "Captures whose outcome is in doubt or whose receipt is not spooled yet.", nil, nil)
	descDegraded     = prometheus.NewDesc("ecrd_degraded", "1 while /healthz answers degraded, else 0.", nil, nil)
	descSecupayOK    = prometheus.NewDesc("ecrd_secupay_last_success_timestamp_seconds", "When a secupay call last succeeded.", nil, nil)
	descTokenExpires = prometheus.NewDesc("ecrd_secupay_token_expiry_timestamp_seconds", "When the OAuth access token runs out (absent for a static token).", nil, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descQueue, descOldest, descPrinter, descPrinterSince, descUnfinished,
		descDegraded, descSecupayOK, descTokenExpires} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.m
	s := m.refresh()
	oldest := 0.0
	if len(s.pending) > 0 {
		oldest = s.now.Sub(s.pending[0].Created).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(descQueue, prometheus.GaugeValue, float64(len(s.pending)))
	ch <- prometheus.MustNewConstMetric(descOldest, prometheus.GaugeValue, oldest)
	for _, st := range printerStates {
		v := 0.0
		if st == s.printer.Status.State {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descPrinter, prometheus.GaugeValue, v, string(st))
	}
	ch <- prometheus.MustNewConstMetric(descUnfinished, prometheus.GaugeValue, float64(s.unfinished))
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
	ch <- prometheus.MustNewConstMetric(descPrinterSince, prometheus.GaugeValue, since)
	ch <- prometheus.MustNewConstMetric(descDegraded, prometheus.GaugeValue, degraded)
	if ok != 0 {
		ch <- prometheus.MustNewConstMetric(descSecupayOK, prometheus.GaugeValue, ok)
	}
	if expires != 0 {
		ch <- prometheus.MustNewConstMetric(descTokenExpires, prometheus.GaugeValue, expires)
	}
}
