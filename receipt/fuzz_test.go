package receipt

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecrd-pos/ecrd/profile"
)

// FuzzDecode: Decode never panics, and whatever it accepts renders into a
// well-formed job whose text matches its preview at both paper widths.
func FuzzDecode(f *testing.F) {
	inputs, _ := filepath.Glob(filepath.Join(goldenDir, "*.json"))
	for _, in := range inputs {
		if data, err := os.ReadFile(in); err == nil {
			f.Add(data)
		}
	}
	for _, s := range []string{
		`[{"type":"space"}]`, `{"receipt":null}`, `[{"type":"name-value","value":{"name":1,"value":2e300,"decoration":"x"}}]`,
		`[{"type":"textline","value":{"text":"\u001b@\u001dV\u0000\u009b","decoration":["align_center","important"]}}]`,
		`[null]`, `[{"type":"separator","value":"x"}]`, `{"receipt":[{"type":"textline","value":{"text":"\ud800"}}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lines, err := Decode(data)
		if err != nil {
			return
		}
		if len(lines) == 0 {
			t.Fatal("Decode succeeded with no lines; want ErrEmpty")
		}
		for _, cols := range []int{32, 48} {
			if _, _, err := checkJob(lines, Options{Columns: cols}); err != nil {
				t.Fatalf("%d columns: %v", cols, err)
			}
		}
	})
}

// FuzzRender puts arbitrary strings into lines of every type and checks the
// job's invariants with walkJob: it starts ESC @ ESC R 0 ESC t n, ends with
// LF and the cut, carries no control byte other than Render's own commands,
// prints no line wider than the columns, and reads back as its preview.
func FuzzRender(f *testing.F) {
	f.Add("textline", "Summe 7,96 €", "Größe", "important", uint8(32), uint8(3), false)
	f.Add("name-value", "Kartennummer:", "9276004429942845", "", uint8(16), uint8(0), true)
	f.Add("separator", "Kundenkarte", "", "align-center", uint8(0), uint8(4), false)
	f.Add("x", "\x1b@\x1dV\x00\x10\x04\x01\u009b", "\x1bp\x00\x19\xfa", "align_right", uint8(200), uint8(1), false)
	f.Add("textline", "Donaudampfschifffahrtsgesellschaftskapitänsmützenabzeichen", "a b c", "align-right", uint8(1), uint8(2), true)
	f.Add("name-value", "\xff\xfe invalid utf-8 \xc3", "ẞ…—“”\u00a0\u200b\u0308", "IMPORTANT", uint8(17), uint8(0), false)
	f.Add("textline", "Łódź Příliš Σύνολο Итого €", "Zażółć gęślą jaźń Ευχαριστούμε Спасибо", "align-center", uint8(10), uint8(129), true)
	f.Add("name-value", "Жанна Ζωή Őri", "12,50 € 收据", "important", uint8(0), uint8(200), false)
	f.Fuzz(func(t *testing.T, typ, a, b, dec string, cols, cp uint8, full bool) {
		pages := CodePages()
		opt := Options{Columns: minColumns + int(cols)%(maxColumns-minColumns+1), CodePage: pages[int(cp)%len(pages)]}
		if cp%3 == 0 {
			opt.Glyphs = testGlyphs // what no page has is drawn: pictures in the job
		}
		if cp >= 128 {
			// A printer model with several pages: text switches pages mid-line.
			prof, err := profile.Lookup(goldenProfiles[int(cp)%len(goldenProfiles)])
			if err != nil {
				t.Fatal(err)
			}
			opt.Profile, opt.CodePage = prof, ""
		}
		if full {
			opt.Cut = CutFull
		}
		decs := []string{dec, "important"}
		lines := []Line{
			{Type: typ, Value: Value{Caption: a, Text: b, Name: a, Value: b, Decoration: []string{dec}}},
			{Type: "separator", Value: Value{Caption: a}},
			{Type: "separator", Value: Value{Caption: b}},
			{Type: "textline", Value: Value{Text: a, Decoration: decs}},
			{Type: "textline", Value: Value{Text: b, Decoration: []string{dec}}},
			{Type: "name-value", Value: Value{Name: a, Value: b, Decoration: decs}},
			{Type: "name-value", Value: Value{Name: b, Value: a}},
			{Type: "space"},
		}
		job, preview, err := checkJob(lines, opt)
		if err != nil {
			t.Fatal(err)
		}
		// The picture reads every job Render makes, and reads the preview's characters.
		drawn, _, err := readJob(job, opt.Profile)
		if err != nil {
			t.Fatal(err)
		}
		// Text lines read as the preview's; a drawn line (checkJob read it back) is one strip
		// and the feed after it another.
		want := strings.Split(preview, "\n")
		i := 0
		for _, s := range drawn {
			if s.feed > 0 {
				continue
			}
			if i >= len(want)-3 {
				break
			}
			if got := string(runesOf(s.cells)); s.pic == nil && got != want[i] {
				t.Fatalf("picture line %d reads %q, preview %q", i, got, want[i])
			}
			i++
		}
	})
}
