// Command mklogo writes testdata/receipts/logo.png: a made-up bakery logo (a pretzel-like ring, a grey
// gradient, a transparent background and the shop's name in Go Mono Bold), made for ecrd's tests
// of --logo. Run from the module root: go run ./receipt/internal/mklogo testdata/receipts/logo.png
package main

import (
	"image"
	"image/color"
	"image/png"
	"math"
	"os"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gomonobold"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

func main() {
	const w, h = 320, 160
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			// a ring with a gradient at the left
			dx, dy := float64(x-70), float64(y-80)
			r := math.Hypot(dx, dy)
			switch {
			case r > 48 && r < 64:
				g := uint8(40 + 150*float64(y)/h)
				img.Set(x, y, color.NRGBA{g / 2, g / 3, 0, 0xFF})
			case r <= 48 && math.Abs(dx-dy*0.4) < 7:
				img.Set(x, y, color.NRGBA{0x30, 0x20, 0x10, 0xFF})
			case y > 120 && y < 130 && x > 140 && x < 310:
				img.Set(x, y, color.NRGBA{uint8(x - 40), uint8(x - 40), uint8(x - 40), 0xFF})
			}
		}
	}
	f, _ := opentype.Parse(gomonobold.TTF)
	face, _ := opentype.NewFace(f, &opentype.FaceOptions{Size: 34, DPI: 72, Hinting: font.HintingFull})
	d := font.Drawer{Dst: img, Src: image.NewUniform(color.NRGBA{0x10, 0x10, 0x10, 0xFF}), Face: face, Dot: fixed.P(145, 75)}
	d.DrawString("Bäckerei")
	d.Dot = fixed.P(145, 110)
	d.DrawString("Müller")
	out, _ := os.Create(os.Args[1])
	png.Encode(out, img)
	out.Close()
}
