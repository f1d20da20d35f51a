package steady

import (
	"testing"
	"time"
)

func TestWallStepsDoNotMoveTheClock(t *testing.T) {
	src := NewManual(time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC), time.Hour)
	c := New(src, nil)
	t0 := c.Now()
	for _, step := range []time.Duration{180 * time.Second, -time.Hour, 91 * 24 * time.Hour} {
		src.Step(step)
		if got := c.Now(); got != t0 {
			t.Fatalf("after a wall step of %v the clock reads %v, want %v", step, got, t0)
		}
	}
	src.Advance(2 * time.Minute)
	if got := c.Now().Sub(t0); got != 2*time.Minute {
		t.Fatalf("after 2m passed the clock moved %v", got)
	}
}

func TestMarkContinuesWithinABootAndRunsSlowAcrossOne(t *testing.T) {
	src := NewManual(time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC), time.Hour)
	c := New(src, nil)
	t0 := c.Now()
	src.Advance(10 * time.Minute)
	saved := c.Mark()
	src.Advance(5 * time.Minute) // the daemon is down, the till is not

	again := New(src, saved)
	if got := again.Now().Sub(t0); got != 15*time.Minute {
		t.Fatalf("same boot: %v since t0, want 15m", got)
	}

	src.Advance(20 * time.Minute) // a tail after the last mark that nobody saved
	src.Reboot(8*time.Hour, 30*time.Second)
	src.Step(91 * 24 * time.Hour) // and NTP steps the wall on the new boot
	after := New(src, saved)
	got := after.Now().Sub(t0)
	if want := 10*time.Minute + 30*time.Second; got != want {
		t.Fatalf("across a reboot: %v since t0, want %v (the mark plus the new boot's uptime)", got, want)
	}
	if real := 35*time.Minute + 8*time.Hour + 30*time.Second; got > real {
		t.Fatalf("the clock ran fast across a reboot: %v > %v", got, real)
	}
}

func TestNeverReadsLessThanItHasReadOrBeenTold(t *testing.T) {
	src := NewManual(time.Unix(1e9, 0), time.Minute)
	c := New(src, []byte("not a mark"))
	a := c.Now()
	if a <= 0 {
		t.Fatalf("a new clock reads %v", a)
	}
	c.AtLeast(a.Add(time.Hour))
	if got := c.Now(); got != a.Add(time.Hour) {
		t.Fatalf("AtLeast(+1h): clock reads %v, want %v", got, a.Add(time.Hour))
	}
	c.AtLeast(a) // the past changes nothing
	if got := c.Now(); got != a.Add(time.Hour) {
		t.Fatalf("AtLeast(past) moved the clock to %v", got)
	}
	b := c.Now()
	src.Reboot(0, time.Second) // a boot under a running clock: it goes on, never back
	if got := c.Now(); got < b {
		t.Fatalf("after a boot under the clock it reads %v < %v", got, b)
	}
}

func TestSystemClockReadsTheKernel(t *testing.T) {
	s := System()
	if s.Boot() == "" || s.Boot() != s.Boot() {
		t.Fatalf("boot id %q is not stable", s.Boot())
	}
	a := s.Uptime()
	b := s.Uptime()
	if a <= 0 || b < a {
		t.Fatalf("CLOCK_BOOTTIME read %v then %v", a, b)
	}
	c := New(s, nil)
	if c.Now() <= 0 {
		t.Fatal("the system clock reads nothing")
	}
}
