package capture

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ecrd-pos/ecrd/internal/steady"
	"github.com/ecrd-pos/ecrd/secupay"
	"github.com/ecrd-pos/ecrd/spool"
	"github.com/ecrd-pos/ecrd/store"
)

// Phase is how far a capture got. The journal records the phase before and after every
// step whose outcome matters, so a restart knows what happened without guessing.
type Phase string

const (
	// PhaseIntent: start/cash is about to be (or was) sent; its outcome is not known.
	PhaseIntent Phase = "intent"
	// PhaseInDoubt: start/cash was sent and no answer settles it (timeout, cut connection,
	// 5xx, a 200 that is not a clean "ok"). Only reading the transaction back settles it,
	// and no other start/cash is sent until it is settled (settle.go).
	PhaseInDoubt Phase = "in_doubt"
	// PhaseCaptured: secupay answered 200 and "ok" (or a read-back showed it); Answer holds it.
	PhaseCaptured Phase = "captured"
	// PhaseRefused: secupay refused unambiguously; nothing was captured. A new attempt may be made.
	PhaseRefused Phase = "refused"
	// PhaseNotCaptured: settled without a refusal — nothing was sent, or a capture in doubt
	// was read back as not captured after the in-doubt wait. A new attempt may be made.
	PhaseNotCaptured Phase = "not_captured"
)

// Record is one transaction's line in the journal.
type Record struct {
	TransactionID string    `json:"transaction_id"`
	Phase         Phase     `json:"phase"`
	Attempts      int       `json:"attempts"` // start/cash calls sent
	Created       time.Time `json:"created"`
	Updated       time.Time `json:"updated"`
	// Sent is when the latest start/cash was sent (journaled just before it left), on the
	// wall clock: for people. A capture in doubt may still be worked on by secupay for a
	// while after it; settle measures that on SentAt, the steady clock's reading then.
	Sent   time.Time      `json:"sent,omitzero"`
	SentAt steady.Instant `json:"sent_steady,omitempty"`
	// UpdatedAt is Updated on the steady clock: pruning measures a record's age on it.
	UpdatedAt steady.Instant `json:"updated_steady,omitempty"`
	// Clock is the steady clock's epoch that SentAt and UpdatedAt were read on; readings of
	// another epoch (a clock whose mark was lost) compare with nothing and count as unknown.
	Clock string `json:"steady_clock,omitempty"`
	// Doubted is set once any start/cash of this transaction was in doubt: a technician's
	// hint. (No refusal is believed without a read-back anyway; see attempt.)
	Doubted bool            `json:"doubted,omitempty"`
	Doubt   string          `json:"doubt,omitempty"`  // why it is in doubt
	Answer  json.RawMessage `json:"answer,omitempty"` // secupay's whole answer, as received
	TransID string          `json:"trans_id,omitempty"`
	Refusal *Refusal        `json:"refusal,omitempty"`
	// Spooled is set once the receipt jobs are durable in the spool; until then a restart
	// (or a replayed request) renders and spools them again under the same job ids.
	Spooled  bool   `json:"spooled"`
	JobError string `json:"job_error,omitempty"` // why no receipt job could be made
	Reprints int    `json:"reprints"`
	// PaymentMethod is secupay's payment method of a captured transaction.
	PaymentMethod string `json:"payment_method,omitempty"`
	// Pruned: the record was pruned (Config.KeepFinished) and this is what is kept of a paid
	// capture: captured, with its trans_id and payment method, but without secupay's answer.
	Pruned bool `json:"pruned,omitempty"`
}

// inDoubt reports whether a start/cash of the record may have reached secupay unsettled.
func (r *Record) inDoubt() bool { return r.Phase == PhaseIntent || r.Phase == PhaseInDoubt }

// unfinished reports whether the record still needs work: an outcome to learn from
// secupay, or a receipt to put in the spool.
func (r *Record) unfinished() bool {
	return r.inDoubt() || r.Phase == PhaseCaptured && !r.Spooled
}

// Refusal is what secupay said when it refused a capture.
type Refusal struct {
	HTTPStatus   int    `json:"http_status"`
	Status       string `json:"status,omitempty"`
	Error        string `json:"error,omitempty"`
	ErrorUser    string `json:"error_user,omitempty"`
	ErrorDetails string `json:"error_details,omitempty"`
	Code         string `json:"code,omitempty"`
	SupportID    string `json:"support_id,omitempty"`
}

// Journal is the captures' side of the state database (package store): one row per
// transaction, written before every step whose outcome matters. It decides what the store
// keeps: which records are unfinished, what a prune drops, which commits are flushed.
type Journal struct {
	st    *store.Store
	clock *steady.Clock
}

// clockKey is the steady clock's mark in the store's meta table (internal/steady), written
// with every change to the journal, so that the next life's clock goes on from it.
const clockKey = "steady_clock"

// OpenJournal opens the journal in st. Its steady clock reads src (nil: the machine's) and
// goes on from the mark a previous life left.
func OpenJournal(st *store.Store, src steady.Source) (*Journal, error) {
	if src == nil {
		src = steady.System()
	}
	mark, err := st.Meta(clockKey)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("journal: %w", err)
	}
	return &Journal{st: st, clock: steady.New(src, mark)}, nil
}

// Clock is the journal's steady clock: the in-doubt wait and pruning are measured on it.
func (j *Journal) Clock() *steady.Clock { return j.clock }

var errNoRecord = errors.New("journal: no record")

// Get returns the record of transaction id, errNoRecord, or a storage error (store.ErrCorrupt
// when SQLite finds the database damaged).
func (j *Journal) Get(id string) (*Record, error) {
	c, err := j.st.Capture(id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNoRecord
	}
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	return recordOf(c)
}

func recordOf(c *store.Capture) (*Record, error) {
	r := &Record{TransactionID: c.ID, Phase: Phase(c.Phase), Attempts: c.Attempts, Created: c.Created,
		Updated: c.Updated, Sent: c.Sent, SentAt: steady.Instant(c.SentSteady), UpdatedAt: steady.Instant(c.UpdatedSteady),
		Clock: c.SteadyClock, Doubted: c.Doubted, Doubt: c.Doubt, Answer: c.Answer, TransID: c.TransID,
		PaymentMethod: c.PaymentMethod, Spooled: c.Spooled, JobError: c.JobError, Reprints: c.Reprints, Pruned: c.Pruned}
	if len(c.Refusal) > 0 {
		r.Refusal = new(Refusal)
		if err := json.Unmarshal(c.Refusal, r.Refusal); err != nil {
			return nil, fmt.Errorf("journal: refusal of %s: %w", c.ID, err)
		}
	}
	return r, nil
}

func rowOf(r *Record) *store.Capture {
	c := &store.Capture{ID: r.TransactionID, Phase: string(r.Phase), Unfinished: r.unfinished(), Attempts: r.Attempts,
		Created: r.Created, Updated: r.Updated, Sent: r.Sent, SentSteady: int64(r.SentAt), UpdatedSteady: int64(r.UpdatedAt),
		SteadyClock: r.Clock, Doubted: r.Doubted, Doubt: r.Doubt, Answer: r.Answer, TransID: r.TransID,
		PaymentMethod: r.PaymentMethod, Spooled: r.Spooled, JobError: r.JobError, Reprints: r.Reprints, Pruned: r.Pruned}
	if r.Refusal != nil {
		c.Refusal, _ = json.Marshal(r.Refusal) // plain strings and an int: always marshals
	}
	return c
}

// PutFlushed writes r durably: one flush; it returns only once r survives power loss.
func (j *Journal) PutFlushed(r *Record) error { return j.commit(true, r, nil) }

// PutUnflushed writes r without a flush of its own: it survives a crash of the daemon, and
// power loss once anything later is flushed. For changes whose loss on a power cut is
// harmless: the record before them (an intent, at worst) makes the capture in doubt, and a
// read-back settles it again.
func (j *Journal) PutUnflushed(r *Record) error { return j.commit(false, r, nil) }

// commit writes r, stamped with the clocks, together with the staged jobs (if any) and the
// steady clock's mark, in one transaction: the mark is a few bytes, so that the next life's
// clock loses at most the time since the journal last changed.
func (j *Journal) commit(flush bool, r *Record, jobs *spool.Staged) error {
	row := j.stamp(r)
	write := func(tx *store.Tx) error {
		if err := tx.PutCapture(row); err != nil {
			return err
		}
		if err := tx.PutMeta(clockKey, j.clock.Mark()); err != nil {
			return err
		}
		if jobs != nil {
			return jobs.AddTo(tx)
		}
		return nil
	}
	commit := j.st.Unflushed
	if flush {
		commit = j.st.Flushed
	}
	if err := commit(write); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// stamp sets r's times to now, on both clocks, and returns its row.
func (j *Journal) stamp(r *Record) *store.Capture {
	now := j.clock.Wall().UTC()
	if r.Created.IsZero() {
		r.Created = now
	}
	if r.Clock != j.clock.Epoch() {
		r.SentAt = 0 // read on a lost clock: unknown from now on
	}
	r.Updated, r.UpdatedAt, r.Clock = now, j.clock.Now(), j.clock.Epoch()
	return rowOf(r)
}

// PruneFinished prunes the finished records whose last change is at least keep ago on the
// steady clock: a refused or not-captured record is removed, a captured one keeps its id,
// trans_id and payment method (Record.Pruned) so that its id is never sent to secupay again.
// It reads the candidates by index, in batches, each batch one commit: bounded memory
// however long the till has run. It returns how many records it pruned.
//
// A record stamped on this life's steady clock is judged by its steady age alone, so a step
// of the wall clock changes nothing; one stamped on a lost clock (or none) is judged by its
// wall time, which a step back only keeps longer.
//
// claim, if set, claims a transaction for the prune (false: a request is on it, and the
// record is left for the next prune); its release is called once the batch is committed, so
// that no capture can write the record between the prune's read and its change.
func (j *Journal) PruneFinished(keep time.Duration, claim func(id string) (release func(), ok bool)) (int, error) {
	now, wall := j.clock.Now(), j.clock.Wall()
	pruned := 0
	skip := map[string]bool{} // claimed by a request, or young after all: left for the next prune
	for {
		// Records a request holds stay candidates: ask for as many more.
		limit := pruneBatch + len(skip)
		cands, err := j.st.PrunableCaptures(j.clock.Epoch(), int64(now.Add(-keep)), wall.Add(-keep), limit)
		if err != nil {
			return pruned, fmt.Errorf("journal: prune: %w", err)
		}
		var take []*store.Capture
		var held []func()
		for _, c := range cands {
			if skip[c.ID] {
				continue
			}
			release := func() {}
			if claim != nil {
				var ok bool
				if release, ok = claim(c.ID); !ok {
					skip[c.ID] = true
					continue
				}
			}
			row, ok := j.prunable(c.ID, now, wall, keep)
			if !ok {
				release()
				skip[c.ID] = true
				continue
			}
			held = append(held, release)
			take = append(take, row)
		}
		err = j.commitPrune(take)
		for _, r := range held {
			r()
		}
		if err != nil {
			return pruned, fmt.Errorf("journal: prune: %w", err)
		}
		pruned += len(take)
		if len(take) == 0 || len(cands) < limit {
			return pruned, nil
		}
	}
}

// prunable reads the row of id again, whole, under the prune's claim — a capture may have
// changed it since the candidates were read (a refused id captured meanwhile is not old, and
// must not be removed) — and says whether the prune takes it, as the row the prune writes: a
// captured one without its answer, keeping its payment method (taken from the answer when an
// older ecrd did not note it).
func (j *Journal) prunable(id string, now steady.Instant, wall time.Time, keep time.Duration) (*store.Capture, bool) {
	c, err := j.st.Capture(id)
	if err != nil {
		return nil, false
	}
	r, err := recordOf(c)
	if err != nil || r.unfinished() || c.Unfinished || c.Pruned {
		return nil, false // the phase decides, not the flag alone; unreadable: kept for a technician
	}
	age := wall.Sub(c.Updated)
	if c.SteadyClock == j.clock.Epoch() {
		age = now.Sub(steady.Instant(c.UpdatedSteady))
	}
	if age < keep {
		return nil, false
	}
	if c.Phase == string(PhaseCaptured) {
		if c.PaymentMethod == "" {
			var tx secupay.Transaction
			if json.Unmarshal(c.Answer, &tx) == nil {
				c.PaymentMethod = tx.PaymentMethod
			}
		}
		c.Answer, c.Pruned = nil, true
	}
	return c, true
}

// commitPrune writes a prune's batch in one unflushed commit: a captured row without its
// answer, any other removed. Losing it to a power cut only leaves the rows for the next prune.
func (j *Journal) commitPrune(take []*store.Capture) error {
	if len(take) == 0 {
		return nil
	}
	return j.st.Unflushed(func(tx *store.Tx) error {
		for _, c := range take {
			var err error
			if c.Pruned {
				err = tx.PutCapture(c)
			} else {
				err = tx.DeleteCapture(c.ID)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// pruneBatch is how many records one of a prune's commits changes.
const pruneBatch = 256

// Unfinished returns the ids of the unfinished records (for resuming after a restart and for
// the resolver; finished ones are not read), by the store's index.
func (j *Journal) Unfinished() ([]string, error) {
	ids, err := j.st.UnfinishedIDs()
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	return ids, nil
}
