package receipt

import (
	"bytes"
	"errors"
	"flag"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecrd-pos/ecrd/profile"
)

var update = flag.Bool("update", false, "rewrite the golden files in ../testdata/receipts")

const goldenDir = "../testdata/receipts"

// TestGolden renders every receipt in testdata/receipts at both paper widths
// and compares the job bytes and the preview with the files beside it.
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join(goldenDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) == 0 {
		t.Fatalf("no golden inputs in %s", goldenDir)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".json")
		data, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		for _, paper := range []string{"80mm", "58mm"} {
			t.Run(name+"."+paper, func(t *testing.T) {
				lines, err := Decode(data)
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				cols, err := PaperColumns(paper)
				if err != nil {
					t.Fatal(err)
				}
				job, preview, err := checkJob(lines, Options{Columns: cols})
				if err != nil {
					t.Fatal(err)
				}
				compareGolden(t, filepath.Join(goldenDir, name+"."+paper+".bin"), job)
				compareGolden(t, filepath.Join(goldenDir, name+"."+paper+".txt"), []byte(preview))
			})
		}
	}
}

// goldenProfiles are the printer models whose bytes are pinned by golden files: a Star in
// ESC/POS emulation (CP858 at slot 4), a Wincor Nixdorf TH230 (44 columns, CP858 at slot 6), a
// 58 mm no-name without a cutter, and two Epsons (TM-T88V: 42 columns on 80 mm; TM-T20III: 48).
var goldenProfiles = []string{"TSP600", "TH230", "POS-5890", "TM-T88V", "TM-T20III"}

// TestGoldenProfiles renders the seed and the international receipt with each golden
// profile's defaults (its columns, its code pages with per-run switching, its cut) into
// NAME.MODEL.bin and .txt.
func TestGoldenProfiles(t *testing.T) {
	for _, model := range goldenProfiles {
		prof, err := profile.Lookup(model)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"seed", "intl"} {
			t.Run(name+"."+model, func(t *testing.T) {
				data, err := os.ReadFile(filepath.Join(goldenDir, name+".json"))
				if err != nil {
					t.Fatal(err)
				}
				lines, err := Decode(data)
				if err != nil {
					t.Fatal(err)
				}
				job, preview, err := checkJob(lines, Options{Profile: prof})
				if err != nil {
					t.Fatal(err)
				}
				compareGolden(t, filepath.Join(goldenDir, name+"."+model+".bin"), job)
				compareGolden(t, filepath.Join(goldenDir, name+"."+model+".txt"), []byte(preview))
			})
		}
	}
}

func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s is missing; run go test ./receipt -update", path)
	}
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test ./receipt -update and review the diff)\ngot:\n%q\nwant:\n%q", path, got, want)
	}
}

// merchantOptions are a shop's own logo, header and footer lines (testdata/receipts/logo.png)
// for a model, as ecrd serve --logo --header-line --footer-line makes them.
func merchantOptions(t *testing.T, model string) Options {
	t.Helper()
	opt := rasterOptions(t, model)
	f, err := os.Open(filepath.Join(goldenDir, "logo.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if opt.Logo, err = NewLogo(img, opt.Profile.WidthDots); err != nil {
		t.Fatal(err)
	}
	opt.Header = []string{"Bäckerei Müller · Hauptstraße 1", "10115 Berlin · Tel. 030 1234567"}
	opt.Footer = []string{"Vielen Dank für Ihren Einkauf!", "USt-IdNr. DE123456789"}
	return opt
}

// TestGoldenMerchant renders the seed receipt with the shop's logo, header and footer lines on
// an 80 mm and a 58 mm model into seed-merchant.MODEL.bin, .txt and .png.
func TestGoldenMerchant(t *testing.T) {
	lines, err := Decode(mustRead(t, filepath.Join(goldenDir, "seed.json")))
	if err != nil {
		t.Fatal(err)
	}
	for _, model := range []string{"TM-T20III", "POS-5890"} {
		t.Run(model, func(t *testing.T) {
			opt := merchantOptions(t, model)
			job, preview, err := checkJob(lines, opt)
			if err != nil {
				t.Fatal(err)
			}
			base := filepath.Join(goldenDir, "seed-merchant."+model)
			compareGolden(t, base+".bin", job)
			compareGolden(t, base+".txt", []byte(preview))
			comparePNG(t, base+".png", job, opt)
		})
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// comparePNG draws job for the printer of opt and compares it, as PNG bytes, with path.
func comparePNG(t *testing.T, path string, job []byte, opt Options) {
	t.Helper()
	got, err := JobPNGFor(job, opt)
	if err != nil {
		t.Fatal(err)
	}
	compareGolden(t, path, got)
}

// TestGoldenWorld renders the world receipt — German, Danish, Polish, Czech, Turkish,
// Lithuanian, Greek, Russian, Portuguese, Icelandic, Japanese, Chinese, Korean and Vietnamese
// names and an emoji — on each golden model with the test glyph font, into world.MODEL.bin,
// .txt and .png.
func TestGoldenWorld(t *testing.T) {
	lines, err := Decode(mustRead(t, filepath.Join(goldenDir, "world.json")))
	if err != nil {
		t.Fatal(err)
	}
	for _, model := range goldenProfiles {
		t.Run(model, func(t *testing.T) {
			opt := rasterOptions(t, model)
			job, preview, err := checkJob(lines, opt)
			if err != nil {
				t.Fatal(err)
			}
			base := filepath.Join(goldenDir, "world."+model)
			compareGolden(t, base+".bin", job)
			compareGolden(t, base+".txt", []byte(preview))
			comparePNG(t, base+".png", job, opt)
		})
	}
}
