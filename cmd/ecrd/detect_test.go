package main

import (
	"context"
	"strings"
	"testing"

	"github.com/ecrd-pos/ecrd/printer"
)

// idPrinter is a printer that answers a Device ID, as usb: and lp: do.
type idPrinter struct {
	printer.Printer
	raw string
	err error
}

func (p idPrinter) DeviceID(context.Context) (printer.DeviceID, error) {
	if p.err != nil {
		return printer.DeviceID{}, p.err
	}
	return printer.ParseDeviceID([]byte(p.raw))
}

func (p idPrinter) String() string { return "usb:" }

func TestChooseProfile(t *testing.T) {
	for _, c := range []struct {
		model string
		p     printer.Printer
		want  string
		why   string
		cols  int
	}{
		// The till test bed's printer gadget.
		{"auto", idPrinter{raw: "MFG:EPSON;CMD:ESC/POS;MDL:TM-T20II;CLS:PRINTER;"}, "TM-T20II", "is Epson TM-T20II", 48},
		{"auto", idPrinter{raw: "MFG:EPSON;CMD:ESC/POS;MDL:TM-T88V-JPN;CLS:PRINTER;DES:EPSON TM-T88V;"}, "TM-T88V", "variant of Epson TM-T88V", 42},
		{"auto", idPrinter{raw: "MFG:Star;CMD:STAR;MDL:TSP600 (STR_T-U001);CLS:PRINTER;"}, "TSP600", "not ESC/POS", 42},
		{"auto", idPrinter{raw: "MFG:EPSON;CMD:ESC/POS;MDL:TM-T88VII;CLS:PRINTER;"}, "generic", "no profile for EPSON TM-T88VII", 48},
		{"auto", idPrinter{err: printer.ErrNoDeviceID}, "generic", "set --model", 48},
		{"auto", idPrinter{err: printer.ErrNotFound}, "generic", "could not read the Device ID", 48},
		{"TH230", idPrinter{raw: "MFG:EPSON;MDL:TM-T20II;"}, "TH230", "--model TH230", 44}, // a named model wins
		{"generic", idPrinter{raw: "MFG:EPSON;MDL:TM-T20II;"}, "generic", "--model generic", 48},
	} {
		lf := layoutFlags{model: c.model, cut: "partial"}
		prof, why, err := chooseProfile(context.Background(), lf, c.p)
		if err != nil {
			t.Fatal(err)
		}
		opt, err := lf.optionsFor(prof)
		if err != nil {
			t.Fatal(err)
		}
		if prof.Key != c.want || !strings.Contains(why, c.why) || opt.Columns != c.cols {
			t.Errorf("--model %s with %+v: %s (%s), %d columns; want %s (%s), %d", c.model, c.p, prof.Key, why, opt.Columns, c.want, c.why, c.cols)
		}
	}
	// A file printer cannot tell its model: generic, and the reason says to name one.
	fp, err := printer.Open("file:" + t.TempDir() + "/p.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer fp.Close()
	if prof, why, _ := chooseProfile(context.Background(), layoutFlags{model: "auto"}, fp); prof.Key != "generic" || !strings.Contains(why, "cannot tell its model") {
		t.Errorf("file printer: %s (%s)", prof.Key, why)
	}
}
