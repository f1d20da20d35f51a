package profile

import (
	"slices"
	"strings"
	"testing"
)

// TestFactsFromTheDatabase pins the facts the issue names, so a regenerated profiles_gen.go
// that lost them fails here.
func TestFactsFromTheDatabase(t *testing.T) {
	for _, c := range []struct {
		key     string
		cp858   int // -1: none
		columns int
		paper   string
		cuts    bool
	}{
		{"SP2000", 4, 42, "80mm", true},
		{"TSP600", 4, 42, "80mm", true},
		{"TSP800", 4, 42, "80mm", true},
		{"TUP500", 4, 42, "80mm", true},
		{"mcPrint", 4, 42, "80mm", true},
		{"TH230", 6, 44, "80mm", true},
		{"KR-306", 14, 48, "80mm", true},
		{"YHD-8390", 14, 48, "80mm", true},
		{"TM-T88V", 19, 42, "80mm", true},
		{"TM-T20III", 19, 48, "80mm", true},
		{"POS-5890", 19, 32, "58mm", false},
		{"TM-T88II", -1, 42, "80mm", true},
	} {
		p, err := Lookup(c.key)
		if err != nil {
			t.Fatal(err)
		}
		slot, ok := p.Slot("cp858")
		if c.cp858 < 0 && ok || c.cp858 >= 0 && (!ok || int(slot) != c.cp858) {
			t.Errorf("%s: cp858 at slot %d (%v), want %d", c.key, slot, ok, c.cp858)
		}
		if p.Columns() != c.columns || p.Paper() != c.paper || p.Cuts() != c.cuts {
			t.Errorf("%s: columns %d paper %q cuts %v, want %d %q %v", c.key, p.Columns(), p.Paper(), p.Cuts(), c.columns, c.paper, c.cuts)
		}
	}
	if Generic.Columns() != 0 || Generic.Paper() != "" {
		t.Errorf("generic must take its columns from the paper")
	}
	// Raster images (GS v 0), as the database's bitImageRaster says.
	for key, want := range map[string]bool{"TM-T20III": true, "TM-T88V": true, "TSP600": true, "POS-5890": true, "TH230": false, "TM-U220": false, "generic": true} {
		if p, err := Lookup(key); err != nil || p.Raster != want {
			t.Errorf("%s: raster %v, want %v (%v)", key, p != nil && p.Raster, want, err)
		}
	}
	// Generic is the database's default profile: Epson's whole slot table, not five pages.
	def, err := Lookup("default")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(Generic.CodePages, def.CodePages) || !Generic.FullCut || !Generic.PartialCut {
		t.Errorf("generic is not the database's default profile: %v", Generic.CodePages)
	}
	for name, want := range map[string]byte{"CP858": 19, "CP437": 0, "CP857": 13, "CP737": 14, "CP866": 17, "CP1250": 45} {
		if s, ok := Generic.Slot(name); !ok || s != want {
			t.Errorf("generic %s at %d %v, want %d", name, s, ok, want)
		}
	}
	if len(All()) != len(dbProfiles)+1 || All()[0] != Generic || Keys()[0] != "generic" {
		t.Errorf("All/Keys must start with generic")
	}
	if _, err := Lookup("TM-T1000"); err == nil || !strings.Contains(err.Error(), "TM-T1000") {
		t.Errorf("Lookup of an unknown model: %v", err)
	}
	if p, err := Lookup(" tm-t88v "); err != nil || p.Key != "TM-T88V" {
		t.Errorf("Lookup ignores case and spaces: %v %v", p, err)
	}
}

func TestNormalizeCodePage(t *testing.T) {
	for in, want := range map[string]string{
		"CP858": "cp858", "pc858": "cp858", "wpc1252": "cp1252", "Windows-1252": "cp1252", "CP1252": "cp1252",
		"ISO_8859-2": "iso88592", "iso8859-2": "iso88592", "latin1": "iso88591", "KATAKANA": "katakana",
	} {
		if got := NormalizeCodePage(in); got != want {
			t.Errorf("NormalizeCodePage(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestMatch uses Device ID models as real printers report them (Epson's TM-T88V with a
// regional suffix, Star's "TSP600 (STR_T-U001)", the printer gadget of the till test bed).
func TestMatch(t *testing.T) {
	for _, c := range []struct {
		mfg, mdl string
		want     string // "" = no profile
		how      string
	}{
		{"EPSON", "TM-T20II", "TM-T20II", "is Epson TM-T20II"},
		{"EPSON", "TM-T20III", "TM-T20III", "is Epson"},
		{"EPSON", "TM-T88V-JPN", "TM-T88V", "variant of Epson TM-T88V"},
		{"SEIKO EPSON CORPORATION", "TM-T88V", "TM-T88V", "is Epson"},
		{"EPSON", "TM-T88VII", "", "no profile"},      // newer than the database: never a TM-T88V
		{"Star", "TSP600 (STR_T-U001)", "TSP600", ""}, // Star's name carries the interface board
		{"Star", "TSP143 (STR_T-001)", "", "no profile"},
		{"Wincor Nixdorf", "TH230", "TH230", ""},
		{"EPSON", "TSP600", "", ""}, // the vendor must agree
		{"", "TH230+", "TH230Plus", ""},
		{"EPSON", "", "", "names no model"},
	} {
		p, how := Match(c.mfg, c.mdl)
		got := ""
		if p != nil {
			got = p.Key
		}
		if got != c.want || !strings.Contains(how, c.how) {
			t.Errorf("Match(%q, %q) = %q (%s), want %q (%s)", c.mfg, c.mdl, got, how, c.want, c.how)
		}
	}
}

// TestGenericOnPaper: the generic profile on a roll knows its dots and columns (a preview of a
// 58 mm receipt is 384 dots wide, not 576), and keeps generic's code pages and cuts; a model
// that knows its own width stays itself.
func TestGenericOnPaper(t *testing.T) {
	for paper, want := range map[string][3]int{"58mm": {384, 32, 42}, " 58 MM": {384, 32, 42}, "80mm": {576, 48, 64}} {
		g := Generic.OnPaper(paper)
		if g.WidthDots != want[0] || g.Columns() != want[1] || g.Fonts[1].Columns != want[2] || g.Key != "generic" {
			t.Errorf("%q: %d dots, %d/%d columns, key %s", paper, g.WidthDots, g.Columns(), g.Fonts[1].Columns, g.Key)
		}
		if !slices.Equal(g.CodePages, Generic.CodePages) || !g.Raster || !g.FullCut || g.Paper() != strings.ReplaceAll(strings.ToLower(strings.TrimSpace(paper)), " ", "") {
			t.Errorf("%q: not generic's pages, raster and cut, or paper %q", paper, g.Paper())
		}
	}
	if Generic.OnPaper("A4") != Generic || Generic.OnPaper("58mm") != Generic58 || Generic.OnPaper("80") != Generic80 {
		t.Error("OnPaper must give the same profile for the same paper, and generic for none")
	}
	tm88, _ := Lookup("TM-T88V")
	if tm88.OnPaper("58mm") != tm88 {
		t.Error("a model that knows its width changed with the paper")
	}
}
