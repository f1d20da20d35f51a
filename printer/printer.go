// Package printer owns ecrd's conversation with receipt printers: opening a device from a URI,
// writing one whole job to it and waiting until the printer confirms it is on paper (GS r 1,
// answered in order; see device.confirm), asking it for its status (DLE EOT, decoded and
// validated here) and for its IEEE 1284 Device ID.
//
// It must never render receipts (that is package receipt: bytes arrive here finished), never
// retry a job by itself or wait forever (a failed Print returns an error saying how far it got
// and the spool decides what to do), and never know about secupay or payments.
//
// URIs:
//
//	file:/path/printer.bin                       the fake printer (appends jobs; <path>.status holds its state)
//	lp:/dev/usb/lp0                              a usblp character device (a FIFO or regular file also works)
//	serial:/dev/ttyUSB0?baud=19200&flow=rtscts   a tty; baud (9600), flow none|rtscts|xonxoff (none),
//	                                             databits 5-8 (8), parity none|odd|even (none), stopbits 1|2 (1)
//	tcp:host:9100                                raw TCP (port 9100 by default); timeout=5s is the dial timeout
//	usb:04b8:0e15 | usb:                         libusb by VID:PID (hex) or the first printer found
//
// Every transport except file: also takes status_timeout (per DLE EOT answer, 500ms),
// write_timeout (per chunk written, 10s), confirm_timeout (for the answer that the job is on
// paper, 10s plus the job's size at 200 bytes a second) and chunk (bytes per write, 512).
package printer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// State is what a printer says about itself.
type State string

const (
	StateOnline       State = "online"
	StateOffline      State = "offline"
	StatePaperOut     State = "paper_out"
	StateCoverOpen    State = "cover_open"
	StatePaperNearEnd State = "paper_near_end"
	// StateUnknown: the device is reachable but cannot report status (e.g. no answer to DLE EOT).
	StateUnknown State = "unknown"
)

// Status is one answer to Printer.Status.
type Status struct {
	State  State  `json:"state"`
	Detail string `json:"detail,omitempty"` // human words: "cover open", "no answer to DLE EOT 1 within 500ms", ...
	// Completion is how this printer confirms that a job is on paper (see Print), as learnt
	// so far: "in-order (GS r 1)", "real-time only (DLE EOT)", or empty before the first job.
	Completion string `json:"completion,omitempty"`
	// Model and ModelSource say which printer profile the daemon uses and why ("Device ID
	// MFG:EPSON;MDL:TM-T20II → TM-T20II", "--model TH230"); the daemon fills them in.
	Model       string `json:"model,omitempty"`
	ModelSource string `json:"model_source,omitempty"`
}

// Ready reports whether a job should be sent now: online, paper_near_end and unknown are ready.
// A printer that cannot report is tried anyway: its write errors tell.
func (s Status) Ready() bool {
	switch s.State {
	case StateOnline, StatePaperNearEnd, StateUnknown:
		return true
	}
	return false
}

// Printer is one printer. Print writes a whole job or returns an error; Status asks the device.
// Methods are safe for concurrent use: a Status call never interleaves bytes with a Print in progress.
type Printer interface {
	Print(ctx context.Context, job []byte) error
	// Status returns an error only when the device cannot be reached (unplugged, refused,
	// no such file); a device that is there but does not answer is StateUnknown.
	Status(ctx context.Context) (Status, error)
	Close() error
	String() string // the URI, for logs
}

// ErrNotFound says no device matched a usb: URI (or USB cannot be used on this machine at all).
var ErrNotFound = errors.New("printer: no printer found")

// ErrNotConfirmed says a job was written but the printer did not confirm it is on paper: a
// printer that has answered the in-order marker before stayed silent after this job (it was
// unplugged, switched off or jammed with the job in its buffer). The job must be sent again
// whole; Print returns it wrapped in a *WriteError.
var ErrNotConfirmed = errors.New("printer: job not confirmed on paper")

// ErrClosed is returned by calls on a Printer after Close.
var ErrClosed = errors.New("printer: closed")

// WriteError says how far a failed write got, so a log line tells whether paper moved.
type WriteError struct {
	URI            string
	Written, Total int
	Err            error
}

func (e *WriteError) Error() string {
	return fmt.Sprintf("printer: wrote %d of %d bytes to %s: %v", e.Written, e.Total, e.URI, e.Err)
}

func (e *WriteError) Unwrap() error { return e.Err }

// Open parses uri and returns its printer. It does not require the device to be present now:
// transports connect lazily and reconnect after an error, so a printer plugged in later works.
// Bad URIs are errors that name the URI and what is wrong.
func Open(uri string) (Printer, error) {
	t, err := parseURI(uri)
	if err != nil {
		return nil, err
	}
	switch t.scheme {
	case "file":
		return newFilePrinter(uri, t.path), nil
	case "lp":
		return newDevice(uri, t.dev, lpDialer(t.path)), nil
	case "serial":
		return newDevice(uri, t.dev, serialDialer(t.path, t.serial)), nil
	case "tcp":
		return newDevice(uri, t.dev, tcpDialer(t.addr, t.dialTimeout)), nil
	case "usb":
		return newDevice(uri, t.dev, usbDialer(t.usb)), nil
	}
	panic("unreachable: parseURI accepted scheme " + t.scheme)
}

// target is a parsed URI.
type target struct {
	scheme      string
	path        string        // file, lp, serial
	addr        string        // tcp host:port
	dialTimeout time.Duration // tcp
	serial      serialConfig
	usb         usbMatch
	dev         deviceConfig
}

type serialConfig struct {
	baud     int
	databits int
	parity   byte // 'N', 'O', 'E'
	stopbits int
	flow     string // none, rtscts, xonxoff
}

// usbMatch selects a USB device: any printer when !byID.
type usbMatch struct {
	byID     bool
	vid, pid uint16
}

func (m usbMatch) String() string {
	if !m.byID {
		return "any printer"
	}
	return fmt.Sprintf("%04x:%04x", m.vid, m.pid)
}

type deviceConfig struct {
	statusTimeout  time.Duration
	writeTimeout   time.Duration
	confirmTimeout time.Duration // base wait for the in-order marker's answer; the job's size adds to it
	chunk          int
}

var defaultDeviceConfig = deviceConfig{
	statusTimeout: 500 * time.Millisecond,
	// A serial printer holding CTS low while it prints a long receipt can stall a chunk for
	// seconds; a dead one stalls forever. 10s tells the two apart without failing slow printers.
	writeTimeout: 10 * time.Second,
	// A printer answers GS r 1 once it has printed everything before it: a receipt takes
	// a second or two, a jam or an empty roll much longer. Past this (plus the job's size at
	// confirmRate) an answer that never comes means the job is not known to be on paper.
	confirmTimeout: 10 * time.Second,
	chunk:          512,
}

func parseURI(uri string) (target, error) {
	bad := func(format string, a ...any) (target, error) {
		return target{}, fmt.Errorf("printer: bad URI %q: %s", uri, fmt.Sprintf(format, a...))
	}
	scheme, rest, ok := strings.Cut(uri, ":")
	if !ok || scheme == "" {
		return bad("want scheme:..., one of file, lp, serial, tcp, usb")
	}
	rest, rawQuery, _ := strings.Cut(rest, "?")
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return bad("query: %v", err)
	}
	t := target{scheme: scheme, dev: defaultDeviceConfig}
	// Options are taken out of q as they are used; whatever is left is a typo worth reporting.
	take := func(name string) (string, bool) {
		v, ok := q[name]
		if !ok {
			return "", false
		}
		delete(q, name)
		return v[len(v)-1], true
	}
	duration := func(name string, dst *time.Duration) error {
		v, ok := take(name)
		if !ok {
			return nil
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("%s=%q: want a positive duration like 500ms", name, v)
		}
		*dst = d
		return nil
	}
	integer := func(name string, dst *int, lo, hi int) error {
		v, ok := take(name)
		if !ok {
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("%s=%q: want a number from %d to %d", name, v, lo, hi)
		}
		*dst = n
		return nil
	}

	switch scheme {
	case "file", "lp", "serial":
		if rest == "" {
			return bad("missing device path, e.g. %s:/dev/...", scheme)
		}
		t.path = rest
	case "tcp":
		host, port, err := net.SplitHostPort(rest)
		if err != nil {
			// No port: the whole rest is the host (brackets allowed for IPv6).
			host, port = strings.TrimSuffix(strings.TrimPrefix(rest, "["), "]"), "9100"
		}
		if host == "" || strings.ContainsAny(host, "/ ") {
			return bad("want tcp:host or tcp:host:port")
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return bad("port %q: want 1-65535", port)
		}
		t.addr = net.JoinHostPort(host, port)
		t.dialTimeout = 5 * time.Second
		if err := duration("timeout", &t.dialTimeout); err != nil {
			return bad("%v", err)
		}
	case "usb":
		if rest != "" {
			vs, ps, ok := strings.Cut(rest, ":")
			vid, err1 := strconv.ParseUint(vs, 16, 16)
			pid, err2 := strconv.ParseUint(ps, 16, 16)
			if !ok || err1 != nil || err2 != nil || len(vs) > 4 || len(ps) > 4 {
				return bad("want usb:VID:PID in hex (e.g. usb:04b8:0e15) or usb: for the first printer")
			}
			t.usb = usbMatch{byID: true, vid: uint16(vid), pid: uint16(pid)}
		}
	default:
		return bad("unknown scheme %q: want file, lp, serial, tcp or usb", scheme)
	}

	if scheme == "serial" {
		c := serialConfig{baud: 9600, databits: 8, parity: 'N', stopbits: 1, flow: "none"}
		if err := integer("baud", &c.baud, 1, 4000000); err != nil {
			return bad("%v", err)
		}
		if _, ok := baudRates[c.baud]; !ok {
			return bad("baud=%d: not a standard rate (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, ...)", c.baud)
		}
		if err := integer("databits", &c.databits, 5, 8); err != nil {
			return bad("%v", err)
		}
		if err := integer("stopbits", &c.stopbits, 1, 2); err != nil {
			return bad("%v", err)
		}
		if v, ok := take("parity"); ok {
			switch strings.ToLower(v) {
			case "none", "n":
				c.parity = 'N'
			case "odd", "o":
				c.parity = 'O'
			case "even", "e":
				c.parity = 'E'
			default:
				return bad("parity=%q: want none, odd or even", v)
			}
		}
		if v, ok := take("flow"); ok {
			switch v {
			case "none", "rtscts", "xonxoff":
				c.flow = v
			default:
				return bad("flow=%q: want none, rtscts or xonxoff", v)
			}
		}
		t.serial = c
	}
	if scheme != "file" {
		if err := duration("status_timeout", &t.dev.statusTimeout); err != nil {
			return bad("%v", err)
		}
		if err := duration("write_timeout", &t.dev.writeTimeout); err != nil {
			return bad("%v", err)
		}
		if err := duration("confirm_timeout", &t.dev.confirmTimeout); err != nil {
			return bad("%v", err)
		}
		if err := integer("chunk", &t.dev.chunk, 1, 1<<20); err != nil {
			return bad("%v", err)
		}
	}
	for name := range q {
		return bad("unknown option %q for %s:", name, scheme)
	}
	return t, nil
}
