package receipt

import (
	"bytes"
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
