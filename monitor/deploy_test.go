package monitor

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

// The alert rules, their tests and the dashboard that deploy/ ships (as examples in the
// package) for the metrics this package exports.
const (
	alertRules = "../deploy/prometheus/ecrd-alerts.yml"
	alertTests = "../deploy/prometheus/ecrd-alerts.test.yml"
	dashboard  = "../deploy/grafana/ecrd-dashboard.json"
)

// exported reads the family names of testdata/metrics.golden.
func exported(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("testdata/metrics.golden")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		out[f[0]] = f[1]
	}
	return out
}

var metricName = regexp.MustCompile(`\b(?:ecrd|go|process)_[a-z0-9_]+`)

// TestDeployFilesNameExportedMetrics: every ecrd_, go_ and process_ name in the rules, their
// tests and the dashboard is a family on the page (a histogram's _bucket, _sum and _count
// series included), so that a renamed metric cannot leave an alert that never fires.
func TestDeployFilesNameExportedMetrics(t *testing.T) {
	fams := exported(t)
	for _, file := range []string{alertRules, alertTests, dashboard} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		seen := 0
		for _, name := range metricName.FindAllString(string(b), -1) {
			seen++
			if _, ok := fams[name]; ok {
				continue
			}
			ok := false
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				base, cut := strings.CutSuffix(name, suffix)
				typ := fams[base]
				ok = ok || cut && (typ == "histogram" || typ == "summary" && suffix != "_bucket")
			}
			if !ok {
				t.Errorf("%s names %s, which ecrd does not export", file, name)
			}
		}
		if seen == 0 {
			t.Errorf("%s names no metric", file)
		}
	}
}

// dashboardExprs returns every query of the dashboard with Grafana's variables replaced by
// what Prometheus parses: $instance by a regular expression, $__rate_interval by a range.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(dashboard)
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Title   string `json:"title"`
		Type    string `json:"type"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
		Panels []panel `json:"panels"`
	}
	var d struct {
		UID    string  `json:"uid"`
		Title  string  `json:"title"`
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboard, err)
	}
	if d.UID == "" || d.Title == "" || len(d.Panels) == 0 {
		t.Fatalf("%s: no uid, title or panels", dashboard)
	}
	r := strings.NewReplacer("$instance", ".+", "$__rate_interval", "5m")
	var out []string
	var walk func(ps []panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("panel %q: empty query", p.Title)
				}
				out = append(out, r.Replace(tg.Expr))
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// TestDashboardQueriesFile writes the dashboard's queries as recording rules to the file
// ECRD_DASHBOARD_RULES names: make check-metrics has promtool check rules parse them.
func TestDashboardQueriesFile(t *testing.T) {
	exprs := dashboardExprs(t)
	out := os.Getenv("ECRD_DASHBOARD_RULES")
	if out == "" {
		t.Skip("ECRD_DASHBOARD_RULES not set (make check-metrics sets it)")
	}
	var b strings.Builder
	b.WriteString("groups:\n  - name: ecrd-dashboard\n    rules:\n")
	for i, e := range exprs {
		q, _ := json.Marshal(e) // a JSON string is a YAML string
		fmt.Fprintf(&b, "      - record: ecrd_dashboard:query%d\n        expr: %s\n", i+1, q)
	}
	if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}
