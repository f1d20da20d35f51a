// Package profile owns what ecrd knows about printer models: for each model its fonts and
// columns, paper width in dots, the table of code pages behind ESC t n, and whether it can cut.
// As in escpos-php, a printer is a connection plus a capability profile: package printer holds
// the connection, this package the capabilities, and receipt lays text out with them. It sits
// beside printer, not under it, so that receipt and printer both import it and neither imports
// the other (deps_test.go at the module root).
//
// The profiles are generated from escpos-printer-db (CC BY 4.0, data/README.md) with
// `go generate` and compiled in; "generic" is the database's default (Epson) profile under
// ecrd's name, with its columns taken from the paper. The package also matches
// an IEEE 1284 Device ID's manufacturer and model to a profile (Match).
//
// It must never do I/O: it is data and pure functions, so the renderer may depend on it.
package profile

//go:generate go run ./internal/gen -in data/capabilities.json -out profiles_gen.go

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"unicode"

	"github.com/ecrd-pos/ecrd/internal/suggest"
)

// Profile is one printer model's capabilities.
type Profile struct {
	Key       string // the name --model takes: "TM-T88V", "TSP600", "generic"
	Vendor    string // "Epson", "Star Micronics"
	Name      string // the model as the vendor names it: "TSP600 Series"
	Notes     string
	DPI       int     // 0: unknown
	WidthMM   float64 // printable width; 0: unknown
	WidthDots int     // printable width in dots; 0: unknown
	Fonts     []Font  // by ESC M number; Fonts[0] is font A where the model has one
	CodePages []CodePage
	// FullCut and PartialCut say which GS V cuts the model has; neither means a tear bar.
	FullCut, PartialCut bool
	// StarCommands: a Star printer in ESC/POS emulation (it also speaks Star Line Mode).
	StarCommands bool
	// Raster: the model prints raster bit images (GS v 0), the database's bitImageRaster.
	Raster bool
}

// Font is one character font.
type Font struct {
	Number  int
	Name    string
	Columns int // characters per line at the profile's paper width
}

// CodePage is one slot of the ESC t n table: Slot n selects the page Name, spelled as in
// escpos-printer-db ("CP858", "CP1252", "ISO_8859-2").
type CodePage struct {
	Slot byte
	Name string
}

// Generic is ecrd's default for a printer nobody named: escpos-printer-db's "default" profile,
// the one it gives standards-compliant and Epson-branded printers, so that an unknown ESC/POS
// printer gets every code page at the slot an Epson-compatible printer has it (CP858 at 19,
// CP737 at 14, CP1250 at 45, …) and both cuts. Its columns come from the paper width (Columns
// returns 0). A printer whose table differs (Star, Wincor Nixdorf, many no-names) needs its
// --model, or one --codepage that it is known to have at Epson's slot.
var Generic = genericProfile()

// genericKey is the name --model takes for Generic; dbDefault is the profile it is made from.
const (
	genericKey = "generic"
	dbDefault  = "default"
)

func genericProfile() *Profile {
	for _, p := range dbProfiles {
		if p.Key == dbDefault {
			g := *p
			g.Key, g.Vendor, g.Name = genericKey, "ecrd", "Generic ESC/POS (escpos-printer-db default)"
			g.Notes = "Epson-compatible printer of unknown model: escpos-printer-db's default profile " +
				"(Epson's code-page slots), columns from --paper. Set --model, or --codepage, for a printer whose slots differ."
			g.Fonts = []Font{{Number: 0, Name: "Font A"}, {Number: 1, Name: "Font B"}}
			g.CodePages = slices.Clone(p.CodePages)
			return &g
		}
	}
	panic("profile: escpos-printer-db has no default profile")
}

// The generic profile on a roll of known width: what an Epson-compatible printer of that
// paper prints in font A and B, and its printable dots at 203 dpi (48 mm and 72 mm of the roll)
// — what a preview draws and a logo is fitted to.
var (
	Generic58 = genericOn(48, 384, 32, 42)
	Generic80 = genericOn(72, 576, 48, 64)
)

func genericOn(mm float64, dots, fontA, fontB int) *Profile {
	g := *Generic
	g.DPI, g.WidthMM, g.WidthDots = 203, mm, dots
	g.Fonts = []Font{{Number: 0, Name: "Font A", Columns: fontA}, {Number: 1, Name: "Font B", Columns: fontB}}
	g.Name = fmt.Sprintf("%s, %g mm printable", Generic.Name, mm)
	return &g
}

// OnPaper is the profile of a printer of this model with a roll of the given width ("58mm",
// "80mm"): p itself when the model knows its own width, Generic58 or Generic80 for Generic.
// An unknown paper leaves p as it is.
func (p *Profile) OnPaper(paper string) *Profile {
	if p.IsGeneric() {
		switch strings.ReplaceAll(strings.ToLower(strings.TrimSpace(paper)), " ", "") {
		case "58mm", "58":
			return Generic58
		case "80mm", "80":
			return Generic80
		}
	}
	return p
}

// All returns every profile, Generic first, then by key.
func All() []*Profile {
	out := make([]*Profile, 0, len(dbProfiles)+1)
	out = append(out, Generic)
	out = append(out, dbProfiles...)
	return out
}

// Lookup finds a profile by key, ignoring case ("tm-t88v" finds TM-T88V).
func Lookup(key string) (*Profile, error) {
	k := strings.TrimSpace(key)
	for _, p := range All() {
		if strings.EqualFold(p.Key, k) {
			return p, nil
		}
	}
	keys := make([]string, 0, len(dbProfiles)+1)
	for _, p := range All() {
		keys = append(keys, p.Key)
	}
	if near, ok := suggest.Closest(k, keys); ok {
		return nil, fmt.Errorf("profile: unknown printer model %q: did you mean %s? (ecrd printers lists them)", key, near)
	}
	return nil, fmt.Errorf("profile: unknown printer model %q (ecrd printers lists them)", key)
}

// IsGeneric reports whether p is ecrd's generic profile (or nil).
func (p *Profile) IsGeneric() bool { return p == nil || p == Generic }

// Columns is font A's characters per line, 0 when the profile does not know its paper
// (Generic: the paper width decides).
func (p *Profile) Columns() int {
	if p.IsGeneric() || len(p.Fonts) == 0 {
		return 0
	}
	return p.Fonts[0].Columns
}

// FontA returns font A: its cell size in dots is what a preview draws.
func (p *Profile) FontA() Font {
	if len(p.Fonts) == 0 {
		return Font{Name: "Font A"}
	}
	return p.Fonts[0]
}

// Cuts reports whether the model has a cutter at all.
func (p *Profile) Cuts() bool { return p.FullCut || p.PartialCut }

// Slot returns the lowest slot that selects the code page name (escpos-printer-db spelling or
// ecrd's: "cp858", "CP858", "wpc1252", "iso8859-2" all work).
func (p *Profile) Slot(name string) (byte, bool) {
	for _, cp := range p.CodePages {
		if strings.EqualFold(cp.Name, name) { // the common case, without allocating
			return cp.Slot, true
		}
	}
	want := NormalizeCodePage(name)
	for _, cp := range p.CodePages {
		if NormalizeCodePage(cp.Name) == want {
			return cp.Slot, true
		}
	}
	return 0, false
}

// NormalizeCodePage folds the spellings of a code page name to one key: lower case without
// '-', '_' and spaces, "pc"/"wpc"/"windows" prefixes as "cp" ("WPC1252" and "CP1252" are the
// same table), "latin1" as iso88591.
func NormalizeCodePage(name string) string {
	n := name
	for i := 0; i < len(name); i++ {
		if c := name[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			var b strings.Builder
			for _, r := range strings.ToLower(name) {
				if unicode.IsLetter(r) || unicode.IsDigit(r) {
					b.WriteRune(r)
				}
			}
			n = b.String()
			break
		}
	}
	for _, pre := range []string{"wpc", "windows", "win", "pc"} {
		if rest, ok := strings.CutPrefix(n, pre); ok && rest != "" && rest[0] >= '0' && rest[0] <= '9' {
			return "cp" + rest
		}
	}
	if n == "latin1" {
		return "iso88591"
	}
	return n
}

// Keys returns every profile key, sorted, Generic first.
func Keys() []string {
	ps := All()
	keys := make([]string, len(ps))
	for i, p := range ps {
		keys[i] = p.Key
	}
	sort.Strings(keys[1:])
	return keys
}

// Paper is the roll the profile's columns are for: "58mm", "80mm", or "" when the database
// does not say (Generic). Models whose printable width is under 60 mm (or 432 dots) take
// 58 mm rolls; a profile without a width is judged by its font A columns.
func (p *Profile) Paper() string {
	switch {
	case p.IsGeneric():
		return ""
	case p.WidthMM > 0:
		if p.WidthMM < 60 {
			return "58mm"
		}
		return "80mm"
	case p.WidthDots > 0:
		if p.WidthDots <= 432 {
			return "58mm"
		}
		return "80mm"
	case p.Columns() > 0 && p.Columns() < 40:
		return "58mm"
	case p.Columns() > 0:
		return "80mm"
	}
	return ""
}

// Match finds the profile for a printer's IEEE 1284 manufacturer and model ("EPSON",
// "TM-T88V-JPN"; "Star", "TSP600 (STR_T-U001)") and says how it matched, for `ecrd status`.
// It returns nil when no profile fits; the caller then keeps the generic profile.
//
// The model's first word is compared with every profile's key and name, ignoring case and
// punctuation: equal is an exact match; a key followed in the model by a separator ("TM-T88V"
// in "TM-T88V-JPN", a regional variant) is a variant match. A longer model number is never
// matched to a shorter one ("TM-T88VII" is not a TM-T88V). The manufacturer must agree with
// the profile's vendor where both are known.
func Match(manufacturer, model string) (*Profile, string) {
	word := strings.ToUpper(strings.TrimSpace(model))
	if i := strings.IndexAny(word, " (,"); i >= 0 {
		word = word[:i]
	}
	if word == "" {
		return nil, "the Device ID names no model"
	}
	// Levels: 3 the same spelling, 2 the same letters and digits, 1 a variant. The best level
	// wins, and within a level the longest (then first) candidate.
	var best *Profile
	bestLevel, bestLen := 0, 0
	for _, p := range dbProfiles {
		if !vendorAgrees(manufacturer, p.Vendor) {
			continue
		}
		for _, cand := range []string{p.Key, p.Name} {
			c := strings.ToUpper(strings.TrimSuffix(cand, " Series"))
			level := 0
			switch {
			case c == word:
				level = 3
			case squash(c) == squash(word):
				level = 2
			case strings.HasPrefix(word, c) && !isAlnum(word[len(c)]):
				level = 1
			}
			if level > bestLevel || level == bestLevel && level > 0 && len(c) > bestLen {
				best, bestLevel, bestLen = p, level, len(c)
			}
		}
	}
	how := "exact"
	if bestLevel == 1 {
		how = "variant"
	}
	if best == nil {
		return nil, fmt.Sprintf("no profile for %s %s", manufacturer, model)
	}
	if how == "exact" {
		return best, fmt.Sprintf("Device ID model %q is %s %s", model, best.Vendor, best.Key)
	}
	return best, fmt.Sprintf("Device ID model %q is a variant of %s %s", model, best.Vendor, best.Key)
}

func squash(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return unicode.ToUpper(r)
		}
		return -1
	}, s)
}

func isAlnum(b byte) bool {
	return b >= '0' && b <= '9' || b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z'
}

// vendorAgrees compares a Device ID manufacturer ("EPSON", "SEIKO EPSON CORPORATION", "Star")
// with a profile vendor ("Epson", "Star Micronics"): some word of one is a word of the other.
// An empty manufacturer agrees with everyone.
func vendorAgrees(mfg, vendor string) bool {
	if strings.TrimSpace(mfg) == "" {
		return true
	}
	words := strings.Fields(strings.ToUpper(vendor))
	for _, w := range strings.Fields(strings.ToUpper(mfg)) {
		for _, v := range words {
			if squash(w) != "" && squash(w) == squash(v) {
				return true
			}
		}
	}
	return false
}
