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
	code, out, errs := runCLI(t, "", append(good, "--check")...)
	if code != 0 || strings.Contains(out, "error") || !strings.Contains(out, "secupay's testing system") {
		t.Fatalf("good configuration: exit %d\n%s%s", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "state")); err == nil {
		t.Fatal("--check created the state directory")
	}

	typo := append([]string(nil), good...)
	typo[6] = "file:/no/such/dir/p.bin"
	code, out, _ = runCLI(t, "", append(typo, "--check")...)
	if code != 2 || !strings.Contains(out, "error    --printer") || !strings.Contains(out, "/no/such/dir") {
		t.Fatalf("printer in a missing directory: exit %d\n%s", code, out)
	}
	if n := strings.Count(out, "\n"); n != 4 {
		t.Errorf("%d lines, want one per finding (4):\n%s", n, out)
	}
	// The daemon itself, as a process (serve executes itself again: never in this one).
	start := exec.Command(ecrdBin, typo...)
	start.Env = append(os.Environ(), "ECRD_SOCKET="+filepath.Join(dir, "s.sock"))
	b, err := start.CombinedOutput()
	if code := start.ProcessState.ExitCode(); code != 2 || !strings.Contains(string(b), "/no/such/dir") {
		t.Fatalf("start-up with what --check refuses: exit %d (%v), %q", code, err, b)
	}
	if strings.Count(string(b), "does not exist") != 1 {
		t.Errorf("the start-up error shows more than once:\n%s", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "state")); err == nil {
		t.Fatal("a refused start touched the state directory")
	}

	// Several findings at once, and the live system named as such.
	code, out, _ = runCLI(t, "", "serve", "--check", "--secupay-url", "http://example.com", "--printer", "lp:/dev/usb/lp97",
		"--state-dir", filepath.Join(dir, "state"))
	for _, want := range []string{"error    --secupay-url", "error    token", "warning  --printer"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	if code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	code, out, _ = runCLI(t, "", "serve", "--check", "--secupay-url", "https://connect.secucard.com", "--token-file", tok,
		"--printer", "tcp:192.0.2.1:9100", "--state-dir", filepath.Join(dir, "state"))
	if code != 0 || !strings.Contains(out, "live system: real payments") {
		t.Errorf("live: exit %d\n%s", code, out)
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
