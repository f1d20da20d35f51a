package monitor

import (
	"errors"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ecrd-pos/ecrd/printer"
	"github.com/ecrd-pos/ecrd/spool"
)

// TestPrinterStateChangesLogged: a change of the printer's state is one line — warn when the
// printer can no longer print, info when it can again — with the state it left and for how
// long, the printer, and what waits; no line while the state stays, none for the first seen.
func TestPrinterStateChangesLogged(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	c := newClock()
	sp := &stubSpool{}
	sp.set(printer.StateOnline, c.Wall())
	m := New(Config{Spool: sp, Now: c.Wall, Logger: zap.New(core)})
	m.Refresh()
	m.Refresh()
	if n := logs.Len(); n != 0 {
		t.Fatalf("%d lines without a change: %v", n, logs.All())
	}

	c.Advance(time.Minute)
	sp.set(printer.StatePaperOut, c.Wall())
	sp.mu.Lock()
	sp.status.Status.Detail = "paper end sensor"
	sp.pending = []spool.Info{{ID: "STX_A.receipt", Created: c.Wall().Add(-30 * time.Second)}, {ID: "STX_B.receipt", Created: c.Wall()}}
	sp.mu.Unlock()
	m.Refresh()
	m.Status() // the same state again: no second line
	lines := logs.TakeAll()
	if len(lines) != 1 {
		t.Fatalf("paper out: %d lines %v", len(lines), lines)
	}
	l := lines[0]
	f := l.ContextMap()
	if l.Level != zapcore.WarnLevel || f["state"] != "paper_out" || f["previous_state"] != "online" ||
		f["printer"] != "file:/x" || f["queued"] != int64(2) || f["oldest_job"] != "STX_A.receipt" ||
		f["oldest_job_age"] != 30*time.Second || f["previous_for"] != time.Minute || f["detail"] != "paper end sensor" {
		t.Errorf("paper out: %s %s %v", l.Level, l.Message, f)
	}

	// Back: info, with how long it was out and what still waits.
	c.Advance(3 * time.Minute)
	sp.set(printer.StateOnline, c.Wall())
	m.Health()
	lines = logs.TakeAll()
	if len(lines) != 1 {
		t.Fatalf("back online: %d lines %v", len(lines), lines)
	}
	l, f = lines[0], lines[0].ContextMap()
	if l.Level != zapcore.InfoLevel || f["state"] != "online" || f["previous_state"] != "paper_out" ||
		f["previous_for"] != 3*time.Minute || f["queued"] != int64(2) {
		t.Errorf("back online: %s %s %v", l.Level, l.Message, f)
	}

	// Unplugged: the spool reports offline with the error.
	c.Advance(time.Minute)
	sp.mu.Lock()
	sp.status = spool.PrinterStatus{URI: "usb:04b8:0e15", Status: printer.Status{State: printer.StateOffline,
		Detail: "no such device"}, Error: errors.New("open: no such device").Error(), Checked: c.Wall()}
	sp.pending = nil
	sp.mu.Unlock()
	m.StatusLine()
	lines = logs.TakeAll()
	if len(lines) != 1 {
		t.Fatalf("unplugged: %d lines %v", len(lines), lines)
	}
	l, f = lines[0], lines[0].ContextMap()
	if l.Level != zapcore.WarnLevel || f["state"] != "offline" || f["previous_state"] != "online" ||
		f["printer"] != "usb:04b8:0e15" || f["error"] != "open: no such device" || f["queued"] != int64(0) {
		t.Errorf("unplugged: %s %s %v", l.Level, l.Message, f)
	}
	if _, ok := f["oldest_job"]; ok {
		t.Errorf("oldest_job with an empty queue: %v", f)
	}

	// Unknown (the printer does not answer status) still prints: info.
	sp.set(printer.StateUnknown, c.Wall())
	m.Refresh()
	if lines = logs.TakeAll(); len(lines) != 1 || lines[0].Level != zapcore.InfoLevel {
		t.Errorf("unknown: %v", lines)
	}
}

// TestPrinterFirstStateNotLogged: the state the daemon starts with is no change.
func TestPrinterFirstStateNotLogged(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	sp := &stubSpool{}
	sp.set(printer.StatePaperOut, time.Now())
	m := New(Config{Spool: sp, Logger: zap.New(core)})
	m.Refresh()
	if logs.Len() != 0 {
		t.Errorf("first state logged: %v", logs.All())
	}
}
