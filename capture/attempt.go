package capture

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/ecrd-pos/ecrd/internal/crashpoint"
	"github.com/ecrd-pos/ecrd/secupay"
)

// attempt sends start/cash once, after journaling the intent with a flush, and says what
// came of it as an event (secupay.Classify) — the only place that sends start/cash. An answer
// in doubt is noted in the journal before it returns; err is a storage error that stopped
// the call from being made.
func (s *Service) attempt(ctx context.Context, log *zap.Logger, rec *Record) (*secupay.Transaction, error, event, error) {
	id := rec.TransactionID
	rec.Phase = PhaseIntent
	rec.Attempts++
	clock := s.cfg.Journal.Clock()
	rec.Sent, rec.SentAt, rec.Clock = clock.Wall().UTC(), clock.Now(), clock.Epoch()
	rec.Refusal, rec.Doubt = nil, ""
	if err := s.putFlushed(rec); err != nil {
		// Without the intent on disk a crash could not be settled safely: do not call secupay.
		log.Error("journal write failed; capture not attempted", zap.Error(err))
		return nil, nil, 0, fmt.Errorf("capture %s: %w: %w", id, ErrStorage, err)
	}
	crashpoint.Hit("before-start")
	log.Info("capture started", zap.Int("attempt", rec.Attempts))
	tx, err := s.cfg.Secupay.CaptureCash(ctx, id)
	crashpoint.Hit("after-answer")

	switch secupay.Classify(err) {
	case secupay.Captured:
		return tx, nil, sentCaptured, nil
	case secupay.NotSent:
		return nil, err, sentNotSent, nil
	case secupay.Refused:
		// A refusal must prove itself before the POS hears it: secupay's answer to a second
		// start/cash of a captured transaction is undocumented ("already completed" in a
		// documented error body has been seen), and an earlier start/cash of this id may have
		// captured. The read-back tells a refusal from a capture.
		log.Warn("start/cash refused; reading the transaction back before believing it", zap.Error(err))
		return nil, err, sentRefused, nil
	}
	// In doubt: record it, then read back at once — secupay often has the answer by now.
	rec.Phase, rec.Doubted, rec.Doubt = PhaseInDoubt, true, err.Error()
	if perr := s.putUnflushed(rec); perr != nil {
		log.Error("journal write failed", zap.Error(perr)) // the intent on disk says as much
		s.track(id, true)
	}
	log.Warn("capture in doubt, reading the transaction back", zap.Error(err))
	return nil, err, sentInDoubt, nil
}

// notSent notes that the start/cash could not be sent (no connection, no token): nothing was
// captured, and asking again is safe.
func (s *Service) notSent(log *zap.Logger, rec *Record, callErr error) {
	rec.Phase = PhaseNotCaptured
	rec.Refusal = &Refusal{Error: "not_sent", ErrorDetails: callErr.Error()}
	if err := s.putUnflushed(rec); err != nil {
		// The intent stays on disk: the resolver will read the transaction back.
		log.Error("journal write failed", zap.Error(err))
	}
	log.Warn("start/cash not sent; nothing captured", zap.Error(callErr))
}

func errUnreachable(id string, callErr error) error {
	return fmt.Errorf("capture %s: %w: %w", id, ErrUnreachable, callErr)
}
