package receipt

import (
	"slices"
	"sort"
	"unicode/utf8"

	"github.com/ecrd-pos/ecrd/profile"
)

//go:generate go run ./internal/cpgen -in ../profile/data/capabilities.json -out codepages_gen.go

// generatedPage is one page as internal/cpgen wrote it into codepages_gen.go.
type generatedPage struct {
	db, name, source string
	rtl              bool      // a page of a right-to-left script (Hebrew, Arabic)
	high             [128]rune // 0x80-0xFF; 0: no character
}

// codePage is one character table a printer can be switched to with ESC t n.
// Which slot n selects it depends on the printer model (package profile).
type codePage struct {
	name   string    // ecrd's spelling, as --codepage takes it
	rtl    bool      // never chosen to print in: a printer draws every line left to right
	decode [256]rune // byte -> rune, for the preview; utf8.RuneError where the page has none
	enc    []pageByte
}

// pageByte is one character of a page and its byte; codePage.enc is sorted by rune.
type pageByte struct {
	r rune
	b byte
}

// codePages are the tables ecrd knows, by profile.NormalizeCodePage key: every single-byte
// page of escpos-printer-db with a published mapping (codepages_gen.go says which are left out
// and why). Pages for right-to-left scripts are kept for reading jobs back, but never printed
// in: a printer draws every line left to right, so Hebrew or Arabic would come out mirrored.
// cp858 is the default because it is the only one of the DOS pages with € (at 0xD5).
var codePages = func() map[string]*codePage {
	m := make(map[string]*codePage, len(generatedPages))
	for i := range generatedPages {
		g := &generatedPages[i]
		cp := &codePage{name: g.name, rtl: g.rtl}
		for b := range 0x80 {
			cp.decode[b] = rune(b)
		}
		for i, r := range g.high {
			cp.decode[0x80+i] = utf8.RuneError
			if r != 0 {
				cp.decode[0x80+i] = r
				cp.enc = append(cp.enc, pageByte{r, byte(0x80 + i)})
			}
		}
		slices.SortStableFunc(cp.enc, func(a, b pageByte) int { return int(a.r - b.r) })
		m[profile.NormalizeCodePage(g.db)] = cp
	}
	return m
}()

// encodeRune is r's byte on the page (0x80-0xFF; ASCII is the caller's), the lowest where a
// page has r twice.
func (cp *codePage) encodeRune(r rune) (byte, bool) {
	i, ok := slices.BinarySearchFunc(cp.enc, r, func(e pageByte, r rune) int { return int(e.r - r) })
	if !ok {
		return 0, false
	}
	return cp.enc[i].b, true
}

// CodePages lists the code page names Options.CodePage accepts with the generic profile (every
// page of escpos-printer-db's default profile that ecrd can print in), sorted.
func CodePages() []string {
	return knownCodePages(profile.Generic)
}

// Encodings lists every code page ecrd can encode text in, sorted. A printer profile decides
// which of them a printer has and at which slot.
func Encodings() []string {
	names := make([]string, 0, len(codePages))
	for _, cp := range codePages {
		if !cp.rtl {
			names = append(names, cp.name)
		}
	}
	sort.Strings(names)
	return names
}

// lookupCodePage finds a page by any spelling ("CP858", "pc858", "windows-1252", "ISO_8859-2"),
// right-to-left ones included (for reading a job back).
func lookupCodePage(name string) (*codePage, bool) {
	cp, ok := codePages[profile.NormalizeCodePage(name)]
	return cp, ok
}

// printablePage is lookupCodePage for printing in: right-to-left pages are not.
func printablePage(name string) (*codePage, bool) {
	cp, ok := lookupCodePage(name)
	return cp, ok && !cp.rtl
}
