package monitor

import (
	"errors"
	"flag"
	"fmt"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ecrd-pos/ecrd/capture"
	"github.com/ecrd-pos/ecrd/printer"
	"github.com/ecrd-pos/ecrd/spool"
)

var update = flag.Bool("update", false, "rewrite testdata/metrics.golden from the handler's page")

// scrapeFamilies serves GET /metrics once and parses the page with Prometheus' own parser:
// what it accepts, a Prometheus server scrapes.
func scrapeFamilies(t *testing.T, m *Monitor) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	text := rec.Body.String()
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("Prometheus' parser refuses the page: %v\n%s", err, text)
	}
	return fams, text
}

// everyMetric is a monitor after one event of each kind, with an OAuth token: every family
// the daemon can export is on its page.
func everyMetric() *Monitor {
	c := newClock()
	sp := &stubSpool{}
	sp.set(printer.StatePaperOut, c.Wall())
	m := New(Config{Version: "1.2.3", Spool: sp, Now: c.Wall, SecupayEnvironment: "testing",
		TokenExpires: func() time.Time { return c.Wall().Add(time.Hour) }})
	m.ObserveCapture("STX_A", &capture.Result{}, nil)
	m.ObserveSecupay("capture", 200, 300*time.Millisecond, nil)
	m.ObserveJob(spool.Info{}, nil)
	m.ObserveStorage("fsync", 2*time.Millisecond, errors.New("no space left on device"))
	return m
}

// familyLine is one family as testdata/metrics.golden lists it: name, type, the label names
// its series carry (le and quantile are part of the type), and its help text.
func familyLine(f *dto.MetricFamily) string {
	var labels []string
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if !slices.Contains(labels, l.GetName()) {
				labels = append(labels, l.GetName())
			}
		}
	}
	slices.Sort(labels)
	return fmt.Sprintf("%s %s {%s} %s", f.GetName(), strings.ToLower(f.GetType().String()), strings.Join(labels, ","), f.GetHelp())
}

// TestMetricNamesUnchanged: every family, its type and its label names as operators' rules,
// alerts and dashboards know them (testdata/metrics.golden, taken from the page of the
// hand-written encoder that came before Prometheus' client). A name, type or label may only
// change with the golden file, the rules in deploy/prometheus and docs/operations.md.
// ecrd's own help texts are compared too; Go's and the process's are the client's.
func TestMetricNamesUnchanged(t *testing.T) {
	fams, _ := scrapeFamilies(t, everyMetric())
	var got []string
	for _, f := range fams {
		got = append(got, familyLine(f))
	}
	slices.Sort(got)
	const golden = "testdata/metrics.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(strings.Join(got, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Split(strings.TrimSpace(string(b)), "\n")
	key := func(line string) string {
		name, rest, _ := strings.Cut(line, " ")
		typ, rest, _ := strings.Cut(rest, " ")
		labels, help, _ := strings.Cut(rest, " ")
		if !strings.HasPrefix(name, "ecrd_") {
			help = "" // Go's and the process's help texts are the client library's
		}
		return strings.Join([]string{name, typ, labels, help}, " ")
	}
	gotKeys, wantKeys := map[string]bool{}, map[string]bool{}
	for _, l := range got {
		gotKeys[key(l)] = true
	}
	for _, l := range want {
		wantKeys[key(l)] = true
	}
	for k := range wantKeys {
		if !gotKeys[k] {
			t.Errorf("missing or changed: %s", k)
		}
	}
	for k := range gotKeys {
		if !wantKeys[k] {
			t.Errorf("new or changed: %s", k)
		}
	}
}
