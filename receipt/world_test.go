package receipt

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/text/unicode/norm"

	"github.com/ecrd-pos/ecrd/profile"
)

// decodeWithModel reads a job back the way the model reads it, independently of the renderer's
// choices: a byte of text is the character the model's own table puts at it (the page its ESC t
// slot selects, by the profile's slot table and the generated code-page tables), a GS v 0
// picture the characters its glyphs show (rasterText, with no preview to lean on). It returns
// the printed lines.
func decodeWithModel(job []byte, prof *profile.Profile) ([]string, error) {
	pageAt := func(slot byte) *codePage {
		for _, cp := range prof.CodePages {
			if cp.Slot == slot {
				p, _ := lookupCodePage(cp.Name)
				return p
			}
		}
		return nil
	}
	var lines []string
	var cur strings.Builder
	page := pageAt(0)
	for i := 0; i < len(job); i++ {
		b := job[i]
		switch {
		case b == '\n':
			lines = append(lines, cur.String())
			cur.Reset()
		case b == 0x1D && i+1 < len(job) && job[i+1] == 'v':
			text, n, err := rasterText(job[i:], config{}, nil)
			if err != nil {
				return nil, fmt.Errorf("picture at %d: %w", i, err)
			}
			lines = append(lines, text)
			i += n - 1
		case b == 0x1B || b == 0x1D:
			n, err := commandLength(job[i:])
			if err != nil {
				return nil, fmt.Errorf("at %d: %w", i, err)
			}
			switch {
			case b == 0x1B && job[i+1] == '@':
				page = pageAt(0)
			case b == 0x1B && job[i+1] == 't':
				if page = pageAt(job[i+2]); page == nil {
					return nil, fmt.Errorf("at %d: ESC t %d selects no page the %s has a table for", i, job[i+2], prof.Key)
				}
			}
			i += n - 1
		case b < 0x20 || b == 0x7F:
			return nil, fmt.Errorf("control byte %#02x at %d", b, i)
		case b < 0x80:
			cur.WriteByte(b)
		default:
			cur.WriteRune(page.decode[b])
		}
	}
	return lines, nil
}

// commandLength is the length of the ESC or GS command at the start of b (not GS v 0).
func commandLength(b []byte) (int, error) {
	if len(b) < 2 {
		return 0, fmt.Errorf("truncated command % x", b)
	}
	n := 0
	switch string(b[:2]) {
	case "\x1b@":
		n = 2
	case "\x1bR", "\x1bt", "\x1bE", "\x1d!", "\x1ba", "\x1bd", "\x1bJ":
		n = 3
	case "\x1dV":
		n = 3
		if len(b) > 2 && (b[2] == 65 || b[2] == 66) {
			n = 4
		}
	default:
		return 0, fmt.Errorf("unknown command % x", b[:2])
	}
	if len(b) < n {
		return 0, fmt.Errorf("truncated command % x", b)
	}
	return n, nil
}

// receiptRunes counts the characters of a receipt's text, as NFC makes them (spaces aside).
func receiptRunes(lines []Line) map[rune]int {
	m := map[rune]int{}
	for _, l := range lines {
		for _, s := range []string{l.Value.Caption, l.Value.Text, l.Value.Name, l.Value.Value} {
			for _, r := range norm.NFC.String(s) {
				if r != ' ' {
					m[r]++
				}
			}
		}
	}
	return m
}

// printedRunes counts the characters of printed lines, rules and spaces aside.
func printedRunes(lines []string) map[rune]int {
	m := map[rune]int{}
	for _, l := range lines {
		if l != "" && strings.Trim(l, "-") == "" {
			continue // a separator's rule
		}
		for _, r := range l {
			if r != ' ' {
				m[r]++
			}
		}
	}
	return m
}

// TestWorldPrintsEveryCharacter reads each golden model's job of the world receipt back with
// that model's own code-page tables, and its pictures by their glyphs: on a model that prints
// pictures, every character of the receipt prints as itself, by a page or as a picture, as
// often as the receipt has it, nothing else is printed, and no '?' — only the emoji, which
// Unifont's plane 0 has no glyph for, prints as a box. The TH230 prints no pictures: every
// character one of its pages has prints as itself, and exactly the ones none has are counted
// as substituted or missing.
func TestWorldPrintsEveryCharacter(t *testing.T) {
	lines, err := Decode(mustRead(t, filepath.Join(goldenDir, "world.json")))
	if err != nil {
		t.Fatal(err)
	}
	want := receiptRunes(lines)
	for _, model := range goldenProfiles {
		t.Run(model, func(t *testing.T) {
			opt := rasterOptions(t, model)
			var k Counters
			opt.Counters = &k
			job, err := Render(lines, opt)
			if err != nil {
				t.Fatal(err)
			}
			printed, err := decodeWithModel(job, opt.Profile)
			if err != nil {
				t.Fatal(err)
			}
			got := printedRunes(printed)
			if !opt.Profile.Raster {
				checkWithoutPictures(t, opt.Profile, want, got, &k)
				return
			}
			for r, n := range want {
				as := r
				if r == '🧾' {
					as = boxRune
				}
				if got[as] != n {
					t.Errorf("%q (%U): printed %d times, the receipt has it %d times", r, r, got[as], n)
				}
			}
			for r, n := range got {
				if want[r] == 0 && !(r == boxRune && want['🧾'] == n) {
					t.Errorf("%q (%U) printed %d times: the receipt has no such character", r, r, n)
				}
			}
			if k.Substituted.Load() != 0 || k.Missing.Load() != uint64(want['🧾']) {
				t.Errorf("counted %d substituted, %d missing: want none but the emoji", k.Substituted.Load(), k.Missing.Load())
			}
			if t.Failed() {
				t.Logf("printed:\n%s", strings.Join(printed, "\n"))
			}
		})
	}
}

// checkWithoutPictures holds a model that prints no pictures to what its pages can do.
func checkWithoutPictures(t *testing.T, prof *profile.Profile, want, got map[rune]int, k *Counters) {
	t.Helper()
	onPage := func(r rune) bool {
		for _, cp := range prof.CodePages {
			if p, ok := printablePage(cp.Name); ok {
				if _, ok := byteOn(p, r); ok {
					return true
				}
			}
		}
		return r < 0x7F
	}
	none := 0
	for r, n := range want {
		if onPage(r) {
			if got[r] < n {
				t.Errorf("%q (%U) is on a page of the %s but printed %d times of %d", r, r, prof.Key, got[r], n)
			}
			continue
		}
		none += n
	}
	if c := k.Substituted.Load() + k.Missing.Load(); c != uint64(none) {
		t.Errorf("%d characters are on no page of the %s; %d were counted", none, prof.Key, c)
	}
	if none == 0 {
		t.Errorf("the world receipt should have characters the %s cannot print", prof.Key)
	}
}
