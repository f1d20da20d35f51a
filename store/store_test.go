package store

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// open opens a store in a fresh directory, closed when the test ends.
func open(t testing.TB) *Store {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// rawDB opens the store's file through database/sql on its own connections, to look at what
// the store wrote (and how SQLite plans the store's queries) from outside.
func rawDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func flushed(t testing.TB, s *Store, fn func(*Tx) error) {
	t.Helper()
	if err := s.Flushed(fn); err != nil {
		t.Fatal(err)
	}
}

func unflushed(t testing.TB, s *Store, fn func(*Tx) error) {
	t.Helper()
	if err := s.Unflushed(fn); err != nil {
		t.Fatal(err)
	}
}

func put(t testing.TB, s *Store, cs ...*Capture) {
	t.Helper()
	flushed(t, s, func(tx *Tx) error {
		for _, c := range cs {
			if err := tx.PutCapture(c); err != nil {
				return err
			}
		}
		return nil
	})
}

func addJob(t testing.TB, s *Store, j *Job) bool {
	t.Helper()
	var added bool
	flushed(t, s, func(tx *Tx) error {
		var err error
		added, err = tx.AddJob(j)
		return err
	})
	return added
}

var cest = time.FixedZone("CEST", 2*3600)

// fullCapture sets every field to something other than its zero value, with times in a zone
// other than UTC and nanoseconds that a millisecond or microsecond format would lose.
func fullCapture(id string) *Capture {
	return &Capture{
		ID:            id,
		Phase:         "captured",
		Unfinished:    true,
		Attempts:      3,
		Created:       time.Date(2024, 5, 6, 7, 8, 9, 123456789, cest),
		Updated:       time.Date(2024, 5, 6, 7, 9, 10, 1, cest),
		Sent:          time.Date(2024, 5, 6, 7, 8, 10, 999999999, cest),
		SentSteady:    1234567890123,
		UpdatedSteady: 1234567899999,
		SteadyClock:   "boot-1",
		Doubted:       true,
		Doubt:         "timeout after 30s",
		Answer:        []byte(`{"status":"ok","data":{"trans_id":"TX1"}}` + "\x00\xff"),
		TransID:       "TX1",
		PaymentMethod: "cash",
		Refusal:       []byte(`{"status":"error","errors":[{"code":"0001"}]}`),
		Spooled:       true,
		JobError:      "paper out",
		Reprints:      2,
		Pruned:        false,
	}
}

// sameCapture fails unless got is want read back: times equal to the nanosecond and in UTC,
// every other field equal.
func sameCapture(t testing.TB, got, want *Capture) {
	t.Helper()
	g, w := *got, *want
	for _, f := range []struct {
		name string
		g, w time.Time
	}{{"Created", g.Created, w.Created}, {"Updated", g.Updated, w.Updated}, {"Sent", g.Sent, w.Sent}} {
		if f.w.IsZero() {
			if !f.g.IsZero() {
				t.Errorf("%s %s: got %v, want the zero time", w.ID, f.name, f.g)
			}
			continue
		}
		if !f.g.Equal(f.w) || f.g.Location() != time.UTC || f.g.Nanosecond() != f.w.Nanosecond() {
			t.Errorf("%s %s: got %v (%v), want %v in UTC", w.ID, f.name, f.g, f.g.Location(), f.w.UTC())
		}
	}
	g.Created, g.Updated, g.Sent = time.Time{}, time.Time{}, time.Time{}
	w.Created, w.Updated, w.Sent = time.Time{}, time.Time{}, time.Time{}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("read back\n%+v\nwant\n%+v", g, w)
	}
}

func TestCaptureRoundTrip(t *testing.T) {
	s := open(t)
	full := fullCapture("T1")
	// The fewest fields a row can have: every optional one empty.
	bare := &Capture{ID: "T2", Phase: "not_captured", Created: time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC),
		Updated: time.Date(2024, 1, 2, 3, 4, 5, 7, time.Local)}
	put(t, s, full, bare)

	got, err := s.Capture("T1")
	if err != nil {
		t.Fatal(err)
	}
	sameCapture(t, got, full)
	got, err = s.Capture("T2")
	if err != nil {
		t.Fatal(err)
	}
	sameCapture(t, got, bare)
	if got.Answer != nil || got.Refusal != nil {
		t.Errorf("bare row: answer %q refusal %q, want nil", got.Answer, got.Refusal)
	}

	// Empty strings, zero numbers and zero times are NULL in the file (PrunableCaptures'
	// "steady_clock IS NOT ?" depends on it), and NULL reads back as the zero value.
	var nulls string
	err = rawDB(t, s.Path()).QueryRow(`SELECT concat_ws(',', sent IS NULL, sent_steady IS NULL,
		updated_steady IS NULL, steady_clock IS NULL, doubt IS NULL, answer IS NULL, trans_id IS NULL,
		payment_method IS NULL, refusal IS NULL, job_error IS NULL, unfinished, doubted, spooled, pruned)
		FROM captures WHERE id = 'T2'`).Scan(&nulls)
	if err != nil {
		t.Fatal(err)
	}
	if nulls != "1,1,1,1,1,1,1,1,1,1,0,0,0,0" {
		t.Errorf("bare row's NULLs and flags: %s", nulls)
	}
	var created string
	if err := rawDB(t, s.Path()).QueryRow(`SELECT created FROM captures WHERE id = 'T1'`).Scan(&created); err != nil {
		t.Fatal(err)
	}
	if created != "2024-05-06T05:08:09.123456789Z" {
		t.Errorf("created stored as %q", created)
	}

	if _, err := s.Capture("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Capture of a missing id: %v, want ErrNotFound", err)
	}

	// Upsert: the second put replaces every field, including back to empty.
	repl := &Capture{ID: "T1", Phase: "refused", Attempts: 4,
		Created: full.Created, Updated: full.Updated.Add(time.Second), Refusal: []byte(`{"x":1}`)}
	put(t, s, repl)
	got, err = s.Capture("T1")
	if err != nil {
		t.Fatal(err)
	}
	sameCapture(t, got, repl)

	// DeleteCapture removes it; the other row stays.
	flushed(t, s, func(tx *Tx) error { return tx.DeleteCapture("T1") })
	if _, err := s.Capture("T1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("after DeleteCapture: %v, want ErrNotFound", err)
	}
	if _, err := s.Capture("T2"); err != nil {
		t.Errorf("DeleteCapture took another row: %v", err)
	}
	// Deleting what is not there is not an error.
	flushed(t, s, func(tx *Tx) error { return tx.DeleteCapture("T1") })
}

// prune does what capture's prune does to a paid record (the store had DropAnswer for it):
// it writes the row again without its answer, marked pruned.
func prune(t testing.TB, s *Store, ids ...string) {
	t.Helper()
	var cs []*Capture
	for _, id := range ids {
		c, err := s.Capture(id)
		if err != nil {
			t.Fatal(err)
		}
		c.Answer, c.Pruned = nil, true
		cs = append(cs, c)
	}
	unflushed(t, s, func(tx *Tx) error {
		for _, c := range cs {
			if err := tx.PutCapture(c); err != nil {
				return err
			}
		}
		return nil
	})
}

func TestPrunedRow(t *testing.T) {
	s := open(t)
	c := fullCapture("T1")
	c.Unfinished = false
	put(t, s, c)
	prune(t, s, "T1")
	got, err := s.Capture("T1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Answer != nil || !got.Pruned {
		t.Errorf("pruned: answer %q pruned %v", got.Answer, got.Pruned)
	}
	want := *c
	want.Answer, want.Pruned = nil, true
	sameCapture(t, got, &want) // id, trans_id, payment_method (and the rest) kept
	var answerNull bool
	if err := rawDB(t, s.Path()).QueryRow(`SELECT answer IS NULL FROM captures WHERE id = 'T1'`).Scan(&answerNull); err != nil || !answerNull {
		t.Errorf("pruned row's answer in the file: NULL %v, %v", answerNull, err)
	}
}

func TestCaptureChecks(t *testing.T) {
	s := open(t)
	now := time.Now()
	noAnswer := &Capture{ID: "T1", Phase: "captured", Spooled: true, Created: now, Updated: now, TransID: "TX"}
	err := s.Flushed(func(tx *Tx) error { return tx.PutCapture(noAnswer) })
	if err == nil {
		t.Fatal("a captured row without answer, not pruned, was written")
	}
	if errors.Is(err, ErrCorrupt) || s.Corrupt() {
		t.Fatalf("a constraint is not damage: %v", err)
	}
	if !strings.HasPrefix(err.Error(), "store: ") {
		t.Errorf("error does not name the store: %v", err)
	}
	if _, err := s.Capture("T1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the refused row is there: %v", err)
	}
	bad := &Capture{ID: "T1", Phase: "paid", Unfinished: true, Created: now, Updated: now}
	if err := s.Flushed(func(tx *Tx) error { return tx.PutCapture(bad) }); err == nil {
		t.Error("an unknown phase was written")
	}
	noCreated := &Capture{ID: "T1", Phase: "intent", Unfinished: true, Updated: now}
	if err := s.Flushed(func(tx *Tx) error { return tx.PutCapture(noCreated) }); err == nil {
		t.Error("a row without created was written")
	}
	// What may still need work is unfinished: an intent, a doubt, a capture not spooled.
	for _, c := range []*Capture{
		{ID: "T2", Phase: "intent", Created: now, Updated: now},
		{ID: "T2", Phase: "in_doubt", Created: now, Updated: now},
		{ID: "T2", Phase: "captured", Answer: []byte("{}"), Created: now, Updated: now},
	} {
		if err := s.Flushed(func(tx *Tx) error { return tx.PutCapture(c) }); err == nil {
			t.Errorf("a finished %s row (spooled %v) was written", c.Phase, c.Spooled)
		}
	}
	// Pruned, a captured row may lack its answer.
	noAnswer.Pruned = true
	put(t, s, noAnswer)
	if f, u := s.Commits(); f != 1 || u != 0 {
		t.Errorf("commits %d flushed %d unflushed, want 1 and 0", f, u)
	}
}

func TestMeta(t *testing.T) {
	s := open(t)
	if _, err := s.Meta("steady"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Meta of a missing key: %v", err)
	}
	flushed(t, s, func(tx *Tx) error { return tx.PutMeta("steady", []byte("one")) })
	unflushed(t, s, func(tx *Tx) error { return tx.PutMeta("steady", []byte("two")) })
	v, err := s.Meta("steady")
	if err != nil || string(v) != "two" {
		t.Fatalf("Meta: %q, %v", v, err)
	}
}

// spy is a database/sql driver around SQLite's that records the statements prepared through
// it: the tests put it under a store's readers to learn the exact SQL a method runs.
type spy struct {
	driver.Driver
	mu sync.Mutex
	qs []string
}

type spyConn struct {
	driver.Conn
	s *spy
}

func (s *spy) Open(name string) (driver.Conn, error) {
	c, err := s.Driver.Open(name)
	if err != nil {
		return nil, err
	}
	return spyConn{c, s}, nil
}

func (c spyConn) Prepare(q string) (driver.Stmt, error) {
	c.s.mu.Lock()
	c.s.qs = append(c.s.qs, q)
	c.s.mu.Unlock()
	return c.Conn.Prepare(q)
}

// take returns the statements recorded since the previous call.
func (s *spy) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	qs := s.qs
	s.qs = nil
	return qs
}

var theSpy = func() *spy {
	db, err := sql.Open("sqlite", "")
	if err != nil {
		panic(err)
	}
	defer db.Close()
	s := &spy{Driver: db.Driver()}
	sql.Register("sqlite-spy", s)
	return s
}()

// spyOn puts the spy under s's readers.
func spyOn(t testing.TB, s *Store) *spy {
	t.Helper()
	r, err := sql.Open("sqlite-spy", "file:"+s.path+"?_pragma=busy_timeout(5000)&_pragma=query_only(1)")
	if err != nil {
		t.Fatal(err)
	}
	s.r.Close()
	s.r = r
	theSpy.take()
	return theSpy
}

// plan runs the one statement the spy recorded through EXPLAIN QUERY PLAN on the file and
// returns its lines.
func plan(t testing.TB, path string, sp *spy, args ...any) string {
	t.Helper()
	qs := sp.take()
	if len(qs) != 1 {
		t.Fatalf("recorded %d statements, want 1: %q", len(qs), qs)
	}
	rows, err := rawDB(t, path).Query("EXPLAIN QUERY PLAN "+qs[0], args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s\n%s", qs[0], strings.Join(lines, "\n"))
	return strings.Join(lines, "\n")
}

func ids(cs []*Capture) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.ID)
	}
	sort.Strings(out)
	return out
}

func TestUnfinishedCaptures(t *testing.T) {
	s := open(t)
	var cs []*Capture
	for i := range 60 {
		c := fullCapture(fmt.Sprintf("T%02d", i))
		c.Unfinished = i%3 == 0
		cs = append(cs, c)
	}
	put(t, s, cs...)
	sp := spyOn(t, s)
	got, err := s.UnfinishedCaptures()
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := 0; i < 60; i += 3 {
		want = append(want, fmt.Sprintf("T%02d", i))
	}
	if g := ids(got); !reflect.DeepEqual(g, want) {
		t.Errorf("unfinished: %v, want %v", g, want)
	}
	for i, c := range got {
		if i > 0 && got[i-1].ID >= c.ID {
			t.Errorf("not in id order: %s before %s", got[i-1].ID, c.ID)
		}
		if c.Answer != nil {
			t.Errorf("%s: the list carries the answer", c.ID)
		}
		want := *cs[i*3]
		want.Answer = nil
		sameCapture(t, c, &want)
	}
	p := plan(t, s.Path(), sp)
	if !strings.Contains(p, "captures_unfinished") {
		t.Errorf("UnfinishedCaptures does not use captures_unfinished:\n%s", p)
	}

	gotIDs, err := s.UnfinishedIDs()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotIDs, want) {
		t.Errorf("UnfinishedIDs: %v, want %v", gotIDs, want)
	}
	p = plan(t, s.Path(), sp)
	if !strings.Contains(p, "captures_unfinished") {
		t.Errorf("UnfinishedIDs does not use captures_unfinished:\n%s", p)
	}
}

func TestPrunableCaptures(t *testing.T) {
	s := open(t)
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	old := now.Add(-48 * time.Hour)
	const epoch = "E1"
	mk := func(id, clock string, steady int64, updated time.Time) *Capture {
		return &Capture{ID: id, Phase: "captured", Spooled: true, Created: old, Updated: updated, SteadyClock: clock,
			UpdatedSteady: steady, Answer: []byte("answer of " + id), TransID: "X" + id}
	}
	rows := []*Capture{
		mk("steady-old", epoch, 100, now),            // by steady: old, though its wall time is new
		mk("steady-edge", epoch, 150, now),           // exactly at the steady bound
		mk("steady-new", epoch, 200, old),            // by steady: new, though its wall time is old
		mk("other-old", "E0", 5000, old),             // another epoch: by the wall clock
		mk("other-new", "E0", 1, now),                // another epoch's tiny steady reading counts not
		mk("none-old", "", 0, old),                   // no steady clock: by the wall clock
		mk("none-edge", "", 0, now.Add(-time.Hour)),  // exactly at the wall bound
		mk("none-new", "", 0, now.Add(-time.Minute)), // new on the wall clock
		mk("other-steady0", "E0", 0, old),            // another epoch, no steady reading
		mk("same-nosteady", epoch, 0, old),           // this epoch, no steady reading (NULL): not by wall
	}
	unfinished := mk("unfinished", epoch, 1, old)
	unfinished.Unfinished = true
	unfinishedWall := mk("unfinished-wall", "", 0, old)
	unfinishedWall.Unfinished = true
	pruned := mk("pruned", epoch, 1, old)
	prunedWall := mk("pruned-wall", "E0", 1, old)
	put(t, s, append(rows, unfinished, unfinishedWall, pruned, prunedWall)...)
	prune(t, s, "pruned", "pruned-wall")

	sp := spyOn(t, s)
	wallBefore := now.Add(-time.Hour)
	got, err := s.PrunableCaptures(epoch, 150, wallBefore, 100)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"none-edge", "none-old", "other-old", "other-steady0", "steady-edge", "steady-old"}
	if g := ids(got); !reflect.DeepEqual(g, want) {
		t.Errorf("prunable: %v, want %v", g, want)
	}
	for _, c := range got {
		if c.Answer != nil {
			t.Errorf("%s: the list carries the answer", c.ID)
		}
		if c.TransID != "X"+c.ID {
			t.Errorf("%s: trans_id %q", c.ID, c.TransID)
		}
	}
	p := plan(t, s.Path(), sp, epoch, int64(150), epoch, text(wallBefore), 100)
	if strings.Count(p, "captures_prunable") < 2 {
		// Both halves of the union must read the partial index, not the whole table.
		t.Errorf("PrunableCaptures does not use captures_prunable in both halves:\n%s", p)
	}
	if strings.Contains(p, "SCAN captures\n") || strings.HasSuffix(p, "SCAN captures") {
		t.Errorf("PrunableCaptures scans the table:\n%s", p)
	}

	// The limit is honoured, and what it lets through is prunable.
	for _, limit := range []int{0, 1, 2, 5} {
		got, err := s.PrunableCaptures(epoch, 150, wallBefore, limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != limit {
			t.Errorf("limit %d: %d rows", limit, len(got))
		}
		for _, c := range got {
			if i := sort.SearchStrings(want, c.ID); i == len(want) || want[i] != c.ID {
				t.Errorf("limit %d: %s is not prunable", limit, c.ID)
			}
		}
	}

	// With no wall bound, only the steady clock decides.
	got, err = s.PrunableCaptures(epoch, 1000, time.Time{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := ids(got), []string{"steady-edge", "steady-new", "steady-old"}; !reflect.DeepEqual(g, w) {
		t.Errorf("steady only: %v, want %v", g, w)
	}
	// Once pruned, a row is never prunable again.
	prune(t, s, "steady-old")
	got, err = s.PrunableCaptures(epoch, 1000, time.Time{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := ids(got), []string{"steady-edge", "steady-new"}; !reflect.DeepEqual(g, w) {
		t.Errorf("after a prune: %v, want %v", g, w)
	}
}

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

func TestRollback(t *testing.T) {
	s := open(t)
	now := time.Now()
	put(t, s, &Capture{ID: "keep", Phase: "intent", Unfinished: true, Created: now, Updated: now})
	f0, u0 := s.Commits()
	boom := errors.New("boom")
	for _, commit := range []func(func(*Tx) error) error{s.Flushed, s.Unflushed} {
		err := commit(func(tx *Tx) error {
			c := fullCapture("T1")
			if err := tx.PutCapture(c); err != nil {
				return err
			}
			if err := tx.PutCapture(&Capture{ID: "keep", Phase: "refused", Created: now, Updated: now}); err != nil {
				return err
			}
			if err := tx.DeleteCapture("keep"); err != nil {
				return err
			}
			if _, err := tx.AddJob(&Job{ID: "j1", TransactionID: "T1", Kind: "receipt", Data: []byte("x"), Created: now}); err != nil {
				return err
			}
			if err := tx.PutMeta("m", []byte("v")); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("commit returned %v, want boom", err)
		}
		if _, err := s.Capture("T1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("rolled-back capture is there: %v", err)
		}
		if c, err := s.Capture("keep"); err != nil || c.Phase != "intent" {
			t.Errorf("rolled-back change to another capture: %+v, %v", c, err)
		}
		if _, err := s.Job("j1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("rolled-back job is there: %v", err)
		}
		if _, err := s.Meta("m"); !errors.Is(err, ErrNotFound) {
			t.Errorf("rolled-back meta is there: %v", err)
		}
	}
	// A statement that fails in the middle takes the ones before it along.
	err := s.Flushed(func(tx *Tx) error {
		if _, err := tx.AddJob(&Job{ID: "j2", Kind: "receipt", Data: []byte("x"), Created: now}); err != nil {
			return err
		}
		return tx.PutCapture(&Capture{ID: "bad", Phase: "captured", Unfinished: true, Created: now, Updated: now})
	})
	if err == nil {
		t.Fatal("a captured row without answer was written")
	}
	if _, err := s.Job("j2"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the job before the failed statement is there: %v", err)
	}
	if f, u := s.Commits(); f != f0 || u != u0 {
		t.Errorf("commits went from %d/%d to %d/%d on failed transactions", f0, u0, f, u)
	}
	// The writer is not left inside a transaction (nor held by one: the next commit would
	// wait for its connection forever).
	next := make(chan error, 1)
	go func() { next <- s.Flushed(func(tx *Tx) error { return tx.PutCapture(fullCapture("after")) }) }()
	select {
	case err := <-next:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the commit after a rolled-back one hangs: the writer's connection is still held")
	}
	unflushed(t, s, func(tx *Tx) error { return tx.PutMeta("m", []byte("v")) })
	unflushed(t, s, func(tx *Tx) error { return tx.PutMeta("m", []byte("w")) })
	if f, u := s.Commits(); f != f0+1 || u != u0+2 {
		t.Errorf("commits %d/%d, want %d/%d", f, u, f0+1, u0+2)
	}
	// A reopened store sees only what was committed.
	s.Close()
	s2, err := Open(filepath.Dir(s.Path()))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := s2.Capture("after"); err != nil {
		t.Error(err)
	}
	if _, err := s2.Capture("T1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("reopened: rolled-back capture: %v", err)
	}
	if f, u := s2.Commits(); f != 0 || u != 0 {
		t.Errorf("a new store counts %d/%d commits", f, u)
	}
}

// The synchronous level is the connection's: read it inside the transaction, on the
// transaction's own connection, where the commit will use it.
func TestSynchronousLevel(t *testing.T) {
	s := open(t)
	var ops []string
	s.Observe = func(op string, d time.Duration, err error) {
		if err != nil || d < 0 {
			t.Errorf("observe %s: %v %v", op, d, err)
		}
		ops = append(ops, op)
	}
	level := func(tx *Tx) int {
		var n int
		if err := tx.tx.QueryRow("PRAGMA synchronous").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	var mode string
	if err := s.w.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode %q, %v; want wal", mode, err)
	}
	// Alternate, so that a level left over from the previous commit would show.
	for i, flush := range []bool{true, false, false, true, false, true} {
		var got int
		fn := func(tx *Tx) error {
			got = level(tx)
			return tx.PutMeta("k", []byte{byte(i)})
		}
		if flush {
			flushed(t, s, fn)
		} else {
			unflushed(t, s, fn)
		}
		want := 1 // NORMAL
		if flush {
			want = 2 // FULL
		}
		if got != want {
			t.Errorf("commit %d (flushed %v): synchronous = %d, want %d", i, flush, got, want)
		}
	}
	if w := []string{"fsync", "commit", "commit", "fsync", "commit", "fsync"}; !reflect.DeepEqual(ops, w) {
		t.Errorf("observed %v, want %v", ops, w)
	}
	if f, u := s.Commits(); f != 3 || u != 3 {
		t.Errorf("commits %d/%d, want 3/3", f, u)
	}
}

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

func TestConcurrent(t *testing.T) {
	s := open(t)
	const workers, each = 8, 15
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := func() error {
				for i := range each {
					id := fmt.Sprintf("w%d-%03d", w, i)
					c := fullCapture(id)
					var seq int64
					err := s.Flushed(func(tx *Tx) error {
						if err := tx.PutCapture(c); err != nil {
							return err
						}
						j := &Job{ID: id, TransactionID: id, Kind: "receipt", Data: []byte(id), Created: time.Now()}
						if _, err := tx.AddJob(j); err != nil {
							return err
						}
						seq = j.Seq
						return nil
					})
					if err != nil {
						return err
					}
					got, err := s.Capture(id)
					if err != nil {
						return err
					}
					if got.ID != id || !bytes.Equal(got.Answer, c.Answer) {
						return fmt.Errorf("read back %s: %+v", id, got)
					}
					if b, err := s.JobData(id); err != nil || string(b) != id {
						return fmt.Errorf("job data %s: %q, %v", id, b, err)
					}
					if _, err := s.QueuedJobs(); err != nil {
						return err
					}
					if _, err := s.UnfinishedCaptures(); err != nil {
						return err
					}
					err = s.Unflushed(func(tx *Tx) error { return tx.MarkPrinted(id, time.Now(), 1) })
					if err != nil {
						return err
					}
					if j, err := s.Job(id); err != nil || j.State != Printed || j.Seq != seq {
						return fmt.Errorf("job %s after print: %+v, %v", id, j, err)
					}
				}
				return nil
			}()
			if err != nil {
				errs <- fmt.Errorf("worker %d: %w", w, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	all, err := s.UnfinishedCaptures()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != workers*each {
		t.Errorf("%d captures, want %d", len(all), workers*each)
	}
	jobs, err := s.RecentJobs(1000)
	if err != nil {
		t.Fatal(err)
	}
	seqs := map[int64]bool{}
	for _, j := range jobs {
		if j.State != Printed || seqs[j.Seq] {
			t.Errorf("job %+v", j)
		}
		seqs[j.Seq] = true
	}
	if len(jobs) != workers*each {
		t.Errorf("%d jobs, want %d", len(jobs), workers*each)
	}
	if f, u := s.Commits(); f != workers*each || u != workers*each {
		t.Errorf("commits %d/%d, want %d each", f, u, workers*each)
	}
	if n, err := s.PrintedSince(time.Time{}.Add(time.Nanosecond)); err != nil || n != workers*each {
		t.Errorf("PrintedSince: %d, %v", n, err)
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

// TestPanicInTransaction: a panic in fn reaches the caller, leaves nothing, and leaves the
// store able to commit: the writer's one connection is not held by a transaction nobody ends.
func TestPanicInTransaction(t *testing.T) {
	s := open(t)
	done := make(chan any, 1)
	go func() {
		defer func() { done <- recover() }()
		s.Flushed(func(tx *Tx) error {
			if err := tx.PutCapture(fullCapture("T1")); err != nil {
				return err
			}
			panic("bug in a caller")
		})
	}()
	select {
	case p := <-done:
		if p != "bug in a caller" {
			t.Fatalf("recovered %v, want the caller's panic", p)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Flushed hangs after a panic in fn: the transaction holds the writer's connection")
	}
	next := make(chan error, 1)
	go func() { next <- s.Unflushed(func(tx *Tx) error { return tx.PutMeta("k", []byte("v")) }) }()
	select {
	case err := <-next:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the commit after a panic hangs")
	}
	if _, err := s.Capture("T1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the panicked transaction's row is there: %v", err)
	}
}
