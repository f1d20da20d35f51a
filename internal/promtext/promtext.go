// Package promtext serves metrics in the Prometheus text exposition format (version 0.0.4):
// counters and histograms that the daemon updates, gauges read at scrape time, and the
// process's standard go_* and process_* metrics.
//
// Why not the Prometheus client library: it links protocol buffers and its own descriptor
// machinery, about 4 MB of the binary and 2.3 MiB of a till's resident memory against a
// budget of 12 MiB, for a format that is one page of text. This package writes that page;
// its tests parse the output with Prometheus' own parser (github.com/prometheus/common/expfmt,
// a test-only dependency). It must never grow into a metrics framework: no push, no
// exemplars, no label sets made up at run time beyond a vector's fixed label names.
package promtext

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Registry holds the metrics of one daemon, written in the order they were added.
type Registry struct {
	mu       sync.Mutex
	families []func(w *Writer)
}

// add appends a family writer.
func (r *Registry) add(f func(w *Writer)) {
	r.mu.Lock()
	r.families = append(r.families, f)
	r.mu.Unlock()
}

// Collect adds f, which writes metrics read at scrape time (gauges of the daemon's state).
func (r *Registry) Collect(f func(w *Writer)) { r.add(f) }

// WriteTo writes every metric in the text format.
func (r *Registry) WriteTo(out io.Writer) (int64, error) {
	r.mu.Lock()
	families := slices.Clone(r.families)
	r.mu.Unlock()
	cw := &countingWriter{w: out}
	w := &Writer{b: bufio.NewWriter(cw), seen: map[string]bool{}}
	for _, f := range families {
		f(w)
	}
	err := w.b.Flush()
	return cw.n, err
}

// ServeHTTP serves GET /metrics.
func (r *Registry) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	r.WriteTo(w)
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Writer writes samples. A family's HELP and TYPE lines come before its first sample and
// never again: the format allows each only once per name.
type Writer struct {
	b    *bufio.Writer
	seen map[string]bool
}

// header writes name's HELP and TYPE lines the first time name is written.
func (w *Writer) header(name, help, typ string) {
	if w.seen[name] {
		return
	}
	w.seen[name] = true
	fmt.Fprintf(w.b, "# HELP %s %s\n# TYPE %s %s\n", name, escapeHelp(help), name, typ)
}

// sample writes one line: name{labels} value. labels alternate names and values.
func (w *Writer) sample(name string, v float64, labels ...string) {
	w.b.WriteString(name)
	if len(labels) > 0 {
		w.b.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				w.b.WriteByte(',')
			}
			w.b.WriteString(labels[i])
			w.b.WriteString(`="`)
			w.b.WriteString(escapeLabel(labels[i+1]))
			w.b.WriteByte('"')
		}
		w.b.WriteByte('}')
	}
	w.b.WriteByte(' ')
	w.b.WriteString(formatFloat(v))
	w.b.WriteByte('\n')
}

// Gauge writes a gauge sample; labels alternate names and values.
func (w *Writer) Gauge(name, help string, v float64, labels ...string) {
	w.header(name, help, "gauge")
	w.sample(name, v, labels...)
}

// Counter writes a counter sample read at scrape time.
func (w *Writer) Counter(name, help string, v float64, labels ...string) {
	w.header(name, help, "counter")
	w.sample(name, v, labels...)
}

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, +1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

func escapeHelp(s string) string  { return helpEscaper.Replace(s) }
func escapeLabel(s string) string { return labelEscaper.Replace(s) }

// Counter is a monotonically increasing count.
type Counter struct{ n atomic.Uint64 }

// Inc adds one.
func (c *Counter) Inc() { c.n.Add(1) }

// Value returns the count.
func (c *Counter) Value() uint64 { return c.n.Load() }

// NewCounter adds a counter without labels.
func (r *Registry) NewCounter(name, help string) *Counter {
	c := &Counter{}
	r.add(func(w *Writer) { w.Counter(name, help, float64(c.Value())) })
	return c
}

// vec is a metric per combination of label values, made on first use.
type vec[T any] struct {
	labels []string
	fresh  func() T
	mu     sync.Mutex
	series map[string]T // by label values joined with "\xff"
}

func newVec[T any](labels []string, fresh func() T) *vec[T] {
	return &vec[T]{labels: labels, fresh: fresh, series: map[string]T{}}
}

// with returns the metric for the label values (in the order of the label names), creating
// it: a series a query expects is there before its first event.
func (v *vec[T]) with(values []string) T {
	key := seriesKey(v.labels, values)
	v.mu.Lock()
	defer v.mu.Unlock()
	m, ok := v.series[key]
	if !ok {
		m = v.fresh()
		v.series[key] = m
	}
	return m
}

// sorted returns the series ordered by their label values, as Prometheus' client does.
func (v *vec[T]) sorted() []seriesRef[T] {
	v.mu.Lock()
	defer v.mu.Unlock()
	return sortedSeries(v.labels, v.series)
}

// CounterVec is a counter per combination of label values.
type CounterVec struct{ v *vec[*Counter] }

// NewCounterVec adds a counter family with the given label names.
func (r *Registry) NewCounterVec(name, help string, labels ...string) *CounterVec {
	v := newVec(labels, func() *Counter { return &Counter{} })
	r.add(func(w *Writer) {
		w.header(name, help, "counter")
		for _, s := range v.sorted() {
			w.sample(name, float64(s.metric.Value()), s.pairs...)
		}
	})
	return &CounterVec{v}
}

// With returns the counter for the label values (in the order of the label names), at zero
// until its first event.
func (c *CounterVec) With(values ...string) *Counter { return c.v.with(values) }

// seriesRef is one series of a vector: its metric and its label pairs.
type seriesRef[T any] struct {
	metric T
	pairs  []string
}

// sortedSeries returns series ordered by their label values. The caller holds the vector's
// lock: the map must not change meanwhile.
func sortedSeries[T any](labels []string, series map[string]T) []seriesRef[T] {
	keys := make([]string, 0, len(series))
	for k := range series {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]seriesRef[T], 0, len(keys))
	for _, k := range keys {
		values := strings.Split(k, "\xff")
		pairs := make([]string, 0, 2*len(labels))
		for i, l := range labels {
			pairs = append(pairs, l, values[i])
		}
		out = append(out, seriesRef[T]{series[k], pairs})
	}
	return out
}

func seriesKey(labels, values []string) string {
	if len(values) != len(labels) {
		panic(fmt.Sprintf("promtext: %d label values for labels %v", len(values), labels))
	}
	return strings.Join(values, "\xff")
}

// Histogram counts observations in cumulative buckets.
type Histogram struct {
	upper []float64 // sorted upper bounds, without +Inf
	mu    sync.Mutex
	count []uint64 // per bucket, not cumulative; the last is +Inf
	sum   float64
	n     uint64
}

func newHistogram(buckets []float64) *Histogram {
	upper := slices.Clone(buckets)
	slices.Sort(upper)
	return &Histogram{upper: upper, count: make([]uint64, len(upper)+1)}
}

// Observe adds one observation.
func (h *Histogram) Observe(v float64) {
	i, _ := slices.BinarySearch(h.upper, v) // the first bucket whose bound is ≥ v
	h.mu.Lock()
	h.count[i]++
	h.sum += v
	h.n++
	h.mu.Unlock()
}

func (h *Histogram) write(w *Writer, name string, pairs []string) {
	h.mu.Lock()
	count, sum, n := slices.Clone(h.count), h.sum, h.n
	h.mu.Unlock()
	var cum uint64
	for i, c := range count {
		cum += c
		le := "+Inf"
		if i < len(h.upper) {
			le = formatFloat(h.upper[i])
		}
		w.sample(name+"_bucket", float64(cum), append(slices.Clone(pairs), "le", le)...)
	}
	w.sample(name+"_sum", sum, pairs...)
	w.sample(name+"_count", float64(n), pairs...)
}

// NewHistogram adds a histogram without labels with the given bucket upper bounds.
func (r *Registry) NewHistogram(name, help string, buckets []float64) *Histogram {
	h := newHistogram(buckets)
	r.add(func(w *Writer) {
		w.header(name, help, "histogram")
		h.write(w, name, nil)
	})
	return h
}

// HistogramVec is a histogram per combination of label values.
type HistogramVec struct{ v *vec[*Histogram] }

// NewHistogramVec adds a histogram family with the given buckets and label names.
func (r *Registry) NewHistogramVec(name, help string, buckets []float64, labels ...string) *HistogramVec {
	v := newVec(labels, func() *Histogram { return newHistogram(buckets) })
	r.add(func(w *Writer) {
		w.header(name, help, "histogram")
		for _, s := range v.sorted() {
			s.metric.write(w, name, s.pairs)
		}
	})
	return &HistogramVec{v}
}

// With returns the histogram for the label values, empty until its first observation.
func (h *HistogramVec) With(values ...string) *Histogram { return h.v.with(values) }
