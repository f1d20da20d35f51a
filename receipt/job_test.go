package receipt

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// walkJob reads a job back the way a printer would, accepting only the
// commands Render is meant to emit. It returns the text of every
// LF-terminated paper line, decoded from the code page. Any other control
// byte is an error: that is how the tests prove receipt text cannot smuggle
// a command to the printer.
func walkJob(job []byte, c config) ([]string, error) {
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
	got, err := walkJob(job, c)
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
	for i, pl := range strings.Split(strings.TrimSuffix(preview, "\n"), "\n") {
		if n := utf8.RuneCountInString(pl); n > c.cols {
			return nil, "", fmt.Errorf("preview line %d is %d wide, more than %d: %q", i, n, c.cols, pl)
		}
	}
	return job, preview, nil
}
