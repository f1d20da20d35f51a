package steady

import (
	"bytes"
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

func TestNeverReadsLess(t *testing.T) {
	src := NewManual(time.Unix(1e9, 0), time.Minute)
	c := New(src, []byte("not a mark"))
	a := c.Now()
	if a <= 0 {
		t.Fatalf("a new clock reads %v", a)
	}
	src.Reboot(0, time.Second) // a boot under a running clock: it goes on, never back
	if got := c.Now(); got < a {
		t.Fatalf("after a boot under the clock it reads %v < %v", got, a)
	}
}

// unknownBoot is the machine's clock where the kernel's boot id cannot be read (the unit's
// ProcSubset=pid hides /proc/sys, and ECRD_BOOT_ID is not set).
type unknownBoot struct{ *Manual }

func (unknownBoot) Boot() string { return "" }

// Without a boot id a restart continues exactly, and a reboot adds only the uptime beyond
// the mark's: never more than the time that really passed (the red team's finding: a restart
// under the shipped unit read a till's whole uptime as passed).
func TestUnknownBootNeverRunsFast(t *testing.T) {
	src := unknownBoot{NewManual(time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC), 10*24*time.Hour)}
	c := New(src, nil)
	t0 := c.Now()
	saved := c.Mark()
	src.Advance(5 * time.Second) // a restart of the daemon, no reboot
	if got := New(src, saved).Now().Sub(t0); got != 5*time.Second {
		t.Fatalf("restart: 5 s read as %v", got)
	}
	src.Reboot(time.Hour, 2*time.Minute) // a new uptime below the mark's proves a reboot
	after := New(src, saved)
	if got := after.Now().Sub(t0); got != 2*time.Minute {
		t.Fatalf("reboot, new uptime below the mark's: %v passed on the clock, want the new boot's 2m", got)
	}

	// A reboot that cannot be told from a restart (the new uptime is past the mark's): only
	// the uptime beyond the mark's counts, less than what passed.
	src2 := unknownBoot{NewManual(time.Unix(1e9, 0), time.Minute)}
	c2 := New(src2, nil)
	u0 := c2.Now()
	saved2 := c2.Mark()
	src2.Reboot(time.Hour, 3*time.Minute)
	if got := New(src2, saved2).Now().Sub(u0); got != 2*time.Minute {
		t.Fatalf("unknown reboot: %v passed on the clock, want 2m (3m uptime less the mark's 1m)", got)
	}
}

// A mark that took a flipped bit is no mark: it cannot move the clock on.
func TestDamagedMarkIsNoMark(t *testing.T) {
	src := NewManual(time.Unix(1e9, 0), time.Hour)
	c := New(src, nil)
	c.Now()
	saved := c.Mark()
	i := bytes.Index(saved, []byte(`"steady_ns":`)) + len(`"steady_ns":`)
	damaged := bytes.Clone(saved)
	damaged[i] |= 0x08 // '1' → '9', or any digit up: still JSON
	fresh := New(src, damaged).Now()
	if want := Instant(src.Uptime()); fresh != want {
		t.Fatalf("a damaged mark: clock reads %v, want a new clock's %v", fresh, want)
	}
	if got := New(src, saved).Now(); got != c.Now() {
		t.Fatalf("the whole mark: clock reads %v, want %v", got, c.Now())
	}
}

func TestSystemClockReadsTheKernel(t *testing.T) {
	s := System()
	first, again := s.Boot(), System().Boot()
	if first == "" || first != again {
		t.Fatalf("boot id %q, then %q: want one, the kernel's", first, again)
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
