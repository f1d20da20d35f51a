package receipt

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// walkJob reads a job back the way a printer would, accepting only the
// commands Render is meant to emit. It returns the text of every
// LF-terminated paper line, decoded from the code page. Any other control
// byte is an error: that is how the tests prove receipt text cannot smuggle
// a command to the printer. A GS v 0 picture of a line is read back by the
// glyphs it shows (rasterText), and where a glyph is drawn the same for
// several characters (Latin A and Cyrillic А), the one expected at that place
// in the line (expected, the preview's lines) is taken if it is one of them.
func walkJob(job []byte, c config, expected []string) ([]string, error) {
	cols, cp := c.cols, c.pages[0]
	head := []byte{0x1B, '@', 0x1B, 'R', 0, 0x1B, 't', c.slots[0]}
	if len(job) < len(head) || string(job[:len(head)]) != string(head) {
		return nil, fmt.Errorf("job does not start with ESC @ ESC R 0 ESC t %d: % x", c.slots[0], job[:min(len(job), 16)])
	}
	want := string(c.ending())
	if !strings.HasSuffix(string(job), "\n"+want) {
		return nil, fmt.Errorf("job does not end with LF and the cut % x: % x", want, job[max(0, len(job)-16):])
	}
	body := job[len(head) : len(job)-len(want)]
	var lines []string
	if c.logo != nil {
		// The logo, exactly as made, first: the preview's PreviewLogo line.
		logo := c.logo.appendTo(nil)
		if !bytes.HasPrefix(body, logo) {
			return nil, fmt.Errorf("the job does not start with the logo")
		}
		lines = append(lines, strings.Repeat(" ", (cols-len(PreviewLogo))/2)+PreviewLogo)
		body = body[len(logo):]
	}
	var cur strings.Builder
	width := 0
	for i := 0; i < len(body); i++ {
		b := body[i]
		switch {
		case b == '\n':
			if width > cols {
				return nil, fmt.Errorf("line %d is %d columns wide, more than %d", len(lines), width, cols)
			}
			lines = append(lines, cur.String())
			cur.Reset()
			width = 0
		case b == 0x1D && i+1 < len(body) && body[i+1] == 'v' && c.pictures != nil:
			if width != 0 {
				return nil, fmt.Errorf("a picture at %d in the middle of a line", i)
			}
			var want []rune
			if len(lines) < len(expected) {
				want = []rune(expected[len(lines)])
			}
			text, n, err := rasterText(body[i:], c, want)
			if err != nil {
				return nil, fmt.Errorf("picture of line %d: %w", len(lines), err)
			}
			if w := int(body[i+4]) | int(body[i+5])<<8; w*8/cellW > cols {
				return nil, fmt.Errorf("picture of line %d is %d columns wide, more than %d", len(lines), w, cols)
			}
			lines = append(lines, text)
			i += n - 1
		case b == 0x1B || b == 0x1D:
			if i+2 >= len(body) {
				return nil, fmt.Errorf("truncated command at %d", i)
			}
			cmd, n := body[i+1], body[i+2]
			ok := false
			switch {
			case b == 0x1B && cmd == 'E':
				ok = n <= 1
			case b == 0x1B && cmd == 'a':
				ok = n <= 2 && width == 0 // alignment only takes at the start of a line
			case b == 0x1D && cmd == '!':
				ok = n == 0 || n == 0x01 // never wider, or the columns would not hold
			case b == 0x1B && cmd == 't' && len(c.pages) > 1:
				// A page switch between runs of text: only to a page of the profile.
				if i := slices.Index(c.slots, n); i >= 0 {
					cp, ok = c.pages[i], true
				}
			}
			if !ok {
				return nil, fmt.Errorf("unexpected command % x at %d", body[i:i+3], i)
			}
			i += 2
		case b < 0x20 || b == 0x7F:
			return nil, fmt.Errorf("control byte %#02x in text at %d", b, i)
		default:
			width++
			if b < utf8.RuneSelf {
				cur.WriteByte(b)
			} else {
				cur.WriteRune(cp.decode[b])
			}
		}
	}
	if width != 0 {
		return nil, fmt.Errorf("text %q not terminated by LF before the cut", cur.String())
	}
	return lines, nil
}

// checkJob renders and previews lines, and asserts that the bytes, read back
// by walkJob, are exactly the preview: same lines, same columns.
func checkJob(lines []Line, opt Options) (job []byte, preview string, err error) {
	c, err := opt.config()
	if err != nil {
		return nil, "", err
	}
	job, err = Render(lines, opt)
	if err != nil {
		return nil, "", err
	}
	preview, err = Preview(lines, opt)
	if err != nil {
		return nil, "", err
	}
	got, err := walkJob(job, c, strings.Split(preview, "\n"))
	if err != nil {
		return nil, "", err
	}
	marker := c.previewEnd()
	want := strings.Join(got, "\n") + "\n" + marker + "\n"
	if len(got) == 0 {
		want = marker + "\n"
	}
	if preview != want {
		return nil, "", fmt.Errorf("preview differs from the job's text:\npreview:\n%s\njob:\n%s", preview, want)
	}
	// The preview's lines are the job's, which walkJob measured as printed: a byte a column, a
	// picture as many columns as its dots.
	return job, preview, nil
}

// columnsOf is a preview line's width on paper: a character the glyph font draws 16 dots wide
// (CJK, Hangul, kana) takes two columns, every other one.
func columnsOf(s string) int {
	n := 0
	for _, r := range s {
		n++
		if wideRunes[r] {
			n++
		}
	}
	return n
}

// wideRunes are the characters of the test glyph font drawn two columns wide.
var wideRunes = func() map[rune]bool {
	m := map[rune]bool{}
	font, err := testGlyphs.Font()
	if err != nil {
		return m
	}
	for r := rune(0); r < 0x10000; r++ {
		if g, ok := font.Glyph(r); ok && g.Wide {
			m[r] = true
		}
	}
	return m
}()
