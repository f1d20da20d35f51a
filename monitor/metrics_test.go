package monitor

import (
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/ecrd-pos/ecrd/capture"
	"github.com/ecrd-pos/ecrd/printer"
	"github.com/ecrd-pos/ecrd/spool"
)

func gaugeValue(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	for _, m := range fams[name].GetMetric() {
		match := true
		for k, v := range labels {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			match = match && found
		}
		if match {
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// TestSecupayEnvironmentInfo: the environment the till captures with is one series at 1, in
// the metrics and in the status document; a monitor not told exports none.
func TestSecupayEnvironmentInfo(t *testing.T) {
	sp := &stubSpool{}
	sp.set(printer.StateOnline, time.Now())
	for _, env := range []string{"live", "testing", "local", "other"} {
		m := New(Config{Spool: sp, SecupayEnvironment: env})
		fams, _ := scrapeFamilies(t, m)
		if n := len(fams["ecrd_secupay_environment_info"].GetMetric()); n != 1 {
			t.Errorf("%s: %d series", env, n)
		}
		if v, ok := gaugeValue(t, fams, "ecrd_secupay_environment_info", map[string]string{"environment": env}); !ok || v != 1 {
			t.Errorf("%s: ecrd_secupay_environment_info = %v (%v)", env, v, ok)
		}
		if got := m.Status().SecupayEnvironment; got != env {
			t.Errorf("Status().SecupayEnvironment = %q, want %q", got, env)
		}
	}
	fams, _ := scrapeFamilies(t, New(Config{Spool: sp}))
	if _, ok := fams["ecrd_secupay_environment_info"]; ok {
		t.Error("environment exported without one")
	}
}

// TestBuildInfoRevision: the revision label is the commit the toolchain stamped
// (vcs.revision), Config.Revision when given, else "unknown".
func TestBuildInfoRevision(t *testing.T) {
	bi := &debug.BuildInfo{Settings: []debug.BuildSetting{{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "6b1c785aa0c4e1f6b0d2a4c9e8f7a6b5c4d3e2f1"}, {Key: "vcs.modified", Value: "false"}}}
	if got := revisionOf(bi, true); got != "6b1c785aa0c4e1f6b0d2a4c9e8f7a6b5c4d3e2f1" {
		t.Errorf("revisionOf = %q", got)
	}
	if got := revisionOf(&debug.BuildInfo{}, true); got != "unknown" {
		t.Errorf("no vcs: %q", got)
	}
	if got := revisionOf(nil, false); got != "unknown" {
		t.Errorf("no build info: %q", got)
	}
	sp := &stubSpool{}
	m := New(Config{Version: "1.2.3", Revision: "abc123", Spool: sp})
	fams, _ := scrapeFamilies(t, m)
	v, ok := gaugeValue(t, fams, "ecrd_build_info", map[string]string{"revision": "abc123", "version": "1.2.3"})
	if !ok || v != 1 {
		t.Errorf("ecrd_build_info{revision=abc123} = %v (%v): %v", v, ok, fams["ecrd_build_info"])
	}
}

// TestMetricsLint: the page passes Prometheus' own linter (promtool check metrics runs the
// same on a scrape in make check-metrics).
func TestMetricsLint(t *testing.T) {
	problems, err := testutil.GatherAndLint(everyMetric().Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

// TestMetricsContentType: a plain scrape (curl, Prometheus' text fallback) gets the text
// format it always got.
func TestMetricsContentType(t *testing.T) {
	_, text := scrapeFamilies(t, everyMetric())
	if !strings.Contains(text, "# TYPE ecrd_captures_total counter\n") {
		t.Errorf("no text format:\n%s", text)
	}
}

// TestMetricsScrapeFile writes one scrape of the handler, with every family on it, to the
// file ECRD_METRICS_SCRAPE names: make check-metrics gives it to promtool check metrics.
func TestMetricsScrapeFile(t *testing.T) {
	out := os.Getenv("ECRD_METRICS_SCRAPE")
	if out == "" {
		t.Skip("ECRD_METRICS_SCRAPE not set (make check-metrics sets it)")
	}
	_, text := scrapeFamilies(t, everyMetric())
	if err := os.WriteFile(out, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Events from many goroutines while scraping and asking for the status: run with -race.
func TestMetricsConcurrentUse(t *testing.T) {
	c := newClock()
	sp := &stubSpool{}
	sp.set(printer.StateOnline, c.Wall())
	m := New(Config{Spool: sp, Now: c.Wall})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 200 {
				m.ObserveCapture("STX_A", &capture.Result{}, nil)
				m.ObserveSecupay("get", 200+j%2*300, time.Millisecond, nil)
				m.ObserveJob(spool.Info{}, nil)
				m.ObserveStorage("fsync", time.Millisecond, nil)
				if j%50 == 0 {
					states := []printer.State{printer.StateOnline, printer.StatePaperOut}
					sp.set(states[(i+j)%2], c.Wall())
				}
			}
		})
	}
	for range 20 {
		scrapeFamilies(t, m)
		m.Status()
		m.Health()
	}
	wg.Wait()
	fams, _ := scrapeFamilies(t, m)
	for _, mf := range fams["ecrd_captures_total"].GetMetric() {
		if mf.GetLabel()[0].GetValue() == OutcomeCaptured && mf.GetCounter().GetValue() != 800 {
			t.Errorf("captured = %v, want 800", mf.GetCounter().GetValue())
		}
	}
	if n, _ := testutil.GatherAndCount(m.Registry(), "ecrd_storage_errors_total"); n != 1 {
		t.Errorf("ecrd_storage_errors_total series: %d", n)
	}
}

// TestReceiptCharacters: what receipts could not print from a code page is counted by how.
func TestReceiptCharacters(t *testing.T) {
	sp := &stubSpool{}
	sp.set(printer.StateOnline, time.Now())
	var pictured, missing uint64 = 5, 1
	m := New(Config{Spool: sp, Characters: &CharacterCounts{Pictured: func() uint64 { return pictured },
		Substituted: func() uint64 { return 0 }, Missing: func() uint64 { return missing }}})
	fams, _ := scrapeFamilies(t, m)
	for how, want := range map[string]uint64{"pictured": 5, "substituted": 0, "missing": 1} {
		var got float64
		found := false
		for _, s := range fams["ecrd_receipt_characters_total"].GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "how" && l.GetValue() == how {
					got, found = s.GetCounter().GetValue(), true
				}
			}
		}
		if !found || got != float64(want) {
			t.Errorf("ecrd_receipt_characters_total{how=%q} = %v (found %v), want %d", how, got, found, want)
		}
	}
	if fams, _ := scrapeFamilies(t, New(Config{Spool: sp})); fams["ecrd_receipt_characters_total"] != nil {
		t.Error("counted without counters")
	}
}
