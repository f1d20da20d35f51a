package legacy_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/internal/legacy"
	"github.com/ecrd-pos/ecrd/store"
)

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
