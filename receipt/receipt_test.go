package receipt

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func text(s string, decs ...string) Line {
	return Line{Type: "textline", Value: Value{Text: s, Decoration: decs}}
}

func nv(name, value string, decs ...string) Line {
	return Line{Type: "name-value", Value: Value{Name: name, Value: value, Decoration: decs}}
}

// previewLines returns the preview's paper lines without the trailing blank
// feed and the cut marker.
func previewLines(t *testing.T, lines []Line, opt Options) []string {
	t.Helper()
	_, p, err := checkJob(lines, opt)
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Split(strings.TrimSuffix(p, "\n"), "\n")
	if len(all) < 2 || all[len(all)-2] != "" {
		t.Fatalf("preview does not end with a blank feed and the cut marker: %q", p)
	}
	return all[:len(all)-2]
}

func equalLines(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "|\n")+"|", strings.Join(want, "|\n")+"|")
	}
}

func TestControlCharactersCannotReachThePrinter(t *testing.T) {
	hostile := "a\x1b@b\x1dV\x00c\x1bp\x00\x19\xfad\x10\x04\x01e\x00f\x7fg\u009b2Jh\u0085i\x1bE\x01j\x1d!\x11k\x1bt\x00l"
	lines := []Line{
		{Type: "separator", Value: Value{Caption: hostile}},
		text(hostile, "important"),
		nv(hostile, hostile),
		{Type: "mystery", Value: Value{Text: hostile}},
	}
	for _, cp := range CodePages() {
		opt := Options{CodePage: cp}
		job, preview, err := checkJob(lines, opt) // walkJob rejects any control byte outside our commands
		if err != nil {
			t.Fatalf("%s: %v", cp, err)
		}
		if i := bytes.Index(job, []byte{0x1D, 'V'}); i != len(job)-4 {
			t.Errorf("%s: GS V at %d, want only the final cut at %d", cp, i, len(job)-4)
		}
		body := job[8:] // after ESC @ ESC R 0 ESC t n, which may itself be ESC t 0
		for _, seq := range [][]byte{{0x1B, 'p'}, {0x10, 0x04}, {0x1B, '@'}, {0x1B, 't'}, {0x1D, '!', 0x11}, {0xC2, 0x9B}} {
			if bytes.Contains(body, seq) {
				t.Errorf("%s: job contains % x from the text", cp, seq)
			}
		}
		for _, r := range preview {
			if r != '\n' && isControl(r) {
				t.Errorf("%s: preview contains control %U", cp, r)
			}
		}
		if !strings.Contains(preview, "a@bVcp") {
			t.Errorf("%s: printable text around the controls lost: %q", cp, preview)
		}
	}
}

func TestEuroSign(t *testing.T) {
	tests := []struct {
		cp   string
		want []byte
	}{
		{"", []byte("7,96 \xd5")}, // cp858 is the default
		{"cp858", []byte("7,96 \xd5")},
		{"wpc1252", []byte("7,96 \x80")},
		{"cp437", []byte("7,96 EUR")},
		{"cp850", []byte("7,96 EUR")},
		{"CP852", []byte("7,96 EUR")},
	}
	for _, tt := range tests {
		job, _, err := checkJob([]Line{text("7,96 €")}, Options{CodePage: tt.cp})
		if err != nil {
			t.Fatalf("%q: %v", tt.cp, err)
		}
		if !bytes.Contains(job, append(append([]byte{}, tt.want...), '\n')) {
			t.Errorf("%q: job % x does not contain % x", tt.cp, job, tt.want)
		}
		if bytes.Contains(job, []byte("€")) {
			t.Errorf("%q: UTF-8 € sent to the printer", tt.cp)
		}
	}
}

func TestCodePageSelection(t *testing.T) {
	want := map[string]byte{"cp437": 0, "cp850": 2, "cp852": 18, "cp858": 19, "wpc1252": 16, "": 19, "Windows-1252": 16}
	for name, n := range want {
		job, err := Render([]Line{text("x")}, Options{CodePage: name})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(job, []byte{0x1B, '@', 0x1B, 'R', 0, 0x1B, 't', n}) {
			t.Errorf("%q: job starts % x, want ESC t %d", name, job[:8], n)
		}
	}
}

func TestGermanText(t *testing.T) {
	// "a" + combining diaeresis must be composed to ä (NFC) before encoding.
	job, preview, err := checkJob([]Line{text("Größe Händlerbeleg ẞ a\u0308")}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(job, []byte("Gr\x94\xe1e H\x84ndlerbeleg SS \x84\n")) {
		t.Errorf("cp858 bytes wrong: % x", job)
	}
	if !strings.HasPrefix(preview, "Größe Händlerbeleg SS ä\n") {
		t.Errorf("preview %q", preview)
	}
}

func TestTransliteration(t *testing.T) {
	in := "‘a’ “b” „c“ x–y—z … • \u00a0€ ẞ ™ ő 収"
	got := previewLines(t, []Line{text(in)}, Options{CodePage: "cp437", Columns: 80})
	equalLines(t, got, []string{`'a' "b" "c" x-y-z ... *  EUR SS TM o ?`})
}

func TestWidthNeverExceeded(t *testing.T) {
	long := strings.Repeat("Wort ", 30) + strings.Repeat("X", 100) + " ü€ß " + strings.Repeat("ab ", 40)
	lines := []Line{
		{Type: "separator", Value: Value{Caption: long}},
		text(long), text(long, "align-center"), text(long, "align-right", "important"),
		nv(long, long), nv("Summe", long), nv(long, "7,96 €"),
		{Type: "unknown", Value: Value{Caption: long, Name: long}},
	}
	for _, cols := range []int{16, 32, 42, 48, 255} {
		// checkJob fails on any printed or previewed line wider than cols.
		if _, _, err := checkJob(lines, Options{Columns: cols}); err != nil {
			t.Fatalf("%d columns: %v", cols, err)
		}
	}
}

func TestNameValue(t *testing.T) {
	opt := Options{Columns: 16}
	tests := []struct {
		name string
		line Line
		want []string
	}{
		{"fits", nv("Summe:", "7,96"), []string{"Summe:      7,96"}},
		{"exactly", nv("Kartennr:", "123456"), []string{"Kartennr: 123456"}},
		{"trims", nv(" TA Code: ", " 29 "), []string{"TA Code:      29"}},
		{"one too many", nv("Kartennr.:", "123456"), []string{"Kartennr.:", "          123456"}},
		{"long name", nv("Aktuelles Guthaben der Karte", "10,00"), []string{"Aktuelles", "Guthaben der", "Karte", "           10,00"}},
		{"long value", nv("Ref", "STX_KJXJDUN542NR3WMRH"), []string{"Ref", "STX_KJXJDUN542NR", "           3WMRH"}},
		{"no value", nv("Nur Name", ""), []string{"Nur Name"}},
		{"no name", nv("", "Wert"), []string{"            Wert"}},
		{"empty", nv("", ""), []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			equalLines(t, previewLines(t, []Line{tt.line}, opt), tt.want)
		})
	}
}

func TestImportantNameValueIsEmphasised(t *testing.T) {
	job, err := Render([]Line{nv("Summe", "7,96", "important"), text("danach")}, Options{Columns: 16})
	if err != nil {
		t.Fatal(err)
	}
	want := []byte("\x1bE\x01Summe       7,96\n\x1bE\x00danach\n")
	if !bytes.Contains(job, want) {
		t.Errorf("job % x lacks % x", job, want)
	}
}

func TestLayoutOfEachType(t *testing.T) {
	lines := []Line{
		text("erste"),
		{Type: "separator", Value: Value{Caption: "Titel"}},
		{Type: "separator"},
		{Type: "space"},
		text("mitte", "align-center", "important"),
		text("rechts", "align_right"),
		text("  eingerückt"),
		text("Ein langer Satz mit Wörtern"),
		text("Donaudampfschiff"+"fahrtsgesellschaft", "align-center"),
		{Type: "zukunft", Value: Value{Text: "neu", Decoration: []string{"align-right", "blinken"}}},
		{Type: "leer"},
	}
	var unknown []string
	opt := Options{Columns: 16, OnUnknown: func(i int, typ string) { unknown = append(unknown, fmt.Sprintf("%s@%d", typ, i)) }}
	got := previewLines(t, lines, opt) // renders and previews: two layouts
	equalLines(t, got, []string{
		"erste",
		"",
		"     Titel",
		"----------------",
		"----------------",
		"",
		"     mitte",
		"          rechts",
		"  eingerückt",
		"Ein langer Satz",
		"mit Wörtern",
		"Donaudampfschiff",
		"fahrtsgesellscha",
		"       ft",
		"             neu",
	})
	if got, want := strings.Join(unknown, ","), "zukunft@9,leer@10,zukunft@9,leer@10"; got != want {
		t.Errorf("OnUnknown calls %s, want %s (once per line for Render, once for Preview)", got, want)
	}
}

func TestJobFraming(t *testing.T) {
	lines := []Line{{Type: "separator", Value: Value{Caption: "Kopf"}}, text("x", "important")}
	for _, tt := range []struct {
		cut  CutMode
		tail string
	}{{CutPartial, "\x1dVB\x03"}, {CutFull, "\x1dVA\x03"}} {
		job, err := Render(lines, Options{Cut: tt.cut})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(job, []byte("\x1b@\x1bR\x00\x1bt\x13")) {
			t.Errorf("start % x", job[:8])
		}
		// The caption switches on bold and double height; both are off
		// again, and alignment is left, before the final feed and cut.
		if !bytes.Contains(job, []byte("\x1bE\x01\x1d!\x01")) {
			t.Errorf("caption not bold and double height: % x", job)
		}
		wantEnd := "x\n\x1bE\x00\x1d!\x00\x1ba\x00\n" + tt.tail
		if !strings.HasSuffix(string(job), wantEnd) {
			t.Errorf("cut %d: job ends % x, want % x", tt.cut, job[len(job)-len(wantEnd):], wantEnd)
		}
	}
}

func TestOptionErrors(t *testing.T) {
	lines := []Line{text("x")}
	for _, tt := range []struct {
		opt  Options
		want string
	}{
		{Options{Columns: 15}, "15"},
		{Options{Columns: 256}, "256"},
		{Options{Columns: -1}, "-1"},
		{Options{CodePage: "cp999"}, `"cp999"`},
		{Options{CodePage: "utf-8"}, `"utf-8"`},
		{Options{Cut: 7}, "7"},
	} {
		if _, err := Render(lines, tt.opt); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Render(%+v) error %v, want one naming %s", tt.opt, err, tt.want)
		}
		if _, err := Preview(lines, tt.opt); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Preview(%+v) error %v, want one naming %s", tt.opt, err, tt.want)
		}
	}
	for _, ok := range []Options{{Columns: 16}, {Columns: 255}, {CodePage: "CP437"}, {CodePage: " wpc1252 "}, {Cut: CutFull}} {
		if _, err := Render(lines, ok); err != nil {
			t.Errorf("Render(%+v): %v", ok, err)
		}
	}
}

func TestPaperColumns(t *testing.T) {
	for in, want := range map[string]int{"58mm": 32, "80mm": 48, "80MM": 48, " 58 mm": 32} {
		if got, err := PaperColumns(in); err != nil || got != want {
			t.Errorf("PaperColumns(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "A4", "57mm", "112mm"} {
		if _, err := PaperColumns(bad); err == nil || !strings.Contains(err.Error(), `"`+bad+`"`) {
			t.Errorf("PaperColumns(%q) error %v", bad, err)
		}
	}
}

func TestCodePages(t *testing.T) {
	// The generic profile is escpos-printer-db's default: every page it has a table for.
	got := strings.Join(CodePages(), ",")
	want := "cp1125,cp1250,cp1251,cp1253,cp1254,cp1257,cp1258,cp437,cp737,cp772,cp774,cp775,cp850,cp852," +
		"cp855,cp857,cp858,cp860,cp861,cp863,cp865,cp866,cp869,cp874,iso8859-15,iso8859-2,iso8859-7,rk1048," +
		"tcvn-3-1,tcvn-3-2,wpc1252"
	if got != want {
		t.Errorf("CodePages() = %s\nwant %s", got, want)
	}
}

func TestDrawerKick(t *testing.T) {
	for pin, want := range map[int]string{0: "\x1bp\x00\x19\xfa", 2: "\x1bp\x00\x19\xfa", 1: "\x1bp\x01\x19\xfa", 5: "\x1bp\x01\x19\xfa"} {
		if got := DrawerKick(pin); string(got) != want {
			t.Errorf("DrawerKick(%d) = % x, want % x", pin, got, want)
		}
	}
	for _, bad := range []int{-1, 3, 4, 6} {
		if got := DrawerKick(bad); got != nil {
			t.Errorf("DrawerKick(%d) = % x, want nil", bad, got)
		}
	}
}

func TestRenderEmpty(t *testing.T) {
	if _, err := Render(nil, Options{}); !errors.Is(err, ErrEmpty) {
		t.Errorf("Render(nil) error %v, want ErrEmpty", err)
	}
	if _, err := Preview([]Line{}, Options{}); !errors.Is(err, ErrEmpty) {
		t.Errorf("Preview(empty) error %v, want ErrEmpty", err)
	}
}

// TestHugeText guards against quadratic wrapping or encoding: a megabyte
// line with and without spaces, ASCII and not, must render at once (a
// quadratic wrap would take minutes and hit the test timeout).
func TestHugeText(t *testing.T) {
	words := strings.Repeat("Größe ab ", 1<<17)
	solid := strings.Repeat("x", 1<<20)
	job, _, err := checkJob([]Line{text(words), text(solid, "align-center"), nv(words, solid)}, Options{Columns: 16})
	if err != nil {
		t.Fatal(err)
	}
	if len(job) < 3<<20 {
		t.Errorf("job of %d bytes lost text", len(job))
	}
}
