package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ecrd-pos/ecrd/internal/steady"
	"github.com/ecrd-pos/ecrd/store"
)

// What the journal makes of a salvaged database (`ecrd store recover`, store.Salvage): the
// rows SQLite could still read are as they were; for the ones it could not, the money rules
// decide here, as everywhere, in the journal's terms.
//
//   - A record known only by its id may have been captured, in doubt, or refused: it becomes
//     a capture in doubt, so that nothing is sent for it before a read-back (machine.go), and
//     a read-back that finds it captured journals secupay's answer and prints its receipt.
//   - A record the index of unfinished work holds but whose row reads finished (a table page
//     older than the index: a write the card lost) is put in doubt too: its row cannot say
//     how far the capture got.
//   - Records lost that nothing names (the table and the index of ids both damaged): every
//     id the journal does not know is read back before its first start/cash, for
//     --journal-keep (Journal.unnamedLoss, Service.load).
//   - No receipt found by a recovered record's read-back opens the drawer: the customer is
//     long gone (doubtRecovered, recordCaptured).
//   - A queued job whose row is lost is a receipt owed: if its capture's answer is in the
//     journal, the capture goes back to "receipts not spooled", and the resolver spools them
//     again under the same job ids — the lost one is added, a job still in the database is
//     not. If the capture is itself lost, the read-back does the same. Otherwise (a job the
//     POS sent as lines, or a capture whose answer was pruned) it cannot be made again, and
//     the technician hears which.

// doubtRecovered begins the doubt of every record ecrd store recover left in doubt.
const doubtRecovered = "recovered: "

// The doubts of records rebuilt from an id, reopened from a stale row, and never seen.
const (
	doubtLostRecord = doubtRecovered + "its journal record was lost to a damaged database (ecrd store recover): secupay is read back before anything is sent"
	doubtStaleRow   = doubtRecovered + "its journal record may be older than the capture (ecrd store recover): secupay is read back before anything is sent"
	doubtCopied     = doubtRecovered + "in doubt when the database was found damaged (ecrd store recover): secupay is read back before anything is sent"
	doubtUnnamed    = doubtRecovered + "the journal may have lost this transaction's record (ecrd store recover): secupay is read back before the first start/cash"
)

// unnamedLossKey marks, in the store's meta table, a recovery that may have lost records
// nothing names: when, on the steady clock (8 bytes) and its epoch after them.
const unnamedLossKey = "unnamed_loss"

// recovered reports whether ecrd store recover left r in doubt.
func (r *Record) recovered() bool { return strings.HasPrefix(r.Doubt, doubtRecovered) }

// Reopened is what Reopen did with a salvage's losses.
type Reopened struct {
	InDoubt   []string        // records rebuilt from their id, or reopened from a stale row, now in doubt
	Respool   []string        // captured transactions whose receipts are spooled again
	JobsGone  []store.LostJob // queued jobs that cannot be made again
	Completed int             // printed jobs lost: nothing is owed for them
	// UnnamedLoss: records may be lost that nothing names; unknown ids are read back first.
	UnnamedLoss bool
}

// Reopen writes what the journal makes of sv's losses into st, the salvaged database, in one
// flushed transaction, before any daemon runs on it.
func Reopen(st *store.Store, sv *store.Salvaged) (*Reopened, error) {
	j, err := OpenJournal(st, nil)
	if err != nil {
		return nil, err
	}
	ro := &Reopened{}
	var rows []*store.Capture
	lost := map[string]bool{}
	for _, l := range sv.LostCaptures {
		if lost[l.ID] {
			continue
		}
		lost[l.ID] = true
		r := &Record{TransactionID: l.ID, Phase: PhaseInDoubt, Doubted: true, Doubt: doubtLostRecord}
		rows = append(rows, j.stamp(r))
		ro.InDoubt = append(ro.InDoubt, l.ID)
	}
	reopen, err := j.reopenCopied(sv.Reopened, lost)
	if err != nil {
		return nil, err
	}
	for _, r := range reopen {
		lost[r.TransactionID] = true
		rows = append(rows, j.stamp(r))
		if r.Doubt == doubtStaleRow {
			ro.InDoubt = append(ro.InDoubt, r.TransactionID)
		}
	}
	respool, err := j.respoolLostJobs(sv.LostJobs, lost, ro)
	if err != nil {
		return nil, err
	}
	rows = append(rows, respool...)
	slices.Sort(ro.InDoubt)
	slices.Sort(ro.Respool)
	ro.UnnamedLoss = sv.UnnamedLoss
	err = st.Flushed(func(tx *store.Tx) error {
		for _, c := range rows {
			if err := tx.PutCapture(c); err != nil {
				return err
			}
		}
		if sv.UnnamedLoss {
			mark := binary.BigEndian.AppendUint64(nil, uint64(j.clock.Now()))
			if err := tx.PutMeta(unnamedLossKey, append(mark, j.clock.Epoch()...)); err != nil {
				return err
			}
		}
		return tx.PutMeta(clockKey, j.clock.Mark())
	})
	if err != nil {
		return nil, fmt.Errorf("journal: reopen the salvaged records: %w", err)
	}
	return ro, nil
}

// reopenCopied returns the copied records ecrd store recover must leave in doubt: those the
// index of unfinished work held though their row reads finished (ids), and every one in doubt
// already, so that its receipt, found by a read-back, opens no drawer. Ids in skip are
// rebuilt already.
func (j *Journal) reopenCopied(ids []string, skip map[string]bool) ([]*Record, error) {
	unfinished, err := j.st.UnfinishedIDs()
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	var out []*Record
	for _, id := range append(slices.Clone(ids), unfinished...) {
		if skip[id] {
			continue
		}
		skip[id] = true
		rec, err := j.Get(id)
		if err != nil {
			return nil, err
		}
		switch {
		case slices.Contains(ids, id):
			rec.Phase, rec.Doubted, rec.Doubt = PhaseInDoubt, true, doubtStaleRow
		case rec.inDoubt():
			rec.Doubt = doubtCopied
		default:
			continue // captured, receipts to spool: no read-back, no drawer (spoolResumed)
		}
		out = append(out, rec)
	}
	return out, nil
}

// unnamedLoss is when ecrd store recover found records may be lost that nothing names, if it
// did and on this clock's epoch (else ok is true and at zero: unknown, so always).
func (j *Journal) unnamedLoss() (at steady.Instant, ok bool) {
	b, err := j.st.Meta(unnamedLossKey)
	if err != nil || len(b) < 8 {
		return 0, err == nil
	}
	if string(b[8:]) != j.clock.Epoch() {
		return 0, true
	}
	return steady.Instant(binary.BigEndian.Uint64(b)), true
}

// respoolLostJobs returns the captured records whose queued receipt was lost, set back to
// "receipts not spooled", and notes in ro what else the lost jobs were. Those of lost
// records are left to their read-back.
func (j *Journal) respoolLostJobs(jobs []store.LostJob, lost map[string]bool, ro *Reopened) ([]*store.Capture, error) {
	var rows []*store.Capture
	seen := map[string]bool{}
	for _, lj := range jobs {
		if !lj.Queued {
			ro.Completed++
			continue
		}
		if lj.TransactionID == "" {
			// A capture's receipt job is named for its transaction (print.go).
			if id, kind, ok := strings.Cut(lj.ID, "."); ok && (kind == kindReceipt || kind == kindMerchant) {
				lj.TransactionID = id
			}
		}
		if lj.TransactionID == "" {
			ro.JobsGone = append(ro.JobsGone, lj)
			continue
		}
		if lost[lj.TransactionID] || seen[lj.TransactionID] {
			continue
		}
		rec, err := j.Get(lj.TransactionID)
		switch {
		case errors.Is(err, errNoRecord):
			ro.JobsGone = append(ro.JobsGone, lj)
			continue
		case err != nil:
			return nil, err
		case rec.Phase != PhaseCaptured || rec.Pruned || len(rec.Answer) == 0:
			ro.JobsGone = append(ro.JobsGone, lj)
			continue
		}
		seen[lj.TransactionID] = true
		rec.Spooled = false
		rows = append(rows, j.stamp(rec))
		ro.Respool = append(ro.Respool, lj.TransactionID)
	}
	return rows, nil
}
