package printer_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ecrd-pos/ecrd/printer"
)

// A printer is opened from a URI. file: is the fake printer the tests and the demo use: it
// appends each whole job to a file, and a file beside it holds the state it reports.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "printer-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	paper := filepath.Join(dir, "printer.bin")

	p, err := printer.Open("file:" + paper)
	if err != nil {
		panic(err)
	}
	defer p.Close()
	ctx := context.Background()

	st, _ := p.Status(ctx)
	fmt.Println(st.State, st.Ready())
	if err := p.Print(ctx, []byte("Hallo\n")); err != nil {
		panic(err)
	}
	b, _ := os.ReadFile(paper)
	fmt.Printf("on paper: %q\n", b)

	// The roll runs out: the state file says so, and a spool would hold its jobs.
	os.WriteFile(paper+".status", []byte("paper_out\n"), 0o644)
	st, _ = p.Status(ctx)
	fmt.Println(st.State, st.Ready())
	// Output:
	// online true
	// on paper: "Hallo\n"
	// paper_out false
}

// Every transport is a URI (see the package comment); a bad one is refused, saying what
// would do, before any device is touched. usb: needs the libusb transport, which a program
// registers (RegisterTransport); this one did not.
func ExampleOpen_uris() {
	for _, uri := range []string{
		"serial:/dev/ttyUSB0?baud=19200&flow=xmodem",
		"tcp:",
		"usb:04b8:0e15",
		"ipp://printer",
	} {
		_, err := printer.Open(uri)
		fmt.Println(err)
	}
	// Output:
	// printer: bad URI "serial:/dev/ttyUSB0?baud=19200&flow=xmodem": flow="xmodem": want none, rtscts or xonxoff
	// printer: bad URI "tcp:": want tcp:host or tcp:host:port
	// printer: cannot open "usb:04b8:0e15": usb: is libusb's transport (package printer/usb, which needs cgo) and this program was built without it; use lp:/dev/usb/lp0 instead, the kernel's usblp device for the same printer
	// printer: bad URI "ipp://printer": unknown scheme "ipp": want file, lp, serial, tcp or usb
}
