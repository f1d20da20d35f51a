package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/ecrd-pos/ecrd/profile"
	"github.com/ecrd-pos/ecrd/receipt"
)

// cmdPrinters lists the printer models --model takes, or one model's whole profile.
func cmdPrinters(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("printers", stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ecrd printers [MODEL]\n\nLists the printer models --model takes (from escpos-printer-db, CC BY 4.0), or one model's profile.")
		fs.PrintDefaults()
	}
	if err := parse(fs, args, false); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return fmt.Errorf("%w: one model at most", errUsage)
	}
	if fs.NArg() == 1 {
		p, err := profile.Lookup(fs.Arg(0))
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		return describeProfile(stdout, p)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MODEL\tVENDOR\tNAME\tCOLUMNS\tPAPER\tCUT\tEURO PAGE")
	for _, p := range profile.All() {
		cols := "from --paper"
		if c := p.Columns(); c > 0 {
			cols = fmt.Sprint(c)
		}
		paper := p.Paper()
		if paper == "" {
			paper = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Key, p.Vendor, p.Name, cols, paper, cutWords(p), euroPage(p))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "\nProfiles from escpos-printer-db by the escpos-printer-db contributors, CC BY 4.0 (https://github.com/receipt-print-hq/escpos-printer-db).")
	return nil
}

func cutWords(p *profile.Profile) string {
	switch {
	case p.FullCut && p.PartialCut:
		return "full, partial"
	case p.FullCut:
		return "full"
	case p.PartialCut:
		return "partial"
	}
	return "none (tear bar)"
}

// euroPage names the page and slot a German receipt with € goes out in by default.
func euroPage(p *profile.Profile) string {
	for _, name := range []string{"cp858", "cp1252", "iso8859-15"} {
		if slot, ok := p.Slot(name); ok {
			return fmt.Sprintf("%s (ESC t %d)", name, slot)
		}
	}
	return "none: € prints as EUR"
}

func describeProfile(w io.Writer, p *profile.Profile) error {
	fmt.Fprintf(w, "model:    %s\nvendor:   %s\nname:     %s\n", p.Key, p.Vendor, p.Name)
	if p.Paper() != "" {
		fmt.Fprintf(w, "paper:    %s", p.Paper())
		if p.WidthDots > 0 {
			fmt.Fprintf(w, ", %d dots", p.WidthDots)
		}
		if p.DPI > 0 {
			fmt.Fprintf(w, " at %d dpi", p.DPI)
		}
		fmt.Fprintln(w)
	}
	for _, f := range p.Fonts {
		cols := "from --paper"
		if f.Columns > 0 {
			cols = fmt.Sprintf("%d columns", f.Columns)
		}
		fmt.Fprintf(w, "font %d:   %s, %s\n", f.Number, f.Name, cols)
	}
	fmt.Fprintf(w, "cut:      %s\n", cutWords(p))
	if p.Raster {
		fmt.Fprintln(w, "pictures: yes (GS v 0): what no code page has is drawn from --glyphs")
	} else {
		fmt.Fprintln(w, "pictures: no: what no code page has is transliterated")
	}
	known := map[string]bool{}
	for _, e := range receipt.Encodings() {
		known[profile.NormalizeCodePage(e)] = true
	}
	fmt.Fprintln(w, "code pages (ESC t n):")
	for _, cp := range p.CodePages {
		note := ""
		if !known[profile.NormalizeCodePage(cp.Name)] {
			note = "  (ecrd cannot encode it)"
		}
		fmt.Fprintf(w, "  %3d  %s%s\n", cp.Slot, cp.Name, note)
	}
	if p.Notes != "" {
		fmt.Fprintf(w, "notes:    %s\n", strings.ReplaceAll(p.Notes, "\n", "\n          "))
	}
	return nil
}
