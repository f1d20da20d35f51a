package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// roFill opens a store in dir and writes captures of every phase and jobs queued and printed,
// as the daemon would; the writer stays open until the test ends.
func roFill(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	now := time.Now().UTC()
	err = s.Flushed(func(tx *Tx) error {
		for i, c := range []*Capture{
			{ID: "STX_RO1", Phase: "captured", Answer: []byte(`{"status":"ok"}`), Spooled: true},
			{ID: "STX_RO2", Phase: "captured", Answer: []byte(`{"status":"ok"}`), Spooled: true},
			{ID: "STX_RO3", Phase: "captured", Pruned: true, Spooled: true, TransID: "1"},
			{ID: "STX_RO4", Phase: "in_doubt", Unfinished: true},
			{ID: "STX_RO5", Phase: "refused"},
		} {
			c.Created = now.Add(time.Duration(i) * time.Second)
			c.Updated = c.Created
			if err := tx.PutCapture(c); err != nil {
				return err
			}
		}
		for _, j := range []*Job{
			{ID: "STX_RO1.receipt", TransactionID: "STX_RO1", Kind: "receipt", Data: []byte("one"), Created: now},
			{ID: "STX_RO2.receipt", TransactionID: "STX_RO2", Kind: "receipt", Data: []byte("two"), Created: now},
		} {
			if _, err := tx.AddJob(j); err != nil {
				return err
			}
		}
		return tx.MarkPrinted("STX_RO1.receipt", now, 1)
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestOpenReadOnlySummaryBesideTheWriter(t *testing.T) {
	dir := t.TempDir()
	w := roFill(t, dir)
	ro, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	sum, err := ro.Summary(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"captured": 3, "in_doubt": 1, "refused": 1}
	if fmt.Sprint(sum.Phases) != fmt.Sprint(want) || sum.Captures != 5 || sum.Unfinished != 1 || sum.Pruned != 1 ||
		sum.JobsQueued != 1 || sum.JobsPrinted != 1 || sum.SchemaVersion != Version || sum.Bytes == 0 {
		t.Fatalf("summary %+v", sum)
	}
	if sum.Newest.IsZero() || time.Since(sum.Newest) > time.Minute {
		t.Errorf("newest capture %v", sum.Newest)
	}
	if err := ro.Check(context.Background()); err != nil {
		t.Fatalf("check: %v", err)
	}
	// It reads what the writer commits after it opened.
	if err := w.Flushed(func(tx *Tx) error {
		return tx.PutCapture(&Capture{ID: "STX_RO6", Phase: "intent", Unfinished: true, Created: time.Now(), Updated: time.Now()})
	}); err != nil {
		t.Fatal(err)
	}
	if sum, err = ro.Summary(context.Background()); err != nil || sum.Captures != 6 || sum.Unfinished != 2 {
		t.Fatalf("after a commit: %+v, %v", sum, err)
	}
	// And it cannot write, by any road.
	if _, err := ro.r.Exec(`DELETE FROM jobs`); err == nil {
		t.Fatal("a read-only store deleted rows")
	}
	if err := ro.Flushed(func(tx *Tx) error { return tx.DeleteCapture("STX_RO1") }); err == nil {
		t.Fatal("a read-only store committed")
	}
	if c, err := w.Capture("STX_RO1"); err != nil || c.Phase != "captured" {
		t.Fatalf("the writer's row: %+v, %v", c, err)
	}
}

// A read-only open never makes a database, nor the directory it would be in.
func TestOpenReadOnlyCreatesNothing(t *testing.T) {
	dir := t.TempDir()
	if _, err := OpenReadOnly(dir); !errors.Is(err, ErrNoDatabase) {
		t.Fatalf("empty directory: %v", err)
	}
	missing := filepath.Join(dir, "nowhere")
	if _, err := OpenReadOnly(missing); !errors.Is(err, ErrNoDatabase) {
		t.Fatalf("missing directory: %v", err)
	}
	if _, err := OpenReadOnlyFile(dir); !errors.Is(err, ErrNoDatabase) {
		t.Fatalf("a directory as the file: %v", err)
	}
	if names, _ := os.ReadDir(dir); len(names) != 0 {
		t.Fatalf("left behind: %v", names)
	}
}

// A database this version cannot read is refused, as Open refuses it: a newer schema, an
// SQLite file that is not ecrd's, a file that is no database.
func TestOpenReadOnlyRefuses(t *testing.T) {
	newer := t.TempDir()
	roFill(t, newer).Close()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(newer, File))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(fmt.Sprintf("PRAGMA user_version = %d", Version+1)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := OpenReadOnly(newer); err == nil || !strings.Contains(err.Error(), "newer ecrd") {
		t.Errorf("newer schema: %v", err)
	}

	other := t.TempDir()
	db, _ = sql.Open("sqlite", "file:"+filepath.Join(other, File))
	if _, err := db.Exec(`CREATE TABLE t (x)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := OpenReadOnly(other); err == nil || !strings.Contains(err.Error(), "not an ecrd state database") {
		t.Errorf("another program's database: %v", err)
	}

	junk := t.TempDir()
	os.WriteFile(filepath.Join(junk, File), []byte(strings.Repeat("not sqlite ", 1000)), 0o600)
	if _, err := OpenReadOnly(junk); !errors.Is(err, ErrCorrupt) {
		t.Errorf("not a database: %v", err)
	}
	if _, err := os.Stat(filepath.Join(junk, File+DamagedSuffix)); !os.IsNotExist(err) {
		t.Errorf("a read-only open left the damaged mark: %v", err)
	}
}

// Check of a damaged database says what SQLite found, and leaves no mark: the mark stops the
// daemon, and is the daemon's to write.
func TestReadOnlyCheckFindsDamageAndLeavesNoMark(t *testing.T) {
	dir := t.TempDir()
	s := roFill(t, dir)
	// Enough rows for pages in the middle of the file, then checkpointed into it.
	err := s.Flushed(func(tx *Tx) error {
		for i := range 300 {
			c := &Capture{ID: fmt.Sprintf("STX_FILL%04d", i), Phase: "captured", Answer: []byte(strings.Repeat("a", 500)),
				Spooled: true, Created: time.Now(), Updated: time.Now()}
			if err := tx.PutCapture(c); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	path := filepath.Join(dir, File)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	f.WriteAt([]byte(strings.Repeat("\xffdamaged", 512)), fi.Size()/2/4096*4096)
	f.Close()

	ro, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	err = ro.Check(context.Background())
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("check of a damaged database: %v", err)
	}
	if _, err := os.Stat(path + DamagedSuffix); !os.IsNotExist(err) {
		t.Fatalf("check left the damaged mark: %v", err)
	}
}

// A database marked damaged opens read-only (to check it is why one opens it), and a backup
// taken read-only while the writer runs is a whole database with the same rows.
func TestReadOnlyBackupAndMarkedDatabase(t *testing.T) {
	dir := t.TempDir()
	roFill(t, dir)
	os.WriteFile(filepath.Join(dir, File+DamagedSuffix), []byte("test\n"), 0o600)
	ro, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatalf("a marked database: %v", err)
	}
	defer ro.Close()
	out := filepath.Join(t.TempDir(), "backup.db")
	if err := ro.Backup(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	if err := ro.Backup(context.Background(), out); err == nil {
		t.Fatal("a backup over an existing file")
	}
	b, err := OpenReadOnlyFile(out)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	a, _ := ro.Summary(context.Background())
	c, err := b.Summary(context.Background())
	if err != nil || c.Captures != a.Captures || c.JobsQueued != a.JobsQueued || c.JobsPrinted != a.JobsPrinted {
		t.Fatalf("backup %+v (%v), original %+v", c, err, a)
	}
}

func TestURIPath(t *testing.T) {
	plain := t.TempDir()
	roFill(t, plain).Close()
	dir := filepath.Join(t.TempDir(), "a %41?b#c")
	if err := os.Rename(plain, dir); err != nil {
		t.Fatal(err)
	}
	ro, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if sum, err := ro.Summary(context.Background()); err != nil || sum.Captures != 5 {
		t.Fatalf("%+v, %v", sum, err)
	}
}
