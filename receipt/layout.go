package receipt

import (
	"strings"

	"github.com/ecrd-pos/ecrd/receipt/unifont"
)

// style is what a paper line looks like beyond its characters.
type style uint8

const (
	styleBold style = 1 << iota // ESC E 1: secupay's "important", captions
	styleTall                   // GS ! 0x01: double height, same width, so columns hold
)

// paperLine is one printed line: arena[start:end] holds its cells with
// alignment padding already applied, never more than the columns,
// and arena[end] its line feed.
// Render and Preview both print from these, so the preview cannot drift
// from the bytes.
type paperLine struct {
	start, end int
	style      style
	picture    bool // printed as one raster image: a character on it is on no code page
}

type align uint8

const (
	alignLeft align = iota
	alignCenter
	alignRight
)

// layout lays receipt lines out on paper of a fixed column count.
type layout struct {
	cols    int
	enc     *encoder
	arena   []cell
	lines   []paperLine
	scratch []cell // encoded text of the line being laid out
	// pictureLines counts the lines printed as pictures, up to maxPictureLines.
	pictureLines int
	valBuf       []cell // a name-value's value, which must outlive the next encode
}

func newLayout(cols int, pages []*codePage, pictures *unifont.File, n int) *layout {
	return &layout{
		cols:  cols,
		enc:   newEncoder(pages, pictures),
		arena: make([]cell, 0, n*(cols+1)),
		lines: make([]paperLine, 0, n+n/4+2),
	}
}

// run lays out every line; onUnknown (may be nil) hears of types it does not know.
func (l *layout) run(lines []Line, onUnknown func(int, string)) {
	for i := range lines {
		ln := &lines[i]
		switch strings.ToLower(strings.TrimSpace(ln.Type)) {
		case "separator":
			l.separator(ln.Value.Caption)
		case "textline":
			l.textline(ln.Value.Text, ln.Value.Decoration)
		case "name-value", "name_value":
			l.nameValue(ln.Value.Name, ln.Value.Value, ln.Value.Decoration)
		case "space":
			l.emit(nil, 0, 0)
		default:
			if onUnknown != nil {
				onUnknown(i, ln.Type)
			}
			// A type secupay adds later still carries words a customer may
			// need (an amount, a reference): print them as text rather than
			// lose them. A line with no text prints nothing.
			if t := unknownText(ln.Value); t != "" {
				l.textline(t, ln.Value.Decoration)
			}
		}
	}
}

// merchant lays out the merchant's own header or footer lines, each centred.
func (l *layout) merchant(texts []string) {
	for _, t := range texts {
		l.textline(t, centred)
	}
}

var centred = []string{"align-center"}

func unknownText(v Value) string {
	var parts []string
	for _, s := range []string{v.Caption, v.Text, v.Name, v.Value} {
		if s = strings.TrimSpace(s); s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, " ")
}

// decorations reads secupay's decoration list. Names are matched without
// regard to case, with '_' taken as '-' (an old SDK spells align_left);
// names it does not know are ignored, and the last alignment wins.
func decorations(decs []string) (a align, important bool) {
	for _, d := range decs {
		switch strings.ReplaceAll(strings.ToLower(strings.TrimSpace(d)), "_", "-") {
		case "important":
			important = true
		case "align-left":
			a = alignLeft
		case "align-center", "align-centre":
			a = alignCenter
		case "align-right":
			a = alignRight
		}
	}
	return a, important
}

func (l *layout) encode(s string) []cell {
	l.scratch = l.enc.encode(l.scratch[:0], s)
	return l.scratch
}

// separator draws a rule, or a headline: a blank line of air above, the
// caption centred in bold double height, and a rule under it.
func (l *layout) separator(caption string) {
	text := trimSpace(l.encode(caption))
	if len(text) == 0 {
		l.rule()
		return
	}
	if n := len(l.lines); n > 0 && l.lines[n-1].end > l.lines[n-1].start {
		l.emit(nil, 0, 0)
	}
	l.wrap(text, false, func(part []cell) {
		l.emit(part, (l.cols-len(part))/2, styleBold|styleTall)
	})
	l.rule()
}

func (l *layout) rule() {
	start := len(l.arena)
	for i := 0; i < l.cols; i++ {
		l.arena = append(l.arena, '-')
	}
	l.endLine(start, 0)
}

// endLine records arena[start:] as a paper line and stores its line feed
// after it, so Render writes text and LF in one call without allocating.
func (l *layout) endLine(start int, st style) {
	pl := paperLine{start: start, end: len(l.arena), style: st}
	if l.enc.anyPic && l.hasPicture(l.arena[start:]) {
		if l.pictureLines < maxPictureLines {
			pl.picture = true
			l.pictureLines++
		} else {
			l.enc.unpicture(l.arena[start:])
		}
	}
	l.lines = append(l.lines, pl)
	l.arena = append(l.arena, '\n')
}

// textline prints literal text, wrapped at words. Left-aligned text keeps
// its leading spaces, since a sender may indent on purpose.
func (l *layout) textline(s string, decs []string) {
	a, important := decorations(decs)
	var st style
	if important {
		st = styleBold
	}
	text := l.encode(s)
	l.wrap(text, a == alignLeft, func(part []cell) {
		l.emit(part, l.indent(a, len(part)), st)
	})
}

func (l *layout) indent(a align, n int) int {
	switch a {
	case alignCenter:
		return (l.cols - n) / 2
	case alignRight:
		return l.cols - n
	}
	return 0
}

// nameValue puts the name at the left and the value at the right of one
// line. When both do not fit with a space between, the name gets its own
// line(s) and the value follows right-aligned, so an amount is never split
// from its right edge. Alignment decorations do not apply to the two columns.
func (l *layout) nameValue(name, value string, decs []string) {
	_, important := decorations(decs)
	var st style
	if important {
		st = styleBold
	}
	l.valBuf = l.enc.encode(l.valBuf[:0], value)
	val := trimSpace(l.valBuf)
	nm := trimSpace(l.encode(name))
	switch {
	case len(nm) == 0 && len(val) == 0:
		l.emit(nil, 0, st)
	case len(nm)+1+len(val) <= l.cols && len(nm) > 0 && len(val) > 0:
		start := len(l.arena)
		l.arena = append(l.arena, nm...)
		for i := len(nm) + len(val); i < l.cols; i++ {
			l.arena = append(l.arena, ' ')
		}
		l.arena = append(l.arena, val...)
		l.endLine(start, st)
	default:
		if len(nm) > 0 {
			l.wrap(nm, false, func(part []cell) { l.emit(part, 0, st) })
		}
		if len(val) > 0 {
			l.wrap(val, false, func(part []cell) { l.emit(part, l.cols-len(part), st) })
		}
	}
}

// emit appends one paper line: indent spaces, then text without trailing spaces.
func (l *layout) emit(text []cell, indent int, st style) {
	text = trimRight(text)
	if len(text) == 0 {
		indent = 0
	}
	start := len(l.arena)
	for i := 0; i < indent; i++ {
		l.arena = append(l.arena, ' ')
	}
	l.arena = append(l.arena, text...)
	l.endLine(start, st)
}

// wrap cuts s into pieces no wider than the columns, at spaces where it can
// and inside a word only when the word alone is wider than the paper, never
// between the halves of a wide character.
// It calls fn once for an empty s, so an empty textline still takes a line.
// Each step scans at most cols+1 cells and consumes what it scanned up to
// the cut, so a huge text wraps in linear time.
func (l *layout) wrap(s []cell, keepLead bool, fn func([]cell)) {
	w := l.cols
	s = trimRight(s)
	if !keepLead {
		s = trimLeft(s)
	}
	if len(s) == 0 {
		fn(nil)
		return
	}
	for len(s) > w {
		cut := lastSpace(s[:w+1])
		var head []cell
		if cut > 0 {
			head = trimRight(s[:cut])
		}
		if len(head) == 0 {
			n := w
			if s[n] == cellWide {
				n-- // the wide character moves to the next line whole
			}
			head, s = s[:n], s[n:]
		} else {
			s = s[cut+1:]
		}
		fn(head)
		s = trimLeft(s)
	}
	if len(s) > 0 {
		fn(s)
	}
}

func trimLeft(s []cell) []cell {
	for len(s) > 0 && s[0] == ' ' {
		s = s[1:]
	}
	return s
}

func trimRight(s []cell) []cell {
	for len(s) > 0 && s[len(s)-1] == ' ' {
		s = s[:len(s)-1]
	}
	return s
}

func trimSpace(s []cell) []cell { return trimLeft(trimRight(s)) }

// lastSpace is the index of the last ' ' in s, or -1.
func lastSpace(s []cell) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == ' ' {
			return i
		}
	}
	return -1
}
