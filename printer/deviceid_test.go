package printer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// withLength prefixes s with its big-endian length the way GET_DEVICE_ID and usblp return it.
func withLength(s string, n int) []byte {
	return append([]byte{byte(n >> 8), byte(n)}, s...)
}

// TestParseDeviceID reads Device IDs real printers sent (Epson's TM-T88V as macOS lists it,
// a TM-T20II, a Star TSP600 in Star mode, an Epson inkjet that is no ESC/POS printer, Linux's
// printer gadget whose length field leaves out its own two bytes, a bare string).
func TestParseDeviceID(t *testing.T) {
	for _, c := range []struct {
		name   string
		raw    []byte
		mfg    string
		mdl    string
		escpos bool
		cmds   []string
		des    string
	}{
		{"TM-T88V", withLength("MFG:EPSON;CMD:ESC/POS;MDL:TM-T88V-JPN;CLS:PRINTER;DES:EPSON TM-T88V;CID:EpsonTM00000101;", 91),
			"EPSON", "TM-T88V-JPN", true, []string{"ESC/POS"}, "EPSON TM-T88V"},
		{"TM-T20II with trailing NULs", append(withLength("MFG:EPSON;CMD:ESC/POS;MDL:TM-T20II;CLS:PRINTER;DES:EPSON TM-T20II Receipt;", 75), 0, 0, 0, 0),
			"EPSON", "TM-T20II", true, []string{"ESC/POS"}, "EPSON TM-T20II Receipt"},
		{"TM-T20III, keys in another order", withLength("MFG:EPSON;MDL:TM-T20III;CMD:ESC/POS;CLS:PRINTER;", 0x37),
			"EPSON", "TM-T20III", true, []string{"ESC/POS"}, ""},
		{"Star in Star mode", withLength("MFG:Star;CMD:STAR;MDL:TSP600 (STR_T-U001);CLS:PRINTER;", 56),
			"Star", "TSP600 (STR_T-U001)", false, []string{"STAR"}, ""},
		{"inkjet, long keys", withLength("MANUFACTURER:EPSON;COMMAND SET:ESCPL2,BDC,D4,D4PX;MODEL:Stylus CX4300;CLASS:PRINTER;DESCRIPTION:EPSON Stylus CX4300", 114),
			"EPSON", "Stylus CX4300", false, []string{"ESCPL2", "BDC", "D4", "D4PX"}, "EPSON Stylus CX4300"},
		{"printer gadget (length without its two bytes)", withLength("MFG:EPSON;CMD:ESC/POS;MDL:TM-T20II;CLS:PRINTER;", 47),
			"EPSON", "TM-T20II", true, []string{"ESC/POS"}, ""},
		{"bare string", []byte("MFG:EPSON;CMD:ESCPOS;MDL:TM-T88VII;CLS:PRINTER;DES:EPSON TM-T88VII;"),
			"EPSON", "TM-T88VII", true, []string{"ESCPOS"}, "EPSON TM-T88VII"},
	} {
		id, err := ParseDeviceID(c.raw)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if id.Manufacturer != c.mfg || id.Model != c.mdl || id.ESCPOS() != c.escpos || !slices.Equal(id.Commands, c.cmds) || id.Description != c.des {
			t.Errorf("%s: got %+v (ESC/POS %v)", c.name, id, id.ESCPOS())
		}
	}
	for _, bad := range [][]byte{nil, {0, 2}, withLength("CLS:PRINTER;", 14), []byte("garbage")} {
		if id, err := ParseDeviceID(bad); err == nil {
			t.Errorf("ParseDeviceID(%q) = %+v, want an error", bad, id)
		}
	}
	// Control bytes a broken printer might send never reach a log line or the status.
	id, err := ParseDeviceID(withLength("MFG:EPSON\x1b;MDL:\x07TM-T20II;", 20))
	if err != nil || id.Model != "TM-T20II" || id.Raw != "MFG:EPSON;MDL:TM-T20II;" {
		t.Errorf("control bytes: %+v %v", id, err)
	}
}

// TestDeviceIDNotAvailable: a transport that cannot ask (a file behind lp:, a character
// device that is not usblp) says so with ErrNoDeviceID. (The USB side: printer/usb's
// TestDeviceIDOverUSBSeam.)
func TestDeviceIDNotAvailable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lp0")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := Open("lp:" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.(DeviceIDReader).DeviceID(context.Background()); !errors.Is(err, ErrNoDeviceID) {
		t.Fatalf("lp: on a file: %v, want ErrNoDeviceID", err)
	}
	// A real character device that is not usblp refuses the ioctl the same way.
	null, err := Open("lp:/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if _, err := null.(DeviceIDReader).DeviceID(context.Background()); !errors.Is(err, ErrNoDeviceID) {
		t.Fatalf("lp:/dev/null: %v, want ErrNoDeviceID", err)
	}
}
