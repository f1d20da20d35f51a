package store

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestBackup(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	// Enough rows that the copy takes a while, for the commits to go on meanwhile.
	now := time.Now()
	flushed(t, s, func(tx *Tx) error {
		for i := range 500 {
			c := fullCapture(fmt.Sprintf("old%04d", i))
			c.Unfinished = false
			c.Answer = bytes.Repeat([]byte{'a'}, 2000)
			if err := tx.PutCapture(c); err != nil {
				return err
			}
		}
		return nil
	})
	// Each commit adds capture and job number i and sets meta n to i: a consistent copy
	// holds 1..n of both, whatever n is.
	started := make(chan struct{})
	stop := make(chan struct{})
	done := make(chan error, 1)
	total := 0
	go func() {
		defer close(done)
		for i := 1; ; i++ {
			select {
			case <-stop:
				total = i - 1
				return
			default:
			}
			commit := s.Unflushed
			if i%2 == 0 {
				commit = s.Flushed
			}
			err := commit(func(tx *Tx) error {
				c := &Capture{ID: fmt.Sprintf("T%06d", i), Phase: "intent", Unfinished: true, Created: now, Updated: now}
				if err := tx.PutCapture(c); err != nil {
					return err
				}
				if _, err := tx.AddJob(&Job{ID: c.ID, Kind: "lines", Data: []byte(c.ID), Created: now}); err != nil {
					return err
				}
				return tx.PutMeta("n", []byte(fmt.Sprint(i)))
			})
			if err != nil {
				done <- err
				return
			}
			if i == 20 {
				close(started)
			}
		}
	}()
	<-started
	bdir := t.TempDir()
	bpath := filepath.Join(bdir, File)
	f0, u0 := s.Commits()
	err := s.Backup(ctx, bpath)
	f1, u1 := s.Commits()
	close(stop)
	if werr := <-done; werr != nil {
		t.Fatal(werr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d commits during the backup", f1+u1-f0-u0)

	b, err := Open(bdir)
	if err != nil {
		t.Fatalf("the backup does not open: %v", err)
	}
	defer b.Close()
	if err := b.Check(ctx); err != nil {
		t.Fatal(err)
	}
	v, err := b.Meta("n")
	if err != nil {
		t.Fatal(err)
	}
	var n int
	fmt.Sscan(string(v), &n)
	t.Logf("the backup holds %d of %d commits", n, total)
	if n < 20 || n > total || int64(n) > f1+u1 {
		t.Fatalf("backup's n = %d", n)
	}
	cs, err := b.UnfinishedCaptures()
	if err != nil {
		t.Fatal(err)
	}
	js, err := b.QueuedJobs()
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != n || len(js) != n {
		t.Fatalf("backup: n = %d, %d captures, %d jobs: not one prefix", n, len(cs), len(js))
	}
	for i := range n {
		id := fmt.Sprintf("T%06d", i+1)
		if cs[i].ID != id || js[i].ID != id {
			t.Fatalf("backup row %d: capture %s job %s, want %s", i, cs[i].ID, js[i].ID, id)
		}
	}
	var all int
	if err := rawDB(t, bpath).QueryRow(`SELECT count(*) FROM captures`).Scan(&all); err != nil || all != 500+n {
		t.Errorf("backup holds %d captures, want %d (%v)", all, 500+n, err)
	}
	// The backup is a store of its own: it takes writes.
	flushed(t, b, func(tx *Tx) error { return tx.PutMeta("restored", []byte("1")) })

	// The store goes on after the backup.
	if all, err := s.UnfinishedCaptures(); err != nil || len(all) != total {
		t.Errorf("store after the backup: %d captures, %v", len(all), err)
	}

	// Not over an existing file, even an empty one.
	existing := filepath.Join(t.TempDir(), "existing.db")
	if err := os.WriteFile(existing, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := s.Backup(ctx, existing); err == nil {
		t.Error("backup over an existing file succeeded")
	}
	if fi, err := os.Stat(existing); err != nil || fi.Size() != 0 {
		t.Errorf("backup changed the existing file: %v %v", fi, err)
	}
	if err := s.Backup(ctx, bpath); err == nil {
		t.Error("backup over an earlier backup succeeded")
	}
	if s.Corrupt() {
		t.Error("a refused backup marked the store damaged")
	}
}
