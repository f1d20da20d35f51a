package store

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestJobs(t *testing.T) {
	s := open(t)
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 6, cest)
	data := bytes.Repeat([]byte("\x1b@receipt line\n"), 140) // about 2 KB
	kick := []byte{0x1b, 'p', 0, 25, 250}
	j1 := &Job{ID: "j1", TransactionID: "T1", Kind: "receipt", Data: data, Kick: kick, KickLife: "life-1", Created: t0}
	if !addJob(t, s, j1) {
		t.Fatal("AddJob j1: not added")
	}
	j2 := &Job{ID: "j2", TransactionID: "T1", Kind: "merchant", Data: []byte("m"), Created: t0.Add(time.Second)}
	j3 := &Job{ID: "j3", Kind: "lines", Data: []byte("l"), Created: t0.Add(2 * time.Second)}
	if !addJob(t, s, j2) || !addJob(t, s, j3) {
		t.Fatal("AddJob: not added")
	}
	if j1.Seq <= 0 || j2.Seq <= j1.Seq || j3.Seq <= j2.Seq {
		t.Fatalf("seqs %d %d %d, want increasing", j1.Seq, j2.Seq, j3.Seq)
	}

	got, err := s.Job("j1")
	if err != nil {
		t.Fatal(err)
	}
	want := &Job{Seq: j1.Seq, ID: "j1", TransactionID: "T1", Kind: "receipt", State: Queued, Bytes: len(data),
		Kick: kick, KickLife: "life-1", Created: t0.UTC()}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Job j1:\n%+v\nwant\n%+v", got, want)
	}
	if b, err := s.JobData("j1"); err != nil || !bytes.Equal(b, data) {
		t.Errorf("JobData j1: %d bytes, %v", len(b), err)
	}
	if _, err := s.Job("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Job of a missing id: %v", err)
	}
	if _, err := s.JobData("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("JobData of a missing id: %v", err)
	}

	// A second AddJob of a queued id changes nothing.
	dup := &Job{ID: "j1", TransactionID: "T9", Kind: "reprint", Data: []byte("other"), Created: t0.Add(time.Hour)}
	if addJob(t, s, dup) {
		t.Error("AddJob of a queued id: added")
	}
	if dup.Seq != 0 {
		t.Errorf("AddJob of a queued id set Seq %d", dup.Seq)
	}
	if got, _ := s.Job("j1"); !reflect.DeepEqual(got, want) {
		t.Errorf("AddJob of a queued id changed it:\n%+v", got)
	}
	if b, _ := s.JobData("j1"); !bytes.Equal(b, data) {
		t.Error("AddJob of a queued id changed its data")
	}

	// SetKickLife names another life, or none.
	unflushed(t, s, func(tx *Tx) error { return tx.SetKickLife("j1", "life-2") })
	if got, _ := s.Job("j1"); got.KickLife != "life-2" {
		t.Errorf("kick life %q, want life-2", got.KickLife)
	}
	unflushed(t, s, func(tx *Tx) error { return tx.SetKickLife("j1", "") })
	if got, _ := s.Job("j1"); got.KickLife != "" || !bytes.Equal(got.Kick, kick) {
		t.Errorf("handed over: kick life %q kick %x", got.KickLife, got.Kick)
	}
	unflushed(t, s, func(tx *Tx) error { return tx.SetKickLife("j1", "life-3") })

	q, err := s.QueuedJobs()
	if err != nil {
		t.Fatal(err)
	}
	if len(q) != 3 || q[0].ID != "j1" || q[1].ID != "j2" || q[2].ID != "j3" {
		t.Fatalf("queued: %+v", q)
	}
	if q[0].Data != nil || q[0].Bytes != len(data) || q[1].Bytes != 1 {
		t.Errorf("queued list: data %d bytes, Bytes %d, %d", len(q[0].Data), q[0].Bytes, q[1].Bytes)
	}

	// MarkPrinted drops the bytes and the pulse, and sets printed and attempts.
	at := t0.Add(time.Minute + 7)
	unflushed(t, s, func(tx *Tx) error { return tx.MarkPrinted("j1", at, 2) })
	got, err = s.Job("j1")
	if err != nil {
		t.Fatal(err)
	}
	want = &Job{Seq: j1.Seq, ID: "j1", TransactionID: "T1", Kind: "receipt", State: Printed, Attempts: 2,
		Bytes: len(data), Created: t0.UTC(), Printed: at.UTC()} // Bytes says how long it was
	if !reflect.DeepEqual(got, want) {
		t.Errorf("printed j1:\n%+v\nwant\n%+v", got, want)
	}
	var dataNull, kickNull, lifeNull bool
	err = rawDB(t, s.Path()).QueryRow(`SELECT data IS NULL, kick IS NULL, kick_life IS NULL FROM jobs WHERE id = 'j1'`).
		Scan(&dataNull, &kickNull, &lifeNull)
	if err != nil || !dataNull || !kickNull || !lifeNull {
		t.Errorf("printed row in the file: data NULL %v, kick NULL %v, kick_life NULL %v (%v)", dataNull, kickNull, lifeNull, err)
	}
	if _, err := s.JobData("j1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("JobData of a printed job: %v, want ErrNotFound", err)
	}
	// SetKickLife does not touch a printed job.
	unflushed(t, s, func(tx *Tx) error { return tx.SetKickLife("j1", "life-4") })
	if got, _ := s.Job("j1"); got.KickLife != "" {
		t.Errorf("SetKickLife changed a printed job: %q", got.KickLife)
	}
	// A second AddJob of a printed id changes nothing either: it must not print again.
	if addJob(t, s, &Job{ID: "j1", Kind: "receipt", Data: data, Created: t0}) {
		t.Error("AddJob of a printed id: added")
	}
	if got, _ := s.Job("j1"); !reflect.DeepEqual(got, want) {
		t.Errorf("AddJob of a printed id changed it:\n%+v", got)
	}
	q, err = s.QueuedJobs()
	if err != nil {
		t.Fatal(err)
	}
	if len(q) != 2 || q[0].ID != "j2" || q[1].ID != "j3" {
		t.Errorf("queued after a print: %+v", q)
	}

	recent, err := s.RecentJobs(2)
	if err != nil {
		t.Fatal(err)
	}
	if len(recent) != 2 || recent[0].ID != "j3" || recent[1].ID != "j2" {
		t.Errorf("recent: %+v", recent)
	}
	tj, err := s.TransactionJobs("T1")
	if err != nil {
		t.Fatal(err)
	}
	if len(tj) != 2 || tj[0].ID != "j1" || tj[1].ID != "j2" {
		t.Errorf("jobs of T1: %+v", tj)
	}
}

// AddPrinted: an older ecrd's printed job, imported without its bytes.
func TestAddPrinted(t *testing.T) {
	s := open(t)
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	at := t0.Add(time.Minute)
	var added bool
	add := func(j *Job) bool {
		t.Helper()
		flushed(t, s, func(tx *Tx) (err error) { added, err = tx.AddPrinted(j, at); return err })
		return added
	}
	if !add(&Job{ID: "p1", TransactionID: "T1", Kind: "receipt", Bytes: 1234, Attempts: 2, Created: t0}) {
		t.Fatal("AddPrinted: not added")
	}
	got, err := s.Job("p1")
	if err != nil {
		t.Fatal(err)
	}
	want := &Job{Seq: got.Seq, ID: "p1", TransactionID: "T1", Kind: "receipt", State: Printed, Bytes: 1234,
		Attempts: 2, Created: t0, Printed: at}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("AddPrinted:\n%+v\nwant\n%+v", got, want)
	}
	if _, err := s.JobData("p1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("JobData of an imported printed job: %v", err)
	}
	if q, _ := s.QueuedJobs(); len(q) != 0 {
		t.Errorf("queued: %+v", q)
	}
	if n, err := s.PrintedSince(at); err != nil || n != 1 {
		t.Errorf("PrintedSince: %d, %v", n, err)
	}
	// Neither a printed nor a queued job of the id is changed.
	if add(&Job{ID: "p1", Kind: "lines", Bytes: 1, Created: t0}) {
		t.Error("AddPrinted of a printed id: added")
	}
	addJob(t, s, &Job{ID: "q1", Kind: "receipt", Data: []byte("q"), Created: t0})
	if add(&Job{ID: "q1", Kind: "receipt", Bytes: 9, Created: t0}) {
		t.Error("AddPrinted of a queued id: added")
	}
	if j, _ := s.Job("p1"); !reflect.DeepEqual(j, want) {
		t.Errorf("p1 changed: %+v", j)
	}
	if j, _ := s.Job("q1"); j.State != Queued || j.Bytes != 1 {
		t.Errorf("q1 changed: %+v", j)
	}
	if addJob(t, s, &Job{ID: "p1", Kind: "receipt", Data: []byte("again"), Created: t0}) {
		t.Error("AddJob of an imported printed id: added (it would print again)")
	}
}

func TestJobChecks(t *testing.T) {
	s := open(t)
	now := time.Now()
	for _, data := range [][]byte{nil, {}} {
		err := s.Flushed(func(tx *Tx) error {
			_, err := tx.AddJob(&Job{ID: "empty", Kind: "receipt", Data: data, Created: now})
			return err
		})
		if err == nil {
			t.Errorf("a queued job with data %#v was added", data)
		}
	}
	err := s.Flushed(func(tx *Tx) error {
		_, err := tx.AddJob(&Job{ID: "nocreated", Kind: "receipt", Data: []byte("x")})
		return err
	})
	if err == nil {
		t.Error("a job without created was added")
	}
	if q, _ := s.QueuedJobs(); len(q) != 0 {
		t.Errorf("queued: %+v", q)
	}
}

func TestQueuedJobsPlan(t *testing.T) {
	s := open(t)
	now := time.Now()
	for i := range 50 {
		addJob(t, s, &Job{ID: fmt.Sprint("j", i), Kind: "receipt", Data: []byte("x"), Created: now})
	}
	unflushed(t, s, func(tx *Tx) error {
		for i := 0; i < 50; i += 2 {
			if err := tx.MarkPrinted(fmt.Sprint("j", i), now, 1); err != nil {
				return err
			}
		}
		return nil
	})
	sp := spyOn(t, s)
	q, err := s.QueuedJobs()
	if err != nil {
		t.Fatal(err)
	}
	if len(q) != 25 {
		t.Errorf("%d queued, want 25", len(q))
	}
	for i, j := range q {
		if j.State != Queued || (i > 0 && q[i-1].Seq >= j.Seq) {
			t.Errorf("queued[%d]: %+v", i, j)
		}
	}
	p := plan(t, s.Path(), sp)
	if !strings.Contains(p, "jobs_queued") {
		t.Errorf("QueuedJobs does not use jobs_queued:\n%s", p)
	}
}

func TestForgetPrinted(t *testing.T) {
	s := open(t)
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	// Printed out of the order they were queued in: ForgetPrinted goes by the printed time.
	printedAt := map[string]time.Duration{"p1": 5, "p2": 1, "p3": 4, "p4": 2, "p5": 3}
	for _, id := range []string{"p1", "q1", "p2", "p3", "q2", "p4", "p5"} {
		addJob(t, s, &Job{ID: id, Kind: "receipt", Data: []byte(id), Created: t0})
	}
	unflushed(t, s, func(tx *Tx) error {
		for id, d := range printedAt {
			if err := tx.MarkPrinted(id, t0.Add(d*time.Second), 1); err != nil {
				return err
			}
		}
		return nil
	})
	present := func() []string {
		t.Helper()
		js, err := s.RecentJobs(100)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, j := range js {
			out = append(out, j.ID)
		}
		sort.Strings(out)
		return out
	}

	// PrintedSince counts at or after t, to the nanosecond.
	for _, c := range []struct {
		since time.Time
		want  int
	}{
		{t0, 5},
		{t0.Add(3 * time.Second), 3},
		{t0.Add(3*time.Second + 1), 2},
		{t0.Add(3*time.Second - 1).In(cest), 3},
		{t0.Add(6 * time.Second), 0},
	} {
		n, err := s.PrintedSince(c.since)
		if err != nil {
			t.Fatal(err)
		}
		if n != c.want {
			t.Errorf("PrintedSince(%v) = %d, want %d", c.since, n, c.want)
		}
	}

	var n int64
	unflushed(t, s, func(tx *Tx) (err error) { n, err = tx.ForgetPrinted(2); return err })
	if n != 3 {
		t.Errorf("ForgetPrinted(2) removed %d, want 3", n)
	}
	if g, w := present(), []string{"p1", "p3", "q1", "q2"}; !reflect.DeepEqual(g, w) {
		t.Errorf("after ForgetPrinted(2): %v, want %v", g, w)
	}
	unflushed(t, s, func(tx *Tx) (err error) { n, err = tx.ForgetPrinted(5); return err })
	if n != 0 {
		t.Errorf("ForgetPrinted(5) of 2 removed %d", n)
	}
	unflushed(t, s, func(tx *Tx) (err error) { n, err = tx.ForgetPrinted(0); return err })
	if n != 2 {
		t.Errorf("ForgetPrinted(0) removed %d, want 2", n)
	}
	if g, w := present(), []string{"q1", "q2"}; !reflect.DeepEqual(g, w) {
		t.Errorf("after ForgetPrinted(0): %v, want %v (queued jobs untouched)", g, w)
	}
	for _, id := range []string{"q1", "q2"} {
		if b, err := s.JobData(id); err != nil || string(b) != id {
			t.Errorf("queued %s after ForgetPrinted: %q, %v", id, b, err)
		}
	}
}
