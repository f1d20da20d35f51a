package main

import (
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/internal/wait"
	"github.com/ecrd-pos/ecrd/secupay/secupaytest"
)

const testHTTPToken = "6f1d2c3b4a5968778695a4b3c2d1e0f1"

// freePort is a loopback port nothing listens on now (it may be taken again before the daemon
// binds it, as with any such helper; the daemon then fails to start and says so).
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// writeHTTPToken writes the listener's token as the package does: 0640.
func writeHTTPToken(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "http-token")
	if err := os.WriteFile(path, []byte(testHTTPToken+"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o640); err != nil { // whatever the umask
		t.Fatal(err)
	}
	return path
}

// browserCall sends one request to the browser listener at base as a page (origin set) or a
// native client would; host, if set, replaces the Host header.
func browserCall(t *testing.T, method, base, path, token, origin, host string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	json.Unmarshal(b, &out)
	return resp.StatusCode, resp.Header, out
}

func errorCode(out map[string]any) string {
	e, _ := out["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

// TestDaemonBrowserListener starts the built daemon with the listener on as the package's env
// file turns it on, captures through it from an allowed page, and finds the same payment on the
// socket; refusals never reach secupay; `ecrd pair` prints the URL and token from the env file;
// SIGTERM lets a capture in flight on the listener finish.
func TestDaemonBrowserListener(t *testing.T) {
	e := newDaemonEnv(t)
	tokenFile := writeHTTPToken(t, e.dir)
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	base := "http://" + addr
	const origin = "https://pos.example.com"
	envFile := filepath.Join(e.dir, "ecrd.env")
	settings := []string{"ECRD_HTTP_LISTEN=" + addr, "ECRD_HTTP_TOKEN_FILE=" + tokenFile,
		"ECRD_ALLOW_ORIGIN=" + origin + ", http://localhost:3000"}
	if err := os.WriteFile(envFile, []byte("# as the package's, uncommented\n"+strings.Join(settings, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := e.start(settings...)
	if !strings.Contains(p.logs.String(), `"browser listener"`) {
		t.Fatalf("no browser listener in the log:\n%s", p.logs)
	}

	status, hd, out := browserCall(t, "POST", base, "/v1/transactions/"+secupaytest.SeedID+"/cash", testHTTPToken, origin, "")
	if status != 200 || out["outcome"] != "captured" || hd.Get("Access-Control-Allow-Origin") != origin || len(hd.Values("Set-Cookie")) > 0 {
		t.Fatalf("capture through the listener: %d %v %v", status, hd, out)
	}
	// The socket holds the same journal: the same id is a replay there.
	if status, out := e.capture(secupaytest.SeedID); status != 200 || out["replayed"] != true {
		t.Fatalf("socket after the listener's capture: %d %v", status, out)
	}

	for _, c := range []struct {
		name, token, origin, host string
		status                    int
		code                      string
	}{
		{"foreign page", testHTTPToken, "https://evil.example", "", 403, "origin_not_allowed"},
		{"no token", "", origin, "", 401, "unauthorized"},
		{"wrong token", strings.Repeat("x", 32), "", "", 401, "unauthorized"},
		{"rebound name", testHTTPToken, origin, "evil.example:" + strings.TrimPrefix(addr, "127.0.0.1:"), 421, "host_not_allowed"},
	} {
		status, hd, out := browserCall(t, "POST", base, "/v1/transactions/STX_REFUSED1/cash", c.token, c.origin, c.host)
		if status != c.status || errorCode(out) != c.code || len(hd.Values("Set-Cookie")) > 0 {
			t.Errorf("%s: %d %v", c.name, status, out)
		}
	}
	if n := e.fake.Calls().StartCash["STX_REFUSED1"]; n != 0 {
		t.Fatalf("refused requests reached secupay: %d start/cash", n)
	}

	// ecrd pair reads the same env file and finds the listener answering.
	code, stdout, stderr := runCLI(t, "", "pair", "--env-file", envFile)
	if code != 0 || !strings.Contains(stdout, "url:     "+base+"\n") || !strings.Contains(stdout, "token:   "+testHTTPToken+"\n") ||
		!strings.Contains(stdout, "origins: "+origin+" http://localhost:3000\n") || stderr != "" {
		t.Fatalf("ecrd pair: exit %d\n%s\nstderr: %s", code, stdout, stderr)
	}

	// A capture in flight on the listener when SIGTERM comes is finished and answered.
	e.fake.Fault(secupaytest.Fault{Op: "start", ID: "STX_INFLIGHT", Delay: 500 * time.Millisecond})
	answered := make(chan int, 1)
	go func() {
		status, _, _ := browserCall(t, "POST", base, "/v1/transactions/STX_INFLIGHT/cash", testHTTPToken, "", "")
		answered <- status
	}()
	wait.For(t, 10*time.Second, "the capture at secupay", func() error {
		if e.fake.Calls().StartCash["STX_INFLIGHT"] == 0 {
			return errors.New("the capture has not reached secupay")
		}
		return nil
	})
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case s := <-answered:
		if s != 200 {
			t.Errorf("capture in flight at SIGTERM: %d", s)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("capture in flight at SIGTERM: no answer")
	}
	p.wait(t)
	if p.err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", p.err, p.logs)
	}
}

// The daemon refuses, with exit 2 and a clear line, a listener other hosts could reach, one
// without a token, a token others may read, and an origin that is not one.
func TestDaemonBrowserListenerRefusesBadSettings(t *testing.T) {
	e := newDaemonEnv(t)
	tokenFile := writeHTTPToken(t, e.dir)
	open := filepath.Join(e.dir, "open-token")
	os.WriteFile(open, []byte(testHTTPToken), 0o644)
	os.Chmod(open, 0o644)
	for _, c := range []struct {
		env  []string
		says string
	}{
		{[]string{"ECRD_HTTP_LISTEN=0.0.0.0:0", "ECRD_HTTP_TOKEN_FILE=" + tokenFile}, "not a loopback address"},
		{[]string{"ECRD_HTTP_LISTEN=127.0.0.1:0"}, "needs --http-token-file"},
		{[]string{"ECRD_HTTP_LISTEN=127.0.0.1:0", "ECRD_HTTP_TOKEN_FILE=" + open}, "others may read it"},
		{[]string{"ECRD_HTTP_LISTEN=127.0.0.1:0", "ECRD_HTTP_TOKEN_FILE=" + tokenFile, "ECRD_ALLOW_ORIGIN=*"}, "wildcard"},
	} {
		p := e.launch(c.env...)
		p.wait(t)
		var ee *exec.ExitError
		if !errors.As(p.err, &ee) || ee.ExitCode() != 2 || !strings.Contains(p.logs.String(), c.says) {
			t.Errorf("%v: %v, want exit 2 saying %q\n%s", c.env, p.err, c.says, p.logs)
		}
	}
}

// ECRD_ALLOW_ORIGIN takes several origins separated by spaces or commas; --allow-origin on the
// command line replaces them (a flag given explicitly wins) and may be repeated.
func TestAllowOriginFromEnvironmentAndFlags(t *testing.T) {
	origins := func(args ...string) ([]string, error) {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var b browserFlags
		b.register(fs)
		err := parse(fs, args, true)
		return b.origins.list, err
	}
	t.Setenv("ECRD_ALLOW_ORIGIN", "https://a.example, https://B.example:443\thttp://localhost:3000,")
	got, err := origins()
	if err != nil || strings.Join(got, " ") != "https://a.example https://b.example http://localhost:3000" {
		t.Fatalf("from the environment: %v %v", got, err)
	}
	got, err = origins("--allow-origin", "https://c.example", "--allow-origin", "https://d.example,https://e.example")
	if err != nil || strings.Join(got, " ") != "https://c.example https://d.example https://e.example" {
		t.Fatalf("flags over the environment: %v %v", got, err)
	}
	t.Setenv("ECRD_ALLOW_ORIGIN", "https://a.example/till")
	if _, err := origins(); !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "ECRD_ALLOW_ORIGIN") {
		t.Fatalf("a path: %v", err)
	}
}

func TestReadHTTPToken(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), mode)
		os.Chmod(p, mode)
		return p
	}
	if tok, err := readHTTPToken(write("ok", testHTTPToken+"\n", 0o640)); err != nil || tok != testHTTPToken {
		t.Fatalf("0640: %q %v", tok, err)
	}
	if tok, err := readHTTPToken(write("ok600", " "+testHTTPToken+" \n", 0o600)); err != nil || tok != testHTTPToken {
		t.Fatalf("0600: %q %v", tok, err)
	}
	for name, c := range map[string]struct {
		content string
		mode    os.FileMode
		says    string
	}{
		"world-readable": {testHTTPToken, 0o644, "others may read"},
		"group-writable": {testHTTPToken, 0o660, "group may write"},
		"empty":          {"\n", 0o600, "empty"},
		"short":          {"abc123", 0o600, "at least 16"},
		"two lines":      {testHTTPToken + "\n" + testHTTPToken, 0o600, "one token"},
		"spaces":         {"a token with spaces inside", 0o600, "one token"},
		"huge":           {strings.Repeat("a", 5000), 0o600, "larger than 4 KiB"},
	} {
		if _, err := readHTTPToken(write(name, c.content, c.mode)); err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v, want an error saying %q", name, err, c.says)
		}
	}
	if _, err := readHTTPToken(dir); err == nil {
		t.Error("a directory: accepted")
	}
	if _, err := readHTTPToken(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file: accepted")
	}
}

// ecrd pair: from the env file, with the environment and flags winning over it; a clear
// refusal when the listener is not configured.
func TestPair(t *testing.T) {
	dir := t.TempDir()
	tok := writeHTTPToken(t, dir)
	env := filepath.Join(dir, "ecrd.env")
	os.WriteFile(env, []byte(`# settings
ECRD_PRINTER=file:/tmp/x
; a comment
ECRD_HTTP_LISTEN="[::1]:8765"
ECRD_HTTP_TOKEN_FILE=http-token
ECRD_ALLOW_ORIGIN='https://pos.example.com'
`), 0o644)
	for _, k := range []string{"ECRD_HTTP_LISTEN", "ECRD_HTTP_TOKEN_FILE", "ECRD_ALLOW_ORIGIN", "ECRD_ENV_FILE", "CREDENTIALS_DIRECTORY"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	// Nothing listens there: pair still prints, and says so on stderr.
	code, out, errs := runCLI(t, "", "pair", "--env-file", env)
	if code != 0 || out != "url:     http://[::1]:8765\ntoken:   "+testHTTPToken+"\norigins: https://pos.example.com\n" ||
		!strings.Contains(errs, "does not answer") {
		t.Fatalf("pair: %d %q %q", code, out, errs)
	}
	t.Setenv("ECRD_HTTP_LISTEN", "localhost:9000")
	code, out, _ = runCLI(t, "", "pair", "--env-file", env, "--http-token-file", tok, "--allow-origin", "http://127.0.0.1:3000")
	if code != 0 || !strings.HasPrefix(out, "url:     http://localhost:9000\n") || !strings.Contains(out, "origins: http://127.0.0.1:3000\n") {
		t.Fatalf("pair with the environment and flags: %d %q", code, out)
	}
	os.Unsetenv("ECRD_HTTP_LISTEN")

	bare := filepath.Join(dir, "bare.env")
	os.WriteFile(bare, []byte("ECRD_PRINTER=file:/tmp/x\n#ECRD_HTTP_LISTEN=127.0.0.1:8765\n"), 0o644)
	if code, _, errs := runCLI(t, "", "pair", "--env-file", bare); code != 1 || !strings.Contains(errs, "not configured") {
		t.Fatalf("pair without a listener: %d %q", code, errs)
	}
	if code, _, errs := runCLI(t, "", "pair", "--env-file", filepath.Join(dir, "none.env")); code != 1 || !strings.Contains(errs, "no such file") {
		t.Fatalf("pair with a missing env file: %d %q", code, errs)
	}
	for _, listen := range []string{"0.0.0.0:8765", "127.0.0.1:0"} {
		if code, _, errs := runCLI(t, "", "pair", "--env-file", bare, "--http-listen", listen, "--http-token-file", tok); code != 1 || errs == "" {
			t.Errorf("pair --http-listen %s: %d %q", listen, code, errs)
		}
	}
	open := filepath.Join(dir, "open")
	os.WriteFile(open, []byte(testHTTPToken), 0o644)
	os.Chmod(open, 0o644)
	if code, _, errs := runCLI(t, "", "pair", "--env-file", bare, "--http-listen", "127.0.0.1:8765", "--http-token-file", open); code != 1 || !strings.Contains(errs, "others may read") {
		t.Errorf("pair with a world-readable token: %d %q", code, errs)
	}
}
