package receipt

import (
	"bytes"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testLogo is a picture with a bit of everything a shop's logo has: a black frame, a grey
// band that must dither to a pattern, a transparent corner that must print white.
func testLogo(w, h int) image.Image {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.NRGBA{0xFF, 0xFF, 0xFF, 0xFF}
			switch {
			case x < 4 || y < 4 || x >= w-4 || y >= h-4:
				c = color.NRGBA{0, 0, 0, 0xFF}
			case y > h/3 && y < 2*h/3:
				c = color.NRGBA{0x80, 0x80, 0x80, 0xFF}
			case x < w/4 && y < h/4:
				c = color.NRGBA{0, 0, 0, 0} // transparent: paper
			}
			img.Set(x, y, c)
		}
	}
	return img
}

// TestNewLogo: scaled down to the paper, never up; centred; grey dithered to about half its
// dots; transparent as white; bounded in height.
func TestNewLogo(t *testing.T) {
	small, err := NewLogo(testLogo(100, 60), 384)
	if err != nil {
		t.Fatal(err)
	}
	if w, h := small.Size(); w != (384-100)/2+100 || h != 60 {
		t.Errorf("small logo %d×%d, want 100×60 centred on 384 dots", w, h)
	}
	left := (384 - 100) / 2
	if small.At(left, 0) != ink || small.At(left-1, 0) != paperWhite || small.At(left+99, 59) != ink {
		t.Error("the frame is not where the centred logo is")
	}
	if small.At(left+10, 10) != paperWhite {
		t.Error("a transparent corner printed black")
	}
	grey := 0
	for x := left + 10; x < left+90; x++ {
		if small.At(x, 30) == ink {
			grey++
		}
	}
	if grey < 25 || grey > 55 {
		t.Errorf("a 50%% grey row has %d of 80 dots black", grey)
	}
	wide, err := NewLogo(testLogo(1000, 200), 576)
	if err != nil {
		t.Fatal(err)
	}
	if w, h := wide.Size(); w != 576 || h != 115 {
		t.Errorf("wide logo %d×%d, want 576×115", w, h)
	}
	tall, err := NewLogo(testLogo(100, 2000), 576)
	if err != nil {
		t.Fatal(err)
	}
	if _, h := tall.Size(); h != maxLogoHeight {
		t.Errorf("tall logo %d rows, want %d", h, maxLogoHeight)
	}
	if _, err := NewLogo(image.NewGray(image.Rect(0, 0, 0, 0)), 384); err == nil {
		t.Error("an empty picture made a logo")
	}
	if _, err := NewLogo(testLogo(10, 10), 4); err == nil {
		t.Error("a paper 4 dots wide took a logo")
	}
}

// TestLogoHeaderFooter: the logo prints first (GS v 0 in bands, then a feed), the header lines
// after it and the footer lines last, centred, through the same code pages and pictures; the
// preview shows them in their places; a model without pictures leaves the logo out.
func TestLogoHeaderFooter(t *testing.T) {
	opt := rasterOptions(t, "TM-T20III")
	logo, err := NewLogo(testLogo(200, 300), opt.Profile.WidthDots)
	if err != nil {
		t.Fatal(err)
	}
	opt.Logo = logo
	opt.Header = []string{"Bäckerei Łukasz", "Hauptstraße 1 · 收据"}
	opt.Footer = []string{"Danke · Ευχαριστούμε"}
	job, preview, err := checkJob([]Line{text("Summe 7,96 €")}, opt)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		strings.Repeat(" ", 21) + PreviewLogo,
		strings.Repeat(" ", 16) + "Bäckerei Łukasz",
		strings.Repeat(" ", 14) + "Hauptstraße 1 · 收据", // 20 columns: 收据 takes four
		"Summe 7,96 €",
		strings.Repeat(" ", 14) + "Danke · Ευχαριστούμε",
	}
	got := strings.Split(strings.TrimSuffix(preview, "\n\n--- cut ---\n"), "\n")
	equalLines(t, got, want)
	// Two bands (256 + 44 rows) of 388 dots (49 bytes: 188 of margin, 200 of logo) right after
	// the code page, then ESC J 12.
	head := len("\x1b@\x1bR\x00\x1bt\x13")
	if !bytes.HasPrefix(job[head:], []byte{0x1D, 'v', '0', 0, 49, 0, 0, 1}) {
		t.Errorf("the logo's first band: % x", job[head:head+8])
	}
	second := head + 8 + 49*256
	if !bytes.HasPrefix(job[second:], []byte{0x1D, 'v', '0', 0, 49, 0, 44, 0}) {
		t.Errorf("the logo's second band: % x", job[second:second+8])
	}
	if end := second + 8 + 49*44; !bytes.HasPrefix(job[end:], []byte{0x1B, 'J', logoGap}) {
		t.Errorf("after the logo: % x", job[end:end+3])
	}
	// The picture: the logo's dots, centred, where the paper starts.
	img, err := DrawJobFor(job, opt)
	if err != nil {
		t.Fatal(err)
	}
	for y := range 300 {
		for x := range logo.width {
			if img.GrayAt(paperEdge+x, paperEdge+y) != logo.At(x, y) {
				t.Fatalf("logo dot (%d, %d) drawn %v, want %v", x, y, img.GrayAt(paperEdge+x, paperEdge+y), logo.At(x, y))
			}
		}
	}
	// The TH230 prints no pictures: no logo, the lines all the same.
	th := opt
	th.Profile = mustProfile(t, "TH230")
	job, preview, err = checkJob([]Line{text("Summe 7,96 €")}, th)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(job, []byte("\x1dv0")) || strings.Contains(preview, PreviewLogo) || !strings.Contains(preview, "Bäckerei Łukasz") {
		t.Errorf("TH230: %q", preview)
	}
}

// TestLogoPNG: a real PNG file, as --logo reads it, makes a logo.
func TestLogoPNG(t *testing.T) {
	f, err := os.Open(filepath.Join(goldenDir, "logo.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	lg, err := NewLogo(img, 384)
	if err != nil {
		t.Fatal(err)
	}
	if w, h := lg.Size(); w > 384 || h == 0 || h > maxLogoHeight {
		t.Errorf("logo %d×%d", w, h)
	}
}
