// Package steady is the clock ecrd decides on: the in-doubt wait of a capture and the age of
// a finished record are measured on it, so that a step of the wall clock — NTP correcting a
// till whose RTC drifted, a VM resumed, a technician's date command — can only make ecrd wait
// longer, never shorter (docs/durability.md, "Time").
//
// A reading (Instant) counts how long the till has run, summed over its boots: within a boot
// it is CLOCK_BOOTTIME, which never steps and counts suspend too; across a reboot it goes on
// from the last reading that was saved (Clock.Mark) plus the time since the new boot began.
// What it cannot see — the tail of the last boot after its last saved mark, and the time the
// till was off — it leaves out: across a reboot the clock runs slow, never fast, and a wait
// measured on it is never shorter than the real one.
//
// It must never read the wall clock for a decision; Clock.Wall exists for what people read.
package steady

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Instant is a reading of the steady clock. The zero Instant is "unknown" (a record written
// before ecrd kept one); Clock never reads zero.
type Instant time.Duration

// Sub returns t−u.
func (t Instant) Sub(u Instant) time.Duration { return time.Duration(t - u) }

// Add returns t+d.
func (t Instant) Add(d time.Duration) Instant { return t + Instant(d) }

// IsZero reports whether t is unknown.
func (t Instant) IsZero() bool { return t == 0 }

// Source is what the clock reads: the machine's, or a test's that the test steps.
type Source interface {
	// Wall is the wall clock (time.Now): for records and logs people read, never a decision.
	Wall() time.Time
	// Boot identifies this boot of the machine; it changes at every boot.
	Boot() string
	// Uptime is the time since this boot began, suspend included; it never steps.
	Uptime() time.Duration
}

// Clock is the steady clock of one state directory. It is safe for concurrent use.
type Clock struct {
	src Source

	mu   sync.Mutex
	boot string        // the boot of the mark
	up   time.Duration // Uptime at the mark
	at   Instant       // the reading at the mark
	last Instant       // the latest reading: the clock never reads less
}

// mark is a Clock's saved state: at Uptime Up of boot Boot, the clock read At.
type mark struct {
	Boot string  `json:"boot"`
	Up   int64   `json:"uptime_ns"`
	At   Instant `json:"steady_ns"`
}

// New returns the clock that continues from saved, a Mark of an earlier life (nil or
// unreadable: a new clock). A mark of this boot continues exactly; a mark of an earlier boot
// continues from its reading plus the time since this boot began.
func New(src Source, saved []byte) *Clock {
	c := &Clock{src: src, boot: src.Boot()}
	var m mark
	switch {
	case saved == nil || json.Unmarshal(saved, &m) != nil || m.At < 0:
		// A new clock reads the time since the boot: any positive start will do.
	case m.Boot == c.boot && time.Duration(m.Up) <= src.Uptime():
		c.up, c.at = time.Duration(m.Up), m.At
	default:
		c.at = m.At
	}
	c.last = c.at
	return c
}

// Now reads the clock. It never reads less than an earlier Now or AtLeast.
func (c *Clock) Now() Instant {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nowLocked()
}

func (c *Clock) nowLocked() Instant {
	boot, up := c.src.Boot(), c.src.Uptime()
	if boot != c.boot || up < c.up {
		// The machine booted again under a running process (a test's source does; the
		// kernel's CLOCK_BOOTTIME never goes back): go on from the last reading, adding
		// only the time since the new boot began.
		c.boot, c.up, c.at = boot, 0, c.last
	}
	now := max(c.at.Add(up-c.up), c.last, 1)
	c.last = now
	return now
}

// AtLeast moves the clock on to t if it reads less: a reading found on disk (stamped by a
// life whose last mark was not saved) is never in the future of the clock that reads it.
func (c *Clock) AtLeast(t Instant) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.nowLocked(); now < t {
		c.at += t - now
		c.last = t
	}
}

// Wall is the wall clock of the clock's source.
func (c *Clock) Wall() time.Time { return c.src.Wall() }

// Mark returns the clock's state to save, so that a later life continues from it. Saving it
// more often loses less of a boot's tail at the next reboot.
func (c *Clock) Mark() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.nowLocked()
	c.up, c.at = c.src.Uptime(), now
	b, err := json.Marshal(mark{Boot: c.boot, Up: int64(c.up), At: now})
	if err != nil {
		panic("steady: a mark always marshals: " + err.Error())
	}
	return b
}

// System is the machine's clock: CLOCK_BOOTTIME and the kernel's boot id.
func System() Source { return system{} }

type system struct{}

func (system) Wall() time.Time { return time.Now() }

func (system) Uptime() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		panic(fmt.Sprintf("steady: CLOCK_BOOTTIME: %v", err)) // Linux has had it since 2.6.39
	}
	return time.Duration(ts.Nano())
}

var bootOnce = sync.OnceValue(func() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		// Without a boot id every start looks like a new boot: the clock runs slow across
		// restarts of the daemon, never fast.
		return fmt.Sprintf("unknown-%d", time.Now().UnixNano())
	}
	return strings.TrimSpace(string(b))
})

func (system) Boot() string { return bootOnce() }

// Manual is a Source a test moves by hand: Step moves the wall clock alone (NTP, a date
// command), Advance moves both (time passing), Reboot starts a new boot. It is the one test
// clock of ecrd's packages.
type Manual struct {
	mu   sync.Mutex
	wall time.Time
	boot int
	up   time.Duration
}

// NewManual returns a Manual clock whose wall reads wall and whose boot began up ago.
func NewManual(wall time.Time, up time.Duration) *Manual {
	return &Manual{wall: wall, boot: 1, up: up}
}

// Wall implements Source.
func (m *Manual) Wall() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.wall
}

// Boot implements Source.
func (m *Manual) Boot() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return fmt.Sprintf("manual-boot-%d", m.boot)
}

// Uptime implements Source.
func (m *Manual) Uptime() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.up
}

// Advance lets d pass: the wall and the uptime both move.
func (m *Manual) Advance(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.wall = m.wall.Add(d)
	m.up += d
}

// Step moves the wall clock alone, by d (negative: back), as NTP or a date command does.
func (m *Manual) Step(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.wall = m.wall.Add(d)
}

// Reboot starts a new boot, off for off: the wall moves on by off plus up, the uptime starts
// again at up.
func (m *Manual) Reboot(off, up time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.wall = m.wall.Add(off + up)
	m.boot++
	m.up = up
}
