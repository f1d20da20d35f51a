package receipt

import (
	"fmt"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/unicode/norm"
)

// codePage is one character table the printer is switched to with ESC t n.
type codePage struct {
	name   string
	escT   byte // Epson's slot number for ESC t n
	cm     *charmap.Charmap
	decode [256]rune // byte -> rune, for the preview
}

// codePages are the Epson slots that can print German text. cp858 is the
// default because it is the only one of the DOS pages with € (at 0xD5).
var codePages = map[string]*codePage{
	"cp437":   newCodePage("cp437", 0, charmap.CodePage437),
	"cp850":   newCodePage("cp850", 2, charmap.CodePage850),
	"cp852":   newCodePage("cp852", 18, charmap.CodePage852),
	"cp858":   newCodePage("cp858", 19, charmap.CodePage858),
	"wpc1252": newCodePage("wpc1252", 16, charmap.Windows1252),
}

// codePageAliases are other spellings technicians use for the same tables.
var codePageAliases = map[string]string{
	"pc437": "cp437", "pc850": "cp850", "pc852": "cp852", "pc858": "cp858",
	"cp1252": "wpc1252", "windows1252": "wpc1252", "windows-1252": "wpc1252",
}

func newCodePage(name string, escT byte, cm *charmap.Charmap) *codePage {
	cp := &codePage{name: name, escT: escT, cm: cm}
	for i := range cp.decode {
		cp.decode[i] = cm.DecodeByte(byte(i))
	}
	return cp
}

// CodePages lists the code page names Options.CodePage accepts, sorted.
func CodePages() []string {
	names := make([]string, 0, len(codePages))
	for n := range codePages {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func lookupCodePage(name string) (*codePage, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	if n == "" {
		n = "cp858"
	}
	if a, ok := codePageAliases[n]; ok {
		n = a
	}
	cp, ok := codePages[n]
	if !ok {
		return nil, fmt.Errorf("receipt: unknown code page %q (known: %s)", name, strings.Join(CodePages(), ", "))
	}
	return cp, nil
}

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

// encoder turns receipt text into code-page bytes, one byte per column.
// It owns a scratch buffer so a whole receipt encodes with few allocations.
type encoder struct {
	cp    *codePage
	cache map[rune]string // results for non-ASCII runes, seen once per receipt
}

func newEncoder(cp *codePage) *encoder {
	return &encoder{cp: cp}
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
	if b, ok := e.byteFor(r); ok {
		return string([]byte{b})
	}
	if t, ok := translit[r]; ok {
		var out []byte
		for _, tr := range t {
			if tr < 0x7F {
				out = append(out, byte(tr))
			} else if b, ok := e.byteFor(tr); ok {
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
			if b, ok := e.byteFor(base); ok {
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

// byteFor encodes r on the page, refusing bytes the printer reads as commands.
func (e *encoder) byteFor(r rune) (byte, bool) {
	b, ok := e.cp.cm.EncodeRune(r)
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
