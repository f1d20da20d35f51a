package printer

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// testPipe is the transport TestRegisteredTransport registers, once per test binary (-count).
var testPipe struct {
	once sync.Once
	dial func(rest string) (Dialer, error)
}

// A transport registered from outside runs on the same engine as the built-in ones: the
// common options apply, status is DLE EOT, and a job is confirmed on paper.
func TestRegisteredTransport(t *testing.T) {
	sims := make(chan *simPrinter, 1)
	var gotRest string
	testPipe.dial = func(rest string) (Dialer, error) {
		if rest == "bad" {
			return nil, errors.New("want testpipe:NAME")
		}
		gotRest = rest
		return func(context.Context) (Conn, error) {
			ours, theirs := net.Pipe()
			s := newSimPrinter(theirs, 0x16, 0x12, 0x12)
			go s.run()
			sims <- s
			return ours, nil
		}, nil
	}
	testPipe.once.Do(func() {
		RegisterTransport("testpipe", func(rest string) (Dialer, error) { return testPipe.dial(rest) })
	})
	p, err := Open("testpipe:one?status_timeout=2s&chunk=100")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if gotRest != "one" || p.(*device).cfg.statusTimeout != 2*time.Second || p.(*device).cfg.chunk != 100 {
		t.Errorf("rest %q, config %+v", gotRest, p.(*device).cfg)
	}
	mustStatus(t, p, StateOnline)
	sim := <-sims
	job := testJob(700)
	if err := p.Print(context.Background(), job); err != nil {
		t.Fatal(err)
	}
	if got := sim.received(); string(got) != string(job) {
		t.Errorf("the printer got %d bytes, want the %d-byte job", len(got), len(job))
	}
	if st := mustStatus(t, p, StateOnline); !strings.HasPrefix(st.Completion, "in-order") {
		t.Errorf("Completion = %q", st.Completion)
	}

	for uri, want := range map[string]string{
		"testpipe:bad":               `printer: bad URI "testpipe:bad": want testpipe:NAME`,
		"testpipe:x?chunk=0":         `printer: bad URI "testpipe:x?chunk=0": chunk="0"`,
		"testpipe:x?baud=9600":       `unknown option "baud" for testpipe:`,
		"testpipe:x?write_timeout=1": `write_timeout="1"`,
	} {
		if _, err := Open(uri); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Open(%q) = %v, want %q", uri, err, want)
		}
	}

	for _, scheme := range []string{"testpipe", "file", "tcp", "", "a:b", "a?b"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("RegisterTransport(%q) did not panic", scheme)
				}
			}()
			RegisterTransport(scheme, func(string) (Dialer, error) { return nil, nil })
		}()
	}
}

// Without printer/usb registered (this test binary does not link it), a usb: URI says what
// to use instead: lp:, the kernel's usblp device for the same printer.
func TestUSBNotBuiltIn(t *testing.T) {
	for _, uri := range []string{"usb:", "usb:04b8:0e15?status_timeout=1s", "usb:xyz"} {
		_, err := Open(uri)
		if err == nil || !strings.Contains(err.Error(), `cannot open "`+uri+`"`) ||
			!strings.Contains(err.Error(), "use lp:/dev/usb/lp0") || !strings.Contains(err.Error(), "cgo") {
			t.Errorf("Open(%q) = %v, want the error that points to lp:", uri, err)
		}
	}
}
