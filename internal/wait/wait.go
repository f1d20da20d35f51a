// Package wait is how ecrd's tests wait for something to happen: poll a condition until a
// deadline, then fail saying what was awaited and, if the condition says, why it is not so.
// Tests must never "sleep, then assert nothing happened"; they wait for the state that proves
// it. Nor do they keep a polling loop or a wrapper of this package of their own: For and Until
// fail the test, Try hands the last error to a caller that must not (a goroutine, a soak that
// reports its own violations). Only tests import this package; the daemon never waits this way.
package wait

import (
	"errors"
	"testing"
	"time"
)

// interval is how often a condition is asked again: short, since the conditions are cheap
// (a file's size, a counter) and a test should not wait longer than it must.
const interval = 2 * time.Millisecond

// Long is how long a test waits for what takes a loaded 2-core machine seconds under the race
// detector (a daemon's start, a spool's retries): long enough never to fail a sound test, and
// reached only by a broken one.
const Long = 30 * time.Second

// Try asks cond until it returns nil, or until within has passed: then it returns cond's last
// error. It never fails a test itself.
func Try(within time.Duration, cond func() error) error {
	return TryEvery(within, interval, cond)
}

// TryEvery is Try asking every every: for conditions that cost something (an HTTP request to
// a daemon, a read of a growing file).
func TryEvery(within, every time.Duration, cond func() error) error {
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(every)
	}
}

// For asks cond until it returns nil. If it has not within the given time, For fails tb with
// what and cond's last error.
func For(tb testing.TB, within time.Duration, what string, cond func() error) {
	tb.Helper()
	if err := Try(within, cond); err != nil {
		tb.Fatalf("timed out after %v waiting for %s: %v", within, what, err)
	}
}

// errNotYet is the last error of a condition that has nothing to say but yes or no.
var errNotYet = errors.New("not yet")

// Until is For with a condition that has nothing to say but yes or no.
func Until(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	For(tb, within, what, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	})
}
