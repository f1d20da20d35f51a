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

	tx      *secupay.Transaction // secupay's answer, or the transaction read back
	callErr error                // this walk's start/cash error
	v       verdict              // the last read-back's
}

// next is the state machine: the step after ev, for rec as journaled now.
func next(rec *Record, ev event, w walk) step {
	switch ev {
	case asked, resumed:
		return nextFor(rec, ev)
	case sentCaptured, readCaptured:
		return stepRecord
	case sentNotSent:
		return stepUnreachable
	case sentRefused, sentInDoubt:
		return stepReadBack
	case readEnded, readNotCaptured, readInDoubt:
		return nextAfterRead(ev, w)
	}
	panic("capture: no step for the event")
}

// nextFor is where a walk starts: from the record alone.
func nextFor(rec *Record, ev event) step {
	switch {
	case rec.inDoubt():
		return stepReadBack // nothing is sent before an earlier start/cash is settled
	case ev == asked && rec.Phase == PhaseCaptured:
		return stepAnswer
	case ev == asked:
		return stepSend // new, refused or not captured: asking again is allowed
	case rec.Phase == PhaseCaptured && !rec.Spooled:
		return stepSpool
	}
	return stepDone
}

// nextAfterRead is the step after a read-back that found no capture.
func nextAfterRead(ev event, w walk) step {
	switch {
	case w.refusal != nil && ev != readInDoubt:
		return stepRefuse // the refusal is proven
	case !w.asked:
		return stepDone // the resolver answers nobody; a doubt waits for its next pass
	case ev == readInDoubt:
		return stepInDoubt
	case ev == readNotCaptured && !w.sent:
		return stepSend // an older doubt is settled: this request may send its own
	}
	return stepNotCaptured
}

// drive walks rec from ev until the walk has an answer (a POS request) or nothing more to do
// (the resolver). It must hold the transaction's claim.
func (s *Service) drive(ctx context.Context, log *zap.Logger, rec *Record, ev event) (*Result, error) {
	w := walk{asked: ev == asked}
	replayed := ev == asked && rec.Phase == PhaseCaptured
	for {
		switch st := next(rec, ev, w); st {
		case stepSend:
			var err error
			if ev, err = s.send(ctx, log, rec, &w); err != nil {
				return nil, err
			}
		case stepReadBack:
			ev = s.read(ctx, log, rec, &w)
		case stepRecord:
			if err := s.recordCaptured(log, rec, w.tx); err != nil {
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
		case stepDone:
			if !rec.unfinished() {
				s.track(rec.TransactionID, false)
			}
			return nil, nil
		default:
			return nil, s.refusedOrInDoubt(st, log, rec, &w)
		}
	}
}

// send is stepSend: this walk's start/cash (attempt.go).
func (s *Service) send(ctx context.Context, log *zap.Logger, rec *Record, w *walk) (event, error) {
	w.sent, w.refusal = true, nil
	tx, callErr, ev, err := s.attempt(ctx, log, rec)
	if err != nil {
		return 0, err
	}
	w.tx, w.callErr = tx, callErr
	if ev == sentRefused {
		var se *secupay.Error
		errors.As(callErr, &se)
		r := refusalOf(se)
		w.refusal = &r
	}
	return ev, nil
}

// read is stepReadBack (settle.go). Right after this walk's own call the read-back finishes
// even if the POS went away, so that the journal learns the outcome now.
func (s *Service) read(ctx context.Context, log *zap.Logger, rec *Record, w *walk) event {
	if w.sent {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), readBackTimeout)
		defer cancel()
	}
	w.v = s.readBack(ctx, log, rec, *w)
	w.tx = w.v.tx
	return w.v.event
}

// refusedOrInDoubt is the POS's answer at the steps that end a walk without a capture.
func (s *Service) refusedOrInDoubt(st step, log *zap.Logger, rec *Record, w *walk) error {
	switch st {
	case stepUnreachable:
		s.notSent(log, rec, w.callErr)
		return errUnreachable(rec.TransactionID, w.callErr)
	case stepRefuse:
		return s.refuse(log, rec, *w.refusal)
	case stepNotCaptured:
		if w.v.err != nil {
			return w.v.err
		}
		return &RefusedError{TransactionID: rec.TransactionID, Refusal: *rec.Refusal}
	case stepInDoubt:
		return s.inDoubt(w.v, *w, w.callErr)
	}
	panic("capture: no answer for the step")
}
