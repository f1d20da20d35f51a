package receipt

import (
	"bytes"
	"strings"
)

// style is what a paper line looks like beyond its characters.
type style uint8

const (
	styleBold style = 1 << iota // ESC E 1: secupay's "important", captions
	styleTall                   // GS ! 0x01: double height, same width, so columns hold
)

// paperLine is one printed line: arena[start:end] holds its code-page bytes
// with alignment padding already applied, never longer than the columns,
// and arena[end] its line feed.
// Render and Preview both print from these, so the preview cannot drift
// from the bytes.
type paperLine struct {
	start, end int
	style      style
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
	arena   []byte
	lines   []paperLine
	scratch []byte // encoded text of the line being laid out
	valBuf  []byte // a name-value's value, which must outlive the next encode
}

func newLayout(cols int, pages []*codePage, n int) *layout {
	return &layout{
		cols:  cols,
		enc:   newEncoder(pages),
		arena: make([]byte, 0, n*(cols/2+1)),
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

func (l *layout) encode(s string) []byte {
	l.scratch = l.enc.encode(l.scratch[:0], s)
	return l.scratch
}

// separator draws a rule, or a headline: a blank line of air above, the
// caption centred in bold double height, and a rule under it.
func (l *layout) separator(caption string) {
	text := bytes.TrimSpace(l.encode(caption))
	if len(text) == 0 {
		l.rule()
		return
	}
	if n := len(l.lines); n > 0 && l.lines[n-1].end > l.lines[n-1].start {
		l.emit(nil, 0, 0)
	}
	l.wrap(text, false, func(part []byte) {
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
	l.lines = append(l.lines, paperLine{start: start, end: len(l.arena), style: st})
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
	l.wrap(text, a == alignLeft, func(part []byte) {
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
	val := bytes.TrimSpace(l.valBuf)
	nm := bytes.TrimSpace(l.encode(name))
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
			l.wrap(nm, false, func(part []byte) { l.emit(part, 0, st) })
		}
		if len(val) > 0 {
			l.wrap(val, false, func(part []byte) { l.emit(part, l.cols-len(part), st) })
		}
	}
}

// emit appends one paper line: indent spaces, then text without trailing spaces.
func (l *layout) emit(text []byte, indent int, st style) {
	text = bytes.TrimRight(text, " ")
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
// and inside a word only when the word alone is wider than the paper.
// It calls fn once for an empty s, so an empty textline still takes a line.
// Each step scans at most cols+1 bytes and consumes what it scanned up to
// the cut, so a huge text wraps in linear time.
func (l *layout) wrap(s []byte, keepLead bool, fn func([]byte)) {
	w := l.cols
	s = bytes.TrimRight(s, " ")
	if !keepLead {
		s = bytes.TrimLeft(s, " ")
	}
	if len(s) == 0 {
		fn(nil)
		return
	}
	for len(s) > w {
		cut := bytes.LastIndexByte(s[:w+1], ' ')
		var head []byte
		if cut > 0 {
			head = bytes.TrimRight(s[:cut], " ")
		}
		if len(head) == 0 {
			head, s = s[:w], s[w:]
		} else {
			s = s[cut+1:]
		}
		fn(head)
		s = bytes.TrimLeft(s, " ")
	}
	if len(s) > 0 {
		fn(s)
	}
}
