package legacy_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/crc32"
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

// frame is one frame of a log: where it starts and ends, and its ops.
type frame struct {
	start, end int
	ops        []struct {
		Path string `json:"p"`
		Data []byte `json:"d"`
	}
}

// frames splits a sound log into its frames.
func frames(t *testing.T, b []byte) []frame {
	t.Helper()
	var out []frame
	for off := 0; off < len(b); {
		if len(b)-off < 12 || binary.LittleEndian.Uint32(b[off:]) != 0xEC4D0A1E {
			t.Fatalf("no frame at %d", off)
		}
		n := int(binary.LittleEndian.Uint32(b[off+4:]))
		f := frame{start: off, end: off + 12 + n}
		if err := json.Unmarshal(b[off+12:f.end], &f.ops); err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
		off = f.end
	}
	return out
}

// phaseIn is the phase a frame writes for transaction id's active record, or "".
func (f frame) phaseIn(id string) string {
	for _, o := range f.ops {
		if o.Path == "journal/"+id+".json" {
			var r struct {
				Phase string `json:"phase"`
			}
			json.Unmarshal(o.Data, &r)
			return r.Phase
		}
	}
	return ""
}

func (f frame) clock() []byte {
	for _, o := range f.ops {
		if o.Path == "steady-clock.json" {
			return o.Data
		}
	}
	return nil
}

// logWithFrames returns the fixture's log that holds frames, and its frames.
func logWithFrames(t *testing.T, dir string, m *legacytest.Manifest) (string, []byte, []frame) {
	t.Helper()
	for _, l := range m.Wal.Logs {
		p := filepath.Join(dir, l)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 0 {
			return p, b, frames(t, b)
		}
	}
	t.Fatal("no log with frames")
	return "", nil, nil
}

func hasProblem(rep legacy.Report, file string) bool {
	return slices.ContainsFunc(rep.Problems, func(p legacy.Problem) bool { return p.File == file && p.Damaged })
}

// A power cut while the last frame was written: replayed without it, as the old code did.
func TestImportTornLastFrame(t *testing.T) {
	dir, st, m := fixture(t)
	p, b, fs := logWithFrames(t, dir, m)
	last := fs[len(fs)-1]
	logOnly := m.ID("log_only")
	if last.phaseIn(logOnly) != "in_doubt" || fs[len(fs)-2].phaseIn(logOnly) != "intent" {
		t.Fatal("the fixture's last frames are not log_only's intent and doubt")
	}
	if err := os.WriteFile(p, b[:last.start+(last.end-last.start)/2], 0o640); err != nil {
		t.Fatal(err)
	}
	rep := mustImport(t, dir, st)
	if rep.Frames != len(fs)-1 || rep.SkippedFrames != 1 || !hasProblem(rep, "wal/"+filepath.Base(p)) {
		t.Fatalf("report: %d frames, %d skipped, problems %v", rep.Frames, rep.SkippedFrames, rep.Problems)
	}
	// log_only is as its intent left it: sent, in doubt until read back.
	if c := capture(t, st, logOnly); c.Phase != "intent" || c.Attempts != 1 || !c.Unfinished || c.Doubted {
		t.Fatalf("log_only: %+v", c)
	}
	if c := capture(t, st, m.ID("late")); c.Phase != "in_doubt" {
		t.Fatalf("late: %s", c.Phase)
	}
	if mark, _ := st.Meta("steady_clock"); !bytes.Equal(mark, fs[len(fs)-2].clock()) {
		t.Fatalf("mark %s, want the last whole frame's %s", mark, fs[len(fs)-2].clock())
	}
}

// A flipped bit in a frame in the middle: that frame is skipped, the later ones are applied.
func TestImportCorruptMiddleFrame(t *testing.T) {
	dir, st, m := fixture(t)
	p, b, fs := logWithFrames(t, dir, m)
	late := m.ID("late")
	i := slices.IndexFunc(fs, func(f frame) bool { return f.phaseIn(late) == "in_doubt" })
	if i < 0 || i == len(fs)-1 {
		t.Fatal("no frame of late's doubt in the middle of the log")
	}
	b[fs[i].start+12+(fs[i].end-fs[i].start-12)/2] ^= 0x20
	if err := os.WriteFile(p, b, 0o640); err != nil {
		t.Fatal(err)
	}
	rep := mustImport(t, dir, st)
	if rep.Frames != len(fs)-1 || rep.SkippedFrames != 1 || !hasProblem(rep, "wal/"+filepath.Base(p)) {
		t.Fatalf("report: %d frames, %d skipped, problems %v", rep.Frames, rep.SkippedFrames, rep.Problems)
	}
	// late keeps the state before the bad frame (its intent, as the file has it) …
	if c := capture(t, st, late); c.Phase != "intent" || !c.Unfinished {
		t.Fatalf("late: %+v", c)
	}
	// … and the frames after it were replayed: log_only exists only in them.
	if c := capture(t, st, m.ID("log_only")); c.Phase != "in_doubt" || !c.Doubted {
		t.Fatalf("log_only: %+v", c)
	}
	if mark, _ := st.Meta("steady_clock"); string(mark) != m.SteadyClock.Replayed {
		t.Fatalf("mark %s, want %s", mark, m.SteadyClock.Replayed)
	}
}

// A journal file that does not hold its record is imported in doubt, never dropped.
func TestImportDamagedJournalFile(t *testing.T) {
	dir, st, m := fixture(t)
	deadlife := "journal/finished/" + m.ID("captured_deadlife") + ".json"
	intent := "journal/" + m.ID("intent") + ".json"
	const noAnswer = "STX_LGCYNOANSWER00000000000000011"
	noAnswerFile := "journal/finished/" + noAnswer + ".json"
	write := func(rel string, b []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, rel), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, deadlife))
	write(deadlife, b[:len(b)/2]) // truncated
	refused, _ := os.ReadFile(filepath.Join(dir, "journal/finished/"+m.ID("refused")+".json"))
	write(intent, refused) // names another transaction
	write(noAnswerFile, []byte(`{"transaction_id":"`+noAnswer+`","phase":"captured","attempts":1,"spooled":true,"reprints":0}`))
	write("journal/.x.json.tmp", []byte("{"))
	mod := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	os.Chtimes(filepath.Join(dir, deadlife), mod, mod)

	rep := mustImport(t, dir, st)
	for _, f := range []string{deadlife, intent, noAnswerFile} {
		if !hasProblem(rep, f) {
			t.Errorf("%s not reported damaged: %v", f, rep.Problems)
		}
	}
	if !slices.ContainsFunc(rep.Problems, func(p legacy.Problem) bool { return p.File == "journal/.x.json.tmp" && !p.Damaged }) {
		t.Errorf("temporary file not reported: %v", rep.Problems)
	}
	for _, id := range []string{m.ID("captured_deadlife"), m.ID("intent"), noAnswer} {
		c := capture(t, st, id)
		if c.Phase != "in_doubt" || !c.Unfinished || !c.Doubted || !strings.HasPrefix(c.Doubt, "imported from a damaged file: ") ||
			c.Sent.IsZero() || c.Created.IsZero() {
			t.Errorf("%s: %+v", id, c)
		}
	}
	if c := capture(t, st, m.ID("captured_deadlife")); !c.Sent.Equal(mod) {
		t.Errorf("damaged record sent %v, want the file's time %v", c.Sent, mod)
	}
	// The other transaction's record is not taken from a file of another name.
	if c := capture(t, st, m.ID("refused")); c.Phase != "refused" {
		t.Errorf("refused: %s", c.Phase)
	}
	if rep.InDoubt != 4+3-1 { // in_doubt, late, log_only, intent (now damaged) + deadlife, noAnswer
		t.Errorf("report: %d in doubt", rep.InDoubt)
	}
}

// A queued receipt whose file is damaged: its capture is imported unspooled, so that the
// daemon renders the receipt again from secupay's answer. A damaged job that is no receipt
// is reported.
func TestImportDamagedQueuedReceipt(t *testing.T) {
	dir, st, m := fixture(t)
	id := m.ID("captured_deadlife")
	job := "spool/queue/" + id + ".receipt.json"
	if err := os.WriteFile(filepath.Join(dir, job), []byte(`{"id":"`+id+`.receipt","data":`), 0o640); err != nil {
		t.Fatal(err)
	}
	const lines = "spool/queue/pos-1-deadbeef.json"
	if err := os.WriteFile(filepath.Join(dir, lines), []byte(`{"id":"pos-1-deadbeef","kind":"lines","data":""}`), 0o640); err != nil {
		t.Fatal(err)
	}
	// Set aside by an old life, never remade: a receipt of a transaction with no record.
	const orphan = "spool/queue/STX_LGCYNORECORD000000000000000012.receipt.json.bad"
	if err := os.WriteFile(filepath.Join(dir, orphan), []byte(`garbage`), 0o640); err != nil {
		t.Fatal(err)
	}
	rep := mustImport(t, dir, st)
	if !slices.Equal(rep.Rerender, []string{id}) {
		t.Fatalf("rerender %v", rep.Rerender)
	}
	for _, f := range []string{job, lines, orphan} {
		if !hasProblem(rep, f) {
			t.Errorf("%s not reported: %v", f, rep.Problems)
		}
	}
	c := capture(t, st, id)
	if c.Phase != "captured" || c.Spooled || !c.Unfinished || len(c.Answer) == 0 {
		t.Fatalf("captured_deadlife: %+v", c)
	}
	if _, err := st.Job(id + ".receipt"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("damaged job imported: %v", err)
	}
	if rep.QueuedJobs != len(m.Jobs.Queued)-1 {
		t.Fatalf("%d queued jobs", rep.QueuedJobs)
	}
	if _, err := st.Capture("STX_LGCYNORECORD000000000000000012"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a record was made up: %v", err)
	}
}

// A queued job that is also in spool/done printed (the old code crashed before it finished
// the move): imported printed, never queued again.
func TestImportQueuedAndDoneIsPrinted(t *testing.T) {
	dir, st, m := fixture(t)
	q := m.Jobs.Queued[0]
	rec := map[string]any{"id": q.ID, "transaction_id": q.TransactionID, "kind": q.Kind, "data": nil, "seq": q.Seq,
		"created": time.Now().UTC(), "printed": time.Now().UTC()}
	b, _ := json.Marshal(rec)
	if err := os.WriteFile(filepath.Join(dir, "spool/done", q.ID+".json"), b, 0o640); err != nil {
		t.Fatal(err)
	}
	rep := mustImport(t, dir, st)
	if rep.PrintedJobs != len(m.Jobs.Printed)+1 || rep.QueuedJobs != len(m.Jobs.Queued)-1 {
		t.Fatalf("report %+v", rep)
	}
	if j, err := st.Job(q.ID); err != nil || j.State != store.Printed {
		t.Fatalf("%s: %+v %v", q.ID, j, err)
	}
}

// The log's changes are laid over the files in the order of the logs' numbers, and a removal
// in the log hides a file on disk.
func TestImportLogsInOrder(t *testing.T) {
	dir := t.TempDir()
	const a, b = "STX_A", "STX_B"
	rec := func(id, phase string) []byte {
		r := map[string]any{"transaction_id": id, "phase": phase, "attempts": 1, "created": time.Now().UTC(),
			"updated": time.Now().UTC(), "spooled": false, "reprints": 0}
		if phase == "refused" {
			r["refusal"] = map[string]any{"http_status": 400}
		}
		js, _ := json.Marshal(r)
		return js
	}
	os.MkdirAll(filepath.Join(dir, "journal/finished"), 0o750)
	os.MkdirAll(filepath.Join(dir, "wal"), 0o750)
	os.WriteFile(filepath.Join(dir, "journal", b+".json"), rec(b, "intent"), 0o640)
	type o struct {
		P string `json:"p"`
		D []byte `json:"d,omitempty"`
		R bool   `json:"r,omitempty"`
	}
	frameOf := func(ops ...o) []byte {
		payload, _ := json.Marshal(ops)
		h := make([]byte, 12)
		binary.LittleEndian.PutUint32(h, 0xEC4D0A1E)
		binary.LittleEndian.PutUint32(h[4:], uint32(len(payload)))
		binary.LittleEndian.PutUint32(h[8:], crc32c(payload))
		return append(h, payload...)
	}
	// Log 9 before log 10 (numbers, not names), and garbage between frames.
	os.WriteFile(filepath.Join(dir, "wal/0000000000000009.log"), slices.Concat(
		frameOf(o{P: "journal/" + a + ".json", D: rec(a, "intent")}),
		[]byte("garbage\xec"),
		frameOf(o{P: "journal/" + a + ".json", D: rec(a, "in_doubt")})), 0o640)
	os.WriteFile(filepath.Join(dir, "wal/0000000000000010.log"), frameOf(
		o{P: "journal/finished/" + b + ".json", D: rec(b, "refused")}, o{P: "journal/" + b + ".json", R: true},
		o{P: "../outside", D: []byte("x")}), 0o640)
	os.WriteFile(filepath.Join(dir, "wal/0000000000000011.log"), nil, 0o640)
	st := openStore(t, dir)
	rep := mustImport(t, dir, st)
	if rep.Logs != 3 || rep.Frames != 3 || rep.SkippedFrames != 1 || rep.Captures != 2 {
		t.Fatalf("report %+v", rep)
	}
	if c := capture(t, st, a); c.Phase != "in_doubt" || !c.Unfinished {
		t.Fatalf("%s: %+v", a, c)
	}
	if c := capture(t, st, b); c.Phase != "refused" || c.Unfinished || len(c.Refusal) == 0 {
		t.Fatalf("%s: %+v", b, c)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "outside")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the import wrote outside the state directory")
	}
	if !slices.ContainsFunc(rep.Problems, func(p legacy.Problem) bool { return strings.Contains(p.What, "../outside") }) {
		t.Fatalf("the change outside the state directory was not reported: %v", rep.Problems)
	}
}

// A paid index's lines: pruned captures; a damaged line is reported.
func TestImportPaidIndex(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "journal/paid"), 0o750)
	os.WriteFile(filepath.Join(dir, "journal/paid/001.jsonl"), []byte(
		`{"id":"STX_P1","trans_id":"1","payment_method":"cash","captured":"2026-01-02T03:04:05Z"}`+"\n"+
			`{"id":"STX_P2","trans_id":"2"`+"\n"+
			`{"id":"STX_P3","trans_id":"3","captured":"2026-01-02T03:04:05Z"}`), 0o640)
	st := openStore(t, dir)
	rep := mustImport(t, dir, st)
	if rep.Captures != 2 || rep.Pruned != 2 || !hasProblem(rep, "journal/paid/001.jsonl") {
		t.Fatalf("report %+v", rep)
	}
	c := capture(t, st, "STX_P1")
	if c.Phase != "captured" || !c.Pruned || !c.Spooled || c.Unfinished || c.Attempts != 0 || c.TransID != "1" ||
		c.PaymentMethod != "cash" || len(c.Answer) != 0 {
		t.Fatalf("STX_P1: %+v", c)
	}
	if _, err := st.Capture("STX_P2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("STX_P2: %v", err)
	}
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }
