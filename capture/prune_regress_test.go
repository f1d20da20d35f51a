package capture

import (
	"context"
	"testing"
	"time"
)

// Found by the red team: the prune decided "finished" by the row's unfinished column, not by
// its phase. An intent row whose unfinished flag was 0 (a technician's UPDATE, a bad import, a
// bit flip) was pruned like a refusal: removed, and the POS's repeat then found "no record"
// and sent a second start/cash. Now the schema ties the flag to the phase, and the prune
// judges the phase itself.
func TestRegressionPruneDeletesIntentWithWrongUnfinishedFlag(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.KeepFinished = time.Hour })
	// secupay captured the first start/cash; the answer was lost before it was journaled.
	if _, err := e.client.CaptureCash(context.Background(), seed); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Hour)
	r := &Record{TransactionID: seed, Phase: PhaseIntent, Attempts: 1, Created: old, Updated: old, Sent: old}
	putRows(t, e, rowOf(r))
	// The schema refuses a flag that disagrees with the phase ...
	if _, err := stateDB(t, e).Exec(`UPDATE captures SET unfinished = 0 WHERE id = ?`, seed); err == nil {
		t.Fatal("the store took an intent marked finished")
	}
	// ... unless a hand turns its checks off: the prune does not trust the flag either.
	conn, err := stateDB(t, e).Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`PRAGMA ignore_check_constraints = ON`, `UPDATE captures SET unfinished = 0 WHERE id = '` + seed + `'`} {
		if _, err := conn.ExecContext(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close()

	e.svc.Prune()
	if _, err := e.journal.Get(seed); err != nil {
		t.Logf("after the prune: %v", err)
	}
	res, err := e.svc.Capture(context.Background(), seed)
	t.Logf("capture: %+v, %v", res, err)
	if n := e.fake.Calls().StartCash[seed]; n > 1 {
		t.Fatalf("start/cash sent %d times for %s: the prune removed an intent (in doubt) record", n, seed)
	}
}

// One unfinished row the journal cannot parse (a refusal column that is not JSON: a
// technician's edit, a torn import) makes Journal.All fail as a whole, and Resume then tracks
// none of the unfinished captures: a capture secupay made whose answer was lost is never
// read back and its receipt never printed unless the POS asks again.
func TestRegressionOneBadRowHidesEveryUnfinishedCaptureFromTheResume(t *testing.T) {
	e := newEnv(t, nil)
	if _, err := e.client.CaptureCash(context.Background(), seed); err != nil { // the lost answer
		t.Fatal(err)
	}
	now := time.Now()
	putRows(t, e, rowOf(&Record{TransactionID: seed, Phase: PhaseInDoubt, Attempts: 1, Created: now, Updated: now, Sent: now}))
	bad := rowOf(&Record{TransactionID: "STX_ZZZBADROW", Phase: PhaseInDoubt, Attempts: 1, Created: now, Updated: now, Sent: now})
	bad.Refusal = []byte("{")
	putRows(t, e, bad)
	e.passInDoubtWait()
	e.svc.Resume(context.Background())
	rec, err := e.journal.Get(seed)
	if err != nil || rec.Phase != PhaseCaptured {
		t.Fatalf("%s after the resume: %+v, %v; want captured (secupay captured it), its receipt printed; unfinished tracked: %d",
			seed, rec.Phase, err, e.svc.Unfinished())
	}
}
