package receipt

import (
	"runtime"
	"strings"
	"testing"
)

// The largest receipt POST /v1/receipts accepts: api.MaxReceiptsBody and api.MaxReceiptLines
// (receipt's tests may not import api, which links printer; api's TestWorstPreviewLimits
// fails if those change without these).
const (
	acceptedBody  = 4 << 20
	acceptedLines = 10000
)

// worstAcceptedJob is the job of the receipt POST /v1/receipts accepts whose picture is the
// tallest: one separator whose caption fills the body. A caption is printed at double height
// (54 rows a line, the most any line takes), a text wraps at the columns whatever its
// spaces, and "‰", three bytes of JSON, is transliterated to four characters ("o/oo") on a
// page without it, cp858's included: 1.4 million of them are 5.6 million characters, which
// at 48 columns are 116,000 lines, a picture 6.3 million rows tall (3.8 gigapixels, where a
// 10,000-line receipt of the usual kind is 468,000 rows). Fewer columns make it taller still:
// at --columns 16, the least ecrd allows, three times.
func worstAcceptedJob(tb testing.TB, opt Options) []byte {
	tb.Helper()
	head, tail := `[{"type":"separator","value":{"caption":"`, `"}}]`
	body := head + strings.Repeat("‰", (acceptedBody-len(head)-len(tail))/len("‰")) + tail
	lines, err := DecodeLimited([]byte(body), acceptedLines)
	if err != nil {
		tb.Fatal(err)
	}
	job, err := Render(lines, opt)
	if err != nil {
		tb.Fatal(err)
	}
	return job
}

// BenchmarkPreviewTallReceipt writes the preview of the worst receipt the API accepts
// (worstAcceptedJob, on the generic 80 mm printer) and reports, besides time and B/op (all
// the preview allocates), the heap's peak above where it started, sampled as the PNG is
// written (peak-heap-B), the PNG's size and the picture's height.
func BenchmarkPreviewTallReceipt(b *testing.B) {
	job := worstAcceptedJob(b, Options{})
	p, err := newPicture(job, nil)
	if err != nil {
		b.Fatal(err)
	}
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
	b.ReportMetric(float64(p.Bounds().Dy()), "rows")
}
