// Package printertest is ecrd's one simulated ESC/POS printer for tests: a command interpreter
// (Sim) that answers real-time status (DLE EOT) at once and in-order requests (GS r 1) only
// after printing what came before them, with a receive buffer that can be held (a printer
// busy, jammed or about to lose power) and lost (unplugged); and a raw TCP (port 9100)
// printer on loopback built on it (TCP), which can also run out of paper in the middle of a
// job and tells what each connection printed.
//
// It must never be imported by non-test code, and never import package printer: printer's
// own tests use it.
package printertest

import (
	"bytes"
	"sync"

	"github.com/ecrd-pos/ecrd/internal/escposread"
)

// Status bytes a healthy printer answers to DLE EOT 1, 2 and 4 (fixed bits 0xx1xx10).
var (
	Online    = [3]byte{0x16, 0x12, 0x12}
	PaperOut  = [3]byte{0x16, 0x12, 0x12 | 0x60}
	CoverOpen = [3]byte{0x16 | 0x08, 0x12 | 0x04, 0x12}
)

// Sim interprets the bytes a printer receives, with escposread's Stream: where the commands
// are, and which are status requests. Safe for concurrent use.
type Sim struct {
	mu        sync.Mutex
	status    map[byte]byte // DLE EOT n -> answer; missing: silent
	inOrder   bool          // answers GS r 1
	hold      bool          // receive but do not process (print) anything
	line      escposread.Stream
	buffer    []byte // received, not yet processed
	taken     int    // bytes ever processed from the buffer
	marks     []int  // where each GS r 1 in the buffer is, counted as taken counts
	paper     []byte // printed job bytes, markers removed
	markers   int    // GS r 1 answered
	queryAt   []int  // len(paper) at each DLE EOT
	unplugged int
}

// NewSim returns a printer that is online, answers DLE EOT 1, 2, 4 and GS r 1, and prints
// everything at once.
func NewSim() *Sim {
	s := &Sim{inOrder: true}
	s.SetStatus(Online)
	return s
}

// SetStatus sets the answers to DLE EOT 1, 2 and 4.
func (s *Sim) SetStatus(a [3]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = map[byte]byte{1: a[0], 2: a[1], 4: a[2]}
}

// Silence makes the printer answer no DLE EOT (it still answers GS r 1 unless IgnoreInOrder).
func (s *Sim) Silence() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = map[byte]byte{}
}

// IgnoreInOrder makes the printer one that does not know GS r 1 (many cheap ones): it swallows
// the command and never answers.
func (s *Sim) IgnoreInOrder() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inOrder = false
}

// Hold stops processing: bytes pile up in the receive buffer, nothing prints and GS r 1 is
// not answered; DLE EOT still is (it is real-time).
func (s *Sim) Hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hold = true
}

// Release resumes processing and returns the answers the buffered GS r 1s now give; the
// caller sends them down the line.
func (s *Sim) Release() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hold = false
	return s.processLocked()
}

// Unplug loses the receive buffer (and a half-received command): power is gone. Processing
// resumes when bytes arrive again, held or not as before.
func (s *Sim) Unplug() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buffer, s.marks = nil, nil
	s.line.Reset()
	s.unplugged++
}

// Paper returns every job byte printed so far, in order, without the GS r 1 markers.
func (s *Sim) Paper() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.paper)
}

// Buffered returns how many bytes wait in the receive buffer.
func (s *Sim) Buffered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.buffer)
}

// Markers returns how many GS r 1 the printer has answered.
func (s *Sim) Markers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.markers
}

// Queries returns, for each DLE EOT received, how many job bytes were printed before it, so a
// test can see whether a query ever landed inside a job.
func (s *Sim) Queries() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.queryAt...)
}

// Feed takes bytes from the line and returns what the printer answers.
func (s *Sim) Feed(b []byte) (answer []byte) {
	answer, _ = s.feed(b)
	return answer
}

// feed is Feed that also returns the job bytes these bytes printed (none while held).
func (s *Sim) feed(b []byte) (answer, printed []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	before := len(s.paper)
	s.line.Feed(b, func(e escposread.Event) {
		switch {
		case e.Kind == escposread.Request && e.Cmd.Op == escposread.OpRealTimeStatus:
			// DLE EOT n is real-time: answered on arrival, ahead of the buffer.
			s.queryAt = append(s.queryAt, len(s.paper))
			if a, ok := s.status[e.Cmd.N]; ok {
				answer = append(answer, a)
			}
			return
		case e.Kind == escposread.Request && (e.Cmd.N == 1 || e.Cmd.N == '1'):
			s.marks = append(s.marks, s.taken+len(s.buffer))
			s.buffer = append(s.buffer, e.Cmd.Raw...)
		case e.Kind == escposread.Request:
			s.buffer = append(s.buffer, e.Cmd.Raw...) // another GS r n: job bytes
		case e.Kind == escposread.Data:
			s.buffer = append(s.buffer, e.Data...)
		default:
			return // the end of a command: nothing to answer
		}
		// Processed in arrival order, so an in-order answer and a real-time one leave in
		// the order the printer would send them.
		answer = append(answer, s.processLocked()...)
	})
	return answer, bytes.Clone(s.paper[before:])
}

// dropPartial forgets a command that was still arriving: the line it came on is gone.
func (s *Sim) dropPartial() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.line.Reset()
}

// processLocked prints the buffer unless held, answering GS r 1 when it comes to it.
func (s *Sim) processLocked() (answer []byte) {
	if s.hold {
		return nil
	}
	for len(s.buffer) > 0 {
		if len(s.marks) > 0 && s.marks[0] == s.taken {
			if s.inOrder {
				answer = append(answer, 0x00) // paper present; bits 4 and 7 clear
				s.markers++
			}
			s.marks = s.marks[1:]
			s.take(3)
			continue
		}
		n := len(s.buffer)
		if len(s.marks) > 0 {
			n = s.marks[0] - s.taken
		}
		s.paper = append(s.paper, s.buffer[:n]...)
		s.take(n)
	}
	return answer
}

// take drops n processed bytes from the buffer.
func (s *Sim) take(n int) {
	s.buffer = s.buffer[n:]
	s.taken += n
}
