// Package escposread is ecrd's one ESC/POS interpreter: it walks a byte stream and says what
// each command in it is, for everything that reads ESC/POS back — the PNG preview (package
// receipt), the simulated printer of the tests (printer/printertest) and the till test bed's
// printer (scripts/till/printersim).
//
// It knows the commands ecrd sends and reads ([docs/escpos.md]): ESC @, ESC R n, ESC t n,
// ESC E n, ESC a n, ESC M n, ESC d n, ESC J n, ESC p m t1 t2, GS ! n, GS V m [n],
// GS v 0 m xL xH yL yH and its dots, GS r n, DLE EOT n; and line feeds, text and the other
// control bytes, which are no command. Another ESC, GS or DLE command is unknown.
//
// A whole job is read with Reader (or At): a command the job ends inside, or one it does not
// know, is an *Error that says where it starts. A stream that arrives in pieces, as a printer
// receives it, is read with Stream, which never fails.
//
// It imports nothing of ecrd's: the three that read with it must not import each other.
//
// [docs/escpos.md]: https://github.com/ecrd-pos/ecrd/blob/main/docs/escpos.md
package escposread

import (
	"errors"
	"fmt"
	"io"
)

// The bytes that begin commands.
const (
	lf  = 0x0A
	eot = 0x04
	dle = 0x10
	esc = 0x1B
	gs  = 0x1D
)

// Op is what a command is.
type Op uint8

const (
	_                Op = iota
	OpText              // printable bytes (0x20–0x7E, 0x80–0xFF), as many as follow each other: Cmd.Data
	OpLF                // LF: print the line buffer and feed a line
	OpControl           // any other control byte (below 0x20, or DEL) that begins no command: Cmd.N
	OpInit              // ESC @: initialise
	OpIntl              // ESC R n: international character set n
	OpCodePage          // ESC t n: code page in slot n
	OpEmphasis          // ESC E n: emphasis on if bit 0 of n is set
	OpAlign             // ESC a n: 0 left, 1 centre, 2 right
	OpFont              // ESC M n: font n
	OpFeedLines         // ESC d n: print and feed n lines
	OpFeedDots          // ESC J n: print and feed n dots
	OpPulse             // ESC p m t1 t2: a drawer pulse on pin m (N), on t1 × 2 ms, off t2 × 2 ms
	OpSize              // GS ! n: character size, width−1 in the high nibble, height−1 in the low
	OpCut               // GS V m [n]: cut (m 0, 48, 65 fully, others partially); m 65, 66: feed n first
	OpRaster            // GS v 0 m xL xH yL yH d…: a raster picture, Width bytes by Height rows, in mode m
	OpTransmitStatus    // GS r n: status n, answered in order, once all before it is processed (n 1: ecrd's "on paper" marker)
	OpRealTimeStatus    // DLE EOT n: status n, answered on arrival, ahead of the receive buffer
	numOps
)

var opNames = [numOps]string{
	OpText: "text", OpLF: "LF", OpControl: "control byte",
	OpInit: "ESC @", OpIntl: "ESC R", OpCodePage: "ESC t", OpEmphasis: "ESC E", OpAlign: "ESC a",
	OpFont: "ESC M", OpFeedLines: "ESC d", OpFeedDots: "ESC J", OpPulse: "ESC p",
	OpSize: "GS !", OpCut: "GS V", OpRaster: "GS v 0", OpTransmitStatus: "GS r",
	OpRealTimeStatus: "DLE EOT",
}

func (op Op) String() string {
	if op < numOps && opNames[op] != "" {
		return opNames[op]
	}
	return fmt.Sprintf("Op(%d)", uint8(op))
}

// command is an ESC, GS or DLE command: its first two bytes and its length (0: it depends on
// its parameters).
type command struct {
	prefix, letter byte
	size           int
}

var commands = [numOps]command{
	OpInit:           {esc, '@', 2},
	OpIntl:           {esc, 'R', 3},
	OpCodePage:       {esc, 't', 3},
	OpEmphasis:       {esc, 'E', 3},
	OpAlign:          {esc, 'a', 3},
	OpFont:           {esc, 'M', 3},
	OpFeedLines:      {esc, 'd', 3},
	OpFeedDots:       {esc, 'J', 3},
	OpPulse:          {esc, 'p', 5},
	OpSize:           {gs, '!', 3},
	OpCut:            {gs, 'V', 0},
	OpRaster:         {gs, 'v', 0},
	OpTransmitStatus: {gs, 'r', 3},
	OpRealTimeStatus: {dle, eot, 3},
}

// byLetter finds a command by its first two bytes: byLetter[prefix index][letter].
var byLetter = func() (t [3][256]Op) {
	for op, c := range commands {
		if c.prefix != 0 {
			t[prefixIndex(c.prefix)][c.letter] = Op(op)
		}
	}
	return t
}()

func prefixIndex(b byte) int {
	switch b {
	case esc:
		return 0
	case gs:
		return 1
	}
	return 2
}

// isPrefix reports whether b begins an ESC, GS or DLE command.
func isPrefix(b byte) bool { return b == esc || b == gs || b == dle }

// isText reports whether b is a printable byte: one character of the selected code page.
func isText(b byte) bool { return b >= 0x20 && b != 0x7F }

// Cmd is one command of the stream.
type Cmd struct {
	Op  Op
	Off int    // where its first byte is in the stream
	Raw []byte // its bytes, as they are in the stream (a slice of it)
	// N is its parameter: n of ESC R, t, E, a, M, d, J, of GS !, GS r and DLE EOT; m of GS V,
	// GS v 0 and ESC p; the byte itself of a control byte.
	N byte
	// Feed is n of GS V m n, the feed before the cut (m 65 and 66 only).
	Feed byte
	// T1 and T2 are an ESC p pulse's on and off times, in units of 2 ms.
	T1, T2 byte
	// Width and Height are a GS v 0 picture's: bytes a row (8 dots each, the leftmost in the
	// highest bit) and rows.
	Width, Height int
	// Data is OpText's bytes, or OpRaster's dots (Width × Height bytes, a row after another).
	Data []byte
}

// Len is how many bytes the command takes in the stream.
func (c Cmd) Len() int { return len(c.Raw) }

// Append appends the command's bytes, made from its fields (Op, N, Feed, T1, T2, Width,
// Height, Data; not Raw), to dst and returns the result: what a printer is sent to do the
// same. A picture's function byte is always '0' (the stream may say 0).
func (c Cmd) Append(dst []byte) []byte {
	switch c.Op {
	case OpText:
		return append(dst, c.Data...)
	case OpLF:
		return append(dst, lf)
	case OpControl:
		return append(dst, c.N)
	case OpInit:
		return append(dst, esc, '@')
	case OpPulse:
		return append(dst, esc, 'p', c.N, c.T1, c.T2)
	case OpCut:
		dst = append(dst, gs, 'V', c.N)
		if cutFeeds(c.N) {
			dst = append(dst, c.Feed)
		}
		return dst
	case OpRaster:
		dst = append(dst, gs, 'v', '0', c.N, byte(c.Width), byte(c.Width>>8), byte(c.Height), byte(c.Height>>8))
		return append(dst, c.Data...)
	}
	if c.Op < numOps && commands[c.Op].prefix != 0 {
		return append(dst, commands[c.Op].prefix, commands[c.Op].letter, c.N)
	}
	return dst
}

// cutFeeds reports whether GS V m takes a feed n: m 65 (full) and 66 (partial).
func cutFeeds(m byte) bool { return m == 65 || m == 66 }

// rasterMode reports whether m is a mode of GS v 0: 0–3 or 48–51 (bit 0 double width, bit 1
// double height).
func rasterMode(m byte) bool { return m <= 3 || m >= 48 && m <= 51 }

// Errors an *Error matches with errors.Is.
var (
	ErrTruncated = errors.New("escpos: truncated command")
	ErrUnknown   = errors.New("escpos: unknown command")
)

// Error is a command Reader or At cannot read: one the stream ends inside, or one it does not
// know (an ESC, GS or DLE command not in the package's list, or a GS v with another function
// than 0 or a mode not 0–3 or 48–51).
type Error struct {
	Off       int    // where the command starts
	Cmd       []byte // its first bytes: through the one that makes it unknown, or (truncated) up to 8 of those there are
	Truncated bool   // the stream ends inside the command; else it is unknown
}

func (e *Error) Error() string {
	if e.Truncated {
		return fmt.Sprintf("escpos: truncated command % x at byte %d", e.Cmd, e.Off)
	}
	return fmt.Sprintf("escpos: unknown command % x at byte %d", e.Cmd, e.Off)
}

// Is makes errors.Is(err, ErrTruncated) and errors.Is(err, ErrUnknown) tell the two apart.
func (e *Error) Is(target error) bool {
	return target == ErrTruncated && e.Truncated || target == ErrUnknown && !e.Truncated
}

// measure reads the first bytes of an ESC, GS or DLE command, b[0] being its prefix. It
// returns the command and its whole length (need) once b says it, need 0 while b is too
// short to say; or bad, how many of b's bytes make an unknown command (then op is 0).
func measure(b []byte) (op Op, need int64, bad int) {
	if len(b) < 2 {
		return 0, 0, 0
	}
	op = byLetter[prefixIndex(b[0])][b[1]]
	if op == 0 || commands[op].prefix != b[0] {
		return 0, 0, 2
	}
	switch op {
	case OpCut:
		if len(b) < 3 {
			return op, 0, 0
		}
		if cutFeeds(b[2]) {
			return op, 4, 0
		}
		return op, 3, 0
	case OpRaster:
		if len(b) < 3 {
			return op, 0, 0
		}
		if b[2] != '0' && b[2] != 0 {
			return 0, 0, 3
		}
		if len(b) < 4 {
			return op, 0, 0
		}
		if !rasterMode(b[3]) {
			return 0, 0, 4
		}
		if len(b) < 8 {
			return op, 0, 0
		}
		w, h := int64(b[4])|int64(b[5])<<8, int64(b[6])|int64(b[7])<<8
		return op, 8 + w*h, 0
	}
	return op, int64(commands[op].size), 0
}

// fill sets c's fields from its bytes: b holds the whole command, or for a picture at least
// its 8-byte header (its dots are set only if b holds them all).
func fill(c *Cmd, b []byte) {
	switch c.Op {
	case OpText:
		c.Data = b
	case OpLF, OpInit:
	case OpControl:
		c.N = b[0]
	case OpRaster:
		c.N = b[3]
		c.Width, c.Height = int(b[4])|int(b[5])<<8, int(b[6])|int(b[7])<<8
		if n := 8 + int64(c.Width)*int64(c.Height); int64(len(b)) >= n {
			c.Data = b[8:n]
		}
	case OpCut:
		c.N = b[2]
		if cutFeeds(c.N) {
			c.Feed = b[3]
		}
	case OpPulse:
		c.N, c.T1, c.T2 = b[2], b[3], b[4]
	default:
		c.N = b[2]
	}
}

// At reads the command that starts at b[off]: its Off is off, and an *Error's Off too.
// off must be in [0, len(b)).
func At(b []byte, off int) (Cmd, error) {
	rest := b[off:]
	c := Cmd{Off: off}
	switch first := rest[0]; {
	case first == lf:
		c.Op = OpLF
		c.Raw = rest[:1]
	case isPrefix(first):
		op, need, bad := measure(rest)
		switch {
		case bad > 0:
			return Cmd{}, &Error{Off: off, Cmd: rest[:bad:bad]}
		case need == 0 || need > int64(len(rest)):
			return Cmd{}, &Error{Off: off, Cmd: rest[:min(len(rest), 8):min(len(rest), 8)], Truncated: true}
		}
		c.Op, c.Raw = op, rest[:need:need]
	case !isText(first):
		c.Op = OpControl
		c.Raw = rest[:1]
	default:
		n := 1
		for n < len(rest) && isText(rest[n]) {
			n++
		}
		c.Op = OpText
		c.Raw = rest[:n:n]
	}
	fill(&c, c.Raw)
	return c, nil
}

// Reader reads a whole job, a command at a time.
type Reader struct {
	b   []byte
	off int
	err error
}

// NewReader reads b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Next returns the next command, or io.EOF after the last. After an *Error (a truncated or
// unknown command) it returns the same error again.
func (r *Reader) Next() (Cmd, error) {
	if r.err != nil {
		return Cmd{}, r.err
	}
	if r.off >= len(r.b) {
		return Cmd{}, io.EOF
	}
	c, err := At(r.b, r.off)
	if err != nil {
		r.err = err
		return Cmd{}, err
	}
	r.off += c.Len()
	return c, nil
}

// Offset is where the next command starts.
func (r *Reader) Offset() int { return r.off }
