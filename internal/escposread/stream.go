package escposread

// EventKind is what a Stream found in the bytes it was fed.
type EventKind uint8

const (
	_       EventKind = iota
	Data              // Event.Data: bytes for the printer's receive buffer, in order
	Request           // Event.Cmd: a status request (DLE EOT n, GS r n), which is not data
	Done              // Event.Cmd: the ESC or GS command that the last Data ended
)

// Event is one thing a Stream found. Its slices are valid until the callback returns.
type Event struct {
	Kind EventKind
	Data []byte
	Cmd  Cmd
}

// Stream reads bytes as a printer receives them: in pieces of any size, split anywhere, and
// never refused. It tells what is data for the receive buffer and what is a status request
// the printer answers instead, and when each ESC or GS command ends.
//
// DLE EOT n is real-time: a request wherever its three bytes arrive, even inside another
// command's parameters or a picture's dots (an Epson printer does the same), and taken out of
// the stream, which goes on around it. GS r n is a request only where a command may begin,
// never inside a picture's dots. Every other byte is data, passed on as soon as it arrives,
// but for a DLE, DLE EOT, GS or GS r that may begin a request: those wait for the next byte.
//
// A command the Stream does not know is no error: its first byte is data, like text, and
// reading goes on at the byte after it. Done reports every command that Reader knows when its
// last byte has passed as data, with Raw holding its bytes (a picture's only up to its
// header: Data is nil). Off counts every byte fed to the Stream.
//
// The zero Stream is ready to use. A Stream is not safe for concurrent use.
type Stream struct {
	off     int    // bytes fed so far
	rt      int    // 1: a DLE waits for its next byte, 2: a DLE EOT does
	rtOff   int    // where it arrived
	hdr     []byte // the ESC or GS command arriving, up to the end of its header
	hdrOff  int    // where it began
	op      Op     // what it is, once known
	holding bool   // hdr is GS or GS r, perhaps a request: none of it is data yet
	left    int64  // bytes of the command after hdr still to come (a picture's dots)
	out     []byte // data for the next Data event
	fn      func(Event)
}

// Feed takes the next bytes off the line and calls fn with what they hold, in order: a
// request as soon as its last byte is in (after the data before it), data as it comes.
func (s *Stream) Feed(b []byte, fn func(Event)) {
	s.fn = fn
	for _, c := range b {
		s.realTime(c, s.off)
		s.off++
	}
	s.flush()
	s.fn = nil
}

// Reset forgets a command (or request) that was still arriving: the line it came on is gone.
// The next byte begins a command.
func (s *Stream) Reset() {
	s.rt, s.hdr, s.op, s.holding, s.left = 0, s.hdr[:0], 0, false, 0
}

// realTime takes byte c, which arrived at off, out of the stream if it ends a DLE EOT n.
func (s *Stream) realTime(c byte, off int) {
	switch s.rt {
	case 0:
		if c == dle {
			s.rt, s.rtOff = 1, off
			return
		}
	case 1:
		if c == eot {
			s.rt = 2
			return
		}
		// A DLE that is no DLE EOT is the stream's like any other byte; c may be a DLE again.
		s.rt = 0
		s.inOrder(dle, s.rtOff, true)
		s.realTime(c, off)
		return
	case 2:
		s.rt = 0
		s.flush()
		s.fn(Event{Kind: Request, Cmd: Cmd{Op: OpRealTimeStatus, Off: s.rtOff, Raw: []byte{dle, eot, c}, N: c}})
		return
	}
	s.inOrder(c, off, true)
}

// inOrder reads byte c of the stream without its real-time requests. pass is false when c is
// read again after an unknown command and was passed on as data already.
func (s *Stream) inOrder(c byte, off int, pass bool) {
	switch {
	case s.left > 0: // a picture's dots
		s.data(c, pass)
		if s.left--; s.left == 0 {
			s.done()
		}
		return
	case len(s.hdr) == 0:
		// Text, LF and control bytes are data; so is a DLE here (DLE EOT never gets here).
		if c != esc && c != gs {
			s.data(c, pass)
			return
		}
		s.hdr, s.hdrOff, s.op = append(s.hdr, c), off, 0
		if s.holding = c == gs && pass; !s.holding {
			s.data(c, pass)
		}
		return
	}
	s.hdr = append(s.hdr, c)
	op, need, bad := measure(s.hdr)
	if bad > 0 {
		s.unknown(off, pass)
		return
	}
	s.op = op
	switch {
	case s.holding && op != OpTransmitStatus:
		// Not a request after all: what was held back is data.
		s.holding = false
		for _, b := range s.hdr {
			s.data(b, true)
		}
	case !s.holding:
		s.data(c, pass)
	}
	switch n := int64(len(s.hdr)); {
	case need == 0 || n < need && (op != OpRaster || n < 8):
		// More of it to come.
	case n < need:
		s.left = need - n // a picture's header: its dots follow
	default:
		s.done()
	}
}

// unknown reads again the bytes of hdr, which its last byte (new, at off) made an unknown
// command: its first byte is data, and reading goes on at the byte after it. Of the bytes
// after it only the last is new, unless the command was held back; the others (a GS v's 'v'
// and '0') begin nothing.
func (s *Stream) unknown(off int, pass bool) {
	rest, held, at := append([]byte(nil), s.hdr[1:]...), s.holding, s.hdrOff
	if held {
		s.data(s.hdr[0], true)
	}
	s.hdr, s.holding = s.hdr[:0], false
	for i, b := range rest {
		if i == len(rest)-1 {
			s.inOrder(b, off, pass)
		} else {
			s.inOrder(b, at+1+i, held)
		}
	}
}

// done reports the command in hdr, whose last byte has arrived.
func (s *Stream) done() {
	c := Cmd{Op: s.op, Off: s.hdrOff, Raw: s.hdr}
	fill(&c, s.hdr)
	kind := Done
	if s.holding {
		kind = Request
	}
	s.flush()
	s.hdr, s.op, s.holding = s.hdr[:0], 0, false
	s.fn(Event{Kind: kind, Cmd: c})
}

// data passes c on as data, if pass.
func (s *Stream) data(c byte, pass bool) {
	if pass {
		s.out = append(s.out, c)
	}
}

// flush reports the data gathered so far.
func (s *Stream) flush() {
	if len(s.out) > 0 {
		s.fn(Event{Kind: Data, Data: s.out})
		s.out = s.out[:0]
	}
}
