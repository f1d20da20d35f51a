package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// stopCleanly stops the daemon with SIGTERM and waits: SQLite checkpoints its log into
// ecrd.db at the last close, so the rows are in the file a test then damages.
func stopCleanly(t *testing.T, p *proc) {
	t.Helper()
	syscall.Kill(p.cmd.Process.Pid, syscall.SIGTERM)
	p.wait(t)
}

// exitsOnItsOwn waits for a daemon that must stop by itself, and returns its log.
func exitsOnItsOwn(t *testing.T, p *proc, within time.Duration) string {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(within):
		t.Fatalf("the daemon still runs after %v on a damaged database\n%s", within, p.logs)
	}
	if p.err == nil {
		t.Fatalf("the daemon exited 0 on a damaged database\n%s", p.logs)
	}
	return p.logs.String()
}

// A state database that is damaged (pages overwritten, the file cut short, not a database at
// all) stops the daemon — at start, or when its integrity check finds the damage — with the
// recovery named, and marks it: the next start refuses too, until a technician has recovered
// it. It never starts empty, which would send start/cash again for transactions it captured.
func TestDaemonStopsOnADamagedDatabase(t *testing.T) {
	t.Parallel()
	for name, damage := range map[string]func(t *testing.T, path string){
		"pages overwritten": func(t *testing.T, path string) {
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fi, _ := f.Stat()
			junk := []byte(strings.Repeat("\xffdamaged", 1024))
			if _, err := f.WriteAt(junk, fi.Size()/2/4096*4096); err != nil {
				t.Fatal(err)
			}
		},
		"cut short": func(t *testing.T, path string) {
			fi, _ := os.Stat(path)
			if err := os.Truncate(path, fi.Size()/2/4096*4096); err != nil {
				t.Fatal(err)
			}
		},
		"not a database": func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte(strings.Repeat("not sqlite ", 1000)), 0o640); err != nil {
				t.Fatal(err)
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			e := newDaemonEnv(t)
			p := e.start()
			for i := range 40 {
				if status, out := e.capture(fmt.Sprintf("STX_DAMAGE%03d", i)); status != 200 {
					t.Fatalf("capture: %d %v", status, out)
				}
			}
			stopCleanly(t, p)
			db := filepath.Join(e.state, "ecrd.db")
			damage(t, db)
			before := e.fake.Calls().TotalStartCash

			logs := exitsOnItsOwn(t, e.launch(), 30*time.Second)
			if !strings.Contains(logs, "damaged") {
				t.Fatalf("the log does not say the database is damaged:\n%s", logs)
			}
			mark, err := os.ReadFile(db + ".damaged")
			if err != nil {
				t.Fatalf("no mark beside the damaged database: %v\n%s", err, logs)
			}
			// The next start refuses at once, naming the mark and the recovery.
			logs = exitsOnItsOwn(t, e.launch(), 10*time.Second)
			if !strings.Contains(logs, "ecrd.db.damaged") || !strings.Contains(logs, "operations.md") {
				t.Fatalf("the second start does not name the mark and the recovery:\n%s", logs)
			}
			if n := e.fake.Calls().TotalStartCash; n != before {
				t.Fatalf("%d start/cash calls from a daemon on a damaged database", n-before)
			}
			t.Logf("mark: %s", mark)
		})
	}
}

// A state directory the daemon cannot write (a file system remounted read-only, as ext4 does
// on errors) stops the start with the reason: a daemon that cannot journal an intent must not
// take requests it can never capture.
func TestDaemonRefusesAReadOnlyStateDirectory(t *testing.T) {
	t.Parallel()
	e := newDaemonEnv(t)
	if err := os.MkdirAll(e.state, 0o750); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", e.state).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", e.state).Run() })
	p := e.start()
	if status, out := e.capture("STX_READONLY1"); status != 200 {
		t.Fatalf("capture: %d %v", status, out)
	}
	stopCleanly(t, p)
	if out, err := exec.Command("mount", "-o", "remount,ro", e.state).CombinedOutput(); err != nil {
		t.Fatalf("remount read-only: %v: %s", err, out)
	}
	logs := exitsOnItsOwn(t, e.launch(), 10*time.Second)
	if !strings.Contains(logs, "read-only") && !strings.Contains(logs, "readonly") {
		t.Fatalf("the start does not say the state directory is read-only:\n%s", logs)
	}
}
