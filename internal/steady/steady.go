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
// Only a boot known to be another one adds the new boot's whole uptime. When either boot is
// unknown (the kernel's boot id unreadable, as under ProcSubset=pid without ECRD_BOOT_ID), the
// clock adds only the uptime beyond the mark's: exact if it is the same boot, and less than
// the truth if it is not. A saved mark carries a checksum; a damaged one is no mark.
//
// Readings compare only within one clock: a clock that starts without a mark is a new one,
// with a new Epoch, and a reading of another epoch means nothing to it (its owner treats such
// a stamp as unknown).
//
// It must never read the wall clock for a decision; Clock.Wall exists for what people read.
package steady

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"hash/crc32"
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
	src   Source
	epoch string // names this clock: readings of another epoch do not compare

	mu   sync.Mutex
	boot string        // the boot of the mark
	up   time.Duration // Uptime at the mark
	at   Instant       // the reading at the mark
	last Instant       // the latest reading: the clock never reads less
}

// mark is a Clock's saved state: at Uptime Up of boot Boot, the clock read At. Sum guards
// the rest: a flipped bit that made At larger would make every wait end early.
type mark struct {
	Epoch string  `json:"epoch"`
	Boot  string  `json:"boot"`
	Up    int64   `json:"uptime_ns"`
	At    Instant `json:"steady_ns"`
	Sum   uint32  `json:"crc32c"`
}

func (m mark) sum() uint32 {
	return crc32.Checksum(fmt.Appendf(nil, "%s|%s|%d|%d", m.Epoch, m.Boot, m.Up, m.At), crc32.MakeTable(crc32.Castagnoli))
}

// New returns the clock that continues from saved, a Mark of an earlier life (nil or
// unreadable: a new clock). A mark of this boot continues exactly; a mark of an earlier boot
// continues from its reading plus the time since this boot began.
func New(src Source, saved []byte) *Clock {
	c := &Clock{src: src, boot: src.Boot()}
	var m mark
	switch {
	case saved == nil || json.Unmarshal(saved, &m) != nil || m.At < 0 || m.Up < 0 || m.Epoch == "" || m.Sum != m.sum():
		// No mark (or a damaged one): a new clock, of a new epoch, reads the time since
		// the boot.
		c.epoch = rand.Text()
	case m.Boot != "" && c.boot != "" && m.Boot != c.boot, time.Duration(m.Up) > src.Uptime():
		// Another boot: the mark, plus the whole time since this boot began.
		c.at = m.At
	default:
		// This boot, or one nobody can tell from it: only the uptime beyond the mark's.
		c.up, c.at = time.Duration(m.Up), m.At
	}
	if c.epoch == "" {
		c.epoch = m.Epoch
	}
	c.last = c.at
	return c
}

// Epoch names the clock: a reading compares only with readings of the same epoch.
func (c *Clock) Epoch() string { return c.epoch }

// Now reads the clock. It never reads less than an earlier Now.
func (c *Clock) Now() Instant {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nowLocked()
}

func (c *Clock) nowLocked() Instant {
	boot, up := c.src.Boot(), c.src.Uptime()
	if boot != c.boot && boot != "" && c.boot != "" || up < c.up {
		// The machine booted again under a running process (a test's source does; the
		// kernel's CLOCK_BOOTTIME never goes back): go on from the last reading, adding
		// only the time since the new boot began.
		c.boot, c.up, c.at = boot, 0, c.last
	}
	now := max(c.at.Add(up-c.up), c.last, 1)
	c.last = now
	return now
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
	m := mark{Epoch: c.epoch, Boot: c.boot, Up: int64(c.up), At: now}
	m.Sum = m.sum()
	b, err := json.Marshal(m)
	if err != nil {
		panic("steady: a mark always marshals: " + err.Error())
	}
	return b
}

// System is the machine's clock: CLOCK_BOOTTIME and the kernel's boot id — from
// $ECRD_BOOT_ID, which ecrd.service sets to systemd's %b (its ProcSubset=pid hides /proc/sys),
// else /proc/sys/kernel/random/boot_id, else unknown ("").
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
	if id := strings.TrimSpace(os.Getenv("ECRD_BOOT_ID")); id != "" {
		return id
	}
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "" // unknown: the clock then never adds a whole boot's uptime (New)
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
