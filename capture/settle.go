package capture

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"go.uber.org/zap"

	"github.com/ecrd-pos/ecrd/internal/steady"
	"github.com/ecrd-pos/ecrd/secupay"
)

// The in-doubt rule (docs/durability.md):
//
// Once a start/cash may have reached secupay without an answer that settles it, the
// transaction is in doubt. Only these settle it:
//   - a read-back showing it captured: record the answer, print the receipt;
//   - a read-back showing it ended without a capture (failed, cancelled): not captured;
//   - a read-back showing it still capturable (created, processing, approved) at least
//     InDoubtWait after the last start/cash was sent: secupay is not working on that call
//     any more, so it never captured. Not captured; the POS may try again.
//
// Anything else — the read-back fails, shows "pending" or a word ecrd does not know, or shows
// "created" within InDoubtWait of the call (secupay may still be processing it) — leaves it in
// doubt. No start/cash is sent while it is in doubt.
//
// A refusal must prove itself: only secupay's documented error body on a 4xx is one
// (secupay.Classify), and even that is believed only once the transaction reads back as not
// captured — a second start/cash of a captured transaction may be "refused" as already done.

type settledKind int

const (
	settledInDoubt     settledKind = iota
	settledCaptured                // tx holds the transaction as read
	settledNotCaptured             // still capturable, and no earlier call can be pending
	settledFinal                   // ended without a capture; err says how
)

type verdict struct {
	kind settledKind
	tx   *secupay.Transaction
	err  error // *InDoubtError or *RefusedError
}

// settle reads the transaction back and decides an in-doubt capture by the in-doubt rule,
// journaling what it decides. It is the one place that does, for the POS's requests, the
// start-up resume and the resolver alike.
func (s *Service) settle(ctx context.Context, log *zap.Logger, rec *Record) verdict {
	return s.settleRead(ctx, log, rec, false)
}

// settleRead is settle; quiet says secupay cannot be working on a start/cash of ours: the
// call just made was refused, or no call is known to have been sent. Then a capturable status
// settles at once — for a transaction's first call only (see below).
func (s *Service) settleRead(ctx context.Context, log *zap.Logger, rec *Record, quiet bool) verdict {
	id := rec.TransactionID
	doubt := func(reason string, retry time.Duration, err error) verdict {
		return verdict{kind: settledInDoubt, err: &InDoubtError{TransactionID: id, Reason: reason, RetryAfter: retry,
			Secupay: secupaySaid(err), Err: err}}
	}
	tx, err := s.cfg.Secupay.Transaction(ctx, id)
	if err != nil {
		log.Warn("capture in doubt: the transaction cannot be read back", zap.Error(err))
		return doubt("the transaction cannot be read back", 0, err)
	}
	st := tx.Status
	sent := rec.Sent
	if sent.IsZero() {
		sent = rec.Updated // journals written before Sent existed: the intent's write time
	}
	switch {
	case st.Captured():
		log.Info("settled: read back as captured", zap.String("status", string(st)))
		return verdict{kind: settledCaptured, tx: tx}

	case st.Final():
		log.Info("settled: read back as ended without a capture", zap.String("status", string(st)))
		r := Refusal{HTTPStatus: 200, Status: string(st)}
		rec.Phase, rec.Refusal, rec.Doubt = PhaseNotCaptured, &r, ""
		if err := s.putUnflushed(rec); err != nil {
			log.Error("journal write failed", zap.Error(err))
		}
		return verdict{kind: settledFinal, err: &RefusedError{TransactionID: id, Refusal: r}}

	case st.Capturable():
		// A refusal of this call proves secupay is not working on it — unless an earlier
		// call may still be in flight (a refusal such as "being processed" then speaks of
		// that one): the shortcut is for a transaction's first start/cash only.
		proven := quiet && rec.Attempts <= 1 && !rec.Doubted
		if wait := s.inDoubtLeft(rec); wait > 0 && !proven {
			log.Info("still in doubt: not captured yet, but secupay may still be working on the last start/cash",
				zap.String("status", string(st)), zap.Time("sent", sent), zap.Duration("in_doubt_for", wait))
			return doubt(fmt.Sprintf("secupay shows it %q, but may still be working on the start/cash sent at %s",
				st, sent.Format(time.RFC3339)), wait.Round(time.Second)+time.Second, nil)
		}
		log.Info("settled: read back as not captured", zap.String("status", string(st)), zap.Time("sent", sent))
		rec.Phase, rec.Doubt = PhaseNotCaptured, ""
		rec.Refusal = &Refusal{HTTPStatus: 200, Status: string(st),
			ErrorDetails: fmt.Sprintf("read back %q after the start/cash sent at %s", st, sent.Format(time.RFC3339))}
		if err := s.putUnflushed(rec); err != nil {
			log.Error("journal write failed", zap.Error(err))
		}
		return verdict{kind: settledNotCaptured, tx: tx}
	}
	log.Warn("still in doubt: secupay's status settles nothing", zap.String("status", string(st)))
	return doubt(fmt.Sprintf("secupay shows it %q", st), 0, nil)
}

// inDoubtLeft is how much longer secupay may still be working on rec's last start/cash: the
// in-doubt wait less the time since the call, measured on the steady clock (internal/steady),
// so that no step of the wall clock, forward or back, can shorten it. It counts from the
// later of the call and the record's last change (the doubt noted when the answer was lost):
// one damaged stamp cannot shorten it. A record without steady times counts from when this
// life first found it in doubt.
func (s *Service) inDoubtLeft(rec *Record) time.Duration {
	clock := s.cfg.Journal.Clock()
	now := clock.Now()
	var sent steady.Instant
	if rec.Clock == clock.Epoch() {
		sent = max(rec.SentAt, rec.UpdatedAt)
	}
	if sent.IsZero() {
		s.mu.Lock()
		if _, ok := s.firstDoubted[rec.TransactionID]; !ok {
			s.firstDoubted[rec.TransactionID] = now
		}
		sent = s.firstDoubted[rec.TransactionID]
		s.mu.Unlock()
	}
	return s.cfg.InDoubtWait - now.Sub(sent)
}

// Resume finishes what a previous life of the daemon left: captured transactions whose
// receipts were not spooled yet are spooled, damaged receipt jobs are made again from the
// journal, and captures in doubt are settled by reading the transaction back. It never
// sends start/cash. Call it once at start.
func (s *Service) Resume(ctx context.Context) {
	recs, errs := s.cfg.Journal.All()
	for _, err := range errs {
		s.log.Error("journal record unreadable; its capture is in doubt until read back", zap.Error(err))
		if id, ok := recordID(err); ok {
			s.track(id, true)
		}
	}
	for _, rec := range recs {
		if rec.unfinished() {
			s.track(rec.TransactionID, true)
			continue
		}
		// A finished record where unfinished ones live: journaled by an older ecrd, which
		// kept all records in one directory. Move it, so the next start does not read it.
		if err := s.cfg.Journal.move(rec); err != nil {
			s.log.Warn("journal: finished record not moved", zap.String("transaction_id", rec.TransactionID), zap.Error(err))
		}
	}
	s.Resolve(ctx)
}

// Prune prunes finished records older than KeepFinished on the steady clock; a captured one
// leaves its line in the paid index (Journal.PruneFinished). The daemon runs it in the background a while after start, so that a
// start never waits for the till's history.
func (s *Service) Prune() {
	if s.cfg.KeepFinished <= 0 {
		return
	}
	n, err := s.cfg.Journal.PruneFinished(s.cfg.KeepFinished, s.tryClaim)
	if err != nil {
		s.log.Warn("journal: prune", zap.Error(err))
	}
	if n > 0 {
		s.log.Info("journal: finished records pruned", zap.Int("records", n), zap.Duration("older_than", s.cfg.KeepFinished))
	}
}

// Unfinished returns how many transactions wait for their outcome or their receipt.
func (s *Service) Unfinished() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.unfinished)
}

// Resolve works once through the unfinished transactions (see Resume), and remakes receipt
// jobs the spool had to set aside.
func (s *Service) Resolve(ctx context.Context) {
	s.remakeDamaged(ctx)
	s.mu.Lock()
	ids := make([]string, 0, len(s.unfinished))
	for id := range s.unfinished {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	for _, id := range ids {
		if ctx.Err() != nil {
			return
		}
		s.resumeOne(ctx, id)
	}
}

// RunResolver calls Resolve every interval until ctx ends, so that a capture answered
// "in doubt" to the POS, or a receipt the disk could not take, is settled without waiting
// for the POS to ask again or for a restart.
func (s *Service) RunResolver(ctx context.Context, interval time.Duration) {
	for {
		// Each wait is drawn from [interval/2, 3·interval/2): the same mean, but a fleet of
		// tills restarted together after an outage does not read secupay in lockstep.
		t := time.NewTimer(interval/2 + rand.N(interval))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
			s.Resolve(ctx)
		}
	}
}

func (s *Service) resumeOne(ctx context.Context, id string) {
	if s.begin(ctx, id, true) != nil {
		return // a POS request is on it
	}
	defer s.end(id)
	log := s.log.With(zap.String("transaction_id", id))
	rec, err := s.load(id)
	if err != nil {
		log.Error("resume: journal", zap.Error(err))
		return
	}
	if rec.inDoubt() {
		v := s.settle(ctx, log, rec)
		switch v.kind {
		case settledInDoubt:
			return // tried again on the next pass
		case settledCaptured:
			if err := s.recordCaptured(log, rec, v.tx); err != nil {
				return
			}
		default:
			s.track(id, false)
			return
		}
	}
	if rec.Phase != PhaseCaptured {
		s.track(id, rec.unfinished())
		return
	}
	if tx, err := answerOf(rec); err != nil {
		log.Error("resume: stored answer unreadable", zap.Error(err))
		s.track(id, false) // retrying cannot mend it; the record stays for a technician
	} else if !rec.Spooled {
		if err := s.commitReceipts(log, rec, tx); err != nil {
			log.Error("resume: receipt not spooled; will retry", zap.Error(err))
			return
		}
		log.Info("resume: receipt spooled")
	} else {
		s.track(id, false)
	}
}
