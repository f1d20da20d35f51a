// Package usb is the usb: printer transport: a receipt printer reached through libusb
// (github.com/google/gousb), the one part of ecrd that needs cgo. It is a leaf that only the
// command links (TARGET: cmd/ecrd and this package alone link gousb), registered as
//
//	printer.RegisterTransport("usb", usb.Dialer)
//
// in a cmd/ecrd file built only with cgo. Everything else about a printer (the ESC/POS engine,
// status, completion on paper, Device IDs, the URI's common options) is package printer's;
// this package only finds the device, claims its interface and moves bytes.
//
// URIs: usb:VID:PID (hex, e.g. usb:04b8:0e15) or usb: for the first printer found, with the
// options every printer transport takes (printer's package comment).
package usb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/gousb"

	"github.com/ecrd-pos/ecrd/printer"
)

// USB printers are reached through libusb (gousb), which claims the interface itself and
// detaches usblp if it is bound. Which interface is used:
//
//  1. the first interface (by config, interface, alternate setting number) of class 7
//     (printer) that has a bulk OUT endpoint;
//  2. otherwise the first of class 0xFF (vendor-specific, as Epson's "vendor-defined class"
//     mode and many cheap printers present themselves) that has a bulk OUT endpoint;
//  3. for usb:VID:PID only, where the user named the device: any interface with bulk OUT.
//
// usb: (no VID:PID) takes the first device for which rule 1 or 2 finds an interface. Bulk OUT
// and IN endpoints come from the descriptors, never from defaults like 0x01/0x82, which are
// wrong for many printers. Without a bulk IN endpoint Status reports unknown.

const (
	usbClassPrinter = 0x07
	usbClassVendor  = 0xff
)

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

// Dialer is the usb: transport for printer.RegisterTransport: rest is what follows "usb:" up
// to the options, "VID:PID" in hex or "" for the first printer found. Nothing is opened until
// the printer is first used.
func Dialer(rest string) (printer.Dialer, error) {
	m, err := parseMatch(rest)
	if err != nil {
		return nil, err
	}
	return usbDialer(m), nil
}

// parseMatch parses the VID:PID of usb:VID:PID (hex IDs), or "" for the first printer found.
func parseMatch(rest string) (usbMatch, error) {
	if rest == "" {
		return usbMatch{}, nil
	}
	vs, ps, ok := strings.Cut(rest, ":")
	vid, err1 := strconv.ParseUint(vs, 16, 16)
	pid, err2 := strconv.ParseUint(ps, 16, 16)
	if !ok || err1 != nil || err2 != nil || len(vs) > 4 || len(ps) > 4 {
		return usbMatch{}, errors.New("want usb:VID:PID in hex (e.g. usb:04b8:0e15) or usb: for the first printer")
	}
	return usbMatch{byID: true, vid: uint16(vid), pid: uint16(pid)}, nil
}

// usbEndpoint and usbAltSetting describe descriptors in plain values, so the choice of
// interface can be tested without libusb or hardware.
type usbEndpoint struct {
	Address   uint8 // bit 7 set: IN
	Bulk      bool
	MaxPacket int
}

func (e usbEndpoint) in() bool { return e.Address&0x80 != 0 }

type usbAltSetting struct {
	Config, Interface, Alt int
	Class                  uint8
	Endpoints              []usbEndpoint
}

type usbChoice struct {
	Config, Interface, Alt int
	Out                    usbEndpoint
	In                     *usbEndpoint // nil: the printer cannot answer status
}

// chooseUSBInterface applies the rule above to alts (any order).
func chooseUSBInterface(alts []usbAltSetting, anyClass bool) (usbChoice, bool) {
	alts = append([]usbAltSetting(nil), alts...)
	sort.SliceStable(alts, func(i, j int) bool {
		a, b := alts[i], alts[j]
		if a.Config != b.Config {
			return a.Config < b.Config
		}
		if a.Interface != b.Interface {
			return a.Interface < b.Interface
		}
		return a.Alt < b.Alt
	})
	pick := func(accept func(uint8) bool) (usbChoice, bool) {
		for _, a := range alts {
			if !accept(a.Class) {
				continue
			}
			c := usbChoice{Config: a.Config, Interface: a.Interface, Alt: a.Alt}
			var haveOut bool
			for _, e := range a.Endpoints {
				if !e.Bulk {
					continue
				}
				if e.in() && c.In == nil {
					e := e
					c.In = &e
				}
				if !e.in() && !haveOut {
					c.Out, haveOut = e, true
				}
			}
			if haveOut {
				return c, true
			}
		}
		return usbChoice{}, false
	}
	if c, ok := pick(func(cl uint8) bool { return cl == usbClassPrinter }); ok {
		return c, true
	}
	if c, ok := pick(func(cl uint8) bool { return cl == usbClassVendor }); ok {
		return c, true
	}
	if anyClass {
		return pick(func(uint8) bool { return true })
	}
	return usbChoice{}, false
}

// usbAltSettings flattens gousb's descriptor maps.
func usbAltSettings(desc *gousb.DeviceDesc) []usbAltSetting {
	var alts []usbAltSetting
	for _, cfg := range desc.Configs {
		for _, intf := range cfg.Interfaces {
			for _, s := range intf.AltSettings {
				a := usbAltSetting{Config: cfg.Number, Interface: s.Number, Alt: s.Alternate, Class: uint8(s.Class)}
				for _, e := range s.Endpoints {
					a.Endpoints = append(a.Endpoints, usbEndpoint{
						Address:   uint8(e.Address),
						Bulk:      e.TransferType == gousb.TransferTypeBulk,
						MaxPacket: e.MaxPacketSize,
					})
				}
				sort.Slice(a.Endpoints, func(i, j int) bool { return a.Endpoints[i].Address < a.Endpoints[j].Address })
				alts = append(alts, a)
			}
		}
	}
	return alts
}

// usbPipes is the seam between the ESC/POS engine and libusb: the claimed endpoints of one
// opened device. Tests supply a fake; usbDevice is the real one.
type usbPipes interface {
	write(ctx context.Context, b []byte) (int, error)
	read(ctx context.Context, b []byte) (int, error) // printer.ErrNoReadBack without a bulk IN endpoint
	maxPacket() int                                  // IN reads must be whole packets, or libusb reports overflow
	close() error
}

// usbConn gives usbPipes the deadline-based printer.Conn the engine speaks.
type usbConn struct {
	p             usbPipes
	mu            sync.Mutex
	rdl, wdl      time.Time
	pending, rbuf []byte
}

func newUSBConn(p usbPipes) *usbConn { return &usbConn{p: p} }

func (c *usbConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.rdl = t
	c.mu.Unlock()
	return nil
}

func (c *usbConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.wdl = t
	c.mu.Unlock()
	return nil
}

func (c *usbConn) ctx(dl time.Time) (context.Context, context.CancelFunc) {
	if dl.IsZero() {
		return context.WithCancel(context.Background())
	}
	return context.WithDeadline(context.Background(), dl)
}

// transferErr turns a transfer cancelled by its deadline into os.ErrDeadlineExceeded, which is
// what the engine (like net and os) treats as "no answer in time".
func transferErr(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("usb transfer: %w", os.ErrDeadlineExceeded)
	}
	return err
}

func (c *usbConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	dl := c.wdl
	c.mu.Unlock()
	ctx, cancel := c.ctx(dl)
	defer cancel()
	n, err := c.p.write(ctx, b)
	return n, transferErr(ctx, err)
}

func (c *usbConn) Read(b []byte) (int, error) {
	if len(c.pending) == 0 {
		c.mu.Lock()
		dl := c.rdl
		c.mu.Unlock()
		ctx, cancel := c.ctx(dl)
		defer cancel()
		if c.rbuf == nil {
			c.rbuf = make([]byte, max(c.p.maxPacket(), 64))
		}
		n, err := c.p.read(ctx, c.rbuf)
		c.pending = c.rbuf[:n]
		if err != nil && n == 0 {
			return 0, transferErr(ctx, err)
		}
	}
	n := copy(b, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

func (c *usbConn) Close() error { return c.p.close() }

// usbDeviceIDPipes is implemented by pipes that can send the printer-class GET_DEVICE_ID
// request; vendor-class interfaces do not answer it.
type usbDeviceIDPipes interface {
	deviceID(ctx context.Context) ([]byte, error)
}

// RawDeviceID makes usbConn a printer.DeviceIDConn.
func (c *usbConn) RawDeviceID(ctx context.Context) ([]byte, error) {
	p, ok := c.p.(usbDeviceIDPipes)
	if !ok {
		return nil, printer.ErrNoDeviceID
	}
	return p.deviceID(ctx)
}

// usbDevice is an opened, claimed libusb device; close releases everything in reverse order.
type usbDevice struct {
	choice usbChoice
	class  uint8
	uctx   *gousb.Context
	dev    *gousb.Device
	cfg    *gousb.Config
	intf   *gousb.Interface
	out    *gousb.OutEndpoint
	in     *gousb.InEndpoint
	mps    int
}

func (d *usbDevice) write(ctx context.Context, b []byte) (int, error) {
	return d.out.WriteContext(ctx, b)
}

func (d *usbDevice) read(ctx context.Context, b []byte) (int, error) {
	if d.in == nil {
		return 0, fmt.Errorf("usb interface has no bulk IN endpoint: %w", printer.ErrNoReadBack)
	}
	return d.in.ReadContext(ctx, b)
}

func (d *usbDevice) maxPacket() int { return d.mps }

// deviceID sends the USB printer class's GET_DEVICE_ID (bmRequestType 0xA1: class, interface,
// device to host; bRequest 0; wValue the configuration index; wIndex the interface in the high
// byte and the alternate setting in the low byte). Only class-7 interfaces answer it.
func (d *usbDevice) deviceID(ctx context.Context) ([]byte, error) {
	if d.class != usbClassPrinter {
		return nil, fmt.Errorf("usb interface class %#02x is not a printer-class interface: %w", d.class, printer.ErrNoDeviceID)
	}
	buf := make([]byte, 1024)
	cfgIndex := 0
	if d.dev != nil && d.dev.Desc != nil {
		for i, n := range sortedConfigs(d.dev.Desc) {
			if n == d.choice.Config {
				cfgIndex = i
			}
		}
	}
	n, err := d.dev.Control(0xA1, 0, uint16(cfgIndex), uint16(d.choice.Interface<<8|d.choice.Alt), buf)
	if err != nil {
		return nil, fmt.Errorf("GET_DEVICE_ID: %w", err)
	}
	return buf[:n], nil
}

func sortedConfigs(desc *gousb.DeviceDesc) []int {
	var ns []int
	for n := range desc.Configs {
		ns = append(ns, n)
	}
	sort.Ints(ns)
	return ns
}

func (d *usbDevice) close() error {
	var errs []error
	if d.intf != nil {
		d.intf.Close()
	}
	if d.cfg != nil {
		errs = append(errs, d.cfg.Close())
	}
	if d.dev != nil {
		errs = append(errs, d.dev.Close())
	}
	if d.uctx != nil {
		errs = append(errs, d.uctx.Close())
	}
	return errors.Join(errs...)
}

// newUSBContext turns gousb's panic on a failed libusb_init (no /dev/bus/usb in a container,
// no permissions) into an error.
func newUSBContext() (c *gousb.Context, err error) {
	defer func() {
		if r := recover(); r != nil {
			c, err = nil, fmt.Errorf("libusb init: %v", r)
		}
	}()
	return gousb.NewContext(), nil
}

func usbDialer(m usbMatch) printer.Dialer {
	return func(ctx context.Context) (printer.Conn, error) {
		d, err := openUSB(m)
		if err != nil {
			return nil, err
		}
		return newUSBConn(d), nil
	}
}

func openUSB(m usbMatch) (_ *usbDevice, err error) {
	uctx, err := newUSBContext()
	if err != nil {
		return nil, fmt.Errorf("%w (usb %s): %v", printer.ErrNotFound, m, err)
	}
	d := &usbDevice{uctx: uctx}
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	if err = d.open(m); err != nil {
		return nil, err
	}
	if err = d.claim(m); err != nil {
		return nil, err
	}
	return d, nil
}

// usbSearch is one walk over the bus for the device m matches: the first with an interface to
// print on (the rules above), and what was seen on the way, for the error when none opens.
type usbSearch struct {
	m           usbMatch
	chosen      *gousb.DeviceDesc
	choice      usbChoice
	class       uint8 // the chosen interface's class
	noInterface error // the device usb:VID:PID named has nothing to print on
}

// accept is gousb's OpenDevices filter: it opens the first device that fits and no other.
func (s *usbSearch) accept(desc *gousb.DeviceDesc) bool {
	if s.chosen != nil {
		return false
	}
	if s.m.byID && (uint16(desc.Vendor) != s.m.vid || uint16(desc.Product) != s.m.pid) {
		return false
	}
	alts := usbAltSettings(desc)
	c, ok := chooseUSBInterface(alts, s.m.byID)
	if !ok {
		if s.m.byID {
			s.noInterface = fmt.Errorf("usb %s has no interface with a bulk OUT endpoint", s.m)
		}
		return false
	}
	s.choice, s.chosen = c, desc
	for _, a := range alts {
		if a.Config == c.Config && a.Interface == c.Interface && a.Alt == c.Alt {
			s.class = a.Class
		}
	}
	return true
}

// notFound says why the search opened nothing; enumErr is OpenDevices' error.
func (s *usbSearch) notFound(enumErr error) error {
	switch {
	case s.chosen != nil:
		// Found but not opened: usually permissions (a missing udev rule), not absence.
		return fmt.Errorf("usb %s: found %04x:%04x at bus %d address %d but cannot open it: %v",
			s.m, uint16(s.chosen.Vendor), uint16(s.chosen.Product), s.chosen.Bus, s.chosen.Address, enumErr)
	case s.noInterface != nil:
		return fmt.Errorf("%w: %v", printer.ErrNotFound, s.noInterface)
	case enumErr != nil:
		return fmt.Errorf("%w (usb %s): listing devices: %v", printer.ErrNotFound, s.m, enumErr)
	default:
		return fmt.Errorf("%w (usb %s): no matching device on the bus", printer.ErrNotFound, s.m)
	}
}

// open opens the device m matches and records the interface chosen on it.
func (d *usbDevice) open(m usbMatch) error {
	s := usbSearch{m: m}
	devs, enumErr := d.uctx.OpenDevices(s.accept)
	for _, extra := range devs[min(1, len(devs)):] {
		extra.Close()
	}
	if len(devs) == 0 {
		return s.notFound(enumErr)
	}
	d.dev, d.choice, d.class = devs[0], s.choice, s.class
	return nil
}

// claim claims the chosen interface and its endpoints on the opened device.
func (d *usbDevice) claim(m usbMatch) (err error) {
	// usblp may hold a class-7 interface; libusb must detach it to claim the interface.
	if err := d.dev.SetAutoDetach(true); err != nil {
		return fmt.Errorf("usb %s: auto-detach kernel driver: %w", m, err)
	}
	choice := d.choice
	if d.cfg, err = d.dev.Config(choice.Config); err != nil {
		return fmt.Errorf("usb %s: %w", m, err)
	}
	if d.intf, err = d.cfg.Interface(choice.Interface, choice.Alt); err != nil {
		return fmt.Errorf("usb %s: %w", m, err)
	}
	if d.out, err = d.intf.OutEndpoint(int(choice.Out.Address & 0x0f)); err != nil {
		return fmt.Errorf("usb %s: %w", m, err)
	}
	if choice.In != nil {
		if d.in, err = d.intf.InEndpoint(int(choice.In.Address & 0x0f)); err != nil {
			return fmt.Errorf("usb %s: %w", m, err)
		}
		d.mps = choice.In.MaxPacket
	}
	return nil
}
