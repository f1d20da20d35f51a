package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/internal/wait"
	"github.com/ecrd-pos/ecrd/secupay/secupaytest"
)

// metricValue reads one series from Prometheus' text format: series is the name with its
// labels exactly as exposed (labels in sorted order), e.g. ecrd_captures_total{outcome="refused"}.
func metricValue(text, series string) (float64, error) {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("no series %s", series)
}

func (e *daemonEnv) scrape() string {
	e.t.Helper()
	status, body, err := e.request("GET", "/metrics")
	if err != nil || status != 200 {
		e.t.Fatalf("GET /metrics: %d %v %s", status, err, body)
	}
	return string(body)
}

// wantMetrics checks series values in one scrape.
func wantMetrics(t *testing.T, text string, want map[string]float64) {
	t.Helper()
	for series, v := range want {
		got, err := metricValue(text, series)
		if err != nil || got != v {
			t.Errorf("%s = %v (%v), want %v", series, got, err, v)
		}
	}
}

// TestDaemonMetricsAfterCaptureRefusalPaperOut scrapes GET /metrics on the socket, and on
// the opt-in TCP listener, after a capture, a refusal and a paper-out, and checks the values.
func TestDaemonMetricsAfterCaptureRefusalPaperOut(t *testing.T) {
	e := newDaemonEnv(t)
	p := e.start("ECRD_METRICS_LISTEN=127.0.0.1:0")

	if status, out := e.capture(secupaytest.SeedID); status != 200 || jobOf(out)["state"] != "printed" {
		t.Fatalf("capture: %d %v", status, out)
	}
	e.fake.Fault(secupaytest.Fault{Op: "start", Status: 404,
		Body: secupaytest.ErrorBody("ProductNotFoundException", "Not found", "Transaktion unbekannt", 1002, "abc123")})
	if status, out := e.capture("STX_REFUSED1"); status != 502 {
		t.Fatalf("refusal: %d %v", status, out)
	}
	os.WriteFile(e.printerFile+".status", []byte("paper_out\n"), 0o644)
	if status, out := e.capture("STX_PAPEROUT1"); status != 200 || jobOf(out)["state"] != "queued" {
		t.Fatalf("capture with paper out: %d %v", status, out)
	}

	text := e.scrape()
	wantMetrics(t, text, map[string]float64{
		`ecrd_captures_total{outcome="captured"}`:                                2,
		`ecrd_captures_total{outcome="refused"}`:                                 1,
		`ecrd_captures_total{outcome="in_doubt"}`:                                0,
		`ecrd_captures_total{outcome="not_sent"}`:                                0,
		`ecrd_secupay_request_duration_seconds_count{op="capture",status="200"}`: 2,
		`ecrd_secupay_request_duration_seconds_count{op="capture",status="404"}`: 1,
		`ecrd_print_jobs_total{result="printed"}`:                                1,
		`ecrd_print_jobs_total{result="failed"}`:                                 0,
		`ecrd_queue_jobs`:                                                        1,
		`ecrd_printer_state{state="paper_out"}`:                                  1,
		`ecrd_printer_state{state="online"}`:                                     0,
		`ecrd_unfinished_captures`:                                               0,
		`ecrd_degraded`:                                                          0, // within the 5 min grace
	})
	if !strings.Contains(text, `ecrd_build_info{goversion="`) || !strings.Contains(text, `version="`+binaryVersion(t)+`"} 1`) {
		t.Error("no ecrd_build_info with the version")
	}
	// Flushes of the state database: the intent and the answer with its receipt for each
	// capture, and the intent of the refused one (its refusal needs no flush of its own).
	if n, err := metricValue(text, "ecrd_fsync_duration_seconds_count"); err != nil || n < 4 || n > 6 {
		t.Errorf("ecrd_fsync_duration_seconds_count = %v (%v), want 4 to 6", n, err)
	}
	wait.For(t, 5*time.Second, "the oldest job's age", func() error {
		age, err := metricValue(e.scrape(), "ecrd_queue_oldest_job_age_seconds")
		if err == nil && age <= 0 {
			err = fmt.Errorf("oldest job age %v, want > 0", age)
		}
		return err
	})

	// The paper is back: the held receipt prints and the gauges follow.
	os.WriteFile(e.printerFile+".status", []byte("online\n"), 0o644)
	e.waitReceipts(2)
	wait.For(t, 5*time.Second, "the metrics after both receipts", func() error {
		text := e.scrape()
		for series, want := range map[string]float64{`ecrd_print_jobs_total{result="printed"}`: 2, `ecrd_queue_jobs`: 0,
			`ecrd_printer_state{state="online"}`: 1, `ecrd_queue_oldest_job_age_seconds`: 0} {
			if got, err := metricValue(text, series); err != nil || got != want {
				return fmt.Errorf("%s = %v (%v), want %v", series, got, err, want)
			}
		}
		return nil
	})

	// The TCP listener serves the same metrics, and nothing of the API.
	m := regexp.MustCompile(`"metrics listener".*"address":"([^"]+)"`).FindStringSubmatch(p.logs.String())
	if m == nil {
		t.Fatalf("no metrics listener address in the log:\n%s", p.logs)
	}
	resp, err := http.Get("http://" + m[1] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if v, err := metricValue(string(body), `ecrd_captures_total{outcome="refused"}`); err != nil || v != 1 {
		t.Errorf("TCP /metrics: refused = %v (%v)", v, err)
	}
	resp, err = http.Get("http://" + m[1] + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("TCP listener answers /healthz with %d: the API must stay on the socket", resp.StatusCode)
	}
}

// TestMetricsListenRefusesRemoteAddress: a non-loopback metrics address needs
// --metrics-allow-remote.
func TestMetricsListenRefusesRemoteAddress(t *testing.T) {
	e := newDaemonEnv(t)
	p := e.launch("ECRD_METRICS_LISTEN=0.0.0.0:0")
	p.wait(t)
	if ee, ok := p.err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(p.logs.String(), "--metrics-allow-remote") {
		t.Fatalf("daemon with --metrics-listen 0.0.0.0:0: %v\n%s", p.err, p.logs)
	}
}

// TestStatusJSONAndDegradedHealth: `ecrd status --json` gives the documented document; a
// printer out of paper past the grace makes /healthz answer 503 "degraded" with the
// problem, keeping the fields POS apps read, and status --json exit 1.
func TestStatusJSONAndDegradedHealth(t *testing.T) {
	e := newDaemonEnv(t)
	e.start("ECRD_HEALTH_PRINTER_GRACE=300ms")
	if status, _ := e.capture(secupaytest.SeedID); status != 200 {
		t.Fatal("capture failed")
	}
	var out, errb bytes.Buffer
	if code := run([]string{"status", "--json", "--socket", e.socket}, nil, &out, &errb); code != 0 {
		t.Fatalf("status --json: exit %d, %s %s", code, out.String(), errb.String())
	}
	var st struct {
		Version       string    `json:"version"`
		Started       time.Time `json:"started"`
		UptimeSeconds *int64    `json:"uptime_seconds"`
		Status        string    `json:"status"`
		Problems      []any     `json:"problems"`
		Printer       struct {
			URI, State string
			Model      *string   `json:"model"`
			Ready      bool      `json:"ready"`
			Since      time.Time `json:"since"`
		} `json:"printer"`
		Queue struct {
			Jobs    *int  `json:"jobs"`
			Pending []any `json:"pending"`
		} `json:"queue"`
		Unfinished    *int `json:"unfinished_captures"`
		ReceiptsToday int  `json:"receipts_today"`
		Secupay       struct {
			LastSuccess *struct {
				At         time.Time `json:"at"`
				Op         string    `json:"op"`
				HTTPStatus int       `json:"http_status"`
			} `json:"last_success"`
			LastError any `json:"last_error"`
		} `json:"secupay"`
	}
	if err := json.Unmarshal(out.Bytes(), &st); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if st.Version != binaryVersion(t) || st.Started.IsZero() || st.UptimeSeconds == nil || st.Status != "ok" || st.Problems == nil ||
		st.Printer.URI != "file:"+e.printerFile || st.Printer.State != "online" || !st.Printer.Ready || st.Printer.Model == nil ||
		st.Printer.Since.IsZero() || st.Queue.Jobs == nil || *st.Queue.Jobs != 0 || st.Queue.Pending == nil ||
		st.Unfinished == nil || st.ReceiptsToday != 1 || st.Secupay.LastSuccess == nil ||
		st.Secupay.LastSuccess.Op != "capture" || st.Secupay.LastSuccess.HTTPStatus != 200 || st.Secupay.LastError != nil {
		t.Fatalf("status document: %s", out.String())
	}

	os.WriteFile(e.printerFile+".status", []byte("paper_out\n"), 0o644)
	if status, out := e.capture("STX_HELD1"); status != 200 || jobOf(out)["state"] != "queued" {
		t.Fatalf("capture with paper out: %d %v", status, out)
	}
	var h map[string]any
	wait.For(t, 10*time.Second, "/healthz", func() error {
		status, body, err := e.request("GET", "/healthz")
		if err != nil {
			return err
		}
		if status != 503 {
			return fmt.Errorf("/healthz %d %s, want 503 once the grace is over", status, body)
		}
		return json.Unmarshal(body, &h)
	})
	probs, _ := h["problems"].([]any)
	if h["status"] != "degraded" || h["queued"] != 1.0 || h["unfinished_captures"] != 0.0 || len(probs) != 1 ||
		!strings.Contains(fmt.Sprint(probs[0]), "printer_not_ready") {
		t.Fatalf("degraded /healthz: %v", h)
	}
	out.Reset()
	if code := run([]string{"status", "--json", "--socket", e.socket}, nil, &out, &errb); code != 1 ||
		!strings.Contains(out.String(), `"status":"degraded"`) || !strings.Contains(out.String(), `"transaction_id":"STX_HELD1"`) {
		t.Fatalf("status --json while degraded: exit %d %s", code, out.String())
	}
	out.Reset()
	code := run([]string{"status", "--socket", e.socket}, nil, &out, &errb)
	// The text shows the status document's fields (the version as the build named it).
	for _, want := range []string{"problem:  printer paper_out", "version:  ", ", up ", " paper_out (paper out) since ",
		"oldest:   ", "today:    1 receipt(s) printed", "secupay:  last success ", "secupay:  local (a secupay fake on this machine)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("human status while degraded lacks %q", want)
		}
	}
	if code != 1 || t.Failed() {
		t.Fatalf("human status while degraded: exit %d\n%s", code, out.String())
	}
}

// TestIdlePrinterStateIsChecked: paper running out on an idle till shows in the status, the
// metrics and, past the grace, /healthz — before the next receipt would find out.
func TestIdlePrinterStateIsChecked(t *testing.T) {
	e := newDaemonEnv(t)
	e.start("ECRD_PRINTER_CHECK=50ms", "ECRD_HEALTH_PRINTER_GRACE=200ms")
	os.WriteFile(e.printerFile+".status", []byte("paper_out\n"), 0o644)
	wait.For(t, 10*time.Second, "/healthz to say printer_not_ready", func() error {
		status, body, err := e.request("GET", "/healthz")
		if err != nil || status != 503 || !strings.Contains(string(body), "printer_not_ready") {
			return fmt.Errorf("/healthz %d %s %v, want 503 printer_not_ready", status, body, err)
		}
		return nil
	})
	wantMetrics(t, e.scrape(), map[string]float64{`ecrd_printer_state{state="paper_out"}`: 1, `ecrd_queue_jobs`: 0, `ecrd_degraded`: 1})
	os.WriteFile(e.printerFile+".status", []byte("online\n"), 0o644)
	wait.For(t, 10*time.Second, "/healthz after the roll was changed", func() error {
		if status, body, err := e.request("GET", "/healthz"); err != nil || status != 200 {
			return fmt.Errorf("/healthz %d %s %v after the roll was changed", status, body, err)
		}
		return nil
	})
}

// notifyListener is systemd's side of sd_notify: a datagram socket the daemon sends
// READY=1, STATUS=… and WATCHDOG=1 to.
type notifyListener struct {
	conn *net.UnixConn
	mu   sync.Mutex
	msgs []notifyMsg
}

type notifyMsg struct {
	at   time.Time
	text string
}

func newNotifyListener(t *testing.T, dir string) (*notifyListener, string) {
	path := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	n := &notifyListener{conn: conn}
	go func() {
		buf := make([]byte, 64<<10)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			n.msgs = append(n.msgs, notifyMsg{time.Now(), string(buf[:k])})
			n.mu.Unlock()
		}
	}()
	t.Cleanup(func() { conn.Close() })
	return n, path
}

// since returns the messages received after t.
func (n *notifyListener) since(t time.Time) []notifyMsg {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []notifyMsg
	for _, m := range n.msgs {
		if m.at.After(t) {
			out = append(out, m)
		}
	}
	return out
}

func (n *notifyListener) pings(since time.Time) int {
	c := 0
	for _, m := range n.since(since) {
		if strings.Contains(m.text, "WATCHDOG=1") {
			c++
		}
	}
	return c
}

// TestWatchdogStopsWhenWorkerFreezes: the daemon pings the watchdog while it works; when the
// print worker freezes — strace holds its open(2) of the printer device for 4 s, past every
// deadline, like a hung driver — the pings stop, and resume when the worker moves again.
// The systemd status line says what the till is doing.
func TestWatchdogStopsWhenWorkerFreezes(t *testing.T) {
	e := newDaemonEnv(t)
	if err := os.WriteFile(e.printerFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	const hang = 4 * time.Second
	e.wrap = []string{"strace", "-f", "-qq", "-o", "/dev/null", "-P", e.printerFile,
		"-e", "trace=openat", "-e", fmt.Sprintf("inject=openat:delay_enter=%d", hang.Microseconds())}
	n, sock := newNotifyListener(t, e.dir)
	const interval = 400 * time.Millisecond // WatchdogSec: pings every 200 ms
	p := e.start("NOTIFY_SOCKET="+sock, fmt.Sprintf("WATCHDOG_USEC=%d", interval.Microseconds()),
		"ECRD_PRINT_TIMEOUT=300ms", "ECRD_PRINT_WAIT=100ms")
	start := time.Now()
	wait.For(t, 5*time.Second, "watchdog pings", func() error {
		if c := n.pings(start); c < 3 {
			return fmt.Errorf("%d watchdog pings from a working daemon, want 3", c)
		}
		return nil
	})
	statusSeen := func(want string) error {
		for _, m := range n.since(time.Time{}) {
			if strings.Contains(m.text, want) {
				return nil
			}
		}
		return fmt.Errorf("no %q among the notifications", want)
	}
	wait.For(t, 5*time.Second, "the status line", func() error { return statusSeen("STATUS=printer online, 0 queued, 0 receipts today") })
	// A daemon just started is working: its first check must not catch the print worker
	// before it began (the journal's error priority is what technicians watch).
	if strings.Contains(p.logs.String(), "watchdog not fed") {
		t.Fatalf("a working daemon logged that the watchdog is not fed:\n%s", p.logs)
	}

	// The receipt goes to a printer that never takes it: the worker is stuck in open(2).
	if status, out := e.capture(secupaytest.SeedID); status != 200 || jobOf(out)["state"] != "queued" {
		t.Fatalf("capture: %d %v", status, out)
	}
	// Within PrintTimeout plus the spool's second of slack the worker is overdue; from then
	// on no ping may come. Wait for a silence of several intervals.
	var silentFrom time.Time
	wait.For(t, 10*time.Second, "the watchdog pings to stop", func() error {
		if silentFrom.IsZero() || n.pings(silentFrom) > 0 {
			silentFrom = time.Now()
			return fmt.Errorf("still pinging while the worker is frozen")
		}
		if time.Since(silentFrom) < 3*interval {
			return fmt.Errorf("silent for only %s", time.Since(silentFrom))
		}
		return nil
	})
	if !strings.Contains(p.logs.String(), "watchdog not fed") {
		t.Errorf("no log line says why the watchdog is not fed:\n%s", p.logs)
	}
	// /healthz still answers (the API works) and names the stuck worker.
	if status, body, err := e.request("GET", "/healthz"); err != nil || status != 503 || !strings.Contains(string(body), "print_worker_stuck") {
		t.Errorf("/healthz with a frozen worker: %d %s %v", status, body, err)
	}

	// The "driver" lets go: the worker moves again and so do the pings.
	thawed := time.Now()
	wait.For(t, 10*time.Second, "the watchdog pings to resume", func() error {
		if c := n.pings(thawed); c < 2 {
			return fmt.Errorf("%d pings after the worker moved again", c)
		}
		return nil
	})
}

// binaryVersion is what the daemon under test says its version is (`ecrd version`): ldflags,
// else the build's module version or VCS revision.
func binaryVersion(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(ecrdBin, "version").Output()
	v, ok := strings.CutPrefix(strings.TrimSpace(string(out)), "ecrd ")
	if err != nil || !ok || v == "" {
		t.Fatalf("ecrd version: %q, %v", out, err)
	}
	return v
}
