package receipt

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/ecrd-pos/ecrd/receipt/unifont"
)

// equivalents are typographic forms of ASCII characters: where no page has one, its ASCII
// form prints in its place, never a picture (a straight quote says what a curly one does).
var equivalents = map[rune]string{
	'‘': "'", '’': "'", '‚': "'", '‛': "'", '′': "'",
	'“': `"`, '”': `"`, '„': `"`, '‟': `"`, '″': `"`,
	'‐': "-", '‑': "-", '‒': "-", '–': "-", '—': "-", '―': "-", '−': "-",
	'…': "...",
}

// translit replaces characters a printer cannot print, from a page or as a picture, with what
// a cashier would type instead. It is consulted only when no page has the character, so cp858
// keeps its €.
var translit = map[rune]string{
	'€': "EUR", '£': "GBP", '¥': "JPY", '¢': "c",
	'«': "<<", '»': ">>", '‹': "<", '›': ">",
	'•': "*", '·': ".", '∙': ".", '×': "x", '÷': "/", '±': "+/-",
	'ẞ': "SS", 'ß': "ss", 'Æ': "AE", 'æ': "ae", 'Œ': "OE", 'œ': "oe",
	'Ø': "O", 'ø': "o", 'Đ': "D", 'đ': "d", 'Ł': "L", 'ł': "l", 'ı': "i", 'Þ': "Th", 'þ': "th",
	'©': "(C)", '®': "(R)", '™': "TM", '°': "o", '§': "S", '¼': "1/4", '½': "1/2", '¾': "3/4",
	'¹': "1", '²': "2", '³': "3", 'µ': "u", '‰': "o/oo", '¡': "!", '¿': "?",
	'✓': "v", '✔': "v", '→': "->", '←': "<-",
}

// boxRune is what the preview shows for a character no font has: it prints as a box.
const boxRune = '□'

// cell is one column of a paper line: an ASCII character (0x20-0x7E), an index into the
// receipt's palette (0x80 + i), or cellWide, the right half of a character two columns wide.
type cell uint16

const cellWide cell = 0xFFFF

// maxPalette bounds the different non-ASCII characters of one receipt; past it, the rest
// print as their transliteration or '?'.
const maxPalette = int(cellWide) - 0x80

// encoder turns receipt text into cells, one per column.
//
// A non-ASCII cell is an index into the receipt's palette (0x80 + i): the characters this
// receipt uses, each with its byte on every page that has it, or none when it is a picture
// (no page has it; the printer draws it from the glyph font, one or two columns wide) or a box
// (no font has it either). Render picks a page per run of text and switches with ESC t where
// the next character is not on the current page, and prints a line with a picture in it as one
// raster image (GS v 0); the layout never sees either, so columns hold. The encoder caches
// results so a whole receipt encodes with few allocations.
type encoder struct {
	pages    []*codePage   // in order of preference
	pictures *unifont.File // nil: the printer draws no pictures
	palette  []paletteEntry
	index    map[rune]cell     // rune -> its palette cell
	cache    map[rune]encoding // results for non-ASCII runes, seen once per receipt
	anyPic   bool              // some palette entry is a picture or a box
	fellBack []rune            // the characters that printed as something else, in order
	capped   []rune            // drawn characters printed as '?' on lines past maxPictureLines
	stats    stats
}

// paletteEntry is one non-ASCII character of a receipt: what it looks like and its byte on
// each page (-1 where the page lacks it); bytes is nil for a picture.
type paletteEntry struct {
	r     rune
	bytes []int16
	wide  bool // a picture two columns wide
	box   bool // no font has it: drawn as a box
}

// how a character reached the paper.
type how uint8

const (
	asItself    how = iota // from a page, or as a picture
	pictured               // as a picture of itself
	substituted            // as its transliteration or base letter
	missing                // as '?', or as a box
)

type encoding struct {
	cells []cell
	how   how
	why   string // for a character that did not print as itself
}

// stats counts the characters of one layout by how they printed.
type stats struct {
	pictured, substituted, missing int
}

func newEncoder(pages []*codePage, pictures *unifont.File) *encoder {
	return &encoder{pages: pages, pictures: pictures}
}

// decode is the character a cell shows in the preview (0 for the right half of a wide one).
func (e *encoder) decode(c cell) rune {
	switch {
	case c < 0x80:
		return rune(c)
	case c == cellWide:
		return 0
	case e.palette[c-0x80].box:
		return boxRune
	}
	return e.palette[c-0x80].r
}

// isPicture reports whether c is drawn rather than printed from a page.
func (e *encoder) isPicture(c cell) bool {
	return c == cellWide || c >= 0x80 && e.palette[c-0x80].bytes == nil
}

// encode sanitises and encodes s. Control characters (C0, DEL, C1) are
// removed before anything else, so no text from the network can become an
// ESC/POS command: whitespace controls become a space, the rest vanish.
// The result never contains a cell below 0x20 or 0x7F.
func (e *encoder) encode(dst []cell, s string) []cell {
	if isPlainASCII(s) {
		// The common case on secupay receipts; no normalisation can change it.
		dst = slices.Grow(dst, len(s))
		for i := 0; i < len(s); i++ {
			dst = append(dst, cell(s[i]))
		}
		return dst
	}
	s = norm.NFC.String(stripControls(s))
	for _, r := range s {
		if r >= 0x20 && r < 0x7F {
			dst = append(dst, cell(r))
			continue
		}
		t, ok := e.cache[r]
		if !ok {
			if e.cache == nil {
				e.cache = make(map[rune]encoding) // only receipts with non-ASCII text pay for it
			}
			t = e.encodeRune(r)
			e.cache[r] = t
			if t.how == substituted || t.how == missing {
				e.fellBack = append(e.fellBack, r)
			}
		}
		switch t.how {
		case pictured:
			e.stats.pictured++
		case substituted:
			e.stats.substituted++
		case missing:
			e.stats.missing++
		}
		dst = append(dst, t.cells...)
	}
	return dst
}

func isPlainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7F {
			return false
		}
	}
	return true
}

// stripControls removes control characters, turning the whitespace ones into
// spaces so words on either side stay apart.
func stripControls(s string) string {
	clean := true
	for _, r := range s {
		if isControl(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	spaced := false // a whitespace control just became a space: CR LF is one gap, not two
	for _, r := range s {
		switch {
		case r == '\t' || r == '\n' || r == '\v' || r == '\f' || r == '\r' || r == 0x85:
			if !spaced {
				b.WriteByte(' ')
			}
			spaced = true
		case isControl(r):
			// dropped: never reaches the printer
		default:
			b.WriteRune(r)
			spaced = false
		}
	}
	return b.String()
}

func isControl(r rune) bool {
	return r < 0x20 || (r >= 0x7F && r <= 0x9F)
}

// encodeRune finds the cells for one non-ASCII rune: its page byte, else its typographic
// ASCII form, else a picture of it, else its transliteration, its base letter or '?'.
func (e *encoder) encodeRune(r rune) encoding {
	switch {
	case isControl(r):
		return encoding{}
	case r == utf8.RuneError:
		return encoding{cells: []cell{'?'}} // broken UTF-8 was a '?' before it reached ecrd
	case unicode.Is(unicode.Zs, r) || r == '\u2028' || r == '\u2029':
		// No-break and typographic spaces: a printer's 0xFF "space" is not
		// reliably blank, and the layout treats all of them as one space.
		return encoding{cells: []cell{' '}}
	case unicode.Is(unicode.Cf, r):
		// Soft hyphens, zero-width and bidi marks have no width on paper.
		return encoding{}
	}
	if c, ok := e.cell(r); ok {
		return encoding{cells: []cell{c}}
	}
	if t, ok := equivalents[r]; ok {
		return e.substitute(t, "its typographic form is on no page of the printer")
	}
	if unicode.Is(unicode.Mn, r) {
		// A combining mark NFC could not attach to its letter.
		return encoding{}
	}
	pic, why := e.picture(r)
	if pic.cells != nil {
		return pic
	}
	if t, ok := translit[r]; ok {
		return e.substitute(t, why)
	}
	// A letter with accents no page has prints as its base letter
	// ("ő" -> "o" on cp858) rather than as '?'.
	if d := norm.NFD.String(string(r)); d != string(r) {
		base, size := utf8.DecodeRuneInString(d)
		if onlyMarks(d[size:]) {
			if base >= 0x20 && base < 0x7F {
				return encoding{cells: []cell{cell(base)}, how: substituted, why: why}
			}
			if c, ok := e.cell(base); ok {
				return encoding{cells: []cell{c}, how: substituted, why: why}
			}
		}
	}
	return encoding{cells: []cell{'?'}, how: missing, why: why}
}

// substitute encodes t, a transliteration, in place of a character.
func (e *encoder) substitute(t, why string) encoding {
	out := encoding{how: substituted, why: why}
	for _, tr := range t {
		if tr < 0x7F {
			out.cells = append(out.cells, cell(tr))
		} else if c, ok := e.cell(tr); ok {
			out.cells = append(out.cells, c)
		} else {
			out.cells = append(out.cells, '?')
		}
	}
	return out
}

// picture is r drawn from the glyph font (a box where the font has no glyph), or why it cannot
// be: the printer prints no raster images, or the font could not be read.
func (e *encoder) picture(r rune) (encoding, string) {
	if e.pictures == nil {
		return encoding{}, "no page of the printer has it and it prints no pictures"
	}
	font, err := e.pictures.Font()
	if err != nil {
		return encoding{}, "no page of the printer has it, and " + err.Error()
	}
	if len(e.palette) == maxPalette {
		return encoding{}, "the receipt has too many different characters"
	}
	ent := paletteEntry{r: r}
	g, ok := font.Glyph(r)
	ent.wide, ent.box = ok && g.Wide, !ok
	c := e.add(ent)
	if ent.box {
		e.anyPic = true
		return encoding{cells: []cell{c}, how: missing, why: "no page of the printer has it and the glyph font has no glyph for it"}, ""
	}
	e.anyPic = true
	if ent.wide {
		return encoding{cells: []cell{c, cellWide}, how: pictured}, ""
	}
	return encoding{cells: []cell{c}, how: pictured}, ""
}

// cell is the palette cell for a non-ASCII rune some page has.
func (e *encoder) cell(r rune) (cell, bool) {
	if c, ok := e.index[r]; ok {
		return c, e.palette[c-0x80].bytes != nil
	}
	if len(e.palette) == maxPalette {
		return 0, false
	}
	ent := paletteEntry{r: r, bytes: make([]int16, len(e.pages))}
	found := false
	for i, cp := range e.pages {
		ent.bytes[i] = -1
		if b, ok := byteOn(cp, r); ok {
			ent.bytes[i], found = int16(b), true
		}
	}
	if !found {
		return 0, false
	}
	return e.add(ent), true
}

// add puts ent in the palette and returns its cell.
func (e *encoder) add(ent paletteEntry) cell {
	if e.index == nil {
		e.index = make(map[rune]cell)
	}
	c := cell(0x80 + len(e.palette))
	e.palette = append(e.palette, ent)
	e.index[ent.r] = c
	return c
}

// byteOn encodes r on a page, refusing bytes the printer reads as commands.
func byteOn(cp *codePage, r rune) (byte, bool) {
	if r < utf8.RuneSelf {
		return 0, false // ASCII is written as itself, never through a page
	}
	b, ok := cp.encodeRune(r)
	if !ok || b < 0x20 || b == 0x7F {
		return 0, false
	}
	return b, true
}

func onlyMarks(s string) bool {
	for _, r := range s {
		if !unicode.Is(unicode.Mn, r) {
			return false
		}
	}
	return true
}
