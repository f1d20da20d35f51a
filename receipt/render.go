package receipt

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/kenshaw/escpos"
)

// CutMode is how the job ends on the paper.
type CutMode int

const (
	// CutPartial leaves a hinge so the receipt does not fall on the floor.
	CutPartial CutMode = iota
	CutFull
)

// Options shape a print job. The zero value is an 80 mm printer on cp858
// with a partial cut.
type Options struct {
	Columns   int    // 0 means 48 (80 mm)
	CodePage  string // "" means "cp858"; names from CodePages(), case-insensitive
	Cut       CutMode
	OnUnknown func(index int, lineType string) // optional: called once per line of an unknown type, on each Render or Preview
}

const (
	minColumns     = 16
	maxColumns     = 255
	defaultColumns = 48
	cutFeed        = 3 // GS V 65/66 n: n motion units fed past the cutter position
)

// Preview cut markers: the last line of every preview. Both fit the
// smallest column count, so the preview never runs wider than the paper.
const (
	PreviewCutPartial = "--- cut ---"
	PreviewCutFull    = "=== full cut ==="
)

type config struct {
	cols int
	cp   *codePage
	cut  CutMode
}

func (o Options) config() (config, error) {
	c := config{cols: o.Columns, cut: o.Cut}
	if c.cols == 0 {
		c.cols = defaultColumns
	}
	if c.cols < minColumns || c.cols > maxColumns {
		return config{}, fmt.Errorf("receipt: columns %d out of range %d..%d", o.Columns, minColumns, maxColumns)
	}
	if o.Cut != CutPartial && o.Cut != CutFull {
		return config{}, fmt.Errorf("receipt: unknown cut mode %d", int(o.Cut))
	}
	cp, err := lookupCodePage(o.CodePage)
	if err != nil {
		return config{}, err
	}
	c.cp = cp
	return c, nil
}

// PaperColumns maps a paper width to the columns of font A: 58mm -> 32,
// 80mm -> 48 (TM-T20 class; a TM-T88 prints 42, set Columns for it).
func PaperColumns(paper string) (int, error) {
	switch strings.ReplaceAll(strings.ToLower(strings.TrimSpace(paper)), " ", "") {
	case "58mm", "58":
		return 32, nil
	case "80mm", "80":
		return 48, nil
	}
	return 0, fmt.Errorf("receipt: unknown paper width %q (want 58mm or 80mm)", paper)
}

func layOut(lines []Line, opt Options) (*layout, config, error) {
	c, err := opt.config()
	if err != nil {
		return nil, config{}, err
	}
	if len(lines) == 0 {
		return nil, config{}, ErrEmpty
	}
	l := newLayout(c.cols, c.cp, len(lines))
	l.run(lines, opt.OnUnknown)
	return l, c, nil
}

// Render builds one ESC/POS print job. The job is self-contained: it starts
// by resetting the printer and selecting the international set and code
// page (a previous job or the power-on default cannot leak into it), and it
// ends with every mode reset, a line feed and the cut.
//
// Render only builds bytes; writing them to a device, with real errors, is
// printer's job. kenshaw/escpos writes into a bytes.Buffer, which cannot
// fail, so its swallowed write errors lose nothing here.
func Render(lines []Line, opt Options) ([]byte, error) {
	l, c, err := layOut(lines, opt)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.Grow(len(l.arena) + 2*len(l.lines) + 64)
	p := escpos.New(&buf)
	p.Init()                                               // ESC @
	p.WriteRaw([]byte{0x1B, 'R', 0, 0x1B, 't', c.cp.escT}) // ESC R 0 (USA set), ESC t n
	var cur style
	for _, pl := range l.lines {
		if (pl.style^cur)&styleBold != 0 {
			p.WriteRaw(emphasis(pl.style&styleBold != 0))
		}
		if (pl.style^cur)&styleTall != 0 {
			if pl.style&styleTall != 0 {
				p.SetFontSize(1, 2) // GS ! 0x01
			} else {
				p.SetFontSize(1, 1) // GS ! 0x00
			}
		}
		cur = pl.style
		p.WriteRaw(l.arena[pl.start : pl.end+1]) // the text and its LF
	}
	// Reset everything before the cut, so that a printer which does not
	// get ESC @ from the next sender (a test print, another program) starts plain.
	p.WriteRaw(emphasis(false))
	p.SetFontSize(1, 1)
	p.SetAlign("left")
	p.Linefeed()
	p.WriteRaw(cutCommand(c.cut))
	return buf.Bytes(), nil
}

// ESC E n is true emphasis; kenshaw's SetEmphasize sends ESC G (double strike).
var (
	emphasisOn  = []byte{0x1B, 'E', 1}
	emphasisOff = []byte{0x1B, 'E', 0}
)

// emphasis returns a shared, read-only command slice.
func emphasis(on bool) []byte {
	if on {
		return emphasisOn
	}
	return emphasisOff
}

// cutCommand is GS V 65/66 n: feed the last line past the cutter, then cut.
// Using the feeding form means no guess of the head-to-cutter distance.
func cutCommand(m CutMode) []byte {
	if m == CutFull {
		return []byte{0x1D, 'V', 65, cutFeed}
	}
	return []byte{0x1D, 'V', 66, cutFeed}
}

// Preview renders the same layout as plain UTF-8 text: one "\n"-terminated
// line per paper line (bold and double height are not shown), the empty line
// the job feeds before its cut, and then PreviewCutPartial or
// PreviewCutFull as the last line. Characters appear as the printer will
// print them, after transliteration (so "€" reads "EUR" on cp437).
func Preview(lines []Line, opt Options) (string, error) {
	l, c, err := layOut(lines, opt)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.Grow(len(l.arena) + len(l.lines) + 32)
	for _, pl := range l.lines {
		for _, ch := range l.arena[pl.start:pl.end] {
			if ch < utf8.RuneSelf {
				b.WriteByte(ch)
			} else {
				b.WriteRune(c.cp.decode[ch])
			}
		}
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	if c.cut == CutFull {
		b.WriteString(PreviewCutFull)
	} else {
		b.WriteString(PreviewCutPartial)
	}
	b.WriteByte('\n')
	return b.String(), nil
}

// DrawerKick is ESC p m t1 t2: a 50 ms pulse, then 500 ms off, on drawer
// connector pin 2 (pin 0 or 2) or pin 5 (pin 1 or 5). Any other pin gives
// nil, so a bad setting kicks nothing rather than the wrong drawer; the
// daemon validates its configuration. Send it only after a real cash capture.
func DrawerKick(pin int) []byte {
	var m byte
	switch pin {
	case 0, 2:
		m = 0
	case 1, 5:
		m = 1
	default:
		return nil
	}
	return []byte{0x1B, 'p', m, 25, 250}
}
