package receipt

import (
	"slices"

	"github.com/ecrd-pos/ecrd/receipt/unifont"
)

// A paper line with a character no code page has prints as a picture. GS v 0 (print raster
// bit image) is carried out only at the start of a line, never beside text in the line buffer,
// so the whole line is drawn: every character in font A's 12×24-dot cell, from the glyph font
// (GNU Unifont's 8×16 and 16×16 glyphs at one and a half times their size: 12×24 and 24×24,
// one and two columns), so the line keeps its columns under and above text lines. Bold is
// every dot doubled to its right, as ESC E does; double height is GS v 0's own double-height
// mode. The picture is as wide as the line's text (its trailing spaces are not drawn) and as
// tall as the cell; ESC J then feeds the rest of the line pitch (30 dots, 54 at double height),
// so the lines after it stand where they would after text.
const (
	rasterRows = cellH             // rows of one picture, before GS v 0's double height
	rasterGap  = linePitch - cellH // ESC J n after it: the line pitch's blank rows
)

// maxPictureLines bounds the lines of one receipt printed as pictures. A picture of a line is
// about 1.7 KiB at 48 columns (576 dots × 24 rows), where its text is 48 bytes: without a bound,
// the 4 MB receipt the API accepts, all CJK, would be a job of a hundred megabytes. Past it, a
// character no page has prints as '?' (and counts as missing).
const maxPictureLines = 256

// unpicture prints the drawn characters of line as '?', one for each column they take.
func (e *encoder) unpicture(line []cell) {
	for i, c := range line {
		if c < 0x80 || !e.isPicture(c) {
			continue
		}
		if c != cellWide {
			ent := e.palette[c-0x80]
			if !ent.box {
				e.stats.pictured--
				e.stats.missing++
			}
			if !slices.Contains(e.capped, ent.r) {
				e.capped = append(e.capped, ent.r)
			}
		}
		line[i] = '?'
	}
}

// hasPicture reports whether the line (cells, LF included) has a drawn character.
func (l *layout) hasPicture(line []cell) bool {
	for _, c := range line {
		if c >= 0x80 && l.enc.isPicture(c) {
			return true
		}
	}
	return false
}

// raster appends the picture of line (its cells, without the LF) to dst: GS v 0, the image,
// and ESC J with the rest of the line pitch.
func (l *layout) raster(dst []byte, line []cell, st style) []byte {
	dots := len(line) * cellW
	stride := (dots + 7) / 8
	m, gap := byte(0), byte(rasterGap)
	if st&styleTall != 0 {
		m = 2 // double height: every row printed twice
	}
	dst = append(dst, 0x1D, 'v', '0', m, byte(stride), byte(stride>>8), rasterRows, 0)
	img := len(dst)
	dst = append(dst, make([]byte, stride*rasterRows)...)
	bits := dst[img:]
	font, _ := l.enc.pictures.Font() // read already: the line has a picture of it
	for i, c := range line {
		if c == ' ' || c == cellWide {
			continue
		}
		r, box, w := rune(c), false, cellW
		if c >= 0x80 {
			ent := &l.enc.palette[c-0x80]
			r, box = ent.r, ent.box
			if ent.wide {
				w = 2 * cellW
			}
		}
		g, ok := unifont.Glyph{}, false
		if !box && font != nil {
			g, ok = font.Glyph(r)
		}
		bold := st&styleBold != 0
		if ok {
			drawGlyph(bits, stride, i*cellW, w, g, bold)
		} else {
			drawBox(bits, stride, i*cellW, bold)
		}
	}
	return append(dst, 0x1B, 'J', gap)
}

// drawGlyph draws g w dots wide (its columns' width) with its left edge at dot x, scaled by
// nearest neighbour from 16 rows to the cell's 24 and from 8 or 16 dots to w: one and a half
// times its size when w is its columns' width. A glyph squeezed into fewer dots (a wide glyph
// in one column: 日 on a page) keeps every stroke: a dot is inked if any of the glyph's
// columns it covers is. Bold doubles every dot to its right, within the character's cells, as
// the printer's emphasis does.
func drawGlyph(bits []byte, stride, x, w int, g unifont.Glyph, bold bool) {
	gw := g.Width()
	for y := range rasterRows {
		sy := y * unifont.Height / cellH
		row := bits[y*stride:]
		for dx := range w {
			if anyDot(g, dx*gw/w, max(dx*gw/w+1, (dx+1)*gw/w), sy) {
				setDot(row, x+dx)
				if bold && dx+1 < w {
					setDot(row, x+dx+1)
				}
			}
		}
	}
}

// anyDot reports whether g has a dot in row y between columns from and to (not included).
func anyDot(g unifont.Glyph, from, to, y int) bool {
	for sx := from; sx < to; sx++ {
		if g.Dot(sx, y) {
			return true
		}
	}
	return false
}

// drawBox draws the box a character no font has prints as: one column, the outline of a
// rectangle inside the cell (its sides two dots thick when bold).
func drawBox(bits []byte, stride, x int, bold bool) {
	const left, right, top, bottom = 2, cellW - 3, 4, cellH - 5
	for y := top; y <= bottom; y++ {
		row := bits[y*stride:]
		if y == top || y == bottom {
			for dx := left; dx <= right; dx++ {
				setDot(row, x+dx)
			}
			continue
		}
		setDot(row, x+left)
		setDot(row, x+right)
		if bold {
			setDot(row, x+left+1)
			setDot(row, x+right+1)
		}
	}
}

func setDot(row []byte, x int) { row[x/8] |= 0x80 >> (x % 8) }
