package main

import (
	"image/png"
	"io"
	"os"
	"strings"
	"testing"
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
