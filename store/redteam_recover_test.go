package store

import (
	"database/sql"
	"fmt"
	"testing"
)

// rootOf is the root page of a table or index of the database at path.
func redteamRootOf(t *testing.T, path, name string) int64 {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var root int64
	if err := db.QueryRow("SELECT rootpage FROM sqlite_schema WHERE name = ?", name).Scan(&root); err != nil {
		t.Fatal(err)
	}
	return root
}

// A red team's break of ecrd store recover, kept as a regression test of its fix. The break:
// A damaged jobs leaf plus a damaged jobs_queued index (a small partial index, typically one
// page): Salvage no longer knows which lost jobs were queued, and says every lost job was
// printed — so capture.Reopen counts them "printed, nothing owed" and the receipt a queued
// job held is never printed. A lost job whose state is unknown must count as queued
// (a possible duplicate), never as printed (a lost receipt).
func TestRedteamRecoverQueuedIndexDamagedCountsLostJobsQueued(t *testing.T) {
	path, _ := salvageFixture(t, 400)
	overwrite(t, path, pagesOf(t, path, "jobs", "leaf")[1])
	overwrite(t, path, redteamRootOf(t, path, "jobs_queued"))

	sv, _ := salvage(t, path)
	t.Logf("copied %v; %d jobs lost; unreadable: %q", sv.Copied, len(sv.LostJobs), sv.Unreadable)
	if len(sv.LostJobs) == 0 {
		t.Fatal("no job lost: the test damaged nothing")
	}
	queuedLost := 0
	for _, j := range sv.LostJobs {
		i := 0
		fmt.Sscanf(j.TransactionID, "STX_SALVAGE%d", &i)
		if i%3 == 0 { // the fixture's queued jobs
			queuedLost++
			if !j.Queued {
				t.Errorf("lost job %s was queued (its receipt never printed); Salvage says Queued=false, so recover counts it printed and the receipt is lost", j.ID)
			}
		}
	}
	if queuedLost == 0 {
		t.Fatal("no queued job among the lost")
	}
}

// A red team's break of ecrd store recover, kept as a regression test of its fix. The break:
// A damaged captures leaf plus a damaged id index: scanRowids' skip jumps 1, 2, 4, 8, 16…
// rowids past the damaged leaf and lands in the middle of the next, readable leaf; the rows
// it jumped over are "still found through the indexes" — but the id index is damaged too, so
// whole, readable captured records are dropped without a word. The daemon then answers "no
// record" for them and sends start/cash again for paid transactions.
func TestRedteamRecoverSkipKeepsReadableRows(t *testing.T) {
	path, want := salvageFixture(t, 400)
	leaves := pagesOf(t, path, "captures", "leaf")
	overwrite(t, path, leaves[len(leaves)/2])
	overwrite(t, path, redteamRootOf(t, path, "sqlite_autoindex_captures_1"))

	// What is still readable, row by row, from the damaged file by rowid.
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	readable := map[string]bool{}
	for rowid := 1; rowid <= len(want)+10; rowid++ {
		var id string
		if err := db.QueryRow("SELECT id FROM captures WHERE rowid = ?", rowid).Scan(&id); err == nil {
			readable[id] = true
		}
	}
	db.Close()
	if len(readable) == len(want) {
		t.Fatal("every row readable: the test damaged nothing")
	}

	sv, to := salvage(t, path)
	t.Logf("copied %v; %d captures lost by id; unreadable: %q", sv.Copied, len(sv.LostCaptures), sv.Unreadable)
	dropped := 0
	for id := range readable {
		if _, err := to.Capture(id); err != nil {
			dropped++
			t.Errorf("%s: readable in the damaged file, missing from the salvaged one (%v)", id, err)
		}
	}
	if dropped > 0 {
		t.Errorf("%d of %d readable captures dropped", dropped, len(readable))
	}
}
