package capture

import (
	"context"
	"errors"
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

// verdict is what a read-back settled.
type verdict struct {
	event event                // readCaptured, readEnded, readNotCaptured or readInDoubt
	tx    *secupay.Transaction // the transaction as read, when it settled
	err   error                // why, for readEnded (*RefusedError) and readInDoubt (*InDoubtError)
}

// readBack reads the transaction back and decides by the in-doubt rule, journaling what it
// decides (as notes: a lost one is decided again). It is the one place that does, for the
// POS's requests and the resolver alike. A refusal of this walk's own start/cash, the
// transaction's first, proves secupay is not working on it: see settleRead.
func (s *Service) readBack(ctx context.Context, log *zap.Logger, rec *Record, w walk) verdict {
	return s.settleRead(ctx, log, rec, w.refusal != nil)
}

// settleRead is readBack; quiet says secupay cannot be working on a start/cash of ours: the
// call just made was refused. Then a capturable status settles at once — for a transaction's
// first call only (see below).
func (s *Service) settleRead(ctx context.Context, log *zap.Logger, rec *Record, quiet bool) verdict {
	id := rec.TransactionID
	doubt := func(reason string, retry time.Duration, err error) verdict {
		return verdict{event: readInDoubt, err: &InDoubtError{TransactionID: id, Reason: reason, RetryAfter: retry,
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
		return verdict{event: readCaptured, tx: tx}

	case st.Final():
		log.Info("settled: read back as ended without a capture", zap.String("status", string(st)))
		r := Refusal{HTTPStatus: 200, Status: string(st)}
		rec.Phase, rec.Refusal, rec.Doubt = PhaseNotCaptured, &r, ""
		if err := s.putUnflushed(rec); err != nil {
			log.Error("journal write failed", zap.Error(err))
		}
		return verdict{event: readEnded, err: &RefusedError{TransactionID: id, Refusal: r}}

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
		return verdict{event: readNotCaptured, tx: tx}
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
// receipts were not spooled yet are spooled, and captures in doubt are settled by reading
// the transaction back. It never
// sends start/cash. Call it once at start.
func (s *Service) Resume(ctx context.Context) { s.Resolve(ctx) }

// Prune prunes finished records older than KeepFinished on the steady clock; a captured one
// keeps its id, trans_id and payment method (Journal.PruneFinished). The daemon runs it in the background a while after start, so that a
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

// Resolve works once through the unfinished transactions (see Resume): those the journal's
// index lists, and those this life knows of whose record the disk did not take.
func (s *Service) Resolve(ctx context.Context) {
	ids, err := s.cfg.Journal.Unfinished()
	if err != nil {
		s.log.Error("journal: unfinished captures cannot be listed; the resolver tries again", zap.Error(err))
	}
	for _, id := range ids {
		s.track(id, true)
	}
	s.mu.Lock()
	ids = make([]string, 0, len(s.unfinished))
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
	s.drive(ctx, log, rec, resumed)
}

// spoolResumed commits the receipts of a captured record whose receipts were not spooled
// (the disk refused them, or an older ecrd journaled the answer alone), for the resolver.
func (s *Service) spoolResumed(log *zap.Logger, rec *Record) {
	tx, err := answerOf(rec)
	if err != nil {
		log.Error("resume: stored answer unreadable", zap.Error(err))
		s.track(rec.TransactionID, false) // retrying cannot mend it; the record stays for a technician
		return
	}
	if err := s.commitReceipts(log, rec, tx, false); err != nil {
		log.Error("resume: receipt not spooled; will retry", zap.Error(err))
		return
	}
	log.Info("resume: receipt spooled")
}

// inDoubt is the POS's answer for a capture still in doubt after v: with this walk's own
// start/cash error and secupay's words, when it had them.
func (s *Service) inDoubt(v verdict, w walk, callErr error) error {
	e := v.err.(*InDoubtError)
	if w.sent && w.refusal == nil {
		e.NoAnswer = true
		e.Err = errors.Join(callErr, e.Err)
	}
	if r := secupaySaid(callErr); r != nil {
		e.Secupay = r // this call's words come before the read-back's
	}
	return e
}
