package capture

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"sync"

	"go.uber.org/zap"

	"github.com/ecrd-pos/ecrd/spool"
)

// Errors of ReprintJob (the API maps them to HTTP statuses).
var (
	// ErrNoJob: the spool knows no job of that id (never made, or printed so long ago that
	// its row was forgotten).
	ErrNoJob = errors.New("no such print job")
	// ErrJobBytesGone: the job printed and its bytes are not kept — a POS's own receipt
	// (POST /v1/receipts): ecrd keeps no copy of what the POS sent once it is on paper.
	ErrJobBytesGone = errors.New("the job printed and its bytes are not kept: only a capture's receipts can be printed again after they printed")
)

// copySuffix matches the ".copy-N" a job's copy is named with (ReprintJob).
var copySuffix = regexp.MustCompile(`(\.copy-[0-9]+)+$`)

// copyMu makes choosing a copy's number and queueing it one step: two copies asked for at
// once must not both take ".copy-1" (the spool would keep the first and drop the second as
// a repeat of it).
var copyMu sync.Mutex

// ReprintJob prints the bytes of job id once more, as a new job of kind "reprint" with no
// drawer pulse, whatever the original carried. The bytes are the queued job's own, or — once
// it has printed — a capture's receipt, merchant copy or reprint rendered again from the
// journal's stored answer (JobBytes). The copy is named after the original: id + ".copy-N",
// N one more than the copies the spool remembers; a copy of a copy is a copy of its original.
// It waits up to PrintWait for the copy to print, as Reprint does, and answers the copy's job
// and the original's transaction (none for a POS's own receipt).
//
// Errors: ErrNoJob for an unknown job; ErrJobBytesGone for a POS's own receipt that printed;
// ErrReceiptPruned for a capture's job whose record was pruned (--journal-keep); ErrStorage
// when the state database failed.
func (s *Service) ReprintJob(ctx context.Context, id string) (*Result, error) {
	orig, err := s.cfg.Spool.Job(id)
	if errors.Is(err, spool.ErrNotFound) {
		return nil, fmt.Errorf("reprint job %s: %w", id, ErrNoJob)
	}
	if err != nil {
		return nil, fmt.Errorf("reprint job %s: %w: %w", id, ErrStorage, err)
	}
	base := copySuffix.ReplaceAllString(id, "")
	data, err := s.JobBytes(id)
	switch {
	case errors.Is(err, spool.ErrNotFound):
		if orig.TransactionID != "" {
			if rec, jerr := s.cfg.Journal.Get(orig.TransactionID); jerr == nil && rec.Pruned {
				return nil, fmt.Errorf("reprint job %s: %w", id, ErrReceiptPruned)
			}
		}
		return nil, fmt.Errorf("reprint job %s: %w", id, ErrJobBytesGone)
	case err != nil:
		return nil, fmt.Errorf("reprint job %s: %w: %w", id, ErrStorage, err)
	case len(data) == 0:
		return nil, fmt.Errorf("reprint job %s: %w", id, ErrJobBytesGone)
	}

	copyMu.Lock()
	copyID, err := s.nextCopy(base)
	if err == nil {
		if _, aerr := s.cfg.Spool.Add(spool.Job{ID: copyID, TransactionID: orig.TransactionID, Kind: "reprint", Data: data}); aerr != nil {
			err = fmt.Errorf("%w: %w", ErrStorage, aerr)
		}
	}
	copyMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("reprint job %s: %w", id, err)
	}
	s.log.Info("job reprinted", zap.String("job", copyID), zap.String("of", id), zap.String("transaction_id", orig.TransactionID))
	return &Result{TransactionID: orig.TransactionID, Status: "ok", Job: s.jobResult(ctx, copyID, "", s.cfg.PrintWait)}, nil
}

// nextCopy names the next copy of job base: base.copy-N for the first N the spool does not
// know. Call it with copyMu held.
func (s *Service) nextCopy(base string) (string, error) {
	for n := 1; ; n++ {
		id := base + ".copy-" + strconv.Itoa(n)
		if !spool.ValidJobID(id) {
			return "", fmt.Errorf("a copy of %s cannot be named: %s is not a job id (at most 128 bytes)", base, id)
		}
		_, err := s.cfg.Spool.Job(id)
		if errors.Is(err, spool.ErrNotFound) {
			return id, nil
		}
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrStorage, err)
		}
	}
}
