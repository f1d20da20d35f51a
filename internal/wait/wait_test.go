package wait

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// recorder is a testing.TB that remembers a failure instead of ending the test.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = format
	for _, a := range args {
		r.failed += " " + strings.TrimSpace(strings.ReplaceAll(toString(a), "\n", " "))
	}
}

func toString(a any) string {
	switch v := a.(type) {
	case error:
		return v.Error()
	case string:
		return v
	case time.Duration:
		return v.String()
	}
	return "?"
}

func TestForReturnsOnceTheConditionHolds(t *testing.T) {
	var n atomic.Int32
	r := &recorder{TB: t}
	For(r, 5*time.Second, "the third call", func() error {
		if n.Add(1) < 3 {
			return errors.New("too early")
		}
		return nil
	})
	if r.failed != "" || n.Load() != 3 {
		t.Fatalf("failed %q after %d calls", r.failed, n.Load())
	}
}

func TestForFailsWithWhatAndTheLastError(t *testing.T) {
	r := &recorder{TB: t}
	For(r, 20*time.Millisecond, "paper", func() error { return errors.New("still out") })
	if !strings.Contains(r.failed, "paper") || !strings.Contains(r.failed, "still out") {
		t.Fatalf("failure %q does not say what and why", r.failed)
	}
}

func TestUntil(t *testing.T) {
	r := &recorder{TB: t}
	start := time.Now()
	Until(r, 30*time.Millisecond, "never", func() bool { return false })
	if r.failed == "" || time.Since(start) < 30*time.Millisecond {
		t.Fatalf("Until gave up early or not at all: %q", r.failed)
	}
}

func TestTryReturnsNilOnceTheConditionHolds(t *testing.T) {
	var n atomic.Int32
	err := Try(5*time.Second, func() error {
		if n.Add(1) < 3 {
			return errors.New("too early")
		}
		return nil
	})
	if err != nil || n.Load() != 3 {
		t.Fatalf("Try = %v after %d calls", err, n.Load())
	}
}

func TestTryReturnsTheLastErrorAtTheDeadline(t *testing.T) {
	var n atomic.Int32
	start := time.Now()
	err := TryEvery(30*time.Millisecond, 5*time.Millisecond, func() error {
		return fmt.Errorf("call %d", n.Add(1))
	})
	if err == nil || err.Error() != fmt.Sprintf("call %d", n.Load()) || time.Since(start) < 30*time.Millisecond {
		t.Fatalf("TryEvery = %v after %d calls and %v: want the last call's error, at the deadline", err, n.Load(), time.Since(start))
	}
}
