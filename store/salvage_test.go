package store

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// salvageFixture writes n captures (every 7th unfinished, every 3rd with a queued job, the
// rest with a printed one) and returns the database's path, closed.
func salvageFixture(t *testing.T, n int) (string, map[string]*Capture) {
	t.Helper()
	dir := t.TempDir()
	st, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]*Capture{}
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	err = st.Flushed(func(tx *Tx) error {
		for i := range n {
			c := &Capture{ID: fmt.Sprintf("STX_SALVAGE%05d", i), Phase: "captured", Spooled: true, Attempts: 1,
				Created: now, Updated: now, TransID: fmt.Sprint(9000 + i), PaymentMethod: "cash",
				Answer: bytes.Repeat([]byte{'a' + byte(i%26)}, 300)}
			if i%7 == 0 {
				c.Phase, c.Unfinished, c.Answer = "in_doubt", true, nil
			}
			if err := tx.PutCapture(c); err != nil {
				return err
			}
			want[c.ID] = c
			j := &Job{ID: c.ID + ".receipt", TransactionID: c.ID, Kind: "receipt", Data: []byte("\x1b@receipt " + c.ID), Created: now}
			if _, err := tx.AddJob(j); err != nil {
				return err
			}
			if i%3 != 0 {
				if err := tx.MarkPrinted(j.ID, now, 1); err != nil {
					return err
				}
			}
		}
		return tx.PutMeta("steady_clock", []byte("mark"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, File), want
}

// pagesOf lists the pages of one b-tree (a table or an index) of the database at path, of
// one page type (SQLite's dbstat: "internal", "leaf", "overflow").
func pagesOf(t *testing.T, path, name, typ string) []int64 {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT pageno FROM dbstat WHERE name = ? AND pagetype = ? ORDER BY pageno", name, typ)
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
	if len(pages) == 0 {
		t.Fatalf("no %s pages of %s", typ, name)
	}
	return pages
}

// overwrite writes garbage over page p (numbered from 1), as a failing card would.
func overwrite(t *testing.T, path string, p int64) {
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

func salvage(t *testing.T, path string) (*Salvaged, *Store) {
	t.Helper()
	to, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { to.Close() })
	sv, err := Salvage(context.Background(), path, to)
	if err != nil {
		t.Fatal(err)
	}
	if err := to.Check(context.Background()); err != nil {
		t.Fatalf("the salvaged database: %v", err)
	}
	return sv, to
}

// A damaged leaf page of the captures table: its rows are lost, each named by its id with
// whether it was unfinished; every other row is copied as it was, and nothing is both.
func TestSalvageDamagedLeafNamesEveryLostRecord(t *testing.T) {
	t.Parallel()
	path, want := salvageFixture(t, 400)
	leaves := pagesOf(t, path, "captures", "leaf")
	overwrite(t, path, leaves[len(leaves)/2])
	overwrite(t, path, pagesOf(t, path, "jobs", "leaf")[1])

	sv, to := salvage(t, path)
	t.Logf("copied %v; %d captures and %d jobs lost; unreadable: %q", sv.Copied, len(sv.LostCaptures), len(sv.LostJobs), sv.Unreadable)
	if len(sv.LostCaptures) == 0 || len(sv.LostJobs) == 0 || len(sv.Unreadable) == 0 {
		t.Fatalf("a damaged page of each table, and nothing lost: %+v", sv)
	}
	lost := map[string]bool{}
	for _, l := range sv.LostCaptures {
		c, ok := want[l.ID]
		switch {
		case !ok:
			t.Fatalf("lost %q, which was never written", l.ID)
		case l.Unfinished != c.Unfinished:
			t.Errorf("%s lost as unfinished=%v, was %v", l.ID, l.Unfinished, c.Unfinished)
		}
		lost[l.ID] = true
	}
	for id, c := range want {
		got, err := to.Capture(id)
		switch {
		case lost[id] && err == nil:
			t.Errorf("%s both lost and copied", id)
		case lost[id]:
		case err != nil:
			t.Errorf("%s neither copied nor named lost: %v", id, err)
		case got.Phase != c.Phase || !bytes.Equal(got.Answer, c.Answer) || got.TransID != c.TransID || got.Unfinished != c.Unfinished:
			t.Errorf("%s copied as %+v, was %+v", id, got, c)
		}
	}
	if sv.Copied["captures"]+len(sv.LostCaptures) != len(want) {
		t.Errorf("%d copied + %d lost of %d", sv.Copied["captures"], len(sv.LostCaptures), len(want))
	}
	for _, j := range sv.LostJobs {
		i := 0
		fmt.Sscanf(strings.TrimPrefix(j.TransactionID, "STX_SALVAGE"), "%d", &i)
		if j.ID != j.TransactionID+".receipt" || want[j.TransactionID] == nil || j.Queued != (i%3 == 0) {
			t.Errorf("lost job %+v: not as written", j)
		}
		if _, err := to.Job(j.ID); err == nil {
			t.Errorf("job %s both lost and copied", j.ID)
		}
	}
	if sv.Copied["jobs"]+len(sv.LostJobs) != len(want) {
		t.Errorf("%d jobs copied + %d lost of %d", sv.Copied["jobs"], len(sv.LostJobs), len(want))
	}
	if b, err := to.Meta("steady_clock"); err != nil || string(b) != "mark" {
		t.Errorf("meta: %q %v", b, err)
	}
}

// The table's root page damaged: no row of it can be read, and every id is still named from
// the index, so no capture is forgotten.
func TestSalvageDamagedRootStillNamesEveryID(t *testing.T) {
	t.Parallel()
	path, want := salvageFixture(t, 400)
	db, _ := sql.Open("sqlite", "file:"+path+"?mode=ro")
	var root int64
	if err := db.QueryRow("SELECT rootpage FROM sqlite_schema WHERE name = 'captures'").Scan(&root); err != nil {
		t.Fatal(err)
	}
	db.Close()
	overwrite(t, path, root)

	sv, _ := salvage(t, path)
	if sv.Copied["captures"] != 0 || len(sv.LostCaptures) != len(want) {
		t.Fatalf("root page damaged: %d copied, %d lost of %d", sv.Copied["captures"], len(sv.LostCaptures), len(want))
	}
	for _, l := range sv.LostCaptures {
		if want[l.ID] == nil || l.Unfinished != want[l.ID].Unfinished {
			t.Errorf("lost %+v, not as written", l)
		}
	}
	if sv.Copied["jobs"] != len(want) {
		t.Errorf("the jobs table was whole: %d of %d copied", sv.Copied["jobs"], len(want))
	}
}

// A whole database is copied whole; a database of another schema version, or whose first
// page is gone, is refused.
func TestSalvageWholeAndRefused(t *testing.T) {
	t.Parallel()
	path, want := salvageFixture(t, 100)
	sv, _ := salvage(t, path)
	if sv.Copied["captures"] != len(want) || sv.Copied["jobs"] != len(want) || sv.Copied["meta"] != 1 ||
		len(sv.LostCaptures)+len(sv.LostJobs)+len(sv.Unreadable) != 0 {
		t.Fatalf("a whole database: %+v", sv)
	}
	overwrite(t, path, 1)
	to, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer to.Close()
	if _, err := Salvage(context.Background(), path, to); err == nil || !strings.Contains(err.Error(), "restore a backup") {
		t.Fatalf("first page gone: %v", err)
	}
}
