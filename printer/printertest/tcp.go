package printertest

import (
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
		p.mu.Unlock()
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *TCP) serve(c net.Conn) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
		c.Close()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if ans := p.Feed(buf[:n]); len(ans) > 0 {
			c.Write(ans)
		}
		if err != nil {
			return
		}
	}
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
