package main

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecrd-pos/ecrd/store"
)

// A red team's break of ecrd store recover, kept as a regression test of its fix. The break:
// A card that damaged a leaf of the captures table and the root of its id index: recover
// says "recovered", exit 0, and the daemon then sends a second start/cash for paid
// transactions — both for rows the damage took (no index names them: the documented residual)
// and for rows that were still readable but that scanRowids' exponential skip jumped over.
func TestRedteamRecoverTableAndIDIndexDamagedSendsNoSecondStartCash(t *testing.T) {
	e := newDaemonEnv(t)
	p := e.start()
	const n = 150
	for i := range n {
		if status, out := e.capture(fmt.Sprintf("STX_REDTEAM%03d", i)); status != 200 {
			t.Fatalf("capture: %d %v", status, out)
		}
	}
	e.waitReceipts(n)
	stopCleanly(t, p)

	db := filepath.Join(e.state, store.File)
	leaves := dbPages(t, db, "SELECT pageno FROM dbstat WHERE name = 'captures' AND pagetype = 'leaf' ORDER BY pageno")
	root := dbPages(t, db, "SELECT rootpage FROM sqlite_schema WHERE name = 'sqlite_autoindex_captures_1'")
	overwritePage(t, db, leaves[len(leaves)/2])
	overwritePage(t, db, root[0])

	// What the damaged file still gives by rowid.
	readable := map[string]bool{}
	rdb, _ := sql.Open("sqlite", "file:"+db+"?mode=ro")
	for rowid := 1; rowid <= n+5; rowid++ {
		var id string
		if rdb.QueryRow("SELECT id FROM captures WHERE rowid = ?", rowid).Scan(&id) == nil {
			readable[id] = true
		}
	}
	rdb.Close()

	code, out, errs := runCLI(t, "", "store", "recover", "--state-dir", e.state)
	t.Logf("ecrd store recover: exit %d\n%s%s", code, out, errs)
	if code != 0 {
		t.Fatalf("recover: %d", code)
	}

	p = e.start()
	for i := range n {
		e.capture(fmt.Sprintf("STX_REDTEAM%03d", i))
	}
	stopCleanly(t, p)
	calls := e.fake.Calls()
	for i := range n {
		id := fmt.Sprintf("STX_REDTEAM%03d", i)
		if calls.StartCash[id] > 1 {
			why := "its row was on the damaged page (no index named it)"
			if readable[id] {
				why = "its row was READABLE in the damaged file; the salvage skipped it"
			}
			t.Errorf("%s: paid, then start/cash sent %d times after the recovery: %s", id, calls.StartCash[id], why)
		}
	}
}

// A red team's break of ecrd store recover, kept as a regression test of its fix. The break:
// Captured receipts still queued (the printer was away) when the card damaged a jobs leaf
// and one of the jobs' indexes:
//   - jobs_queued: recover calls the lost queued receipts "printed jobs lost from the history
//     (nothing owed)", and they never print;
//   - jobs_transaction: recover says "job lost: … cannot be made again: print it again from
//     the POS" for receipts of captures whose answer it copied whole (the job id,
//     STX_….receipt, even names the transaction): the docs promise that only for lines the POS
//     sent or a pruned capture's.
func TestRedteamRecoverQueuedIndexDamagedLosesNoReceipt(t *testing.T) {
	for _, index := range []string{"jobs_queued", "jobs_transaction"} {
		t.Run(index, func(t *testing.T) {
			e := newDaemonEnv(t)
			// The printer is away (nothing listens there): the jobs stay queued.
			p := e.start("ECRD_PRINTER=tcp:127.0.0.1:1")
			const n = 60
			for i := range n {
				if status, out := e.capture(fmt.Sprintf("STX_QUEUED%03d", i)); status != 200 {
					t.Fatalf("capture: %d %v", status, out)
				}
			}
			stopCleanly(t, p)

			db := filepath.Join(e.state, store.File)
			leaves := dbPages(t, db, "SELECT pageno FROM dbstat WHERE name = 'jobs' AND pagetype = 'leaf' ORDER BY pageno")
			root := dbPages(t, db, "SELECT rootpage FROM sqlite_schema WHERE name = ?", index)
			if len(leaves) < 3 {
				t.Fatalf("jobs fill %d leaves", len(leaves))
			}
			overwritePage(t, db, leaves[len(leaves)/2])
			overwritePage(t, db, root[0])

			code, out, errs := runCLI(t, "", "store", "recover", "--state-dir", e.state)
			t.Logf("ecrd store recover: exit %d\n%s%s", code, out, errs)
			if code != 0 {
				t.Fatalf("recover: %d", code)
			}
			if strings.Contains(out, "printed:") {
				t.Errorf("recover says queued receipts were printed (nothing owed); none ever printed")
			}
			if strings.Contains(out, "job lost:") {
				t.Errorf("recover gives up on receipts of captures whose answer it holds")
			}
			p = e.start()
			got := e.waitReceipts(n)
			stopCleanly(t, p)
			if len(got) < n {
				t.Errorf("%d of %d captured receipts printed after the recovery: the rest are lost", len(got), n)
			}
		})
	}
}
