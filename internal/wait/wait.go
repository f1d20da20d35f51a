// Package wait is how ecrd's tests wait for something to happen: poll a condition until a
// deadline, then fail saying what was awaited and, if the condition says, why it is not so.
// Tests must never "sleep, then assert nothing happened"; they wait for the state that proves
// it. Only tests import this package; the daemon never waits this way.
package wait

import (
	"errors"
	"testing"
	"time"
)

// interval is how often a condition is asked again: short, since the conditions are cheap
// (a file's size, a counter) and a test should not wait longer than it must.
const interval = 2 * time.Millisecond

// For asks cond until it returns nil. If it has not within the given time, For fails tb with
// what and cond's last error.
func For(tb testing.TB, within time.Duration, what string, cond func() error) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s: %v", within, what, err)
			return
		}
		time.Sleep(interval)
	}
}

// Until is For with a condition that has nothing to say but yes or no.
func Until(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	errNotYet := errors.New("not yet")
	For(tb, within, what, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	})
}
