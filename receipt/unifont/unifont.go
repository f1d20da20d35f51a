// Package unifont reads GNU Unifont's .hex bitmap font (Debian's unifont package installs it
// as /usr/share/unifont/unifont.hex): one line per character, its code point in hex, a colon and
// 32 hex digits for an 8×16 glyph or 64 for a 16×16 one, rows from the top, the leftmost dot the
// highest bit. receipt draws what no code page of a printer has from it.
//
// The font is data ecrd reads at run time, never compiles in: Unifont's glyphs are GNU GPL 2+
// with the GNU font embedding exception (and SIL OFL 1.1 from Unifont 13 on). A daemon reads
// the file once, when a receipt first needs a picture (File).
package unifont

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"sync"
)

// DefaultPath is where Debian's unifont package puts the font.
const DefaultPath = "/usr/share/unifont/unifont.hex"

// maxFile bounds what Parse reads: the whole of Unifont, every plane, is about 12 MB.
const maxFile = 32 << 20

// Font is a parsed .hex font: about 2 MB for Unifont's 57,000 characters of plane 0.
type Font struct {
	runes []rune   // sorted
	off   []uint32 // glyph i is data[off[i]:off[i+1]]
	data  []byte
}

// Glyph is one character's bitmap: 16 rows of 8 dots (one byte a row) or, when Wide, 16 rows
// of 16 dots (two bytes a row), the leftmost dot in the highest bit.
type Glyph struct {
	Wide bool
	Rows []byte
}

// Height is the rows of every glyph.
const Height = 16

// Width is the glyph's width in dots: 8 or 16.
func (g Glyph) Width() int {
	if g.Wide {
		return 16
	}
	return 8
}

// Dot reports whether the dot at column x, row y is inked.
func (g Glyph) Dot(x, y int) bool {
	if g.Wide {
		return g.Rows[2*y+x/8]&(0x80>>(x%8)) != 0
	}
	return g.Rows[y]&(0x80>>x) != 0
}

// Parse reads a .hex font. Empty lines and lines starting with '#' are skipped; a line that is
// neither nor a glyph is an error naming its number. A character given twice keeps its last glyph.
func Parse(r io.Reader) (*Font, error) {
	type entry struct {
		r   rune
		off uint32
		n   int
	}
	var entries []entry
	var data []byte
	sc := bufio.NewScanner(io.LimitReader(r, maxFile+1))
	sc.Buffer(make([]byte, 0, 256), 1024)
	read, line := 0, 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		read += len(sc.Bytes()) + 1
		if read > maxFile {
			return nil, fmt.Errorf("unifont: larger than %d bytes", maxFile)
		}
		if len(b) == 0 || b[0] == '#' {
			continue
		}
		cp, bits, ok := bytes.Cut(b, []byte{':'})
		if !ok || len(bits) != 32 && len(bits) != 64 {
			return nil, fmt.Errorf("unifont: line %d is not CODEPOINT:32 or 64 hex digits", line)
		}
		n, err := strconv.ParseUint(string(cp), 16, 32)
		if err != nil || n > 0x10FFFF {
			return nil, fmt.Errorf("unifont: line %d: bad code point %q", line, cp)
		}
		off := len(data)
		data = append(data, make([]byte, len(bits)/2)...)
		if _, err := hex.Decode(data[off:], bits); err != nil {
			return nil, fmt.Errorf("unifont: line %d: %v", line, err)
		}
		entries = append(entries, entry{rune(n), uint32(off), len(bits) / 2})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("unifont: line %d: %v", line+1, err)
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("unifont: no glyphs")
	}
	// Sorted by code point; a character's lines stay in file order, and the last is kept.
	slices.SortStableFunc(entries, func(a, b entry) int { return int(a.r - b.r) })
	f := &Font{data: make([]byte, 0, len(data))}
	for i, e := range entries {
		if i+1 < len(entries) && entries[i+1].r == e.r {
			continue // a later line gives the same character again
		}
		f.runes = append(f.runes, e.r)
		f.off = append(f.off, uint32(len(f.data)))
		f.data = append(f.data, data[e.off:e.off+uint32(e.n)]...)
	}
	f.off = append(f.off, uint32(len(f.data)))
	return f, nil
}

// Glyph returns r's glyph, and false when the font has none.
func (f *Font) Glyph(r rune) (Glyph, bool) {
	i, ok := slices.BinarySearch(f.runes, r)
	if !ok {
		return Glyph{}, false
	}
	rows := f.data[f.off[i]:f.off[i+1]]
	return Glyph{Wide: len(rows) == 2*Height, Rows: rows}, true
}

// Len is the number of characters the font has.
func (f *Font) Len() int { return len(f.runes) }

// File is a .hex font on disk, read the first time it is asked for and kept: a daemon that
// never prints a character its printer's pages lack never reads it.
type File struct {
	path string
	once sync.Once
	font *Font
	err  error
}

// Open returns the font at path, reading nothing yet.
func Open(path string) *File { return &File{path: path} }

// Path is the file's path.
func (f *File) Path() string { return f.path }

// Font reads and parses the file the first time it is called, and returns the same font or
// error on every call after it.
func (f *File) Font() (*Font, error) {
	f.once.Do(func() {
		fh, err := os.Open(f.path)
		if err != nil {
			f.err = fmt.Errorf("glyph font: %w", err)
			return
		}
		defer fh.Close()
		if f.font, err = Parse(bufio.NewReaderSize(fh, 64<<10)); err != nil {
			f.err = fmt.Errorf("glyph font %s: %w", f.path, err)
		}
	})
	return f.font, f.err
}
