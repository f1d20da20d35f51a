package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/internal/wait"
	"github.com/ecrd-pos/ecrd/receipt"
	"github.com/ecrd-pos/ecrd/store"
)

// A red team's break of ecrd store recover, kept as a regression test of its fix. The break:
// A capture whose answer was lost in the crash that came with the damage (its intent, with
// attempts=1, is a row recover copies whole): after `ecrd store recover` the next life reads
// it back captured and opens the cash drawer — hours later, for a customer long gone, while
// the commit says a recovered record never opens it ("Attempts 0, so a receipt found so opens
// no drawer" holds only for records rebuilt from an id).
func TestRedteamRecoverCopiedIntentOpensNoDrawer(t *testing.T) {
	e := newDaemonEnv(t)
	e.extraEnv = []string{"ECRD_DRAWER_KICK=0"}
	kicks := func() int { b, _ := os.ReadFile(e.printerFile); return bytes.Count(b, receipt.DrawerKick(0)) }
	p := e.start()
	const n = 60
	for i := range n {
		if status, out := e.capture(fmt.Sprintf("STX_DRAWER%03d", i)); status != 200 {
			t.Fatalf("capture: %d %v", status, out)
		}
	}
	e.waitReceipts(n)
	wait.Until(t, 10*time.Second, "the pulses", func() bool { return kicks() == n })
	stopCleanly(t, p)

	// The till dies right after secupay captured, before the answer is journaled.
	p = e.launch("ECRD_CRASHPOINT=after-answer")
	if err := e.waitHealthy(p); err != nil {
		t.Fatal(err)
	}
	const last = "STX_DRAWERLAST"
	if _, _, err := e.request("POST", "/v1/transactions/"+last+"/cash"); err == nil {
		t.Fatal("no crash at after-answer")
	}
	p.wait(t)
	if e.fake.Calls().Captures[last] != 1 {
		t.Fatal("secupay did not capture")
	}

	// And the card damaged a page of older captures.
	db := filepath.Join(e.state, store.File)
	leaves := dbPages(t, db, "SELECT pageno FROM dbstat WHERE name = 'captures' AND pagetype = 'leaf' ORDER BY pageno")
	overwritePage(t, db, leaves[len(leaves)/2])
	code, out, errs := runCLI(t, "", "store", "recover", "--state-dir", e.state)
	t.Logf("ecrd store recover: exit %d\n%s%s", code, out, errs)
	if code != 0 {
		t.Fatal("recover failed")
	}
	before := kicks()
	p = e.start()
	e.waitReceipts(n + 1)
	time.Sleep(time.Second)
	stopCleanly(t, p)
	if k := kicks() - before; k != 0 {
		t.Errorf("the drawer opened %d times after the recovery (for %s, captured by the life before the damage)", k, last)
	}
}
