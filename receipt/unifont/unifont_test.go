package unifont

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const subset = "../../testdata/unifont/subset.hex"

func TestParseSubset(t *testing.T) {
	f, err := Open(subset).Font()
	if err != nil {
		t.Fatal(err)
	}
	if f.Len() < 200 {
		t.Fatalf("%d glyphs", f.Len())
	}
	a, ok := f.Glyph('A')
	if !ok || a.Wide || a.Width() != 8 || len(a.Rows) != Height {
		t.Fatalf("A: %+v %v", a, ok)
	}
	// Unifont's A: its apex at row 4 in the middle columns, its feet down to row 13.
	if !a.Dot(3, 4) || !a.Dot(4, 4) || a.Dot(0, 0) || !a.Dot(1, 13) || a.Dot(1, 14) {
		t.Errorf("A's dots are not where Unifont draws them:\n%s", picture(a))
	}
	shou, ok := f.Glyph('收')
	if !ok || !shou.Wide || shou.Width() != 16 || len(shou.Rows) != 2*Height {
		t.Fatalf("收: %+v %v", shou, ok)
	}
	if _, ok := f.Glyph('🧾'); ok {
		t.Error("the emoji is not in plane 0's font")
	}
}

func picture(g Glyph) string {
	var b strings.Builder
	for y := range Height {
		for x := range g.Width() {
			if g.Dot(x, y) {
				b.WriteByte('#')
			} else {
				b.WriteByte('.')
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func TestParseErrors(t *testing.T) {
	for in, want := range map[string]string{
		"":                         "no glyphs",
		"# only a comment\n\n":     "no glyphs",
		"0041:00\n":                "line 1",
		"0041 0000\n":              "line 1",
		"ZZZZ:" + zeros(32) + "\n": "bad code point",
		"110000:" + zeros(32):      "bad code point",
		"0041:" + zeros(31) + "G":  "line 1",
		"0041:" + zeros(32) + "\n0042:" + zeros(30) + "\n": "line 2",
	} {
		if _, err := Parse(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want an error with %q", in, err, want)
		}
	}
	// The last line of a character wins; comments and blank lines are skipped.
	f, err := Parse(strings.NewReader("# c\n0041:" + zeros(32) + "\n\n0041:" + strings.Repeat("FF", 16) + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if g, _ := f.Glyph('A'); f.Len() != 1 || !g.Dot(0, 0) {
		t.Errorf("the later line of A was not kept")
	}
}

func zeros(n int) string { return strings.Repeat("0", n) }

// A File reads nothing until asked, then once: the same font, or the same error, every time.
func TestFileReadsOnce(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "font.hex")
	f := Open(path)
	if f.Path() != path {
		t.Fatal(f.Path())
	}
	if err := os.WriteFile(path, []byte("0041:"+zeros(32)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	font, err := f.Font()
	if err != nil || font.Len() != 1 {
		t.Fatal(font, err)
	}
	os.Remove(path)
	if again, err := f.Font(); err != nil || again != font {
		t.Fatal("the font was read again")
	}
	missing := Open(filepath.Join(dir, "none.hex"))
	if _, err := missing.Font(); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "glyph font") {
		t.Fatalf("missing font: %v", err)
	}
}
