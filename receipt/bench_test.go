package receipt

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ecrd-pos/ecrd/profile"
	"github.com/ecrd-pos/ecrd/receipt/unifont"
)

func seedLines(b *testing.B) []Line {
	b.Helper()
	data, err := os.ReadFile(filepath.Join(goldenDir, "seed.json"))
	if err != nil {
		b.Fatal(err)
	}
	lines, err := Decode(data)
	if err != nil {
		b.Fatal(err)
	}
	return lines
}

// BenchmarkRenderSeed80mm renders the seed transaction's receipt, the size a
// till prints for every capture.
func BenchmarkRenderSeed80mm(b *testing.B) {
	lines := seedLines(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Render(lines, Options{Columns: 48}); err != nil {
			b.Fatal(err)
		}
	}
}

// bigReceipt is 10,000 lines of every type with umlauts and wrapping, to
// show that layout and encoding stay linear in the receipt's size.
func bigReceipt() []Line {
	lines := make([]Line, 0, 10000)
	for i := 0; len(lines) < 10000; i++ {
		lines = append(lines,
			Line{Type: "separator", Value: Value{Caption: fmt.Sprintf("Abschnitt %d", i)}},
			text(fmt.Sprintf("Artikel %d: Brötchen „Kürbis“ mit Größe XL und einer Beschreibung, die umbrochen wird", i)),
			nv("Summe", fmt.Sprintf("%d,%02d €", i, i%100), "important"),
			text("Karte akzeptiert", "align-center", "important"),
			Line{Type: "space"},
		)
	}
	return lines
}

func BenchmarkRender10000Lines80mm(b *testing.B) {
	lines := bigReceipt()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Render(lines, Options{Columns: 48}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPreview10000Lines80mm(b *testing.B) {
	lines := bigReceipt()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Preview(lines, Options{Columns: 48}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeSeed(b *testing.B) {
	data, err := os.ReadFile(filepath.Join(goldenDir, "seed.json"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}

func goldenLines(b *testing.B, name string) []Line {
	b.Helper()
	data, err := os.ReadFile(filepath.Join(goldenDir, name+".json"))
	if err != nil {
		b.Fatal(err)
	}
	lines, err := Decode(data)
	if err != nil {
		b.Fatal(err)
	}
	return lines
}

// BenchmarkRenderIntlTH230 renders a receipt in five scripts for a printer whose pages must
// be switched mid-line (the palette path).
func BenchmarkRenderIntlTH230(b *testing.B) {
	lines := goldenLines(b, "intl")
	prof, err := profile.Lookup("TH230")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Render(lines, Options{Profile: prof}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRender10000LinesTM88V is the big receipt through a profile's pages.
func BenchmarkRender10000LinesTM88V(b *testing.B) {
	lines := bigReceipt()
	prof, err := profile.Lookup("TM-T88V")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Render(lines, Options{Profile: prof}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkJobPNGSeed draws and encodes the seed's receipt, what a preview costs.
func BenchmarkJobPNGSeed(b *testing.B) {
	job, err := Render(seedLines(b), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := JobPNG(job, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// fiveCJK is the seed receipt with one more line: five characters no code page has.
func fiveCJK(seed []Line) []Line {
	return append(append([]Line(nil), seed...), text("收据收据收"))
}

// BenchmarkRenderFiveCJK renders the seed receipt with a line of five CJK characters on a
// model that draws them (TM-T20III, the test glyph font read already, as a daemon has after its
// first such receipt) and reports the bytes the picture adds (extra-B).
func BenchmarkRenderFiveCJK(b *testing.B) {
	seed := seedLines(b)
	opt := rasterOptions(b, "TM-T20III")
	plain, err := Render(seed, opt)
	if err != nil {
		b.Fatal(err)
	}
	lines := fiveCJK(seed)
	job, err := Render(lines, opt)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Render(lines, opt); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(job)-len(plain)), "extra-B")
}

// BenchmarkRenderSeedTM20III is the seed receipt on the same model, for the difference.
func BenchmarkRenderSeedTM20III(b *testing.B) {
	seed := seedLines(b)
	opt := rasterOptions(b, "TM-T20III")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Render(seed, opt); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadUnifont is what the daemon pays once, the first time a receipt needs a
// picture: reading and parsing the installed font (skipped where unifont is not installed).
func BenchmarkReadUnifont(b *testing.B) {
	if _, err := os.Stat(unifont.DefaultPath); err != nil {
		b.Skip("unifont is not installed")
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := unifont.Open(unifont.DefaultPath).Font(); err != nil {
			b.Fatal(err)
		}
	}
}
