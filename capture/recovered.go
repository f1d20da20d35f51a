package capture

import (
	"errors"
	"fmt"
	"slices"

	"github.com/ecrd-pos/ecrd/store"
)

// What the journal makes of a salvaged database (`ecrd store recover`, store.Salvage): the
// rows SQLite could still read are as they were; for the ones it could not, the money rules
// decide here, as everywhere, in the journal's terms.
//
//   - A record known only by its id may have been captured, in doubt, or refused: it becomes
//     a capture in doubt, so that nothing is sent for it before a read-back (machine.go), and
//     a read-back that finds it captured journals secupay's answer and prints its receipt.
//     Its start/cash calls are unknown (Attempts 0): a receipt found so opens no drawer.
//   - A queued job whose row is lost is a receipt owed: if its capture's answer is in the
//     journal, the capture goes back to "receipts not spooled", and the resolver spools them
//     again under the same job ids — the lost one is added, a job still in the database is
//     not. If the capture is itself lost, the read-back does the same. Otherwise (a job the
//     POS sent as lines, or a capture whose answer was pruned) it cannot be made again, and
//     the technician hears which.

// doubtRecovered is the doubt of a record rebuilt from its id alone.
const doubtRecovered = "its journal record was lost to a damaged database (ecrd store recover): secupay is read back before anything is sent"

// Reopened is what Reopen did with a salvage's losses.
type Reopened struct {
	InDoubt   []string        // records rebuilt from their id, now in doubt
	Respool   []string        // captured transactions whose receipts are spooled again
	JobsGone  []store.LostJob // queued jobs that cannot be made again
	Completed int             // printed jobs lost: nothing is owed for them
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
		r := &Record{TransactionID: l.ID, Phase: PhaseInDoubt, Doubted: true, Doubt: doubtRecovered}
		rows = append(rows, j.stamp(r))
		ro.InDoubt = append(ro.InDoubt, l.ID)
	}
	respool := map[string]bool{}
	for _, lj := range sv.LostJobs {
		switch {
		case !lj.Queued:
			ro.Completed++
			continue
		case lj.TransactionID == "":
			ro.JobsGone = append(ro.JobsGone, lj)
			continue
		case lost[lj.TransactionID]:
			continue // its read-back spools the receipts
		}
		if respool[lj.TransactionID] {
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
		respool[lj.TransactionID] = true
		rec.Spooled = false
		rows = append(rows, j.stamp(rec))
		ro.Respool = append(ro.Respool, lj.TransactionID)
	}
	slices.Sort(ro.InDoubt)
	slices.Sort(ro.Respool)
	err = st.Flushed(func(tx *store.Tx) error {
		for _, c := range rows {
			if err := tx.PutCapture(c); err != nil {
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
