package receipt

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ecrd-pos/ecrd/profile"
	"github.com/ecrd-pos/ecrd/receipt/unifont"
)

// testGlyphs is the glyph font of every test: a few hundred of Unifont's glyphs, committed, so
// that no test depends on whether the unifont package is installed (testdata/unifont/README.md).
var testGlyphs = unifont.Open("../testdata/unifont/subset.hex")

// glyphPictures maps what a character's cell looks like on paper — 24 rows of 12 or 24 dots,
// plain or bold, as '#' and '.' — to the characters of the test font that look so, and the
// box to boxRune. It is drawn here from the font's dots, independently of raster.go: a dot of
// the 12×24 (24×24) cell is the glyph's dot at two thirds of its column and row.
var glyphPictures = sync.OnceValues(func() (map[string][]rune, error) {
	font, err := testGlyphs.Font()
	if err != nil {
		return nil, err
	}
	m := map[string][]rune{}
	for r := rune(0x20); r < 0x10000; r++ {
		g, ok := font.Glyph(r)
		if !ok {
			continue
		}
		for _, bold := range []bool{false, true} {
			w := 12
			if g.Wide {
				w = 24
			}
			var b strings.Builder
			for y := range 24 {
				for x := range w {
					on := g.Dot(x*2/3, y*2/3) || bold && x > 0 && g.Dot((x-1)*2/3, y*2/3)
					b.WriteByte(".#"[boolInt(on)])
				}
			}
			k := b.String()
			if !slices.Contains(m[k], r) {
				m[k] = append(m[k], r)
			}
		}
	}
	for _, bold := range []bool{false, true} {
		bits := make([]byte, 2*24)
		drawBox(bits, 2, 0, bold)
		m[cellPicture(bits, 2, 0, 12)] = []rune{boxRune}
	}
	return m, nil
})

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// cellPicture is the w dots from x of a 24-row image, as '#' and '.'.
func cellPicture(bits []byte, stride, x, w int) string {
	var b strings.Builder
	for y := range 24 {
		for dx := range w {
			b.WriteByte(".#"[boolInt(bits[y*stride+(x+dx)/8]&(0x80>>((x+dx)%8)) != 0)])
		}
	}
	return b.String()
}

// rasterText reads the picture of one paper line at the start of job (GS v 0 m xL xH yL yH
// and its dots, then ESC J n) back into the characters it shows, and returns them with the
// bytes it read. Every 12-dot cell is a glyph of the test font drawn one column wide, the left
// half of one drawn two columns wide (24 dots), a box, or blank paper. want, when not nil, is
// the line the preview shows: where a picture is the same for several characters, want's
// character at that place is taken if it is one of them.
func rasterText(job []byte, c config, want []rune) (string, int, error) {
	if len(job) < 8 || string(job[:3]) != "\x1dv0" {
		return "", 0, fmt.Errorf("not GS v 0: % x", job[:min(8, len(job))])
	}
	m, stride, rows := job[3], int(job[4])|int(job[5])<<8, int(job[6])|int(job[7])<<8
	if m != 0 && m != 2 || rows != 24 || stride == 0 {
		return "", 0, fmt.Errorf("GS v 0 m %d, %d bytes × %d rows: not a line's picture", m, stride, rows)
	}
	n := 8 + stride*rows
	if len(job) < n+3 || string(job[n:n+2]) != "\x1bJ" || job[n+2] != 6 {
		return "", 0, fmt.Errorf("the picture is not followed by ESC J 6")
	}
	bits := job[8:n]
	pics, err := glyphPictures()
	if err != nil {
		return "", 0, err
	}
	var out []rune
	cells := stride * 8 / cellW
	for i := 0; i < cells; i++ {
		if i+1 < cells {
			if rs, ok := pics[cellPicture(bits, stride, i*cellW, 2*cellW)]; ok {
				out = append(out, pick(rs, want, len(out)))
				i++
				continue
			}
		}
		pic := cellPicture(bits, stride, i*cellW, cellW)
		if rs, ok := pics[pic]; ok {
			out = append(out, pick(rs, want, len(out)))
			continue
		}
		if !strings.Contains(pic, "#") {
			out = append(out, ' ')
			continue
		}
		return "", 0, fmt.Errorf("cell %d shows no character of the font:\n%s", i, showCell(pic))
	}
	return strings.TrimRight(string(out), " "), n + 3, nil
}

func pick(rs, want []rune, at int) rune {
	if at < len(want) && slices.Contains(rs, want[at]) {
		return want[at]
	}
	return slices.Min(rs)
}

func showCell(pic string) string {
	var b strings.Builder
	w := len(pic) / 24
	for y := range 24 {
		b.WriteString(pic[y*w:(y+1)*w] + "\n")
	}
	return b.String()
}

// hearOnce collects what OnUnprintable hears, each character once (checkJob renders and
// previews, and both tell).
func hearOnce(heard *[]Unprintable) func(Unprintable) {
	return func(u Unprintable) {
		for _, h := range *heard {
			if h.Char == u.Char {
				return
			}
		}
		*heard = append(*heard, u)
	}
}

// rasterOptions are the options of a model with the test glyph font.
func rasterOptions(t testing.TB, model string) Options {
	t.Helper()
	prof, err := profile.Lookup(model)
	if err != nil {
		t.Fatal(err)
	}
	return Options{Profile: prof, Glyphs: testGlyphs}
}

// TestPictures: what no page has prints as a picture of its line, in the same columns — wide
// characters two columns, a character no font has as a box — and the preview shows what the
// picture shows. checkJob reads every picture back glyph by glyph.
func TestPictures(t *testing.T) {
	opt := rasterOptions(t, "TM-T20III")
	var k Counters
	opt.Counters = &k
	var heard []Unprintable
	opt.OnUnprintable = hearOnce(&heard)
	lines := []Line{
		text("Summe 12,50 €"),
		nv("收据", "Größe 12 €", "important"),
		text("Beleg 🧾 und 収", "align-right"),
		{Type: "separator", Value: Value{Caption: "ありがとう"}},
	}
	job, preview, err := checkJob(lines, opt)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Summe 12,50 €",
		"收据" + strings.Repeat(" ", 48-4-10) + "Größe 12 €",
		strings.Repeat(" ", 48-14) + "Beleg □ und 収",
		"",
		"                   ありがとう",
		strings.Repeat("-", 48),
	}
	got := strings.Split(strings.TrimSuffix(preview, "\n\n--- cut ---\n"), "\n")
	equalLines(t, got, want)
	if n := bytes.Count(job, []byte("\x1dv0")); n != 3 {
		t.Errorf("%d pictures, want 3 (the lines with CJK or the emoji)", n)
	}
	if !bytes.Contains(job, []byte("Summe 12,50 \xd5\n")) {
		t.Error("a line every page prints is not text")
	}
	// The headline's picture is double height and bold, as its text would be.
	if !bytes.Contains(job, []byte("\x1dv0\x02")) {
		t.Error("the headline's picture is not double height")
	}
	// 收据 and 収 and ありがとう drawn, the emoji a box.
	if p, s, m := k.Pictured.Load(), k.Substituted.Load(), k.Missing.Load(); p != 8 || s != 0 || m != 1 {
		t.Errorf("counters pictured %d substituted %d missing %d, want 8 0 1", p, s, m)
	}
	if len(heard) != 1 || heard[0].Char != '🧾' || heard[0].PrintedAs != "□" || !strings.Contains(heard[0].Why, "no glyph") {
		t.Errorf("heard %+v", heard)
	}
	// The preview counts nothing; the next Render counts again.
	if _, err := Preview(lines, opt); err != nil || k.Pictured.Load() != 8 {
		t.Errorf("Preview counted: %d", k.Pictured.Load())
	}
}

// TestPictureBytes pins one picture byte for byte: GS v 0, its size, its dots, ESC J.
func TestPictureBytes(t *testing.T) {
	opt := rasterOptions(t, "TM-T20III")
	job, err := Render([]Line{text("A収")}, opt)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(job, []byte("\x1dv0"))
	if i < 0 {
		t.Fatalf("no picture: %q", job)
	}
	// Three columns, 36 dots: 5 bytes a row, 24 rows, then ESC J 6; no LF.
	head := job[i : i+8]
	if !bytes.Equal(head, []byte{0x1D, 'v', '0', 0, 5, 0, 24, 0}) {
		t.Fatalf("GS v 0 header % x", head)
	}
	end := i + 8 + 5*24
	if !bytes.Equal(job[end:end+4], []byte{0x1B, 'J', 6, 0x1B}) {
		t.Fatalf("after the picture: % x", job[end:end+4])
	}
	text, _, err := rasterText(job[i:], config{cols: 48}, nil)
	if err != nil || text != "A収" {
		t.Fatalf("read back %q, %v", text, err)
	}
}

// TestNoPicturesWithoutRasterOrFont: the TH230 prints no raster images, and a missing font
// file is the same as none: what no page has is transliterated or '?', counted and told.
func TestNoPicturesWithoutRasterOrFont(t *testing.T) {
	lines := []Line{text("Sḿ 收据 ẞ ő €")}
	for _, c := range []struct {
		name string
		opt  Options
		want string
		why  string
	}{
		{"TH230", rasterOptions(t, "TH230"), "Sm ?? SS ő €", "prints no pictures"},
		{"no font", Options{Glyphs: unifont.Open(filepath.Join(t.TempDir(), "none.hex"))}, "Sm ?? SS ő €", "glyph font"},
		{"no Glyphs", Options{}, "Sm ?? SS ő €", "prints no pictures"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var k Counters
			var heard []Unprintable
			c.opt.Counters = &k
			c.opt.OnUnprintable = hearOnce(&heard)
			job, preview, err := checkJob(lines, c.opt)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(job, []byte("\x1dv")) {
				t.Error("a picture without pictures")
			}
			if got := strings.SplitN(preview, "\n", 2)[0]; got != c.want {
				t.Errorf("preview %q, want %q", got, c.want)
			}
			// ḿ and ẞ substituted; 收 and 据 missing.
			if k.Pictured.Load() != 0 || k.Substituted.Load() != 2 || k.Missing.Load() != 2 {
				t.Errorf("counters %d %d %d", k.Pictured.Load(), k.Substituted.Load(), k.Missing.Load())
			}
			if len(heard) != 4 || heard[0].Char != 'ḿ' || heard[0].PrintedAs != "m" || !strings.Contains(heard[0].Why, c.why) {
				t.Errorf("heard %+v", heard)
			}
		})
	}
}

// TestPicturesWrap: a line of wide characters wraps between them, never through one, and a
// word of them wider than the paper is cut at a whole character.
func TestPicturesWrap(t *testing.T) {
	opt := rasterOptions(t, "POS-5890") // 32 columns
	long := strings.Repeat("収", 20)     // 40 columns
	got := previewLines(t, []Line{text("x" + long)}, opt)
	equalLines(t, got, []string{"x" + strings.Repeat("収", 15), strings.Repeat("収", 5)})
	for _, l := range got {
		if columnsOf(l) > 32 {
			t.Errorf("%q is wider than 32 columns", l)
		}
	}
}

// TestControlBytesNeverReachThePrinterBesidePictures: hostile text on a line with a picture
// is drawn or dropped, never sent; every byte outside a picture's dots is a known command.
func TestControlBytesNeverReachThePrinterBesidePictures(t *testing.T) {
	hostile := "収\x1b@\x1dV\x00\x1bp\x00\x19\xfa\x10\x04\x01\u009b2J收"
	_, preview, err := checkJob([]Line{text(hostile), nv(hostile, hostile)}, rasterOptions(t, "TM-T88V"))
	if err != nil {
		t.Fatal(err) // walkJob refuses a control byte outside the commands Render writes
	}
	if !strings.Contains(preview, "収@V") {
		t.Errorf("preview %q", preview)
	}
	for _, r := range preview {
		if r != '\n' && isControl(r) {
			t.Errorf("preview has control %U", r)
		}
	}
}

// TestGlyphSubset: the test font covers every character of the golden receipts that Unifont
// has, and, where Debian's unifont package is installed, every line of it is the installed
// font's, unchanged.
func TestGlyphSubset(t *testing.T) {
	font, err := testGlyphs.Font()
	if err != nil {
		t.Fatal(err)
	}
	inputs, _ := filepath.Glob(filepath.Join(goldenDir, "*.json"))
	installed, instErr := unifont.Open(unifont.DefaultPath).Font()
	for _, in := range inputs {
		data, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range string(data) {
			if _, ok := font.Glyph(r); !ok && r >= 0x20 && r < 0x10000 {
				t.Errorf("%s: the test font has no %q (%U): add its line (testdata/unifont/README.md)", in, r, r)
			}
		}
	}
	if instErr != nil {
		t.Logf("unifont is not installed (%v): the subset's lines are not compared with it", instErr)
		return
	}
	sub, err := os.ReadFile("../testdata/unifont/subset.hex")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Fields(string(sub)) {
		cp, _, _ := strings.Cut(line, ":")
		var r rune
		fmt.Sscanf(cp, "%X", &r)
		a, _ := font.Glyph(r)
		b, ok := installed.Glyph(r)
		if !ok || !bytes.Equal(a.Rows, b.Rows) {
			t.Errorf("%s is not the installed font's glyph for %U", line, r)
		}
	}
}

// TestPictureLinesAreBounded: past maxPictureLines lines of pictures, what no page has prints
// as '?' in the same columns, so a receipt of nothing but CJK cannot grow a job without end.
func TestPictureLinesAreBounded(t *testing.T) {
	lines := make([]Line, maxPictureLines+10)
	for i := range lines {
		lines[i] = text("Nr. 収")
	}
	opt := rasterOptions(t, "TM-T20III")
	var k Counters
	var heard []Unprintable
	opt.Counters, opt.OnUnprintable = &k, hearOnce(&heard)
	job, preview, err := checkJob(lines, opt)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(job, []byte("\x1dv0")); n != maxPictureLines {
		t.Errorf("%d pictures, want %d", n, maxPictureLines)
	}
	if n := strings.Count(preview, "Nr. ??\n"); n != 10 {
		t.Errorf("%d lines with '?', want 10", n)
	}
	if k.Pictured.Load() != maxPictureLines || k.Missing.Load() != 10 {
		t.Errorf("pictured %d missing %d", k.Pictured.Load(), k.Missing.Load())
	}
	if len(heard) != 1 || heard[0].Char != '収' || !strings.Contains(heard[0].Why, "lines of pictures") {
		t.Errorf("heard %+v", heard)
	}
}

// TestFiveCJKAddLittle: a line of five CJK characters is one picture of ten columns, at most
// 2 KiB more than the receipt without it (371 bytes: GS v 0, 15 bytes × 24 rows, ESC J 6);
// even a full 48-column line of them stays under it.
func TestFiveCJKAddLittle(t *testing.T) {
	data := mustRead(t, filepath.Join(goldenDir, "seed.json"))
	seed, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	opt := rasterOptions(t, "TM-T20III")
	plain, err := Render(seed, opt)
	if err != nil {
		t.Fatal(err)
	}
	for _, extra := range []string{"收据收据收", strings.Repeat("收", 24)} {
		job, err := Render(append(append([]Line(nil), seed...), text(extra)), opt)
		if err != nil {
			t.Fatal(err)
		}
		if d := len(job) - len(plain); d > 2<<10 || bytes.Count(job, []byte("\x1dv0")) != 1 {
			t.Errorf("%q adds %d bytes (over 2 KiB?) in %d pictures", extra, d, bytes.Count(job, []byte("\x1dv0")))
		} else {
			t.Logf("%q adds %d bytes", extra, d)
		}
	}
}
