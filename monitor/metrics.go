package monitor

import (
	"net/http"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

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

// registerMetrics builds the daemon's own registry (never Prometheus' global one: two
// daemons in one test process must not share counters) and the handler that serves it.
// Every family's name, type and labels are what operators' rules and dashboards use
// (testdata/metrics.golden, deploy/prometheus/ecrd-alerts.yml): change them with those.
func (m *Monitor) registerMetrics() {
	r := prometheus.NewRegistry()
	m.captures = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ecrd_captures_total",
		Help: "Capture requests by how they ended for the POS: captured, replayed, refused, in_doubt, not_sent, storage, rejected, error."},
		[]string{"outcome"})
	for _, o := range outcomes {
		m.captures.WithLabelValues(o) // exported at 0 before the first: rate() and increase() need the series
	}
	m.secupay = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ecrd_secupay_request_duration_seconds",
		Help:    "secupay API calls by op (capture, get) and the last HTTP status (none: no answer came back).",
		Buckets: secupayBuckets}, []string{"op", "status"})
	m.jobs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ecrd_print_jobs_total",
		Help: "Print attempts by result: printed, or failed (the job stays queued and is tried again)."}, []string{"result"})
	m.jobs.WithLabelValues("printed")
	m.jobs.WithLabelValues("failed")
	m.fsync = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ecrd_fsync_duration_seconds",
		Help: "fsync of journal and spool files and their directories.", Buckets: fsyncBuckets})
	m.storageErrors = prometheus.NewCounter(prometheus.CounterOpts{Name: "ecrd_storage_errors_total",
		Help: "Writes to the state directory that failed."})
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{Name: "ecrd_build_info",
		Help:        "Always 1; the labels say which ecrd build runs.",
		ConstLabels: prometheus.Labels{"goversion": runtime.Version(), "revision": m.revision(), "version": m.cfg.Version}})
	buildInfo.Set(1)
	start := prometheus.NewGauge(prometheus.GaugeOpts{Name: "ecrd_start_time_seconds",
		Help: "When the daemon started, in seconds since the epoch."})
	start.Set(float64(m.started.UnixNano()) / 1e9)
	r.MustRegister(m.captures, m.secupay, m.jobs, m.fsync, m.storageErrors, buildInfo, start, (*stateCollector)(m))
	if chars := m.cfg.Characters; chars != nil {
		// What receipts printed otherwise than as itself: a picture (GS v 0 from the glyph
		// font), a transliteration, or '?' / a box. Read from the renderer's counters.
		for _, c := range []struct {
			how  string
			read func() uint64
		}{{"pictured", chars.Pictured}, {"substituted", chars.Substituted}, {"missing", chars.Missing}} {
			r.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "ecrd_receipt_characters_total",
				Help:        "Characters of receipt text printed otherwise than from a code page, by how: pictured (drawn from the glyph font), substituted (transliterated) or missing ('?' or a box).",
				ConstLabels: prometheus.Labels{"how": c.how}}, func() float64 { return float64(c.read()) }))
		}
	}
	if env := m.cfg.SecupayEnvironment; env != "" {
		envInfo := prometheus.NewGauge(prometheus.GaugeOpts{Name: "ecrd_secupay_environment_info",
			Help:        "Always 1; environment is the secupay system the till captures with: live, testing, local (a fake on loopback) or other.",
			ConstLabels: prometheus.Labels{"environment": env}})
		envInfo.Set(1)
		r.MustRegister(envInfo)
	}
	// Go's and the process's standard metrics, as every Go service exports them: the default
	// sets (go_memstats_*, go_gc_duration_seconds, go_goroutines, go_threads, go_info,
	// go_sched_gomaxprocs_threads, go_gc_gogc_percent, go_gc_gomemlimit_bytes; process_*).
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.reg = r
	m.handler = promhttp.HandlerFor(r, promhttp.HandlerOpts{
		// A collector that fails (say /proc unreadable) costs its own series, not the page.
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      zap.NewStdLog(m.log.Named("metrics")),
	})
}

// Handler serves the metrics in Prometheus' exposition formats (text unless the scraper
// asks for another), on the socket's GET /metrics and on --metrics-listen alike.
func (m *Monitor) Handler() http.Handler { return m.handler }

// Registry is the monitor's registry, for a test that gathers it directly.
func (m *Monitor) Registry() *prometheus.Registry { return m.reg }

// revision is ecrd_build_info's revision label: the commit the binary was built from, as
// the Go toolchain stamps it (vcs.revision, with -buildvcs=true, which scripts/build-ecrd
// sets in a git checkout), else Config.Revision, else "unknown" (a source tarball, go test).
func (m *Monitor) revision() string {
	if m.cfg.Revision != "" {
		return m.cfg.Revision
	}
	bi, ok := debug.ReadBuildInfo()
	return revisionOf(bi, ok)
}

func revisionOf(bi *debug.BuildInfo, ok bool) string {
	if ok && bi != nil {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				return s.Value
			}
		}
	}
	return "unknown"
}

// Descriptions of the gauges read at scrape time (stateCollector).
var (
	descQueueJobs = prometheus.NewDesc("ecrd_queue_jobs", "Print jobs waiting for the printer.", nil, nil)
	descOldestJob = prometheus.NewDesc("ecrd_queue_oldest_job_age_seconds",
		"Age of the oldest queued print job (0 when none).", nil, nil)
	descPrinterState = prometheus.NewDesc("ecrd_printer_state",
		"The printer's state as last seen: 1 for the current state, 0 for the others.", []string{"state"}, nil)
	descUnfinished = prometheus.NewDesc("ecrd_unfinished_captures",
		"Captures whose outcome is in doubt or whose receipt is not spooled yet.", nil, nil)
	descPrinterSince = prometheus.NewDesc("ecrd_printer_state_since_timestamp_seconds",
		"When the printer entered its current state.", nil, nil)
	descDegraded       = prometheus.NewDesc("ecrd_degraded", "1 while /healthz answers degraded, else 0.", nil, nil)
	descSecupaySuccess = prometheus.NewDesc("ecrd_secupay_last_success_timestamp_seconds",
		"When a secupay call last succeeded.", nil, nil)
	descTokenExpiry = prometheus.NewDesc("ecrd_secupay_token_expiry_timestamp_seconds",
		"When the OAuth access token runs out (absent for a static token).", nil, nil)
)

// stateCollector exports the daemon's state as read at scrape time, so the numbers are never
// stale: one refresh per scrape, the same one the status document and /healthz read.
type stateCollector Monitor

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descQueueJobs, descOldestJob, descPrinterState, descUnfinished,
		descPrinterSince, descDegraded, descSecupaySuccess, descTokenExpiry} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	m := (*Monitor)(c)
	s := m.refresh()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	oldest := 0.0
	if len(s.pending) > 0 {
		oldest = s.now.Sub(s.pending[0].Created).Seconds()
	}
	gauge(descQueueJobs, float64(len(s.pending)))
	gauge(descOldestJob, oldest)
	for _, st := range printerStates {
		v := 0.0
		if st == s.printer.Status.State {
			v = 1
		}
		gauge(descPrinterState, v, string(st))
	}
	gauge(descUnfinished, float64(s.unfinished))
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
	gauge(descPrinterSince, since)
	gauge(descDegraded, degraded)
	if ok != 0 {
		gauge(descSecupaySuccess, ok)
	}
	if expires != 0 {
		gauge(descTokenExpiry, expires)
	}
}
