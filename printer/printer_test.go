package printer

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/printer/printertest"
)

func TestParseURI(t *testing.T) {
	good := []struct {
		uri   string
		check func(target) bool
	}{
		{"file:/tmp/p.bin", func(g target) bool { return g.path == "/tmp/p.bin" }},
		{"lp:/dev/usb/lp0", func(g target) bool { return g.path == "/dev/usb/lp0" && g.dev == defaultDeviceConfig }},
		{"serial:/dev/ttyUSB0", func(g target) bool {
			return g.serial == serialConfig{baud: 9600, databits: 8, parity: 'N', stopbits: 1, flow: "none"}
		}},
		{"serial:/dev/ttyS0?baud=19200&flow=rtscts&parity=even&databits=7&stopbits=2", func(g target) bool {
			return g.serial == serialConfig{baud: 19200, databits: 7, parity: 'E', stopbits: 2, flow: "rtscts"}
		}},
		{"serial:/dev/ttyS0?flow=xonxoff&status_timeout=250ms&write_timeout=3s&chunk=64", func(g target) bool {
			return g.serial.flow == "xonxoff" && g.dev == deviceConfig{statusTimeout: 250 * time.Millisecond, writeTimeout: 3 * time.Second, confirmTimeout: 10 * time.Second, chunk: 64}
		}},
		{"tcp:192.168.1.50", func(g target) bool { return g.addr == "192.168.1.50:9100" && g.dialTimeout == 5*time.Second }},
		{"tcp:printer.local:9101?timeout=2s", func(g target) bool { return g.addr == "printer.local:9101" && g.dialTimeout == 2*time.Second }},
		{"tcp:[::1]:9100", func(g target) bool { return g.addr == "[::1]:9100" }},
		{"tcp:[fe80::1]", func(g target) bool { return g.addr == "[fe80::1]:9100" }},
		{"tcp:printer?confirm_timeout=45s", func(g target) bool { return g.dev.confirmTimeout == 45*time.Second }},
	}
	for _, tc := range good {
		got, err := parseURI(tc.uri)
		if err != nil {
			t.Errorf("parseURI(%q): %v", tc.uri, err)
			continue
		}
		if !tc.check(got) {
			t.Errorf("parseURI(%q) = %+v", tc.uri, got)
		}
	}
	bad := []struct{ uri, want string }{
		{"", "want scheme:"},
		{"/dev/usb/lp0", "want scheme:"},
		{"http://printer", `unknown scheme "http"`},
		{"file:", "missing device path"},
		{"lp:", "missing device path"},
		{"serial:?baud=9600", "missing device path"},
		{"serial:/dev/ttyS0?baud=12345", "baud=12345: not a standard rate"},
		{"serial:/dev/ttyS0?baud=fast", `baud="fast": want a number`},
		{"serial:/dev/ttyS0?flow=dtrdsr", `flow="dtrdsr": want none, rtscts or xonxoff`},
		{"serial:/dev/ttyS0?parity=mark", `parity="mark"`},
		{"serial:/dev/ttyS0?databits=9", `databits="9"`},
		{"serial:/dev/ttyS0?bud=9600", `unknown option "bud" for serial:`},
		{"tcp:", "want tcp:host"},
		{"tcp:host:99999", `port "99999": want 1-65535`},
		{"tcp:host:http", `port "http"`},
		{"tcp:host?timeout=soon", `timeout="soon": want a positive duration`},
		{"lp:/dev/usb/lp0?status_timeout=0s", "status_timeout"},
		{"tcp:printer?confirm_timeout=soon", "confirm_timeout"},
		{"file:/tmp/p.bin?status_timeout=1s", `unknown option "status_timeout" for file:`},
		{"lp:/dev/usb/lp0?a=%zz", "query"},
	}
	for _, tc := range bad {
		_, err := Open(tc.uri)
		if err == nil {
			t.Errorf("Open(%q) accepted a bad URI", tc.uri)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `"`+tc.uri+`"`) {
			t.Errorf("Open(%q) error = %q, want it to name the URI and contain %q", tc.uri, err, tc.want)
		}
	}
}

func TestDecodeStatus(t *testing.T) {
	const ok = 0x12 // 0001 0010: the fixed bits only, nothing wrong
	tests := []struct {
		name    string
		answers [3]byte
		want    State
		detail  string
	}{
		{"all clear", [3]byte{ok, ok, ok}, StateOnline, ""},
		{"drawer pin and feed button bits are not states", [3]byte{ok | 0x04, ok | 0x08, ok}, StateOnline, ""},
		{"offline (n=1 bit 3)", [3]byte{ok | 0x08, ok, ok}, StateOffline, "offline"},
		{"cover open (n=2 bit 2)", [3]byte{ok | 0x08, ok | 0x04, ok}, StateCoverOpen, "cover open, offline"},
		{"paper end stop (n=2 bit 5)", [3]byte{ok, ok | 0x20, ok}, StatePaperOut, "stopped by paper end"},
		{"error (n=2 bit 6)", [3]byte{ok, ok | 0x40, ok}, StateOffline, "error"},
		{"near end bit 2 (n=4)", [3]byte{ok, ok, ok | 0x04}, StatePaperNearEnd, "paper near end"},
		{"near end bit 3 (n=4)", [3]byte{ok, ok, ok | 0x08}, StatePaperNearEnd, "paper near end"},
		{"paper end bit 5 (n=4)", [3]byte{ok, ok, ok | 0x20}, StatePaperOut, "paper end"},
		{"paper end bit 6 (n=4)", [3]byte{ok, ok, ok | 0x40}, StatePaperOut, "paper end"},
		{"paper out wins over everything", [3]byte{ok | 0x08, ok | 0x24, ok | 0x6c}, StatePaperOut, "paper end, stopped by paper end, cover open, offline, paper near end"},
		{"cover open wins over near end", [3]byte{ok, ok | 0x04, ok | 0x0c}, StateCoverOpen, "cover open, paper near end"},
		{"offline wins over near end", [3]byte{ok | 0x08, ok, ok | 0x0c}, StateOffline, "offline, paper near end"},
		{"typical TM-T20 answers", [3]byte{0x16, 0x12, 0x12}, StateOnline, ""},
	}
	for _, tc := range tests {
		got, err := decodeStatus(tc.answers)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got.State != tc.want || got.Detail != tc.detail {
			t.Errorf("%s: decodeStatus(% x) = %+v, want %s %q", tc.name, tc.answers, got, tc.want, tc.detail)
		}
	}
	for _, b := range []byte{0x00, 0xff, 0x10, 0x02, 0x13, 0x11, 0x92, 0x1a & 0xfd, 0x93, 0x32 | 0x80} {
		for i := range 3 {
			answers := [3]byte{ok, ok, ok}
			answers[i] = b
			if st, err := decodeStatus(answers); err == nil {
				t.Errorf("decodeStatus(% x) = %+v, want garbage rejected", answers, st)
			}
		}
	}
	// Every byte with the fixed pattern is accepted; every other byte is rejected.
	for b := 0; b < 256; b++ {
		want := b&0x80 == 0 && b&0x10 != 0 && b&0x02 != 0 && b&0x01 == 0
		if validStatusByte(byte(b)) != want {
			t.Errorf("validStatusByte(0x%02x) = %v, want %v", b, !want, want)
		}
	}
}

func TestReady(t *testing.T) {
	for st, want := range map[State]bool{
		StateOnline: true, StatePaperNearEnd: true, StateUnknown: true,
		StateOffline: false, StatePaperOut: false, StateCoverOpen: false,
	} {
		if got := (Status{State: st}).Ready(); got != want {
			t.Errorf("Status{%s}.Ready() = %v, want %v", st, got, want)
		}
	}
}

func TestWriteError(t *testing.T) {
	err := error(&WriteError{URI: "serial:/dev/ttyUSB0", Written: 512, Total: 1830, Err: context.DeadlineExceeded})
	if got, want := err.Error(), "printer: wrote 512 of 1830 bytes to serial:/dev/ttyUSB0: context deadline exceeded"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Error("WriteError does not unwrap to its cause")
	}
}

// simPrinter plays an ESC/POS printer on the far end of a real line (pty master, TCP
// connection) with printertest.Sim: it answers DLE EOT n with the configured byte and GS r 1
// once the job before it is printed, and keeps everything else as the printed job. It also
// records, for each query, how many job bytes had arrived before it, so a test can see
// whether a query ever landed inside a job.
type simPrinter struct {
	rw  io.ReadWriter
	sim *printertest.Sim

	mu       sync.Mutex
	readErr  error
	finished bool
}

func newSimPrinter(rw io.ReadWriter, a1, a2, a4 byte) *simPrinter {
	s := &simPrinter{rw: rw, sim: printertest.NewSim()}
	s.setAnswers(a1, a2, a4)
	return s
}

func (s *simPrinter) setAnswers(a1, a2, a4 byte) { s.sim.SetStatus([3]byte{a1, a2, a4}) }

func (s *simPrinter) silence() { s.sim.Silence() }

func (s *simPrinter) run() {
	buf := make([]byte, 4096)
	for {
		n, err := s.rw.Read(buf)
		if answer := s.sim.Feed(buf[:n]); len(answer) > 0 {
			s.rw.Write(answer)
		}
		if err != nil {
			s.mu.Lock()
			s.readErr, s.finished = err, true
			s.mu.Unlock()
			return
		}
	}
}

func (s *simPrinter) received() []byte { return s.sim.Paper() }

func (s *simPrinter) queries() []int { return s.sim.Queries() }

func testJob(n int) []byte {
	job := make([]byte, n)
	for i := range min(n, 90) {
		job[i] = byte(0x20 + i) // printable, never DLE
	}
	// The rest repeats the first 90 bytes: copied in doubling runs, not byte by byte, which
	// under -race costs seconds for the 64 MiB jobs.
	for done := min(n, 90); done < n; done *= 2 {
		copy(job[done:], job[:done])
	}
	return job
}

func mustStatus(t *testing.T, p Printer, want State) Status {
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
