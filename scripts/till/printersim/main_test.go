package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// Job bytes reach the paper as sent, queries (DLE EOT, GS r) do not, and a drawer pulse
// (ESC p) is counted even when a read or a query splits it.
func TestTakePutsJobBytesOnPaperAndCountsPulses(t *testing.T) {
	paper, err := os.OpenFile(filepath.Join(t.TempDir(), "paper.bin"), os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer paper.Close()
	s := &sim{paper: paper, control: t.TempDir()}
	answers := make(chan byte, 16)
	kick := []byte{0x1b, 'p', 0, 25, 250}
	reads := [][]byte{
		[]byte("\x1b@receipt one\x1dV"),
		append([]byte{'B', 0, 0x1d, 'r', 1}, kick...), // the cut, GS r 1, then the pulse
		[]byte("\x1b@receipt two\x10\x04\x01\x1b"),    // DLE EOT 1, then a pulse split by the read
		[]byte("p\x00\x19\xfa"),
	}
	for _, r := range reads {
		s.take(r, answers)
	}
	want := "\x1b@receipt one\x1dVB\x00" + string(kick) + "\x1b@receipt two" + "\x1bp\x00\x19\xfa"
	got, err := os.ReadFile(paper.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, []byte(want)) {
		t.Fatalf("paper holds %q, want %q", got, want)
	}
	if s.pulses != 2 {
		t.Fatalf("%d pulses counted, want 2", s.pulses)
	}
	if len(answers) != 2 {
		t.Fatalf("%d answers to the two queries", len(answers))
	}
}
