package receipt

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"sync"

	xdraw "golang.org/x/image/draw"
	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/gofont/gomonobold"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"

	"github.com/ecrd-pos/ecrd/printer/profile"
)

// A picture of the receipt: DrawJob reads an ESC/POS job the way the printer does (the
// commands Render emits, code pages from the profile's slot table) and draws it at the
// printer's resolution: font A's 12×24-dot cell (Go Mono, bold from Go Mono Bold), double
// height as twice the cell, a line pitch of 30 dots (Epson's default 1/6 inch at 180 dpi),
// on paper as wide as the profile's printable dots, ending in the cut (a dashed line for a
// partial cut, a solid one for a full cut, dots for a tear bar).
const (
	cellW      = 12
	cellH      = 24
	linePitch  = 30 // dots from one text line to the next
	paperEdge  = 16 // blank paper left and right of the printable area
	defaultDot = 576
)

// paperWhite and ink are the two colours of thermal paper.
var (
	paperWhite = color.Gray{Y: 0xFF}
	ink        = color.Gray{Y: 0x00}
)

var (
	facesOnce           sync.Once
	regularFace, boldFc font.Face
	facesErr            error
	faceAscent          int
)

// faces loads Go Mono at the size whose advance is exactly one cell: Go Mono's advance is
// 0.6 em, so 20 pixels to the em gives 12 dots.
func faces() (font.Face, font.Face, error) {
	facesOnce.Do(func() {
		load := func(ttf []byte) (font.Face, error) {
			f, err := opentype.Parse(ttf)
			if err != nil {
				return nil, err
			}
			return opentype.NewFace(f, &opentype.FaceOptions{Size: 20, DPI: 72, Hinting: font.HintingFull})
		}
		if regularFace, facesErr = load(gomono.TTF); facesErr != nil {
			return
		}
		if boldFc, facesErr = load(gomonobold.TTF); facesErr != nil {
			return
		}
		m := regularFace.Metrics()
		// Centre the glyphs' ascent+descent in the 24-dot cell.
		faceAscent = (cellH-(m.Ascent+m.Descent).Ceil())/2 + m.Ascent.Ceil()
	})
	return regularFace, boldFc, facesErr
}

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

// readJob interprets job into text lines, accepting the commands Render and DrawerKick emit.
func readJob(job []byte, prof *profile.Profile) (lines [][]drawnCell, end paperEnd, err error) {
	if prof == nil {
		prof = profile.Generic
	}
	r := &jobReader{job: job, prof: prof}
	r.page = r.codePage(0)
	for i := 0; i < len(job); {
		n, err := r.step(i)
		if err != nil {
			return nil, 0, err
		}
		i += n
	}
	if len(r.cur) > 0 {
		r.lines = append(r.lines, r.cur)
	}
	return r.lines, r.end, nil
}

// jobReader is the printer's state while readJob reads a job: the selected code page and
// print mode, the lines so far and how the paper ends.
type jobReader struct {
	job        []byte
	prof       *profile.Profile
	page       *codePage // nil: the slot holds a page ecrd does not know, drawn as '?'
	bold, tall bool
	lines      [][]drawnCell
	cur        []drawnCell // the line being printed
	end        paperEnd
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

// step reads the character or command at i and returns how many bytes it took.
func (r *jobReader) step(i int) (int, error) {
	switch b := r.job[i]; {
	case b == '\n':
		r.lines = append(r.lines, r.cur)
		r.cur = nil
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
	case "\x1bt", "\x1bE", "\x1d!", "\x1bd", "\x1dV":
		p, err := r.commandBytes(i, 3)
		if err != nil {
			return 0, err
		}
		return r.applyParameter(string(c), p[2]), nil
	}
	return 0, fmt.Errorf("receipt: cannot draw command % x at byte %d", c, i)
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
		for range p {
			r.lines = append(r.lines, nil)
		}
		r.end = endTear
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

// DrawJob draws an ESC/POS job (from Render, perhaps with a DrawerKick) as the printer with
// profile prof (nil: generic, 80 mm) will print it.
func DrawJob(job []byte, prof *profile.Profile) (*image.Gray, error) {
	regular, boldFace, err := faces()
	if err != nil {
		return nil, err
	}
	lines, end, err := readJob(job, prof)
	if err != nil {
		return nil, err
	}
	dots := defaultDot
	if prof != nil && prof.WidthDots > 0 {
		dots = prof.WidthDots
	}
	height := paperEdge
	widest := 0
	for _, ln := range lines {
		height += pitch(ln)
		widest = max(widest, len(ln)*cellW)
	}
	dots = max(dots, widest)
	height += 2 * paperEdge
	img := image.NewGray(image.Rect(0, 0, dots+2*paperEdge, height))
	draw.Draw(img, img.Bounds(), image.NewUniform(paperWhite), image.Point{}, draw.Src)

	cell := image.NewGray(image.Rect(0, 0, cellW, cellH))
	y := paperEdge
	for _, ln := range lines {
		h := pitch(ln) - (linePitch - cellH)
		for i, c := range ln {
			if c.r == ' ' {
				continue
			}
			draw.Draw(cell, cell.Bounds(), image.NewUniform(paperWhite), image.Point{}, draw.Src)
			face := regular
			if c.bold {
				face = boldFace
			}
			d := font.Drawer{Dst: cell, Src: image.NewUniform(ink), Face: face, Dot: fixed.P(0, faceAscent)}
			d.DrawString(string(c.r))
			x := paperEdge + i*cellW
			if c.tall {
				xdraw.NearestNeighbor.Scale(img, image.Rect(x, y, x+cellW, y+h), cell, cell.Bounds(), draw.Src, nil)
			} else {
				// A tall line's short characters stand on its baseline, as on paper.
				draw.Draw(img, image.Rect(x, y+h-cellH, x+cellW, y+h), cell, image.Point{}, draw.Src)
			}
		}
		y += pitch(ln)
	}
	drawEnd(img, y+paperEdge/2, end)
	return img, nil
}

// pitch is a line's height on paper: twice the cell for double height.
func pitch(ln []drawnCell) int {
	for _, c := range ln {
		if c.tall {
			return linePitch + cellH
		}
	}
	return linePitch
}

// drawEnd draws where the paper is cut or torn.
func drawEnd(img *image.Gray, y int, end paperEnd) {
	b := img.Bounds()
	for x := b.Min.X; x < b.Max.X; x++ {
		var on bool
		switch end {
		case endFull:
			on = true
		case endPartial:
			on = x%12 < 8
		case endTear:
			on = x%6 < 2
		}
		if on {
			img.SetGray(x, y, ink)
			if end == endFull {
				img.SetGray(x, y+1, ink)
			}
		}
	}
}

// JobPNG is DrawJob encoded as PNG: the picture a technician or the POS looks at instead of
// wasting paper (ecrd render --format png; an API's preview of a spooled job).
func JobPNG(job []byte, prof *profile.Profile) ([]byte, error) {
	img, err := DrawJob(job, prof)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
