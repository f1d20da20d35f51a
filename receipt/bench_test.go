package receipt

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ecrd-pos/ecrd/profile"
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
