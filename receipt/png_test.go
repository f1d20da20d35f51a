package receipt

import (
	"bytes"
	"errors"
	"image"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecrd-pos/ecrd/profile"
)

// TestGoldenPNG draws the seed and the international receipt for each golden profile (and the
// seed for the generic 80 mm printer) and compares the pictures pixel by pixel with
// NAME.MODEL.png (-update rewrites them; look at them).
func TestGoldenPNG(t *testing.T) {
	type tc struct{ name, model string }
	cases := []tc{{"seed", "generic"}}
	for _, m := range goldenProfiles {
		cases = append(cases, tc{"seed", m}, tc{"intl", m})
	}
	for _, c := range cases {
		t.Run(c.name+"."+c.model, func(t *testing.T) {
			prof, err := profile.Lookup(c.model)
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(filepath.Join(goldenDir, c.name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			lines, err := Decode(data)
			if err != nil {
				t.Fatal(err)
			}
			job, err := Render(lines, Options{Profile: prof})
			if err != nil {
				t.Fatal(err)
			}
			got, err := DrawJob(job, prof)
			if err != nil {
				t.Fatal(err)
			}
			if prof.WidthDots > 0 && got.Bounds().Dx() != prof.WidthDots+2*paperEdge {
				t.Errorf("picture is %d dots wide, want the profile's %d plus the paper edges", got.Bounds().Dx(), prof.WidthDots)
			}
			path := filepath.Join(goldenDir, c.name+"."+c.model+".png")
			if *update {
				var buf bytes.Buffer
				if err := png.Encode(&buf, got); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			f, err := os.Open(path)
			if errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%s is missing; run go test ./receipt -update", path)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			want, err := png.Decode(f)
			if err != nil {
				t.Fatal(err)
			}
			if n, at := pixelDiff(got, want); n > 0 {
				t.Errorf("%s: %d pixels differ (first at %v; sizes %v and %v); run go test ./receipt -update and look at it",
					path, n, at, got.Bounds(), want.Bounds())
			}
			// The preview's PNG, drawn a strip at a time, is the golden file byte for byte.
			golden, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var streamed bytes.Buffer
			if err := WriteJobPNG(&streamed, job, prof); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(streamed.Bytes(), golden) {
				t.Errorf("%s: WriteJobPNG wrote %d bytes that are not the golden file's %d", path, streamed.Len(), len(golden))
			}
		})
	}
}

// pixelDiff counts the pixels whose grey level differs, and where the first one is.
func pixelDiff(a *image.Gray, b image.Image) (int, image.Point) {
	if a.Bounds() != b.Bounds() {
		return a.Bounds().Dx() * a.Bounds().Dy(), a.Bounds().Min
	}
	n, first := 0, image.Point{}
	for y := a.Bounds().Min.Y; y < a.Bounds().Max.Y; y++ {
		for x := a.Bounds().Min.X; x < a.Bounds().Max.X; x++ {
			r1, _, _, _ := a.At(x, y).RGBA()
			r2, _, _, _ := b.At(x, y).RGBA()
			if r1 != r2 {
				if n == 0 {
					first = image.Pt(x, y)
				}
				n++
			}
		}
	}
	return n, first
}

// TestDrawJobReadsWhatRenderWrites: bold and double height change the picture, the drawer
// kick draws nothing, and a command the drawer does not know is an error, not a guess.
func TestDrawJobReadsWhatRenderWrites(t *testing.T) {
	plain, err := Render([]Line{text("Summe 7,96 €")}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	bold, err := Render([]Line{text("Summe 7,96 €", "important")}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := DrawJob(plain, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := DrawJob(bold, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := pixelDiff(a, b); n == 0 {
		t.Error("bold text draws the same as plain")
	}
	kicked, err := DrawJob(append(append([]byte{}, plain...), DrawerKick(0)...), nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := pixelDiff(a, kicked); n != 0 {
		t.Errorf("the drawer kick changed %d pixels", n)
	}
	lines, end, err := readJob(plain, nil)
	if err != nil || end != endPartial || len(lines) != 2 || string(runesOf(lines[0].cells)) != "Summe 7,96 €" {
		t.Fatalf("readJob = %v, %v, %v", lines, end, err)
	}
	for _, bad := range [][]byte{{0x1B, 'X', 1}, {0x1D, '(', 'k'}, {0x1B, 't'}} {
		if _, err := DrawJob(bad, nil); err == nil || !strings.Contains(err.Error(), "receipt:") {
			t.Errorf("DrawJob(% x) = %v, want an error", bad, err)
		}
	}
}

func runesOf(cells []drawnCell) []rune {
	var rs []rune
	for _, c := range cells {
		rs = append(rs, c.r)
	}
	return rs
}

// TestDrawJobDrawsPictures: a GS v 0 picture is drawn dot for dot where the printer prints
// it — at the paper's left edge, in its line's place — its double-height rows twice, and the
// lines after it stand a line pitch below, as after text.
func TestDrawJobDrawsPictures(t *testing.T) {
	opt := rasterOptions(t, "TM-T20III")
	job, err := Render([]Line{text("A収 bold", "important"), {Type: "separator", Value: Value{Caption: "収"}}, text("x")}, opt)
	if err != nil {
		t.Fatal(err)
	}
	img, err := DrawJob(job, opt.Profile)
	if err != nil {
		t.Fatal(err)
	}
	y := paperEdge
	rest := job
	for n, sy := range []int{1, 2} {
		i := bytes.Index(rest, []byte("\x1dv0"))
		if i < 0 || int(rest[i+3]) != 2*(sy-1) {
			t.Fatalf("picture %d: not found, or not m %d", n, 2*(sy-1))
		}
		stride, rows := int(rest[i+4]), int(rest[i+6])
		bits := rest[i+8 : i+8+stride*rows]
		if sy == 2 {
			y += linePitch // the headline's air above it
		}
		for r := range rows * sy {
			for x := range stride * 8 {
				on := bits[(r/sy)*stride+x/8]&(0x80>>(x%8)) != 0
				if got := img.GrayAt(paperEdge+x, y+r).Y == ink.Y; got != on {
					t.Fatalf("picture %d dot (%d, %d): inked %v, want %v", n, x, r, got, on)
				}
			}
		}
		// ESC J 6: blank paper to the end of the line pitch.
		for r := rows * sy; r < rows*sy+rasterGap; r++ {
			for x := range img.Bounds().Dx() {
				if img.GrayAt(x, y+r).Y != paperWhite.Y {
					t.Fatalf("picture %d: ink in the gap under it at (%d, %d)", n, x, y+r)
				}
			}
		}
		y += rows*sy + rasterGap
		rest = rest[i+8+stride*rows:]
	}
	// The rule under the headline, then "x", a text line at its place.
	strips, _, err := readJob(job, opt.Profile)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, s := range strips {
		if s.pic == nil && s.feed == 0 {
			texts = append(texts, string(runesOf(s.cells)))
		}
	}
	if strings.Join(texts, "|") != "|"+strings.Repeat("-", 48)+"|x|" {
		t.Errorf("text strips %q", texts)
	}
}

// TestPreviewWidthIsThePrinters: a picture is as wide as the printer's printable dots — 384
// for a 58 mm roll, 576 or 512 as the model says — plus the paper's edges.
func TestPreviewWidthIsThePrinters(t *testing.T) {
	for _, c := range []struct {
		prof *profile.Profile
		dots int
	}{
		{profile.Generic.OnPaper("58mm"), 384},
		{profile.Generic.OnPaper("80mm"), 576},
		{nil, 576},
		{mustProfile(t, "POS-5890"), 384},
		{mustProfile(t, "TM-T88V"), 512},
		{mustProfile(t, "TM-T20III"), 576},
	} {
		job, err := Render([]Line{text("x")}, Options{Profile: c.prof})
		if err != nil {
			t.Fatal(err)
		}
		img, err := DrawJob(job, c.prof)
		if err != nil {
			t.Fatal(err)
		}
		if w := img.Bounds().Dx(); w != c.dots+2*paperEdge {
			t.Errorf("%v: %d wide, want %d dots and the edges", c.prof, w, c.dots)
		}
	}
}

func mustProfile(t *testing.T, key string) *profile.Profile {
	t.Helper()
	p, err := profile.Lookup(key)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTallPictureIsDrawnInStrips: a picture taller than a strip (a job Render does not make) is
// drawn a strip at a time, the same as drawn whole, and a bad picture is an error.
func TestTallPictureIsDrawnInStrips(t *testing.T) {
	const stride, rows = 4, 200
	bits := make([]byte, stride*rows)
	for i := range bits {
		bits[i] = byte(i * 37)
	}
	job := append([]byte{0x1D, 'v', '0', 3, stride, 0, rows, 0}, bits...)
	job = append(job, "\x1bJ\xff\x1bJ\x10x\n"...)
	img, err := DrawJob(job, nil)
	if err != nil {
		t.Fatal(err)
	}
	for y := range rows * 2 {
		for x := range stride * 16 {
			on := bits[(y/2)*stride+x/16]&(0x80>>((x/2)%8)) != 0
			if got := img.GrayAt(paperEdge+x, paperEdge+y).Y == ink.Y; got != on {
				t.Fatalf("dot (%d, %d): %v, want %v", x, y, got, on)
			}
		}
	}
	if h := img.Bounds().Dy(); h != paperEdge+2*rows+255+16+linePitch+2*paperEdge {
		t.Errorf("height %d", h)
	}
	for _, bad := range [][]byte{
		[]byte("\x1dv0\x00\x04\x00\x02\x00\x00"),                           // truncated dots
		[]byte("x\x1dv0\x00\x01\x00\x01\x00\x00\n"),                        // beside text
		[]byte("\x1dv0\x00\x00\x00\x01\x00"),                               // empty
		[]byte("\x1dv0\x07\x01\x00\x01\x00\x00"),                           // no such mode
		append([]byte("\x1dv0\x00\x00\x02\x01\x00"), make([]byte, 512)...), // wider than any line
		[]byte("x\x1bJ\x06"),                                               // ESC J after text
	} {
		if _, err := DrawJob(bad, nil); err == nil || !strings.Contains(err.Error(), "receipt:") {
			t.Errorf("DrawJob(%q) = %v, want an error", bad, err)
		}
	}
}

// TestPreviewDrawsWhatGoMonoLacks: Vietnamese printed from a TCVN page is drawn from the glyph
// font where Go Mono has no glyph, never as Go Mono's empty box; without a font, as before.
func TestPreviewDrawsWhatGoMonoLacks(t *testing.T) {
	opt := rasterOptions(t, "TM-T20III")
	job, err := Render([]Line{text("Nguyễn")}, opt)
	if err != nil || bytes.Contains(job, []byte("\x1dv0")) {
		t.Fatalf("ễ is on a TCVN page of the TM-T20III: %q %v", job, err)
	}
	with, err := DrawJobFor(job, opt)
	if err != nil {
		t.Fatal(err)
	}
	without, err := DrawJob(job, opt.Profile)
	if err != nil {
		t.Fatal(err)
	}
	// Only the cell of ễ differs.
	n, at := pixelDiff(with, without)
	if n == 0 || at.X < paperEdge+4*cellW || at.X >= paperEdge+5*cellW {
		t.Errorf("%d pixels differ, first at %v: want ễ's cell, the fifth", n, at)
	}
	font, _ := testGlyphs.Font()
	g, _ := font.Glyph('ễ')
	want := image.NewGray(image.Rect(0, 0, cellW, cellH))
	draw.Draw(want, want.Bounds(), image.NewUniform(paperWhite), image.Point{}, draw.Src)
	drawUnifont(want, g, false)
	for y := range cellH {
		for x := range cellW {
			if want.GrayAt(x, y).Y == ink.Y != (with.GrayAt(paperEdge+4*cellW+x, paperEdge+y).Y == ink.Y) {
				t.Fatalf("ễ's cell at (%d, %d) is not Unifont's glyph", x, y)
			}
		}
	}
}
