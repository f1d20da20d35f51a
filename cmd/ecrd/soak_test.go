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
	"fmt"
	"hash/fnv"
	"math/rand"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

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
