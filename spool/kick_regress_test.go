package spool

import (
	"bytes"
	"testing"

	"github.com/ecrd-pos/ecrd/internal/wait"
)

// A job printed (pulse sent) whose printed mark the store refused (disk full, or a
// technician's sqlite3 holding the write lock past busy_timeout) stays queued, naming this
// life. A clean stop then hands its pulse over: the next life prints it again AND opens the
// drawer a second time.
func TestRegressionUnmarkedJobPulseHandedOverByClose(t *testing.T) {
	dir := t.TempDir()
	p := newFake()
	s, err := openSpool(t, dir, p, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	db := openDB(t, dir)
	if _, err := db.Exec(`CREATE TRIGGER disk_full BEFORE UPDATE OF state ON jobs WHEN NEW.state = 'printed'
BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`); err != nil {
		t.Fatal(err)
	}
	stop := run(t, s)
	if _, err := s.Add(Job{ID: "j", Kind: "receipt", Data: []byte("receipt"), Kick: []byte("KICK")}); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, wait.Long, "job on paper", func() bool { return len(p.printed()) >= 2 && len(s.Pending()) == 0 })
	stop()
	// The disk has room again (the lock was released) by the time the daemon stops cleanly.
	if _, err := db.Exec(`DROP TRIGGER disk_full`); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil { // clean stop: hands pulses over
		t.Fatal(err)
	}
	s.st.Close()

	p2 := newFake()
	s2, err := openSpool(t, dir, p2, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	run(t, s2)
	waitPrinted(t, s2, "j")
	all := append(p.printed(), p2.printed()...)
	kicks := 0
	for _, b := range all {
		if bytes.Equal(b, []byte("KICK")) {
			kicks++
		}
	}
	t.Logf("paper across both lives: %q", all)
	if kicks > 1 {
		t.Fatalf("drawer opened %d times for one capture", kicks)
	}
}

// The same with a real lock: a technician's sqlite3 session holds the write lock for longer
// than busy_timeout (5 s) while a receipt prints.
func TestRegressionBusyLockThenCleanStopOpensDrawerTwice(t *testing.T) {
	dir := t.TempDir()
	p := newFake()
	p.block = make(chan struct{})
	p.printing = make(chan struct{}, 4)
	s, err := openSpool(t, dir, p, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, s)
	if _, err := s.Add(Job{ID: "j", Kind: "receipt", Data: []byte("receipt"), Kick: []byte("KICK")}); err != nil {
		t.Fatal(err)
	}
	<-p.printing
	db := openDB(t, dir)
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(t.Context(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	block := p.block
	p.block, p.printing = nil, nil
	p.mu.Unlock()
	close(block) // the print in progress finishes; its mark waits for the lock
	wait.Until(t, wait.Long, "queue empty (mark failed after busy_timeout)", func() bool { return len(s.Pending()) == 0 })
	conn.ExecContext(t.Context(), "COMMIT")
	conn.Close()
	stop()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s.st.Close()
	p2 := newFake()
	s2, err := openSpool(t, dir, p2, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	run(t, s2)
	waitPrinted(t, s2, "j")
	all := append(p.printed(), p2.printed()...)
	t.Logf("paper across both lives: %q", all)
	kicks := 0
	for _, b := range all {
		if bytes.Equal(b, []byte("KICK")) {
			kicks++
		}
	}
	if kicks > 1 {
		t.Fatalf("drawer opened %d times for one capture", kicks)
	}
}
