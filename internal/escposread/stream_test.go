package escposread_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ecrd-pos/ecrd/internal/escposread"
)

// event is an escposread.Event as a test compares it: data as a string, a command by what it
// is, where it began and its bytes.
type event struct {
	kind escposread.EventKind
	data string
	op   escposread.Op
	off  int
	raw  string
}

func (e event) String() string {
	if e.kind == escposread.Data {
		return fmt.Sprintf("data %q", e.data)
	}
	return fmt.Sprintf("%d %v at %d %q", e.kind, e.op, e.off, e.raw)
}

// feed feeds s the pieces and returns the events, data that came in several events joined.
func feed(s *escposread.Stream, pieces ...string) []event {
	var evs []event
	for _, p := range pieces {
		s.Feed([]byte(p), func(e escposread.Event) {
			if e.Kind == escposread.Data {
				if n := len(evs); n > 0 && evs[n-1].kind == escposread.Data {
					evs[n-1].data += string(e.Data)
					return
				}
				evs = append(evs, event{kind: e.Kind, data: string(e.Data)})
				return
			}
			evs = append(evs, event{kind: e.Kind, op: e.Cmd.Op, off: e.Cmd.Off, raw: string(e.Cmd.Raw)})
		})
	}
	return evs
}

func data(s string) event { return event{kind: escposread.Data, data: s} }
func request(op escposread.Op, off int, raw string) event {
	return event{kind: escposread.Request, op: op, off: off, raw: raw}
}
func done(op escposread.Op, off int, raw string) event {
	return event{kind: escposread.Done, op: op, off: off, raw: raw}
}

func wantEvents(t *testing.T, name string, got, want []event) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got %v\nwant %v", name, got, want)
	}
}

// TestStreamRequests: DLE EOT n and GS r n are requests, not data; the data before a request
// comes before it; every ESC and GS command is reported done as its last byte passes.
func TestStreamRequests(t *testing.T) {
	var s escposread.Stream
	wantEvents(t, "job", feed(&s, "\x1b@AB\x1dr\x01C\x10\x04\x01\x1dVB\x03"), []event{
		data("\x1b@"), done(escposread.OpInit, 0, "\x1b@"), data("AB"),
		request(escposread.OpTransmitStatus, 4, "\x1dr\x01"), data("C"),
		request(escposread.OpRealTimeStatus, 8, "\x10\x04\x01"),
		data("\x1dVB\x03"), done(escposread.OpCut, 11, "\x1dVB\x03"),
	})
}

// TestStreamSplitAnywhere: however the bytes arrive — whole, in two pieces split at any byte,
// a byte at a time — the Stream finds the same.
func TestStreamSplitAnywhere(t *testing.T) {
	var job strings.Builder
	for _, c := range everyCommand {
		job.WriteString(c.raw)
		job.WriteString("\x1dr\x01")
	}
	var s escposread.Stream
	whole := feed(&s, job.String())
	for i := range job.Len() {
		var s escposread.Stream
		wantEvents(t, fmt.Sprintf("split at %d", i), feed(&s, job.String()[:i], job.String()[i:]), whole)
	}
	var bytewise []string
	for i := range job.Len() {
		bytewise = append(bytewise, job.String()[i:i+1])
	}
	s = escposread.Stream{}
	wantEvents(t, "a byte at a time", feed(&s, bytewise...), whole)
	requests := 0
	for _, e := range whole {
		if e.kind == escposread.Request {
			requests++
		}
	}
	// Every GS r 1 but the one inside the picture's dots (which are dots), plus the two
	// DLE EOTs: the one in the list, and the one inside the dots (real-time).
	if want := len(everyCommand) + 2; requests != want {
		t.Errorf("%d requests, want %d: %v", requests, want, whole)
	}
}

// TestStreamRealTimeAnywhere: DLE EOT n is a request wherever it arrives, inside a
// command's parameters or a picture's dots too, and the command goes on around it; GS r n
// inside the dots is dots.
func TestStreamRealTimeAnywhere(t *testing.T) {
	var s escposread.Stream
	wantEvents(t, "in a pulse", feed(&s, "\x1bp\x00\x10\x04\x02\x19\xfa"), []event{
		data("\x1bp\x00"), request(escposread.OpRealTimeStatus, 3, "\x10\x04\x02"),
		data("\x19\xfa"), done(escposread.OpPulse, 0, "\x1bp\x00\x19\xfa"),
	})
	s = escposread.Stream{}
	wantEvents(t, "in a picture", feed(&s, "\x1dv0\x00\x01\x00\x04\x00\x1d\x10\x04\x01r\x01\x10\n"), []event{
		data("\x1dv0\x00\x01\x00\x04\x00\x1d"), request(escposread.OpRealTimeStatus, 9, "\x10\x04\x01"),
		data("r\x01\x10"), done(escposread.OpRaster, 0, "\x1dv0\x00\x01\x00\x04\x00"), data("\n"),
	})
	// Inside a GS r n that is still arriving: the real-time answer goes first.
	s = escposread.Stream{}
	wantEvents(t, "in a GS r", feed(&s, "\x1d\x10\x04\x01r\x01"), []event{
		request(escposread.OpRealTimeStatus, 1, "\x10\x04\x01"), request(escposread.OpTransmitStatus, 0, "\x1dr\x01"),
	})
}

// TestStreamUnknown: a command the Stream does not know is data, and reading goes on at the
// byte after its first: a request right after it is still one.
func TestStreamUnknown(t *testing.T) {
	for _, c := range []struct{ in, data string }{
		{"\x1bX\x1dr\x01", "\x1bX"},
		{"\x1d(\x1dr\x01", "\x1d("},
		{"\x1dv1\x1dr\x01", "\x1dv1"},
		{"\x1dv0\x07\x1dr\x01", "\x1dv0\x07"},
		{"\x10\x05\x1dr\x01", "\x10\x05"},
		{"\x1b\x1dr\x01", "\x1b"},
		{"\x1b\x10\x10\x04\x01\x1dr\x01", "\x1b\x10"},
	} {
		var s escposread.Stream
		got := feed(&s, c.in)
		if len(got) < 2 || got[0] != data(c.data) || got[len(got)-1].kind != escposread.Request || got[len(got)-1].op != escposread.OpTransmitStatus {
			t.Errorf("%q: %v; want data %q, then GS r 1", c.in, got, c.data)
		}
	}
}

// TestStreamHoldsBackOnlyRequests: a byte is passed on as soon as it arrives, unless it may
// begin a request (DLE, DLE EOT anywhere; GS, GS r where a command may begin).
func TestStreamHoldsBackOnlyRequests(t *testing.T) {
	var s escposread.Stream
	for _, c := range []struct {
		in   string
		want []event
	}{
		{"AB\x1d", []event{data("AB")}},
		{"V", []event{data("\x1dV")}},
		{"A", []event{data("A")}},
		{"\x03", []event{data("\x03"), done(escposread.OpCut, 2, "\x1dVA\x03")}},
		{"x\x10", []event{data("x")}},
		{"\x04", nil},
		{"\x01", []event{request(escposread.OpRealTimeStatus, 7, "\x10\x04\x01")}},
		{"\x1b", []event{data("\x1b")}},
		{"E", []event{data("E")}},
		{"\x01\x1d", []event{data("\x01"), done(escposread.OpEmphasis, 10, "\x1bE\x01")}},
		{"r", nil},
		{"1", []event{request(escposread.OpTransmitStatus, 13, "\x1dr1")}},
		{"\x10", nil},
		{"\x10", []event{data("\x10")}}, // DLE DLE: the first is no request
	} {
		wantEvents(t, fmt.Sprintf("%q", c.in), feed(&s, c.in), c.want)
	}
}

// TestStreamReset: Reset forgets a command or request still arriving; the next byte begins a
// command.
func TestStreamReset(t *testing.T) {
	var s escposread.Stream
	feed(&s, "\x1dr")
	s.Reset()
	wantEvents(t, "after a GS r", feed(&s, "\x01"), []event{data("\x01")})
	feed(&s, "\x1dv0\x00\x02\x00\x02\x00\x00\x00")
	s.Reset()
	wantEvents(t, "inside a picture", feed(&s, "\x1dr\x01"), []event{request(escposread.OpTransmitStatus, 13, "\x1dr\x01")})
	feed(&s, "\x10\x04")
	s.Reset()
	wantEvents(t, "after a DLE EOT", feed(&s, "\x01"), []event{data("\x01")})
}
