package main

import (
	"image/png"
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
