//go:build crashpoints

// Package crashpoint marks the steps of a capture where the crash tests kill the daemon.
// This is the build with `-tags crashpoints`, which only the crash tests make: Hit stops the
// process with SIGKILL at the step named by ECRD_CRASHPOINT (crashpoint.go is the release
// build, where Hit does nothing).
package crashpoint

import (
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// target is read once: the crash tests start the daemon with ECRD_CRASHPOINT=name, or
// name#N to die at the Nth time the point is reached (a write point every change passes).
var target, nth = parse(strings.TrimSpace(os.Getenv("ECRD_CRASHPOINT")))

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

// Hit kills the process with SIGKILL — no deferred calls, no flushing, exactly like a
// power cut as far as the process is concerned — when name is the configured point.
func Hit(name string) {
	if target != "" && name == target && hits.Add(1) == nth {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // SIGKILL is delivered asynchronously; never run past the point
	}
}

// Armed reports whether the process is set to die at name, for steps that must do part
// of their work (write half a job) before Hit.
func Armed(name string) bool { return target != "" && name == target }
