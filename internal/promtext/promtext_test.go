package promtext

import (
	"fmt"
	"math"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// parse reads the registry's page with Prometheus' own text parser: what it accepts, a
// Prometheus server scrapes.
func parse(t *testing.T, r *Registry) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if ct := rec.Header().Get("Content-Type"); ct != "text/plain; version=0.0.4; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	text := rec.Body.String()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("Prometheus' parser refuses the page: %v\n%s", err, text)
	}
	return fams, text
}

func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func TestCountersGaugesAndEscaping(t *testing.T) {
	r := &Registry{}
	c := r.NewCounter("jobs_total", "Jobs.\nSecond line with a \\ backslash.")
	v := r.NewCounterVec("captures_total", "Captures by outcome.", "outcome")
	v.With("refused") // exported at zero before its first event
	c.Inc()
	c.Inc()
	v.With("captured").Inc()
	r.Collect(func(w *Writer) {
		w.Gauge("state", "State.", 1, "name", `a "quoted"\ value`+"\n")
		w.Gauge("state", "State.", 0, "name", "other")
		w.Gauge("ratio", "A ratio.", math.Inf(+1))
	})
	fams, text := parse(t, r)
	if got := fams["jobs_total"]; got.GetType() != dto.MetricType_COUNTER || got.GetMetric()[0].GetCounter().GetValue() != 2 ||
		got.GetHelp() != "Jobs.\nSecond line with a \\ backslash." {
		t.Errorf("jobs_total = %v", got)
	}
	caps := fams["captures_total"].GetMetric()
	if len(caps) != 2 || labelsOf(caps[0])["outcome"] != "captured" || caps[0].GetCounter().GetValue() != 1 ||
		labelsOf(caps[1])["outcome"] != "refused" || caps[1].GetCounter().GetValue() != 0 {
		t.Errorf("captures_total = %v", caps)
	}
	st := fams["state"]
	if st.GetType() != dto.MetricType_GAUGE || len(st.GetMetric()) != 2 || labelsOf(st.GetMetric()[0])["name"] != `a "quoted"\ value`+"\n" {
		t.Errorf("state = %v", st)
	}
	if strings.Count(text, "# TYPE state gauge") != 1 {
		t.Errorf("TYPE written more than once:\n%s", text)
	}
	if !math.IsInf(fams["ratio"].GetMetric()[0].GetGauge().GetValue(), +1) {
		t.Errorf("ratio = %v", fams["ratio"])
	}
}

func TestHistogramBuckets(t *testing.T) {
	r := &Registry{}
	h := r.NewHistogram("fsync_seconds", "Flushes.", []float64{0.01, 0.001, 0.1})
	hv := r.NewHistogramVec("call_seconds", "Calls.", []float64{1, 5}, "op", "status")
	for _, v := range []float64{0.0005, 0.001, 0.002, 0.05, 3} {
		h.Observe(v)
	}
	hv.With("capture", "200").Observe(0.3)
	hv.With("capture", "none").Observe(5)
	hv.With("capture", "none").Observe(7)
	fams, text := parse(t, r)
	got := fams["fsync_seconds"].GetMetric()[0].GetHistogram()
	// Buckets are cumulative and include their upper bound (0.001 counts in le="0.001").
	want := map[float64]uint64{0.001: 2, 0.01: 3, 0.1: 4, math.Inf(+1): 5}
	for _, b := range got.GetBucket() {
		if want[b.GetUpperBound()] != b.GetCumulativeCount() {
			t.Errorf("bucket le=%v: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want[b.GetUpperBound()])
		}
	}
	if got.GetSampleCount() != 5 || math.Abs(got.GetSampleSum()-3.0535) > 1e-9 {
		t.Errorf("count %d sum %v", got.GetSampleCount(), got.GetSampleSum())
	}
	if !strings.Contains(text, `fsync_seconds_bucket{le="+Inf"} 5`) {
		t.Errorf("no +Inf bucket:\n%s", text)
	}
	calls := fams["call_seconds"].GetMetric()
	if len(calls) != 2 || labelsOf(calls[1])["status"] != "none" || calls[1].GetHistogram().GetSampleCount() != 2 ||
		calls[1].GetHistogram().GetBucket()[1].GetCumulativeCount() != 1 {
		t.Errorf("call_seconds = %v", calls)
	}
}

func TestStandardMetrics(t *testing.T) {
	r := &Registry{}
	r.StandardMetrics()
	f, err := os.Open("/proc/self/stat") // one more descriptor open while scraping
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fams, _ := parse(t, r)
	for name, check := range map[string]func(float64) bool{
		"process_resident_memory_bytes": func(v float64) bool { return v > 1<<20 },
		"process_open_fds":              func(v float64) bool { return v >= 4 },
		"process_max_fds":               func(v float64) bool { return v >= 64 },
		"process_start_time_seconds":    func(v float64) bool { return v > 1.7e9 },
		"process_cpu_seconds_total":     func(v float64) bool { return v >= 0 },
		"go_goroutines":                 func(v float64) bool { return v >= 1 },
		"go_memstats_heap_alloc_bytes":  func(v float64) bool { return v > 0 },
		"go_memstats_sys_bytes":         func(v float64) bool { return v > 1<<20 },
	} {
		fam, ok := fams[name]
		if !ok {
			t.Errorf("no %s", name)
			continue
		}
		m := fam.GetMetric()[0]
		v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
		if !check(v) {
			t.Errorf("%s = %v", name, v)
		}
	}
	if v := labelsOf(fams["go_info"].GetMetric()[0])["version"]; !strings.HasPrefix(v, "go") {
		t.Errorf("go_info version %q", v)
	}
}

// Observations from many goroutines while scraping: run with -race.
func TestConcurrentUse(t *testing.T) {
	r := &Registry{}
	v := r.NewCounterVec("n_total", "N.", "k")
	h := r.NewHistogramVec("d_seconds", "D.", []float64{1}, "k")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				k := fmt.Sprint((i*200 + j) % 97) // new series keep appearing while scraping
				v.With(k).Inc()
				h.With(k).Observe(float64(j % 2))
			}
		})
	}
	for range 20 {
		parse(t, r)
	}
	wg.Wait()
	fams, _ := parse(t, r)
	var total float64
	for _, m := range fams["n_total"].GetMetric() {
		total += m.GetCounter().GetValue()
	}
	if total != 1600 {
		t.Errorf("counted %v, want 1600", total)
	}
}
