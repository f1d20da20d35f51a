package receipt

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// translit replaces characters a code page may lack with what a cashier
// would type instead. It is consulted only when the page cannot encode the
// character itself, so cp858 keeps its € and wpc1252 its typographic quotes.
var translit = map[rune]string{
	'€': "EUR", '£': "GBP", '¥': "JPY", '¢': "c",
	'‘': "'", '’': "'", '‚': "'", '‛': "'", '′': "'",
	'“': `"`, '”': `"`, '„': `"`, '‟': `"`, '″': `"`, '«': "<<", '»': ">>", '‹': "<", '›': ">",
	'‐': "-", '‑': "-", '‒': "-", '–': "-", '—': "-", '―': "-", '−': "-",
	'…': "...", '•': "*", '·': ".", '∙': ".", '×': "x", '÷': "/", '±': "+/-",
	'ẞ': "SS", 'ß': "ss", 'Æ': "AE", 'æ': "ae", 'Œ': "OE", 'œ': "oe",
	'Ø': "O", 'ø': "o", 'Đ': "D", 'đ': "d", 'Ł': "L", 'ł': "l", 'ı': "i", 'Þ': "Th", 'þ': "th",
	'©': "(C)", '®': "(R)", '™': "TM", '°': "o", '§': "S", '¼': "1/4", '½': "1/2", '¾': "3/4",
	'¹': "1", '²': "2", '³': "3", 'µ': "u", '‰': "o/oo", '¡': "!", '¿': "?",
	'✓': "v", '✔': "v", '→': "->", '←': "<-",
}

// encoder turns receipt text into cells, one byte per column.
//
// With one code page a cell is the page's byte and goes to the printer as it is. With several
// (a printer profile that offers more than one page), a non-ASCII cell is an index into the
// receipt's palette (0x80 + i): the characters this receipt uses, each with its byte on every
// page that has it. Render then picks a page per run of text and switches with ESC t where the
// next character is not on the current page; the layout never sees the switch, so columns hold.
// A receipt with more than maxPalette different non-ASCII characters transliterates the rest.
// The encoder caches results so a whole receipt encodes with few allocations.
type encoder struct {
	cp      *codePage   // single page
	pages   []*codePage // several pages, in order of preference; nil with one page
	palette []paletteEntry
	index   map[rune]byte   // rune -> its palette cell
	cache   map[rune]string // results for non-ASCII runes, seen once per receipt
}

const maxPalette = 128 // cells 0x80-0xFF

// paletteEntry is one character of a multi-page receipt: what it looks like and its byte on
// each page (-1 where the page lacks it).
type paletteEntry struct {
	r     rune
	bytes []int16
}

func newEncoder(pages []*codePage) *encoder {
	e := &encoder{cp: pages[0]}
	if len(pages) > 1 {
		e.pages = pages
	}
	return e
}

// decode is the character a cell prints as, for the preview.
func (e *encoder) decode(b byte) rune {
	switch {
	case b < utf8.RuneSelf:
		return rune(b)
	case e.pages != nil:
		return e.palette[b-0x80].r
	}
	return e.cp.decode[b]
}

// encode sanitises and encodes s. Control characters (C0, DEL, C1) are
// removed before anything else, so no text from the network can become an
// ESC/POS command: whitespace controls become a space, the rest vanish.
// The result never contains a byte below 0x20 or 0x7F.
func (e *encoder) encode(dst []byte, s string) []byte {
	if isPlainASCII(s) {
		// The common case on secupay receipts; no normalisation can change it.
		return append(dst, s...)
	}
	s = norm.NFC.String(stripControls(s))
	for _, r := range s {
		if r >= 0x20 && r < 0x7F {
			dst = append(dst, byte(r))
			continue
		}
		t, ok := e.cache[r]
		if !ok {
			if e.cache == nil {
				e.cache = make(map[rune]string) // only receipts with non-ASCII text pay for it
			}
			t = e.encodeRune(r)
			e.cache[r] = t
		}
		dst = append(dst, t...)
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

// encodeRune finds the bytes for one non-ASCII rune on the page.
func (e *encoder) encodeRune(r rune) string {
	switch {
	case isControl(r):
		return ""
	case r == utf8.RuneError:
		return "?"
	case unicode.Is(unicode.Zs, r) || r == '\u2028' || r == '\u2029':
		// No-break and typographic spaces: a printer's 0xFF "space" is not
		// reliably blank, and the layout treats all of them as one space.
		return " "
	case unicode.Is(unicode.Cf, r):
		// Soft hyphens, zero-width and bidi marks have no width on paper.
		return ""
	}
	if b, ok := e.cell(r); ok {
		return string([]byte{b})
	}
	if t, ok := translit[r]; ok {
		var out []byte
		for _, tr := range t {
			if tr < 0x7F {
				out = append(out, byte(tr))
			} else if b, ok := e.cell(tr); ok {
				out = append(out, b)
			} else {
				out = append(out, '?')
			}
		}
		return string(out)
	}
	// A letter with accents the page lacks prints as its base letter
	// ("ő" -> "o" on cp858) rather than as '?'.
	if d := norm.NFD.String(string(r)); d != string(r) {
		base, size := utf8.DecodeRuneInString(d)
		if onlyMarks(d[size:]) {
			if base >= 0x20 && base < 0x7F {
				return string(rune(base))
			}
			if b, ok := e.cell(base); ok {
				return string([]byte{b})
			}
		}
	}
	if unicode.Is(unicode.Mn, r) {
		// A combining mark NFC could not attach to its letter.
		return ""
	}
	return "?"
}

// cell is the cell for a non-ASCII rune: its byte on the single page, or its palette index
// when some page of several has it.
func (e *encoder) cell(r rune) (byte, bool) {
	if e.pages == nil {
		return byteOn(e.cp, r)
	}
	if b, ok := e.index[r]; ok {
		return b, true
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
	if e.index == nil {
		e.index = make(map[rune]byte)
	}
	b := byte(0x80 + len(e.palette))
	e.palette = append(e.palette, ent)
	e.index[r] = b
	return b, true
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
