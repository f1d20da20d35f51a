//go:build crashpoints

package crashpoint

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in   string
		name string
		n    int64
	}{
		{"", "", 1},
		{"after-print", "after-print", 1},
		{"wal-appended#2", "wal-appended", 2},
		{"wal-appended#1", "wal-appended", 1},
		// A count that is not a positive number is not a count: the whole string is the
		// name, which matches no point, so the daemon runs on rather than stopping somewhere
		// the test did not mean.
		{"wal-appended#0", "wal-appended#0", 1},
		{"wal-appended#-1", "wal-appended#-1", 1},
		{"wal-appended#x", "wal-appended#x", 1},
	} {
		name, n := parse(c.in)
		if name != c.name || n != c.n {
			t.Errorf("parse(%q) = %q, %d; want %q, %d", c.in, name, n, c.name, c.n)
		}
	}
}

// child passes the point twice, and another point between, as a daemon passes
// wal-appended once per change. Hit runs on its own goroutine, so that the main one can
// report, when SIGTERM comes, whether Hit came back.
func child() {
	returned := make(chan int, 2)
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	go func() {
		for i := 1; i <= 2; i++ {
			Hit("wal-appended")
			Hit("wal-committed")
			say("past %d", i)
			returned <- i
		}
	}()
	for {
		select {
		case i := <-returned:
			if i == 2 {
				return
			}
		case <-term:
			say("terminated while held")
			return
		}
	}
}

// Without ECRD_CRASHPOINT_HOLD the Nth pass kills the process with SIGKILL, and nothing
// after the point runs.
func TestHitKillsAtTheNthPass(t *testing.T) {
	cmd, out := start(t, "ECRD_CRASHPOINT=wal-appended#2")
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("child ended with %v, want killed\n%s", err, out)
	}
	if ws, ok := exit.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v, want SIGKILL", err)
	}
	if got := out.String(); got != "past 1\n" {
		t.Fatalf("child said %q, want only the first pass", got)
	}
}

// With ECRD_CRASHPOINT_HOLD=1 the Nth pass says so on stderr, naming the point as the
// environment did, and blocks: the process lives on (it still handles SIGTERM) while nothing
// after the point runs.
func TestHitHoldsAtTheNthPass(t *testing.T) {
	cmd, out := start(t, "ECRD_CRASHPOINT=wal-appended#2", "ECRD_CRASHPOINT_HOLD=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(stderr).ReadString('\n')
	if want := fmt.Sprintf(HoldMessage, "wal-appended#2"); line != want {
		t.Fatalf("child's stderr: %q (%v), want %q", line, err, want)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("held child ended with %v, want a clean exit on SIGTERM\n%s", err, out)
	}
	if got := out.String(); got != "past 1\nterminated while held\n" {
		t.Fatalf("child said %q; want the first pass only, then held", got)
	}
}

// A point the environment does not name is passed, hold or not.
func TestOtherPointsPass(t *testing.T) {
	cmd, out := start(t, "ECRD_CRASHPOINT=before-kick", "ECRD_CRASHPOINT_HOLD=1")
	if err := cmd.Run(); err != nil {
		t.Fatalf("child ended with %v\n%s", err, out)
	}
	if got := out.String(); got != "past 1\npast 2\n" {
		t.Fatalf("child said %q", got)
	}
}
