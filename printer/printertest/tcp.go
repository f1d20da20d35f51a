package printertest

import (
	"bytes"
	"net"
	"sync"
	"testing"
)

// TCP is a raw (port 9100) network printer on loopback, one Sim behind every connection, as a
// real printer is one device whatever connects to it.
type TCP struct {
	*Sim
	ln        net.Listener
	mu        sync.Mutex
	conns     map[net.Conn]bool
	unplugged bool
	received  [][]byte // per accepted connection, in order: the job bytes it printed
	paperLeft int      // > 0: job bytes the roll still takes (RunOutOfPaperAfter)
	wg        sync.WaitGroup
}

// NewTCP starts a printer; it stops when the test ends.
func NewTCP(t testing.TB) *TCP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &TCP{Sim: NewSim(), ln: ln, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

// Addr is host:port.
func (p *TCP) Addr() string { return p.ln.Addr().String() }

// URI is the printer's tcp: URI with query options appended (e.g. "status_timeout=1s").
func (p *TCP) URI(options string) string {
	if options == "" {
		return "tcp:" + p.Addr()
	}
	return "tcp:" + p.Addr() + "?" + options
}

func (p *TCP) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.unplugged {
			// Nobody home: the connection is reset at once.
			p.mu.Unlock()
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
			continue
		}
		p.conns[c] = true
		i := len(p.received)
		p.received = append(p.received, nil)
		p.mu.Unlock()
		p.wg.Add(1)
		go p.serve(c, i)
	}
}

// serve is connection i.
func (p *TCP) serve(c net.Conn, i int) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
		c.Close()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf[:p.readSize(len(buf))])
		ans, printed := p.feed(buf[:n])
		if len(ans) > 0 {
			c.Write(ans)
		}
		ranOut := p.printedOn(i, printed)
		if err != nil {
			return
		}
		if ranOut {
			// The roll ran out mid-job: the printer resets the connection (the sender's next
			// write or read fails) and says paper out until SetStatus says otherwise.
			p.SetStatus(PaperOut)
			p.dropPartial()
			c.(*net.TCPConn).SetLinger(0)
			return
		}
	}
}

// readSize is how much the next read may take: a printer about to run out of paper takes
// no job byte more than the roll holds.
func (p *TCP) readSize(bufSize int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paperLeft > 0 && p.paperLeft < bufSize {
		return p.paperLeft
	}
	return bufSize
}

// printedOn records job bytes printed from connection i and reports whether they used up the
// paper RunOutOfPaperAfter left.
func (p *TCP) printedOn(i int, b []byte) (ranOut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.received[i] = append(p.received[i], b...)
	if p.paperLeft <= 0 || len(b) == 0 {
		return false
	}
	p.paperLeft = max(0, p.paperLeft-len(b))
	return p.paperLeft == 0
}

// RunOutOfPaperAfter makes the printer run out of paper after n more job bytes: it takes
// exactly n, then resets the connection they came on and answers paper out from then on.
func (p *TCP) RunOutOfPaperAfter(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paperLeft = n
}

// Connections returns, for every connection accepted so far in order, the job bytes that
// printed as they arrived on it (bytes printed by Release belong to no connection). A job
// sent again whole after a failure shows as a second connection with the whole job.
func (p *TCP) Connections() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([][]byte, len(p.received))
	for i, b := range p.received {
		out[i] = bytes.Clone(b)
	}
	return out
}

// Open is how many connections the printer is still reading. A connection leaves the count
// only once its sender closed it (or the printer reset it) and every byte it carried is in
// Connections: when all but the newest are gone, no older attempt's bytes are still on
// their way.
func (p *TCP) Open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Release resumes processing and sends the answers now due to every connection.
func (p *TCP) Release() {
	ans := p.Sim.Release()
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Write(ans)
	}
}

// Unplug resets every connection, refuses new ones and loses the receive buffer.
func (p *TCP) Unplug() {
	p.mu.Lock()
	p.unplugged = true
	for c := range p.conns {
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}
	p.mu.Unlock()
	p.Sim.Unplug()
}

// Replug accepts connections again.
func (p *TCP) Replug() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.unplugged = false
}
