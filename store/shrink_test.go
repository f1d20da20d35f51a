package store

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The file gives pruned answers back: without Shrink it keeps the size of its fullest day
// (SQLite reuses free pages but keeps them), with it the pages go back to the file system.
func TestShrinkReturnsFreedPages(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	size := func() int64 {
		fi, err := os.Stat(filepath.Join(dir, File))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	reopen := func(st *Store) *Store {
		if st != nil {
			if err := st.Close(); err != nil { // the last close checkpoints SQLite's log
				t.Fatal(err)
			}
		}
		st, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	st := reopen(nil)
	answer := []byte(`{"status":"ok","receipt":"` + strings.Repeat("x", 4000) + `"}`)
	now := time.Now()
	err := st.Unflushed(func(tx *Tx) error {
		for i := range 2000 {
			c := &Capture{ID: fmt.Sprintf("STX_SHRINK%06d", i), Phase: "captured", Created: now, Updated: now,
				Answer: answer, Spooled: true}
			if err := tx.PutCapture(c); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	st = reopen(st)
	full := size()
	err = st.Unflushed(func(tx *Tx) error {
		for i := range 2000 {
			if err := tx.DeleteCapture(fmt.Sprintf("STX_SHRINK%06d", i)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	st = reopen(st)
	if kept := size(); kept < full*9/10 {
		t.Fatalf("the file shrank from %d to %d bytes by itself: the test cannot tell Shrink's work", full, kept)
	}
	if err := st.Shrink(); err != nil {
		t.Fatal(err)
	}
	st = reopen(st)
	defer st.Close()
	if after := size(); after > full/10 {
		t.Fatalf("after Shrink the file holds %d of its %d bytes", after, full)
	}
	t.Logf("%d bytes with 2,000 answers, %d after they were removed and Shrink ran", full, size())
}
