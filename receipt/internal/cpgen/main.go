// Command cpgen writes receipt/codepages_gen.go: a table for every single-byte code page that
// escpos-printer-db names with a published mapping, so that ecrd can print in every page a
// printer has, not only the ones golang.org/x/text happens to implement.
//
// Where each table comes from, so that a reviewer can check it:
//
//   - a page the database gives an iconv name for (CP737, CP857, CP869, ISO_8859-7, …) is read
//     from glibc's iconv, one byte at a time: `iconv -f NAME -t UTF-8` of the bytes 0x20-0x7E and
//     0x80-0xFF, each on a line of its own, and checked by converting the answer back;
//   - a page with only a Python codec name is read from iconv by the page's own name where glibc
//     knows it (CP858);
//   - a page that carries its own `data` table in the database (KATAKANA, TCVN-3-1, CP3011, …)
//     is that table: 8 strings of 16 characters for 0x80-0xFF, a space meaning "no character".
//
// Left out, with the reason written into the generated file: double-byte pages (CP932), pages
// whose 0x20-0x7E is not ASCII (EBCDIC CP871, CP864's Arabic percent sign), and pages glibc does
// not know with no table of their own (CP720, the unimplemented Star pages).
//
// Run by `go generate ./receipt` from the package directory; iconv must be on PATH (glibc's, on
// every Debian system).
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"go/format"
	"log"
	"os"
	"os/exec"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

type dbFile struct {
	Encodings map[string]dbEncoding `json:"encodings"`
}

type dbEncoding struct {
	Name   string   `json:"name"`
	Iconv  string   `json:"iconv"`
	Python string   `json:"python_encode"`
	Data   []string `json:"data"`
}

// doubleByte are pages whose bytes 0x81-0x9F and 0xE0-0xFC lead two-byte characters: ESC t
// selects only their single-byte half, and ecrd does not switch a printer into Kanji mode.
var doubleByte = map[string]bool{"CP932": true}

// ecrdName is the spelling --codepage and the error messages use.
func ecrdName(db string) string {
	if db == "CP1252" {
		return "wpc1252" // Epson's name, the one ecrd has always shown
	}
	return strings.ToLower(strings.ReplaceAll(db, "_", ""))
}

type page struct {
	db, name, source string
	high             [128]rune // 0x80-0xFF; 0: no character
	rtl              bool
}

type skipped struct{ db, why string }

func main() {
	in := flag.String("in", "../profile/data/capabilities.json", "escpos-printer-db capabilities.json")
	out := flag.String("out", "codepages_gen.go", "Go file to write")
	flag.Parse()
	data, err := os.ReadFile(*in)
	if err != nil {
		log.Fatal(err)
	}
	var db dbFile
	if err := json.Unmarshal(data, &db); err != nil {
		log.Fatalf("%s: %v", *in, err)
	}
	keys := make([]string, 0, len(db.Encodings))
	for k := range db.Encodings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var pages []page
	var left []skipped
	for _, k := range keys {
		p, why := build(k, db.Encodings[k])
		if why != "" {
			left = append(left, skipped{k, why})
			continue
		}
		pages = append(pages, p)
	}
	src, err := format.Source(write(pages, left))
	if err != nil {
		log.Fatalf("generated source does not parse: %v", err)
	}
	if err := os.WriteFile(*out, src, 0o644); err != nil {
		log.Fatal(err)
	}
}

// build reads one page, or says why it is left out.
func build(key string, e dbEncoding) (page, string) {
	p := page{db: key, name: ecrdName(key)}
	switch {
	case key == "Unknown":
		return p, "a placeholder for slots nobody has identified"
	case doubleByte[key]:
		return p, "a double-byte page (Shift JIS): ecrd prints single-byte pages only"
	case len(e.Data) > 0:
		if err := p.fromData(e.Data); err != nil {
			log.Fatalf("%s: %v", key, err)
		}
		p.source = "the database's data table"
	case e.Iconv != "" || e.Python != "":
		name := e.Iconv
		if name == "" {
			name = key // the database names only a Python codec; glibc may know the page by its name
		}
		err := p.fromIconv(name)
		var notASCII errNotASCII
		switch {
		case errors.Is(err, errUnknownToIconv):
			return p, fmt.Sprintf("glibc iconv does not know %s (the database names only the Python codec %s)", name, e.Python)
		case errors.As(err, &notASCII):
			return p, string(notASCII)
		case err != nil:
			log.Fatalf("%s: %v", key, err)
		}
		p.source = "iconv " + name
	default:
		return p, "no published mapping in the database"
	}
	for _, r := range p.high {
		if unicode.In(r, unicode.Hebrew, unicode.Arabic, unicode.Syriac, unicode.Thaana) {
			p.rtl = true
		}
	}
	return p, ""
}

// fromData reads the database's own table: 8 strings of 16 characters for 0x80-0xFF.
func (p *page) fromData(rows []string) error {
	if len(rows) != 8 {
		return fmt.Errorf("data has %d rows, want 8", len(rows))
	}
	i := 0
	for _, row := range rows {
		if n := utf8.RuneCountInString(row); n != 16 {
			return fmt.Errorf("data row %q has %d characters, want 16", row, n)
		}
		for _, r := range row {
			if r != ' ' && !unicode.IsControl(r) {
				p.high[i] = r
			}
			i++
		}
	}
	return nil
}

// notASCII names the first byte of want that iconv read as something else.
func notASCII(name string, want, got []byte) error {
	for i, b := range want {
		if i >= len(got) || got[i] != b {
			r, _ := utf8.DecodeRune(got[i:])
			return errNotASCII(fmt.Sprintf("not ASCII: glibc's %s reads byte %#02x as %q", name, b, r))
		}
	}
	return errNotASCII(fmt.Sprintf("not ASCII: glibc's %s reads 0x20-0x7E and LF as %d bytes", name, len(got)))
}

var errUnknownToIconv = errors.New("unknown to iconv")

type errNotASCII string

func (e errNotASCII) Error() string { return string(e) }

// fromIconv decodes 0x20-0x7E and 0x80-0xFF with iconv, each byte on a line of its own (-c
// drops a byte the page does not define, leaving its line empty), then encodes the answers
// back and insists on the same bytes.
func (p *page) fromIconv(name string) error {
	var in bytes.Buffer
	for b := 0x20; b <= 0xFF; b++ {
		if b != 0x7F {
			in.Write([]byte{byte(b), '\n'})
		}
	}
	var ascii []byte
	for b := byte(0x20); b < 0x7F; b++ {
		ascii = append(ascii, b)
	}
	ascii = append(ascii, '\n')
	// Without -c: with it, glibc's iconv does not say that it does not know a page.
	got, err := iconv(ascii, "-f", name, "-t", "UTF-8")
	if err != nil {
		return err
	}
	if !bytes.Equal(got, ascii) {
		return notASCII(name, ascii, got)
	}
	out, err := iconv(in.Bytes(), "-c", "-f", name, "-t", "UTF-8")
	if err != nil {
		return err
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != 0xFF-0x20 {
		return fmt.Errorf("iconv gave %d lines for %d bytes", len(lines), 0xFF-0x20)
	}
	var back bytes.Buffer
	for i, line := range lines {
		b := 0x20 + i
		if b >= 0x7F {
			b++
		}
		r, size := utf8.DecodeRuneInString(line)
		if len(line) > size {
			return fmt.Errorf("byte %#02x decodes to %q, more than one character", b, line)
		}
		if b < 0x7F {
			if line != string(rune(b)) {
				return errNotASCII(fmt.Sprintf("not ASCII: byte %#02x is %q in glibc's %s", b, line, name))
			}
			continue
		}
		if line == "" || unicode.IsControl(r) {
			continue
		}
		p.high[b-0x80] = r
		back.WriteString(line)
	}
	// Every character read must encode back to its own byte.
	enc, err := iconv(back.Bytes(), "-f", "UTF-8", "-t", name)
	if err != nil {
		return fmt.Errorf("encoding back: %w", err)
	}
	var want []byte
	for i, r := range p.high {
		if r != 0 {
			want = append(want, byte(0x80+i))
		}
	}
	if !bytes.Equal(enc, want) {
		return fmt.Errorf("encoding back gives % x, want % x", enc, want)
	}
	return nil
}

// iconv runs iconv with args on in. With -c, iconv exits 1 when it dropped a byte: that is
// expected, but an unknown page is an error.
func iconv(in []byte, args ...string) ([]byte, error) {
	cmd := exec.Command("iconv", args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	msg := stderr.String()
	switch {
	case strings.Contains(msg, "not supported") || strings.Contains(msg, "unsupported") ||
		strings.Contains(msg, "failed to start conversion"):
		return nil, fmt.Errorf("%w: %s", errUnknownToIconv, strings.TrimSpace(msg))
	case err != nil && !(args[0] == "-c" && cmd.ProcessState != nil && cmd.ProcessState.ExitCode() == 1):
		return nil, fmt.Errorf("iconv %v: %v: %s", args, err, msg)
	}
	return stdout.Bytes(), nil
}

func write(pages []page, left []skipped) []byte {
	var b bytes.Buffer
	b.WriteString(`// Code generated by receipt/internal/cpgen from ../profile/data/capabilities.json; DO NOT EDIT.

// The single-byte code pages escpos-printer-db names, as tables of their bytes 0x80-0xFF (0:
// the page has no character there; 0x00-0x7F are ASCII on every page here). Where each comes
// from is its source: glibc's iconv, or the table escpos-printer-db carries itself (by the
// escpos-printer-db contributors, https://github.com/receipt-print-hq/escpos-printer-db,
// CC BY 4.0; ../profile/data/LICENSE.md). Regenerate with go generate ./receipt.
//
// Pages the database names that have no table here, and why:
`)
	for _, s := range left {
		fmt.Fprintf(&b, "//   - %s: %s\n", s.db, s.why)
	}
	b.WriteString("\npackage receipt\n\nvar generatedPages = [...]generatedPage{\n")
	for _, p := range pages {
		fmt.Fprintf(&b, "\t{db: %q, name: %q, source: %q, rtl: %t, high: [128]rune{\n", p.db, p.name, p.source, p.rtl)
		for row := 0; row < 8; row++ {
			b.WriteString("\t\t")
			for col := 0; col < 16; col++ {
				fmt.Fprintf(&b, "0x%04X, ", p.high[row*16+col])
			}
			fmt.Fprintf(&b, "// 0x%02X\n", 0x80+row*16)
		}
		b.WriteString("\t}},\n")
	}
	b.WriteString("}\n")
	return b.Bytes()
}
