package store

import (
	"database/sql"
	"errors"
	"reflect"
	"strings"
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
