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
	decode := func(slot byte) *codePage {
		for _, cp := range prof.CodePages {
			if cp.Slot == slot {
				if p, ok := lookupCodePage(cp.Name); ok {
					return p
				}
			}
		}
		return nil
	}
	page := decode(0)
	var cur []drawnCell
	bold, tall := false, false
	arg := func(i, n int) ([]byte, error) {
		if i+n > len(job) {
			return nil, fmt.Errorf("receipt: job truncated in the command at byte %d", i)
		}
		return job[i : i+n], nil
	}
	for i := 0; i < len(job); {
		b := job[i]
		switch {
		case b == '\n':
			lines = append(lines, cur)
			cur = nil
			i++
		case b == 0x1B || b == 0x1D || b == 0x10:
			c, err := arg(i, 2)
			if err != nil {
				return nil, 0, err
			}
			n := 3 // most commands: prefix, letter, one parameter
			switch string(c) {
			case "\x1b@":
				page, bold, tall, n = decode(0), false, false, 2
			case "\x1bR", "\x1ba", "\x1bM", "\x1dr":
			case "\x10\x04":
			case "\x1bt":
				p, err := arg(i, 3)
				if err != nil {
					return nil, 0, err
				}
				page = decode(p[2])
			case "\x1bE":
				p, err := arg(i, 3)
				if err != nil {
					return nil, 0, err
				}
				bold = p[2]&1 != 0
			case "\x1d!":
				p, err := arg(i, 3)
				if err != nil {
					return nil, 0, err
				}
				tall = p[2]&0x0F != 0
			case "\x1bd":
				p, err := arg(i, 3)
				if err != nil {
					return nil, 0, err
				}
				for range p[2] {
					lines = append(lines, nil)
				}
				end = endTear
			case "\x1bp":
				n = 5 // the drawer kick: nothing on paper
			case "\x1dV":
				p, err := arg(i, 3)
				if err != nil {
					return nil, 0, err
				}
				switch p[2] {
				case 65, 66:
					n = 4
				}
				if p[2] == 0 || p[2] == 48 || p[2] == 65 {
					end = endFull
				} else {
					end = endPartial
				}
			default:
				return nil, 0, fmt.Errorf("receipt: cannot draw command % x at byte %d", c, i)
			}
			if _, err := arg(i, n); err != nil {
				return nil, 0, err
			}
			i += n
		case b < 0x20 || b == 0x7F:
			i++ // control bytes print nothing
		default:
			r := rune(b)
			if b >= 0x80 {
				r = '?'
				if page != nil {
					r = page.decode[b]
				}
			}
			cur = append(cur, drawnCell{r: r, bold: bold, tall: tall})
			i++
		}
	}
	if len(cur) > 0 {
		lines = append(lines, cur)
	}
	return lines, end, nil
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
