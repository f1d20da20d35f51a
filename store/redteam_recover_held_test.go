package store

import (
	"database/sql"
	"strings"
	"testing"
)

// Properties of store.Salvage that held under the red team's attack on `ecrd store recover`.

// redteamDump is every row of a table as SQLite stores it: each value quoted with its type.
func redteamDump(t *testing.T, db *sql.DB, table, order string) []string {
	t.Helper()
	cols := []string{}
	rows, err := db.Query("SELECT name FROM pragma_table_info(?)", table)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var c string
		rows.Scan(&c)
		cols = append(cols, "typeof("+c+")||':'||quote("+c+")")
	}
	rows.Close()
	q := "SELECT " + strings.Join(cols, "||'|'||") + " FROM " + table + " ORDER BY " + order
	rows, err = db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		rows.Scan(&s)
		out = append(out, s)
	}
	return out
}

// Every row Salvage says it copied is the original's, value for value and type for type
// (blobs, NULLs, text in a BLOB column, jobs' seq): the damaged pages aside.
func TestRedteamRecoverCopiedRowsEqualOriginal(t *testing.T) {
	path, _ := salvageFixture(t, 400)
	// Odd but legal values: an answer stored as TEXT, a refusal, a zero-length-but-not-NULL
	// doubt, kick bytes and a handed-over life, a job without a transaction.
	w, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`UPDATE captures SET answer = CAST(answer AS TEXT) WHERE id = 'STX_SALVAGE00001'`,
		`UPDATE captures SET refusal = '{"error":"x"}', doubt = '' WHERE id = 'STX_SALVAGE00002'`,
		`UPDATE jobs SET kick = x'1b700019fa', kick_life = '' WHERE id = 'STX_SALVAGE00003.receipt'`,
		`INSERT INTO jobs (seq, id, transaction_id, kind, state, data, bytes, created) VALUES (9999, 'pos-lines-1', NULL, 'lines', 'queued', x'1b40', 2, '2026-12-04T10:00:00.000000000Z')`,
	} {
		if _, err := w.Exec(q); err != nil {
			t.Fatal(q, err)
		}
	}
	orig := map[string][]string{"captures": redteamDump(t, w, "captures", "id"), "jobs": redteamDump(t, w, "jobs", "seq"), "meta": redteamDump(t, w, "meta", "key")}
	w.Close()

	sv, to := salvage(t, path)
	if len(sv.Unreadable) > 0 {
		t.Fatalf("unreadable: %q", sv.Unreadable)
	}
	got, err := sql.Open("sqlite", "file:"+to.Path()+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	for table, order := range map[string]string{"captures": "id", "jobs": "seq", "meta": "key"} {
		g := redteamDump(t, got, table, order)
		if strings.Join(g, "\n") != strings.Join(orig[table], "\n") {
			t.Errorf("%s: %d rows copied, %d in the original; they differ", table, len(g), len(orig[table]))
			for i := range min(len(g), len(orig[table])) {
				if g[i] != orig[table][i] {
					t.Errorf("first difference:\n  was %s\n  got %s", orig[table][i], g[i])
					break
				}
			}
		}
	}
}

// A capture whose big answer spills into overflow pages, one of them damaged: the row cannot
// be read whole, so it must not be copied with a torn answer, and it is named lost (in doubt).
func TestRedteamRecoverOverflowPageDamaged(t *testing.T) {
	path, _ := salvageFixture(t, 50)
	w, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Exec(`UPDATE captures SET answer = randomblob(20000) WHERE id = 'STX_SALVAGE00010'`); err != nil {
		t.Fatal(err)
	}
	w.Close()
	over := pagesOf(t, path, "captures", "overflow")
	overwrite(t, path, over[len(over)/2])
	sv, to := salvage(t, path)
	t.Logf("copied %v; lost %+v; unreadable %q", sv.Copied, sv.LostCaptures, sv.Unreadable)
	c, err := to.Capture("STX_SALVAGE00010")
	if err == nil {
		t.Errorf("copied with a damaged overflow page: answer of %d bytes", len(c.Answer))
	}
	named := false
	for _, l := range sv.LostCaptures {
		named = named || l.ID == "STX_SALVAGE00010"
	}
	if !named {
		t.Errorf("the capture with the damaged answer is not named lost")
	}
}
