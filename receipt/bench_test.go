package receipt

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
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
