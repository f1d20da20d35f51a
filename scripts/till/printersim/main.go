// Command printersim is the paper end of the till test bed's USB printer: it runs in the
// guest on the gadget side of a USB printer function (/dev/g_printer0), appends every job
// byte it receives to a file (the "paper"), and answers ESC/POS real-time status queries
// (DLE EOT n) the way an Epson TM printer does. It is a test tool and never part of the
// package.
//
// The paper is permanent, as a real printer's is: every piece of job is flushed to the file
// (fsync) before the next is read, so a power cut of the till loses nothing that reached the
// paper. A drawer pulse (ESC p m t1 t2) is a job command like any other, so it is on the
// paper too, where the test bed counts the openings of the drawer; printersim also logs each.
//
// Control files in -control (default /run/printersim; /run, so a reboot clears them):
//
//	paper-out  answer DLE EOT as a printer whose roll is empty (and stopped by it)
//	slow       read 16 bytes at a time and pause 250 ms after each piece of job, so a job takes seconds to arrive
//	mute       answer nothing (a printer that has hung)
//	detach     close the device and keep it closed (gadget.sh unplug sets it, and waits for
//	           "detached", before unbinding the UDC: a read racing the unbind corrupts
//	           usb_f_printer's request lists in Debian 12's kernel and panics it)
//	stall-at   holds a byte count: once the paper file is that long, read nothing more (the
//	           gadget's buffers fill and the host's writes block), as a printer that stopped
//	           taking data in the middle of a job
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/ecrd-pos/ecrd/internal/escposread"
)

func main() {
	dev := flag.String("dev", "/dev/g_printer0", "gadget side of the USB printer function")
	paper := flag.String("paper", "/var/lib/printersim/paper.bin", "file every job byte is appended to")
	control := flag.String("control", "/run/printersim", "directory of the control files")
	flag.Parse()
	if err := os.MkdirAll(filepath.Dir(*paper), 0o755); err != nil {
		log.Fatal(err)
	}
	os.MkdirAll(*control, 0o755)
	out, err := os.OpenFile(*paper, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		log.Fatal(err)
	}
	sim := &sim{paper: out, control: *control}
	detached := filepath.Join(*control, "detached")
	for {
		if sim.flag("detach") {
			os.WriteFile(detached, nil, 0o644)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		os.Remove(detached)
		// The device node exists only while the function is bound to a UDC: an unplug
		// removes it, a replug brings it back.
		f, err := os.OpenFile(*dev, os.O_RDWR, 0)
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		log.Printf("printersim: %s open", *dev)
		stop := make(chan struct{})
		go func() {
			// Close on "detach": the poller wakes the blocked Read, so no read is in the
			// kernel when the UDC is unbound.
			for {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
					if sim.flag("detach") {
						f.Close()
						return
					}
				}
			}
		}()
		err = sim.serve(f)
		close(stop)
		f.Close()
		log.Printf("printersim: %s closed: %v", *dev, err)
		time.Sleep(100 * time.Millisecond)
	}
}

type sim struct {
	paper   *os.File
	control string
	// line reads what arrives (escposread, the interpreter the preview and the tests'
	// printer share): the DLE EOT and GS r requests among the job bytes, split across reads
	// or not, and the drawer pulses.
	line    escposread.Stream
	printed int   // job bytes put on paper during the current take
	pulseAt []int // where in the job bytes not yet on paper each drawer pulse there begins (< 0: before them)
	pulses  int   // drawer pulses seen since printersim started
}

func (s *sim) flag(name string) bool {
	_, err := os.Stat(filepath.Join(s.control, name))
	return err == nil
}

func (s *sim) stalled() bool {
	b, err := os.ReadFile(filepath.Join(s.control, "stall-at"))
	if err != nil {
		return false
	}
	var at int64
	if _, err := fmt.Sscan(string(b), &at); err != nil {
		return false
	}
	fi, err := s.paper.Stat()
	return err == nil && fi.Size() >= at
}

// status is the answer to DLE EOT n: 0x12 (the fixed bits 0xx1xx10) plus the bits that
// printer/status.go decodes: n=1 bit 3 offline, n=2 bit 5 stopped by paper end, n=4 bits 5
// and 6 paper end.
func (s *sim) status(n byte) byte {
	if !s.flag("paper-out") {
		return 0x12
	}
	switch n {
	case 1:
		return 0x12 | 0x08
	case 2:
		return 0x12 | 0x20
	case 4:
		return 0x12 | 0x60
	}
	return 0x12
}

func (s *sim) serve(f *os.File) error {
	answers := make(chan byte, 64)
	done := make(chan struct{})
	defer close(done)
	// Answers go out on their own goroutine: the gadget's write waits for the host to read,
	// and reading must go on meanwhile.
	go func() {
		for {
			select {
			case b := <-answers:
				if _, err := f.Write([]byte{b}); err != nil {
					log.Printf("printersim: answer: %v", err)
				}
			case <-done:
				return
			}
		}
	}()
	buf := make([]byte, 4096)
	for {
		// Slow: 16 bytes at a time, a pause after each read that carried job bytes. Status
		// queries on an idle line are still read at once, as a real slow printer answers them.
		if s.stalled() {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		slow := s.flag("slow")
		n := len(buf)
		if slow {
			n = 16
		}
		got, err := f.Read(buf[:n])
		if got > 0 && s.take(buf[:got], answers) > 0 && slow {
			time.Sleep(250 * time.Millisecond)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			return err
		}
	}
}

// take appends job bytes to the paper and answers the DLE EOT and GS r queries among them.
// The queries themselves are not paper. It returns how many job bytes it appended.
func (s *sim) take(b []byte, answers chan<- byte) int {
	s.printed = 0
	var job []byte
	s.line.Feed(b, func(e escposread.Event) {
		switch e.Kind {
		case escposread.Data:
			job = append(job, e.Data...)
		case escposread.Request:
			// DLE EOT n (real-time status) or GS r n (status in order, after what came
			// before it: ecrd's "on paper" marker).
			if e.Cmd.Op == escposread.OpTransmitStatus {
				// In order: the job bytes before it reach the paper first.
				job = s.print(job)
			}
			if !s.flag("mute") {
				answers <- s.answer(e.Cmd.Op, e.Cmd.N)
			}
		case escposread.Done:
			if e.Cmd.Op == escposread.OpPulse {
				s.pulseAt = append(s.pulseAt, len(job)-e.Cmd.Len())
			}
		}
	})
	s.print(job)
	return s.printed
}

// print puts job bytes on the paper and returns an empty job to go on with.
func (s *sim) print(job []byte) []byte {
	if len(job) > 0 {
		var at int64
		if fi, err := s.paper.Stat(); err == nil {
			at = fi.Size()
		}
		if _, err := s.paper.Write(job); err != nil {
			log.Fatal(fmt.Errorf("paper: %w", err))
		}
		if err := s.paper.Sync(); err != nil {
			log.Fatal(fmt.Errorf("paper: %w", err))
		}
		s.printed += len(job)
		for _, i := range s.pulseAt {
			s.pulses++
			log.Printf("printersim: drawer pulse %d (ESC p) at paper offset %d", s.pulses, at+int64(i))
		}
		s.pulseAt = s.pulseAt[:0]
	}
	return job[:0]
}

// answer is the reply to DLE EOT n or GS r n. GS r 1 is the paper sensor status, which an
// Epson sends only once it has processed everything before it: 0x00 while there is paper.
func (s *sim) answer(op escposread.Op, n byte) byte {
	if op == escposread.OpRealTimeStatus {
		return s.status(n)
	}
	if s.flag("paper-out") {
		return 0x0c // paper end
	}
	return 0x00
}
