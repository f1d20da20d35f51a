package receipt

import (
	"bytes"
	"errors"
	"image"
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
	if err != nil || end != endPartial || len(lines) != 2 || string(runesOf(lines[0])) != "Summe 7,96 €" {
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
