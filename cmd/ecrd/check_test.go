package main

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// `ecrd serve --check` says what start-up would refuse, one line per finding, and exits 2 for
// it; start-up then refuses the same configuration (exit 2) without taking a payment.
func TestServeCheck(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte("a-token-of-some-length\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := []string{"serve", "--secupay-url", "https://connect-testing.secuconnect.com", "--token-file", tok,
		"--printer", "file:" + filepath.Join(dir, "p.bin"), "--state-dir", filepath.Join(dir, "state")}
	// An empty env file: this machine's /etc/ecrd/ecrd.env must not decide the test.
	noEnv := []string{"--check", "--env-file", os.DevNull}
	code, out, errs := runCLI(t, "", append(good, noEnv...)...)
	if code != 0 || strings.Contains(out, "error") || !strings.Contains(out, "secupay's testing system") {
		t.Fatalf("good configuration: exit %d\n%s%s", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "state")); err == nil {
		t.Fatal("--check created the state directory")
	}

	typo := append([]string(nil), good...)
	typo[6] = "file:/no/such/dir/p.bin"
	code, out, _ = runCLI(t, "", append(typo, noEnv...)...)
	if code != 2 || !strings.Contains(out, "error    --printer") || !strings.Contains(out, "/no/such/dir") {
		t.Fatalf("printer in a missing directory: exit %d\n%s", code, out)
	}
	if n := strings.Count(out, "\n"); n != 5 {
		t.Errorf("%d lines, want one per finding (5, the env file's first):\n%s", n, out)
	}
	// The daemon itself, as a process (serve executes itself again: never in this one).
	start := exec.Command(ecrdBin, typo...)
	start.Env = append(os.Environ(), "ECRD_SOCKET="+filepath.Join(dir, "s.sock"))
	b, err := start.CombinedOutput()
	if code := start.ProcessState.ExitCode(); code != 2 || !strings.Contains(string(b), "/no/such/dir") {
		t.Fatalf("start-up with what --check refuses: exit %d (%v), %q", code, err, b)
	}
	// One line, whose message says why (a technician reads the message, not the fields),
	// and nothing printed again after it.
	var line struct{ Msg, Error string }
	if n := strings.Count(string(b), "does not exist"); n == 0 || strings.Count(strings.TrimSpace(string(b)), "\n") != 0 ||
		json.Unmarshal(b, &line) != nil ||
		line.Msg != "ecrd not started: --printer (ECRD_PRINTER): printer file:/no/such/dir/p.bin: directory /no/such/dir does not exist" ||
		!strings.HasSuffix(line.Error, line.Msg[len("ecrd not started: "):]) {
		t.Errorf("the refused start's output is not the one log line with the reason in its message:\n%s", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "state")); err == nil {
		t.Fatal("a refused start touched the state directory")
	}

	// Several findings at once, and the live system named as such.
	code, out, _ = runCLI(t, "", "serve", "--check", "--env-file", os.DevNull, "--secupay-url", "http://example.com", "--printer", "lp:/dev/usb/lp97",
		"--state-dir", filepath.Join(dir, "state"))
	for _, want := range []string{"error    --secupay-url", "error    token", "warning  --printer"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	if code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	code, out, _ = runCLI(t, "", "serve", "--check", "--env-file", os.DevNull, "--secupay-url", "https://connect.secucard.com", "--token-file", tok,
		"--printer", "tcp:192.0.2.1:9100", "--state-dir", filepath.Join(dir, "state"))
	if code != 0 || !strings.Contains(out, "live system: real payments") {
		t.Errorf("live: exit %d\n%s", code, out)
	}
}

// On an installed till `sudo ecrd serve --check` checks what the next `systemctl restart
// ecrd` would use: the settings from the env file (flags and the environment win over it),
// and a token the env file names as the unit's credential (ECRD_TOKEN_FILE=token) read from
// beside the env file, where LoadCredential= takes it from, not from the current directory.
// The binary itself, in a root shell's situation: no $CREDENTIALS_DIRECTORY, no ECRD_ variable.
func TestServeCheckEnvFile(t *testing.T) {
	etc, dir := t.TempDir(), t.TempDir() // etc stands for /etc/ecrd
	tok := filepath.Join(etc, "token")
	if err := os.WriteFile(tok, []byte("a-token-of-some-length\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	envFile := filepath.Join(etc, "ecrd.env")
	writeEnv := func(printer string, extra ...string) {
		t.Helper()
		lines := append([]string{"# as the package ships it", "ECRD_SECUPAY_URL=https://connect-testing.secuconnect.com",
			"ECRD_TOKEN_FILE=token", "ECRD_PRINTER=" + printer, `ECRD_STATE_DIR="` + filepath.Join(dir, "state") + `"`}, extra...)
		if err := os.WriteFile(envFile, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	check := func(env []string, args ...string) (int, string, string) {
		t.Helper()
		cmd := exec.Command(ecrdBin, append([]string{"serve"}, args...)...)
		cmd.Dir = t.TempDir() // no "token" here: the old false "stat token" came from the current directory
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "ECRD_") && !strings.HasPrefix(kv, "CREDENTIALS_DIRECTORY=") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		cmd.Env = append(cmd.Env, env...)
		var out, errs strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errs
		cmd.Run()
		return cmd.ProcessState.ExitCode(), out.String(), errs.String()
	}
	good := "file:" + filepath.Join(dir, "p.bin")

	writeEnv(good)
	code, out, errs := check(nil, "--check", "--env-file", envFile)
	if code != 0 || strings.Contains(out, "error") ||
		!strings.Contains(out, "ok       --env-file: "+envFile+" read\n") ||
		!strings.Contains(out, "ok       --token-file: "+tok+" is readable and holds a token\n") ||
		!strings.Contains(out, "ok       --printer: "+good+"\n") {
		t.Fatalf("good env file, token as the unit's credential: exit %d\n%s%s", code, out, errs)
	}

	writeEnv("file:/no/such/dirr/p.bin")
	code, out, errs = check(nil, "--check", "--env-file", envFile)
	if code != 2 || !strings.Contains(out, "error    --printer: printer file:/no/such/dirr/p.bin: directory /no/such/dirr does not exist\n") {
		t.Fatalf("a typo'd printer path in the env file: exit %d\n%s%s", code, out, errs)
	}
	// A flag, and the environment, win over the file.
	if code, out, errs = check(nil, "--check", "--env-file", envFile, "--printer", good); code != 0 {
		t.Errorf("--printer over the file's typo: exit %d\n%s%s", code, out, errs)
	}
	if code, out, errs = check([]string{"ECRD_PRINTER=" + good}, "--check", "--env-file", envFile); code != 0 {
		t.Errorf("ECRD_PRINTER over the file's typo: exit %d\n%s%s", code, out, errs)
	}

	// The token missing: the finding names the file that was looked at.
	writeEnv(good)
	os.Rename(tok, tok+".old")
	code, out, _ = check(nil, "--check", "--env-file", envFile)
	if code != 2 || !strings.Contains(out, "error    token: ") || !strings.Contains(out, tok+": no such file") {
		t.Errorf("no token beside the env file: exit %d\n%s", code, out)
	}
	os.Rename(tok+".old", tok)
	// Inside the unit the credentials directory decides, as for the daemon.
	code, out, _ = check([]string{"CREDENTIALS_DIRECTORY=" + dir}, "--check", "--env-file", envFile)
	if code != 2 || !strings.Contains(out, filepath.Join(dir, "token")) {
		t.Errorf("with $CREDENTIALS_DIRECTORY: exit %d\n%s", code, out)
	}

	// A value the daemon would refuse, in the file.
	writeEnv(good, "ECRD_PRINT_WAIT=10x")
	code, out, _ = check(nil, "--check", "--env-file", envFile)
	if code != 2 || !strings.Contains(out, `error    --env-file: `+envFile+`: ECRD_PRINT_WAIT="10x": `) {
		t.Errorf("a bad duration in the env file: exit %d\n%s", code, out)
	}
	// A named env file that is not there is an error; the default one may be missing.
	code, out, errs = check(nil, "--check", "--env-file", filepath.Join(etc, "nope.env"))
	if code != 2 || !strings.Contains(errs, "nope.env") {
		t.Errorf("a missing named env file: exit %d\n%s%s", code, out, errs)
	}
	// --env-file is the check's: the daemon reads its settings from the environment systemd gives.
	if code, _, errs = check(nil, "--env-file", envFile); code != 2 || !strings.Contains(errs, "env-file") {
		t.Errorf("serve --env-file without --check: exit %d, %q", code, errs)
	}
}

// A client that cannot reach the daemon says what to do about it.
func TestUnreachableDaemonHints(t *testing.T) {
	dial := func(errno syscall.Errno) error {
		return &net.OpError{Op: "dial", Net: "unix", Addr: &net.UnixAddr{Name: "/run/ecrd/ecrd.sock", Net: "unix"},
			Err: os.NewSyscallError("connect", errno)}
	}
	for errno, want := range map[syscall.Errno]string{
		syscall.EACCES:       "add it to the ecrd-pos group",
		syscall.ENOENT:       "systemctl status ecrd.socket",
		syscall.ECONNREFUSED: "nothing answers on /run/ecrd/ecrd.sock",
	} {
		if got := unreachable(dial(errno)).Error(); !strings.Contains(got, want) || !strings.Contains(got, "/run/ecrd/ecrd.sock") {
			t.Errorf("%v: %q, want a hint with %q", errno, got, want)
		}
	}
	// Through the real client: a socket path with nothing there.
	code, _, errs := runCLI(t, "", "status", "--socket", filepath.Join(t.TempDir(), "none.sock"))
	if code != 1 || !strings.Contains(errs, "hint: no socket at") || strings.Count(errs, "daemon not reachable") != 1 {
		t.Errorf("status without a daemon: exit %d, %q", code, errs)
	}
	// A script reading --json gets a document, whatever happens.
	code, out, _ := runCLI(t, "", "status", "--json", "--socket", filepath.Join(t.TempDir(), "none.sock"))
	var doc map[string]string
	if code != 1 || json.Unmarshal([]byte(out), &doc) != nil || doc["status"] != "unreachable" || doc["error"] == "" {
		t.Errorf("status --json without a daemon: exit %d, %q", code, out)
	}
}
