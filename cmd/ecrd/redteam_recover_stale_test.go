package main

import (
	"bytes"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/ecrd-pos/ecrd/store"
)

// A red team's break of ecrd store recover, kept as a regression test of its fix. The break:
// A lost write, as SD cards do: the leaf of the captures table that holds a record goes back
// to an older version of itself (the record "refused", finished), while the index of
// unfinished work still holds the newer truth (an intent: a start/cash was sent). SQLite's
// integrity check sees the contradiction and the daemon stops; recover copies the stale row
// "whole" and ignores what captures_unfinished says of it, so the POS's next request sends
// start/cash again for a transaction secupay captured — no read-back.
func TestRedteamRecoverUnfinishedIndexBeatsStaleLeaf(t *testing.T) {
	e := newDaemonEnv(t)
	p := e.start()
	const x = "STX_REDTEAMSTALE"
	for _, id := range []string{"STX_REDTEAMA", "STX_REDTEAMB", x, "STX_REDTEAMC"} {
		if status, out := e.capture(id); status != 200 {
			t.Fatalf("capture %s: %d %v", id, status, out)
		}
	}
	e.waitReceipts(4)
	stopCleanly(t, p)

	path := filepath.Join(e.state, store.File)
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatal(q, err)
		}
	}
	// The older version of the record: refused, finished.
	exec(`UPDATE captures SET phase = 'refused', unfinished = 0, spooled = 0, answer = NULL,
		refusal = '{"status":"error","error":"ProtocolException"}' WHERE id = ?`, x)
	exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	var leaves []int64
	rows, _ := db.Query(`SELECT pageno FROM dbstat WHERE name = 'captures' AND pagetype = 'leaf'`)
	for rows.Next() {
		var pg int64
		rows.Scan(&pg)
		leaves = append(leaves, pg)
	}
	rows.Close()
	raw, _ := os.ReadFile(path)
	var page int64
	var stale []byte
	for _, pg := range leaves {
		if b := raw[(pg-1)*4096 : pg*4096]; bytes.Contains(b, []byte(x)) {
			page, stale = pg, append([]byte(nil), b...)
		}
	}
	if page == 0 {
		t.Fatal("no leaf holds the record")
	}
	// The newer truth: the POS asked again, the intent was journaled and start/cash sent.
	exec(`UPDATE captures SET phase = 'intent', unfinished = 1, attempts = attempts + 1, refusal = NULL WHERE id = ?`, x)
	exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	db.Close()
	// The card loses that write of the leaf.
	f, _ := os.OpenFile(path, os.O_WRONLY, 0)
	f.WriteAt(stale, (page-1)*4096)
	f.Close()

	if code, out, _ := runCLI(t, "", "store", "check", "--state-dir", e.state); code != 1 {
		t.Fatalf("store check does not see the lost write: %d\n%s", code, out)
	}
	code, out, errs := runCLI(t, "", "store", "recover", "--state-dir", e.state)
	t.Logf("ecrd store recover: exit %d\n%s%s", code, out, errs)
	if code != 0 {
		t.Fatal("recover failed")
	}
	p = e.start()
	status, ans := e.capture(x)
	stopCleanly(t, p)
	t.Logf("%s asked again: %d %v", x, status, ans)
	if n := e.fake.Calls().StartCash[x]; n != 1 {
		t.Errorf("%s: start/cash sent %d times; the unfinished index said a start/cash may be unsettled, and recover trusted the stale row", x, n)
	}
}
