package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/internal/wait"
	"github.com/ecrd-pos/ecrd/secupay/secupaytest"
)

// ecrdBin is the daemon binary the tests start as a real process. It is built as the package
// builds it, with the crashpoints tag added so that crash tests can stop it at a named step;
// without ECRD_CRASHPOINT it behaves exactly like a release build.
var ecrdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ecrd-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ecrdBin = filepath.Join(dir, "ecrd")
	// Built as the package builds it (scripts/build-ecrd), so that the tests start and measure
	// what a till runs, with the crash points added.
	build := exec.Command("../../scripts/build-ecrd", ecrdBin, "", "crashpoints")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building ecrd:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// daemonEnv is one till: a state directory, a printer file, a token file, and the
// loopback secupay fake, shared across restarts of the daemon process.
type daemonEnv struct {
	t           *testing.T
	dir         string
	fake        *secupaytest.Server
	socket      string
	state       string
	printerFile string
	tokenFile   string
	extraEnv    []string
	wrap        []string // a command the daemon runs under (strace to inject faults)
}

func newDaemonEnv(t *testing.T) *daemonEnv {
	t.Helper()
	fake := secupaytest.NewServer()
	t.Cleanup(fake.Close)
	fake.AddSeed()
	fake.SetAutoCreate(true)
	// Unix socket paths are limited to 108 bytes; t.TempDir() can be longer.
	dir, err := os.MkdirTemp("", "ecrd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	e := &daemonEnv{t: t, dir: dir, fake: fake, socket: filepath.Join(dir, "ecrd.sock"),
		state: filepath.Join(dir, "state"), printerFile: filepath.Join(dir, "printer.bin"),
		tokenFile: filepath.Join(dir, "token")}
	if err := os.WriteFile(e.tokenFile, []byte(fake.Token()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// proc is one life of the daemon.
type proc struct {
	cmd    *exec.Cmd
	logs   *syncBuffer
	exited chan struct{}
	err    error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// start runs `ecrd serve` configured through ECRD_ variables (as systemd's EnvironmentFile
// would) and waits until its socket answers.
func (e *daemonEnv) start(env ...string) *proc {
	e.t.Helper()
	p := e.launch(env...)
	if err := e.waitHealthy(p); err != nil {
		e.t.Fatalf("daemon did not answer on %s: %v\n%s", e.socket, err, p.logs)
	}
	return p
}

// waitHealthy waits until the daemon answers /healthz with 200, failing the test at once if
// it exits instead. It asks every 10 ms: each question is a request the daemon serves.
func (e *daemonEnv) waitHealthy(p *proc) error {
	e.t.Helper()
	return wait.TryEvery(20*time.Second, 10*time.Millisecond, func() error {
		status, _, err := e.request("GET", "/healthz")
		if err == nil && status == 200 {
			return nil
		}
		select {
		case <-p.exited:
			e.t.Fatalf("daemon exited at start: %v\n%s", p.err, p.logs)
		default:
		}
		if err == nil {
			err = fmt.Errorf("/healthz answered %d", status)
		}
		return err
	})
}

func (e *daemonEnv) launch(env ...string) *proc {
	e.t.Helper()
	argv := append(append([]string(nil), e.wrap...), ecrdBin, "serve")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(),
		"ECRD_SOCKET="+e.socket,
		"ECRD_STATE_DIR="+e.state,
		"ECRD_SECUPAY_URL="+e.fake.URL,
		"ECRD_TOKEN_FILE="+e.tokenFile,
		"ECRD_PRINTER=file:"+e.printerFile,
		"ECRD_PRINTER_POLL=20ms",
		"ECRD_PRINT_WAIT=5s",
		"ECRD_SECUPAY_TIMEOUT=3s",
		"ECRD_LOG_LEVEL=debug",
	)
	cmd.Env = append(cmd.Env, e.extraEnv...)
	cmd.Env = append(cmd.Env, env...)
	p := &proc{cmd: cmd, logs: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	// Its own process group, so that a kill reaches a wrapped daemon (under strace) too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	e.t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
		if e.t.Failed() {
			e.t.Logf("daemon log:\n%s", p.logs)
		}
	})
	return p
}

// kill ends the daemon with SIGKILL: no cleanup runs, as on a power cut.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	p.wait(t)
}

func (p *proc) wait(t *testing.T) {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("daemon did not exit\n%s", p.logs)
	}
}

func (e *daemonEnv) client() *http.Client { return socketClient(e.socket, 30*time.Second) }

func (e *daemonEnv) request(method, path string) (int, []byte, error) {
	return call(e.client(), method, path)
}

func (e *daemonEnv) capture(id string) (int, map[string]any) {
	e.t.Helper()
	status, body, err := e.request("POST", "/v1/transactions/"+id+"/cash")
	if err != nil {
		e.t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		e.t.Fatalf("answer %q: %v", body, err)
	}
	return status, out
}

// receipts parses the printer file back into jobs: each starts with ESC @ ESC R 0.
func (e *daemonEnv) receipts() [][]byte {
	e.t.Helper()
	b, err := os.ReadFile(e.printerFile)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return splitJobs(b)
}

var jobStart = []byte{0x1b, 0x40, 0x1b, 0x52, 0x00}

func splitJobs(b []byte) [][]byte {
	var jobs [][]byte
	for len(b) > 0 {
		next := bytes.Index(b[1:], jobStart)
		if next < 0 {
			jobs = append(jobs, b)
			break
		}
		jobs = append(jobs, b[:next+1])
		b = b[next+1:]
	}
	return jobs
}

// wholeReceipt reports whether job is one complete receipt: it starts with the
// initialisation and ends with the feed-and-cut.
func wholeReceipt(job []byte) bool {
	return bytes.HasPrefix(job, jobStart) && len(job) > 4 && bytes.Equal(job[len(job)-4:len(job)-1], []byte{0x1d, 0x56, 66})
}

// waitReceipts waits until the printer file holds n receipts, and returns what it holds then
// (fewer after 20 s: the caller says what that means).
func (e *daemonEnv) waitReceipts(n int) [][]byte {
	e.t.Helper()
	var r [][]byte
	wait.Try(20*time.Second, func() error {
		if r = e.receipts(); len(r) < n {
			return fmt.Errorf("%d receipts", len(r))
		}
		return nil
	})
	return r
}

func jobOf(out map[string]any) map[string]any {
	j, _ := out["job"].(map[string]any)
	return j
}

func TestDaemonCapturesOncePrintsOnce(t *testing.T) {
	e := newDaemonEnv(t)
	e.start()
	status, out := e.capture(secupaytest.SeedID)
	if status != 200 || out["status"] != "ok" || jobOf(out)["state"] != "printed" {
		t.Fatalf("capture: %d %v", status, out)
	}
	status, out = e.capture(secupaytest.SeedID)
	if status != 200 || out["replayed"] != true {
		t.Fatalf("repeat: %d %v", status, out)
	}
	if n := e.fake.Calls().StartCash[secupaytest.SeedID]; n != 1 {
		t.Fatalf("%d start/cash calls", n)
	}
	r := e.receipts()
	if len(r) != 1 || !wholeReceipt(r[0]) {
		t.Fatalf("%d receipts in the printer file (whole: %v)", len(r), len(r) == 1 && wholeReceipt(r[0]))
	}
}

// TestDaemonRunsWithoutHugePages: the daemon executes itself again with transparent huge pages
// off (hugepages.go), as the same process: the process the test started is the one that
// answers, its second execution says so (once), and the kernel reports huge pages disabled
// for it. Socket activation across that second execution is TestDaemonSocketActivation's.
func TestDaemonRunsWithoutHugePages(t *testing.T) {
	e := newDaemonEnv(t)
	e.extraEnv = []string{"ECRD_LOG_LEVEL=debug"}
	p := e.start()
	if n := strings.Count(p.logs.String(), "executed again without transparent huge pages"); n != 1 {
		t.Fatalf("the daemon said %d times that it executed again, want once:\n%s", n, p.logs)
	}
	if status, out := e.capture(secupaytest.SeedID); status != 200 || out["status"] != "ok" {
		t.Fatalf("capture: %d %v", status, out)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	var thp string
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "THP_enabled:"); ok {
			thp = strings.TrimSpace(v)
		}
	}
	if thp != "0" {
		t.Fatalf("THP_enabled %q in the daemon's status, want 0", thp)
	}
}

// TestDaemonRunsOnOneP: one P unless GOMAXPROCS says otherwise (tillProcs in serve.go), and
// the start's log line says which.
func TestDaemonRunsOnOneP(t *testing.T) {
	e := newDaemonEnv(t)
	for _, c := range []struct{ env, want string }{{"GOMAXPROCS=", `"gomaxprocs":1`}, {"GOMAXPROCS=3", `"gomaxprocs":3`}} {
		e.extraEnv = []string{c.env}
		p := e.start()
		if status, out := e.capture(secupaytest.SeedID); status != 200 || out["status"] != "ok" {
			t.Fatalf("%s: capture: %d %v", c.env, status, out)
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		p.wait(t)
		var serving string
		for _, line := range strings.Split(p.logs.String(), "\n") {
			if strings.Contains(line, `"ecrd serving"`) {
				serving = line
			}
		}
		if !strings.Contains(serving, c.want) {
			t.Fatalf("%s: the start's line %q, want %s", c.env, serving, c.want)
		}
	}
}

func TestDaemonSecupayErrors(t *testing.T) {
	e := newDaemonEnv(t)
	e.start()
	e.fake.Fault(secupaytest.Fault{Op: "start", Status: 404,
		Body: `{"status":"error","error":"ProductNotFoundException","error_details":"Not found","error_user":"Transaktion unbekannt","code":1002,"supportId":"abc123"}`})
	status, out := e.capture(secupaytest.SeedID)
	info, _ := out["error"].(map[string]any)
	if status != 502 || info["error_user"] != "Transaktion unbekannt" || info["support_id"] != "abc123" {
		t.Fatalf("refusal: %d %v", status, out)
	}
	e.fake.Fault(secupaytest.Fault{Op: "start", Cut: true})
	e.fake.Fault(secupaytest.Fault{Op: "get", Body: "{truncated"})
	status, out = e.capture(secupaytest.SeedID)
	if status != 504 {
		t.Fatalf("lost answer: %d %v", status, out)
	}
	if r := e.receipts(); len(r) != 0 {
		t.Fatalf("%d receipts printed after errors", len(r))
	}
	// Secupay answers again: the capture goes through, once.
	status, out = e.capture(secupaytest.SeedID)
	if status != 200 || jobOf(out)["state"] != "printed" {
		t.Fatalf("after recovery: %d %v", status, out)
	}
	if n := e.fake.Calls().Captures[secupaytest.SeedID]; n != 1 {
		t.Fatalf("captured %d times", n)
	}
}

func TestDaemonPaperOutQueuesThenPrints(t *testing.T) {
	e := newDaemonEnv(t)
	os.WriteFile(e.printerFile+".status", []byte("paper_out\n"), 0o644)
	e.start()
	status, out := e.capture(secupaytest.SeedID)
	job := jobOf(out)
	if status != 200 || job["state"] != "queued" || !strings.Contains(fmt.Sprint(job["error"]), "paper_out") {
		t.Fatalf("capture with paper out: %d %v", status, out)
	}
	if r := e.receipts(); len(r) != 0 {
		t.Fatal("printed while paper out")
	}
	os.WriteFile(e.printerFile+".status", []byte("online\n"), 0o644)
	if r := e.waitReceipts(1); len(r) != 1 || !wholeReceipt(r[0]) {
		t.Fatalf("%d receipts after the paper came back", len(r))
	}
}

func TestDaemonKilledAfterAnswerPrintsOnRestart(t *testing.T) {
	for _, point := range []string{"after-answer", "after-journal"} {
		t.Run(point, func(t *testing.T) {
			e := newDaemonEnv(t)
			p := e.launch("ECRD_CRASHPOINT=" + point)
			if err := e.waitHealthy(p); err != nil {
				t.Fatalf("no daemon: %v\n%s", err, p.logs)
			}
			if _, _, err := e.request("POST", "/v1/transactions/"+secupaytest.SeedID+"/cash"); err == nil {
				t.Fatal("the daemon answered although it should have died at " + point)
			}
			p.wait(t)
			if e.fake.Calls().Captures[secupaytest.SeedID] != 1 {
				t.Fatal("secupay did not capture before the crash")
			}
			if r := e.receipts(); len(r) != 0 {
				t.Fatalf("printed before the crash point")
			}
			e.start()
			if r := e.waitReceipts(1); len(r) != 1 || !wholeReceipt(r[0]) {
				t.Fatalf("%d receipts after restart", len(r))
			}
			status, out := e.capture(secupaytest.SeedID)
			if status != 200 || out["status"] != "ok" {
				t.Fatalf("asked again after restart: %d %v", status, out)
			}
			if n := e.fake.Calls().StartCash[secupaytest.SeedID]; n != 1 {
				t.Fatalf("%d start/cash calls", n)
			}
			if r := e.receipts(); len(r) != 1 {
				t.Fatalf("%d receipts", len(r))
			}
		})
	}
}

func TestDaemonGracefulStop(t *testing.T) {
	e := newDaemonEnv(t)
	p := e.start()
	if status, _ := e.capture(secupaytest.SeedID); status != 200 {
		t.Fatal("capture failed")
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.wait(t)
	if p.err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", p.err, p.logs)
	}
}

func TestDaemonLogsNeverHoldTheToken(t *testing.T) {
	e := newDaemonEnv(t)
	p := e.start()
	token := e.fake.Token()
	if len(token) < 8 {
		t.Fatalf("token %q too short to search for", token)
	}
	e.capture(secupaytest.SeedID)
	e.fake.ExpireToken() // refused: the token is in every request that fails
	e.capture("STX_SECONDONE")
	logs := p.logs.String()
	if !strings.Contains(logs, secupaytest.SeedID) {
		t.Fatalf("logs do not name the transaction:\n%s", logs)
	}
	if strings.Contains(logs, token) {
		t.Fatalf("the token appears in the log:\n%s", logs)
	}
	// Every log line about a capture carries the transaction id.
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		if strings.Contains(line, "capture") && !strings.Contains(line, `"transaction_id"`) && !strings.Contains(line, "ecrd serving") {
			t.Errorf("capture log line without transaction_id: %s", line)
		}
	}
}

func TestDaemonRefusesReadableTokenFile(t *testing.T) {
	e := newDaemonEnv(t)
	os.Chmod(e.tokenFile, 0o644)
	p := e.launch()
	p.wait(t)
	if p.err == nil || !strings.Contains(p.logs.String(), e.tokenFile) {
		t.Fatalf("daemon started with a world-readable token file: %v\n%s", p.err, p.logs)
	}
}

func TestDaemonSecondInstanceRefused(t *testing.T) {
	e := newDaemonEnv(t)
	e.start()
	other := filepath.Join(e.dir, "other.sock")
	p := e.launch("ECRD_SOCKET=" + other)
	p.wait(t)
	if p.err == nil || !strings.Contains(p.logs.String(), "in use by another ecrd") {
		t.Fatalf("a second daemon on the same state directory started: %v\n%s", p.err, p.logs)
	}
}

func TestCaptureCommand(t *testing.T) {
	e := newDaemonEnv(t)
	e.start()
	var out, errb bytes.Buffer
	code := run([]string{"capture", "--socket", e.socket, secupaytest.SeedID}, nil, &out, &errb)
	var ans map[string]any
	if code != 0 || json.Unmarshal(out.Bytes(), &ans) != nil || ans["status"] != "ok" {
		t.Fatalf("ecrd capture: exit %d, out %q, err %q", code, out.String(), errb.String())
	}
	out.Reset()
	code = run([]string{"capture", "--socket", e.socket, "STX_../../etc"}, nil, &out, &errb)
	if code != 1 || !strings.Contains(out.String(), "invalid_id") {
		t.Fatalf("bad id: exit %d, out %q", code, out.String())
	}
	out.Reset()
	code = run([]string{"status", "--socket", e.socket}, nil, &out, &errb)
	if code != 0 || !strings.Contains(out.String(), "online") {
		t.Fatalf("ecrd status: exit %d, out %q", code, out.String())
	}
	// The fake printer cannot tell its model: status says which profile is used and why.
	if !strings.Contains(out.String(), "model:    generic (generic: file:") || !strings.Contains(out.String(), "set --model") {
		t.Fatalf("ecrd status does not show the model and why: %q", out.String())
	}
	code = run([]string{"capture", "--socket", filepath.Join(e.dir, "none.sock"), secupaytest.SeedID}, nil, io.Discard, &errb)
	if code != 1 || !strings.Contains(errb.String(), "not reachable") {
		t.Fatalf("no daemon: exit %d, err %q", code, errb.String())
	}
}

func TestServeConfigErrors(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	os.WriteFile(tok, []byte("tok"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	open := filepath.Join(dir, "open")
	os.WriteFile(open, []byte("tok"), 0o644)
	for _, c := range []struct {
		env  []string
		args []string
		want string
	}{
		{[]string{"ECRD_SECUPAY_URL=", "ECRD_PRINTER=file:/tmp/x"}, nil, "--secupay-url"},
		{[]string{"ECRD_SECUPAY_URL=http://127.0.0.1:1", "ECRD_PRINTER="}, nil, "--printer"},
		{nil, []string{"--paper", "99mm"}, "99mm"},
		{nil, []string{"my-secret-token"}, "never from the command line"},
		{[]string{"ECRD_PRINT_WAIT=soon"}, nil, "ECRD_PRINT_WAIT"},
		// Configuration that would make every capture fail is refused at start, not answered
		// "in doubt" on every capture.
		{[]string{"ECRD_TOKEN_FILE=" + filepath.Join(dir, "missing")}, nil, "no such file"},
		{[]string{"ECRD_TOKEN_FILE=" + empty}, nil, "is empty"},
		{[]string{"ECRD_TOKEN_FILE=" + open}, nil, "group or others may access it"},
		{[]string{"ECRD_TOKEN_FILE=" + tok, "ECRD_SECUPAY_URL=http://connect.secucard.com"}, nil, "use https"},
		{[]string{"ECRD_TOKEN_FILE=" + tok, "ECRD_SECUPAY_URL=connect.secucard.com"}, nil, "--secupay-url"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		cmd := exec.CommandContext(ctx, ecrdBin, append([]string{"serve"}, c.args...)...)
		cmd.Env = append(os.Environ(), "ECRD_STATE_DIR="+t.TempDir(), "ECRD_SOCKET="+filepath.Join(t.TempDir(), "s"),
			"ECRD_SECUPAY_URL=http://127.0.0.1:1", "ECRD_PRINTER=file:"+filepath.Join(t.TempDir(), "p"))
		cmd.Env = append(cmd.Env, c.env...)
		out, err := cmd.CombinedOutput()
		cancel()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), c.want) {
			t.Errorf("serve %v %v: %v, %q; want exit 2 mentioning %q", c.env, c.args, err, out, c.want)
		}
	}
}
