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
// usb: is package printer/usb, the one transport that needs cgo (libusb): a program that wants
// it registers it (RegisterTransport; cmd/ecrd does in a cgo-only file), so that this package
// and everything that imports it build with CGO_ENABLED=0. Without it a usb: URI is refused
// with a pointer to lp:, the kernel's usblp device, which reaches the same printer.
//
// Every transport except file: also takes status_timeout (per DLE EOT answer, 500ms),
// write_timeout (per chunk written, 10s), confirm_timeout (for the answer that the job is on
// paper, 10s plus the job's size at 200 bytes a second) and chunk (bytes per write, 512).
package printer

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ecrd-pos/ecrd/internal/suggest"
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

// Status is one answer to Printer.Status. It has no JSON form: the API owns the wire types
// and copies what it shows (api/wire.go).
type Status struct {
	State  State
	Detail string // human words: "cover open", "no answer to DLE EOT 1 within 500ms", ...
	// Completion is how this printer confirms that a job is on paper (see Print), as learnt
	// so far: "in-order (GS r 1)", "real-time only (DLE EOT)", or empty before the first job.
	Completion string
	// Model and ModelSource say which printer profile the daemon uses and why ("Device ID
	// MFG:EPSON;MDL:TM-T20II → TM-T20II", "--model TH230"); the daemon fills them in.
	Model       string
	ModelSource string
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
// Transports registered from outside (printer/usb) return it from their Dialer.
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
	}
	return newDevice(uri, t.dev, t.dial), nil // a registered transport
}

// registered holds the transports registered from outside the package, by scheme.
var registered struct {
	sync.RWMutex
	m map[string]func(rest string) (Dialer, error)
}

// RegisterTransport makes scheme: URIs open through open, which turns the part of the URI
// between "scheme:" and "?" into a Dialer, or says what is wrong with it (Open reports that
// as a bad URI). Open itself takes the options every transport has (status_timeout,
// write_timeout, confirm_timeout, chunk; see the package comment) and runs the ESC/POS engine
// (status, completion on paper, Device ID) over the Dialer's connections.
//
// It is how a program links a transport this package must not depend on, as database/sql
// links drivers: cmd/ecrd registers printer/usb, whose libusb needs cgo, with
//
//	printer.RegisterTransport("usb", usb.Dialer)
//
// It panics if scheme is empty or holds ':' or '?', if open is nil, or if the scheme is
// already taken (built-in schemes included): two transports for one URI is a wiring bug.
func RegisterTransport(scheme string, open func(rest string) (Dialer, error)) {
	if scheme == "" || strings.ContainsAny(scheme, ":?") || open == nil {
		panic(fmt.Sprintf("printer: RegisterTransport(%q): want a scheme without ':' or '?' and a non-nil open", scheme))
	}
	registered.Lock()
	defer registered.Unlock()
	if _, ok := transportParsers[scheme]; ok || registered.m[scheme] != nil {
		panic(fmt.Sprintf("printer: RegisterTransport(%q): scheme already registered", scheme))
	}
	if registered.m == nil {
		registered.m = map[string]func(rest string) (Dialer, error){}
	}
	registered.m[scheme] = open
}

// registeredTransport returns the transport registered for scheme, or nil.
func registeredTransport(scheme string) func(rest string) (Dialer, error) {
	registered.RLock()
	defer registered.RUnlock()
	return registered.m[scheme]
}

// noUSBHint is why a usb: URI cannot open in a program that did not register printer/usb.
const noUSBHint = "usb: is libusb's transport (package printer/usb, which needs cgo) and this program was " +
	"built without it; use lp:/dev/usb/lp0 instead, the kernel's usblp device for the same printer"

// target is a parsed URI.
type target struct {
	scheme      string
	path        string        // file, lp, serial
	addr        string        // tcp host:port
	dialTimeout time.Duration // tcp
	serial      serialConfig
	dial        Dialer // a registered transport's (RegisterTransport)
	dev         deviceConfig
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

// transportParser fills t from the part of a URI after "scheme:" and before "?", and from its
// options. Each lives beside its transport: parseFile, parseLP, parseSerial, parseTCP; a
// registered transport's goes through parseRegistered.
type transportParser func(t *target, rest string, opts uriOptions) error

var transportParsers = map[string]transportParser{
	"file":   parseFile,
	"lp":     parseLP,
	"serial": parseSerial,
	"tcp":    parseTCP,
}

// parseRegistered returns the parser of a transport registered for scheme (RegisterTransport).
func parseRegistered(scheme string) (transportParser, bool) {
	open := registeredTransport(scheme)
	if open == nil {
		return nil, false
	}
	return func(t *target, rest string, opts uriOptions) (err error) {
		if t.dial, err = open(rest); err != nil {
			return err
		}
		if t.dial == nil {
			return fmt.Errorf("the %s: transport returned no dialer", scheme)
		}
		return opts.device(&t.dev)
	}, true
}

func parseURI(uri string) (target, error) {
	bad := func(err error) (target, error) {
		return target{}, fmt.Errorf("printer: bad URI %q: %v", uri, err)
	}
	scheme, rest, ok := strings.Cut(uri, ":")
	if !ok || scheme == "" {
		return bad(errors.New("want scheme:..., one of file, lp, serial, tcp, usb"))
	}
	rest, rawQuery, _ := strings.Cut(rest, "?")
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return bad(fmt.Errorf("query: %v", err))
	}
	parse, ok := transportParsers[scheme]
	if !ok {
		parse, ok = parseRegistered(scheme)
	}
	switch {
	case !ok && scheme == "usb":
		return target{}, fmt.Errorf("printer: cannot open %q: %s", uri, noUSBHint)
	case !ok:
		if near, ok := suggest.Closest(scheme, []string{"file", "lp", "serial", "tcp", "usb"}); ok {
			return bad(fmt.Errorf("unknown scheme %q: did you mean %s:? (want file, lp, serial, tcp or usb)", scheme, near))
		}
		return bad(fmt.Errorf("unknown scheme %q: want file, lp, serial, tcp or usb", scheme))
	}
	t := target{scheme: scheme, dev: defaultDeviceConfig}
	opts := uriOptions(q)
	if err := parse(&t, rest, opts); err != nil {
		return bad(err)
	}
	if err := opts.leftover(scheme); err != nil {
		return bad(err)
	}
	return t, nil
}

// devicePath is the path of a file:, lp: or serial: URI, which must name one.
func devicePath(scheme, rest string) (string, error) {
	if rest == "" {
		//lint:ignore ST1005 it ends "printer: bad URI ...", whose words tests and users rely on
		return "", fmt.Errorf("missing device path, e.g. %s:/dev/...", scheme)
	}
	return rest, nil
}

// uriOptions are a URI's query options. They are taken out as they are used, so whatever is
// left at the end is a typo worth reporting (leftover).
type uriOptions url.Values

// take removes option name and returns its last value.
func (o uriOptions) take(name string) (string, bool) {
	v, ok := o[name]
	if !ok {
		return "", false
	}
	delete(o, name)
	return v[len(v)-1], true
}

// duration sets *dst to option name, if given, which must be a positive duration.
func (o uriOptions) duration(name string, dst *time.Duration) error {
	v, ok := o.take(name)
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

// integer sets *dst to option name, if given, which must be a number from lo to hi.
func (o uriOptions) integer(name string, dst *int, lo, hi int) error {
	v, ok := o.take(name)
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

// device takes the options every transport but file: has (see the package comment).
func (o uriOptions) device(dst *deviceConfig) error {
	if err := o.duration("status_timeout", &dst.statusTimeout); err != nil {
		return err
	}
	if err := o.duration("write_timeout", &dst.writeTimeout); err != nil {
		return err
	}
	if err := o.duration("confirm_timeout", &dst.confirmTimeout); err != nil {
		return err
	}
	return o.integer("chunk", &dst.chunk, 1, 1<<20)
}

// leftover reports an option no parser took.
func (o uriOptions) leftover(scheme string) error {
	for name := range o {
		//lint:ignore ST1005 it ends "printer: bad URI ...", whose words tests and users rely on
		return fmt.Errorf("unknown option %q for %s:", name, scheme)
	}
	return nil
}
