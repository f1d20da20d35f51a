package capture

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/internal/wait"
	"github.com/ecrd-pos/ecrd/receipt"
	"github.com/ecrd-pos/ecrd/spool"
)

// A capture's printed receipt prints again by its job id, rendered from the journal: a copy
// named after it, of kind reprint, for the same transaction; a copy of a copy is a copy of
// the original.
func TestReprintJobOfAPrintedReceipt(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	res, err := e.svc.Capture(context.Background(), seed)
	if err != nil || res.Job.State != JobPrinted {
		t.Fatalf("capture: %+v, %v", res, err)
	}
	orig := seed + ".receipt"
	for i, of := range []string{orig, orig, orig + ".copy-1"} {
		rp, err := e.svc.ReprintJob(context.Background(), of)
		want := fmt.Sprintf("%s.copy-%d", orig, i+1)
		if err != nil || rp.Status != "ok" || rp.TransactionID != seed || rp.Job.ID != want || rp.Job.State != JobPrinted {
			t.Fatalf("reprint of %s: %+v, %v; want %s printed", of, rp, err, want)
		}
		in, err := e.spool.Job(want)
		if err != nil || in.Kind != "reprint" || in.TransactionID != seed {
			t.Fatalf("the copy's job: %+v, %v", in, err)
		}
	}
	if n := e.receipts(); n != 4 {
		t.Fatalf("%d receipts on paper, want the receipt and 3 copies", n)
	}
	b, _ := os.ReadFile(e.printerFile)
	if n := bytes.Count(b, []byte("Kundenkarte")); n != 4 {
		t.Fatalf("the seed's lines printed %d times, want 4", n)
	}
	if n := e.fake.Calls().StartCash[seed]; n != 1 {
		t.Fatalf("%d start/cash calls", n)
	}
}

// A queued cash receipt's copy carries its bytes and never its drawer pulse: the drawer opens
// once, with the receipt.
func TestReprintJobOfAQueuedReceiptNeverOpensTheDrawer(t *testing.T) {
	t.Parallel()
	pin := 0
	tx := `{"id":"` + seed + `","status":"ok","payment_method":"cash","trans_id":"7",
		"receipt":[{"type":"textline","value":{"text":"Kundenbeleg"}}]}`
	e := newEnv(t, func(c *Config) { c.Secupay = stubSecupay{tx}; c.DrawerPin = &pin })
	e.setPrinter("paper_out")
	res, err := e.svc.Capture(context.Background(), seed)
	if err != nil || res.Job.State != JobQueued {
		t.Fatalf("capture with the paper out: %+v, %v", res, err)
	}
	rp, err := e.svc.ReprintJob(context.Background(), res.Job.ID)
	if err != nil || rp.Job.ID != res.Job.ID+".copy-1" || rp.Job.State != JobQueued {
		t.Fatalf("reprint of the queued receipt: %+v, %v", rp, err)
	}
	e.setPrinter("online")
	e.waitPrinted(t, rp.Job.ID)
	b, _ := os.ReadFile(e.printerFile)
	if n := bytes.Count(b, []byte("Kundenbeleg")); n != 2 {
		t.Fatalf("the receipt printed %d times, want 2", n)
	}
	if n := bytes.Count(b, receipt.DrawerKick(0)); n != 1 {
		t.Fatalf("the drawer was kicked %d times, want once", n)
	}
}

// A POS's own receipt prints again while it is queued; once printed its bytes are gone, and
// so are those of its copies.
func TestReprintJobOfAPOSReceipt(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	lines := []receipt.Line{{Type: "textline", Value: receipt.Value{Text: "Bon 42"}}}
	e.setPrinter("paper_out")
	jr, err := e.svc.PrintLines(context.Background(), lines)
	if err != nil || jr.State != JobQueued {
		t.Fatalf("print lines: %+v, %v", jr, err)
	}
	rp, err := e.svc.ReprintJob(context.Background(), jr.ID)
	if err != nil || rp.TransactionID != "" || rp.Job.ID != jr.ID+".copy-1" {
		t.Fatalf("reprint of a queued POS receipt: %+v, %v", rp, err)
	}
	e.setPrinter("online")
	e.waitPrinted(t, rp.Job.ID)
	b, _ := os.ReadFile(e.printerFile)
	if n := bytes.Count(b, []byte("Bon 42")); n != 2 {
		t.Fatalf("printed %d times, want 2", n)
	}
	for _, id := range []string{jr.ID, rp.Job.ID} {
		if _, err := e.svc.ReprintJob(context.Background(), id); !errors.Is(err, ErrJobBytesGone) {
			t.Errorf("reprint of printed %s: %v, want ErrJobBytesGone", id, err)
		}
	}
	if _, err := e.svc.ReprintJob(context.Background(), "STX_NEVER.receipt"); !errors.Is(err, ErrNoJob) {
		t.Errorf("reprint of an unknown job: %v, want ErrNoJob", err)
	}
	if n := e.receipts(); n != 2 {
		t.Fatalf("%d receipts on paper, want 2", n)
	}
}

// A capture's job whose record was pruned cannot be printed again: the journal kept that it
// was paid, not its receipt.
func TestReprintJobOfAPrunedCapture(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.KeepFinished = time.Hour })
	res, err := e.svc.Capture(context.Background(), seed)
	if err != nil || res.Job.State != JobPrinted {
		t.Fatalf("capture: %+v, %v", res, err)
	}
	e.clock.Advance(2 * time.Hour)
	e.svc.Prune()
	if rec, err := e.journal.Get(seed); err != nil || !rec.Pruned {
		t.Fatalf("not pruned: %+v, %v", rec, err)
	}
	if _, err := e.svc.ReprintJob(context.Background(), res.Job.ID); !errors.Is(err, ErrReceiptPruned) {
		t.Fatalf("reprint of a pruned capture's receipt: %v, want ErrReceiptPruned", err)
	}
	if n := e.receipts(); n != 1 {
		t.Fatalf("%d receipts on paper", n)
	}
}

// Copies asked for at once each get a number of their own, and each prints.
func TestReprintJobCopiesAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	res, err := e.svc.Capture(context.Background(), seed)
	if err != nil {
		t.Fatal(err)
	}
	const n = 6
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rp, err := e.svc.ReprintJob(context.Background(), res.Job.ID)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = rp.Job.ID
		}()
	}
	wg.Wait()
	sort.Strings(ids)
	for i := range n {
		if want := fmt.Sprintf("%s.copy-%d", res.Job.ID, i+1); ids[i] != want {
			t.Fatalf("copies %q", ids)
		}
	}
	wait.Until(t, 10*time.Second, "every copy on paper", func() bool { return e.receipts() == n+1 })
	for _, id := range ids {
		if in, err := e.spool.Job(id); err != nil || in.State != spool.StatePrinted {
			t.Errorf("%s: %+v, %v", id, in, err)
		}
	}
}
