package receipt

import (
	"bytes"
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
