package store

import (
	"database/sql"
	"database/sql/driver"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

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
