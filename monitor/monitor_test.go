package monitor

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/capture"
	"github.com/ecrd-pos/ecrd/internal/steady"
	"github.com/ecrd-pos/ecrd/printer"
	"github.com/ecrd-pos/ecrd/spool"
)

// stubSpool is a spool seen from outside: a status, a queue, a count of printed jobs.
type stubSpool struct {
	mu      sync.Mutex
	status  spool.PrinterStatus
	pending []spool.Info
	printed []time.Time
}

func (s *stubSpool) Pending() []spool.Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]spool.Info(nil), s.pending...)
}
func (s *stubSpool) LastStatus() spool.PrinterStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}
func (s *stubSpool) PrintedSince(t time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, p := range s.printed {
		if !p.Before(t) {
			n++
		}
	}
	return n
}
func (s *stubSpool) set(st printer.State, at time.Time) {
	s.mu.Lock()
	s.status = spool.PrinterStatus{URI: "file:/x", Status: printer.Status{State: st}, Checked: at}
	s.mu.Unlock()
}

// newClock is the test clock, ecrd's one (steady.Manual): its Wall is the monitor's Now,
// and Advance lets time pass.
func newClock() *steady.Manual {
	return steady.NewManual(time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC), time.Hour)
}

func codes(h Health) (out []string) {
	for _, p := range h.Problems {
		out = append(out, p.Code)
	}
	return
}

func TestOutcomeClassifiesEveryAnswer(t *testing.T) {
	cases := []struct {
		res  *capture.Result
		err  error
		want string
	}{
		{&capture.Result{}, nil, OutcomeCaptured},
		{&capture.Result{Replayed: true}, nil, OutcomeReplayed},
		{nil, &capture.RefusedError{TransactionID: "STX_A"}, OutcomeRefused},
		{nil, fmt.Errorf("capture STX_A: %w: eof", capture.ErrOutcomeUnknown), OutcomeInDoubt},
		{nil, fmt.Errorf("capture STX_A: %w", capture.ErrUnreachable), OutcomeNotSent},
		{nil, fmt.Errorf("capture STX_A: %w: disk full", capture.ErrStorage), OutcomeStorage},
		{nil, fmt.Errorf("capture STX_A: %w (trans_id 7): %w: disk full", capture.ErrCapturedNotRecorded, capture.ErrStorage), OutcomeCaptured},
		{nil, &capture.InDoubtError{TransactionID: "STX_A", Reason: "slow"}, OutcomeInDoubt},
		{nil, capture.ErrInvalidID, OutcomeRejected},
		{nil, capture.ErrInProgress, OutcomeRejected},
		{nil, errors.New("surprise"), OutcomeError},
	}
	for _, c := range cases {
		if got := Outcome(c.res, c.err); got != c.want {
			t.Errorf("Outcome(%v, %v) = %s, want %s", c.res, c.err, got, c.want)
		}
	}
}

// TestHealthDegradesAfterGrace: a printer out of paper is no alarm for the grace period, then
// /healthz says degraded with the reason, and ok again once the roll is changed.
func TestHealthDegradesAfterGrace(t *testing.T) {
	c := newClock()
	sp := &stubSpool{}
	sp.set(printer.StateOnline, c.Wall())
	m := New(Config{Version: "1.0", Spool: sp, Now: c.Wall, PrinterGrace: 5 * time.Minute})
	if h := m.Health(); h.Status != "ok" || len(codes(h)) != 0 {
		t.Fatalf("healthy till: %v", h)
	}
	c.Advance(time.Minute)
	sp.set(printer.StatePaperOut, c.Wall())
	sp.pending = []spool.Info{{ID: "j1", Created: c.Wall()}}
	if h := m.Health(); h.Status != "ok" {
		t.Fatalf("paper out within grace: %v", h)
	}
	c.Advance(5*time.Minute + time.Second)
	h := m.Health()
	if h.Status != "degraded" || strings.Join(codes(h), ",") != "printer_not_ready" {
		t.Fatalf("paper out past grace: %v", h)
	}
	if msg := h.Problems[0].Message; !strings.Contains(msg, "paper_out for 5m1s") || !strings.Contains(msg, "1 job(s) waiting") {
		t.Errorf("message %q", msg)
	}
	st := m.Status()
	if st.Health != "degraded" || st.Printer.State != printer.StatePaperOut || !st.Printer.Since.Equal(c.Wall().Add(-5*time.Minute-time.Second)) {
		t.Errorf("status %+v", st)
	}
	if st.Queue.Jobs != 1 || st.Queue.OldestAgeSeconds != 301 {
		t.Errorf("queue %+v", st.Queue)
	}
	sp.set(printer.StateOnline, c.Wall())
	if h := m.Health(); h.Status != "ok" {
		t.Fatalf("roll changed: %v", h)
	}
}

// TestHealthUnfinishedStorageAndWorker: the other degraded states.
func TestHealthUnfinishedStorageAndWorker(t *testing.T) {
	c := newClock()
	sp := &stubSpool{}
	sp.set(printer.StateOnline, c.Wall())
	unfinished := 1
	var alive error
	m := New(Config{Spool: sp, Now: c.Wall, Unfinished: func() int { return unfinished },
		Alive: func(time.Time) error { return alive }, UnfinishedLimit: 10 * time.Minute})
	m.Refresh()
	c.Advance(11 * time.Minute)
	if got := codes(m.Health()); len(got) != 1 || got[0] != "captures_unfinished" {
		t.Fatalf("problems %v, want captures_unfinished", got)
	}
	unfinished = 0
	m.ObserveStorage("write", 0, errors.New("no space left on device"))
	alive = errors.New("spool: worker stuck (3s overdue)")
	if got := strings.Join(codes(m.Health()), ","); got != "storage,print_worker_stuck" {
		t.Fatalf("problems %v", got)
	}
	c.Advance(time.Second)
	m.ObserveStorage("fsync", time.Millisecond, nil) // the disk works again
	alive = nil
	if h := m.Health(); h.Status != "ok" {
		t.Fatalf("recovered: %v", h)
	}
}

func TestStatusLine(t *testing.T) {
	c := newClock()
	sp := &stubSpool{}
	sp.set(printer.StateOnline, c.Wall())
	for i := 0; i < 1234; i++ {
		sp.printed = append(sp.printed, c.Wall())
	}
	sp.printed = append(sp.printed, c.Wall().Add(-24*time.Hour)) // yesterday's
	m := New(Config{Spool: sp, Now: c.Wall})
	if got, want := m.StatusLine(), "printer online, 0 queued, 1,234 receipts today"; got != want {
		t.Errorf("StatusLine = %q, want %q", got, want)
	}
	if got := thousands(1234567); got != "1,234,567" {
		t.Errorf("thousands = %s", got)
	}
}

// TestMetricsText scrapes the handler after one of each event and reads the values back.
func TestMetricsText(t *testing.T) {
	c := newClock()
	sp := &stubSpool{}
	sp.set(printer.StatePaperOut, c.Wall())
	sp.pending = []spool.Info{{ID: "j1", Created: c.Wall().Add(-90 * time.Second)}, {ID: "j2", Created: c.Wall()}}
	m := New(Config{Version: "1.2.3", Spool: sp, Now: c.Wall, Unfinished: func() int { return 2 },
		TokenExpires: func() time.Time { return c.Wall().Add(20 * time.Minute) }})
	m.ObserveCapture("STX_A", &capture.Result{}, nil)
	m.ObserveCapture("STX_B", nil, &capture.RefusedError{TransactionID: "STX_B"})
	m.ObserveSecupay("capture", 200, 300*time.Millisecond, nil)
	m.ObserveSecupay("capture", 0, 3*time.Second, errors.New("timeout"))
	m.ObserveJob(spool.Info{}, nil)
	m.ObserveJob(spool.Info{}, errors.New("unplugged"))
	m.ObserveStorage("fsync", 2*time.Millisecond, nil)

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	text := rec.Body.String()
	for _, want := range []string{
		`ecrd_captures_total{outcome="captured"} 1`,
		`ecrd_captures_total{outcome="refused"} 1`,
		`ecrd_captures_total{outcome="in_doubt"} 0`,
		`ecrd_captures_total{outcome="not_sent"} 0`,
		`ecrd_secupay_request_duration_seconds_count{op="capture",status="200"} 1`,
		`ecrd_secupay_request_duration_seconds_bucket{op="capture",status="none",le="5"} 1`,
		`ecrd_print_jobs_total{result="printed"} 1`,
		`ecrd_print_jobs_total{result="failed"} 1`,
		`ecrd_queue_jobs 2`,
		`ecrd_queue_oldest_job_age_seconds 90`,
		`ecrd_printer_state{state="paper_out"} 1`,
		`ecrd_printer_state{state="online"} 0`,
		`ecrd_unfinished_captures 2`,
		`ecrd_fsync_duration_seconds_count 1`,
		`ecrd_build_info{goversion="`,
		`version="1.2.3"} 1`,
		`ecrd_secupay_token_expiry_timestamp_seconds 1.795602e+09`,
		`ecrd_degraded 0`,
		`process_open_fds`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", text)
	}
}
