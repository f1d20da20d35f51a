package receipt

import (
	"errors"
	"fmt"
	"image"
	"image/color"

	xdraw "golang.org/x/image/draw"
)

// Logo is the merchant's picture, one bit a dot, made once (NewLogo) for a printer's width and
// printed centred at the top of every receipt with GS v 0, on a model that prints raster
// images (elsewhere it is left out).
type Logo struct {
	bits           []byte // rows of stride bytes, the leftmost dot in the highest bit
	stride, height int
	width          int // dots wide, its left margin included
}

const (
	// maxLogoHeight bounds a logo's height in dots (about 6 cm at 203 dpi): a taller picture
	// is scaled down to it, as a wider one is to the paper.
	maxLogoHeight = 480
	// logoBand is the most rows one GS v 0 carries: a printer with a small buffer takes a
	// tall picture in bands.
	logoBand = 256
	// logoGap is the dots fed under the logo (ESC J), so that the first line does not touch it.
	logoGap = 12
	// PreviewLogo is the text preview's line where the logo prints.
	PreviewLogo = "[logo]"
)

// NewLogo makes a logo of img for paper dots wide: scaled down (never up) to fit the width and
// maxLogoHeight, keeping its proportions, drawn over white where it is transparent, dithered to
// black and white (Floyd–Steinberg), and centred.
func NewLogo(img image.Image, dots int) (*Logo, error) {
	b := img.Bounds()
	switch {
	case b.Empty():
		return nil, errors.New("receipt: the logo is an empty picture")
	case dots < 8 || dots > maxPictureDots:
		return nil, fmt.Errorf("receipt: a paper %d dots wide cannot take a logo", dots)
	}
	w, h := b.Dx(), b.Dy()
	if w > dots {
		w, h = dots, max(1, h*dots/w)
	}
	if h > maxLogoHeight {
		w, h = max(1, w*maxLogoHeight/h), maxLogoHeight
	}
	// Over white: a transparent logo prints as its opaque parts.
	white := image.NewGray(image.Rect(0, 0, w, h))
	for i := range white.Pix {
		white.Pix[i] = 0xFF
	}
	xdraw.CatmullRom.Scale(white, white.Bounds(), img, b, xdraw.Over, nil)
	lg := &Logo{height: h, width: (dots-w)/2 + w}
	lg.stride = (lg.width + 7) / 8
	lg.bits = make([]byte, lg.stride*h)
	dither(white, lg, (dots-w)/2)
	return lg, nil
}

// dither sets lg's dots from the grey picture g, left dots from lg's left edge, spreading each
// dot's error to its neighbours (Floyd–Steinberg) so that greys print as patterns of dots.
func dither(g *image.Gray, lg *Logo, left int) {
	w, h := g.Rect.Dx(), g.Rect.Dy()
	cur, next := make([]int, w+2), make([]int, w+2) // the error carried into this row and the next
	for y := range h {
		for x := range w {
			v := int(g.Pix[y*g.Stride+x]) + cur[x+1]/16
			out := 255
			if v < 128 {
				out = 0
				dx := left + x
				lg.bits[y*lg.stride+dx/8] |= 0x80 >> (dx % 8)
			}
			e := v - out
			cur[x+2] += 7 * e
			next[x] += 3 * e
			next[x+1] += 5 * e
			next[x+2] += e
		}
		cur, next = next, cur
		clear(next)
	}
}

// Size is the logo's width (its left margin included) and height in dots.
func (lg *Logo) Size() (w, h int) { return lg.width, lg.height }

// appendTo appends the logo's commands to dst: GS v 0 in bands of at most logoBand rows, then
// ESC J logoGap.
func (lg *Logo) appendTo(dst []byte) []byte {
	for y := 0; y < lg.height; y += logoBand {
		rows := min(logoBand, lg.height-y)
		dst = append(dst, 0x1D, 'v', '0', 0, byte(lg.stride), byte(lg.stride>>8), byte(rows), byte(rows>>8))
		dst = append(dst, lg.bits[y*lg.stride:(y+rows)*lg.stride]...)
	}
	return append(dst, 0x1B, 'J', logoGap)
}

// At is the logo's dot at (x, y): black or white, for tests and previews of it alone.
func (lg *Logo) At(x, y int) color.Gray {
	if x < 0 || y < 0 || x >= lg.width || y >= lg.height || lg.bits[y*lg.stride+x/8]&(0x80>>(x%8)) == 0 {
		return paperWhite
	}
	return ink
}
