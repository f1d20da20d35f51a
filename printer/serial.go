package printer

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Why not github.com/tarm/serial: it opens the tty, then switches the fd back to blocking mode
// and hides the *os.File in an unexported field. A write stalled by a printer holding CTS low
// then blocks forever (no deadline can be set, and Close waits for the write), it cannot set
// RTS/CTS flow control, and its Flush discards unsent bytes. So the tty is opened here with
// unix.Open, configured completely through termios (raw 8N1-style, baud, CRTSCTS or IXON|IXOFF),
// and kept nonblocking inside an *os.File so Go's poller gives reads and writes deadlines.

type serialConfig struct {
	baud     int
	databits int
	parity   byte // 'N', 'O', 'E'
	stopbits int
	flow     string // none, rtscts, xonxoff
}

// parseSerial parses serial:PATH?baud=9600&databits=8&parity=none&stopbits=1&flow=none&options.
func parseSerial(t *target, rest string, opts uriOptions) (err error) {
	if t.path, err = devicePath("serial", rest); err != nil {
		return err
	}
	c := serialConfig{baud: 9600, databits: 8, parity: 'N', stopbits: 1, flow: "none"}
	if err := opts.integer("baud", &c.baud, 1, 4000000); err != nil {
		return err
	}
	if _, ok := baudRates[c.baud]; !ok {
		return fmt.Errorf("baud=%d: not a standard rate (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, ...)", c.baud)
	}
	if err := opts.integer("databits", &c.databits, 5, 8); err != nil {
		return err
	}
	if err := opts.integer("stopbits", &c.stopbits, 1, 2); err != nil {
		return err
	}
	if v, ok := opts.take("parity"); ok {
		if c.parity, err = parseParity(v); err != nil {
			return err
		}
	}
	if v, ok := opts.take("flow"); ok {
		if c.flow, err = parseFlow(v); err != nil {
			return err
		}
	}
	t.serial = c
	return opts.device(&t.dev)
}

// parseParity maps parity=none|odd|even (or n|o|e, any case) to termios' 'N', 'O', 'E'.
func parseParity(v string) (byte, error) {
	switch strings.ToLower(v) {
	case "none", "n":
		return 'N', nil
	case "odd", "o":
		return 'O', nil
	case "even", "e":
		return 'E', nil
	}
	return 0, fmt.Errorf("parity=%q: want none, odd or even", v)
}

func parseFlow(v string) (string, error) {
	switch v {
	case "none", "rtscts", "xonxoff":
		return v, nil
	}
	return "", fmt.Errorf("flow=%q: want none, rtscts or xonxoff", v)
}

var baudRates = map[int]uint32{
	50: unix.B50, 75: unix.B75, 110: unix.B110, 134: unix.B134, 150: unix.B150, 200: unix.B200,
	300: unix.B300, 600: unix.B600, 1200: unix.B1200, 1800: unix.B1800, 2400: unix.B2400,
	4800: unix.B4800, 9600: unix.B9600, 19200: unix.B19200, 38400: unix.B38400,
	57600: unix.B57600, 115200: unix.B115200, 230400: unix.B230400, 460800: unix.B460800,
	500000: unix.B500000, 576000: unix.B576000, 921600: unix.B921600, 1000000: unix.B1000000,
	1152000: unix.B1152000, 1500000: unix.B1500000, 2000000: unix.B2000000,
	2500000: unix.B2500000, 3000000: unix.B3000000, 3500000: unix.B3500000, 4000000: unix.B4000000,
}

// serialTermios is the whole line setting for c: raw bytes in both directions (no echo, no
// newline translation, no signals), since ESC/POS is binary.
func serialTermios(c serialConfig) *unix.Termios {
	rate := baudRates[c.baud]
	t := &unix.Termios{
		Iflag:  unix.IGNPAR | unix.IGNBRK,
		Cflag:  unix.CREAD | unix.CLOCAL | rate,
		Ispeed: rate,
		Ospeed: rate,
	}
	t.Cflag |= map[int]uint32{5: unix.CS5, 6: unix.CS6, 7: unix.CS7, 8: unix.CS8}[c.databits]
	if c.stopbits == 2 {
		t.Cflag |= unix.CSTOPB
	}
	switch c.parity {
	case 'O':
		t.Cflag |= unix.PARENB | unix.PARODD
	case 'E':
		t.Cflag |= unix.PARENB
	}
	switch c.flow {
	case "rtscts":
		t.Cflag |= unix.CRTSCTS
	case "xonxoff":
		// A valid DLE EOT answer (0xx1xx10) is never 0x11 or 0x13, so XON/XOFF cannot eat one.
		t.Iflag |= unix.IXON | unix.IXOFF
		// The struct starts zeroed: without these the tty would take NUL as both XON and XOFF.
		t.Cc[unix.VSTART] = 0x11
		t.Cc[unix.VSTOP] = 0x13
	}
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	return t
}

func serialDialer(path string, cfg serialConfig) Dialer {
	return func(ctx context.Context) (Conn, error) {
		// O_NOCTTY: a printer must never become the daemon's controlling terminal.
		fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: path, Err: err}
		}
		if err := unix.IoctlSetTermios(fd, unix.TCSETS, serialTermios(cfg)); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("configure %s: %w", path, err)
		}
		return &serialConn{File: os.NewFile(uintptr(fd), path)}, nil
	}
}

type serialConn struct {
	*os.File
	failed bool // a write failed: whatever is queued is stuck, do not wait for it on Close
}

func (c *serialConn) Write(b []byte) (int, error) {
	n, err := c.File.Write(b)
	if err != nil {
		c.failed = true
	}
	return n, err
}

// drainOutput waits until the tty's output queue is empty. It polls TIOCOUTQ instead of calling
// tcdrain (TCSBRK 1) because tcdrain cannot be given a deadline: on a line stalled by CTS it
// would block forever.
func (c *serialConn) drainOutput(deadline time.Time) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	for {
		var queued int
		var ierr error
		if err := rc.Control(func(fd uintptr) { queued, ierr = unix.IoctlGetInt(int(fd), unix.TIOCOUTQ) }); err != nil {
			return err
		}
		if ierr != nil {
			return fmt.Errorf("TIOCOUTQ: %w", ierr)
		}
		if queued == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d bytes still queued on the line: %w", queued, os.ErrDeadlineExceeded)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Close lets queued output reach the printer first (bounded), rather than discarding it.
// After a failed write the queue holds the tail of a job that will be sent again whole:
// discard it (TCFLSH), or the printer would print that fragment before the retry.
func (c *serialConn) Close() error {
	if c.failed {
		if rc, err := c.SyscallConn(); err == nil {
			rc.Control(func(fd uintptr) { unix.IoctlSetInt(int(fd), unix.TCFLSH, unix.TCOFLUSH) })
		}
	} else {
		c.drainOutput(time.Now().Add(2 * time.Second))
	}
	return c.File.Close()
}
