package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/ecrd-pos/ecrd/secupay/secupaytest"
)

// After a reboot of the till the fake starts empty; what its durable log shows started must
// read back captured again, as it would at secupay, and nothing else may change.
func TestReplayCapturesWhatTheLogShowsStarted(t *testing.T) {
	log := filepath.Join(t.TempDir(), "requests.log")
	if err := os.WriteFile(log, []byte("GET /api/v2/Smart/Transactions/STX_READONLY1\n"+
		"POST /api/v2/Smart/Transactions/STX_STARTED1/start/cash\n"+
		"GET /api/v2/Smart/Transactions/STX_STARTED1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fake := secupaytest.NewServer()
	defer fake.Close()
	fake.SetAutoCreate(true)
	tl := counts(log)
	if tl.StartCash["STX_STARTED1"] != 1 || tl.TotalStartCash != 1 || tl.Get["STX_STARTED1"] != 1 || tl.Get["STX_READONLY1"] != 1 {
		t.Fatalf("counts of the log: %+v", tl)
	}
	if err := replay(fake, tl); err != nil {
		t.Fatal(err)
	}
	var tx struct{ Status string }
	if err := json.Unmarshal(fake.Transaction("STX_STARTED1"), &tx); err != nil || tx.Status != "ok" {
		t.Fatalf("started transaction after the replay: %q (%v)", tx.Status, err)
	}
	if got := fake.Transaction("STX_READONLY1"); got != nil {
		t.Fatalf("a transaction only read was created by the replay: %s", got)
	}
}
