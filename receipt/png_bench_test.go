package receipt

import (
	"encoding/binary"
	"errors"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ecrd-pos/ecrd/profile"
)

// The largest receipt POST /v1/receipts accepts: api.MaxReceiptsBody and api.MaxReceiptLines
// (receipt's tests may not import api, which links printer; api's TestWorstPreviewLimits
// fails if those change without these).
const (
	acceptedBody  = 4 << 20
	acceptedLines = 10000
)

// worstAcceptedJob is the job of the receipt POST /v1/receipts accepts whose picture is the
// tallest: one separator whose caption fills the body. A caption prints at double height (54
// rows a line, the most a line takes) and wraps at the columns whatever its spaces, so what
// decides is the character that takes the most columns for its bytes of JSON. Which one that
// is depends on the code pages and transliterations of the day (while cp858 lacked "‰", its
// three bytes printed as "o/oo"), so it is measured: every character of the BMP, 288 bytes
// of it in a caption, and the one whose picture is tallest wins ('x' unless another is).
// With today's tables no character beats ASCII: 4 MiB of it at 48 columns are 87,000 lines,
// 4.7 million rows, where a 10,000-line receipt of the usual kind is 468,000. Fewer columns
// make it taller still: at --columns 16, the least ecrd allows, three times.
func worstAcceptedJob(tb testing.TB, opt Options) []byte {
	tb.Helper()
	head, tail := `[{"type":"separator","value":{"caption":"`, `"}}]`
	job := func(caption string) []byte {
		lines, err := DecodeLimited([]byte(head+caption+tail), acceptedLines)
		if err != nil {
			tb.Fatal(err)
		}
		job, err := Render(lines, opt)
		if err != nil {
			tb.Fatal(err)
		}
		return job
	}
	worst, most := 'x', 0
	for r := rune('x'); r <= 0xFFFF; r = nextCandidate(r) {
		// The same bytes of each: 288 is 288 ASCII characters, 144 of two bytes, 96 of three.
		// A picture the preview cannot draw (an error, 0 rows) is no preview's worst.
		caption := strings.Repeat(string(r), 288/utf8.RuneLen(r))
		if rows := pictureRows(job(caption), opt.Profile); rows > most {
			worst, most = r, rows
		}
	}
	return job(strings.Repeat(string(worst), (acceptedBody-len(head)-len(tail))/utf8.RuneLen(worst)))
}

// nextCandidate is the character after r that a caption can hold as itself: JSON escapes
// cost more bytes, and control characters print nothing. From 'x' it goes on to the rest of
// printable ASCII, then the BMP beyond.
func nextCandidate(r rune) rune {
	for {
		switch r++; {
		case r == 0x7F:
			r = 0x20 // the rest of ASCII, after the space
		case r == 'x':
			r = 0x9F // done with ASCII
		case r == '"' || r == '\\' || (r >= 0x80 && r < 0xA0) || (r >= 0xD800 && r < 0xE000):
		default:
			return r
		}
	}
}

// pictureRows is the height of job's picture, or 0 if it cannot be drawn: WriteJobPNG into
// a writer that takes the PNG's signature and IHDR, and ends the encoding there.
func pictureRows(job []byte, prof *profile.Profile) int {
	var w pngHead
	if err := WriteJobPNG(&w, job, prof); !errors.Is(err, errHeadRead) {
		return 0
	}
	return int(binary.BigEndian.Uint32(w.b[20:24]))
}

type pngHead struct{ b []byte }

var errHeadRead = errors.New("the PNG's header is read")

func (h *pngHead) Write(p []byte) (int, error) {
	h.b = append(h.b, p...)
	if len(h.b) >= 24 {
		return 0, errHeadRead
	}
	return len(p), nil
}

// BenchmarkPreviewTallReceipt writes the preview of the worst receipt the API accepts
// (worstAcceptedJob, on the generic 80 mm printer) and reports, besides time and B/op (all
// the preview allocates), the heap's peak above where it started, sampled as the PNG is
// written (peak-heap-B), the PNG's size and the picture's height.
func BenchmarkPreviewTallReceipt(b *testing.B) {
	job := worstAcceptedJob(b, Options{})
	b.ReportAllocs()
	var peak uint64
	var size int
	for b.Loop() {
		b.StopTimer()
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		w := &heapSampler{every: 64, base: m.HeapInuse}
		b.StartTimer()
		if err := WriteJobPNG(w, job, nil); err != nil {
			b.Fatal(err)
		}
		peak, size = max(peak, w.peak), w.n
	}
	b.ReportMetric(float64(peak), "peak-heap-B")
	b.ReportMetric(float64(size), "png-B")
	b.ReportMetric(float64(len(job)), "job-B")
	b.ReportMetric(float64(pictureRows(job, nil)), "rows")
}
