package main

import (
	"bytes"
	"flag"
	"fmt"
	"image/png"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/ecrd-pos/ecrd/profile"
	"github.com/ecrd-pos/ecrd/receipt"
	"github.com/ecrd-pos/ecrd/receipt/unifont"
)

// envName is the environment variable that sets flag name: --state-dir ⇔ ECRD_STATE_DIR.
func envName(flagName string) string {
	return "ECRD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parse applies ECRD_ environment variables to fs's flags, then the command line, so that
// a flag given explicitly wins over the EnvironmentFile systemd loaded.
func parse(fs *flag.FlagSet, args []string, withEnv bool) error {
	if withEnv {
		var err error
		fs.VisitAll(func(f *flag.Flag) {
			if v, ok := os.LookupEnv(envName(f.Name)); ok && err == nil {
				if serr := fs.Set(f.Name, v); serr != nil {
					err = fmt.Errorf("%w: %s=%q: %v", errUsage, envName(f.Name), v, serr)
				} else if e, ok := f.Value.(fromEnvironment); ok {
					e.fromEnvironment()
				}
			}
		})
		if err != nil {
			return err
		}
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}

// fromEnvironment is a repeatable flag's value (--allow-origin), told that what it holds came
// from its ECRD_ variable: the command line's first value then replaces the variable's values
// instead of adding to them, so that a flag given explicitly wins, as a single flag's does.
type fromEnvironment interface{ fromEnvironment() }

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("ecrd "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// layoutFlags are the receipt layout settings shared by render, print and serve. A printer
// model (--model) supplies defaults for all of them; a flag given explicitly wins.
type layoutFlags struct {
	paper, codepage, cut, model string
	glyphs, logo                string
	header, footer              textLines
	columns                     int
}

// textLines is a repeatable flag of text lines (--header-line): each value is one line, or
// several separated by \n (two characters, as an EnvironmentFile can hold them) or newlines.
type textLines struct {
	list    []string
	fromEnv bool
}

// maxMerchantLines and maxMerchantLine bound --header-line and --footer-line: a shop's address,
// not a document.
const (
	maxMerchantLines = 16
	maxMerchantLine  = 255
)

func (t *textLines) String() string { return strings.Join(t.list, `\n`) }

func (t *textLines) Set(s string) error {
	if t.fromEnv { // the command line replaces the environment's lines
		t.list, t.fromEnv = nil, false
	}
	for _, line := range strings.Split(strings.ReplaceAll(s, `\n`, "\n"), "\n") {
		if utf8.RuneCountInString(line) > maxMerchantLine {
			return fmt.Errorf("a line of more than %d characters", maxMerchantLine)
		}
		t.list = append(t.list, strings.TrimRight(line, "\r"))
	}
	if len(t.list) > maxMerchantLines {
		return fmt.Errorf("more than %d lines", maxMerchantLines)
	}
	return nil
}

func (t *textLines) fromEnvironment() { t.fromEnv = true }

// modelAuto asks for the model to be read from the printer (IEEE 1284 Device ID) where the
// transport can tell, and the generic profile otherwise.
const modelAuto = "auto"

func (l *layoutFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&l.model, "model", modelAuto, "printer model from 'ecrd printers' (columns, code pages, cut), "+modelAuto+" (ask a USB printer, else generic) or generic")
	fs.StringVar(&l.paper, "paper", "", "paper width: 58mm or 80mm (default: the model's; 80mm for generic)")
	fs.IntVar(&l.columns, "columns", 0, "characters per line (overrides --paper and the model; 0 = from them)")
	fs.StringVar(&l.codepage, "codepage", "", "the one code page to print in (default: the best of the model's pages for each run of text; generic has Epson's): "+strings.Join(receipt.CodePages(), ", ")+" or any of the model's")
	fs.StringVar(&l.cut, "cut", "partial", "paper cut at the end of a receipt: partial or full")
	fs.StringVar(&l.logo, "logo", "", "PNG printed centred at the top of every receipt, fitted and dithered to the printer's width at start (models that print raster images)")
	fs.Var(&l.header, "header-line", "a line printed centred at the top of every receipt, under the logo; repeat it for more lines (one variable: separate them with \\n)")
	fs.Var(&l.footer, "footer-line", "a line printed centred at the end of every receipt; repeat it for more lines (one variable: separate them with \\n)")
	fs.StringVar(&l.glyphs, "glyphs", unifont.DefaultPath, "GNU Unifont .hex font (Debian package unifont) to draw characters none of the printer's code pages has, on a model that prints raster images; read when first needed; empty: transliterate them")
}

// profile returns the named model; auto is false when the model is to be detected first.
func (l *layoutFlags) profile() (prof *profile.Profile, auto bool, err error) {
	switch strings.ToLower(strings.TrimSpace(l.model)) {
	case modelAuto:
		return profile.Generic, true, nil
	case "", "generic":
		return profile.Generic, false, nil
	}
	prof, err = profile.Lookup(l.model)
	if err != nil {
		return nil, false, fmt.Errorf("%w: --model: %v", errUsage, err)
	}
	return prof, false, nil
}

// options is optionsFor the named model (generic when the model is auto).
func (l *layoutFlags) options() (receipt.Options, error) {
	prof, _, err := l.profile()
	if err != nil {
		return receipt.Options{}, err
	}
	return l.optionsFor(prof)
}

// optionsFor builds the layout for a profile (generic: on the --paper roll, 80 mm unless
// told). Columns: --columns, else the model's font A columns when --paper is not given or names
// the model's own roll, else the paper's (58 mm = 32, 80 mm = 48).
func (l *layoutFlags) optionsFor(prof *profile.Profile) (receipt.Options, error) {
	if prof.IsGeneric() {
		// The generic printer's roll: its dots are what a preview draws and a logo fits.
		paper := l.paper
		if paper == "" {
			paper = "80mm"
		}
		if _, err := receipt.PaperColumns(paper); err != nil {
			return receipt.Options{}, fmt.Errorf("%w: %v", errUsage, err)
		}
		prof = prof.OnPaper(paper)
	}
	cols := l.columns
	if cols == 0 && prof.Columns() > 0 && (l.paper == "" || samePaper(l.paper, prof.Paper())) {
		cols = prof.Columns()
	}
	if cols == 0 {
		paper := l.paper
		if paper == "" {
			paper = "80mm"
		}
		var err error
		if cols, err = receipt.PaperColumns(paper); err != nil {
			return receipt.Options{}, fmt.Errorf("%w: %v", errUsage, err)
		}
	}
	opt := receipt.Options{Profile: prof, Columns: cols, CodePage: l.codepage,
		Header: l.header.list, Footer: l.footer.list}
	if l.glyphs != "" {
		opt.Glyphs = unifont.Open(l.glyphs)
	}
	if l.logo != "" {
		dots := prof.WidthDots
		if dots == 0 {
			dots = cols * 12 // font A's cell
		}
		var err error
		if opt.Logo, err = readLogo(l.logo, dots); err != nil {
			return receipt.Options{}, fmt.Errorf("%w: --logo %s: %v", errUsage, l.logo, err)
		}
	}
	switch l.cut {
	case "partial":
		opt.Cut = receipt.CutPartial
	case "full":
		opt.Cut = receipt.CutFull
	default:
		return receipt.Options{}, fmt.Errorf("%w: --cut must be partial or full, not %q", errUsage, l.cut)
	}
	if err := opt.Validate(); err != nil {
		return receipt.Options{}, fmt.Errorf("%w: %v", errUsage, err)
	}
	return opt, nil
}

// disagreements names every layout setting that contradicts the model: a --paper that is not
// its roll, a --columns that is not its font A's. They still win (a roll of other paper, a
// printer set up differently), but a technician must hear of it: a 58 mm printer laid out for
// 80 mm paper cuts every line in two.
func (l *layoutFlags) disagreements(prof *profile.Profile) []string {
	var out []string
	if prof.Key == profile.Generic.Key {
		return nil // generic has no roll of its own (Generic58/80 are --paper's): --paper is its roll
	}
	if l.paper != "" && prof.Paper() != "" && !samePaper(l.paper, prof.Paper()) {
		cols, _ := receipt.PaperColumns(l.paper)
		out = append(out, fmt.Sprintf("--paper (%s) %s disagrees with the %s, which takes %s rolls (%d columns): laying out %d columns for %s paper as told",
			envName("paper"), l.paper, prof.Key, prof.Paper(), prof.Columns(), cols, l.paper))
	}
	if l.columns != 0 && prof.Columns() > 0 && l.columns != prof.Columns() {
		out = append(out, fmt.Sprintf("--columns (%s) %d disagrees with the %s, which prints %d columns in font A: laying out %d columns as told",
			envName("columns"), l.columns, prof.Key, prof.Columns(), l.columns))
	}
	return out
}

// samePaper compares a --paper value with a profile's roll; a bad value is left for
// receipt.PaperColumns to report.
func samePaper(flagPaper, profPaper string) bool {
	a, errA := receipt.PaperColumns(flagPaper)
	b, errB := receipt.PaperColumns(profPaper)
	return errA == nil && errB == nil && a == b
}

// maxLogoFile and maxLogoPixels bound what --logo reads: a logo is kilobytes, and a small PNG
// can claim a picture of gigapixels.
const (
	maxLogoFile   = 8 << 20
	maxLogoPixels = 25_000_000
)

// readLogo reads a PNG and makes the logo for a paper dots wide.
func readLogo(path string, dots int) (*receipt.Logo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxLogoFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxLogoFile {
		return nil, fmt.Errorf("larger than %d bytes", maxLogoFile)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("not a PNG picture: %v", err)
	}
	if cfg.Width*cfg.Height > maxLogoPixels {
		return nil, fmt.Errorf("%d×%d pixels: more than %d", cfg.Width, cfg.Height, maxLogoPixels)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("not a PNG picture: %v", err)
	}
	return receipt.NewLogo(img, dots)
}
