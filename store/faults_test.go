package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestOpenExisting(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, fullCapture("T1"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, File+"-wal")); !os.IsNotExist(err) {
		t.Errorf("the log is still there after Close: %v", err)
	}
	// A second Open runs no migration again (it would fail on the existing tables).
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Capture("T1"); err != nil {
		t.Error(err)
	}
	var v int
	if err := rawDB(t, s.Path()).QueryRow("PRAGMA user_version").Scan(&v); err != nil || v != Version {
		t.Errorf("user_version %d, %v; want %d", v, err, Version)
	}
	if err := s.Check(context.Background()); err != nil {
		t.Error(err)
	}
}

func TestNewerSchema(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db := rawDB(t, filepath.Join(dir, File))
	if _, err := db.Exec(fmt.Sprintf("PRAGMA user_version = %d", Version+1)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err = Open(dir)
	if err == nil {
		s.Close()
		t.Fatal("opened a database of a newer schema")
	}
	if !strings.Contains(err.Error(), "newer ecrd") || errors.Is(err, ErrCorrupt) {
		t.Errorf("Open: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, File+DamagedSuffix)); !os.IsNotExist(err) {
		t.Errorf("a newer schema was marked damaged: %v", err)
	}
}

func TestNotADatabase(t *testing.T) {
	dir := t.TempDir()
	junk := make([]byte, 64<<10)
	rand.New(rand.NewSource(1)).Read(junk)
	if err := os.WriteFile(filepath.Join(dir, File), junk, 0o640); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir)
	if err == nil {
		s.Close()
		t.Fatal("opened random bytes as a database")
	}
	t.Logf("Open: %v", err)
	if !errors.Is(err, ErrCorrupt) || !IsCorrupt(err) {
		t.Errorf("Open of random bytes: %v, want ErrCorrupt", err)
	}
	if _, err := os.Stat(filepath.Join(dir, File+DamagedSuffix)); err != nil {
		t.Errorf("no mark: %v", err)
	}
	// The file is left as it was, for the technician.
	if b, _ := os.ReadFile(filepath.Join(dir, File)); !bytes.Equal(b, junk) {
		t.Error("Open changed the damaged file")
	}
}

func TestIsCorrupt(t *testing.T) {
	if IsCorrupt(nil) || IsCorrupt(errors.New("database is locked")) || IsCorrupt(ErrNotFound) {
		t.Error("IsCorrupt of an error that is not damage")
	}
	if !IsCorrupt(fmt.Errorf("x: %w", ErrCorrupt)) {
		t.Error("IsCorrupt of a wrapped ErrCorrupt")
	}
}

// TestCorruption overwrites the middle of a closed database with garbage.
func TestCorruption(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	flushed(t, s, func(tx *Tx) error {
		for i := range 250 {
			c := fullCapture(fmt.Sprintf("T%04d", i))
			c.Answer = bytes.Repeat([]byte{byte(i)}, 1000)
			if err := tx.PutCapture(c); err != nil {
				return err
			}
			if _, err := tx.AddJob(&Job{ID: c.ID, TransactionID: c.ID, Kind: "receipt",
				Data: bytes.Repeat([]byte{'r'}, 500), Created: now}); err != nil {
				return err
			}
		}
		return nil
	})
	if err := s.Check(context.Background()); err != nil {
		t.Fatalf("Check of a sound database: %v", err)
	}
	path := s.Path()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() > 0 {
		t.Fatalf("the log holds %d bytes after Close: not checkpointed", fi.Size())
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	const page = 4096
	if fi.Size() < 50*page {
		t.Fatalf("the database is only %d bytes", fi.Size())
	}
	garbage := make([]byte, 3*page)
	rand.New(rand.NewSource(7)).Read(garbage)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(garbage, fi.Size()/2/page*page); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	mark := path + DamagedSuffix
	s, err = Open(dir)
	if err != nil {
		t.Logf("Open found the damage: %v", err)
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Open: %v, want ErrCorrupt", err)
		}
	} else {
		var calls []error
		s.OnCorrupt = func(err error) { calls = append(calls, err) }
		err = s.Check(context.Background())
		t.Logf("Check: %v", err)
		if !errors.Is(err, ErrCorrupt) || !IsCorrupt(err) {
			t.Fatalf("Check of a damaged database: %v, want ErrCorrupt", err)
		}
		if !s.Corrupt() {
			t.Error("Corrupt() is false after the damage was found")
		}
		if err := s.Flushed(func(tx *Tx) error { return tx.PutMeta("k", nil) }); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Flushed after the damage: %v", err)
		}
		ran := false
		if err := s.Unflushed(func(tx *Tx) error { ran = true; return nil }); !errors.Is(err, ErrCorrupt) || ran {
			t.Errorf("Unflushed after the damage: %v (fn ran: %v)", err, ran)
		}
		if err := s.Check(context.Background()); !errors.Is(err, ErrCorrupt) {
			t.Errorf("second Check: %v", err)
		}
		// Reading every row meets the damaged pages too: as ErrCorrupt, never as a clean list.
		if _, err := s.UnfinishedCaptures(); !errors.Is(err, ErrCorrupt) {
			t.Errorf("UnfinishedCaptures over damaged pages: %v, want ErrCorrupt", err)
		}
		if len(calls) != 1 {
			t.Errorf("OnCorrupt called %d times, want once: %v", len(calls), calls)
		} else if !errors.Is(calls[0], ErrCorrupt) {
			t.Errorf("OnCorrupt told %v", calls[0])
		}
		if f, u := s.Commits(); f != 0 || u != 0 {
			t.Errorf("commits after the damage: %d/%d", f, u)
		}
		s.Close()
	}
	b, err := os.ReadFile(mark)
	if err != nil {
		t.Fatalf("no mark: %v", err)
	}
	if !strings.Contains(string(b), ErrCorrupt.Error()) {
		t.Errorf("the mark says %q", b)
	}
	s, err = Open(dir)
	if err == nil {
		s.Close()
		t.Fatal("Open started on a database marked damaged")
	}
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), mark) {
		t.Errorf("Open of a marked database: %v, want ErrCorrupt naming %s", err, mark)
	}
	// Once the technician removed the mark, Open tries again.
	if err := os.Remove(mark); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(dir); err == nil {
		s.Close()
	} else if !errors.Is(err, ErrCorrupt) {
		t.Errorf("Open after the mark was removed: %v", err)
	}
}

// TestReadLatches: a read that meets a damaged page latches the store like a failed check.
func TestReadLatches(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	flushed(t, s, func(tx *Tx) error {
		for i := range 200 {
			c := fullCapture(fmt.Sprintf("T%04d", i))
			c.Answer = bytes.Repeat([]byte{'a'}, 2000)
			if err := tx.PutCapture(c); err != nil {
				return err
			}
		}
		return nil
	})
	path := s.Path()
	s.Close()
	// Find the table's leaf page that holds T0100 and spoil its header.
	db := rawDB(t, path)
	var pgno int64
	err = db.QueryRow(`SELECT pageno FROM dbstat WHERE name = 'captures' AND pagetype = 'leaf'
		ORDER BY pageno LIMIT 1 OFFSET 50`).Scan(&pgno)
	if err != nil {
		t.Skipf("no dbstat: %v", err)
	}
	db.Close()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xee}, 64), (pgno-1)*4096); err != nil {
		t.Fatal(err)
	}
	f.Close()

	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	calls := 0
	s.OnCorrupt = func(error) { calls++ }
	_, err = s.UnfinishedCaptures()
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("read over a spoilt page: %v, want ErrCorrupt", err)
	}
	if !s.Corrupt() || calls != 1 {
		t.Errorf("Corrupt %v, OnCorrupt called %d times", s.Corrupt(), calls)
	}
	if err := s.Flushed(func(tx *Tx) error { return nil }); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Flushed after a damaged read: %v", err)
	}
	if _, err := os.Stat(path + DamagedSuffix); err != nil {
		t.Errorf("no mark: %v", err)
	}
}

// TestCheckFindsMismatch: a damage SQLite reads without complaint — an index that no longer
// matches its table — is found by Check alone, and is ErrCorrupt like any other.
func TestCheckFindsMismatch(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	var cs []*Capture
	for i := range 30 {
		c := fullCapture(fmt.Sprintf("T%02d", i))
		c.Unfinished = i%2 == 0
		cs = append(cs, c)
	}
	put(t, s, cs...)
	path := s.Path()
	s.Close()
	// Redefine the partial index behind SQLite's back: its entries now miss rows it claims.
	db := rawDB(t, path)
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"PRAGMA writable_schema = ON",
		`UPDATE sqlite_schema SET sql = 'CREATE INDEX captures_unfinished ON captures (id) WHERE NOT unfinished' WHERE name = 'captures_unfinished'`,
		"PRAGMA writable_schema = OFF",
	} {
		if _, err := conn.ExecContext(context.Background(), q); err != nil {
			t.Skipf("cannot rewrite the schema: %v", err)
		}
	}
	conn.Close()
	db.Close()

	s, err = Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	calls := 0
	s.OnCorrupt = func(error) { calls++ }
	err = s.Check(context.Background())
	t.Logf("Check: %v", err)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "captures_unfinished") {
		t.Fatalf("Check: %v, want ErrCorrupt naming the index", err)
	}
	if calls != 1 || !s.Corrupt() {
		t.Errorf("OnCorrupt called %d times, Corrupt %v", calls, s.Corrupt())
	}
	if _, err := os.Stat(path + DamagedSuffix); err != nil {
		t.Errorf("no mark: %v", err)
	}
	if err := s.Unflushed(func(tx *Tx) error { return nil }); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Unflushed after a failed check: %v", err)
	}
}
