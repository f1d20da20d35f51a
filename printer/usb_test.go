package printer

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

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
		return 0, errNoReadBack
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

func fakeUSBDevice(pipes ...*fakePipes) (*device, *int) {
	dials := 0
	cfg := defaultDeviceConfig
	cfg.statusTimeout = 5 * time.Second // lowered where silence is the point
	return newDevice("usb:fake", cfg, func(ctx context.Context) (conn, error) {
		if dials >= len(pipes) {
			return nil, ErrNotFound
		}
		dials++
		return newUSBConn(pipes[dials-1]), nil
	}), &dials
}

func TestUSBStatusThroughSeam(t *testing.T) {
	f := newFakePipes(0x16, 0x12, 0x12)
	d, _ := fakeUSBDevice(f)
	defer d.Close()
	mustStatus(t, d, StateOnline)
	f.mu.Lock()
	f.answers = map[byte]byte{1: 0x1e, 2: 0x16, 4: 0x12}
	f.in = append(f.in, []byte{0x12}) // a stale answer waiting on the IN endpoint
	f.mu.Unlock()
	mustStatus(t, d, StateCoverOpen)

	f.mu.Lock()
	f.answers = map[byte]byte{1: 0x16, 2: 0x12, 4: 0x93}
	f.mu.Unlock()
	if st := mustStatus(t, d, StateUnknown); !strings.Contains(st.Detail, "invalid answer 0x93 to DLE EOT 4") {
		t.Errorf("Detail = %q", st.Detail)
	}
	f.mu.Lock()
	f.answers = map[byte]byte{}
	f.mu.Unlock()
	d.cfg.statusTimeout = 100 * time.Millisecond
	if st := mustStatus(t, d, StateUnknown); !strings.Contains(st.Detail, "no answer to DLE EOT 1") {
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
	d, _ := fakeUSBDevice(f)
	defer d.Close()
	mustStatus(t, d, StateUnknown)
}

// An unplugged device fails the write, is closed, and the next call opens it afresh.
func TestUSBUnplugReconnect(t *testing.T) {
	first, second := newFakePipes(0x16, 0x12, 0x12), newFakePipes(0x16, 0x12, 0x12)
	first.writeErr = errors.New("libusb: no device")
	d, dials := fakeUSBDevice(first, second)
	defer d.Close()
	err := d.Print(context.Background(), testJob(600))
	var we *WriteError
	if !errors.As(err, &we) || we.Written != 0 || we.Total != 600 {
		t.Fatalf("Print on an unplugged device = %v", err)
	}
	if first.closed != 1 {
		t.Errorf("the failed device was closed %d times, want 1", first.closed)
	}
	mustStatus(t, d, StateOnline)
	if *dials != 2 {
		t.Errorf("%d dials, want 2", *dials)
	}
	// Nothing left to plug in: the error says not found.
	second.mu.Lock()
	second.writeErr = errors.New("libusb: no device")
	second.mu.Unlock()
	d.Print(context.Background(), []byte("x"))
	if _, err := d.Status(context.Background()); !errors.Is(err, ErrNotFound) {
		t.Errorf("Status with no device = %v, want ErrNotFound", err)
	}
}

// The real libusb path in a machine without a printer (a container usually has no
// /dev/bus/usb at all): not found, wrapped, never a panic.
func TestUSBRealNoPrinter(t *testing.T) {
	for _, uri := range []string{"usb:", "usb:dead:beef"} {
		p, err := Open(uri)
		if err != nil {
			t.Fatalf("Open(%q): %v", uri, err)
		}
		if _, err := p.Status(context.Background()); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "no printer found") {
			t.Errorf("%s: Status = %v, want ErrNotFound", uri, err)
		} else {
			t.Logf("%s: %v", uri, err)
		}
		if err := p.Print(context.Background(), []byte("x")); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: Print = %v, want ErrNotFound", uri, err)
		}
		if err := p.Close(); err != nil {
			t.Errorf("%s: Close: %v", uri, err)
		}
	}
	if _, err := Open("usb:xyz"); err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `bad URI "usb:xyz"`) {
		t.Errorf(`Open("usb:xyz") = %v, want a URI error`, err)
	}
}
