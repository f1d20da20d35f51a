package escposread_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/ecrd-pos/ecrd/internal/escposread"
)

// want is what a test expects of one command.
type want struct {
	op  escposread.Op
	off int
	raw string
	n   byte
}

// everyCommand holds each command the package knows, once, and what Reader reads in it.
var everyCommand = []struct {
	raw string
	cmd escposread.Cmd
}{
	{"\x1b@", escposread.Cmd{Op: escposread.OpInit}},
	{"\x1bR\x00", escposread.Cmd{Op: escposread.OpIntl}},
	{"\x1bt\x13", escposread.Cmd{Op: escposread.OpCodePage, N: 19}},
	{"Gr\xd5\xdfe", escposread.Cmd{Op: escposread.OpText, Data: []byte("Gr\xd5\xdfe")}},
	{"\n", escposread.Cmd{Op: escposread.OpLF}},
	{"\x1bE\x01", escposread.Cmd{Op: escposread.OpEmphasis, N: 1}},
	{"\x1ba\x01", escposread.Cmd{Op: escposread.OpAlign, N: 1}},
	{"\x1bM\x01", escposread.Cmd{Op: escposread.OpFont, N: 1}},
	{"\x1d!\x01", escposread.Cmd{Op: escposread.OpSize, N: 1}},
	{"\r", escposread.Cmd{Op: escposread.OpControl, N: '\r'}},
	{"\x1dv0\x02\x02\x00\x03\x00\x10\x04\x01\x1dr\x01", escposread.Cmd{Op: escposread.OpRaster, N: 2, Width: 2, Height: 3, Data: []byte("\x10\x04\x01\x1dr\x01")}},
	{"\x1bJ\x06", escposread.Cmd{Op: escposread.OpFeedDots, N: 6}},
	{"\x1bd\x03", escposread.Cmd{Op: escposread.OpFeedLines, N: 3}},
	{"\x7f", escposread.Cmd{Op: escposread.OpControl, N: 0x7f}},
	{"\x1dVB\x03", escposread.Cmd{Op: escposread.OpCut, N: 'B', Feed: 3}},
	{"\x1dV\x01", escposread.Cmd{Op: escposread.OpCut, N: 1}},
	{"\x1dr\x01", escposread.Cmd{Op: escposread.OpTransmitStatus, N: 1}},
	{"\x1bp\x00\x19\xfa", escposread.Cmd{Op: escposread.OpPulse, N: 0, T1: 25, T2: 250}},
	{"\x10\x04\x04", escposread.Cmd{Op: escposread.OpRealTimeStatus, N: 4}},
	{"\x1c", escposread.Cmd{Op: escposread.OpControl, N: 0x1c}}, // FS begins no command ecrd knows: a control byte
}

// TestReaderReadsEveryCommand: each command is read whole, at its offset, with its
// parameters (a picture's dots are dots, whatever bytes they are), and Append makes the same
// bytes from the fields.
func TestReaderReadsEveryCommand(t *testing.T) {
	var job []byte
	for _, c := range everyCommand {
		job = append(job, c.raw...)
	}
	r := escposread.NewReader(job)
	off := 0
	for i, w := range everyCommand {
		c, err := r.Next()
		if err != nil {
			t.Fatalf("command %d (%q): %v", i, w.raw, err)
		}
		w.cmd.Off, w.cmd.Raw = off, []byte(w.raw)
		if !sameCmd(c, w.cmd) {
			t.Errorf("command %d: read %+v, want %+v", i, c, w.cmd)
		}
		if got := c.Append(nil); string(got) != w.raw {
			t.Errorf("command %d: Append makes %q, want %q", i, got, w.raw)
		}
		off += len(w.raw)
		if r.Offset() != off {
			t.Errorf("command %d: offset %d after it, want %d", i, r.Offset(), off)
		}
	}
	for range 2 {
		if c, err := r.Next(); err != io.EOF {
			t.Fatalf("after the last command: %+v, %v; want io.EOF", c, err)
		}
	}
}

func sameCmd(a, b escposread.Cmd) bool {
	return a.Op == b.Op && a.Off == b.Off && bytes.Equal(a.Raw, b.Raw) && a.N == b.N && a.Feed == b.Feed &&
		a.T1 == b.T1 && a.T2 == b.T2 && a.Width == b.Width && a.Height == b.Height && bytes.Equal(a.Data, b.Data)
}

// TestReaderErrors: a command the job ends inside, or one the package does not know, is an
// *escposread.Error at the byte the command starts, which says which; Next returns it again after.
func TestReaderErrors(t *testing.T) {
	for _, c := range []struct {
		job       string
		off       int
		cmd       string
		truncated bool
	}{
		{"ab\x1b", 2, "\x1b", true},
		{"\x1bt", 0, "\x1bt", true},
		{"x\n\x1dVA", 2, "\x1dVA", true},
		{"\x1dV", 0, "\x1dV", true},
		{"\x1bp\x00\x19", 0, "\x1bp\x00\x19", true},
		{"\x10\x04", 0, "\x10\x04", true},
		{"\x1dv0\x00\x01\x00", 0, "\x1dv0\x00\x01\x00", true},
		{"\x1dv0\x00\x04\x00\x02\x00\x00\x00", 0, "\x1dv0\x00\x04\x00\x02\x00", true}, // 8 of 16 dots
		{"\x1b@\x1bX\x01", 2, "\x1bX", false},
		{"\x1d(k", 0, "\x1d(", false},
		{"\x10\x05\x01", 0, "\x10\x05", false}, // DLE ENQ: not one of ecrd's
		{"\x1dv1\x00", 0, "\x1dv1", false},
		{"\x1dv0\x07\x01\x00\x01\x00\x00", 0, "\x1dv0\x07", false}, // no such mode
		{"\x1b\x1b@", 0, "\x1b\x1b", false},
	} {
		r := escposread.NewReader([]byte(c.job))
		var err error
		for err == nil {
			_, err = r.Next()
		}
		var e *escposread.Error
		if !errors.As(err, &e) || e.Off != c.off || string(e.Cmd) != c.cmd || e.Truncated != c.truncated {
			t.Errorf("%q: %#v, want an *Error at %d of % x, truncated %v", c.job, err, c.off, c.cmd, c.truncated)
			continue
		}
		if errors.Is(err, escposread.ErrTruncated) != c.truncated || errors.Is(err, escposread.ErrUnknown) == c.truncated {
			t.Errorf("%q: errors.Is tells %v wrong", c.job, err)
		}
		if _, again := r.Next(); again != err || r.Offset() != c.off {
			t.Errorf("%q: Next after the error: %v at %d", c.job, again, r.Offset())
		}
	}
	_, err := escposread.At([]byte("\x1bX\x01"), 0)
	if err == nil || err.Error() != "escpos: unknown command 1b 58 at byte 0" {
		t.Errorf("unknown: %v", err)
	}
	_, err = escposread.At([]byte("ab\x1bt"), 2)
	if err == nil || err.Error() != "escpos: truncated command 1b 74 at byte 2" {
		t.Errorf("truncated: %v", err)
	}
}

// TestTextRuns: text is read as runs of printable bytes, ended by any control byte; a byte
// above 0x7F is text (a character of the selected code page), DEL is not.
func TestTextRuns(t *testing.T) {
	got := readAll(t, "Summe 7,96 \xd5\tA\x7fB\x00C\n")
	wantAll(t, got, []want{
		{escposread.OpText, 0, "Summe 7,96 \xd5", 0}, {escposread.OpControl, 12, "\t", '\t'}, {escposread.OpText, 13, "A", 0},
		{escposread.OpControl, 14, "\x7f", 0x7f}, {escposread.OpText, 15, "B", 0}, {escposread.OpControl, 16, "\x00", 0},
		{escposread.OpText, 17, "C", 0}, {escposread.OpLF, 18, "\n", 0},
	})
}

// TestPictureHeaders: GS v 0 takes 0 for its function as well as '0', any of the eight modes,
// and an empty picture is 8 bytes.
func TestPictureHeaders(t *testing.T) {
	got := readAll(t, "\x1dv\x00\x33\x01\x00\x01\x00\xff\x1dv0\x00\x00\x00\x05\x00")
	wantAll(t, got, []want{{escposread.OpRaster, 0, "\x1dv\x00\x33\x01\x00\x01\x00\xff", 0x33}, {escposread.OpRaster, 9, "\x1dv0\x00\x00\x00\x05\x00", 0}})
	if got[1].Width != 0 || got[1].Height != 5 || len(got[1].Data) != 0 {
		t.Errorf("empty picture: %+v", got[1])
	}
	// Append writes the function as '0'.
	if b := got[0].Append(nil); string(b) != "\x1dv0\x33\x01\x00\x01\x00\xff" {
		t.Errorf("Append: % x", b)
	}
	// The largest picture the header can announce is measured without overflow.
	_, err := escposread.At([]byte("\x1dv0\x00\xff\xff\xff\xff"), 0)
	if !errors.Is(err, escposread.ErrTruncated) {
		t.Errorf("a 65535×65535 picture's header alone: %v", err)
	}
}

func TestOpString(t *testing.T) {
	for op, s := range map[escposread.Op]string{escposread.OpInit: "ESC @", escposread.OpRaster: "GS v 0", escposread.OpRealTimeStatus: "DLE EOT", escposread.OpText: "text", 0: "Op(0)", 200: "Op(200)"} {
		if op.String() != s {
			t.Errorf("%d: %q, want %q", uint8(op), op.String(), s)
		}
	}
}

func readAll(t *testing.T, job string) []escposread.Cmd {
	t.Helper()
	var cmds []escposread.Cmd
	r := escposread.NewReader([]byte(job))
	for {
		c, err := r.Next()
		if err == io.EOF {
			return cmds
		}
		if err != nil {
			t.Fatalf("%q: %v", job, err)
		}
		cmds = append(cmds, c)
	}
}

func wantAll(t *testing.T, got []escposread.Cmd, ws []want) {
	t.Helper()
	if len(got) != len(ws) {
		t.Fatalf("read %d commands, want %d: %+v", len(got), len(ws), got)
	}
	for i, w := range ws {
		if c := got[i]; c.Op != w.op || c.Off != w.off || string(c.Raw) != w.raw || c.N != w.n {
			t.Errorf("command %d: %v at %d %q n %d, want %v at %d %q n %d", i, c.Op, c.Off, c.Raw, c.N, w.op, w.off, w.raw, w.n)
		}
	}
}
