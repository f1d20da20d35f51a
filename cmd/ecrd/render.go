package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ecrd-pos/ecrd/printer"
	"github.com/ecrd-pos/ecrd/receipt"
)

// maxInput bounds what render and print read: a receipt is kilobytes; this keeps a wrong
// file (a disk image, /dev/zero) from eating the till's memory.
const maxInput = 16 << 20

func readInput(name string, stdin io.Reader) ([]byte, error) {
	var r io.Reader = stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxInput+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxInput {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, maxInput)
	}
	return b, nil
}

func cmdRender(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("render", stderr)
	var lf layoutFlags
	lf.register(fs)
	format := fs.String("format", "escpos", "output: escpos (printer bytes), text (preview) or png (a picture of the paper)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ecrd render [flags] [FILE|-]\n\nReads a Smart Transaction (an object with \"receipt\") or a bare receipt-line array.")
		fs.PrintDefaults()
	}
	if err := parse(fs, args, false); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return fmt.Errorf("%w: one input file at most", errUsage)
	}
	name := "-"
	if fs.NArg() == 1 {
		name = fs.Arg(0)
	}
	if *format != "escpos" && *format != "text" && *format != "png" {
		return fmt.Errorf("%w: --format must be escpos, text or png, not %q", errUsage, *format)
	}
	opt, err := lf.options()
	if err != nil {
		return err
	}
	opt.OnUnknown = func(i int, typ string) {
		fmt.Fprintf(stderr, "ecrd render: line %d: unknown type %q printed as text\n", i, typ)
	}
	opt.OnUnprintable = func(u receipt.Unprintable) {
		fmt.Fprintf(stderr, "ecrd render: %q (U+%04X) printed as %q: %s\n", u.Char, u.Char, u.PrintedAs, u.Why)
	}
	if opt.Logo != nil && !opt.Profile.Raster {
		fmt.Fprintf(stderr, "ecrd render: the %s prints no pictures: the logo is left out\n", opt.Profile.Key)
	}
	for _, d := range lf.disagreements(opt.Profile) {
		fmt.Fprintf(stderr, "ecrd render: warning: %s\n", d)
	}
	data, err := readInput(name, stdin)
	if err != nil {
		return err
	}
	lines, err := receipt.Decode(data)
	if err != nil {
		return err
	}
	var out []byte
	switch *format {
	case "text":
		var s string
		s, err = receipt.Preview(lines, opt)
		out = []byte(s)
	case "png":
		if out, err = receipt.Render(lines, opt); err == nil {
			out, err = receipt.JobPNGFor(out, opt)
		}
	default:
		out, err = receipt.Render(lines, opt)
	}
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}

func cmdPrint(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("print", stderr)
	var lf layoutFlags
	lf.register(fs)
	uri := fs.String("printer", "", "printer URI (file:, lp:, serial:, tcp:, usb:)")
	force := fs.Bool("force", false, "send even when the printer reports it is not ready")
	timeout := fs.Duration("timeout", time.Minute, "give up after this long")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ecrd print --printer URI [flags] FILE|-\n\nSends ESC/POS bytes (e.g. from 'ecrd render') or a receipt JSON (rendered first) to a printer.")
		fs.PrintDefaults()
	}
	if err := parse(fs, args, true); err != nil {
		return err
	}
	if *uri == "" || fs.NArg() != 1 {
		return fmt.Errorf("%w: need --printer URI and one FILE", errUsage)
	}
	data, err := readInput(fs.Arg(0), stdin)
	if err != nil {
		return err
	}
	p, err := printer.Open(*uri)
	if err != nil {
		return err
	}
	defer p.Close()
	if t := bytes.TrimSpace(data); len(t) > 0 && (t[0] == '{' || t[0] == '[') {
		prof, why, err := chooseProfile(context.Background(), lf, p)
		if err != nil {
			return err
		}
		opt, err := lf.optionsFor(prof)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "model %s: %s\n", prof.Key, why)
		for _, d := range lf.disagreements(prof) {
			fmt.Fprintf(stderr, "ecrd print: warning: %s\n", d)
		}
		lines, err := receipt.Decode(data)
		if err != nil {
			return err
		}
		if data, err = receipt.Render(lines, opt); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	st, err := p.Status(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", *uri, err)
	}
	fmt.Fprintf(stdout, "printer %s: %s", *uri, st.State)
	if st.Detail != "" {
		fmt.Fprintf(stdout, " (%s)", st.Detail)
	}
	fmt.Fprintln(stdout)
	if !st.Ready() && !*force {
		return fmt.Errorf("printer not ready (%s); fix it or use --force", st.State)
	}
	if err := p.Print(ctx, data); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "printed %d bytes\n", len(data))
	return nil
}
