package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/internal/legacy"
	"github.com/ecrd-pos/ecrd/internal/legacy/legacytest"
	"github.com/ecrd-pos/ecrd/secupay/secupaytest"
	"github.com/ecrd-pos/ecrd/store"
)

// The first start of this release on a till the write-ahead-log release ran (commit 30fc41b,
// the fixture store/testdata/legacy-30fc41b.tar.gz): the old journal and spool are imported,
// and the daemon goes on from them as the old one would have — no start/cash for anything the
// old journal knew, the queued receipts printed (a dead life's without its drawer pulse),
// the unfinished captures finished — and a restart imports and prints nothing twice.
func TestUpgradeFromWALRelease(t *testing.T) {
	e := newDaemonEnv(t)
	m, err := legacytest.LoadManifest()
	if err != nil {
		t.Fatal(err)
	}
	if err := legacytest.Extract(e.state); err != nil {
		t.Fatal(err)
	}
	// The drawer as the old till had it: pin 0, the pulse in the fixture's queued receipts.
	e.extraEnv = []string{"ECRD_DRAWER_KICK=0", "ECRD_IN_DOUBT_WAIT=1ms"}

	// secupay as it was when the old till stopped: what it captured is "ok" with the answer
	// the old journal kept; of the captures in doubt, in_doubt and log_only were captured
	// (their answers were lost), intent and late never reached it; the refused ones are as
	// they were.
	capturedAtSecupay := map[string]string{"in_doubt": "29008416", "log_only": "29008417"}
	byName := map[string]legacytest.Transaction{}
	for _, tr := range m.Transactions {
		byName[tr.Name] = tr
		switch {
		case tr.HasAnswer:
			var rec struct {
				Answer json.RawMessage `json:"answer"`
			}
			b, err := os.ReadFile(filepath.Join(e.state, tr.File))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &rec); err != nil || len(rec.Answer) == 0 {
				t.Fatalf("%s: no answer in %s (%v)", tr.Name, tr.File, err)
			}
			mustAdd(t, e.fake, rec.Answer)
		case tr.Pruned:
			mustAdd(t, e.fake, map[string]any{"id": tr.ID, "status": "ok", "trans_id": tr.TransID, "payment_method": tr.PaymentMethod})
		case capturedAtSecupay[tr.Name] != "":
			var a map[string]any
			if err := json.Unmarshal(secupaytest.SeedAnswer(), &a); err != nil {
				t.Fatal(err)
			}
			a["id"], a["status"], a["trans_id"], a["payment_method"] = tr.ID, "ok", capturedAtSecupay[tr.Name], "cash"
			mustAdd(t, e.fake, a)
			tr.TransID, tr.Phase = capturedAtSecupay[tr.Name], "captured"
			byName[tr.Name] = tr
		default:
			mustAdd(t, e.fake, map[string]any{"id": tr.ID, "status": "created"})
		}
	}
	// The queued jobs' bytes and the pulse, as the old spool kept them.
	var queued [][]byte
	var kick []byte
	for _, j := range m.Jobs.Queued {
		var f struct {
			Data []byte `json:"data"`
			Kick []byte `json:"kick"`
		}
		b, err := os.ReadFile(filepath.Join(e.state, "spool", "queue", j.ID+".json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatal(err)
		}
		queued = append(queued, f.Data)
		if len(f.Kick) > 0 {
			kick = f.Kick
		}
	}
	if kick == nil {
		t.Fatal("the fixture has no drawer pulse")
	}

	p := e.start()
	c := e.client()
	// The queued jobs print, oldest first; the unfinished captures are finished: the receipt
	// of the one never spooled, and those of the ones in doubt that secupay captured.
	for _, j := range m.Jobs.Queued {
		waitJobPrinted(t, c, j.ID)
	}
	for _, name := range []string{"captured_unspooled", "in_doubt", "log_only"} {
		waitJobPrinted(t, c, m.ID(name)+".receipt")
	}
	waitQueueEmpty(t, c)
	for _, j := range m.Jobs.Printed {
		if _, out := getJSON(t, c, "GET", "/v1/jobs/"+j.ID); out["state"] != "printed" {
			t.Errorf("printed job %s of the old spool: %v", j.ID, out)
		}
	}
	calls := e.fake.Calls()
	if calls.TotalStartCash != 0 {
		t.Fatalf("start/cash sent at start: %v", calls.StartCash)
	}
	// Every capture the old journal held in doubt was read back, nothing else was sent.
	for _, name := range []string{"in_doubt", "intent", "late", "log_only"} {
		if calls.Get[m.ID(name)] == 0 {
			t.Errorf("%s (in doubt in the old journal) was not read back", name)
		}
	}

	paper := readPrinterFile(t, e)
	// The old queue first, in its order: the dead life's receipt without its pulse, the
	// handed-over one with it, once.
	want := bytes.Join(queued, nil)
	if last := m.Jobs.Queued[len(m.Jobs.Queued)-1]; last.KickLife != "empty" || m.Jobs.Queued[0].KickLife != "other" {
		t.Fatalf("the fixture's queue is not the dead life's receipt first, the handed-over one last: %+v", m.Jobs.Queued)
	}
	want = append(want, kick...)
	if !bytes.HasPrefix(paper, want) {
		t.Fatalf("the paper does not begin with the old queue, in order, with the handed-over pulse only:\n%q\nwant prefix\n%q", paper, want)
	}
	jobs := splitJobs(bytes.ReplaceAll(paper, kick, nil))
	if len(jobs) != len(queued)+3 {
		t.Fatalf("%d jobs on paper, want %d (the old queue and three receipts)", len(jobs), len(queued)+3)
	}
	for i, j := range jobs {
		if !wholeReceipt(j) {
			t.Fatalf("job %d on paper is not whole: %q", i, j)
		}
	}
	// The three new receipts are cash captures: each may carry its own pulse, none more.
	if n := bytes.Count(paper[len(want):], kick); n > 3 {
		t.Fatalf("%d drawer pulses after the old queue, for three receipts", n)
	}

	// The POS asks again for every captured payment: answered from the journal, never sent.
	for _, name := range []string{"captured_printed", "captured_queued", "captured_deadlife", "captured_unspooled", "in_doubt", "log_only", "pruned"} {
		tr := byName[name]
		status, out := e.capture(tr.ID)
		if status != 200 || out["outcome"] != "captured" || out["replayed"] != true || out["trans_id"] != tr.TransID {
			t.Errorf("%s asked again: %d %v (want captured, replayed, trans_id %s)", name, status, out, tr.TransID)
		}
	}
	status, out := getJSON(t, c, "POST", "/v1/transactions/"+m.ID("pruned")+"/reprint")
	if info, _ := out["error"].(map[string]any); status != 410 || info["code"] != "receipt_pruned" {
		t.Errorf("reprint of the pruned capture: %d %v", status, out)
	}
	if calls := e.fake.Calls(); calls.TotalStartCash != 0 {
		t.Fatalf("start/cash sent for a capture the old journal knew: %v", calls.StartCash)
	}
	waitQueueEmpty(t, c)
	if !strings.Contains(p.logs.String(), "state import: the older ecrd's journal and spool are in the state database") {
		t.Errorf("the import was not logged:\n%s", p.logs)
	}
	for _, old := range []string{"journal", "spool", "wal", "steady-clock.json"} {
		if _, err := os.Lstat(filepath.Join(e.state, old)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still in the state directory: %v", old, err)
		}
		if _, err := os.Lstat(filepath.Join(e.state, legacy.AsideDir, old)); err != nil {
			t.Errorf("%s was not moved aside: %v", old, err)
		}
	}

	// A clean stop and a start: nothing imported, nothing printed again.
	paper = readPrinterFile(t, e)
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.wait(t)
	p = e.start()
	waitQueueEmpty(t, c)
	time.Sleep(300 * time.Millisecond) // a worker that would print something again has had its turn
	if again := readPrinterFile(t, e); !bytes.Equal(again, paper) {
		t.Fatalf("the restart printed again: %q", again[len(paper):])
	}
	if strings.Contains(p.logs.String(), "state import") {
		t.Fatalf("the restart imported again:\n%s", p.logs)
	}
	if calls := e.fake.Calls(); calls.TotalStartCash != 0 {
		t.Fatalf("start/cash after the restart: %v", calls.StartCash)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.wait(t)

	// The database as the two lives left it.
	st, err := store.Open(e.state)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for name, tr := range byName {
		row, err := st.Capture(tr.ID)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		wantPhase := tr.Phase
		if name == "intent" || name == "late" {
			wantPhase = "not_captured" // read back "created" after the in-doubt wait
		}
		if row.Phase != wantPhase || row.Unfinished {
			t.Errorf("%s: %s unfinished %v, want %s finished", name, row.Phase, row.Unfinished, wantPhase)
		}
	}
	all, err := st.RecentJobs(100)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(m.Jobs.Printed)+len(m.Jobs.Queued)+3 {
		t.Errorf("%d jobs in the store, want %d", len(all), len(m.Jobs.Printed)+len(m.Jobs.Queued)+3)
	}
	for _, j := range all {
		if j.State != store.Printed {
			t.Errorf("job %s: %s", j.ID, j.State)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(e.state, legacy.AsideDir)); len(ents) != 4 {
		t.Errorf("%s holds %d entries, want the 4 old paths once", legacy.AsideDir, len(ents))
	}
}

func mustAdd(t *testing.T, fake *secupaytest.Server, tx any) {
	t.Helper()
	if err := fake.Add(tx); err != nil {
		t.Fatal(err)
	}
}
