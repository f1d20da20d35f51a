package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/internal/wait"
	"github.com/ecrd-pos/ecrd/secupay/secupaytest"
)

// journalBin is ecrd built to send its native journal entries to a socket the test owns
// (go-systemd's journal package takes the socket path from a variable set at link time).
var (
	journalOnce sync.Once
	journalBin  string
	journalSock string
	journalErr  error
)

func buildJournalBinary(t *testing.T) {
	journalOnce.Do(func() {
		// Beside ecrdBin, so that TestMain removes it with the other binary.
		dir := filepath.Dir(ecrdBin)
		journalSock, journalBin = filepath.Join(dir, "journal.socket"), filepath.Join(dir, "ecrd-journal")
		// With the flags of scripts/build-ecrd that decide how packages compile (TestMain's
		// build), so that every package comes from the build cache and only the link is new.
		build := exec.Command("go", "build", "-trimpath", "-buildmode=pie", "-tags", "nethttpomithttp2,crashpoints",
			"-ldflags", "-X github.com/coreos/go-systemd/v22/journal.journalSocket="+journalSock, "-o", journalBin, ".")
		build.Env = append(os.Environ(), "CGO_ENABLED=1")
		for v, def := range map[string]string{"CGO_CFLAGS": "-O2 -g -fstack-protector-strong -D_FORTIFY_SOURCE=2",
			"CGO_LDFLAGS": "-Wl,-z,relro -Wl,-z,now"} {
			if os.Getenv(v) == "" {
				build.Env = append(build.Env, v+"="+def)
			}
		}
		if out, err := build.CombinedOutput(); err != nil {
			journalErr = fmt.Errorf("building ecrd for the journal test: %v\n%s", err, out)
		}
	})
	if journalErr != nil {
		t.Fatal(journalErr)
	}
}

// parseJournalEntry decodes one datagram of journald's native protocol
// (systemd.io/JOURNAL_NATIVE_PROTOCOL): "KEY=value\n", or for values that may hold a
// newline "KEY\n", a little-endian uint64 length, the value and "\n".
func parseJournalEntry(b []byte) (map[string]string, error) {
	out := map[string]string{}
	rd := bufio.NewReader(bytes.NewReader(b))
	for {
		line, err := rd.ReadString('\n')
		if err == io.EOF && line == "" {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("entry not newline-terminated: %q", line)
		}
		line = strings.TrimSuffix(line, "\n")
		if k, v, ok := strings.Cut(line, "="); ok {
			out[k] = v
			continue
		}
		var n uint64
		if err := binary.Read(rd, binary.LittleEndian, &n); err != nil {
			return nil, fmt.Errorf("field %s: length: %w", line, err)
		}
		v := make([]byte, n+1)
		if _, err := io.ReadFull(rd, v); err != nil || v[n] != '\n' {
			return nil, fmt.Errorf("field %s: value of %d bytes not newline-terminated", line, n)
		}
		out[line] = string(v[:n])
	}
}

// TestJournaldNativeLogging: under systemd (stderr is the journal stream named by
// JOURNAL_STREAM, the journal socket answers) the daemon logs in journald's native
// protocol: priorities by level and the fields operators filter on. The socket is a
// datagram socket the test reads like journald would.
func TestJournaldNativeLogging(t *testing.T) {
	buildJournalBinary(t)
	os.Remove(journalSock)
	j, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: journalSock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	var mu sync.Mutex
	var entries []map[string]string
	var bad []error
	go func() {
		buf := make([]byte, 1<<20)
		for {
			k, err := j.Read(buf)
			if err != nil {
				return
			}
			ent, err := parseJournalEntry(buf[:k])
			mu.Lock()
			if err != nil {
				bad = append(bad, err)
			} else {
				entries = append(entries, ent)
			}
			mu.Unlock()
		}
	}()
	find := func(msg string) map[string]string {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range entries {
			// A capture's lines carry the transaction id in the text too: "STX_…: job printed".
			if e["MESSAGE"] == msg || e["MESSAGE"] == e["TRANSACTION_ID"]+": "+msg || strings.HasPrefix(e["MESSAGE"], msg+": ") {
				return e
			}
		}
		return nil
	}

	e := newDaemonEnv(t)
	stderr, err := os.Create(filepath.Join(e.dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(stderr.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	launch := func(extra ...string) *exec.Cmd {
		cmd := exec.Command(journalBin, "serve")
		cmd.Env = append(os.Environ(), "ECRD_SOCKET="+e.socket, "ECRD_STATE_DIR="+e.state,
			"ECRD_SECUPAY_URL="+e.fake.URL, "ECRD_TOKEN_FILE="+e.tokenFile, "ECRD_PRINTER=file:"+e.printerFile,
			"ECRD_LOG_LEVEL=debug", fmt.Sprintf("JOURNAL_STREAM=%d:%d", st.Dev, st.Ino))
		cmd.Env = append(cmd.Env, extra...)
		cmd.Stderr = stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	cmd := launch()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	wait.For(t, 20*time.Second, "the daemon to answer", func() error {
		if status, _, err := e.request("GET", "/healthz"); err != nil || status != 200 {
			return fmt.Errorf("daemon not answering: %d %v", status, err)
		}
		return nil
	})
	if status, _ := e.capture(secupaytest.SeedID); status != 200 {
		t.Fatal("capture failed")
	}
	e.fake.Fault(secupaytest.Fault{Op: "start", Status: 404,
		Body: secupaytest.ErrorBody("ProductNotFoundException", "Not found", "unbekannt", 1002, "abc123")})
	if status, _ := e.capture("STX_REFUSED2"); status != 502 {
		t.Fatal("refusal expected")
	}
	// A second daemon on the same state directory fails to start: an error-level line.
	second := launch("ECRD_SOCKET=" + filepath.Join(e.dir, "second.sock"))
	second.Wait()

	var printed, refused, notStarted map[string]string
	wait.For(t, 10*time.Second, "the journal entries", func() error {
		printed, refused, notStarted = find("job printed"), find("secupay call failed"), find("ecrd not started")
		if printed == nil || refused == nil || notStarted == nil {
			return fmt.Errorf("entries missing (job printed %v, secupay call failed %v, ecrd not started %v)",
				printed != nil, refused != nil, notStarted != nil)
		}
		return nil
	})
	for k, want := range map[string]string{"PRIORITY": "6", "TRANSACTION_ID": secupaytest.SeedID,
		"JOB_ID": printed["JOB_ID"], "PRINTER": "file:" + e.printerFile, "SYSLOG_IDENTIFIER": "ecrd"} {
		if printed[k] != want || want == "" {
			t.Errorf("job printed: %s=%q, want %q (%v)", k, printed[k], want, printed)
		}
	}
	if printed["MESSAGE"] != secupaytest.SeedID+": job printed" {
		t.Errorf("job printed: MESSAGE %q, want the transaction id in the text (journalctl | grep STX_…)", printed["MESSAGE"])
	}
	if !strings.HasSuffix(printed["CODE_FILE"], ".go") || printed["CODE_LINE"] == "" {
		t.Errorf("job printed: no CODE_FILE/CODE_LINE: %v", printed)
	}
	if refused["PRIORITY"] != "4" || refused["TRANSACTION_ID"] != "STX_REFUSED2" || refused["SUPPORT_ID"] != "abc123" {
		t.Errorf("secupay call failed: %v", refused)
	}
	// The reason is in the message (what journalctl -u ecrd and systemctl status show), once,
	// and still in ERROR= for filters.
	if notStarted["PRIORITY"] != "3" || !strings.Contains(notStarted["ERROR"], "in use by another ecrd") ||
		!strings.HasPrefix(notStarted["MESSAGE"], "ecrd not started: state directory ") ||
		strings.Count(notStarted["MESSAGE"], "in use by another ecrd") != 1 {
		t.Errorf("ecrd not started: %v", notStarted)
	}
	mu.Lock()
	n := 0
	for _, ent := range entries {
		if strings.HasPrefix(ent["MESSAGE"], "ecrd not started") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d entries say the start was refused, want 1", n)
	}
	for _, err := range bad {
		t.Errorf("malformed entry: %v", err)
	}
	for _, ent := range entries {
		for k := range ent {
			if !regexp.MustCompile(`^[A-Z0-9][A-Z0-9_]*$`).MatchString(k) {
				t.Errorf("invalid journal field name %q in %v", k, ent)
			}
		}
	}
	mu.Unlock()
	// No log line went to stderr as JSON: the journal took every one. (The failed second
	// start's exit message is the command's, not a log line.)
	// Nor the refused start's reason: stderr is the journal's stream, where it would show twice.
	if b, _ := os.ReadFile(stderr.Name()); bytes.Contains(b, []byte(`{"level"`)) || bytes.Contains(b, []byte("in use by another ecrd")) {
		t.Errorf("stderr got log lines: %q", b)
	}
}
