package usb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/printer"
)

// The tests register the transport as cmd/ecrd does, and a fake one, usbfake:NAME, whose
// connections are usbConns over fake pipes: a USB printer behind the same seam, run by
// printer's engine exactly as a real one is.
func init() {
	printer.RegisterTransport("usb", Dialer)
	printer.RegisterTransport("usbfake", func(rest string) (printer.Dialer, error) {
		v, ok := fakeDialers.Load(rest)
		if !ok {
			return nil, fmt.Errorf("no fake pipes named %q", rest)
		}
		return v.(*fakeDialer).dial, nil
	})
}

// fakeDialers holds each fake device's pipes by the NAME of its usbfake: URI.
var (
	fakeDialers sync.Map // string → *fakeDialer
	fakeSeq     atomic.Int64
)

// fakeDialer hands out its pipes one dial each, as a device unplugged and plugged in again;
// with none left it says not found.
type fakeDialer struct {
	mu    sync.Mutex
	pipes []usbPipes
	n     int
}

func (f *fakeDialer) dial(context.Context) (printer.Conn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n >= len(f.pipes) {
		return nil, printer.ErrNotFound
	}
	f.n++
	return newUSBConn(f.pipes[f.n-1]), nil
}

func (f *fakeDialer) dials() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// openFake opens a printer over pipes through printer.Open, with statusTimeout per DLE EOT
// answer (long, except where silence is the point), and closes it when the test ends.
func openFake(t *testing.T, statusTimeout time.Duration, pipes ...usbPipes) (printer.Printer, *fakeDialer) {
	t.Helper()
	name := fmt.Sprintf("%s-%d", t.Name(), fakeSeq.Add(1))
	fd := &fakeDialer{pipes: pipes}
	fakeDialers.Store(name, fd)
	p, err := printer.Open("usbfake:" + name + "?status_timeout=" + statusTimeout.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Close()
		fakeDialers.Delete(name)
	})
	return p, fd
}

func testJob(n int) []byte {
	job := make([]byte, n)
	for i := range job {
		job[i] = byte(0x20 + i%90) // printable, never DLE
	}
	return job
}

func mustStatus(t *testing.T, p printer.Printer, want printer.State) printer.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := p.Status(ctx)
	if err != nil {
		t.Fatalf("%s: Status: %v", p, err)
	}
	if st.State != want {
		t.Fatalf("%s: Status = %+v, want %s", p, st, want)
	}
	return st
}

func TestParseMatch(t *testing.T) {
	good := map[string]usbMatch{
		"":          {},
		"04b8:0e15": {byID: true, vid: 0x04b8, pid: 0x0e15},
		"04B8:202":  {byID: true, vid: 0x04b8, pid: 0x0202},
	}
	for rest, want := range good {
		if got, err := parseMatch(rest); err != nil || got != want {
			t.Errorf("parseMatch(%q) = %+v, %v; want %+v", rest, got, err, want)
		}
	}
	// Through printer.Open: the common options are printer's, the VID:PID ours, and a bad
	// one is a bad URI that says what would do.
	p, err := printer.Open("usb:04B8:202?status_timeout=1s&chunk=64")
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	for _, uri := range []string{"usb:xyz", "usb:04b8", "usb:04b8:0e15:1", "usb:12345:1"} {
		_, err := printer.Open(uri)
		if err == nil || !strings.Contains(err.Error(), `printer: bad URI "`+uri+`": want usb:VID:PID in hex`) {
			t.Errorf("Open(%q) = %v, want a bad URI error", uri, err)
		}
	}
	if _, err := printer.Open("usb:?status_timeout=0s"); err == nil || !strings.Contains(err.Error(), "status_timeout") {
		t.Errorf("usb: with a bad common option: %v", err)
	}
	if _, err := printer.Open("usb:?vid=04b8"); err == nil || !strings.Contains(err.Error(), `unknown option "vid" for usb:`) {
		t.Errorf("usb: with an unknown option: %v", err)
	}
}

func TestChooseUSBInterface(t *testing.T) {
	bulkOut := func(addr uint8) usbEndpoint { return usbEndpoint{Address: addr, Bulk: true, MaxPacket: 64} }
	bulkIn := func(addr uint8) usbEndpoint { return usbEndpoint{Address: 0x80 | addr, Bulk: true, MaxPacket: 64} }
	intrIn := usbEndpoint{Address: 0x83, Bulk: false, MaxPacket: 8}
	tests := []struct {
		name     string
		alts     []usbAltSetting
		anyClass bool
		ok       bool
		want     usbChoice
	}{
		{
			name: "printer class, endpoints not at 0x01/0x82",
			alts: []usbAltSetting{{Config: 1, Interface: 0, Class: 7, Endpoints: []usbEndpoint{intrIn, bulkIn(1), bulkOut(2)}}},
			ok:   true,
			want: usbChoice{Config: 1, Out: bulkOut(2), In: &usbEndpoint{Address: 0x81, Bulk: true, MaxPacket: 64}},
		},
		{
			name: "printer class preferred over an earlier vendor interface",
			alts: []usbAltSetting{
				{Config: 1, Interface: 0, Class: 0xff, Endpoints: []usbEndpoint{bulkOut(1)}},
				{Config: 1, Interface: 1, Class: 7, Endpoints: []usbEndpoint{bulkOut(3)}},
			},
			ok:   true,
			want: usbChoice{Config: 1, Interface: 1, Out: bulkOut(3)},
		},
		{
			name: "vendor class (Epson vendor-defined mode) with bulk OUT and IN",
			alts: []usbAltSetting{
				{Config: 1, Interface: 0, Class: 3, Endpoints: []usbEndpoint{intrIn}}, // HID
				{Config: 1, Interface: 1, Class: 0xff, Endpoints: []usbEndpoint{bulkOut(1), bulkIn(2)}},
			},
			ok:   true,
			want: usbChoice{Config: 1, Interface: 1, Out: bulkOut(1), In: &usbEndpoint{Address: 0x82, Bulk: true, MaxPacket: 64}},
		},
		{
			name: "printer class without bulk OUT is skipped for an alternate setting with one",
			alts: []usbAltSetting{
				{Config: 1, Interface: 0, Alt: 1, Class: 7, Endpoints: []usbEndpoint{bulkOut(1)}},
				{Config: 1, Interface: 0, Alt: 0, Class: 7, Endpoints: []usbEndpoint{intrIn}},
			},
			ok:   true,
			want: usbChoice{Config: 1, Alt: 1, Out: bulkOut(1)},
		},
		{
			name: "mass storage is not a printer",
			alts: []usbAltSetting{{Config: 1, Class: 8, Endpoints: []usbEndpoint{bulkOut(1), bulkIn(2)}}},
			ok:   false,
		},
		{
			name:     "named by VID:PID: any class with bulk OUT",
			alts:     []usbAltSetting{{Config: 1, Class: 2, Endpoints: []usbEndpoint{bulkOut(4)}}},
			anyClass: true,
			ok:       true,
			want:     usbChoice{Config: 1, Out: bulkOut(4)},
		},
		{
			name: "vendor class without bulk OUT",
			alts: []usbAltSetting{{Config: 1, Class: 0xff, Endpoints: []usbEndpoint{bulkIn(1), {Address: 0x02, Bulk: false}}}},
			ok:   false,
		},
	}
	for _, tc := range tests {
		got, ok := chooseUSBInterface(tc.alts, tc.anyClass)
		if ok != tc.ok {
			t.Errorf("%s: ok = %v, want %v", tc.name, ok, tc.ok)
			continue
		}
		if !ok {
			continue
		}
		if got.Config != tc.want.Config || got.Interface != tc.want.Interface || got.Alt != tc.want.Alt || got.Out != tc.want.Out ||
			(got.In == nil) != (tc.want.In == nil) || (got.In != nil && *got.In != *tc.want.In) {
			t.Errorf("%s: got %+v (in %v), want %+v (in %v)", tc.name, got, got.In, tc.want, tc.want.In)
		}
	}
}

// fakePipes is a USB printer behind the usbPipes seam: it answers DLE EOT on its IN endpoint
// a whole packet at a time, and blocks reads until the transfer's context ends when it has
// nothing to say, as a bulk IN transfer does.
type fakePipes struct {
	mu       sync.Mutex
	out      []byte
	answers  map[byte]byte
	in       [][]byte // queued IN packets
	noIn     bool
	writeErr error
	closed   int
	wake     chan struct{}
}

func newFakePipes(a1, a2, a4 byte) *fakePipes {
	return &fakePipes{answers: map[byte]byte{1: a1, 2: a2, 4: a4}, wake: make(chan struct{}, 1)}
}

func (f *fakePipes) write(ctx context.Context, b []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.writeErr != nil {
		return 0, f.writeErr
	}
	if len(b) == 3 && b[0] == 0x10 && b[1] == 0x04 {
		if a, ok := f.answers[b[2]]; ok {
			f.answer([]byte{a})
		}
		return 3, nil
	}
	if len(b) == 3 && b[0] == 0x1D && b[1] == 'r' && b[2] == 1 {
		// GS r 1: in order, and this fake prints at once.
		f.answer([]byte{0x00})
		return 3, nil
	}
	f.out = append(f.out, b...)
	return len(b), nil
}

func (f *fakePipes) answer(a []byte) {
	f.in = append(f.in, a)
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *fakePipes) read(ctx context.Context, b []byte) (int, error) {
	if f.noIn {
		return 0, printer.ErrNoReadBack
	}
	for {
		f.mu.Lock()
		if len(f.in) > 0 {
			if len(b) < 64 {
				f.mu.Unlock()
				return 0, errors.New("libusb: overflow (read buffer smaller than a packet)")
			}
			n := copy(b, f.in[0])
			f.in = f.in[1:]
			f.mu.Unlock()
			return n, nil
		}
		f.mu.Unlock()
		select {
		case <-f.wake:
		case <-ctx.Done():
			return 0, errors.New("libusb: transfer cancelled")
		}
	}
}

func (f *fakePipes) maxPacket() int { return 64 }
func (f *fakePipes) close() error {
	f.mu.Lock()
	f.closed++
	f.mu.Unlock()
	return nil
}

func TestUSBStatusThroughSeam(t *testing.T) {
	f := newFakePipes(0x16, 0x12, 0x12)
	d, _ := openFake(t, 5*time.Second, f)
	mustStatus(t, d, printer.StateOnline)
	f.mu.Lock()
	f.answers = map[byte]byte{1: 0x1e, 2: 0x16, 4: 0x12}
	f.in = append(f.in, []byte{0x12}) // a stale answer waiting on the IN endpoint
	f.mu.Unlock()
	mustStatus(t, d, printer.StateCoverOpen)

	f.mu.Lock()
	f.answers = map[byte]byte{1: 0x16, 2: 0x12, 4: 0x93}
	f.mu.Unlock()
	if st := mustStatus(t, d, printer.StateUnknown); !strings.Contains(st.Detail, "invalid answer 0x93 to DLE EOT 4") {
		t.Errorf("Detail = %q", st.Detail)
	}
	// Silence, on the same pipes opened with a short status_timeout.
	d.Close()
	f.mu.Lock()
	f.answers = map[byte]byte{}
	f.mu.Unlock()
	d, _ = openFake(t, 100*time.Millisecond, f)
	if st := mustStatus(t, d, printer.StateUnknown); !strings.Contains(st.Detail, "no answer to DLE EOT 1") {
		t.Errorf("Detail = %q", st.Detail)
	}

	job := testJob(1500)
	if err := d.Print(context.Background(), job); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if string(f.out) != string(job) {
		t.Errorf("bulk OUT got %d bytes, want the %d-byte job", len(f.out), len(job))
	}
}

func TestUSBWithoutINEndpoint(t *testing.T) {
	f := newFakePipes(0x16, 0x12, 0x12)
	f.noIn = true
	d, _ := openFake(t, 5*time.Second, f)
	mustStatus(t, d, printer.StateUnknown)
}

// An unplugged device fails the write, is closed, and the next call opens it afresh.
func TestUSBUnplugReconnect(t *testing.T) {
	first, second := newFakePipes(0x16, 0x12, 0x12), newFakePipes(0x16, 0x12, 0x12)
	first.writeErr = errors.New("libusb: no device")
	d, fd := openFake(t, 5*time.Second, first, second)
	err := d.Print(context.Background(), testJob(600))
	var we *printer.WriteError
	if !errors.As(err, &we) || we.Written != 0 || we.Total != 600 {
		t.Fatalf("Print on an unplugged device = %v", err)
	}
	if first.closed != 1 {
		t.Errorf("the failed device was closed %d times, want 1", first.closed)
	}
	mustStatus(t, d, printer.StateOnline)
	if n := fd.dials(); n != 2 {
		t.Errorf("%d dials, want 2", n)
	}
	// Nothing left to plug in: the error says not found.
	second.mu.Lock()
	second.writeErr = errors.New("libusb: no device")
	second.mu.Unlock()
	d.Print(context.Background(), []byte("x"))
	if _, err := d.Status(context.Background()); !errors.Is(err, printer.ErrNotFound) {
		t.Errorf("Status with no device = %v, want ErrNotFound", err)
	}
}

// The real libusb path in a machine without a printer (a container usually has no
// /dev/bus/usb at all): not found, wrapped, never a panic.
func TestUSBRealNoPrinter(t *testing.T) {
	for _, uri := range []string{"usb:", "usb:dead:beef"} {
		p, err := printer.Open(uri)
		if err != nil {
			t.Fatalf("Open(%q): %v", uri, err)
		}
		if _, err := p.Status(context.Background()); !errors.Is(err, printer.ErrNotFound) || !strings.Contains(err.Error(), "no printer found") {
			t.Errorf("%s: Status = %v, want ErrNotFound", uri, err)
		} else {
			t.Logf("%s: %v", uri, err)
		}
		if err := p.Print(context.Background(), []byte("x")); !errors.Is(err, printer.ErrNotFound) {
			t.Errorf("%s: Print = %v, want ErrNotFound", uri, err)
		}
		if err := p.Close(); err != nil {
			t.Errorf("%s: Close: %v", uri, err)
		}
	}
	if _, err := printer.Open("usb:xyz"); err == nil || errors.Is(err, printer.ErrNotFound) || !strings.Contains(err.Error(), `bad URI "usb:xyz"`) {
		t.Errorf(`Open("usb:xyz") = %v, want a URI error`, err)
	}
}

// TestDeviceIDOverUSBSeam: a printer-class USB printer answers GET_DEVICE_ID through the
// engine's DeviceID; a vendor-class interface cannot, and says so with ErrNoDeviceID.
func TestDeviceIDOverUSBSeam(t *testing.T) {
	f := &idPipes{fakePipes: newFakePipes(0x12, 0x12, 0x12), id: withLength("MFG:EPSON;CMD:ESC/POS;MDL:TM-T20II;CLS:PRINTER;", 47)}
	d, _ := openFake(t, 5*time.Second, f)
	id, err := d.(printer.DeviceIDReader).DeviceID(context.Background())
	if err != nil || id.Model != "TM-T20II" || id.Manufacturer != "EPSON" {
		t.Fatalf("DeviceID = %+v, %v", id, err)
	}
	plain, _ := openFake(t, 5*time.Second, newFakePipes(0x12, 0x12, 0x12)) // vendor class: no GET_DEVICE_ID
	if _, err := plain.(printer.DeviceIDReader).DeviceID(context.Background()); !errors.Is(err, printer.ErrNoDeviceID) {
		t.Fatalf("vendor-class DeviceID error = %v, want ErrNoDeviceID", err)
	}
}

// withLength prefixes s with its big-endian length the way GET_DEVICE_ID returns it.
func withLength(s string, n int) []byte {
	return append([]byte{byte(n >> 8), byte(n)}, s...)
}

// idPipes is a printer-class USB printer behind the seam: it also answers GET_DEVICE_ID.
type idPipes struct {
	*fakePipes
	id []byte
}

func (p *idPipes) deviceID(context.Context) ([]byte, error) { return p.id, nil }
