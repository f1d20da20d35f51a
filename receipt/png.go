package receipt

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"sync"

	xdraw "golang.org/x/image/draw"
	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/gofont/gomonobold"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/font/sfnt"
	"golang.org/x/image/math/fixed"

	"github.com/ecrd-pos/ecrd/profile"
	"github.com/ecrd-pos/ecrd/receipt/unifont"
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
	tallPitch  = linePitch + cellH
	paperEdge  = 16 // blank paper left and right of the printable area
	defaultDot = 576
)

// paperWhite and ink are the two colours of thermal paper.
var (
	paperWhite = color.Gray{Y: 0xFF}
	ink        = color.Gray{Y: 0x00}
)

// The fonts are parsed once and shared: an *opentype.Font is safe for concurrent use. A
// font.Face is not (it keeps the rasterizer and glyph buffers it draws with), so every
// picture makes its own faces from these (glyphs).
var (
	fontsOnce             sync.Once
	regularFont, boldFont *opentype.Font
	fontsErr              error
	faceAscent            int
)

// loadFonts parses Go Mono and Go Mono Bold, and finds where the baseline sits in a cell.
func loadFonts() error {
	fontsOnce.Do(func() {
		if regularFont, fontsErr = opentype.Parse(gomono.TTF); fontsErr != nil {
			return
		}
		if boldFont, fontsErr = opentype.Parse(gomonobold.TTF); fontsErr != nil {
			return
		}
		face, err := newFace(regularFont)
		if err != nil {
			fontsErr = err
			return
		}
		m := face.Metrics()
		// Centre the glyphs' ascent+descent in the 24-dot cell.
		faceAscent = (cellH-(m.Ascent+m.Descent).Ceil())/2 + m.Ascent.Ceil()
	})
	return fontsErr
}

// newFace is Go Mono at the size whose advance is exactly one cell: Go Mono's advance is
// 0.6 em, so 20 pixels to the em gives 12 dots.
func newFace(f *opentype.Font) (font.Face, error) {
	return opentype.NewFace(f, &opentype.FaceOptions{Size: 20, DPI: 72, Hinting: font.HintingFull})
}

// glyphs draws characters into cells for one picture, with faces of its own. A receipt
// uses few different characters many times, so each is drawn once (from a white cell, so
// the result depends only on the character and the face) and copied from then on.
type glyphs struct {
	regular, bold font.Face
	short, tall   map[glyphKey]*image.Gray // the 12×24 cell; the cell at double height
	// fallback draws what Go Mono has no glyph for (Vietnamese from a TCVN page, box drawing):
	// Unifont, as the pictures are drawn; nil: Go Mono's empty box.
	fallback *unifont.Font
	buf      sfnt.Buffer
}

type glyphKey struct {
	r    rune
	bold bool
}

func newGlyphs(fallback *unifont.Font) (*glyphs, error) {
	if err := loadFonts(); err != nil {
		return nil, err
	}
	regular, err := newFace(regularFont)
	if err != nil {
		return nil, err
	}
	bold, err := newFace(boldFont)
	if err != nil {
		return nil, err
	}
	return &glyphs{regular: regular, bold: bold, fallback: fallback,
		short: make(map[glyphKey]*image.Gray), tall: make(map[glyphKey]*image.Gray)}, nil
}

// cell is c's character drawn in a white cell, at double height if c is tall.
func (g *glyphs) cell(c drawnCell) *image.Gray {
	k := glyphKey{r: c.r, bold: c.bold}
	if c.tall {
		if t, ok := g.tall[k]; ok {
			return t
		}
	} else if s, ok := g.short[k]; ok {
		return s
	}
	s, ok := g.short[k]
	if !ok {
		s = image.NewGray(image.Rect(0, 0, cellW, cellH))
		draw.Draw(s, s.Bounds(), image.NewUniform(paperWhite), image.Point{}, draw.Src)
		if u, ok := g.fromFallback(c.r); ok {
			drawUnifont(s, u, c.bold)
		} else {
			face := g.regular
			if c.bold {
				face = g.bold
			}
			d := font.Drawer{Dst: s, Src: image.NewUniform(ink), Face: face, Dot: fixed.P(0, faceAscent)}
			d.DrawString(string(c.r))
		}
		g.short[k] = s
	}
	if !c.tall {
		return s
	}
	t := image.NewGray(image.Rect(0, 0, cellW, tallPitch-(linePitch-cellH)))
	xdraw.NearestNeighbor.Scale(t, t.Bounds(), s, s.Bounds(), draw.Src, nil)
	g.tall[k] = t
	return t
}

// fromFallback is r's glyph in the fallback font, when Go Mono has none.
func (g *glyphs) fromFallback(r rune) (unifont.Glyph, bool) {
	if g.fallback == nil {
		return unifont.Glyph{}, false
	}
	if i, err := regularFont.GlyphIndex(&g.buf, r); err == nil && i != 0 {
		return unifont.Glyph{}, false
	}
	return g.fallback.Glyph(r)
}

// drawUnifont draws a Unifont glyph into a 12×24 cell as a picture draws it (raster.go).
func drawUnifont(cell *image.Gray, u unifont.Glyph, bold bool) {
	bits := make([]byte, 2*cellH)
	drawGlyph(bits, 2, 0, cellW, u, bold)
	for y := range cellH {
		for x := range cellW {
			if bits[y*2+x/8]&(0x80>>(x%8)) != 0 {
				cell.SetGray(x, y, ink)
			}
		}
	}
}

// drawLine draws ln on dst with its top at y.
func (g *glyphs) drawLine(dst *image.Gray, y int, ln []drawnCell) {
	h := pitch(ln) - (linePitch - cellH)
	for i, c := range ln {
		if c.r == ' ' {
			continue
		}
		cell := g.cell(c)
		// A tall line's short characters stand on its baseline, as on paper.
		at := image.Pt(paperEdge+i*cellW, y+h-cell.Rect.Dy())
		for row := range cell.Rect.Dy() {
			o := dst.PixOffset(at.X, at.Y+row)
			copy(dst.Pix[o:o+cellW], cell.Pix[row*cell.Stride:row*cell.Stride+cellW])
		}
	}
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

// picture is a job's picture that draws itself as it is read, a strip of paper at a time:
// the blank top edge, then one text line (30 or 54 rows), …, then the bottom with the cut.
// It keeps only the strip the last pixel asked for was on, the job's bytes and where it is
// in them, so its memory does not grow with the receipt: a 10,000-line receipt is a picture
// hundreds of thousands of rows tall, which as one image.Gray took gigabytes.
//
// Why an image.Image rather than a PNG encoder of our own: png.Encode writes a picture
// whose ColorModel is color.GrayModel exactly as it writes an *image.Gray (8-bit grey, the
// same filters chosen per row, the same deflate stream and IDAT chunks), asking for the
// pixels row after row from the top, so the PNG is byte for byte the one the whole image
// gives, and stays so whatever the standard library's encoder learns. Its price is one
// method call per pixel instead of a copy per row, about a quarter of the time (deflate and
// png's filters take the rest). A hand-written encoder (compress/zlib, hash/crc32) would
// save that, but must copy png's filter heuristics to give the same bytes, and would drift
// from them silently.
//
// Pixels may be asked for in any order (image.Image promises that), but only rows at or
// below the strip are cheap: a row above it reads the job again from the start.
type picture struct {
	job      []byte
	prof     *profile.Profile
	rect     image.Rectangle
	linesEnd int // the row below the last text line
	end      paperEnd
	g        *glyphs

	strip image.Gray // rows strip.Rect of the picture, as drawn; its Pix is reused
	r     *jobReader // where the next strip's text line comes from
}

// newPicture reads job once, to measure the picture and to find any error in it before
// anything is drawn.
func newPicture(job []byte, prof *profile.Profile) (*picture, error) {
	return newPictureFor(job, Options{Profile: prof})
}

// newPictureFor is newPicture for the printer of opt: its profile, and its glyph font for
// what Go Mono cannot draw (read now if it is not yet; without it, Go Mono's empty box).
func newPictureFor(job []byte, opt Options) (*picture, error) {
	prof := opt.Profile
	var fallback *unifont.Font
	if opt.Glyphs != nil {
		fallback, _ = opt.Glyphs.Font()
	}
	g, err := newGlyphs(fallback)
	if err != nil {
		return nil, err
	}
	r := newJobReader(job, prof)
	height, widest := paperEdge, 0
	for {
		s, ok, err := r.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		height += s.height()
		widest = max(widest, s.width())
	}
	dots := defaultDot
	if prof != nil && prof.WidthDots > 0 {
		dots = prof.WidthDots
	}
	dots = max(dots, widest)
	p := &picture{job: job, prof: prof, linesEnd: height, end: r.end, g: g,
		rect: image.Rect(0, 0, dots+2*paperEdge, height+2*paperEdge)}
	p.strip.Stride = p.rect.Dx()
	p.strip.Pix = make([]byte, p.strip.Stride*max(tallPitch, maxStrip, 2*paperEdge))
	p.rewind()
	return p, nil
}

func (p *picture) ColorModel() color.Model { return color.GrayModel }
func (p *picture) Bounds() image.Rectangle { return p.rect }
func (p *picture) At(x, y int) color.Color { return p.GrayAt(x, y) }

// GrayAt is the grey at (x, y), drawing the strip it is on if it is not drawn yet.
func (p *picture) GrayAt(x, y int) color.Gray {
	if !(image.Point{x, y}.In(p.rect)) {
		return color.Gray{}
	}
	if y >= p.strip.Rect.Max.Y || y < p.strip.Rect.Min.Y {
		p.seek(y)
	}
	return color.Gray{Y: p.strip.Pix[(y-p.strip.Rect.Min.Y)*p.strip.Stride+x]}
}

// rewind goes back to the top of the paper, before the first strip.
func (p *picture) rewind() {
	p.r = newJobReader(p.job, p.prof)
	p.strip.Rect = image.Rect(0, 0, p.rect.Dx(), 0)
}

// seek draws strips until the one row y is on.
func (p *picture) seek(y int) {
	if y < p.strip.Rect.Min.Y {
		p.rewind()
	}
	for y >= p.strip.Rect.Max.Y {
		p.nextStrip()
	}
}

// nextStrip draws the strip under the current one.
func (p *picture) nextStrip() {
	top := p.strip.Rect.Max.Y
	h := p.rect.Max.Y - top // the bottom edge, with the cut
	var s paperStrip
	switch {
	case top < paperEdge:
		h = paperEdge - top
	case top < p.linesEnd:
		// newPicture read the same bytes without an error, so none comes now.
		s, _, _ = p.r.next()
		h = s.height()
	}
	p.strip.Rect = image.Rect(0, top, p.rect.Dx(), top+h)
	pix := p.strip.Pix[:h*p.strip.Stride]
	for i := range pix {
		pix[i] = paperWhite.Y
	}
	switch {
	case s.pic != nil:
		drawPicture(&p.strip, top, s)
	case len(s.cells) > 0:
		p.g.drawLine(&p.strip, top, s.cells)
	case top == p.linesEnd:
		drawEnd(&p.strip, top+paperEdge/2, p.end)
	}
}

// drawPicture draws a strip of a GS v 0 picture with its top at y, at the paper's left edge,
// every dot sx dots wide and sy tall.
func drawPicture(dst *image.Gray, y int, s paperStrip) {
	p := s.pic
	for row := s.rows[0]; row < s.rows[1]; row++ {
		bits := p.bits[row*p.stride : (row+1)*p.stride]
		for dy := range p.sy {
			o := dst.PixOffset(paperEdge, y+(row-s.rows[0])*p.sy+dy)
			for x := range p.stride * 8 {
				if bits[x/8]&(0x80>>(x%8)) == 0 {
					continue
				}
				for dx := range p.sx {
					dst.Pix[o+x*p.sx+dx] = ink.Y
				}
			}
		}
	}
}

// DrawJob draws an ESC/POS job (from Render, perhaps with a DrawerKick) as the printer with
// profile prof (nil: generic, 80 mm) will print it, as one image in memory: as much as the
// picture has pixels. A preview of a receipt of any length writes it with WriteJobPNG.
func DrawJob(job []byte, prof *profile.Profile) (*image.Gray, error) {
	return DrawJobFor(job, Options{Profile: prof})
}

// DrawJobFor is DrawJob for the printer of opt, the options the job was rendered with: its
// profile, and its glyph font (Options.Glyphs), from which a character Go Mono has no glyph for
// is drawn (Vietnamese from a TCVN page) as the printer's pictures are.
func DrawJobFor(job []byte, opt Options) (*image.Gray, error) {
	p, err := newPictureFor(job, opt)
	if err != nil {
		return nil, err
	}
	img := image.NewGray(p.rect)
	for p.strip.Rect.Max.Y < p.rect.Max.Y {
		p.nextStrip()
		copy(img.Pix[img.PixOffset(0, p.strip.Rect.Min.Y):], p.strip.Pix[:p.strip.Rect.Dy()*p.strip.Stride])
	}
	return img, nil
}

// pitch is a line's height on paper: twice the cell for double height.
func pitch(ln []drawnCell) int {
	for _, c := range ln {
		if c.tall {
			return tallPitch
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

// WriteJobPNG writes DrawJob's picture of job to w as PNG, drawing it a strip at a time as
// the encoder asks for its rows (picture), so its memory stays the same whatever the
// receipt's length: the job, one strip and the encoder's buffers. An error in the job is
// found before anything is written; an error after that is w's.
func WriteJobPNG(w io.Writer, job []byte, prof *profile.Profile) error {
	return WriteJobPNGFor(w, job, Options{Profile: prof})
}

// WriteJobPNGFor is WriteJobPNG for the printer of opt (DrawJobFor).
func WriteJobPNGFor(w io.Writer, job []byte, opt Options) error {
	p, err := newPictureFor(job, opt)
	if err != nil {
		return err
	}
	return png.Encode(w, p)
}

// JobPNG is WriteJobPNG into memory: the picture a technician or the POS looks at instead
// of wasting paper (ecrd render --format png).
func JobPNG(job []byte, prof *profile.Profile) ([]byte, error) {
	return JobPNGFor(job, Options{Profile: prof})
}

// JobPNGFor is JobPNG for the printer of opt (DrawJobFor).
func JobPNGFor(job []byte, opt Options) ([]byte, error) {
	var buf bytes.Buffer
	if err := WriteJobPNGFor(&buf, job, opt); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
