//go:build crashpoints

// Package crashpoint marks the steps of a capture where the crash tests kill the daemon.
// This is the build with `-tags crashpoints`, which only the crash tests make: Hit stops the
// process with SIGKILL at the step named by ECRD_CRASHPOINT, or, with ECRD_CRASHPOINT_HOLD=1,
// holds the step for the till test bed to cut the power there (crashpoint.go is the release
// build, where Hit does nothing).
package crashpoint

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// HoldMessage is the line Hit writes to stderr when it holds at a point, with the point as
// ECRD_CRASHPOINT named it: the till test bed (scripts/till/power-cuts.sh) waits for this
// line in the journal before it cuts the power.
const HoldMessage = "ecrd crashpoint %s reached: holding for a power cut\n"

// spec, target and nth are read once: the crash tests start the daemon with
// ECRD_CRASHPOINT=name, or name#N to stop at the Nth time the point is reached (a write
// point every change passes).
var (
	spec        = strings.TrimSpace(os.Getenv("ECRD_CRASHPOINT"))
	target, nth = parse(spec)
	hold        = os.Getenv("ECRD_CRASHPOINT_HOLD") == "1"
)

func parse(s string) (string, int64) {
	name, n, ok := strings.Cut(s, "#")
	if !ok {
		return s, 1
	}
	v, err := strconv.ParseInt(n, 10, 64)
	if err != nil || v < 1 {
		return s, 1
	}
	return name, v
}

var hits atomic.Int64

// Hit stops the process at the configured point. By default it kills the process with
// SIGKILL — no deferred calls, no flushing, exactly like a power cut as far as the process
// is concerned, except that the kernel keeps what the process wrote and did not flush.
// With ECRD_CRASHPOINT_HOLD=1 it says so on stderr and blocks the calling goroutine for
// good instead, so that nothing after the point happens while the test bed cuts the power
// of the whole machine, which loses the unflushed writes too.
func Hit(name string) {
	if target == "" || name != target || hits.Add(1) != nth {
		return
	}
	if hold {
		fmt.Fprintf(os.Stderr, HoldMessage, spec)
		for {
			// A sleep, not select{}: a goroutine waiting on a timer never lets the runtime
			// call the process deadlocked should every other goroutine block too.
			time.Sleep(time.Hour)
		}
	}
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // SIGKILL is delivered asynchronously; never run past the point
}

// Armed reports whether the process is set to stop at name, for steps that must do part
// of their work (write half a job) before Hit.
func Armed(name string) bool { return target != "" && name == target }
