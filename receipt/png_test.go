package receipt

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	xdraw "golang.org/x/image/draw"
	"golang.org/x/image/font"
	"golang.org/x/image/math/fixed"

	"github.com/ecrd-pos/ecrd/profile"
)

// TestGoldenPNG draws the seed and the international receipt for each golden profile (and the
// seed for the generic 80 mm printer) and compares the pictures pixel by pixel with
// NAME.MODEL.png (-update rewrites them; look at them).
func TestGoldenPNG(t *testing.T) {
	type tc struct{ name, model string }
	cases := []tc{{"seed", "generic"}}
	for _, m := range goldenProfiles {
		cases = append(cases, tc{"seed", m}, tc{"intl", m})
	}
	for _, c := range cases {
		t.Run(c.name+"."+c.model, func(t *testing.T) {
			prof, err := profile.Lookup(c.model)
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(filepath.Join(goldenDir, c.name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			lines, err := Decode(data)
			if err != nil {
				t.Fatal(err)
			}
			job, err := Render(lines, Options{Profile: prof})
			if err != nil {
				t.Fatal(err)
			}
			got, err := DrawJob(job, prof)
			if err != nil {
				t.Fatal(err)
			}
			if prof.WidthDots > 0 && got.Bounds().Dx() != prof.WidthDots+2*paperEdge {
				t.Errorf("picture is %d dots wide, want the profile's %d plus the paper edges", got.Bounds().Dx(), prof.WidthDots)
			}
			path := filepath.Join(goldenDir, c.name+"."+c.model+".png")
			if *update {
				var buf bytes.Buffer
				if err := png.Encode(&buf, got); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			f, err := os.Open(path)
			if errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%s is missing; run go test ./receipt -update", path)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			want, err := png.Decode(f)
			if err != nil {
				t.Fatal(err)
			}
			if n, at := pixelDiff(got, want); n > 0 {
				t.Errorf("%s: %d pixels differ (first at %v; sizes %v and %v); run go test ./receipt -update and look at it",
					path, n, at, got.Bounds(), want.Bounds())
			}
			// The preview's PNG, drawn a strip at a time, is the golden file byte for byte.
			golden, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var streamed bytes.Buffer
			if err := WriteJobPNG(&streamed, job, prof); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(streamed.Bytes(), golden) {
				t.Errorf("%s: WriteJobPNG wrote %d bytes that are not the golden file's %d", path, streamed.Len(), len(golden))
			}
		})
	}
}

// pixelDiff counts the pixels whose grey level differs, and where the first one is.
func pixelDiff(a *image.Gray, b image.Image) (int, image.Point) {
	if a.Bounds() != b.Bounds() {
		return a.Bounds().Dx() * a.Bounds().Dy(), a.Bounds().Min
	}
	n, first := 0, image.Point{}
	for y := a.Bounds().Min.Y; y < a.Bounds().Max.Y; y++ {
		for x := a.Bounds().Min.X; x < a.Bounds().Max.X; x++ {
			r1, _, _, _ := a.At(x, y).RGBA()
			r2, _, _, _ := b.At(x, y).RGBA()
			if r1 != r2 {
				if n == 0 {
					first = image.Pt(x, y)
				}
				n++
			}
		}
	}
	return n, first
}

// TestDrawJobReadsWhatRenderWrites: bold and double height change the picture, the drawer
// kick draws nothing, and a command the drawer does not know is an error, not a guess.
func TestDrawJobReadsWhatRenderWrites(t *testing.T) {
	plain, err := Render([]Line{text("Summe 7,96 €")}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	bold, err := Render([]Line{text("Summe 7,96 €", "important")}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := DrawJob(plain, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := DrawJob(bold, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := pixelDiff(a, b); n == 0 {
		t.Error("bold text draws the same as plain")
	}
	kicked, err := DrawJob(append(append([]byte{}, plain...), DrawerKick(0)...), nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := pixelDiff(a, kicked); n != 0 {
		t.Errorf("the drawer kick changed %d pixels", n)
	}
	lines, end, err := readJob(plain, nil)
	if err != nil || end != endPartial || len(lines) != 2 || string(runesOf(lines[0].cells)) != "Summe 7,96 €" {
		t.Fatalf("readJob = %v, %v, %v", lines, end, err)
	}
	for _, bad := range [][]byte{{0x1B, 'X', 1}, {0x1D, '(', 'k'}, {0x1B, 't'}} {
		if _, err := DrawJob(bad, nil); err == nil || !strings.Contains(err.Error(), "receipt:") {
			t.Errorf("DrawJob(% x) = %v, want an error", bad, err)
		}
	}
}

func runesOf(cells []drawnCell) []rune {
	var rs []rune
	for _, c := range cells {
		rs = append(rs, c.r)
	}
	return rs
}

// TestPictureIsTheWholeImage: the picture drawn a strip at a time is, pixel for pixel and
// as PNG byte for byte, what ecrd drew as one image before previews were streamed
// (wholeDrawJob below, kept as it was): every golden receipt on both papers and on a profile
// with several code pages (TestGoldenPNG pins the rest), the big receipt (sixty lines on
// paper, fifteen wider than it), and jobs Render does not make (a feed in the middle of a
// line, a page the profile lacks, no lines at all).
func TestPictureIsTheWholeImage(t *testing.T) {
	type tc struct {
		name string
		job  []byte
		prof *profile.Profile
	}
	var cases []tc
	tm88, err := profile.Lookup("TM-T88V") // 42 columns, several code pages
	if err != nil {
		t.Fatal(err)
	}
	inputs, err := filepath.Glob(filepath.Join(goldenDir, "*.json"))
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	render := func(name string, lines []Line, opt Options) {
		job, err := Render(lines, opt)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		cases = append(cases, tc{name, job, opt.Profile})
	}
	for _, in := range inputs {
		data, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := Decode(data)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(filepath.Base(in), ".json")
		render(name+".80mm", lines, Options{Columns: 48})
		render(name+".58mm.full", lines, Options{Columns: 32, Cut: CutFull})
		render(name+".TM-T88V", lines, Options{Profile: tm88})
	}
	render("big-60.TM-T88V", bigReceipt()[:60], Options{Profile: tm88})
	render("big-15.255cols", bigReceipt()[:15], Options{Columns: 255})
	cases = append(cases,
		tc{"feed-mid-line", []byte("ab\x1b\x64\x02cd\n\x1bE\x01ef\x1d!\x01gh\nij"), nil},
		tc{"unknown-page", []byte("\x1bt\x63\xe4\xfc\n\x1d\x56\x41\x03"), nil},
		tc{"drawer-kick", append([]byte("x\n\x1dV\x00"), DrawerKick(0)...), nil},
		tc{"no-lines", []byte("\x1b@"), nil},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want, err := wholeDrawJob(c.job, c.prof)
			if err != nil {
				t.Fatal(err)
			}
			var wantPNG, gotPNG bytes.Buffer
			if err := png.Encode(&wantPNG, want); err != nil {
				t.Fatal(err)
			}
			if err := WriteJobPNG(&gotPNG, c.job, c.prof); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(gotPNG.Bytes(), wantPNG.Bytes()) {
				t.Errorf("WriteJobPNG wrote %d bytes, not the whole image's %d", gotPNG.Len(), wantPNG.Len())
			}
			got, err := DrawJob(c.job, c.prof)
			if err != nil {
				t.Fatal(err)
			}
			if n, at := pixelDiff(got, want); n > 0 {
				t.Errorf("DrawJob: %d pixels differ from the whole image's (first at %v; sizes %v and %v)", n, at, got.Bounds(), want.Bounds())
			}
			// image.Image allows any order: rows asked for bottom up are right too (each one
			// reads the job again from the top, so only a dozen of them).
			p, err := newPicture(c.job, c.prof)
			if err != nil {
				t.Fatal(err)
			}
			b := want.Bounds()
			for y := b.Max.Y - 1; y >= b.Min.Y; y -= max(1, b.Dy()/12) {
				for x := b.Min.X; x < b.Max.X; x++ {
					if g, w := p.GrayAt(x, y), want.GrayAt(x, y); g != w {
						t.Fatalf("pixel (%d, %d) asked for bottom up is %v, want %v", x, y, g, w)
					}
				}
			}
		})
	}
	for _, bad := range [][]byte{{0x1B, 'X', 1}, {0x1D, '(', 'k'}, {0x1B, 't'}, bytes.Repeat([]byte("x"), maxColumns+1)} {
		if err := WriteJobPNG(new(bytes.Buffer), bad, nil); err == nil || !strings.Contains(err.Error(), "receipt:") {
			t.Errorf("WriteJobPNG(% .8x) = %v, want an error", bad, err)
		}
	}
}

// TestPreviewsDrawnAtOnceAreTheSame draws one job in 8 goroutines at once (run with -race):
// each picture must be the one drawn alone. With one font.Face shared by every preview the
// race detector objects, and without it the pictures came out garbled or panicked.
func TestPreviewsDrawnAtOnceAreTheSame(t *testing.T) {
	var lines []Line
	for _, name := range []string{"seed", "intl"} {
		data, err := os.ReadFile(filepath.Join(goldenDir, name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		ls, err := Decode(data)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, ls...)
	}
	prof, err := profile.Lookup("TM-T20III")
	if err != nil {
		t.Fatal(err)
	}
	job, err := Render(lines, Options{Profile: prof})
	if err != nil {
		t.Fatal(err)
	}
	var alone bytes.Buffer
	if err := WriteJobPNG(&alone, job, prof); err != nil {
		t.Fatal(err)
	}
	const n = 8
	pics := make([]bytes.Buffer, n)
	errs := make([]error, n)
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			defer func() {
				if v := recover(); v != nil {
					errs[i] = fmt.Errorf("panic: %v", v)
				}
			}()
			ready.Done()
			<-start
			errs[i] = WriteJobPNG(&pics[i], job, prof)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("picture %d: %v", i, errs[i])
		} else if !bytes.Equal(pics[i].Bytes(), alone.Bytes()) {
			t.Errorf("picture %d drawn alongside others (%d bytes) is not the one drawn alone (%d bytes)", i, pics[i].Len(), alone.Len())
		}
	}
}

// TestTallPreviewMemoryIsBounded: a preview's memory does not grow with the receipt. The
// 10,000-line big receipt is a picture 468,000 rows tall (285 MB as one image, which is
// what a preview allocated before); streamed, everything it allocates while drawing and
// encoding must fit in a few MiB, no more than a 100-line receipt's plus a little, and the
// heap, sampled as the PNG is written, must stay as small. Under the race detector, which
// makes every pixel thirty times slower and has no goroutines to watch here, the tall
// receipt is 1,000 lines: still ten times the short one.
func TestTallPreviewMemoryIsBounded(t *testing.T) {
	short, err := Render(bigReceipt()[:100], Options{Columns: 48})
	if err != nil {
		t.Fatal(err)
	}
	n, rows := 10000, 400000
	if raceDetector {
		n, rows = 1000, 40000
	}
	tall, err := Render(bigReceipt()[:n], Options{Columns: 48})
	if err != nil {
		t.Fatal(err)
	}
	measure := func(job []byte) (alloc uint64, w *heapSampler) {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		w = &heapSampler{every: 16, base: before.HeapInuse}
		if err := WriteJobPNG(w, job, nil); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc, w
	}
	shortAlloc, _ := measure(short)
	tallAlloc, w := measure(tall)
	p, err := newPicture(tall, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%v picture: %d KiB allocated (100 lines: %d KiB), heap at most %d KiB above its start, %d KiB of PNG",
		p.Bounds().Size(), tallAlloc>>10, shortAlloc>>10, w.peak>>10, w.n>>10)
	if p.Bounds().Dy() < rows {
		t.Fatalf("the big receipt is only %d rows tall; the test needs a tall one", p.Bounds().Dy())
	}
	const bound = 4 << 20
	if tallAlloc > bound || tallAlloc > shortAlloc+256<<10 {
		t.Errorf("the tall preview allocated %d KiB (the short one %d KiB): more than %d KiB, or growing with the receipt",
			tallAlloc>>10, shortAlloc>>10, bound>>10)
	}
	if w.peak > 2*bound {
		t.Errorf("the heap grew by %d KiB while the tall preview was written", w.peak>>10)
	}
}

// heapSampler is an io.Writer that counts what is written and, every so many writes, how far
// the heap is above where it started.
type heapSampler struct {
	every, writes int
	n             int
	base, peak    uint64
}

func (h *heapSampler) Write(b []byte) (int, error) {
	h.n += len(b)
	if h.writes++; h.writes%h.every == 1 {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		if m.HeapInuse > h.base {
			h.peak = max(h.peak, m.HeapInuse-h.base)
		}
	}
	return len(b), nil
}

// wholeDrawJob is DrawJob as it was before previews were drawn a strip at a time, kept as the
// reference the strips must match: the whole job read into lines, one image as tall as the
// paper. Its faces are its own, so the references may be drawn at once too.
func wholeDrawJob(job []byte, prof *profile.Profile) (*image.Gray, error) {
	if err := loadFonts(); err != nil {
		return nil, err
	}
	regular, err := newFace(regularFont)
	if err != nil {
		return nil, err
	}
	boldFace, err := newFace(boldFont)
	if err != nil {
		return nil, err
	}
	lines, end, err := wholeReadJob(job, prof)
	if err != nil {
		return nil, err
	}
	dots := defaultDot
	if prof != nil && prof.WidthDots > 0 {
		dots = prof.WidthDots
	}
	height := paperEdge
	widest := 0
	for _, ln := range lines {
		height += pitch(ln)
		widest = max(widest, len(ln)*cellW)
	}
	dots = max(dots, widest)
	height += 2 * paperEdge
	img := image.NewGray(image.Rect(0, 0, dots+2*paperEdge, height))
	draw.Draw(img, img.Bounds(), image.NewUniform(paperWhite), image.Point{}, draw.Src)

	cell := image.NewGray(image.Rect(0, 0, cellW, cellH))
	y := paperEdge
	for _, ln := range lines {
		h := pitch(ln) - (linePitch - cellH)
		for i, c := range ln {
			if c.r == ' ' {
				continue
			}
			draw.Draw(cell, cell.Bounds(), image.NewUniform(paperWhite), image.Point{}, draw.Src)
			face := regular
			if c.bold {
				face = boldFace
			}
			d := font.Drawer{Dst: cell, Src: image.NewUniform(ink), Face: face, Dot: fixed.P(0, faceAscent)}
			d.DrawString(string(c.r))
			x := paperEdge + i*cellW
			if c.tall {
				xdraw.NearestNeighbor.Scale(img, image.Rect(x, y, x+cellW, y+h), cell, cell.Bounds(), draw.Src, nil)
			} else {
				draw.Draw(img, image.Rect(x, y+h-cellH, x+cellW, y+h), cell, image.Point{}, draw.Src)
			}
		}
		y += pitch(ln)
	}
	drawEnd(img, y+paperEdge/2, end)
	return img, nil
}

// wholeReadJob is readJob as it was: every line in memory, a feed appended at once. It reuses
// the command table (jobReader.step), which the strips read with too, but not line's
// bookkeeping of line feeds, feeds and partial lines.
func wholeReadJob(job []byte, prof *profile.Profile) (lines [][]drawnCell, end paperEnd, err error) {
	r := newJobReader(job, prof)
	for i := 0; i < len(job); {
		if job[i] == '\n' {
			lines = append(lines, r.cur)
			r.cur = nil
			i++
			continue
		}
		n, err := r.step(i)
		if err != nil {
			return nil, 0, err
		}
		for ; r.feeds > 0; r.feeds-- {
			lines = append(lines, nil)
		}
		i += n
	}
	if len(r.cur) > 0 {
		lines = append(lines, r.cur)
	}
	return lines, r.end, nil
}

// TestDrawJobDrawsPictures: a GS v 0 picture is drawn dot for dot where the printer prints
// it — at the paper's left edge, in its line's place — its double-height rows twice, and the
// lines after it stand a line pitch below, as after text.
func TestDrawJobDrawsPictures(t *testing.T) {
	opt := rasterOptions(t, "TM-T20III")
	job, err := Render([]Line{text("A収 bold", "important"), {Type: "separator", Value: Value{Caption: "収"}}, text("x")}, opt)
	if err != nil {
		t.Fatal(err)
	}
	img, err := DrawJob(job, opt.Profile)
	if err != nil {
		t.Fatal(err)
	}
	y := paperEdge
	rest := job
	for n, sy := range []int{1, 2} {
		i := bytes.Index(rest, []byte("\x1dv0"))
		if i < 0 || int(rest[i+3]) != 2*(sy-1) {
			t.Fatalf("picture %d: not found, or not m %d", n, 2*(sy-1))
		}
		stride, rows := int(rest[i+4]), int(rest[i+6])
		bits := rest[i+8 : i+8+stride*rows]
		if sy == 2 {
			y += linePitch // the headline's air above it
		}
		for r := range rows * sy {
			for x := range stride * 8 {
				on := bits[(r/sy)*stride+x/8]&(0x80>>(x%8)) != 0
				if got := img.GrayAt(paperEdge+x, y+r).Y == ink.Y; got != on {
					t.Fatalf("picture %d dot (%d, %d): inked %v, want %v", n, x, r, got, on)
				}
			}
		}
		// ESC J 6: blank paper to the end of the line pitch.
		for r := rows * sy; r < rows*sy+rasterGap; r++ {
			for x := range img.Bounds().Dx() {
				if img.GrayAt(x, y+r).Y != paperWhite.Y {
					t.Fatalf("picture %d: ink in the gap under it at (%d, %d)", n, x, y+r)
				}
			}
		}
		y += rows*sy + rasterGap
		rest = rest[i+8+stride*rows:]
	}
	// The rule under the headline, then "x", a text line at its place.
	strips, _, err := readJob(job, opt.Profile)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, s := range strips {
		if s.pic == nil && s.feed == 0 {
			texts = append(texts, string(runesOf(s.cells)))
		}
	}
	if strings.Join(texts, "|") != "|"+strings.Repeat("-", 48)+"|x|" {
		t.Errorf("text strips %q", texts)
	}
}

// TestPreviewWidthIsThePrinters: a picture is as wide as the printer's printable dots — 384
// for a 58 mm roll, 576 or 512 as the model says — plus the paper's edges.
func TestPreviewWidthIsThePrinters(t *testing.T) {
	for _, c := range []struct {
		prof *profile.Profile
		dots int
	}{
		{profile.Generic.OnPaper("58mm"), 384},
		{profile.Generic.OnPaper("80mm"), 576},
		{nil, 576},
		{mustProfile(t, "POS-5890"), 384},
		{mustProfile(t, "TM-T88V"), 512},
		{mustProfile(t, "TM-T20III"), 576},
	} {
		job, err := Render([]Line{text("x")}, Options{Profile: c.prof})
		if err != nil {
			t.Fatal(err)
		}
		img, err := DrawJob(job, c.prof)
		if err != nil {
			t.Fatal(err)
		}
		if w := img.Bounds().Dx(); w != c.dots+2*paperEdge {
			t.Errorf("%v: %d wide, want %d dots and the edges", c.prof, w, c.dots)
		}
	}
}

func mustProfile(t *testing.T, key string) *profile.Profile {
	t.Helper()
	p, err := profile.Lookup(key)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTallPictureIsDrawnInStrips: a picture taller than a strip (a job Render does not make) is
// drawn a strip at a time, the same as drawn whole, and a bad picture is an error.
func TestTallPictureIsDrawnInStrips(t *testing.T) {
	const stride, rows = 4, 200
	bits := make([]byte, stride*rows)
	for i := range bits {
		bits[i] = byte(i * 37)
	}
	job := append([]byte{0x1D, 'v', '0', 3, stride, 0, rows, 0}, bits...)
	job = append(job, "\x1bJ\xff\x1bJ\x10x\n"...)
	img, err := DrawJob(job, nil)
	if err != nil {
		t.Fatal(err)
	}
	for y := range rows * 2 {
		for x := range stride * 16 {
			on := bits[(y/2)*stride+x/16]&(0x80>>((x/2)%8)) != 0
			if got := img.GrayAt(paperEdge+x, paperEdge+y).Y == ink.Y; got != on {
				t.Fatalf("dot (%d, %d): %v, want %v", x, y, got, on)
			}
		}
	}
	if h := img.Bounds().Dy(); h != paperEdge+2*rows+255+16+linePitch+2*paperEdge {
		t.Errorf("height %d", h)
	}
	for _, bad := range [][]byte{
		[]byte("\x1dv0\x00\x04\x00\x02\x00\x00"),                           // truncated dots
		[]byte("x\x1dv0\x00\x01\x00\x01\x00\x00\n"),                        // beside text
		[]byte("\x1dv0\x00\x00\x00\x01\x00"),                               // empty
		[]byte("\x1dv0\x07\x01\x00\x01\x00\x00"),                           // no such mode
		append([]byte("\x1dv0\x00\x00\x02\x01\x00"), make([]byte, 512)...), // wider than any line
		[]byte("x\x1bJ\x06"),                                               // ESC J after text
	} {
		if _, err := DrawJob(bad, nil); err == nil || !strings.Contains(err.Error(), "receipt:") {
			t.Errorf("DrawJob(%q) = %v, want an error", bad, err)
		}
	}
}

// TestPreviewDrawsWhatGoMonoLacks: Vietnamese printed from a TCVN page is drawn from the glyph
// font where Go Mono has no glyph, never as Go Mono's empty box; without a font, as before.
func TestPreviewDrawsWhatGoMonoLacks(t *testing.T) {
	opt := rasterOptions(t, "TM-T20III")
	job, err := Render([]Line{text("Nguyễn")}, opt)
	if err != nil || bytes.Contains(job, []byte("\x1dv0")) {
		t.Fatalf("ễ is on a TCVN page of the TM-T20III: %q %v", job, err)
	}
	with, err := DrawJobFor(job, opt)
	if err != nil {
		t.Fatal(err)
	}
	without, err := DrawJob(job, opt.Profile)
	if err != nil {
		t.Fatal(err)
	}
	// Only the cell of ễ differs.
	n, at := pixelDiff(with, without)
	if n == 0 || at.X < paperEdge+4*cellW || at.X >= paperEdge+5*cellW {
		t.Errorf("%d pixels differ, first at %v: want ễ's cell, the fifth", n, at)
	}
	font, _ := testGlyphs.Font()
	g, _ := font.Glyph('ễ')
	want := image.NewGray(image.Rect(0, 0, cellW, cellH))
	draw.Draw(want, want.Bounds(), image.NewUniform(paperWhite), image.Point{}, draw.Src)
	drawUnifont(want, g, false)
	for y := range cellH {
		for x := range cellW {
			if want.GrayAt(x, y).Y == ink.Y != (with.GrayAt(paperEdge+4*cellW+x, paperEdge+y).Y == ink.Y) {
				t.Fatalf("ễ's cell at (%d, %d) is not Unifont's glyph", x, y)
			}
		}
	}
}
