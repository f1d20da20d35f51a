package printertest

import (
	"bytes"
	"testing"
)

// TestSim: DLE EOT is answered on arrival, GS r 1 only once what came before it is printed;
// a held buffer is lost by Unplug, and a printer that does not know GS r 1 never answers it.
func TestSim(t *testing.T) {
	s := NewSim()
	if a := s.Feed([]byte("AB\x1dr\x01C\x10\x04\x01")); !bytes.Equal(a, []byte{0x00, 0x16}) {
		t.Fatalf("answers % x, want GS r 1's 00 then DLE EOT 1's 16", a)
	}
	if p := s.Paper(); string(p) != "ABC" || s.Markers() != 1 {
		t.Fatalf("paper %q, %d markers", p, s.Markers())
	}

	s.Hold()
	if a := s.Feed([]byte("DE\x1dr\x01\x10\x04\x04")); !bytes.Equal(a, []byte{0x12}) {
		t.Fatalf("held: answers % x, want only DLE EOT 4's 12", a)
	}
	if s.Buffered() != 5 || string(s.Paper()) != "ABC" {
		t.Fatalf("held: %d buffered, paper %q", s.Buffered(), s.Paper())
	}
	if a := s.Release(); !bytes.Equal(a, []byte{0x00}) || string(s.Paper()) != "ABCDE" {
		t.Fatalf("release: answers % x, paper %q", a, s.Paper())
	}

	s.Hold()
	s.Feed([]byte("FG\x1dr\x01"))
	s.Unplug()
	if a := s.Release(); len(a) != 0 || string(s.Paper()) != "ABCDE" {
		t.Fatalf("after unplug: answers % x, paper %q; the buffer must be lost", a, s.Paper())
	}

	// A GS split across reads is still recognised; other GS commands are job bytes.
	s.IgnoreInOrder()
	s.Feed([]byte("H\x1d"))
	if a := s.Feed([]byte("r\x01\x1dV\x42\x03")); len(a) != 0 {
		t.Fatalf("a printer without GS r 1 answered % x", a)
	}
	if p := s.Paper(); string(p) != "ABCDEH\x1dV\x42\x03" {
		t.Fatalf("paper %q", p)
	}
	s.Silence()
	if a := s.Feed([]byte{0x10, 0x04, 0x01}); len(a) != 0 {
		t.Fatalf("silenced printer answered % x", a)
	}
	if q := s.Queries(); len(q) != 3 || q[0] != 3 || q[1] != 3 {
		t.Fatalf("queries at %v", q)
	}
}
