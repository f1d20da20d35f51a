package spool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/ecrd-pos/ecrd/internal/wait"
	"github.com/ecrd-pos/ecrd/printer"
	"github.com/ecrd-pos/ecrd/printer/printertest"
)

// These tests put the spool in front of REAL transports (the file fake, a FIFO behind lp:, a
// loopback TCP printer, a pseudo-terminal behind serial:) and break the far end the way a
// printer breaks: paper out, cover open, unplugged, a line that stops taking bytes. Each
// asserts where the job waits, what the failed write said, and that the paper ends up with
// one complete copy of the job.

// recorder is the real printer with its Print errors kept, so a test can see the
// *printer.WriteError the spool retried after.
type recorder struct {
	printer.Printer
	mu   sync.Mutex
	errs []error
}

func (r *recorder) Print(ctx context.Context, job []byte) error {
	err := r.Printer.Print(ctx, job)
	if err != nil {
		r.mu.Lock()
		r.errs = append(r.errs, err)
		r.mu.Unlock()
	}
	return err
}

func (r *recorder) writeErrors() []*printer.WriteError {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*printer.WriteError
	for _, err := range r.errs {
		var we *printer.WriteError
		if errors.As(err, &we) {
			out = append(out, we)
		}
	}
	return out
}

func openReal(t *testing.T, uri string) *recorder {
	t.Helper()
	p, err := printer.Open(uri)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return &recorder{Printer: p}
}

func faultOpts() Options {
	return Options{Poll: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond, StatusTimeout: 3 * time.Second,
		PrintTimeout: 30 * time.Second}
}

// receiptJob is n bytes that look like a receipt: ESC @, printable text and LFs, a cut. It
// never holds DLE, so a simulated printer can tell job bytes from DLE EOT queries.
func receiptJob(n int) []byte {
	job := []byte{0x1b, '@'}
	for i := 0; len(job) < n-5; i++ {
		if i%48 == 47 {
			job = append(job, '\n')
		} else {
			job = append(job, byte('A'+i%26))
		}
	}
	return append(job, '\n', 0x1d, 'V', 66, 3)
}

// waitHeld waits until job id is held with a reason containing want.
func waitHeld(t *testing.T, s *Spool, id, want string) Info {
	t.Helper()
	var in Info
	wait.For(t, 10*time.Second, fmt.Sprintf("job %s held with %q", id, want), func() error {
		var err error
		if in, err = s.Job(id); err != nil {
			t.Fatal(err)
		}
		if in.State == StatePrinted {
			t.Fatalf("job %s printed; want it held (%s)", id, want)
		}
		if in.Held && strings.Contains(in.Reason, want) {
			return nil
		}
		return fmt.Errorf("%+v", in)
	})
	return in
}

// netOptions are the tcp: options of the fault tests' network printers.
const netOptions = "status_timeout=1s&write_timeout=2s"

// copies counts the printer's connections that received exactly job, and returns the job
// bytes every connection received.
func copies(np *printertest.TCP, job []byte) (int, [][]byte) {
	all := np.Connections()
	n := 0
	for _, got := range all {
		if bytes.Equal(got, job) {
			n++
		}
	}
	return n, all
}

func TestPrinterFaults(t *testing.T) {
	t.Run("paper out before the job (file printer)", func(t *testing.T) {
		dir := t.TempDir()
		pf := filepath.Join(dir, "printer.bin")
		os.WriteFile(pf+".status", []byte("paper_out\n"), 0o644)
		p := openReal(t, "file:"+pf)
		s, err := openSpool(t, filepath.Join(dir, "spool"), p, faultOpts())
		if err != nil {
			t.Fatal(err)
		}
		run(t, s)
		job := receiptJob(2000)
		s.Add(Job{ID: "j1", Kind: "receipt", Data: job})
		in := waitHeld(t, s, "j1", "paper_out")
		if b, _ := os.ReadFile(pf); len(b) != 0 || in.Attempts != 0 {
			t.Fatalf("printer got %d bytes, %d attempts while paper out", len(b), in.Attempts)
		}
		os.WriteFile(pf+".status", []byte("online\n"), 0o644)
		waitPrinted(t, s, "j1")
		if b, _ := os.ReadFile(pf); !bytes.Equal(b, job) {
			t.Fatalf("printer file has %d bytes, want the %d-byte job once", len(b), len(job))
		}
	})

	t.Run("paper out during the job (tcp printer drops the connection)", func(t *testing.T) {
		np := printertest.NewTCP(t)
		np.RunOutOfPaperAfter(8 << 10)
		p := openReal(t, np.URI(netOptions))
		s, err := openSpool(t, t.TempDir(), p, faultOpts())
		if err != nil {
			t.Fatal(err)
		}
		run(t, s)
		// Larger than what loopback's socket buffers take from a peer that stopped reading,
		// so the reset surfaces as a write error rather than being absorbed by the kernel.
		job := receiptJob(4 << 20)
		s.Add(Job{ID: "big", Kind: "receipt", Data: job})
		in := waitHeld(t, s, "big", "paper_out")
		if in.Attempts < 1 {
			t.Fatalf("held without a failed attempt: %+v", in)
		}
		wes := p.writeErrors()
		if len(wes) == 0 {
			t.Fatalf("no *printer.WriteError; errors: %v", p.errs)
		}
		if we := wes[0]; we.Written <= 0 || we.Written >= we.Total || we.Total != len(job) {
			t.Fatalf("WriteError %v: want part of the %d-byte job written", we, len(job))
		}
		t.Logf("first attempt: %v", wes[0])
		np.SetStatus(printertest.Online) // paper loaded
		waitPrinted(t, s, "big")
		if q := s.Pending(); len(q) != 0 {
			t.Fatalf("printed, and still queued: %+v", q)
		}
		// "Printed" means the last byte is in the kernel: wait for the printer to read it. The
		// job is printed and the queue empty, so no attempt is to come: once every connection
		// but the newest (the printed attempt's) has ended, all the bytes any attempt sent are
		// counted.
		wait.Until(t, wait.Long, "the printer to read every attempt's bytes", func() bool {
			all := np.Connections()
			return len(all) > 0 && bytes.Equal(all[len(all)-1], job) && np.Open() <= 1
		})
		n, all := copies(np, job)
		if n != 1 {
			sizes := []int{}
			for _, b := range all {
				sizes = append(sizes, len(b))
			}
			t.Fatalf("%d complete copies of the job reached the printer (bytes per connection %v), want 1", n, sizes)
		}
		if first := all[0]; len(first) == 0 || len(first) >= len(job) || !bytes.HasPrefix(job, first) {
			t.Fatalf("first connection got %d bytes; want a prefix of the job", len(first))
		}
	})

	t.Run("cover open (tcp printer answers DLE EOT)", func(t *testing.T) {
		np := printertest.NewTCP(t)
		np.SetStatus(printertest.CoverOpen)
		p := openReal(t, np.URI(netOptions))
		s, err := openSpool(t, t.TempDir(), p, faultOpts())
		if err != nil {
			t.Fatal(err)
		}
		run(t, s)
		job := receiptJob(3000)
		s.Add(Job{ID: "c1", Kind: "receipt", Data: job})
		waitHeld(t, s, "c1", "cover_open")
		if n, all := copies(np, job); n != 0 || len(bytes.Join(all, nil)) != 0 {
			t.Fatal("job bytes reached a printer with its cover open")
		}
		np.SetStatus(printertest.Online)
		waitPrinted(t, s, "c1")
		wait.Until(t, wait.Long, "the printer to read the job", func() bool { n, _ := copies(np, job); return n > 0 })
		if n, _ := copies(np, job); n != 1 {
			t.Fatalf("%d copies after closing the cover, want 1", n)
		}
		if len(p.writeErrors()) != 0 {
			t.Fatalf("writes failed: %v", p.errs)
		}
	})

	t.Run("unplugged (lp device removed, then back)", func(t *testing.T) {
		dir := t.TempDir()
		dev := filepath.Join(dir, "lp0")
		plug := func() *fifoReader {
			if err := unix.Mkfifo(dev, 0o600); err != nil {
				t.Fatal(err)
			}
			return newFifoReader(t, dev)
		}
		r1 := plug()
		p := openReal(t, "lp:"+dev+"?write_timeout=2s")
		s, err := openSpool(t, filepath.Join(dir, "spool"), p, faultOpts())
		if err != nil {
			t.Fatal(err)
		}
		run(t, s)
		first := receiptJob(1000)
		s.Add(Job{ID: "before", Kind: "receipt", Data: first})
		waitPrinted(t, s, "before")
		wait.Until(t, wait.Long, "the first printer to read the job", func() bool { return len(r1.received()) >= len(first) })

		// Unplug: the device goes away under the open descriptor, and its node is removed.
		r1.close()
		os.Remove(dev)
		job := receiptJob(5000)
		s.Add(Job{ID: "after", Kind: "receipt", Data: job})
		waitHeld(t, s, "after", "no such file")
		wes := p.writeErrors()
		if len(wes) == 0 || !errors.Is(wes[0], syscall.EPIPE) || wes[0].Total != len(job) {
			t.Fatalf("write errors %v, want a WriteError (EPIPE) for the %d-byte job", p.errs, len(job))
		}

		r2 := plug()
		waitPrinted(t, s, "after")
		wait.Until(t, wait.Long, "the replugged printer to read the job", func() bool { return len(r2.received()) >= len(job) })
		if got := r2.received(); !bytes.Equal(got, job) {
			t.Fatalf("replugged printer got %d bytes, want the %d-byte job once", len(got), len(job))
		}
		if got := r1.received(); !bytes.Equal(got, first) {
			t.Fatalf("first printer got %d bytes, want only the first job", len(got))
		}
	})

	t.Run("serial line stall (pty master stops reading)", func(t *testing.T) {
		master, slave, err := pty.Open()
		if err != nil {
			t.Fatalf("no pseudo-terminal pair (serial tests need /dev/ptmx): %v", err)
		}
		// The slave stays open for the whole test, or the master reads EIO between reconnects.
		t.Cleanup(func() { master.Close(); slave.Close() })
		sim := printertest.NewSim()
		var mu sync.Mutex
		reading := sync.NewCond(&mu)
		paused := false
		setPaused := func(v bool) { mu.Lock(); paused = v; reading.Broadcast(); mu.Unlock() }
		go func() {
			buf := make([]byte, 64<<10)
			for {
				mu.Lock()
				for paused {
					reading.Wait()
				}
				mu.Unlock()
				n, err := master.Read(buf)
				if ans := sim.Feed(buf[:n]); len(ans) > 0 {
					master.Write(ans)
				}
				if err != nil {
					return
				}
			}
		}()
		p := openReal(t, "serial:"+slave.Name()+"?baud=115200&status_timeout=300ms&write_timeout=300ms&chunk=4096")
		s, err := openSpool(t, t.TempDir(), p, faultOpts())
		if err != nil {
			t.Fatal(err)
		}
		run(t, s)
		warm := receiptJob(500)
		s.Add(Job{ID: "warm", Kind: "receipt", Data: warm})
		waitPrinted(t, s, "warm")
		wait.Until(t, wait.Long, "the warm-up job on paper", func() bool { return len(sim.Paper()) >= len(warm) })

		// The printer holds the line (buffer full, CTS low): once the reader has taken what is
		// in flight (the next status query), nobody reads. The 1 MiB job is far more than that.
		setPaused(true)
		job := receiptJob(1 << 20)
		s.Add(Job{ID: "stall", Kind: "receipt", Data: job})
		wait.Until(t, wait.Long, "a failed write", func() bool { return len(p.writeErrors()) > 0 })
		we := p.writeErrors()[0]
		if we.Written <= 0 || we.Written >= we.Total || we.Total != len(job) || !errors.Is(we, os.ErrDeadlineExceeded) {
			t.Fatalf("WriteError %v: want a deadline after part of the %d-byte job", we, len(job))
		}
		t.Logf("stalled: %v", we)
		if in, _ := s.Job("stall"); in.State != StateQueued || !strings.Contains(in.Reason, "wrote") {
			t.Fatalf("job %+v: want queued with the write error as reason", in)
		}

		setPaused(false) // the printer reads again
		waitPrinted(t, s, "stall")
		// Bytes of the failed attempts that were already in the tty's buffer come out first
		// (a partial receipt); the retry then delivers the whole job.
		wait.Until(t, wait.Long, "the whole job on paper", func() bool { return bytes.HasSuffix(sim.Paper(), job) })
		got := sim.Paper()
		if !bytes.HasPrefix(got, warm) {
			t.Fatal("the first job is not on the paper")
		}
		t.Logf("printer received %d bytes for a %d-byte job after %d failed attempts", len(got)-len(warm), len(job), len(p.writeErrors()))
	})
}

// fifoReader plays a usblp printer behind a FIFO.
type fifoReader struct {
	f    *os.File
	mu   sync.Mutex
	got  []byte
	done chan struct{}
}

func newFifoReader(t *testing.T, path string) *fifoReader {
	// O_RDWR: opening does not wait for a writer (Linux), and the reader is there before
	// the printer dials, as a plugged-in device is.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	r := &fifoReader{f: f, done: make(chan struct{})}
	t.Cleanup(r.close)
	go func() {
		defer close(r.done)
		buf := make([]byte, 64<<10)
		for {
			n, err := f.Read(buf)
			r.mu.Lock()
			r.got = append(r.got, buf[:n]...)
			r.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return r
}

func (r *fifoReader) close() {
	r.f.Close()
	<-r.done
}

func (r *fifoReader) received() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.got)
}

// A network printer that takes part of a SMALL receipt and resets the connection: the whole
// job fits in the kernel's socket buffer, so the writes succeed before the reset arrives. The
// printer's status query after the job must notice the dead connection, so the spool retries
// the job whole instead of counting a receipt printed that reached the paper in part.
func TestTCPResetAfterPartOfASmallJobIsRetried(t *testing.T) {
	for i := 0; i < 5; i++ {
		np := printertest.NewTCP(t)
		np.RunOutOfPaperAfter(1000)
		p := openReal(t, np.URI(netOptions))
		s, err := openSpool(t, t.TempDir(), p, faultOpts())
		if err != nil {
			t.Fatal(err)
		}
		stop := run(t, s)
		job := receiptJob(3000)
		s.Add(Job{ID: "small", Kind: "receipt", Data: job})
		waitHeld(t, s, "small", "paper_out")
		np.SetStatus(printertest.Online)
		waitPrinted(t, s, "small")
		wait.Until(t, wait.Long, "one copy of the job", func() bool { n, _ := copies(np, job); return n == 1 })
		stop()
	}
}
