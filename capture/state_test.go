package capture

import (
	"database/sql"
	"path/filepath"
	"testing"

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
