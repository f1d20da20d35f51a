package api

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ecrd-pos/ecrd/profile"
	"github.com/ecrd-pos/ecrd/receipt"
	"github.com/ecrd-pos/ecrd/spool"
)

const previewJob = "STX_A.receipt"

// previewOf is Preview as the daemon wires it (cmd/ecrd's previewer) for one job: the seed's
// and the international receipt's lines on a TM-T20III, so bold, double height and several
// code pages are drawn.
func previewOf(t *testing.T) (preview func(io.Writer, string) error, alone []byte) {
	t.Helper()
	var lines []receipt.Line
	for _, name := range []string{"seed", "intl"} {
		data, err := os.ReadFile(filepath.Join("..", "testdata", "receipts", name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		ls, err := receipt.Decode(data)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, ls...)
	}
	prof, err := profile.Lookup("TM-T20III")
	if err != nil {
		t.Fatal(err)
	}
	job, err := receipt.Render(lines, receipt.Options{Profile: prof})
	if err != nil {
		t.Fatal(err)
	}
	if alone, err = receipt.JobPNG(job, prof); err != nil {
		t.Fatal(err)
	}
	return func(w io.Writer, id string) error {
		if id != previewJob {
			return spool.ErrNotFound
		}
		return receipt.WriteJobPNG(w, job, prof)
	}, alone
}

// TestPreviewsAtOnceThroughTheHandler asks the real handler, over HTTP, for one job's
// preview 8 times at once (run with -race): every answer is a 200 with the picture drawn
// alone. With one font face shared by all previews, some were 500s with "index out of
// range" and others a different picture.
func TestPreviewsAtOnceThroughTheHandler(t *testing.T) {
	preview, alone := previewOf(t)
	stub := &stubs{}
	srv := httptest.NewServer(Handler(Config{Capture: stub, Lines: stub, Spool: stub, Preview: preview}))
	t.Cleanup(srv.Close)

	const n = 8
	type answer struct {
		status int
		ctype  string
		body   []byte
		err    error
	}
	answers := make([]answer, n)
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			resp, err := srv.Client().Get(srv.URL + "/v1/jobs/" + previewJob + "/preview.png")
			if err != nil {
				answers[i].err = err
				return
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			answers[i] = answer{resp.StatusCode, resp.Header.Get("Content-Type"), body, err}
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
	for i, a := range answers {
		switch {
		case a.err != nil:
			t.Errorf("preview %d: %v", i, a.err)
		case a.status != http.StatusOK || a.ctype != "image/png":
			t.Errorf("preview %d: %d %s: %.200s", i, a.status, a.ctype, a.body)
		case !bytes.Equal(a.body, alone):
			t.Errorf("preview %d: %d bytes that are not the picture drawn alone (%d bytes)", i, len(a.body), len(alone))
		}
	}
}

// TestPreviewsTakeSlots: previewsAtOnce previews are drawn at once; one more waits for a slot
// and, when its client gives up first, is answered 503 busy without being drawn. The slots
// are the previews' own: a POS receipt still goes through.
func TestPreviewsTakeSlots(t *testing.T) {
	entered := make(chan struct{}, previewsAtOnce+1)
	release := make(chan struct{})
	var drawn atomic.Int32
	stub := &stubs{}
	h := Handler(Config{Capture: stub, Lines: stub, Spool: stub, Preview: func(w io.Writer, id string) error {
		drawn.Add(1)
		entered <- struct{}{}
		<-release
		_, err := w.Write([]byte("\x89PNG\r\n\x1a\n"))
		return err
	}})
	path := "http://ecrd/v1/jobs/" + previewJob + "/preview.png"
	var wg sync.WaitGroup
	codes := make([]int, previewsAtOnce)
	for i := range previewsAtOnce {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
			codes[i] = w.Code
		}()
	}
	released := false
	defer func() {
		if !released {
			close(release)
		}
		wg.Wait()
	}()
	for range previewsAtOnce {
		<-entered
	}

	// The slots are full: a preview whose client has gone can only give up.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	answered := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", path, nil).WithContext(ctx))
		answered <- w
	}()
	select {
	case <-entered:
		t.Fatalf("a preview was drawn beyond the %d slots", previewsAtOnce)
	case w := <-answered:
		if w.Code != http.StatusServiceUnavailable || !bytes.Contains(w.Body.Bytes(), []byte(`"code":"busy"`)) {
			t.Errorf("a preview with no slot: %d %s, want 503 busy", w.Code, w.Body.Bytes())
		}
	}
	w, out := serve(t, h, "POST", "/v1/receipts", `[{"type":"space"}]`)
	if w.Code != http.StatusOK {
		t.Errorf("a POS receipt while previews are drawn: %d %v", w.Code, out)
	}

	close(release)
	released = true
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Errorf("preview %d in a slot: %d", i, c)
		}
	}
	if got := drawn.Load(); got != previewsAtOnce {
		t.Errorf("%d previews drawn, want %d", got, previewsAtOnce)
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
	if w.Code != http.StatusOK {
		t.Errorf("a preview after the slots were given back: %d", w.Code)
	}
}

// TestPreviewErrors: an error before the picture's first byte is answered in JSON (404 for a
// job that is gone, 500 otherwise); one after it cuts the connection, so that the client
// sees a broken answer rather than a 200 with half a PNG it might take for a whole one.
func TestPreviewErrors(t *testing.T) {
	preview, _ := previewOf(t)
	stub := &stubs{}
	h := Handler(Config{Capture: stub, Lines: stub, Spool: stub, Preview: preview})
	if w, out := serve(t, h, "GET", "/v1/jobs/STX_GONE.receipt/preview.png", ""); w.Code != 404 || errCode(out) != "not_found" {
		t.Errorf("a job that is gone: %d %v", w.Code, out)
	}
	broken := Handler(Config{Capture: stub, Lines: stub, Spool: stub, Preview: func(io.Writer, string) error {
		return errors.New("receipt: cannot draw command 1b 58 at byte 3")
	}})
	if w, out := serve(t, broken, "GET", "/v1/jobs/"+previewJob+"/preview.png", ""); w.Code != 500 || errCode(out) != "internal" {
		t.Errorf("a job that cannot be drawn: %d %v", w.Code, out)
	}

	midway := Handler(Config{Capture: stub, Lines: stub, Spool: stub, Preview: func(w io.Writer, _ string) error {
		if _, err := w.Write(bytes.Repeat([]byte{0x89}, 64<<10)); err != nil {
			return err
		}
		return errors.New("the disk went away")
	}})
	srv := httptest.NewServer(midway)
	t.Cleanup(srv.Close)
	resp, err := srv.Client().Get(srv.URL + "/v1/jobs/" + previewJob + "/preview.png")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Errorf("a preview that failed after %d bytes ended as if whole (%d)", len(body), resp.StatusCode)
	}
}

// busyPreviewHandler is a handler whose preview slots are all taken, answering requests whose
// client has already given up: what a preview beyond the slots hears.
func busyPreviewHandler(t *testing.T) http.Handler {
	release := make(chan struct{})
	entered := make(chan struct{}, previewsAtOnce)
	stub := &stubs{}
	h := Handler(Config{Capture: stub, Lines: stub, Spool: stub, Preview: func(io.Writer, string) error {
		entered <- struct{}{}
		<-release
		return nil
	}})
	var wg sync.WaitGroup
	t.Cleanup(func() { close(release); wg.Wait() })
	for range previewsAtOnce {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "http://ecrd/v1/jobs/"+previewJob+"/preview.png", nil))
		}()
		<-entered
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r.WithContext(ctx)) })
}

// TestWorstPreviewLimits: receipt's BenchmarkPreviewTallReceipt and its memory measurement
// draw the tallest receipt POST /v1/receipts accepts, one separator whose caption fills the
// body; receipt's tests cannot import api, so they copy its limits. Such a receipt is
// accepted, one character more is not, and the limits are the ones copied.
func TestWorstPreviewLimits(t *testing.T) {
	if MaxReceiptsBody != 4<<20 || MaxReceiptLines != 10000 {
		t.Fatalf("the receipt limits changed: update acceptedBody and acceptedLines in receipt/png_bench_test.go")
	}
	head, tail := `[{"type":"separator","value":{"caption":"`, `"}}]`
	n := (MaxReceiptsBody - len(head) - len(tail)) / len("‰")
	h := (&stubs{}).handler()
	if w, out := serve(t, h, "POST", "/v1/receipts", head+strings.Repeat("‰", n)+tail); w.Code != http.StatusOK {
		t.Errorf("the worst receipt: %d %v", w.Code, out)
	}
	if w, out := serve(t, h, "POST", "/v1/receipts", head+strings.Repeat("‰", n+1)+tail); w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("the worst receipt and one character more: %d %v", w.Code, out)
	}
}
