package capture

import (
	"context"
	"errors"

	"go.uber.org/zap"

	"github.com/ecrd-pos/ecrd/secupay"
)

// The capture's state machine. A record's phase and what just happened to it decide the next
// step, in next and nowhere else; drive carries the steps out through the stages: attempt.go
// sends start/cash, settle.go reads the transaction back, print.go commits the receipts and
// answers. A POS request and the resolver walk the same table, so the in-doubt rule
// (docs/durability.md) has one home:
//
//   - nothing is sent while a start/cash may be unsettled: an intent or a doubt is read back
//     first, and only a read-back that proves nothing was captured lets a request send;
//   - a refusal is believed only when the read-back shows the transaction not captured;
//   - a captured record is never sent again, and its answer is journaled (with the receipts,
//     one flush) before anyone hears "captured".

// event is what just happened to a capture.
type event int

const (
	asked   event = iota // a POS asks to capture the transaction
	resumed              // the start-up resume or the resolver works on it
	// The start/cash's answer, as secupay.Classify puts it.
	sentCaptured // 200 and status "ok"
	sentNotSent  // the call could not be made: nothing left
	sentRefused  // a 4xx with secupay's documented error body: to be proven by a read-back
	sentInDoubt  // anything else (noted in the journal before the read-back)
	// The read-back's verdict (settle.go).
	readCaptured    // captured, or a later stage
	readEnded       // failed or cancelled: it never will be captured
	readNotCaptured // still capturable, and no start/cash of ours can still capture it
	readInDoubt     // anything else: the read failed, "pending", an unknown word, within the wait
)

// step is what the capture does next.
type step int

const (
	stepSend        step = iota // journal the intent (flushed), send start/cash
	stepReadBack                // read the transaction back
	stepRecord                  // journal secupay's answer with the receipts (flushed)
	stepSpool                   // the resolver commits the receipts of a captured record
	stepAnswer                  // answer "captured" (spooling the receipts first if they are not)
	stepUnreachable             // the POS hears: not sent, ask again
	stepRefuse                  // the refusal is proven: the POS hears "refused"
	stepNotCaptured             // settled without a capture: the POS hears why
	stepInDoubt                 // still in doubt: the POS hears so, the resolver tries later
	stepDone                    // the resolver has nothing more to do
)

// walk is what one request or resolver pass has seen so far.
type walk struct {
	asked   bool     // a POS request (else the resolver)
	sent    bool     // this walk sent a start/cash
	refusal *Refusal // this walk's start/cash was refused so, pending proof
}

// next is the state machine: the step after ev, for rec as journaled now.
func next(rec *Record, ev event, w walk) step {
	switch ev {
	case asked:
		switch {
		case rec.Phase == PhaseCaptured:
			return stepAnswer
		case rec.inDoubt():
			return stepReadBack
		}
		return stepSend // new, refused or not captured: asking again is allowed
	case resumed:
		switch {
		case rec.inDoubt():
			return stepReadBack
		case rec.Phase == PhaseCaptured && !rec.Spooled:
			return stepSpool
		}
		return stepDone
	case sentCaptured, readCaptured:
		return stepRecord
	case sentNotSent:
		return stepUnreachable
	case sentRefused, sentInDoubt:
		return stepReadBack
	case readEnded:
		switch {
		case w.refusal != nil:
			return stepRefuse
		case w.asked:
			return stepNotCaptured
		}
		return stepDone
	case readNotCaptured:
		switch {
		case w.refusal != nil:
			return stepRefuse
		case w.asked && !w.sent:
			return stepSend // an older doubt is settled: this request may send its own
		case w.asked:
			return stepNotCaptured
		}
		return stepDone
	case readInDoubt:
		if w.asked {
			return stepInDoubt
		}
		return stepDone
	}
	panic("capture: no step for the event")
}

// drive walks rec from ev until the walk has an answer (a POS request) or nothing more to do
// (the resolver). It must hold the transaction's claim.
func (s *Service) drive(ctx context.Context, log *zap.Logger, rec *Record, ev event) (*Result, error) {
	w := walk{asked: ev == asked}
	replayed := ev == asked && rec.Phase == PhaseCaptured
	var (
		tx      *secupay.Transaction // secupay's answer, or the transaction read back
		callErr error                // this walk's start/cash error
		v       verdict              // the last read-back's
	)
	for {
		switch next(rec, ev, w) {
		case stepSend:
			var err error
			w.sent, w.refusal = true, nil
			if tx, callErr, ev, err = s.attempt(ctx, log, rec); err != nil {
				return nil, err
			}
			if ev == sentRefused {
				var se *secupay.Error
				errors.As(callErr, &se)
				r := refusalOf(se)
				w.refusal = &r
			}
		case stepReadBack:
			rctx := ctx
			if w.sent {
				// Right after this walk's own call: the read-back finishes even if the POS
				// went away, so that the journal learns the outcome now.
				var cancel context.CancelFunc
				rctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), readBackTimeout)
				defer cancel()
			}
			v = s.readBack(rctx, log, rec, w)
			tx, ev = v.tx, v.event
		case stepRecord:
			if err := s.recordCaptured(log, rec, tx); err != nil {
				return nil, err
			}
			if !w.asked {
				return nil, nil
			}
			ev = asked // captured and spooled: the POS hears so
		case stepAnswer:
			if rec.Pruned {
				return s.finishPruned(ctx, log, rec), nil
			}
			return s.finish(ctx, log, rec, replayed)
		case stepSpool:
			s.spoolResumed(log, rec)
			return nil, nil
		case stepUnreachable:
			s.notSent(log, rec, callErr)
			return nil, errUnreachable(rec.TransactionID, callErr)
		case stepRefuse:
			return nil, s.refuse(log, rec, *w.refusal)
		case stepNotCaptured:
			if v.err != nil {
				return nil, v.err
			}
			return nil, &RefusedError{TransactionID: rec.TransactionID, Refusal: *rec.Refusal}
		case stepInDoubt:
			return nil, s.inDoubt(v, w, callErr)
		case stepDone:
			if !rec.unfinished() {
				s.track(rec.TransactionID, false)
			}
			return nil, nil
		}
	}
}
