package main

import (
	"bytes"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecrd-pos/ecrd/store"
)

// The daemon killed (the captures of its last life only in SQLite's log, ecrd.db-wal), and a
// page of the database file damaged, or the file cut short: after recover no capture is sent
// start/cash again, and the ones in the log are all copied.
func TestRedteamRecoverWALAndTruncated(t *testing.T) {
	for _, damage := range []string{"leaf", "truncated", "wal-leaf"} {
		t.Run(damage, func(t *testing.T) {
			e := newDaemonEnv(t)
			p := e.start()
			const n1, n2 = 60, 20
			for i := range n1 {
				if status, out := e.capture(fmt.Sprintf("STX_WAL%03d", i)); status != 200 {
					t.Fatalf("capture: %d %v", status, out)
				}
			}
			e.waitReceipts(n1)
			stopCleanly(t, p)
			p = e.start()
			for i := n1; i < n1+n2; i++ {
				if status, out := e.capture(fmt.Sprintf("STX_WAL%03d", i)); status != 200 {
					t.Fatalf("capture: %d %v", status, out)
				}
			}
			e.waitReceipts(n1 + n2)
			p.kill(t)
			db := filepath.Join(e.state, store.File)
			if fi, err := os.Stat(db + "-wal"); err != nil || fi.Size() == 0 {
				t.Fatalf("no log: %v", err)
			}
			switch damage {
			case "leaf", "wal-leaf":
				// dbstat reads through the log: the leaf it names may be in the log (wal-leaf
				// damages the file's copy of the last leaf, which the log supersedes).
				leaves := dbPages(t, db, "SELECT pageno FROM dbstat WHERE name = 'captures' AND pagetype = 'leaf' ORDER BY pageno")
				pg := leaves[len(leaves)/3]
				if damage == "wal-leaf" {
					pg = leaves[len(leaves)-1]
				}
				overwritePage(t, db, pg)
			case "truncated":
				fi, _ := os.Stat(db)
				if err := os.Truncate(db, fi.Size()/2/4096*4096); err != nil {
					t.Fatal(err)
				}
			}
			code, out, errs := runCLI(t, "", "store", "recover", "--state-dir", e.state)
			t.Logf("ecrd store recover: exit %d\n%s%s", code, out, errs)
			if code != 0 {
				code, out, _ := runCLI(t, "", "store", "check", "--state-dir", e.state)
				t.Logf("store check: %d\n%s", code, out)
				return
			}
			p = e.start()
			for i := range n1 + n2 {
				e.capture(fmt.Sprintf("STX_WAL%03d", i))
			}
			stopCleanly(t, p)
			calls := e.fake.Calls()
			for i := range n1 + n2 {
				if id := fmt.Sprintf("STX_WAL%03d", i); calls.StartCash[id] != 1 {
					t.Errorf("%s: start/cash sent %d times", id, calls.StartCash[id])
				}
			}
		})
	}
}

// dbPages lists the pages a dbstat query names, from the database at path (read-only).
func dbPages(t *testing.T, path, q string, args ...any) []int64 {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var pages []int64
	for rows.Next() {
		var p int64
		rows.Scan(&p)
		pages = append(pages, p)
	}
	return pages
}

// overwritePage writes garbage over page p (numbered from 1), as a failing card would.
func overwritePage(t *testing.T, path string, p int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(bytes.Repeat([]byte("\xffdamaged"), 4096/8), (p-1)*4096); err != nil {
		t.Fatal(err)
	}
}

// A whole database with no mark is left byte for byte as it was ("nothing done", exit 0);
// one whose first page is gone is refused (exit 1), left byte for byte as it was, and marked,
// so that no daemon starts on it; a second recover beside a running one is refused.
func TestRedteamRecoverLeavesWholeAndUnreadableAlone(t *testing.T) {
	state := t.TempDir()
	st, err := store.Open(state)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	db := filepath.Join(state, store.File)
	before, _ := os.ReadFile(db)
	code, out, errs := runCLI(t, "", "store", "recover", "--state-dir", state)
	if after, _ := os.ReadFile(db); code != 0 || out != "integrity:  ok: the database is not damaged; nothing done\n" || !bytes.Equal(before, after) {
		t.Fatalf("whole database: exit %d %q %q; unchanged %v", code, out, errs, bytes.Equal(before, after))
	}

	overwritePage(t, db, 1)
	before, _ = os.ReadFile(db)
	code, out, errs = runCLI(t, "", "store", "recover", "--state-dir", state)
	if after, _ := os.ReadFile(db); code != 1 || !bytes.Equal(before, after) || !strings.Contains(errs, "restore a backup") {
		t.Fatalf("first page gone: exit %d %q %q; unchanged %v", code, out, errs, bytes.Equal(before, after))
	}
	if _, err := os.Stat(db + store.DamagedSuffix); err != nil {
		t.Fatalf("no mark after a refused recovery: %v", err)
	}
	if _, err := store.Open(state); err == nil {
		t.Fatal("the store opens after a refused recovery")
	}

	lock, err := lockStateDir(state)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if code, _, errs := runCLI(t, "", "store", "recover", "--state-dir", state); code != 1 || !strings.Contains(errs, "in use by another ecrd") {
		t.Fatalf("recover beside a holder of the lock: exit %d %q", code, errs)
	}
}
