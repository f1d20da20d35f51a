package capture

import (
	"bytes"
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/internal/wait"
	"github.com/ecrd-pos/ecrd/receipt"
	"github.com/ecrd-pos/ecrd/store"
)

// What Reopen makes of a salvage's losses (`ecrd store recover`): a capture known only by id
// is read back before anything is sent and, found captured, prints its receipt without the
// drawer; a captured transaction whose queued receipt was lost prints it again, without the
// drawer; a queued job nothing can remake is named; a lost printed job is nothing owed.
func TestReopenSalvagedLosses(t *testing.T) {
	t.Parallel()
	pin := 0
	e := newEnv(t, func(c *Config) { c.DrawerPin = &pin })
	ctx := context.Background()
	const lostID = "STX_LOSTRECORD1"
	for _, id := range []string{seed, lostID} {
		if _, err := e.svc.Capture(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	kicks := func() int { b, _ := os.ReadFile(e.printerFile); return bytes.Count(b, receipt.DrawerKick(pin)) }
	wait.Until(t, 10*time.Second, "two receipts and their pulses", func() bool { return e.receipts() == 2 && kicks() == 2 })
	// The damage: lostID's record gone, and the receipt jobs of both.
	execState(t, e, `DELETE FROM captures WHERE id = ?`, lostID)
	execState(t, e, `DELETE FROM jobs WHERE transaction_id IN (?, ?)`, seed, lostID)
	sv := &store.Salvaged{
		LostCaptures: []store.LostCapture{{ID: lostID}},
		LostJobs: []store.LostJob{
			{Seq: 1, ID: seed + ".receipt", TransactionID: seed, Queued: true},
			{Seq: 2, ID: lostID + ".receipt", TransactionID: lostID, Queued: true},
			{Seq: 3, ID: "pos-lines-7", Queued: true},
			{Seq: 4, ID: "old.receipt", TransactionID: "STX_OLD", Queued: false},
		},
	}
	ro, err := Reopen(e.journal.st, sv)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ro.InDoubt, []string{lostID}) || !slices.Equal(ro.Respool, []string{seed}) ||
		len(ro.JobsGone) != 1 || ro.JobsGone[0].ID != "pos-lines-7" || ro.Completed != 1 {
		t.Fatalf("reopened %+v", ro)
	}
	rec, err := e.journal.Get(lostID)
	if err != nil || rec.Phase != PhaseInDoubt || !rec.Doubted || rec.Attempts != 0 {
		t.Fatalf("the record rebuilt from its id: %+v %v", rec, err)
	}

	// The resolver reads the lost one back (no start/cash) and spools both receipts again.
	before := e.till.Fake.Calls()
	e.svc.Resume(ctx)
	wait.Until(t, 10*time.Second, "both receipts printed again", func() bool { return e.receipts() == 4 && len(e.spool.Pending()) == 0 })
	after := e.till.Fake.Calls()
	if after.StartCash[lostID] != before.StartCash[lostID] || after.Get[lostID] == before.Get[lostID] {
		t.Errorf("%s: start/cash %d → %d, read-backs %d → %d; want no start/cash and a read-back", lostID,
			before.StartCash[lostID], after.StartCash[lostID], before.Get[lostID], after.Get[lostID])
	}
	if n := kicks(); n != 2 {
		t.Errorf("the drawer opened %d times, want the 2 of the captures themselves", n)
	}
	res, err := e.svc.Capture(ctx, lostID)
	if err != nil || !res.Replayed {
		t.Fatalf("%s asked again: %+v %v", lostID, res, err)
	}
}
