package escposread_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ecrd-pos/ecrd/internal/escposread"
	"github.com/ecrd-pos/ecrd/profile"
	"github.com/ecrd-pos/ecrd/receipt"
	"github.com/ecrd-pos/ecrd/receipt/unifont"
)

// glyphs is the test subset of GNU Unifont, so that Render draws what no code page has.
var glyphs = unifont.Open("../../testdata/unifont/subset.hex")

// FuzzRead: reading any bytes never panics; every command starts where the one before it
// ended, holds the stream's bytes there, and Append makes them again from its fields; an
// error is at the byte the last command ended, inside the stream. A Stream finds the same in
// the bytes however they arrive, accounts for every byte, and agrees with Reader on where the
// commands are. And every job receipt.Render makes (with a drawer pulse after it) reads whole,
// in the commands Render sends, and is made again by Append.
func FuzzRead(f *testing.F) {
	golden, _ := filepath.Glob("../../testdata/receipts/*.bin")
	for _, g := range golden {
		if job, err := os.ReadFile(g); err == nil {
			f.Add(job, "", uint8(0))
		}
	}
	for i, c := range everyCommand {
		f.Add([]byte(c.raw+"\x1dr\x01"), "Summe 7,96 €", uint8(i))
	}
	f.Add([]byte("\x1dv0\x00\xff\xff\xff\xff\x10\x04\x01"), "收据 Nguyễn Łódź Σύνολο", uint8(3))
	f.Add([]byte("\x1b\x1d\x10\x10\x04\x1dr\x1dv1\x1dv0\x07"), "\x1b@\x1dV\x00\x10\x04\x01\u009b", uint8(255))
	f.Fuzz(func(t *testing.T, job []byte, text string, how uint8) {
		checkReader(t, job)
		checkStream(t, job, 1+int(how)%13)
		checkRender(t, text, how)
	})
}

func checkReader(t *testing.T, job []byte) {
	r := escposread.NewReader(job)
	off := 0
	for {
		c, err := r.Next()
		if err == io.EOF {
			if off != len(job) {
				t.Fatalf("io.EOF at %d of %d bytes", off, len(job))
			}
			return
		}
		if err != nil {
			var e *escposread.Error
			if !errors.As(err, &e) || e.Off != off || off >= len(job) || len(e.Cmd) == 0 || !bytes.HasPrefix(job[off:], e.Cmd) {
				t.Fatalf("error %v after a command ending at %d of %d bytes", err, off, len(job))
			}
			return
		}
		if c.Off != off || c.Len() == 0 || c.Len() > len(job)-off || !bytes.Equal(c.Raw, job[off:off+c.Len()]) {
			t.Fatalf("%v at %d, %d bytes %q: not the stream's bytes after %d", c.Op, c.Off, c.Len(), c.Raw, off)
		}
		checkAppend(t, c)
		off += c.Len()
	}
}

// checkAppend: Append makes c's bytes from its fields (a picture's function as '0'), and
// they read back as c.
func checkAppend(t *testing.T, c escposread.Cmd) {
	b := c.Append(nil)
	want := c.Raw
	if c.Op == escposread.OpRaster && c.Raw[2] == 0 {
		want = append([]byte("\x1dv0"), c.Raw[3:]...)
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("%v %q: Append makes %q", c.Op, c.Raw, b)
	}
	d, err := escposread.At(b, 0)
	d.Off, d.Raw = c.Off, c.Raw
	if err != nil || d.Len() != len(b) || !sameCmd(c, d) {
		t.Fatalf("%v %q: Append's %q reads back as %+v, %v", c.Op, c.Raw, b, d, err)
	}
}

// checkStream feeds job to a Stream whole and in pieces of n bytes.
func checkStream(t *testing.T, job []byte, n int) {
	var whole escposread.Stream
	all := feed(&whole, string(job))
	var pieces []string
	for i := 0; i < len(job); i += n {
		pieces = append(pieces, string(job[i:min(i+n, len(job))]))
	}
	var split escposread.Stream
	wantEvents(t, "in pieces", feed(&split, pieces...), all)

	var rebuilt []byte // the data and the in-order requests, in order
	var cmds []event   // where each ESC or GS command begins
	passed := 0
	for _, e := range all {
		switch {
		case e.kind == escposread.Data:
			passed += len(e.data)
			rebuilt = append(rebuilt, e.data...)
		case e.kind == escposread.Request:
			passed += len(e.raw)
			if e.op == escposread.OpTransmitStatus {
				rebuilt = append(rebuilt, e.raw...)
				cmds = append(cmds, event{op: e.op, off: e.off})
			} else if e.op != escposread.OpRealTimeStatus || len(e.raw) != 3 || e.off < 0 || e.off > len(job)-3 {
				t.Fatalf("request %v", e)
			}
		default:
			cmds = append(cmds, event{op: e.op, off: e.off})
			c, err := escposread.At([]byte(e.raw), 0)
			if e.op == escposread.OpRaster {
				if len(e.raw) != 8 || err == nil && (c.Width != 0 && c.Height != 0) {
					t.Fatalf("a picture done with %q", e.raw)
				}
			} else if err != nil || c.Op != e.op || c.Len() != len(e.raw) {
				t.Fatalf("%v done: %q reads as %v, %v", e.op, e.raw, c.Op, err)
			}
		}
		if e.off < 0 || e.off >= len(job) {
			t.Fatalf("%v at %d of %d bytes", e, e.off, len(job))
		}
	}
	// Bytes wait in the Stream only while they may begin a request: DLE EOT, GS r.
	if passed > len(job) || passed < len(job)-4 {
		t.Fatalf("%d of %d bytes passed on", passed, len(job))
	}
	// Without real-time requests, a job Reader reads whole is the Stream's data and in-order
	// requests, with the commands in the same places.
	if bytes.IndexByte(job, 0x10) >= 0 {
		return
	}
	var want []event
	for r := escposread.NewReader(job); ; {
		c, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return
		}
		if c.Raw[0] == 0x1b || c.Raw[0] == 0x1d {
			want = append(want, event{op: c.Op, off: c.Off})
		}
	}
	if !bytes.Equal(rebuilt, job) {
		t.Fatalf("the Stream passed on %q of %q", rebuilt, job)
	}
	wantEvents(t, "the Stream's commands", cmds, want)
}

// rendered are the commands receipt.Render and DrawerKick send.
var rendered = map[escposread.Op]bool{
	escposread.OpText: true, escposread.OpLF: true, escposread.OpInit: true, escposread.OpIntl: true,
	escposread.OpCodePage: true, escposread.OpEmphasis: true, escposread.OpAlign: true,
	escposread.OpSize: true, escposread.OpRaster: true, escposread.OpFeedDots: true,
	escposread.OpCut: true, escposread.OpFeedLines: true, escposread.OpPulse: true,
}

// checkRender renders text in lines of every type for a printer how chooses, and reads the job.
func checkRender(t *testing.T, text string, how uint8) {
	opt := receipt.Options{Columns: 16 + int(how)%40, Cut: receipt.CutMode(how % 2)}
	if how%3 != 0 {
		prof, err := profile.Lookup([]string{"TM-T20III", "TH230", "TM-T88V", "POS-5890"}[how%4])
		if err != nil {
			t.Fatal(err)
		}
		opt = receipt.Options{Profile: prof, Glyphs: glyphs}
	}
	dec := []string{"important", "align_center"}[how%2 : 2-how/128]
	lines := []receipt.Line{
		{Type: "textline", Value: receipt.Value{Text: text, Decoration: dec}},
		{Type: "name-value", Value: receipt.Value{Name: text, Value: "7,96 €", Decoration: dec}},
		{Type: "separator", Value: receipt.Value{Caption: text}},
		{Type: "textline", Value: receipt.Value{Text: "x" + text + "收", Decoration: []string{"important"}}},
		{Type: "space"},
	}
	job, err := receipt.Render(lines, opt)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	job = append(job, receipt.DrawerKick(int(how%2))...)
	var again []byte
	for r := escposread.NewReader(job); ; {
		c, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Render's job: %v", err)
		}
		if !rendered[c.Op] {
			t.Fatalf("Render sent %v (%q) at %d", c.Op, c.Raw, c.Off)
		}
		again = c.Append(again)
	}
	if !bytes.Equal(again, job) {
		t.Fatalf("Append makes %q of Render's %q", again, job)
	}
	// ecrd's marker behind the job is a request the printer answers last.
	var s escposread.Stream
	evs := feed(&s, string(job)+"\x1dr\x01")
	if last := evs[len(evs)-1]; last != request(escposread.OpTransmitStatus, len(job), "\x1dr\x01") {
		t.Fatalf("the marker behind Render's job: %v", last)
	}
}
