package receipt

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"unicode"

	"golang.org/x/text/encoding/charmap"

	"github.com/ecrd-pos/ecrd/profile"
)

// TestGeneratedPagesAreCurrent regenerates codepages_gen.go from the database and glibc's iconv
// and compares it byte for byte with the committed file: a changed database, generator or
// glibc table without `go generate ./receipt` fails here. Without iconv (glibc's, on every
// Debian system) there is nothing to regenerate from, and the test says so.
func TestGeneratedPagesAreCurrent(t *testing.T) {
	if _, err := exec.LookPath("iconv"); err != nil {
		t.Skip("iconv is not installed: the code page tables cannot be regenerated here")
	}
	out := filepath.Join(t.TempDir(), "codepages_gen.go")
	cmd := exec.Command("go", "run", "./internal/cpgen", "-in", "../profile/data/capabilities.json", "-out", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run ./internal/cpgen: %v\n%s", err, b)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("codepages_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("codepages_gen.go is stale: run go generate ./receipt and review the diff")
	}
}

// TestPagesAgreeWithXText compares every generated page that golang.org/x/text also
// implements, byte for byte over 0x80-0xFF: the same character, or none in ours where x/text
// has none either (it reads an undefined byte as U+FFFD, or as the C1 control of the same
// number on the ISO and Windows pages). The one known difference is listed with its reason.
func TestPagesAgreeWithXText(t *testing.T) {
	known := map[string]rune{
		// x/text follows WHATWG, which gives 0xCA the Hebrew point holam haser for vav that
		// Microsoft's own table (and glibc's, and Python's) leaves undefined. A Hebrew page is
		// never printed in anyway.
		"cp1255 0xca": 0x05BA,
	}
	for name, cm := range map[string]*charmap.Charmap{
		"cp437": charmap.CodePage437, "cp850": charmap.CodePage850, "cp852": charmap.CodePage852,
		"cp855": charmap.CodePage855, "cp858": charmap.CodePage858, "cp860": charmap.CodePage860,
		"cp862": charmap.CodePage862, "cp863": charmap.CodePage863, "cp865": charmap.CodePage865,
		"cp866": charmap.CodePage866, "cp874": charmap.Windows874,
		"cp1250": charmap.Windows1250, "cp1251": charmap.Windows1251, "cp1252": charmap.Windows1252,
		"cp1253": charmap.Windows1253, "cp1254": charmap.Windows1254, "cp1255": charmap.Windows1255,
		"cp1256": charmap.Windows1256, "cp1257": charmap.Windows1257, "cp1258": charmap.Windows1258,
		"iso8859-1": charmap.ISO8859_1, "iso8859-2": charmap.ISO8859_2, "iso8859-3": charmap.ISO8859_3,
		"iso8859-4": charmap.ISO8859_4, "iso8859-5": charmap.ISO8859_5, "iso8859-6": charmap.ISO8859_6,
		"iso8859-7": charmap.ISO8859_7, "iso8859-8": charmap.ISO8859_8, "iso8859-9": charmap.ISO8859_9,
		"iso8859-15": charmap.ISO8859_15,
	} {
		cp, ok := lookupCodePage(name)
		if !ok {
			t.Errorf("%s: no generated table", name)
			continue
		}
		for b := 0x80; b <= 0xFF; b++ {
			ours, theirs := cp.decode[b], cm.DecodeByte(byte(b))
			undefined := theirs == unicode.ReplacementChar || theirs == rune(b) && b < 0xA0
			if k := fmt.Sprintf("%s %#02x", name, b); known[k] == theirs && ours == unicode.ReplacementChar {
				continue
			}
			if ours != theirs && !(ours == unicode.ReplacementChar && undefined) {
				t.Errorf("%s byte %#02x: ours %U, x/text %U", name, b, ours, theirs)
			}
			if ours == unicode.ReplacementChar {
				continue
			}
			if got, ok := cp.encodeRune(ours); !ok || int(got) != b && cp.decode[got] != ours {
				t.Errorf("%s: %U encodes to %#02x (%v), want %#02x", name, ours, got, ok, b)
			}
		}
	}
}

// TestPagesTheIssueNamed: the Star TSP600 and the Wincor Nixdorf TH230 have Greek and Turkish
// pages x/text has no table for; every one of them is a page ecrd prints in now.
func TestPagesTheIssueNamed(t *testing.T) {
	for _, name := range []string{"cp737", "cp775", "cp855", "cp857", "cp866", "cp869", "cp1125",
		"cp1253", "cp1254", "cp1255", "cp1256", "cp1257", "cp1258", "iso8859-7", "tcvn-3-1", "cp3012"} {
		if _, ok := lookupCodePage(name); !ok {
			t.Errorf("no table for %s", name)
		}
	}
	for _, c := range []struct {
		page string
		r    rune
		b    byte
	}{
		{"cp737", 'Σ', 0x91}, {"cp737", 'ώ', 0xE9}, {"cp869", 'Ω', 0xD5}, {"cp857", 'ş', 0x9F},
		{"cp857", 'İ', 0x98}, {"cp857", 'ğ', 0xA7}, {"cp775", 'ą', 0xD0}, {"tcvn-3-1", 'ễ', 0xD4},
		{"cp861", 'Þ', 0x8D}, {"cp865", 'ø', 0x9B},
	} {
		cp, _ := lookupCodePage(c.page)
		if b, ok := byteOn(cp, c.r); !ok || b != c.b {
			t.Errorf("%s: %c is %#02x (%v), want %#02x", c.page, c.r, b, ok, c.b)
		}
	}
	for _, model := range []string{"TSP600", "TH230"} {
		prof, err := profile.Lookup(model)
		if err != nil {
			t.Fatal(err)
		}
		pages, _, err := preferredCodePages(prof)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"cp737", "cp857"} {
			found := false
			for _, p := range pages {
				found = found || p.name == want
			}
			if !found {
				t.Errorf("%s does not print in %s", model, want)
			}
		}
	}
}

// TestRightToLeftPagesAreNotPrintedIn: Hebrew and Arabic pages are read (a job that selects
// one decodes) but never chosen nor accepted as --codepage, since a line prints left to right.
func TestRightToLeftPagesAreNotPrintedIn(t *testing.T) {
	for _, name := range []string{"cp862", "cp1255", "cp1256", "iso8859-8", "iso8859-6"} {
		cp, ok := lookupCodePage(name)
		if !ok || !cp.rtl {
			t.Errorf("%s: table %v, rtl %v", name, ok, ok && cp.rtl)
		}
		if _, err := Render([]Line{text("x")}, Options{CodePage: name}); err == nil {
			t.Errorf("--codepage %s accepted", name)
		}
	}
	for _, name := range Encodings() {
		if cp, _ := lookupCodePage(name); cp.rtl {
			t.Errorf("Encodings lists %s", name)
		}
	}
}
