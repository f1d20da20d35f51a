package printertest

import (
	"bytes"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// TestTCPRunsOutOfPaper: the roll takes exactly the job bytes RunOutOfPaperAfter allows, then
// the connection is reset and the printer says paper out; Connections keeps what each
// connection printed, so a test can tell a partial first attempt from a whole retry.
func TestTCPRunsOutOfPaper(t *testing.T) {
	p := NewTCP(t)
	p.RunOutOfPaperAfter(1000)
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	job := bytes.Repeat([]byte("ABCDEFGH\n"), 300) // 2700 bytes: more than the roll holds
	c.Write(job)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.EOF) {
		t.Fatalf("read after running out: %v, want the connection reset", err)
	}
	if got := p.Paper(); !bytes.Equal(got, job[:1000]) {
		t.Fatalf("printed %d bytes, want exactly the first 1000 of the job", len(got))
	}

	c2, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.Write([]byte{0x10, 0x04, 4})
	c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	a := make([]byte, 1)
	if _, err := io.ReadFull(c2, a); err != nil || a[0] != PaperOut[2] {
		t.Fatalf("DLE EOT 4 after running out: % x, %v; want paper out % x", a, err, PaperOut[2])
	}
	p.SetStatus(Online)
	c2.Write(append([]byte("retry\n"), 0x1d, 'r', 1))
	if _, err := io.ReadFull(c2, a); err != nil || a[0] != 0x00 {
		t.Fatalf("GS r 1 after the retry: % x, %v", a, err)
	}
	conns := p.Connections()
	if len(conns) != 2 || !bytes.Equal(conns[0], job[:1000]) || string(conns[1]) != "retry\n" {
		t.Fatalf("connections printed %q", conns)
	}
}
