package spool

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/printer"
	"github.com/ecrd-pos/ecrd/store"
)

func TestPruneKeepsNewestDone(t *testing.T) {
	dir := t.TempDir()
	p := newFake()
	opt := fastOpts()
	opt.KeepDone = 10
	s, err := openSpool(t, dir, p, opt)
	if err != nil {
		t.Fatal(err)
	}
	// The worker prunes in the background every KeepDone/10 printed jobs; held off here, so
	// that the rows Prune finds are all 25 and what it leaves is its own doing.
	s.pruning.Lock()
	defer s.pruning.Unlock()
	before := time.Now()
	stop := run(t, s)
	for i := 0; i < 25; i++ {
		if _, err := s.Add(Job{ID: fmt.Sprintf("j%02d", i), Data: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	waitPrinted(t, s, "j24")
	// Queued jobs, which a prune must leave alone.
	p.set(printer.StatePaperOut)
	for i := 0; i < 3; i++ {
		if _, err := s.Add(Job{ID: fmt.Sprintf("q%d", i), Data: []byte(fmt.Sprintf("queued %d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	waitHeld(t, s, "q2", "paper_out")
	stop()

	printedRows := func(st *store.Store) []string {
		t.Helper()
		rows, err := st.RecentJobs(100)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, j := range rows {
			if j.State == store.Printed {
				ids = append(ids, j.ID)
			}
		}
		return ids
	}
	if ids := printedRows(s.st); len(ids) != 25 {
		t.Fatalf("%d printed rows before the prune, want 25: %v", len(ids), ids)
	}
	if err := s.Prune(); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := 24; i >= 15; i-- {
		want = append(want, fmt.Sprintf("j%02d", i))
	}
	if ids := printedRows(s.st); strings.Join(ids, " ") != strings.Join(want, " ") {
		t.Fatalf("printed rows kept %v, want the newest 10 %v", ids, want)
	}
	q, err := s.st.QueuedJobs()
	if err != nil || len(q) != 3 {
		t.Fatalf("queued rows after the prune: %+v, %v", q, err)
	}
	for i, j := range q {
		b, err := s.st.JobData(j.ID)
		if id, data := fmt.Sprintf("q%d", i), fmt.Sprintf("queued %d", i); j.ID != id || string(b) != data || err != nil {
			t.Fatalf("queued row %d: %s %q, %v; want %s %q", i, j.ID, b, err, id, data)
		}
	}
	// A second prune finds nothing more to forget.
	if err := s.Prune(); err != nil {
		t.Fatal(err)
	}
	if n := len(printedRows(s.st)); n != 10 {
		t.Fatalf("%d printed rows after a second prune, want 10", n)
	}
	// What the status line counts is bounded the same way.
	if n := s.PrintedSince(before); n != 10 {
		t.Fatalf("PrintedSince(start of the test) = %d after the prune, want the 10 kept", n)
	}
	s.st.Close()
	// A new life knows the printed jobs only from the store: the newest are kept, the oldest
	// gone; the queued ones wait.
	s2, err := openSpool(t, dir, newFake(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if in, err := s2.Job("j24"); err != nil || in.State != StatePrinted {
		t.Fatalf("newest job forgotten: %+v %v", in, err)
	}
	if _, err := s2.Job("j00"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("oldest job kept: %v", err)
	}
	if pend := s2.Pending(); len(pend) != 3 || pend[0].ID != "q0" {
		t.Fatalf("pending in the new life: %+v", pend)
	}
}

func TestPrintedSinceCountsPrintedRows(t *testing.T) {
	p := newFake()
	s, err := openSpool(t, t.TempDir(), p, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	run(t, s)
	var at []time.Time
	for _, id := range []string{"a", "b", "c"} {
		if _, err := s.Add(Job{ID: id, Data: []byte(id)}); err != nil {
			t.Fatal(err)
		}
		waitPrinted(t, s, id)
		at = append(at, row(t, s.st, id).Printed)
	}
	if !at[0].Before(at[1]) || !at[1].Before(at[2]) {
		t.Fatalf("printed times %v not increasing", at)
	}
	// A queued job is not counted.
	p.set(printer.StatePaperOut)
	if _, err := s.Add(Job{ID: "d", Data: []byte("d")}); err != nil {
		t.Fatal(err)
	}
	waitHeld(t, s, "d", "paper_out")
	elsewhere := time.FixedZone("UTC+5", 5*3600)
	for _, c := range []struct {
		since time.Time
		want  int
	}{
		{at[0].Add(-time.Hour), 3},
		{at[0], 3},
		{at[1], 2}, // at t counts
		{at[1].Add(time.Nanosecond), 1},
		{at[1].In(elsewhere), 2}, // the same instant in another zone
		{at[2], 1},
		{at[2].Add(time.Nanosecond), 0},
	} {
		if n := s.PrintedSince(c.since); n != c.want {
			t.Errorf("PrintedSince(%v) = %d, want %d", c.since, n, c.want)
		}
	}
}

func TestRecentListsNewestFirst(t *testing.T) {
	p := newFake()
	s, err := openSpool(t, t.TempDir(), p, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	run(t, s)
	for _, id := range []string{"a", "b"} {
		if _, err := s.Add(Job{ID: id, Kind: "receipt", Data: []byte(id)}); err != nil {
			t.Fatal(err)
		}
	}
	waitPrinted(t, s, "b")
	p.set(printer.StatePaperOut)
	for _, id := range []string{"c", "d"} {
		if _, err := s.Add(Job{ID: id, Kind: "receipt", Data: []byte(id + id)}); err != nil {
			t.Fatal(err)
		}
	}
	waitHeld(t, s, "d", "paper_out")
	waitHeld(t, s, "c", "paper_out")

	got, err := s.Recent(3)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, in := range got {
		ids = append(ids, in.ID)
	}
	if strings.Join(ids, " ") != "d c b" {
		t.Fatalf("Recent(3) = %v, want d c b", ids)
	}
	for _, in := range got[:2] {
		if in.State != StateQueued || !in.Held || !strings.Contains(in.Reason, "paper_out") || in.Bytes != 2 {
			t.Fatalf("queued job in Recent: %+v; want held, its reason and 2 bytes", in)
		}
	}
	if b := got[2]; b.State != StatePrinted || b.Held || b.Reason != "" || b.Printed.IsZero() || b.Bytes != 1 {
		t.Fatalf("printed job in Recent: %+v", b)
	}
	all, err := s.Recent(10)
	if err != nil || len(all) != 4 || all[3].ID != "a" || all[3].State != StatePrinted {
		t.Fatalf("Recent(10) = %+v, %v; want d c b a", all, err)
	}
}
