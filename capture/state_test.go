package capture

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/internal/wait"
	"github.com/ecrd-pos/ecrd/receipt"
	"github.com/ecrd-pos/ecrd/secupay/secupaytest"
	"github.com/ecrd-pos/ecrd/store"
)

// stateDB opens e's state database beside the service, as a technician's sqlite3 would: for
// tests that change what is stored behind the service's back (a flipped stamp, a row of an
// older ecrd, a disk that refuses writes).
func stateDB(t *testing.T, e *env) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(e.state, store.File)+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// execState runs statements on e's state database.
func execState(t *testing.T, e *env, query string, args ...any) {
	t.Helper()
	if _, err := stateDB(t, e).Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// putRows writes capture rows as they are, without the journal's stamps: rows an older ecrd
// (or the import of its files) left.
func putRows(t *testing.T, e *env, rows ...*store.Capture) {
	t.Helper()
	err := e.journal.st.Unflushed(func(tx *store.Tx) error {
		for _, r := range rows {
			if err := tx.PutCapture(r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// refuseWrites makes every write of the journal's rows fail, as a disk that takes no more
// would, while reads go on working.
func refuseWrites(t *testing.T, e *env) {
	t.Helper()
	for _, op := range []string{"INSERT", "UPDATE"} {
		execState(t, e, `CREATE TRIGGER refuse_`+op+` BEFORE `+op+` ON captures BEGIN SELECT RAISE(FAIL, 'the disk takes no more'); END`)
	}
}

// damageMark rewrites the steady clock's saved mark with f (nil: removes it), as damage on
// the card, or a lost write, would leave it.
func damageMark(t *testing.T, e *env, f func([]byte) []byte) {
	t.Helper()
	if f == nil {
		execState(t, e, `DELETE FROM meta WHERE key = ?`, clockKey)
		return
	}
	var m []byte
	if err := stateDB(t, e).QueryRow(`SELECT value FROM meta WHERE key = ?`, clockKey).Scan(&m); err != nil {
		t.Fatal(err)
	}
	execState(t, e, `UPDATE meta SET value = ? WHERE key = ?`, f(m), clockKey)
}

// A capture an earlier life journaled without its receipts (an older ecrd, or the import of
// its files) is spooled without the drawer pulse, whoever finds it: nobody can tell whether
// that life opened the drawer. One this life journals carries it.
func TestReceiptOfAnEarlierLifeOpensNoDrawer(t *testing.T) {
	t.Parallel()
	pin := 0
	e := newEnv(t, func(c *Config) { c.DrawerPin = &pin })
	answer := secupaytest.SeedAnswer()
	for _, id := range []string{"STX_EARLIERLIFE1", "STX_EARLIERLIFE2"} {
		a := bytes.Replace(answer, []byte(seed), []byte(id), 1)
		putRows(t, e, rowOf(&Record{TransactionID: id, Phase: PhaseCaptured, Answer: a, Created: time.Now(), Updated: time.Now()}))
	}
	e.svc.Resume(context.Background())                                                 // the resolver finds the first
	if _, err := e.svc.Capture(context.Background(), "STX_EARLIERLIFE2"); err != nil { // the POS asks for the second
		t.Fatal(err)
	}
	if _, err := e.svc.Capture(context.Background(), seed); err != nil { // captured in this life
		t.Fatal(err)
	}
	for id, kick := range map[string]bool{"STX_EARLIERLIFE1": false, "STX_EARLIERLIFE2": false, seed: true} {
		j, err := e.journal.st.Job(id + ".receipt")
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if got := len(j.Kick) > 0; got != kick && j.State == "queued" {
			t.Errorf("%s: queued with a drawer pulse %v, want %v", id, got, kick)
		}
	}
	// The pulse follows its receipt: wait for the queue to empty and a pulse on the paper (the
	// earlier lives' receipts printed first: a pulse of theirs would be there already).
	kicks := func() int { b, _ := os.ReadFile(e.printerFile); return bytes.Count(b, receipt.DrawerKick(pin)) }
	wait.Until(t, 10*time.Second, "three receipts and a pulse", func() bool {
		return e.receipts() == 3 && len(e.spool.Pending()) == 0 && kicks() >= 1
	})
	if n := kicks(); n != 1 {
		t.Fatalf("the drawer opened %d times, want once (for the capture of this life)", n)
	}
}
