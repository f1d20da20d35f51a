package receipt

import (
	"fmt"

	"github.com/ecrd-pos/ecrd/internal/escposread"
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
// page and print mode, the line being printed and how the paper ends. The commands are read
// by escposread, the interpreter the simulated printers share; jobReader does what they do
// to the paper.
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
		c, err := r.read(r.i)
		if err != nil {
			return paperStrip{}, false, err
		}
		r.i += c.Len()
		if c.Op == escposread.OpLF {
			return paperStrip{cells: r.take()}, true, nil
		}
		if err := r.apply(c); err != nil {
			return paperStrip{}, false, err
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

// read reads the command at i.
func (r *jobReader) read(i int) (escposread.Cmd, error) {
	c, err := escposread.At(r.job, i)
	if e, ok := err.(*escposread.Error); ok {
		if e.Truncated {
			return c, fmt.Errorf("receipt: job truncated in the command at byte %d", e.Off)
		}
		return c, fmt.Errorf("receipt: cannot draw command % x at byte %d", e.Cmd, e.Off)
	}
	return c, err
}

// step reads the characters or the command at i (not a line feed: next reads those), does
// what they do to the paper and returns how many bytes it took.
func (r *jobReader) step(i int) (int, error) {
	c, err := r.read(i)
	if err != nil {
		return 0, err
	}
	return c.Len(), r.apply(c)
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

// apply does what command c does to the paper. A line feed is next's; control bytes, ESC R,
// ESC a, ESC M, ESC p, GS r and DLE EOT change nothing on paper.
func (r *jobReader) apply(c escposread.Cmd) error {
	switch c.Op {
	case escposread.OpText:
		for k, b := range c.Data {
			if len(r.cur) == maxColumns {
				return fmt.Errorf("receipt: a line wider than %d characters at byte %d", maxColumns, c.Off+k+1)
			}
			r.cur = append(r.cur, drawnCell{r: r.char(b), bold: r.bold, tall: r.tall})
		}
	case escposread.OpInit:
		r.page, r.bold, r.tall = r.codePage(0), false, false
	case escposread.OpCodePage:
		r.page = r.codePage(c.N)
	case escposread.OpEmphasis:
		r.bold = c.N&1 != 0
	case escposread.OpSize:
		r.tall = c.N&0x0F != 0
	case escposread.OpFeedLines:
		r.feeds += int(c.N)
		r.end = endTear
	case escposread.OpFeedDots:
		if len(r.cur) > 0 {
			return fmt.Errorf("receipt: cannot draw ESC J after text at byte %d", c.Off)
		}
		r.feedDots += int(c.N)
	case escposread.OpCut:
		// m 0, 48 and 65 cut fully, any other partially.
		r.end = endPartial
		if c.N == 0 || c.N == 48 || c.N == 65 {
			r.end = endFull
		}
	case escposread.OpRaster:
		return r.raster(c)
	}
	return nil
}

// raster takes GS v 0 picture c: a picture the printer prints at once, at the left edge,
// where no text is waiting in the line (Render draws a whole line so).
func (r *jobReader) raster(c escposread.Cmd) error {
	sx, sy := 1+int(c.N&1), 1+int(c.N>>1&1)
	switch {
	case len(r.cur) > 0:
		return fmt.Errorf("receipt: cannot draw a picture beside text at byte %d", c.Off)
	case c.Width == 0 || c.Height == 0:
		return fmt.Errorf("receipt: an empty picture at byte %d", c.Off)
	case c.Width*8*sx > maxPictureDots:
		return fmt.Errorf("receipt: a picture wider than %d dots at byte %d", maxPictureDots, c.Off)
	}
	r.pic, r.picRow = &rasterPic{bits: c.Data, stride: c.Width, height: c.Height, sx: sx, sy: sy}, 0
	return nil
}
