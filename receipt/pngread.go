package receipt

import (
	"fmt"

	"github.com/ecrd-pos/ecrd/profile"
)

// drawnCell is one printed character and how it was printed.
type drawnCell struct {
	r          rune
	bold, tall bool
}

// paperEnd is how a job ends on paper.
type paperEnd int

const (
	endNone paperEnd = iota
	endPartial
	endFull
	endTear
)

// readJob interprets job into the strips of paper it prints, accepting the commands Render and
// DrawerKick emit. The pictures read a job a strip at a time instead (jobReader.next); this is
// for tests.
func readJob(job []byte, prof *profile.Profile) (strips []paperStrip, end paperEnd, err error) {
	r := newJobReader(job, prof)
	for {
		s, ok, err := r.next()
		if err != nil {
			return nil, 0, err
		}
		if !ok {
			return strips, r.end, nil
		}
		s.cells = append([]drawnCell(nil), s.cells...)
		strips = append(strips, s)
	}
}

// paperStrip is one band of paper as the printer prints it: a line of text (cells; none for
// an empty line), a band of a raster picture (pic), or blank paper fed by ESC J (feed dots).
type paperStrip struct {
	cells []drawnCell
	pic   *rasterPic
	rows  [2]int // the picture's rows [from, to) in this strip
	feed  int
}

// rasterPic is a GS v 0 picture in the job: its dots, a row every stride bytes, the leftmost
// dot in the highest bit, printed sx times as wide and sy times as tall.
type rasterPic struct {
	bits           []byte
	stride, height int
	sx, sy         int
}

// height is the strip's height on paper in dots.
func (s paperStrip) height() int {
	switch {
	case s.pic != nil:
		return (s.rows[1] - s.rows[0]) * s.pic.sy
	case s.feed > 0:
		return s.feed
	}
	return pitch(s.cells)
}

// width is the strip's width on paper in dots.
func (s paperStrip) width() int {
	if s.pic != nil {
		return s.pic.stride * 8 * s.pic.sx
	}
	return len(s.cells) * cellW
}

// maxStrip bounds a strip's height: a tall picture or a long feed is drawn in strips of at
// most this many rows, so that a picture's memory does not grow with what it shows.
const maxStrip = 64

// maxPictureDots bounds a picture's width: as wide as the widest line of text ecrd lays out.
const maxPictureDots = maxColumns * cellW

// jobReader is the printer's state while it reads a job: where it is, the selected code
// page and print mode, the line being printed and how the paper ends.
type jobReader struct {
	job        []byte
	prof       *profile.Profile
	i          int       // the next byte to read
	page       *codePage // nil: the slot holds a page ecrd does not know, drawn as '?'
	bold, tall bool
	cur        []drawnCell // the line being printed
	done       []drawnCell // the line next returned last; its array is reused for the next
	feeds      int         // empty lines fed (ESC d) that next has yet to return
	feedDots   int         // dots of paper fed (ESC J) that next has yet to return
	pic        *rasterPic  // a picture next has yet to return all of
	picRow     int         // its next row
	end        paperEnd
}

func newJobReader(job []byte, prof *profile.Profile) *jobReader {
	if prof == nil {
		prof = profile.Generic
	}
	r := &jobReader{job: job, prof: prof}
	r.page = r.codePage(0)
	return r
}

// next reads up to the end of the next strip of paper and returns it (its cells valid until
// the next call), or ok false at the end of the job. A line is at most maxColumns wide, a
// picture maxPictureDots: Render never makes a wider one, and a picture's memory depends on
// its width.
func (r *jobReader) next() (s paperStrip, ok bool, err error) {
	for r.feeds == 0 && r.feedDots == 0 && r.pic == nil && r.i < len(r.job) {
		if r.job[r.i] == '\n' {
			r.i++
			return paperStrip{cells: r.take()}, true, nil
		}
		n, err := r.step(r.i)
		if err != nil {
			return paperStrip{}, false, err
		}
		r.i += n
		if len(r.cur) > maxColumns {
			return paperStrip{}, false, fmt.Errorf("receipt: a line wider than %d characters at byte %d", maxColumns, r.i)
		}
	}
	switch {
	case r.pic != nil:
		// A picture prints at once, in strips of at most maxStrip rows.
		p := r.pic
		to := min(p.height, r.picRow+max(1, maxStrip/p.sy))
		s = paperStrip{pic: p, rows: [2]int{r.picRow, to}}
		if r.picRow = to; to == p.height {
			r.pic = nil
		}
		return s, true, nil
	case r.feeds > 0:
		// ESC d feeds at once, ahead of characters still waiting for their line feed.
		r.feeds--
		return paperStrip{}, true, nil
	case r.feedDots > 0:
		n := min(r.feedDots, maxStrip)
		r.feedDots -= n
		return paperStrip{feed: n}, true, nil
	case len(r.cur) > 0:
		return paperStrip{cells: r.take()}, true, nil
	}
	return paperStrip{}, false, nil
}

// take ends the line being printed and returns it.
func (r *jobReader) take() []drawnCell {
	ln := r.cur
	r.cur, r.done = r.done[:0], ln
	return ln
}

// codePage is the page the profile puts in ESC t slot.
func (r *jobReader) codePage(slot byte) *codePage {
	for _, cp := range r.prof.CodePages {
		if cp.Slot == slot {
			if p, ok := lookupCodePage(cp.Name); ok {
				return p
			}
		}
	}
	return nil
}

// commandBytes returns the n bytes of the command at i, or an error if the job ends inside it.
func (r *jobReader) commandBytes(i, n int) ([]byte, error) {
	if i+n > len(r.job) {
		return nil, fmt.Errorf("receipt: job truncated in the command at byte %d", i)
	}
	return r.job[i : i+n], nil
}

// step reads the character or command at i (not a line feed: line reads those) and returns
// how many bytes it took.
func (r *jobReader) step(i int) (int, error) {
	switch b := r.job[i]; {
	case b == 0x1B || b == 0x1D || b == 0x10:
		return r.command(i)
	case b < 0x20 || b == 0x7F:
		// control bytes print nothing
	default:
		r.cur = append(r.cur, drawnCell{r: r.char(b), bold: r.bold, tall: r.tall})
	}
	return 1, nil
}

// char is the character b prints in the selected code page.
func (r *jobReader) char(b byte) rune {
	if b < 0x80 {
		return rune(b)
	}
	if r.page == nil {
		return '?'
	}
	return r.page.decode[b]
}

// command interprets the ESC, GS or DLE command at i and returns its length.
func (r *jobReader) command(i int) (int, error) {
	c, err := r.commandBytes(i, 2)
	if err != nil {
		return 0, err
	}
	n, err := r.apply(c, i)
	if err != nil {
		return 0, err
	}
	if _, err := r.commandBytes(i, n); err != nil {
		return 0, err
	}
	return n, nil
}

// apply does what command c (its prefix and letter) at i does to the paper and returns the
// command's length.
func (r *jobReader) apply(c []byte, i int) (int, error) {
	switch string(c) {
	case "\x1b@":
		r.page, r.bold, r.tall = r.codePage(0), false, false
		return 2, nil
	case "\x1bR", "\x1ba", "\x1bM", "\x1dr", "\x10\x04":
		return 3, nil // one parameter that changes nothing on paper
	case "\x1bp":
		return 5, nil // the drawer kick: nothing on paper
	case "\x1bt", "\x1bE", "\x1d!", "\x1bd", "\x1dV", "\x1bJ":
		p, err := r.commandBytes(i, 3)
		if err != nil {
			return 0, err
		}
		if c[1] == 'J' && len(r.cur) > 0 {
			return 0, fmt.Errorf("receipt: cannot draw ESC J after text at byte %d", i)
		}
		return r.applyParameter(string(c), p[2]), nil
	case "\x1dv":
		return r.raster(i)
	}
	return 0, fmt.Errorf("receipt: cannot draw command % x at byte %d", c, i)
}

// raster reads GS v 0 m xL xH yL yH and its dots at i: a picture the printer prints at once,
// at the left edge, where no text is waiting in the line (Render draws a whole line so).
func (r *jobReader) raster(i int) (int, error) {
	h, err := r.commandBytes(i, 8)
	if err != nil {
		return 0, err
	}
	m := h[3]
	stride, rows := int(h[4])|int(h[5])<<8, int(h[6])|int(h[7])<<8
	sx, sy := 1+int(m&1), 1+int(m>>1&1)
	switch {
	case h[2] != '0' && h[2] != 0 || m > 3 && (m < 48 || m > 51):
		return 0, fmt.Errorf("receipt: cannot draw GS v % x at byte %d", h[2:4], i)
	case len(r.cur) > 0:
		return 0, fmt.Errorf("receipt: cannot draw a picture beside text at byte %d", i)
	case stride == 0 || rows == 0:
		return 0, fmt.Errorf("receipt: an empty picture at byte %d", i)
	case stride*8*sx > maxPictureDots:
		return 0, fmt.Errorf("receipt: a picture wider than %d dots at byte %d", maxPictureDots, i)
	}
	n := 8 + stride*rows
	data, err := r.commandBytes(i, n)
	if err != nil {
		return 0, err
	}
	r.pic, r.picRow = &rasterPic{bits: data[8:], stride: stride, height: rows, sx: sx, sy: sy}, 0
	return n, nil
}

// applyParameter does what a command with parameter p does and returns its length.
func (r *jobReader) applyParameter(c string, p byte) int {
	switch c {
	case "\x1bt":
		r.page = r.codePage(p)
	case "\x1bE":
		r.bold = p&1 != 0
	case "\x1d!":
		r.tall = p&0x0F != 0
	case "\x1bd":
		r.feeds += int(p)
		r.end = endTear
	case "\x1bJ":
		r.feedDots += int(p)
	case "\x1dV":
		return r.cut(p)
	}
	return 3
}

// cut reads GS V m [n]: m 0, 48 and 65 cut fully, any other partially; 65 and 66 take a feed n.
func (r *jobReader) cut(m byte) int {
	if m == 0 || m == 48 || m == 65 {
		r.end = endFull
	} else {
		r.end = endPartial
	}
	if m == 65 || m == 66 {
		return 4
	}
	return 3
}
