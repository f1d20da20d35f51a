package main

import (
	"image/png"
	"io"
	"os"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ecrd-pos/ecrd/profile"
)

// TestRenderPNGIsThePrintersWidth: the preview of a receipt for a generic printer is as wide as
// its roll prints — 384 dots on 58 mm paper, 576 on 80 mm — and a model's as its profile says
// (a TM-T88V prints 512), each plus the paper's 16-dot edges.
func TestRenderPNGIsThePrintersWidth(t *testing.T) {
	for _, c := range []struct {
		args []string
		dots int
	}{
		{[]string{"--paper", "58mm"}, 384},
		{[]string{"--paper", "80mm"}, 576},
		{nil, 576},
		{[]string{"--model", "generic", "--paper", "58mm", "--columns", "30"}, 384},
		{[]string{"--model", "TM-T88V"}, 512},
		{[]string{"--model", "POS-5890"}, 384},
	} {
		args := append([]string{"render", "--format", "png", "--glyphs", ""}, c.args...)
		code, out, errs := runCLI(t, "", append(args, seedFile)...)
		if code != 0 {
			t.Fatalf("ecrd %v: exit %d: %s", args, code, errs)
		}
		img, err := png.Decode(strings.NewReader(out))
		if err != nil {
			t.Fatal(err)
		}
		if w := img.Bounds().Dx(); w != c.dots+32 {
			t.Errorf("ecrd %v: %d wide, want %d dots and the edges", args, w, c.dots)
		}
	}
}

// TestMerchantLinesAndLogo: --logo, --header-line and --footer-line print on the receipt as
// the golden file shows; several lines come from repeated flags or one variable with \n, and
// the command line replaces the environment's; a logo that cannot be read stops ecrd at once.
func TestMerchantLinesAndLogo(t *testing.T) {
	code, out, errs := runCLI(t, "", "render", "--model", "POS-5890", "--glyphs", "../../testdata/unifont/subset.hex",
		"--logo", "../../testdata/receipts/logo.png",
		"--header-line", `Bäckerei Müller · Hauptstraße 1\n10115 Berlin · Tel. 030 1234567`,
		"--footer-line", "Vielen Dank für Ihren Einkauf!", "--footer-line", "USt-IdNr. DE123456789", seedFile)
	want, err := os.ReadFile("../../testdata/receipts/seed-merchant.POS-5890.bin")
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 || out != string(want) {
		t.Errorf("exit %d, stderr %q: not seed-merchant.POS-5890.bin", code, errs)
	}

	t.Setenv("ECRD_HEADER_LINE", `Env eins\nEnv zwei`)
	t.Setenv("ECRD_FOOTER_LINE", "Env Fuß")
	fs := newFlagSet("test", io.Discard)
	var lf layoutFlags
	lf.register(fs)
	if err := parse(fs, []string{"--footer-line", "Flag Fuß"}, true); err != nil {
		t.Fatal(err)
	}
	if strings.Join(lf.header.list, "|") != "Env eins|Env zwei" || strings.Join(lf.footer.list, "|") != "Flag Fuß" {
		t.Errorf("header %q footer %q", lf.header.list, lf.footer.list)
	}

	for _, c := range []struct{ file, want string }{
		{"../../testdata/receipts/missing.png", "no such file"},
		{seedFile, "not a PNG"},
	} {
		code, _, errs := runCLI(t, "", "render", "--logo", c.file, seedFile)
		if code != 2 || !strings.Contains(errs, "--logo") || !strings.Contains(errs, c.want) {
			t.Errorf("--logo %s: exit %d, %q", c.file, code, errs)
		}
	}
	code, _, errs = runCLI(t, "", "render", "--header-line", strings.Repeat("x", 256), seedFile)
	if code != 2 || !strings.Contains(errs, "255") {
		t.Errorf("a header line too long: exit %d, %q", code, errs)
	}
}

// TestSettingsThatContradictTheModel: a --paper or --columns (or its ECRD_ variable, as the
// old env file set ECRD_PAPER=80mm) that disagrees with the model still wins, but is a warning
// that names both, from ecrd render and at the daemon's start.
func TestSettingsThatContradictTheModel(t *testing.T) {
	for _, c := range []struct {
		args []string
		want []string // in the warning; none: no warning
	}{
		{[]string{"--model", "POS-5890", "--paper", "80mm"}, []string{"--paper", "ECRD_PAPER", "80mm", "POS-5890", "58mm", "32 columns"}},
		{[]string{"--model", "TM-T88V", "--columns", "48"}, []string{"--columns", "ECRD_COLUMNS", "48", "TM-T88V", "42 columns"}},
		{[]string{"--model", "POS-5890", "--paper", "58mm"}, nil},
		{[]string{"--model", "TM-T88V", "--columns", "42", "--paper", "80mm"}, nil},
		{[]string{"--model", "generic", "--paper", "58mm", "--columns", "30"}, nil},
	} {
		code, _, errs := runCLI(t, "", append(append([]string{"render", "--format", "text", "--glyphs", ""}, c.args...), seedFile)...)
		if code != 0 {
			t.Fatalf("%v: exit %d %s", c.args, code, errs)
		}
		if len(c.want) == 0 && strings.Contains(errs, "disagrees") {
			t.Errorf("%v: a warning where settings agree: %s", c.args, errs)
		}
		for _, w := range c.want {
			if !strings.Contains(errs, "warning") || !strings.Contains(errs, w) {
				t.Errorf("%v: the warning %q does not name %q", c.args, errs, w)
			}
		}
	}

	// The daemon logs it at start, once per setting, as a warning.
	core, logs := observer.New(zap.InfoLevel)
	lf := layoutFlags{paper: "80mm", model: "POS-5890", cut: "partial"}
	prof, err := profile.Lookup("POS-5890")
	if err != nil {
		t.Fatal(err)
	}
	opt, err := lf.optionsFor(prof)
	if err != nil {
		t.Fatal(err)
	}
	receiptReports(&opt, prof, lf, zap.New(core))
	warned := logs.FilterLevelExact(zap.WarnLevel).FilterMessageSnippet("disagrees").All()
	if len(warned) != 1 || !strings.Contains(warned[0].Message, "POS-5890") || !strings.Contains(warned[0].Message, "80mm") {
		t.Errorf("start-up warnings %v", logs.All())
	}
	if opt.Columns != 48 || opt.Counters == nil || opt.OnUnprintable == nil {
		t.Errorf("the setting must still win (48 columns), and the receipts report: %+v", opt)
	}
}
