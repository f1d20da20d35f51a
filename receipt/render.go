package receipt

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/kenshaw/escpos"

	"github.com/ecrd-pos/ecrd/profile"
	"github.com/ecrd-pos/ecrd/receipt/unifont"
)

// CutMode is how the job ends on the paper.
type CutMode int

const (
	// CutPartial leaves a hinge so the receipt does not fall on the floor.
	CutPartial CutMode = iota
	CutFull
)

// Options shape a print job. The zero value is the generic profile: an 80 mm Epson-compatible
// printer with escpos-printer-db's default code pages (cp858 at slot 19 first) and a partial cut.
type Options struct {
	// Profile is the printer model (nil: profile.Generic). It supplies the columns, the slot
	// numbers behind ESC t and whether the printer can cut; Columns and CodePage override it.
	Profile *profile.Profile
	Columns int // 0: the profile's font A columns, or 48 (80 mm) for the generic profile
	// CodePage names the one page to print in (names from CodePages() or the profile's
	// table, case-insensitive). "" means every page the profile has that ecrd can encode:
	// each run of text goes out in the best of them, with ESC t switching pages mid-line
	// where needed.
	CodePage string
	Cut      CutMode
	// Glyphs is the bitmap font (GNU Unifont's .hex, unifont.DefaultPath) that characters no
	// code page of the printer has are drawn from, on a model that prints raster images
	// (profile.Profile.Raster): a paper line with such a character prints as one picture
	// (GS v 0) in the same columns, bold and double height kept, and a character the font
	// lacks as a box. nil, or a model without raster images: they are transliterated
	// (accents stripped, "EUR" for €) or printed as '?'. The font is read when first needed.
	Glyphs *unifont.File
	// Counters, when set, count what Render printed as a picture or could not print as itself,
	// over every Render given them (a metric). Preview does not count.
	Counters *Counters
	// OnUnprintable, when set, hears once per Render (and Preview) of each different character
	// that did not print as itself: what printed instead, and why (a log line).
	OnUnprintable func(Unprintable)
	OnUnknown     func(index int, lineType string) // optional: called once per line of an unknown type, on each Render or Preview
	// Logo is the merchant's picture, printed centred at the top of every receipt on a model
	// that prints raster images (NewLogo makes it once, for the printer's width); the text
	// preview shows PreviewLogo in its place.
	Logo *Logo
	// Header and Footer are the merchant's own lines, each printed centred (wrapped where it
	// is wider than the paper) before and after the receipt's lines, through the same layout
	// and code pages, pictures included.
	Header, Footer []string
}

// Counters count characters by how they reached the paper. They are safe for concurrent use
// and may be read at any time: a metric's source.
type Counters struct {
	Pictured    atomic.Uint64 // no page had it: drawn from the glyph font (GS v 0)
	Substituted atomic.Uint64 // printed as its transliteration or base letter ("EUR", "o" for ő)
	Missing     atomic.Uint64 // printed as '?' (no page, no picture, no transliteration) or a box (no glyph)
}

// Unprintable is a character that did not print as itself.
type Unprintable struct {
	Char      rune
	PrintedAs string // what went to paper in its place: "EUR", "o", "?", "□"
	Why       string // why it could not print: no page and no pictures, no glyph, the font's error
}

const (
	minColumns     = 16
	maxColumns     = 255
	defaultColumns = 48
	cutFeed        = 3 // GS V 65/66 n: n motion units fed past the cutter position
	tearFeed       = 4 // ESC d n: lines fed so the last line clears a tear bar
)

// Preview cut markers: the last line of every preview. All fit the
// smallest column count, so the preview never runs wider than the paper.
const (
	PreviewCutPartial = "--- cut ---"
	PreviewCutFull    = "=== full cut ==="
	PreviewTearOff    = "--- tear off ---" // a printer without a cutter
)

type config struct {
	cols     int
	pictures *unifont.File // nil: the printer draws no pictures
	logo     *Logo         // nil: none, or the printer draws no pictures
	pages    []*codePage   // pages[0] is selected at the start of the job
	slots    []byte        // ESC t n for each page
	cut      CutMode
	tear     bool // the printer has no cutter: feed, do not cut
}

// pagePreference orders a profile's pages for text ecrd prints most: German and € first, so
// a German receipt never switches, then the pages of Central and Northern Europe, Cyrillic,
// Greek, Turkish, Baltic and the rest. A page not named here comes after these, by name, so
// every page a printer has can print the characters only it has.
var pagePreference = []string{
	"cp858", "cp1252", "iso885915", "cp850", "cp437", "iso88591",
	"cp852", "cp1250", "iso88592", "cp866", "cp1251", "cp855", "iso88595", "cp1125", "rk1048",
	"cp737", "cp869", "cp1253", "iso88597", "cp857", "cp1254", "iso88599", "iso88593",
	"cp775", "cp1257", "iso88594", "cp774", "cp772", "cp3011", "cp3012",
	"cp861", "cp865", "cp860", "cp863", "tcvn31", "tcvn32", "cp1258", "cp874", "katakana",
}

func (o Options) config() (config, error) {
	prof := o.Profile
	if prof == nil {
		prof = profile.Generic
	}
	c := config{cols: o.Columns, cut: o.Cut}
	if c.cols == 0 {
		c.cols = prof.Columns()
	}
	if c.cols == 0 {
		c.cols = defaultColumns
	}
	if c.cols < minColumns || c.cols > maxColumns {
		return config{}, fmt.Errorf("receipt: columns %d out of range %d..%d", c.cols, minColumns, maxColumns)
	}
	if o.Cut != CutPartial && o.Cut != CutFull {
		return config{}, fmt.Errorf("receipt: unknown cut mode %d", int(o.Cut))
	}
	c.cut, c.tear = cutFor(prof, c.cut)
	if prof.Raster {
		c.pictures, c.logo = o.Glyphs, o.Logo
	}
	var err error
	if o.CodePage != "" {
		c.pages, c.slots, err = namedCodePage(prof, o.CodePage)
	} else {
		c.pages, c.slots, err = preferredCodePages(prof)
	}
	if err != nil {
		return config{}, err
	}
	return c, nil
}

// cutFor is the cut prof can make when asked for want: the other kind when it has only that
// one, and a tear (tear true) when it has no cutter at all.
func cutFor(prof *profile.Profile, want CutMode) (cut CutMode, tear bool) {
	switch {
	case !prof.Cuts():
		return want, true
	case want == CutFull && !prof.FullCut:
		return CutPartial, false
	case want == CutPartial && !prof.PartialCut:
		return CutFull, false
	}
	return want, false
}

// namedCodePage is the one page a receipt is printed in when the options name it.
func namedCodePage(prof *profile.Profile, name string) ([]*codePage, []byte, error) {
	cp, ok := printablePage(name)
	slot, inProfile := prof.Slot(name)
	if !ok || !inProfile {
		return nil, nil, fmt.Errorf("receipt: unknown code page %q for printer %s (known: %s)", name, prof.Key, strings.Join(knownCodePages(prof), ", "))
	}
	return []*codePage{cp}, []byte{slot}, nil
}

// knownCodePages lists, sorted, the pages of prof that ecrd can encode.
func knownCodePages(prof *profile.Profile) []string {
	var known []string
	for _, p := range prof.CodePages {
		if cp, ok := printablePage(p.Name); ok && !slices.Contains(known, cp.name) {
			known = append(known, cp.name)
		}
	}
	sort.Strings(known)
	return known
}

// profilePages caches preferredCodePages by profile: working the table out takes hundreds of
// allocations, a receipt none. Profiles are long-lived (the generated ones, Generic, the one a
// daemon made at start); past maxCachedProfiles, pages are worked out on every call instead.
var (
	profilePages      sync.Map // *profile.Profile -> *pageSet
	profilePagesCount atomic.Int32
)

const maxCachedProfiles = 64

type pageSet struct {
	pages []*codePage
	slots []byte
	err   error
}

// preferredCodePages is every page of prof that ecrd can print in, in pagePreference order
// (pages it does not name after them, by name), each once, at its lowest slot. The slices are
// shared: read them only.
func preferredCodePages(prof *profile.Profile) ([]*codePage, []byte, error) {
	if v, ok := profilePages.Load(prof); ok {
		ps := v.(*pageSet)
		return ps.pages, ps.slots, ps.err
	}
	pages, slots, err := workOutPages(prof)
	if profilePagesCount.Load() < maxCachedProfiles {
		if _, loaded := profilePages.LoadOrStore(prof, &pageSet{pages, slots, err}); !loaded {
			profilePagesCount.Add(1)
		}
	}
	return pages, slots, err
}

func workOutPages(prof *profile.Profile) ([]*codePage, []byte, error) {
	var pages []*codePage
	var slots []byte
	add := func(key string) {
		cp, ok := printablePage(key)
		if !ok || slices.Contains(pages, cp) {
			return
		}
		if slot, ok := prof.Slot(key); ok {
			pages, slots = append(pages, cp), append(slots, slot)
		}
	}
	for _, key := range pagePreference {
		add(key)
	}
	for _, key := range knownCodePages(prof) {
		add(key)
	}
	if len(pages) == 0 {
		return nil, nil, fmt.Errorf("receipt: printer %s has no code page ecrd can encode", prof.Key)
	}
	return pages, slots, nil
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
	l := newLayout(c.cols, c.pages, c.pictures, len(lines)+len(opt.Header)+len(opt.Footer))
	l.merchant(opt.Header)
	l.run(lines, opt.OnUnknown)
	l.merchant(opt.Footer)
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
	p.Init()                                                // ESC @
	p.WriteRaw([]byte{0x1B, 'R', 0, 0x1B, 't', c.slots[0]}) // ESC R 0 (USA set), ESC t n
	var cur style
	page := 0      // the page selected on the printer now
	var run []byte // bytes for the printer, built in buf's free space (AvailableBuffer)
	if c.logo != nil {
		p.WriteRaw(c.logo.appendTo(buf.AvailableBuffer()))
	}
	for _, pl := range l.lines {
		line := l.arena[pl.start : pl.end+1] // the text and its LF
		if pl.picture {
			// GS v 0 prints only at the start of a line, never beside text: the whole line
			// is one picture, in the same columns. Print modes do not apply to it.
			run = l.raster(buf.AvailableBuffer(), line[:len(line)-1], pl.style)
			p.WriteRaw(run)
			continue
		}
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
		for len(line) > 0 {
			// Write the run the current page can print in one call, then switch. The bytes
			// go into the buffer's free space, sized by Grow above: no allocation.
			run = buf.AvailableBuffer()
			if len(l.enc.palette) == 0 && cap(run) >= len(line) {
				// Nothing but ASCII in the receipt: the cells are the bytes.
				run = run[:len(line)]
				for i, ch := range line {
					run[i] = byte(ch)
				}
				p.WriteRaw(run)
				break
			}
			n := 0
			for ; n < len(line); n++ {
				ch := line[n]
				if ch < 0x80 {
					run = append(run, byte(ch))
					continue
				}
				b := l.enc.palette[ch-0x80].bytes[page]
				if b < 0 {
					break
				}
				run = append(run, byte(b))
			}
			if n > 0 {
				p.WriteRaw(run)
				line = line[n:]
				continue
			}
			page = nextPage(l.enc.palette[line[0]-0x80], line[1:], l.enc.palette)
			p.WriteRaw([]byte{0x1B, 't', c.slots[page]})
		}
	}
	// Reset everything before the cut, so that a printer which does not
	// get ESC @ from the next sender (a test print, another program) starts plain.
	p.WriteRaw(emphasis(false))
	p.SetFontSize(1, 1)
	p.SetAlign("left")
	p.Linefeed()
	p.WriteRaw(c.ending())
	l.report(opt, true)
	return buf.Bytes(), nil
}

// report adds what the layout printed as something else to opt's counters (count: Render,
// not Preview), and tells opt.OnUnprintable of each such character.
func (l *layout) report(opt Options, count bool) {
	e := l.enc
	if k := opt.Counters; k != nil && count {
		if e.stats.pictured > 0 {
			k.Pictured.Add(uint64(e.stats.pictured))
		}
		if e.stats.substituted > 0 {
			k.Substituted.Add(uint64(e.stats.substituted))
		}
		if e.stats.missing > 0 {
			k.Missing.Add(uint64(e.stats.missing))
		}
	}
	if opt.OnUnprintable == nil {
		return
	}
	for _, r := range e.fellBack {
		t := e.cache[r]
		var as strings.Builder
		for _, c := range t.cells {
			if d := e.decode(c); d != 0 {
				as.WriteRune(d)
			}
		}
		opt.OnUnprintable(Unprintable{Char: r, PrintedAs: as.String(), Why: t.why})
	}
	for _, r := range e.capped {
		opt.OnUnprintable(Unprintable{Char: r, PrintedAs: "?", Why: fmt.Sprintf("the receipt has more than %d lines of pictures", maxPictureLines)})
	}
}

// nextPage picks the page for a character the current page lacks: of the pages that have it,
// the one that also prints the most of the characters after it, so Polish or Cyrillic text
// switches once per run rather than once per letter; ties go to the preferred page.
func nextPage(e paletteEntry, rest []cell, palette []paletteEntry) int {
	best, bestRun := -1, -1
	for i, b := range e.bytes {
		if b < 0 {
			continue
		}
		run := 0
		for _, c := range rest {
			if c >= 0x80 && palette[c-0x80].bytes[i] < 0 {
				break
			}
			run++
		}
		if run > bestRun {
			best, bestRun = i, run
		}
	}
	return best
}

// ending is the job's last command: the cut, or for a printer without a cutter a feed that
// brings the last line past the tear bar.
func (c config) ending() []byte {
	if c.tear {
		return []byte{0x1B, 'd', tearFeed}
	}
	return cutCommand(c.cut)
}

// previewEnd is the preview's last line, the marker for ending().
func (c config) previewEnd() string {
	switch {
	case c.tear:
		return PreviewTearOff
	case c.cut == CutFull:
		return PreviewCutFull
	}
	return PreviewCutPartial
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
// line per paper line (bold and double height are not shown; the logo is
// PreviewLogo, centred), the empty line
// the job feeds before its cut, and then PreviewCutPartial or
// PreviewCutFull as the last line. Characters appear as the printer will
// print them, after transliteration (so "€" reads "EUR" on cp437); a character
// drawn as a picture appears as itself (a wide one takes two columns in a
// terminal, as on paper), and one no font has as "□".
func Preview(lines []Line, opt Options) (string, error) {
	l, c, err := layOut(lines, opt)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.Grow(len(l.arena) + len(l.lines) + 32)
	if c.logo != nil {
		b.WriteString(strings.Repeat(" ", (c.cols-len(PreviewLogo))/2) + PreviewLogo + "\n")
	}
	for _, pl := range l.lines {
		for _, ch := range l.arena[pl.start:pl.end] {
			if ch < utf8.RuneSelf {
				b.WriteByte(byte(ch))
			} else if r := l.enc.decode(ch); r != 0 {
				b.WriteRune(r) // a wide character's right half shows nothing more
			}
		}
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(c.previewEnd())
	b.WriteByte('\n')
	l.report(opt, false)
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
