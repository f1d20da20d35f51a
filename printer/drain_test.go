package printer

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"
)

// latePrinter answers DLE EOT n over a real socket, slowly (a serial line, a busy printer):
// the first query's answer (offline) only after late — past the status timeout — and every
// later one (online) after slow, which is longer than it takes the late answer to arrive.
type latePrinter struct {
	mu         sync.Mutex
	late, slow time.Duration
	asked      int
}

func (p *latePrinter) serve(c net.Conn) {
	buf := make([]byte, 3)
	for {
		if _, err := readFull(c, buf); err != nil {
			return
		}
		p.mu.Lock()
		p.asked++
		first := p.asked == 1
		p.mu.Unlock()
		answer := map[byte]byte{1: 0x16, 2: 0x12, 4: 0x12}[buf[2]]
		if first {
			answer = 0x1E // DLE EOT 1: offline (0x16 | 0x08)
			time.AfterFunc(p.late, func() { c.Write([]byte{answer}) })
			continue
		}
		time.Sleep(p.slow) // not a test's wait: this printer is slow to answer
		c.Write([]byte{answer})
	}
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func newLateDevice(t *testing.T, late, slow time.Duration) *device {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	p := &latePrinter{late: late, slow: slow}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			go p.serve(c)
		}
	}()
	cfg := defaultDeviceConfig
	cfg.statusTimeout = 100 * time.Millisecond
	d := newDevice("tcp:"+ln.Addr().String(), cfg, tcpDialer(ln.Addr().String(), time.Second))
	t.Cleanup(func() { d.Close() })
	return d
}

// A query left unanswered unsettles the line: the next one listens the whole drain window,
// so the late answer to the first is thrown away, not read as the answer to the second. A
// query answered in full settles it again.
func TestLateAnswerIsDrainedNotReadAsTheNextOne(t *testing.T) {
	// The late answer comes 50 ms after the first query gives up, and the second query's
	// own answer 80 ms after it is asked: a drain that does not wait for the late byte lets
	// it be read as the second query's answer.
	d := newLateDevice(t, 150*time.Millisecond, 80*time.Millisecond)
	d.drainWindow = 200 * time.Millisecond
	ctx := context.Background()

	st, err := d.Status(ctx)
	if err != nil || st.State != StateUnknown {
		t.Fatalf("first status: %+v, %v; want unknown (no answer within the timeout)", st, err)
	}
	if d.settled {
		t.Fatal("the line counts as settled after an unanswered query")
	}
	st, err = d.Status(ctx)
	if err != nil || st.State != StateOnline {
		t.Fatalf("second status: %+v, %v; want online: the late 'offline' answer was read as this one's", st, err)
	}
	if !d.settled {
		t.Fatal("a query answered in full leaves the line unsettled")
	}
}
