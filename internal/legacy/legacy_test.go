package legacy_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/internal/legacy"
	"github.com/ecrd-pos/ecrd/internal/legacy/legacytest"
	"github.com/ecrd-pos/ecrd/store"
)

// fixture unpacks the old state directory into a fresh directory and opens the store in it,
// as the daemon does; it returns the directory, the store and the manifest.
func fixture(t *testing.T) (string, *store.Store, *legacytest.Manifest) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "state")
	if err := legacytest.Extract(dir); err != nil {
		t.Fatal(err)
	}
	m, err := legacytest.LoadManifest()
	if err != nil {
		t.Fatal(err)
	}
	return dir, openStore(t, dir), m
}

func openStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func mustImport(t *testing.T, dir string, st *store.Store) legacy.Report {
	t.Helper()
	rep, err := legacy.Import(dir, st)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	return rep
}

var oldPaths = []string{"journal", "spool", "wal", "steady-clock.json"}

// checkMovedAside checks that the old paths are in pre-sqlite and no longer in dir, and that
// lock stayed.
func checkMovedAside(t *testing.T, dir string) {
	t.Helper()
	for _, p := range oldPaths {
		if _, err := os.Lstat(filepath.Join(dir, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still in the state directory (%v)", p, err)
		}
		if _, err := os.Lstat(filepath.Join(dir, legacy.AsideDir, p)); err != nil {
			t.Errorf("%s was not moved aside: %v", p, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "lock")); err != nil {
		t.Errorf("lock was moved: %v", err)
	}
}

func capture(t *testing.T, st *store.Store, id string) *store.Capture {
	t.Helper()
	c, err := st.Capture(id)
	if err != nil {
		t.Fatalf("capture %s: %v", id, err)
	}
	return c
}

// paymentMethod is the payment method of a stored answer.
func paymentMethod(answer []byte) string {
	var a struct {
		PaymentMethod string `json:"payment_method"`
	}
	json.Unmarshal(answer, &a)
	return a.PaymentMethod
}

// queueData is the bytes of a queued job file of the fixture (in the archive, as written).
func queueData(t *testing.T, dir, id string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, legacy.AsideDir, "spool", "queue", id+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var j struct {
		Data []byte `json:"data"`
	}
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatal(err)
	}
	return j.Data
}

// Every row against what the old code reported for the fixture (its manifest).
func TestImportFixture(t *testing.T) {
	dir, st, m := fixture(t)
	rep := mustImport(t, dir, st)
	if !rep.Imported || rep.Resumed {
		t.Fatalf("report %+v", rep)
	}
	for _, p := range rep.Problems {
		t.Errorf("problem in a sound fixture: %s", p)
	}
	if rep.Captures != len(m.Transactions) || rep.PrintedJobs != len(m.Jobs.Printed) || rep.QueuedJobs != len(m.Jobs.Queued) {
		t.Errorf("report: %d captures, %d printed, %d queued jobs; manifest: %d, %d, %d", rep.Captures,
			rep.PrintedJobs, rep.QueuedJobs, len(m.Transactions), len(m.Jobs.Printed), len(m.Jobs.Queued))
	}
	if rep.Logs != len(m.Wal.Logs) || rep.Frames != m.Wal.Frames || rep.SkippedFrames != 0 {
		t.Errorf("report: %d logs, %d frames (%d skipped); manifest: %d logs, %d frames", rep.Logs, rep.Frames,
			rep.SkippedFrames, len(m.Wal.Logs), m.Wal.Frames)
	}
	if !rep.Clock || rep.Kept != 0 || rep.KeptJobs != 0 || len(rep.Rerender) != 0 {
		t.Errorf("report %+v", rep)
	}

	unfinished := 0
	for _, want := range m.Transactions {
		c := capture(t, st, want.ID)
		name := want.Name
		if c.Phase != want.Phase || c.Attempts != want.Attempts || c.Spooled != want.Spooled || c.Pruned != want.Pruned ||
			c.Reprints != want.Reprints || c.TransID != want.TransID {
			t.Errorf("%s: phase %s attempts %d spooled %v pruned %v reprints %d trans_id %q; want %s %d %v %v %d %q", name,
				c.Phase, c.Attempts, c.Spooled, c.Pruned, c.Reprints, c.TransID,
				want.Phase, want.Attempts, want.Spooled, want.Pruned, want.Reprints, want.TransID)
		}
		if c.Unfinished != !want.Finished {
			t.Errorf("%s: unfinished %v, want %v", name, c.Unfinished, !want.Finished)
		}
		if c.Unfinished {
			unfinished++
		}
		if (len(c.Answer) > 0) != want.HasAnswer || (len(c.Refusal) > 0) != want.Refusal || (c.Doubt != "") != want.Doubt {
			t.Errorf("%s: answer %v refusal %v doubt %q; want %v %v %v", name, len(c.Answer) > 0, len(c.Refusal) > 0, c.Doubt,
				want.HasAnswer, want.Refusal, want.Doubt)
		}
		if want.Doubt && !c.Doubted {
			t.Errorf("%s: doubt without doubted", name)
		}
		method := c.PaymentMethod
		if !c.Pruned {
			method = paymentMethod(c.Answer)
		}
		if method != want.PaymentMethod {
			t.Errorf("%s: payment method %q, want %q", name, method, want.PaymentMethod)
		}
		sent := !c.Sent.IsZero() && c.SentSteady != 0 && c.SteadyClock != ""
		if sent != want.Sent {
			t.Errorf("%s: sent %v (%v, %d, %q), want %v", name, sent, c.Sent, c.SentSteady, c.SteadyClock, want.Sent)
		}
		if c.Created.IsZero() || c.Updated.IsZero() {
			t.Errorf("%s: created %v updated %v", name, c.Created, c.Updated)
		}
	}
	if rep.Unfinished != unfinished {
		t.Errorf("report: %d unfinished, rows: %d", rep.Unfinished, unfinished)
	}
	// The log-only ones: in the store as the log left them, in doubt.
	for _, lo := range m.LogOnly {
		if c := capture(t, st, lo.ID); c.Phase != "in_doubt" || !c.Doubted || !c.Unfinished {
			t.Errorf("log-only %s: %s doubted %v unfinished %v", lo.Name, c.Phase, c.Doubted, c.Unfinished)
		}
	}
	ufs, err := st.UnfinishedCaptures()
	if err != nil {
		t.Fatal(err)
	}
	if len(ufs) != unfinished {
		t.Errorf("%d unfinished captures by the index, want %d", len(ufs), unfinished)
	}

	// Jobs: the printed ones first, then the queue in its old order with its pulses.
	queued, err := st.QueuedJobs()
	if err != nil {
		t.Fatal(err)
	}
	if len(queued) != len(m.Jobs.Queued) {
		t.Fatalf("%d queued jobs, want %d", len(queued), len(m.Jobs.Queued))
	}
	var maxPrinted int64
	for _, want := range m.Jobs.Printed {
		j, err := st.Job(want.ID)
		if err != nil {
			t.Fatalf("printed job %s: %v", want.ID, err)
		}
		if j.State != store.Printed || j.Bytes != 0 || j.Printed.IsZero() || j.Kind != want.Kind || j.TransactionID != want.TransactionID {
			t.Errorf("printed job %s: %+v", want.ID, j)
		}
		maxPrinted = max(maxPrinted, j.Seq)
	}
	for i, want := range m.Jobs.Queued {
		j := queued[i]
		if j.ID != want.ID || j.Kind != want.Kind || j.TransactionID != want.TransactionID {
			t.Errorf("queued job %d: %s %s %q, want %s %s %q", i, j.ID, j.Kind, j.TransactionID, want.ID, want.Kind, want.TransactionID)
			continue
		}
		if j.Seq <= maxPrinted {
			t.Errorf("queued job %s has seq %d, before a printed one (%d)", j.ID, j.Seq, maxPrinted)
		}
		if (len(j.Kick) > 0) != want.Kick {
			t.Errorf("queued job %s: kick %x, want one: %v", j.ID, j.Kick, want.Kick)
		}
		switch want.KickLife {
		case "", "empty":
			if j.KickLife != "" {
				t.Errorf("queued job %s: kick_life %q, want none (handed over)", j.ID, j.KickLife)
			}
		case "other":
			if j.KickLife != want.KickLifeValue {
				t.Errorf("queued job %s: kick_life %q, want the dead life's %q", j.ID, j.KickLife, want.KickLifeValue)
			}
		}
		data, err := st.JobData(j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, queueData(t, dir, j.ID)) {
			t.Errorf("queued job %s: data differs from its file", j.ID)
		}
	}

	// The steady clock's mark: as the log left steady-clock.json.
	mark, err := st.Meta("steady_clock")
	if err != nil {
		t.Fatal(err)
	}
	if string(mark) != m.SteadyClock.Replayed {
		t.Errorf("mark %s, want the replayed %s", mark, m.SteadyClock.Replayed)
	}
	sum, err := st.Meta(legacy.MetaKey)
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	if err := json.Unmarshal(sum, &s); err != nil || s["captures"] != float64(len(m.Transactions)) {
		t.Errorf("summary %s (%v)", sum, err)
	}
	checkMovedAside(t, dir)
	// The old files were not written: the log-only record is still absent from them.
	if _, err := os.Stat(filepath.Join(dir, legacy.AsideDir, "journal", m.ID("log_only")+".json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the import wrote the old files: %v", err)
	}
}

// snapshot is everything of the store a test compares before and after.
func snapshot(t *testing.T, st *store.Store, m *legacytest.Manifest) string {
	t.Helper()
	var b strings.Builder
	for _, tr := range m.Transactions {
		c, err := st.Capture(tr.ID)
		if err != nil {
			t.Fatal(err)
		}
		js, _ := json.Marshal(c)
		b.Write(js)
	}
	jobs, err := st.RecentJobs(1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs {
		js, _ := json.Marshal(j)
		b.Write(js)
	}
	for _, k := range []string{"steady_clock", legacy.MetaKey} {
		v, _ := st.Meta(k)
		b.Write(v)
	}
	return b.String()
}

func TestImportTwiceImportsOnce(t *testing.T) {
	dir, st, m := fixture(t)
	mustImport(t, dir, st)
	before := snapshot(t, st, m)
	rep := mustImport(t, dir, st)
	if !rep.Empty() || rep.Captures != 0 || len(rep.Moved) != 0 {
		t.Fatalf("second import: %+v", rep)
	}
	if after := snapshot(t, st, m); after != before {
		t.Fatal("the second import changed the store")
	}
	checkMovedAside(t, dir)
}

// A crash after the commit and before the move: the next start finds the old files and the
// summary, and only moves them aside — never importing twice, never overwriting a row the
// daemon changed meanwhile.
func TestImportCrashBeforeMoveResumes(t *testing.T) {
	dir, st, m := fixture(t)
	mustImport(t, dir, st)
	for _, p := range oldPaths {
		if err := os.Rename(filepath.Join(dir, legacy.AsideDir, p), filepath.Join(dir, p)); err != nil {
			t.Fatal(err)
		}
	}
	// A row changed since (the daemon ran a little between): it must stay as it is now.
	c := capture(t, st, m.ID("captured_printed"))
	c.Reprints = 7
	if err := st.Flushed(func(tx *store.Tx) error { return tx.PutCapture(c) }); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, st, m)
	rep := mustImport(t, dir, st)
	if rep.Imported || !rep.Resumed || rep.Captures != 0 || len(rep.Moved) != len(oldPaths) || len(rep.Summary) == 0 {
		t.Fatalf("resumed import: %+v", rep)
	}
	if after := snapshot(t, st, m); after != before {
		t.Fatal("the resumed import changed the store")
	}
	checkMovedAside(t, dir)
	// The crash again, between two renames: the rest is moved, nothing replaced.
	if err := os.Rename(filepath.Join(dir, legacy.AsideDir, "wal"), filepath.Join(dir, "wal")); err != nil {
		t.Fatal(err)
	}
	if rep = mustImport(t, dir, st); !rep.Resumed || !slices.Equal(rep.Moved, []string{"wal"}) {
		t.Fatalf("resumed import: %+v", rep)
	}
	checkMovedAside(t, dir)
}

func TestImportNothingToImport(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "lock"), nil, 0o640)
	st := openStore(t, dir)
	rep := mustImport(t, dir, st)
	if !rep.Empty() || rep.Captures != 0 || len(rep.Problems) != 0 {
		t.Fatalf("report %+v", rep)
	}
	if _, err := st.Meta(legacy.MetaKey); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("summary written for nothing: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, legacy.AsideDir)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s made for nothing: %v", legacy.AsideDir, err)
	}
}

// A row the store holds already is never overwritten; nor is a job.
func TestImportKeepsStoreRows(t *testing.T) {
	dir, st, m := fixture(t)
	id := m.ID("captured_printed")
	now := time.Now().UTC()
	err := st.Flushed(func(tx *store.Tx) error {
		if err := tx.PutCapture(&store.Capture{ID: id, Phase: "captured", Attempts: 1, Created: now, Updated: now,
			Answer: []byte(`{"id":"` + id + `"}`), Spooled: true, Reprints: 9}); err != nil {
			return err
		}
		_, err := tx.AddJob(&store.Job{ID: id + ".receipt", TransactionID: id, Kind: "receipt", Data: []byte("x"), Created: now})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	rep := mustImport(t, dir, st)
	if rep.Kept != 1 || rep.KeptJobs != 1 || rep.Captures != len(m.Transactions)-1 {
		t.Fatalf("report %+v", rep)
	}
	if c := capture(t, st, id); c.Reprints != 9 {
		t.Fatalf("the store's row was overwritten: reprints %d", c.Reprints)
	}
	if j, err := st.Job(id + ".receipt"); err != nil || j.State != store.Queued {
		t.Fatalf("the store's job was overwritten: %+v %v", j, err)
	}
}

func hasProblem(rep legacy.Report, file string) bool {
	return slices.ContainsFunc(rep.Problems, func(p legacy.Problem) bool { return p.File == file && p.Damaged })
}
