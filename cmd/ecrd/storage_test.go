package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestFlushesPerCapture counts, with strace, the flushes (fsync, fdatasync, syncfs) the daemon
// makes over a run of captures on a printer without a drawer, and then with one: two per
// capture either way (docs/durability.md: the intent, and the answer with its receipt; the
// drawer pulse needs none, see the drawer rule), checkpoints included.
func TestFlushesPerCapture(t *testing.T) {
	for _, c := range []struct {
		name   string
		env    []string
		max    float64
		prefix string
	}{
		{"no drawer", nil, 2.1, "STX_FLUSH"},
		{"drawer", []string{"ECRD_DRAWER_KICK=0"}, 2.1, "STX_FLUSHKICK"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel() // two daemons, each under its own strace: the counts do not mix
			e := newDaemonEnv(t)
			trace := filepath.Join(e.dir, "flushes.trace")
			// -y names each descriptor's file: the fake printer's own fsync per job is the
			// printer's, not the state directory's, and is not counted. --seccomp-bpf stops the
			// daemon only at the calls counted, not at every system call (the same counts, in a
			// third of the time).
			e.wrap = []string{"strace", "-f", "--seccomp-bpf", "-qq", "-y", "-o", trace, "-e", "trace=fsync,fdatasync,syncfs"}
			e.extraEnv = c.env
			e.start()
			const n = 500
			before := countFlushes(t, trace, e.printerFile)
			for i := range n {
				id := fmt.Sprintf("%s%04d", c.prefix, i)
				if status, out := e.capture(id); status != 200 {
					t.Fatalf("capture %s: %d %v", id, status, out)
				}
			}
			waitQueueEmpty(t, e.client())
			got := countFlushes(t, trace, e.printerFile) - before
			per := float64(got) / n
			t.Logf("%s: %d flushes for %d captures: %.2f per capture", c.name, got, n, per)
			if per > c.max {
				t.Fatalf("%.2f flushes per capture, want at most %.1f", per, c.max)
			}
		})
	}
}

var flushCall = regexp.MustCompile(`(?m)^\d+\s+(?:fsync|fdatasync|syncfs)\(\d+<([^>]*)>`)

// countFlushes counts the flushes in trace, leaving out those of the file skip.
func countFlushes(t *testing.T, trace, skip string) int {
	t.Helper()
	b, err := os.ReadFile(trace)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	n := 0
	for _, m := range flushCall.FindAllSubmatch(b, -1) {
		if string(m[1]) != skip {
			n++
		}
	}
	return n
}
