package spool

import (
	"database/sql"
	"strings"
	"testing"

	"github.com/ecrd-pos/ecrd/printer"
	"github.com/ecrd-pos/ecrd/store"
)

// The drawer pulse goes right after the job, once; the printed row keeps neither bytes nor
// pulse, and a restart that finds the job printed sends neither again.
func TestKickFollowsTheJobOnce(t *testing.T) {
	dir := t.TempDir()
	p := newFake()
	s, err := openSpool(t, dir, p, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, s)
	if _, err := s.Add(Job{ID: "j", Kind: "receipt", Data: []byte("receipt"), Kick: []byte("KICK")}); err != nil {
		t.Fatal(err)
	}
	waitPrinted(t, s, "j")
	stop()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := p.printed(); len(got) != 2 || string(got[0]) != "receipt" || string(got[1]) != "KICK" {
		t.Fatalf("printed %q, want the receipt then the pulse", got)
	}
	if j := row(t, s.st, "j"); j.State != store.Printed || len(j.Kick) != 0 || j.KickLife != "" || j.Bytes != len("receipt") {
		t.Fatalf("printed row %+v: the pulse and the bytes must not outlive the job, their length must", j)
	}
	var dataNull, kickNull, lifeNull bool
	err = openDB(t, dir).QueryRow(`SELECT data IS NULL, kick IS NULL, kick_life IS NULL FROM jobs WHERE id = 'j'`).
		Scan(&dataNull, &kickNull, &lifeNull)
	if err != nil || !dataNull || !kickNull || !lifeNull {
		t.Fatalf("printed row: data, kick, kick_life NULL = %v %v %v, %v; want all NULL", dataNull, kickNull, lifeNull, err)
	}
	s.st.Close()
	s2, err := openSpool(t, dir, p, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	stop = run(t, s2)
	if _, err := s2.Add(Job{ID: "j2", Kind: "receipt", Data: []byte("other")}); err != nil {
		t.Fatal(err)
	}
	waitPrinted(t, s2, "j2")
	stop()
	if got := p.printed(); len(got) != 3 || string(got[2]) != "other" {
		t.Fatalf("printed %q after a restart; want only the new job more", got)
	}
}

// A pulse belongs to the life that queued its receipt. A crash (no Close) drops it: the
// receipt prints in the next life, the drawer stays shut. A clean stop hands it over: the
// next life claims it in the store before it can send it, so that if that life crashes too,
// the third sends nothing.
func TestKickBelongsToTheLifeThatQueuedIt(t *testing.T) {
	queue := func(t *testing.T, dir string) *Spool {
		t.Helper()
		p := newFake()
		p.set(printer.StatePaperOut)
		s, err := openSpool(t, dir, p, fastOpts())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Add(Job{ID: "j", Kind: "receipt", Data: []byte("receipt"), Kick: []byte("KICK")}); err != nil {
			t.Fatal(err)
		}
		if j := row(t, s.st, "j"); string(j.Kick) != "KICK" || j.KickLife != s.life {
			t.Fatalf("queued row %+v: want the pulse, owned by the life %s", j, s.life)
		}
		return s
	}
	// cleanStop closes s (handing its pulses over) and its store, as a clean exit does.
	cleanStop := func(t *testing.T, s *Spool) {
		t.Helper()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if j := row(t, s.st, "j"); string(j.Kick) != "KICK" || j.KickLife != "" {
			t.Fatalf("row after Close %+v: want the pulse, handed over", j)
		}
		s.st.Close()
	}
	// printNext opens the spool as the next life with the paper back and returns what it
	// printed.
	printNext := func(t *testing.T, dir string) (*Spool, []string) {
		t.Helper()
		p := newFake()
		s, err := openSpool(t, dir, p, fastOpts())
		if err != nil {
			t.Fatal(err)
		}
		stop := run(t, s)
		waitPrinted(t, s, "j")
		stop()
		var got []string
		for _, b := range p.printed() {
			got = append(got, string(b))
		}
		if j := row(t, s.st, "j"); len(j.Kick) != 0 || j.KickLife != "" {
			t.Fatalf("printed row %+v still has a pulse", j)
		}
		return s, got
	}
	t.Run("crash", func(t *testing.T) {
		dir := t.TempDir()
		queue(t, dir) // and never closed
		if _, got := printNext(t, dir); strings.Join(got, " ") != "receipt" {
			t.Fatalf("printed %q after a crash, want the receipt and no pulse", got)
		}
	})
	t.Run("clean stop", func(t *testing.T) {
		dir := t.TempDir()
		cleanStop(t, queue(t, dir))
		if _, got := printNext(t, dir); strings.Join(got, " ") != "receipt KICK" {
			t.Fatalf("printed %q after a clean stop, want the receipt and its pulse", got)
		}
	})
	t.Run("clean stop, then a crash after the claim", func(t *testing.T) {
		dir := t.TempDir()
		cleanStop(t, queue(t, dir))
		p := newFake()
		p.set(printer.StatePaperOut)
		s2, err := openSpool(t, dir, p, fastOpts())
		if err != nil {
			t.Fatal(err)
		}
		// Claimed, and committed, by the time Open returned: another connection sees it.
		var life sql.NullString
		if err := openDB(t, dir).QueryRow(`SELECT kick_life FROM jobs WHERE id = 'j'`).Scan(&life); err != nil || life.String != s2.life {
			t.Fatalf("kick_life after the claim: %+v, %v; want %s", life, err, s2.life)
		}
		// s2 dies without Close.
		if _, got := printNext(t, dir); strings.Join(got, " ") != "receipt" {
			t.Fatalf("printed %q after the claiming life crashed, want no pulse", got)
		}
	})
	// A queued row with a pulse and no life (NULL, or '' as an older version's import may
	// write it) is handed over: the next life claims it and sends it.
	for _, c := range []struct {
		name string
		life any
	}{{"no life (NULL)", nil}, {"no life ('')", ""}} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			st, err := store.Open(dir) // the schema
			if err != nil {
				t.Fatal(err)
			}
			st.Close()
			_, err = openDB(t, dir).Exec(`INSERT INTO jobs (id, kind, state, data, kick, kick_life, created)
VALUES ('j', 'receipt', 'queued', ?, ?, ?, '2026-11-01T10:00:00Z')`, []byte("receipt"), []byte("KICK"), c.life)
			if err != nil {
				t.Fatal(err)
			}
			if _, got := printNext(t, dir); strings.Join(got, " ") != "receipt KICK" {
				t.Fatalf("printed %q, want the receipt and its pulse", got)
			}
		})
	}
}
