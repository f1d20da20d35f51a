//go:build soak

package main

// The soak: the money guarantees of README.md ("Guarantees") under randomized chaos, against
// the real daemon binary. `make soak` runs it; `make test` never does (it takes minutes).
//
// One till (one state directory, one file printer) serves several POS goroutines that ask to
// capture random transactions of a fixed set and ask again the way a POS does: at once after a
// 504, after a pause, twice at once. secupay (the loopback fake) takes 0–3 s to process each
// start/cash and keeps working on it after the daemon's 1 s timeout gave up — so the daemon
// sees lost answers for payments secupay captures all the same — and answers some calls with
// cut bodies, proxy HTML pages and 500s, before or after capturing. A killer SIGKILLs the
// daemon every 2–10 s (sometimes SIGTERM) and restarts it on the same state directory; one
// life in three is set to kill itself at a named step of a capture (ECRD_CRASHPOINT).
//
// Then the chaos stops, the daemon restarts once cleanly, the POS asks every id until it gets
// 200 or a refusal, the queue drains, and for every transaction:
//
//  1. secupay captured it at most once, and sent no start/cash for it beyond the one that
//     captured it (the fake processes every start/cash it receives, so a second one on a
//     captured transaction is a blind retry: it arrived while the first was being processed,
//     or after it captured);
//  2. a captured transaction has at least one whole receipt on paper, the POS's final answer
//     is 200 ok, and the POS was never told "refused" for it; one secupay did not capture has
//     no receipt and no final "ok";
//  3. the cash drawer opened at most once per captured transaction, never for another.
//
// Settings (environment): ECRD_SOAK_IDS (transactions, default 200), ECRD_SOAK_DURATION
// (chaos, default 3m), ECRD_SOAK_SEED (default: the clock; printed at the start and in every
// failure), ECRD_SOAK_POS (POS goroutines, default 4). The seed fixes the plan — which
// transactions fault and how, every secupay latency per transaction in call order, each POS's
// choices, the killer's intervals — not the interleaving of processes, so a seed reproduces a
// run's kind of failure, not its exact counts.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/internal/wait"
	"github.com/ecrd-pos/ecrd/receipt"
	"github.com/ecrd-pos/ecrd/secupay/secupaytest"
)

const (
	// soakSecupayTimeout is the daemon's timeout of one secupay call; soakMaxLatency is the
	// longest secupay works on a start/cash. Most calls outlive the timeout: lost answers.
	soakSecupayTimeout = time.Second
	soakMaxLatency     = 3 * time.Second
	// soakInDoubtWait is --in-doubt-wait: after a start/cash whose answer was lost, the daemon
	// sends no other start/cash for that transaction for this long. It must exceed
	// soakMaxLatency, or a correct daemon would be blamed for a secupay slower than it waits;
	// the 2 s margin covers the fake's timers running late on a loaded machine.
	soakInDoubtWait = 5 * time.Second
	// soakSettle bounds the end: every id answered definitively, the queue drained.
	soakSettle = 3 * time.Minute
	// soakProbeID is captured alone before the chaos, to learn where the drawer kick is written.
	soakProbeID = "STX_SOAKPROBE"
)

var leakRunSoak = leakRun{warmup: 1000, total: 10000, maxRSSGrow: 5 << 20, maxFDGrow: 3}

// TestSoakSequentialCapturesNoLeak is the 10 000-capture leak test (`make test` runs 1 000).
func TestSoakSequentialCapturesNoLeak(t *testing.T) {
	testSequentialCapturesNoLeak(t, leakRunSoak)
}

func TestSoakMoney(t *testing.T) {
	cfg := soakSettingsFromEnv(t)
	s := newSoak(t, cfg)
	t.Logf("soak seed=%d ids=%d duration=%s pos=%d (reproduce: ECRD_SOAK_SEED=%d ECRD_SOAK_IDS=%d ECRD_SOAK_DURATION=%s make soak)",
		cfg.seed, cfg.ids, cfg.duration, cfg.pos, cfg.seed, cfg.ids, cfg.duration)
	s.run()
}

type soakSettings struct {
	ids      int
	duration time.Duration
	seed     int64
	pos      int
}

func soakSettingsFromEnv(t *testing.T) soakSettings {
	t.Helper()
	c := soakSettings{ids: 200, duration: 3 * time.Minute, seed: time.Now().UnixNano(), pos: 4}
	intVar := func(name string, dst *int) {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				t.Fatalf("%s=%q: want a positive number", name, v)
			}
			*dst = n
		}
	}
	intVar("ECRD_SOAK_IDS", &c.ids)
	intVar("ECRD_SOAK_POS", &c.pos)
	if v := os.Getenv("ECRD_SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("ECRD_SOAK_DURATION=%q: want a duration such as 60s", v)
		}
		c.duration = d
	}
	if v := os.Getenv("ECRD_SOAK_SEED"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("ECRD_SOAK_SEED=%q: want an integer", v)
		}
		c.seed = n
	}
	if c.ids > 99999 {
		t.Fatalf("ECRD_SOAK_IDS=%d: at most 99999", c.ids)
	}
	return c
}

func soakID(i int) string { return fmt.Sprintf("STX_SOAK%05d", i) }

// soakFault is what secupay does with the first start/cash of a transaction.
type soakFault struct {
	name  string
	fault secupaytest.Fault
	// captures: secupay captured before answering so. Otherwise the call changed nothing,
	// and one more start/cash on that transaction is legitimate.
	captures bool
}

const (
	html502 = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
	html504 = "<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n<center><h1>504 Gateway Time-out</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)

// soakFaults and their shares of the transactions; the rest see latency only.
var soakFaults = []struct {
	share float64
	f     soakFault
}{
	{0.06, soakFault{name: "cut after capture", fault: secupaytest.Fault{Cut: true, CaptureFirst: true}, captures: true}},
	{0.04, soakFault{name: "500 after capture", fault: secupaytest.Fault{Status: 500, CaptureFirst: true}, captures: true}},
	{0.04, soakFault{name: "504 html after capture", fault: secupaytest.Fault{Status: 504, Body: html504, CaptureFirst: true}, captures: true}},
	{0.04, soakFault{name: "502 html, not captured", fault: secupaytest.Fault{Status: 502, Body: html502}}},
	{0.03, soakFault{name: "504 html, not captured", fault: secupaytest.Fault{Status: 504, Body: html504}}},
	// A refusal must prove itself: 4xx answers that are not secupay's word (a proxy's, a
	// gateway's), and secupay's own "already completed", after secupay captured.
	{0.02, soakFault{name: "400 {} after capture", fault: secupaytest.Fault{Status: 400, Body: `{}`, CaptureFirst: true}, captures: true}},
	{0.02, soakFault{name: "400 status ok after capture", fault: secupaytest.Fault{Status: 400, Body: `{"status":"ok"}`, CaptureFirst: true}, captures: true}},
	{0.02, soakFault{name: "404 foreign body after capture", fault: secupaytest.Fault{Status: 404, Body: `{"message":"no route"}`, CaptureFirst: true}, captures: true}},
	{0.02, soakFault{name: "400 already completed after capture", fault: secupaytest.Fault{Status: 400, CaptureFirst: true,
		Body: secupaytest.ErrorBody("ProductInternalException", "transaction already completed", "Die Transaktion wurde bereits abgeschlossen", 1001, "soak")}, captures: true}},
}

// soak is one run.
type soak struct {
	t        *testing.T
	cfg      soakSettings
	e        *daemonEnv
	ids      []string // soakProbeID first
	plan     map[string]*soakFault
	env      []string
	inDoubt  bool // the binary has --in-doubt-wait
	logDir   string
	layout   string // where the drawer kick is: kickBeforeJob or kickAfterJob
	kick     []byte
	failures map[string]int // per guarantee, to cap the lines

	latMu   sync.Mutex
	latRand map[string]*rand.Rand

	mu        sync.Mutex
	d         *soakLife
	lives     int
	sigkills  int
	sigterms  int
	crashes   map[string]int // lives ended at their crash point
	fatal     []string       // from goroutines, reported by the test goroutine
	answers   map[string]int
	perID     map[string]map[string]int
	final     map[string]string
	unsettled map[string]string
}

// soakLife is one process of the daemon; its log goes to a file kept when the test fails.
type soakLife struct {
	n          int
	crashpoint string // ECRD_CRASHPOINT of this life: it kills itself there
	cmd        *exec.Cmd
	exited     chan struct{}
	err        error
	logPath    string
}

// soakCrashPoints are the named steps (internal/crashpoint) a life may be set to die at, one
// life in three: the killer's random moments rarely land between two writes of a capture, a
// crash point always does. after-print and mid-print leave a receipt on paper twice, and with
// it, unless the kick is written only after the receipt is marked printed, the drawer kick.
var soakCrashPoints = []string{"before-start", "after-answer", "after-journal", "after-spool", "before-print", "mid-print", "after-print"}

// diedAtCrashPoint reports whether l ended as its crash point ends a process: by SIGKILL.
func (l *soakLife) diedAtCrashPoint() bool {
	if l.crashpoint == "" {
		return false
	}
	ws, ok := l.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

const (
	kickBeforeJob = "kick as the first bytes of the receipt job"
	kickAfterJob  = "kick written after the receipt job printed"
)

func newSoak(t *testing.T, cfg soakSettings) *soak {
	s := &soak{t: t, cfg: cfg, e: newDaemonEnv(t), plan: map[string]*soakFault{}, failures: map[string]int{},
		latRand: map[string]*rand.Rand{}, answers: map[string]int{}, perID: map[string]map[string]int{},
		final: map[string]string{}, crashes: map[string]int{}, unsettled: map[string]string{}, kick: receipt.DrawerKick(0)}
	dir, err := os.MkdirTemp("", "ecrd-soak-logs-")
	if err != nil {
		t.Fatal(err)
	}
	s.logDir = dir
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("[seed %d] daemon logs kept in %s (one file per life)", cfg.seed, dir)
			return
		}
		os.RemoveAll(dir)
	})

	rng := rand.New(rand.NewSource(cfg.seed))
	s.ids = append(s.ids, soakProbeID)
	for i := range cfg.ids {
		id := soakID(i)
		s.ids = append(s.ids, id)
		x := rng.Float64()
		for _, f := range soakFaults {
			if x < f.share {
				sf := f.f
				sf.fault.Op, sf.fault.ID = "start", id
				s.plan[id] = &sf
				break
			}
			x -= f.share
		}
	}

	help, _ := exec.Command(ecrdBin, "serve", "-h").CombinedOutput()
	s.inDoubt = bytes.Contains(help, []byte("-in-doubt-wait"))
	s.env = []string{
		"ECRD_SOCKET=" + s.e.socket,
		"ECRD_STATE_DIR=" + s.e.state,
		"ECRD_SECUPAY_URL=" + s.e.fake.URL,
		"ECRD_TOKEN_FILE=" + s.e.tokenFile,
		"ECRD_PRINTER=file:" + s.e.printerFile,
		"ECRD_PRINTER_POLL=20ms",
		"ECRD_PRINT_WAIT=200ms",
		"ECRD_SECUPAY_TIMEOUT=" + soakSecupayTimeout.String(),
		"ECRD_RESOLVE_INTERVAL=200ms",
		"ECRD_DRAWER_KICK=0",
		"ECRD_LOG_LEVEL=info",
	}
	if s.inDoubt {
		s.env = append(s.env, "ECRD_IN_DOUBT_WAIT="+soakInDoubtWait.String())
	}
	return s
}

// violate reports a broken guarantee; after 40 lines per guarantee only the count grows.
func (s *soak) violate(guarantee, format string, args ...any) {
	s.t.Helper()
	s.failures[guarantee]++
	if n := s.failures[guarantee]; n <= 40 {
		s.t.Errorf("[seed %d] %s: %s", s.cfg.seed, guarantee, fmt.Sprintf(format, args...))
	} else {
		s.t.Fail()
	}
}

func (s *soak) fatalf(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("[seed %d] %s", s.cfg.seed, fmt.Sprintf(format, args...))
}

// latency is secupay's processing time of one start/cash: per transaction its own seeded
// sequence, so the n-th call on an id takes the same time in every run with the seed. It
// runs under the fake's lock and must not call the fake.
func (s *soak) latency(id string) time.Duration {
	s.latMu.Lock()
	defer s.latMu.Unlock()
	r := s.latRand[id]
	if r == nil {
		h := fnv.New64a()
		h.Write([]byte(id))
		r = rand.New(rand.NewSource(s.cfg.seed ^ int64(h.Sum64())))
		s.latRand[id] = r
	}
	return time.Duration(r.Int63n(int64(soakMaxLatency) + 1))
}

// --- the daemon's lives ---

// launch starts a new life, set to die at crashpoint ("" for none), and waits until it
// answers on its socket — or died at its crash point (a queued receipt prints at start).
func (s *soak) launch(crashpoint string) (*soakLife, error) {
	s.mu.Lock()
	s.lives++
	n := s.lives
	s.mu.Unlock()
	l := &soakLife{n: n, crashpoint: crashpoint, exited: make(chan struct{}), logPath: filepath.Join(s.logDir, fmt.Sprintf("life-%03d.log", n))}
	logf, err := os.Create(l.logPath)
	if err != nil {
		return nil, err
	}
	l.cmd = exec.Command(ecrdBin, "serve")
	l.cmd.Env = append(os.Environ(), s.env...)
	l.cmd.Env = append(l.cmd.Env, "ECRD_CRASHPOINT="+crashpoint)
	l.cmd.Stdout, l.cmd.Stderr = logf, logf
	if err := l.cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	go func() { l.err = l.cmd.Wait(); logf.Close(); close(l.exited) }()
	s.t.Cleanup(func() { l.cmd.Process.Kill(); <-l.exited })
	c := socketClient(s.e.socket, 2*time.Second)
	errExited := errors.New("exited")
	err = wait.TryEvery(30*time.Second, 20*time.Millisecond, func() error {
		status, _, err := call(c, "GET", "/healthz")
		if err == nil && status == 200 {
			return nil
		}
		select {
		case <-l.exited:
			return errExited
		default:
		}
		if err == nil {
			err = fmt.Errorf("/healthz answered %d", status)
		}
		return err
	})
	switch {
	case err == errExited && l.diedAtCrashPoint():
	case err == errExited:
		return nil, fmt.Errorf("daemon life %d exited at start: %v (log %s)", n, l.err, l.logPath)
	case err != nil:
		return nil, fmt.Errorf("daemon life %d did not answer on %s within 30s: %v (log %s)", n, s.e.socket, err, l.logPath)
	}
	s.mu.Lock()
	s.d = l
	s.mu.Unlock()
	return l, nil
}

// stop ends the current life with sig and waits for it. A life that had already ended by
// itself is an error — the daemon must not die but when killed or at its crash point.
func (s *soak) stop(sig syscall.Signal) error {
	s.mu.Lock()
	l := s.d
	s.mu.Unlock()
	select {
	case <-l.exited:
		return s.ended(l)
	default:
	}
	l.cmd.Process.Signal(sig)
	select {
	case <-l.exited:
	case <-time.After(2 * time.Minute):
		l.cmd.Process.Kill()
		<-l.exited
		return fmt.Errorf("daemon life %d did not exit within 2m of %v (log %s)", l.n, sig, l.logPath)
	}
	s.mu.Lock()
	if sig == syscall.SIGKILL {
		s.sigkills++
	} else {
		s.sigterms++
		if l.err != nil {
			s.mu.Unlock()
			return fmt.Errorf("daemon life %d ended with %v after SIGTERM (log %s)", l.n, l.err, l.logPath)
		}
	}
	s.mu.Unlock()
	return nil
}

// ended accounts for a life that ended by itself: at its crash point, or an error.
func (s *soak) ended(l *soakLife) error {
	if !l.diedAtCrashPoint() {
		return fmt.Errorf("daemon life %d exited by itself: %v (log %s)", l.n, l.err, l.logPath)
	}
	s.mu.Lock()
	s.crashes[l.crashpoint]++
	s.mu.Unlock()
	return nil
}

func (s *soak) goroutineFatal(err error) {
	s.mu.Lock()
	s.fatal = append(s.fatal, err.Error())
	s.mu.Unlock()
}

// killer kills (mostly SIGKILL, one in five SIGTERM) and restarts the daemon every 2–10 s;
// a life that died at its crash point is restarted at once, as systemd's Restart= would.
func (s *soak) killer(ctx context.Context, stopAll context.CancelFunc) {
	rng := rand.New(rand.NewSource(s.cfg.seed + 7919))
	fail := func(err error) {
		s.goroutineFatal(err)
		stopAll()
	}
	for {
		s.mu.Lock()
		l := s.d
		s.mu.Unlock()
		wait := 2*time.Second + time.Duration(rng.Int63n(int64(8*time.Second)))
		sig := syscall.SIGKILL
		if rng.Intn(5) == 0 {
			sig = syscall.SIGTERM
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-l.exited:
			timer.Stop()
			if err := s.ended(l); err != nil {
				fail(err)
				return
			}
		case <-timer.C:
			if err := s.stop(sig); err != nil {
				fail(err)
				return
			}
		}
		crashpoint := ""
		if rng.Intn(3) == 0 {
			crashpoint = soakCrashPoints[rng.Intn(len(soakCrashPoints))]
		}
		if _, err := s.launch(crashpoint); err != nil {
			fail(err)
			return
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// --- the POS ---

// posAsk posts one capture and names the answer: "200 ok", "504 secupay_timeout",
// "502 secupay_refused", …, or "no answer" when the daemon was not there to answer.
func (s *soak) posAsk(ctx context.Context, c *http.Client, id string) string {
	req, err := http.NewRequestWithContext(ctx, "POST", "http://ecrd/v1/transactions/"+id+"/cash", nil)
	if err != nil {
		panic(err)
	}
	label := "no answer"
	if resp, err := c.Do(req); err == nil {
		var body struct {
			Status string `json:"status"`
			Error  struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		var raw bytes.Buffer
		_, rerr := raw.ReadFrom(resp.Body)
		resp.Body.Close()
		switch {
		case rerr != nil:
		case json.Unmarshal(raw.Bytes(), &body) != nil:
			label = fmt.Sprintf("%d (not JSON)", resp.StatusCode)
		case resp.StatusCode == 200:
			label = "200 " + body.Status
		default:
			label = fmt.Sprintf("%d %s", resp.StatusCode, body.Error.Code)
		}
	} else if ctx.Err() != nil {
		return "" // the soak ended this request, not the daemon
	}
	s.mu.Lock()
	s.answers[label]++
	if s.perID[id] == nil {
		s.perID[id] = map[string]int{}
	}
	s.perID[id][label]++
	s.mu.Unlock()
	return label
}

// pos is one point-of-sale app: it asks to capture random transactions, mostly ones it has
// not been told "ok" for, and asks again the ways a POS does. The set opens over the first
// 80 % of the run, so first captures — the ones lost answers and kills can hurt — happen
// throughout it, not only in its first seconds.
func (s *soak) pos(ctx context.Context, n int, began time.Time) {
	rng := rand.New(rand.NewSource(s.cfg.seed + int64(n)*104729))
	c := socketClient(s.e.socket, 15*time.Second)
	paid := map[string]bool{}
	soakIDs := s.ids[1:]
	for ctx.Err() == nil {
		open := 1 + int(float64(len(soakIDs))*time.Since(began).Seconds()/(0.8*s.cfg.duration.Seconds()))
		id := soakIDs[rng.Intn(min(open, len(soakIDs)))]
		if paid[id] && rng.Intn(10) < 8 {
			continue // mostly the ones not paid yet; the rest are replays
		}
		var label string
		if rng.Intn(10) == 0 {
			// Two requests for one id at once (a double tap): one may get 409.
			var wg sync.WaitGroup
			var other string
			wg.Add(1)
			go func() { defer wg.Done(); other = s.posAsk(ctx, c, id) }()
			label = s.posAsk(ctx, c, id)
			wg.Wait()
			if other == "200 ok" {
				label = other
			}
		} else {
			label = s.posAsk(ctx, c, id)
		}
		switch label {
		case "200 ok":
			paid[id] = true
			if rng.Intn(5) == 0 {
				s.posAsk(ctx, c, id) // asked again at once: a replay
			}
		case "504 secupay_timeout", "504 in_doubt":
			if rng.Intn(2) == 0 {
				if s.posAsk(ctx, c, id) == "200 ok" {
					paid[id] = true
				}
			} else {
				sleepCtx(ctx, time.Duration(rng.Int63n(int64(2*time.Second))))
			}
		case "no answer":
			sleepCtx(ctx, 100*time.Millisecond+time.Duration(rng.Int63n(int64(400*time.Millisecond))))
		default:
			sleepCtx(ctx, time.Duration(rng.Int63n(int64(500*time.Millisecond))))
		}
		// The next customer.
		sleepCtx(ctx, 50*time.Millisecond+time.Duration(rng.Int63n(int64(350*time.Millisecond))))
	}
}

// settle asks for every id until the answer is definitive: 200 ok, or 502 secupay_refused.
func (s *soak) settle() {
	deadline := time.Now().Add(soakSettle)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	work := make(chan string)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := socketClient(s.e.socket, 15*time.Second)
			for id := range work {
				last := ""
				for {
					label := s.posAsk(ctx, c, id)
					if label == "" {
						break
					}
					last = label
					if label == "200 ok" || label == "502 secupay_refused" {
						s.mu.Lock()
						s.final[id] = label
						s.mu.Unlock()
						break
					}
					if !sleepCtx(ctx, 250*time.Millisecond) {
						break
					}
				}
				if ctx.Err() != nil {
					s.mu.Lock()
					if _, ok := s.final[id]; !ok {
						s.unsettled[id] = last
					}
					s.mu.Unlock()
				}
			}
		}()
	}
	for _, id := range s.ids {
		work <- id
	}
	close(work)
	wg.Wait()
}

// waitDrained waits for the spool to be empty and no capture to be unfinished.
func (s *soak) waitDrained() {
	c := socketClient(s.e.socket, 15*time.Second)
	var last map[string]any
	err := wait.TryEvery(soakSettle, 100*time.Millisecond, func() error {
		status, body, err := call(c, "GET", "/healthz")
		if err == nil && status == 200 && json.Unmarshal(body, &last) == nil &&
			last["queued"] == float64(0) && last["unfinished_captures"] == float64(0) {
			return nil
		}
		return errors.New("not drained")
	})
	if err != nil {
		s.violate("settle", "after %s the daemon still reports %v (queued jobs, unfinished captures)", soakSettle, last)
	}
}

// --- the paper ---

// paperJob is one job in the printer file, with the transaction its text names.
type paperJob struct {
	data  []byte
	id    string // "" if it names none and no retry follows it
	whole bool
	names int // distinct transaction ids in the job
}

var soakIDText = regexp.MustCompile(`STX_SOAK[A-Z0-9]+`)

// parsePaper splits the printer file into jobs and drawer kicks. kicksAt[i] is how many
// jobs preceded the i-th kick.
func parsePaper(b, kick []byte) (jobs []paperJob, kicksAt []int) {
	addJobs := func(seg []byte) {
		for _, j := range splitJobs(seg) {
			names := map[string]bool{}
			for _, m := range soakIDText.FindAll(j, -1) {
				names[string(m)] = true
			}
			pj := paperJob{data: j, whole: wholeReceipt(j), names: len(names)}
			for n := range names {
				pj.id = n
			}
			jobs = append(jobs, pj)
		}
	}
	for {
		i := bytes.Index(b, kick)
		if i < 0 {
			addJobs(b)
			break
		}
		addJobs(b[:i])
		kicksAt = append(kicksAt, len(jobs))
		b = b[i+len(kick):]
	}
	// A job torn before its id line names no transaction. The spool prints its queue in
	// order and retries a torn job whole before anything else, so the first whole job after
	// it that starts with its bytes is that retry, and names the transaction.
	for i := range jobs {
		if jobs[i].whole || jobs[i].id != "" {
			continue
		}
		for k := i + 1; k < len(jobs); k++ {
			if jobs[k].whole && bytes.HasPrefix(jobs[k].data, jobs[i].data) {
				jobs[i].id = jobs[k].id
				break
			}
		}
	}
	return jobs, kicksAt
}

// attributeKicks counts the drawer kicks per transaction. Each belongs to the receipt job it
// was written with: the one after it when the kick is the job's first bytes (before the
// fix), the one before it when it is written after the job printed.
func attributeKicks(jobs []paperJob, kicksAt []int, layout string) (kicks map[string]int, problems []string) {
	kicks = map[string]int{}
	for k, at := range kicksAt {
		var j *paperJob
		switch {
		case layout == kickBeforeJob && at < len(jobs):
			j = &jobs[at]
		case layout == kickAfterJob && at > 0:
			j = &jobs[at-1]
			if !j.whole {
				problems = append(problems, fmt.Sprintf("kick %d follows a torn job (of %q): the drawer must open only after its receipt printed", k, j.id))
			}
		}
		if j == nil || j.id == "" {
			problems = append(problems, fmt.Sprintf("kick %d on paper (%s) belongs to no transaction's receipt (after job %d of %d)", k, layout, at, len(jobs)))
			continue
		}
		kicks[j.id]++
	}
	return kicks, problems
}

// probeLayout captures soakProbeID alone and learns from the paper where this daemon puts
// the drawer kick: before the fix it is the first bytes of the receipt job, after it a write
// of its own behind the printed receipt.
func (s *soak) probeLayout() {
	c := socketClient(s.e.socket, 15*time.Second)
	if label := s.posAsk(context.Background(), c, soakProbeID); label != "200 ok" {
		s.fatalf("the probe capture %s before the chaos, with secupay answering at once: %s", soakProbeID, label)
	}
	err := wait.TryEvery(20*time.Second, 50*time.Millisecond, func() error {
		b := readPrinterFile(s.t, s.e)
		jobs, kicks := parsePaper(b, s.kick)
		if len(kicks) > 0 && len(jobs) == 1 && jobs[0].whole {
			switch kicks[0] {
			case 0:
				s.layout = kickBeforeJob
			case 1:
				s.layout = kickAfterJob
			}
			return nil
		}
		return fmt.Errorf("%d jobs, %d kicks on paper: %q", len(jobs), len(kicks), b)
	})
	if err != nil {
		s.fatalf("guarantee 3 (drawer kick): the probe capture %s did not print one whole receipt with one drawer kick (ECRD_DRAWER_KICK=0) within 20s: %v",
			soakProbeID, err)
	}
}

// --- the run ---

func (s *soak) run() {
	for _, f := range s.plan {
		s.e.fake.Fault(f.fault)
	}
	if _, err := s.launch(""); err != nil {
		s.fatalf("%v", err)
	}
	s.probeLayout()
	s.e.fake.SetProcessingTime(s.latency)

	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.duration)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); s.killer(ctx, cancel) }()
	for n := range s.cfg.pos {
		wg.Add(1)
		go func() { defer wg.Done(); s.pos(ctx, n, began) }()
	}
	wg.Wait()
	cancel()
	if len(s.fatal) > 0 {
		s.fatalf("chaos stopped early: %s", strings.Join(s.fatal, "; "))
	}

	// The chaos stops: secupay answers at once again (work it accepted finishes meanwhile),
	// and the daemon restarts once, cleanly.
	s.e.fake.SetProcessingTime(nil)
	if err := s.stop(syscall.SIGTERM); err != nil {
		s.fatalf("%v", err)
	}
	if _, err := s.launch(""); err != nil {
		s.fatalf("%v", err)
	}
	s.settle()
	s.waitDrained()
	// A last SIGTERM finishes the job on the paper, so the printer file is final.
	if err := s.stop(syscall.SIGTERM); err != nil {
		s.fatalf("%v", err)
	}
	s.check()
}

// check asserts the guarantees for every transaction and prints the summary.
func (s *soak) check() {
	if !s.inDoubt {
		s.violate("setup", "`ecrd serve -h` lists no --in-doubt-wait (ECRD_IN_DOUBT_WAIT): the daemon ran without a bound on re-sending start/cash after a lost answer")
	}
	jobs, kicksAt := parsePaper(readPrinterFile(s.t, s.e), s.kick)
	whole, torn := map[string]int{}, map[string]int{}
	tornUnnamed, totalWhole, totalTorn := 0, 0, 0
	for i, j := range jobs {
		if j.names > 1 {
			s.violate("paper", "job %d on paper names %d transactions: jobs interleaved", i, j.names)
		}
		switch {
		case j.whole:
			totalWhole++
			if j.id == "" {
				s.violate("paper", "whole job %d on paper names no soak transaction", i)
				continue
			}
			whole[j.id]++
		default:
			totalTorn++
			if j.id == "" {
				tornUnnamed++
			} else {
				torn[j.id]++
			}
		}
	}
	kicks, problems := attributeKicks(jobs, kicksAt, s.layout)
	for _, p := range problems {
		s.violate("guarantee 3 (drawer kick)", "%s", p)
	}

	paid, refused, multiCopy := 0, 0, 0
	totalKicks := 0
	for _, id := range s.ids {
		captures := s.e.fake.Calls().Captures[id]
		starts := s.e.fake.Calls().StartCash[id]
		final, settled := s.final[id]
		if !settled {
			final = "unsettled (last answer " + strconv.Quote(s.unsettled[id]) + ")"
			s.violate("settle", "%s: no definitive answer within %s; last answer %q; answers %s", id, soakSettle, s.unsettled[id], s.answersOf(id))
		}
		totalKicks += kicks[id]
		if whole[id] > 1 {
			multiCopy++
		}
		if final == "502 secupay_refused" {
			refused++
		}
		if captures > 1 {
			s.violate("guarantee 1 (captured at most once)", "%s: secupay captured it %d times (%d start/cash calls)", id, captures, starts)
		}
		if captures == 0 {
			if whole[id]+torn[id] > 0 {
				s.violate("guarantee 2 (no receipt without payment)", "%s: secupay never captured it but the paper holds %d whole and %d torn receipts of it", id, whole[id], torn[id])
			}
			if final == "200 ok" {
				s.violate("guarantee 2 (no ok without payment)", "%s: secupay never captured it but the POS was finally told 200 ok (answers %s)", id, s.answersOf(id))
			}
			if kicks[id] > 0 {
				s.violate("guarantee 3 (drawer kick)", "%s: secupay never captured it but the drawer opened %d times for it", id, kicks[id])
			}
			continue
		}
		paid++
		// Every start/cash the fake receives either captures, or finds the transaction being
		// processed or captured — except a planned fault that captures nothing. So for a
		// captured transaction that fault is the only legitimate cause of a second start/cash
		// and of a refusal; any other refusal told the cashier "not paid" for a paid one.
		allowed, why := 1, ""
		if f := s.plan[id]; f != nil && !f.captures {
			allowed, why = 2, fmt.Sprintf(" (one more allowed: the first was answered %q without capturing)", f.name)
		}
		if r := s.perID[id]["502 secupay_refused"]; r > allowed-1 {
			s.violate("guarantee 2 (paid ⇒ never told refused)", "%s: secupay captured it but the POS was told 502 secupay_refused %d times, want at most %d%s; answers %s",
				id, r, allowed-1, why, s.answersOf(id))
		}
		if starts > allowed {
			s.violate("guarantee 1 (no second start/cash)", "%s: secupay captured it and received %d start/cash calls, want at most %d%s: a start/cash was sent while another was being processed or after the capture; POS answers %s",
				id, starts, allowed, why, s.answersOf(id))
		}
		if whole[id] < 1 {
			s.violate("guarantee 2 (paid ⇒ receipt)", "%s: secupay captured it but the paper holds %d whole receipts of it (%d torn); POS answers %s", id, whole[id], torn[id], s.answersOf(id))
		}
		if final != "200 ok" {
			s.violate("guarantee 2 (paid ⇒ POS told ok)", "%s: secupay captured it but the POS's final answer is %s; answers %s", id, final, s.answersOf(id))
		}
		if kicks[id] > 1 {
			s.violate("guarantee 3 (drawer kick at most once)", "%s: the drawer opened %d times for one payment (%d whole receipts, %d torn; %s)", id, kicks[id], whole[id], torn[id], s.layout)
		}
	}

	var answers []string
	for label, n := range s.answers {
		answers = append(answers, fmt.Sprintf("%s=%d", label, n))
	}
	sort.Strings(answers)
	var broken []string
	for g, n := range s.failures {
		broken = append(broken, fmt.Sprintf("%s: %d", g, n))
	}
	slices.Sort(broken)
	summary := fmt.Sprintf("soak seed=%d: ids=%d paid=%d refused=%d unsettled=%d; start/cash=%d, secupay captures=%d; receipts whole=%d torn=%d (torn without id %d, ids with >1 whole copy %d); drawer kicks=%d (%s); daemon lives=%d (SIGKILL %d, SIGTERM %d, died at crash point %d: %s); POS answers: %s",
		s.cfg.seed, len(s.ids), paid, refused, len(s.unsettled), s.e.fake.Calls().TotalStartCash, sumCaptures(s.e.fake, s.ids),
		totalWhole, totalTorn, tornUnnamed, multiCopy, len(kicksAt), s.layout, s.lives, s.sigkills, s.sigterms, sumCounts(s.crashes), countsOf(s.crashes), strings.Join(answers, " "))
	if len(broken) > 0 {
		s.t.Errorf("%s\nBROKEN: %s", summary, strings.Join(broken, "; "))
	} else {
		s.t.Log(summary)
	}
}

func (s *soak) answersOf(id string) string { return countsOf(s.perID[id]) }

// countsOf prints counts as "[a×2, b×1]", sorted.
func countsOf(m map[string]int) string {
	var parts []string
	for label, n := range m {
		parts = append(parts, fmt.Sprintf("%s×%d", label, n))
	}
	if len(parts) == 0 {
		return "(none)"
	}
	sort.Strings(parts)
	return "[" + strings.Join(parts, ", ") + "]"
}

func sumCounts(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func sumCaptures(f *secupaytest.Server, ids []string) int {
	n := 0
	for _, id := range ids {
		n += f.Calls().Captures[id]
	}
	return n
}

// TestSoakPaperParse checks the soak's reading of the paper on a made-up printer file, in
// both places the drawer kick can be: a kick belongs to the job it was written with, and a
// job torn before its id line belongs to the whole retry that follows it.
func TestSoakPaperParse(t *testing.T) {
	kick := receipt.DrawerKick(0)
	job := func(id string) []byte {
		b := append([]byte(nil), jobStart...)
		b = append(b, "------ Barzahlung ------\nVorgang: "+id+"\n7,96 EUR\n"...)
		return append(b, 0x1d, 0x56, 66, 0)
	}
	a, b := job(soakID(1)), job(soakID(2))
	tornB := b[:12] // cut before the id line
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, c := range []struct {
		layout string
		paper  []byte
	}{
		{kickBeforeJob, cat(kick, a, kick, tornB, kick, b)},
		{kickAfterJob, cat(a, kick, tornB, b, kick)},
	} {
		jobs, kicksAt := parsePaper(c.paper, kick)
		var got []string
		for _, j := range jobs {
			got = append(got, fmt.Sprintf("%s/%v", j.id, j.whole))
		}
		want := []string{soakID(1) + "/true", soakID(2) + "/false", soakID(2) + "/true"}
		if !slices.Equal(got, want) {
			t.Errorf("%s: jobs %v, want %v", c.layout, got, want)
		}
		kicks, problems := attributeKicks(jobs, kicksAt, c.layout)
		if len(problems) > 0 {
			t.Errorf("%s: %v", c.layout, problems)
		}
		wantKicks := map[string]int{soakID(1): 1, soakID(2): 2}
		if c.layout == kickAfterJob {
			wantKicks[soakID(2)] = 1
		}
		if fmt.Sprint(kicks) != fmt.Sprint(wantKicks) {
			t.Errorf("%s: kicks %v, want %v", c.layout, kicks, wantKicks)
		}
	}
}
