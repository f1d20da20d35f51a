package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/ecrd-pos/ecrd/capture"
	"github.com/ecrd-pos/ecrd/spool"
	"go.uber.org/zap"
)

// The print jobs: one job, the newest ones, a job printed again, a job's picture.

func (h *handler) job(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !spool.ValidJobID(id) {
		writeError(w, http.StatusBadRequest, "invalid_id", "invalid job id", nil)
		return
	}
	in, err := h.cfg.Spool.Job(id)
	if err != nil {
		writeError(w, http.StatusNotFound, "not_found", err.Error(), nil)
		return
	}
	writeJSON(w, http.StatusOK, jobOf(in))
}

// jobs lists the newest jobs, queued or printed, newest first: what `ecrd jobs` shows.
func (h *handler) jobs(w http.ResponseWriter, r *http.Request) {
	limit := DefaultJobsLimit
	if vs, ok := r.URL.Query()["limit"]; ok {
		n, err := strconv.Atoi(vs[0])
		if len(vs) != 1 || err != nil || n < 1 || n > MaxJobsLimit {
			writeError(w, http.StatusBadRequest, "bad_request",
				fmt.Sprintf("limit must be one whole number from 1 to %d, not %q", MaxJobsLimit, strings.Join(vs, ",")), nil)
			return
		}
		limit = n
	}
	infos, err := h.cfg.Jobs.Recent(limit)
	if err != nil {
		h.log.Error("api: list jobs", zap.Error(err))
		writeError(w, http.StatusInternalServerError, "storage", err.Error(), nil)
		return
	}
	out := JobList{Jobs: make([]Job, 0, len(infos))}
	for _, in := range infos {
		out.Jobs = append(out.Jobs, jobOf(in))
	}
	writeJSON(w, http.StatusOK, out)
}

// reprintJob prints a job once more as a new job: a technician's or a POS's "print that
// again", by the job's id, for any job whose bytes ecrd still has. Never a drawer pulse.
func (h *handler) reprintJob(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !spool.ValidJobID(id) {
		writeError(w, http.StatusBadRequest, "invalid_id", "invalid job id", nil)
		return
	}
	if _, ok := readBody(w, r, MaxCaptureBody); !ok {
		return
	}
	ctx, cancel := h.detached(r)
	defer cancel()
	res, err := h.cfg.Reprinter.ReprintJob(ctx, id)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, JobReprint{Status: "ok", ReprintOf: id, TransactionID: res.TransactionID,
			Job: jobResultOf(res.Job)})
	case errors.Is(err, capture.ErrNoJob):
		writeError(w, http.StatusNotFound, "not_found", err.Error(), nil)
	case errors.Is(err, capture.ErrJobBytesGone):
		writeError(w, http.StatusGone, "job_bytes_gone", err.Error(), nil)
	case errors.Is(err, capture.ErrReceiptPruned):
		writeError(w, http.StatusGone, "receipt_pruned", err.Error(), nil)
	case errors.Is(err, capture.ErrStorage):
		writeError(w, http.StatusInternalServerError, "storage", err.Error(), nil)
	default:
		h.log.Error("api: unexpected error", zap.String("job", id), zap.Error(err))
		writeError(w, http.StatusInternalServerError, "internal", err.Error(), nil)
	}
}

// preview answers a job's picture: what a POS developer or technician looks at instead of
// wasting paper. A preview waits for a slot as a POS receipt does (previewsAtOnce), and gives
// up only when its client does.
func (h *handler) preview(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !spool.ValidJobID(id) {
		writeError(w, http.StatusBadRequest, "invalid_id", "invalid job id", nil)
		return
	}
	select {
	case h.previewSlots <- struct{}{}:
		defer func() { <-h.previewSlots }()
	case <-r.Context().Done():
		writeError(w, http.StatusServiceUnavailable, "busy", "other previews are being drawn; try again", nil)
		return
	}
	pw := &pngWriter{w: w}
	err := h.cfg.Preview(pw, id)
	switch {
	case err != nil && pw.started:
		h.log.Warn("api: preview cut off", zap.String("job", id), zap.Error(err))
		panic(http.ErrAbortHandler) // the server closes the connection without ending the body
	case errors.Is(err, spool.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", err.Error(), nil)
	case err != nil:
		h.log.Error("api: preview", zap.String("job", id), zap.Error(err))
		writeError(w, http.StatusInternalServerError, "internal", err.Error(), nil)
	case !pw.started:
		pw.start() // nothing to draw is still an answer, if not a picture
	}
}

// pngWriter sends the 200 and the PNG's content type with the picture's first bytes, so
// that an error before them can still be answered with an error status.
type pngWriter struct {
	w       http.ResponseWriter
	started bool
}

func (p *pngWriter) start() {
	p.started = true
	p.w.Header().Set("Content-Type", "image/png")
	p.w.WriteHeader(http.StatusOK)
}

func (p *pngWriter) Write(b []byte) (int, error) {
	if !p.started {
		p.start()
	}
	return p.w.Write(b)
}
