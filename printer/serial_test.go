package printer

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/ecrd-pos/ecrd/internal/wait"
)

// openPTY gives a real serial line: the printer under test opens the slave by name through a
// serial: URI; the simulated printer sits on the master.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, slave, err := pty.Open()
	if err != nil {
		t.Fatalf("no pseudo-terminal pair (serial tests need /dev/ptmx): %v", err)
	}
	// The test keeps its slave fd open for the whole test: closing the last slave fd would
	// make the master read EIO between reconnects.
	t.Cleanup(func() { master.Close(); slave.Close() })
	return master, slave
}

func slaveTermios(t *testing.T, slave *os.File) *unix.Termios {
	t.Helper()
	rc, err := slave.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var tio *unix.Termios
	var ierr error
	rc.Control(func(fd uintptr) { tio, ierr = unix.IoctlGetTermios(int(fd), unix.TCGETS) })
	if ierr != nil {
		t.Fatal(ierr)
	}
	return tio
}

func inputQueued(t *testing.T, slave *os.File) int {
	rc, err := slave.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.TIOCINQ) })
	return n
}

func TestSerialOverPTY(t *testing.T) {
	master, slave := openPTY(t)
	sim := newSimPrinter(master, 0x16, 0x12, 0x12)
	go sim.run()

	// Answers cross the kernel's pty work queue, which a loaded CI machine can delay by
	// hundreds of milliseconds: a generous timeout where an answer is expected.
	p, err := Open("serial:" + slave.Name() + "?baud=19200&status_timeout=5s")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10e9)
	defer cancel()

	mustStatus(t, p, StateOnline)
	if tio := slaveTermios(t, slave); tio.Cflag&unix.CBAUD != unix.B19200 || tio.Lflag&unix.ECHO != 0 || tio.Oflag&unix.OPOST != 0 {
		t.Errorf("termios cflag=%#o lflag=%#o oflag=%#o: want 19200 baud, raw", tio.Cflag, tio.Lflag, tio.Oflag)
	}

	job := append(testJob(3000), '\n', '\r', 0x00, 0x1b, 0x40) // binary bytes must pass untranslated
	if err := p.Print(ctx, job); err != nil {
		t.Fatalf("Print: %v", err)
	}
	wait.Until(t, wait.Long, "the job on the master", func() bool { return len(sim.received()) >= len(job) })
	if got := sim.received(); !bytes.Equal(got, job) {
		t.Fatalf("printer received %d bytes, want the %d-byte job byte for byte", len(got), len(job))
	}

	sim.setAnswers(0x16|0x08, 0x12|0x20, 0x12|0x60)
	if st := mustStatus(t, p, StatePaperOut); !strings.Contains(st.Detail, "paper end") {
		t.Errorf("Detail = %q", st.Detail)
	}

	// Stale bytes already waiting on the line (a late answer, noise) must not be read as answers.
	sim.setAnswers(0x16, 0x12, 0x12)
	if _, err := master.Write([]byte{0x32, 0x7e, 0x00, 0xff}); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, wait.Long, "stale bytes in the tty input queue", func() bool { return inputQueued(t, slave) == 4 })
	mustStatus(t, p, StateOnline)

	// Garbage answers are rejected: the printer is there, its state is not known.
	sim.setAnswers(0xff, 0x12, 0x12)
	if st := mustStatus(t, p, StateUnknown); !strings.Contains(st.Detail, "invalid answer 0xff to DLE EOT 1") {
		t.Errorf("Detail = %q", st.Detail)
	}

	// No answer at all: unknown, not an error (many serial printers are wired TX only).
	sim.silence()
	quick, err := Open("serial:" + slave.Name() + "?baud=19200&status_timeout=300ms")
	if err != nil {
		t.Fatal(err)
	}
	defer quick.Close()
	if st := mustStatus(t, quick, StateUnknown); !strings.Contains(st.Detail, "no answer to DLE EOT 1 within 300ms") {
		t.Errorf("Detail = %q", st.Detail)
	}
	sim.setAnswers(0x16, 0x12, 0x12|0x0c)
	mustStatus(t, p, StatePaperNearEnd)
}

func TestSerialFlowControlTermios(t *testing.T) {
	for _, tc := range []struct {
		flow        string
		crtscts     bool
		ixon, ixoff bool
	}{
		{"none", false, false, false},
		{"rtscts", true, false, false},
		{"xonxoff", false, true, true},
	} {
		t.Run(tc.flow, func(t *testing.T) {
			master, slave := openPTY(t)
			go newSimPrinter(master, 0x16, 0x12, 0x12).run()
			p, err := Open("serial:" + slave.Name() + "?flow=" + tc.flow + "&parity=even&stopbits=2&status_timeout=5s")
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			mustStatus(t, p, StateOnline)
			tio := slaveTermios(t, slave)
			if got := tio.Cflag&unix.CRTSCTS != 0; got != tc.crtscts {
				t.Errorf("CRTSCTS = %v, want %v", got, tc.crtscts)
			}
			if got := tio.Iflag&unix.IXON != 0; got != tc.ixon {
				t.Errorf("IXON = %v, want %v", got, tc.ixon)
			}
			if got := tio.Iflag&unix.IXOFF != 0; got != tc.ixoff {
				t.Errorf("IXOFF = %v, want %v", got, tc.ixoff)
			}
			// The pty driver forces CS8 and clears PARENB, so parity cannot be read back here;
			// serialTermios is checked for it directly below.
			if tio.Cflag&unix.CSTOPB == 0 {
				t.Errorf("cflag %#o: want 2 stop bits", tio.Cflag)
			}
		})
	}
}

// A printer that stops reading (CTS held low, buffer full) must fail the job within
// write_timeout, saying how far it got, instead of hanging the worker.
func TestSerialStalledWrite(t *testing.T) {
	_, slave := openPTY(t) // nobody reads the master
	p, err := Open("serial:" + slave.Name() + "?write_timeout=200ms&chunk=1024")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	job := testJob(4 << 20)
	err = p.Print(context.Background(), job)
	var we *WriteError
	if !errors.As(err, &we) {
		t.Fatalf("Print on a stalled line = %v, want *WriteError", err)
	}
	if we.Written >= we.Total || we.Total != len(job) || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("WriteError = %v (written %d of %d), want a deadline partway", err, we.Written, we.Total)
	}
	t.Logf("stalled after %d bytes: %v", we.Written, err)
}

func TestSerialMissingDevice(t *testing.T) {
	p, err := Open("serial:/dev/ttyNOPE0")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Status(context.Background()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Status = %v, want ErrNotExist", err)
	}
}

func TestSerialTermiosParity(t *testing.T) {
	for _, tc := range []struct {
		parity byte
		want   uint32
	}{{'N', 0}, {'E', unix.PARENB}, {'O', unix.PARENB | unix.PARODD}} {
		tio := serialTermios(serialConfig{baud: 9600, databits: 7, parity: tc.parity, stopbits: 1, flow: "none"})
		if got := tio.Cflag & (unix.PARENB | unix.PARODD); got != tc.want {
			t.Errorf("parity %c: cflag parity bits %#o, want %#o", tc.parity, got, tc.want)
		}
		if tio.Cflag&unix.CSIZE != unix.CS7 {
			t.Errorf("parity %c: want CS7", tc.parity)
		}
	}
}
