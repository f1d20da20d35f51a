package printer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ecrd-pos/ecrd/internal/wait"
)

// tcpPrinter is a loopback listener acting as a network printer; each accepted connection gets
// a simPrinter, and the test can see and drop connections.
type tcpPrinter struct {
	ln       net.Listener
	accepted atomic.Int32
	mu       sync.Mutex
	conns    []net.Conn
	sims     []*simPrinter
	answers  [3]byte
	noRead   bool
}

func newTCPPrinter(t testing.TB, noRead bool) *tcpPrinter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &tcpPrinter{ln: ln, answers: [3]byte{0x16, 0x12, 0x12}, noRead: noRead}
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, c := range s.conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			sim := newSimPrinter(c, s.answers[0], s.answers[1], s.answers[2])
			s.sims = append(s.sims, sim)
			s.mu.Unlock()
			s.accepted.Add(1)
			if !noRead {
				go sim.run()
			}
		}
	}()
	return s
}

func (s *tcpPrinter) uri() string { return "tcp:" + s.ln.Addr().String() }

func (s *tcpPrinter) sim(i int) *simPrinter {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sims[i]
}

func (s *tcpPrinter) setAnswers(a1, a2, a4 byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answers = [3]byte{a1, a2, a4}
	for _, sim := range s.sims {
		sim.setAnswers(a1, a2, a4)
	}
}

func (s *tcpPrinter) dropAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
}

func TestTCPStatusAndPrint(t *testing.T) {
	srv := newTCPPrinter(t, false)
	p, err := Open(srv.uri() + "?status_timeout=5s")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if srv.accepted.Load() != 0 {
		t.Fatal("Open connected; it must connect lazily")
	}
	mustStatus(t, p, StateOnline)
	job := testJob(5000)
	if err := p.Print(context.Background(), job); err != nil {
		t.Fatalf("Print: %v", err)
	}
	wait.Until(t, wait.Long, "the job at the printer", func() bool { return len(srv.sim(0).received()) >= len(job) })
	if got := srv.sim(0).received(); !bytes.Equal(got, job) {
		t.Fatalf("printer received %d bytes, want the whole %d-byte job", len(got), len(job))
	}
	srv.setAnswers(0x16|0x08, 0x12|0x04, 0x12)
	mustStatus(t, p, StateCoverOpen)
	srv.setAnswers(0x16, 0x12, 0x12|0x60)
	mustStatus(t, p, StatePaperOut)
	if n := srv.accepted.Load(); n != 1 {
		t.Errorf("%d connections, want one reused", n)
	}
}

// Status and Print from different goroutines must never interleave on the wire: every status
// query must reach the printer between whole jobs.
func TestTCPStatusNeverInterleavesWithPrint(t *testing.T) {
	srv := newTCPPrinter(t, false)
	p, err := Open(srv.uri() + "?chunk=256")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	job := testJob(20000)
	const jobs = 5
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for range jobs {
			if err := p.Print(context.Background(), job); err != nil {
				t.Error(err)
			}
		}
	}()
	go func() {
		defer wg.Done()
		for range 20 {
			if _, err := p.Status(context.Background()); err != nil {
				t.Error(err)
			}
		}
	}()
	wg.Wait()
	wait.Until(t, wait.Long, "all jobs", func() bool { return len(srv.sim(0).received()) >= jobs*len(job) })
	for _, at := range srv.sim(0).queries() {
		if at%len(job) != 0 {
			t.Fatalf("a status query arrived after byte %d, inside a job", at)
		}
	}
}

// hugeJob is a 64 MiB job, far more than loopback's socket buffers hold, made once: under
// -race making it costs a second and a half. Print never changes a job.
var hugeJob = sync.OnceValue(func() []byte { return testJob(64 << 20) })

func TestTCPWriteDeadline(t *testing.T) {
	srv := newTCPPrinter(t, true) // accepts, never reads
	// A short status_timeout: the Status below waits out every query the printer leaves
	// unanswered, and what it answers does not matter here.
	p, err := Open(srv.uri() + "?write_timeout=200ms&chunk=65536&status_timeout=50ms")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	job := hugeJob() // far more than loopback socket buffers hold
	err = p.Print(context.Background(), job)
	var we *WriteError
	if !errors.As(err, &we) || we.Written >= we.Total || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Print to a printer that never reads = %v, want *WriteError with a deadline partway", err)
	}
	t.Logf("%v", err)
	// The dead connection was dropped: the next call dials again.
	_, _ = p.Status(context.Background())
	if n := srv.accepted.Load(); n != 2 {
		t.Errorf("%d connections after the failed write, want a fresh one (2)", n)
	}
}

func TestTCPContextCancelEndsPrint(t *testing.T) {
	srv := newTCPPrinter(t, true)
	p, err := Open(srv.uri() + "?chunk=65536&status_timeout=50ms")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// Connect first (the printer never answers: unknown), so the cancel below lands in the
	// write loop, not in the dial.
	mustStatus(t, p, StateUnknown)
	ctx, cancel := context.WithCancel(context.Background())
	// Cancel once bytes of the job reach the printer's socket: Print is in its write loop then,
	// and soon blocked, since the job is far bigger than the socket buffers. (A goroutine must
	// not fail the test: if the bytes never come, Print's own timeout ends it.)
	go func() {
		srv.mu.Lock()
		sc := srv.conns[0].(*net.TCPConn)
		srv.mu.Unlock()
		rc, _ := sc.SyscallConn()
		wait.Try(wait.Long, func() error {
			queued := 0
			rc.Control(func(fd uintptr) { queued, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) })
			if queued <= 3 { // no more than the status queries
				return fmt.Errorf("%d bytes at the printer", queued)
			}
			cancel()
			return nil
		})
	}()
	err = p.Print(ctx, hugeJob())
	var we *WriteError
	if !errors.As(err, &we) || !errors.Is(err, context.Canceled) || we.Written >= we.Total {
		t.Fatalf("Print with a cancelled context = %v, want a WriteError wrapping context.Canceled", err)
	}
}

func TestTCPClosedPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p, err := Open("tcp:" + addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Status(context.Background()); err == nil {
		t.Error("Status on a closed port succeeded")
	}
	if err := p.Print(context.Background(), []byte("x")); err == nil {
		t.Error("Print on a closed port succeeded")
	}
}

func TestTCPReconnectAfterServerDrop(t *testing.T) {
	srv := newTCPPrinter(t, false)
	p, err := Open(srv.uri())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	mustStatus(t, p, StateOnline)
	srv.dropAll()
	// The first call after the drop may fail (that is how a dead connection is noticed); the
	// device must then dial again rather than keep the dead socket.
	var st Status
	wait.Until(t, wait.Long, "a status over a new connection", func() bool {
		st, err = p.Status(context.Background())
		return err == nil && srv.accepted.Load() == 2
	})
	if st.State != StateOnline {
		t.Errorf("Status after reconnect = %+v", st)
	}
	job := testJob(1000)
	if err := p.Print(context.Background(), job); err != nil {
		t.Fatalf("Print after reconnect: %v", err)
	}
	wait.Until(t, wait.Long, "the job on the new connection", func() bool { return bytes.Equal(srv.sim(1).received(), job) })
}

// BenchmarkTCPStatusAndPrint is what the spool does per receipt on a network printer: ask its
// status, then print a 2 KB job and wait for the printer to confirm it (GS r 1) — on loopback,
// so the time is ecrd's own (drains, queries, the confirmation), not the network's.
func BenchmarkTCPStatusAndPrint(b *testing.B) {
	srv := newTCPPrinter(b, false)
	p, err := Open(srv.uri())
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	job := testJob(2048)
	for b.Loop() {
		if st, err := p.Status(ctx); err != nil || st.State != StateOnline {
			b.Fatalf("Status: %+v, %v", st, err)
		}
		if err := p.Print(ctx, job); err != nil {
			b.Fatalf("Print: %v", err)
		}
	}
}
