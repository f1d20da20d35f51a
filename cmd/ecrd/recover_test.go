package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ecrd-pos/ecrd/store"
)

// damageCapturesLeaf writes garbage over a leaf page of the captures table in the middle of
// the database at path, as a failing SD card would: the rows on it are lost, their ids are
// still in the table's index.
func damageCapturesLeaf(t *testing.T, path string) {
	t.Helper()
	pages := dbPages(t, path, "SELECT pageno FROM dbstat WHERE name = 'captures' AND pagetype = 'leaf' ORDER BY pageno")
	if len(pages) < 3 {
		t.Fatalf("captures fill %d leaf pages; the test needs more", len(pages))
	}
	overwritePage(t, path, pages[len(pages)/2])
}

// `ecrd store recover` on a database whose captures lost a page: every capture it could not
// read is read back from secupay and none is sent again, nor printed again when the jobs
// remember its receipt; the damaged files are set aside, and the daemon runs on the result. It
// refuses while a daemon runs, and leaves a whole database alone.
func TestStoreRecover(t *testing.T) {
	e := newDaemonEnv(t)
	p := e.start()
	const n = 120
	for i := range n {
		if status, out := e.capture(fmt.Sprintf("STX_RECOVER%03d", i)); status != 200 {
			t.Fatalf("capture: %d %v", status, out)
		}
	}
	e.waitReceipts(n)

	code, out, errs := runCLI(t, "", "store", "recover", "--state-dir", e.state)
	if code != 1 || !strings.Contains(errs, "in use by another ecrd") || !strings.Contains(errs, "systemctl stop ecrd.socket ecrd") {
		t.Fatalf("recover beside the running daemon: %d %q %q", code, out, errs)
	}
	stopCleanly(t, p)
	if code, out, errs := runCLI(t, "", "store", "recover", "--state-dir", e.state); code != 0 || out != "integrity:  ok: the database is not damaged; nothing done\n" {
		t.Fatalf("recover of a whole database: %d %q %q", code, out, errs)
	}

	db := filepath.Join(e.state, store.File)
	damageCapturesLeaf(t, db)
	if code, _, _ := runCLI(t, "", "store", "check", "--state-dir", e.state); code != 1 {
		t.Fatalf("store check of the damaged database: exit %d", code)
	}
	code, out, errs = runCLI(t, "", "store", "recover", "--state-dir", e.state)
	t.Logf("ecrd store recover:\n%s%s", out, errs)
	if code != 0 {
		t.Fatalf("recover: %d %q %q", code, out, errs)
	}
	m := regexp.MustCompile(`(?m)^in doubt: +(\d+) captures known only by id; .*: ((?:STX_RECOVER\d+ ?)+)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("recover names no capture in doubt:\n%s", out)
	}
	lost := strings.Fields(m[2])
	if fmt.Sprint(len(lost)) != m[1] || !strings.Contains(out, fmt.Sprintf("copied:     %d captures, %d jobs, 1 settings whole\n", n-len(lost), n)) {
		t.Fatalf("%d lost, and the copy says:\n%s", len(lost), out)
	}
	aside, _ := filepath.Glob(filepath.Join(e.state, "damaged-*", store.File))
	marks, _ := filepath.Glob(filepath.Join(e.state, "damaged-*", store.File+store.DamagedSuffix))
	if len(aside) != 1 || len(marks) != 1 {
		t.Fatalf("set aside: %q %q", aside, marks)
	}
	if _, err := os.Stat(db + store.DamagedSuffix); !os.IsNotExist(err) {
		t.Fatalf("the mark is still in place: %v", err)
	}
	if code, out, _ := runCLI(t, "", "store", "check", "--state-dir", e.state); code != 0 ||
		!strings.Contains(out, fmt.Sprintf("captures:   %d (captured %d, in_doubt %d)", n, n-len(lost), len(lost))) {
		t.Fatalf("store check of the recovered database: %d\n%s", code, out)
	}

	// The daemon on the recovered database: each lost capture is read back, and asked again
	// answers captured; secupay saw no second start/cash. Their receipts printed before the
	// damage, and the jobs table, which was whole, says so: none prints twice.
	p = e.start()
	for i := range n {
		id := fmt.Sprintf("STX_RECOVER%03d", i)
		if status, out := e.capture(id); status != 200 || out["outcome"] != "captured" {
			t.Fatalf("%s asked again after the recovery: %d %v", id, status, out)
		}
	}
	stopCleanly(t, p)
	calls := e.fake.Calls()
	for i := range n {
		id := fmt.Sprintf("STX_RECOVER%03d", i)
		if calls.StartCash[id] != 1 {
			t.Errorf("%s: start/cash sent %d times", id, calls.StartCash[id])
		}
	}
	for _, id := range lost {
		if calls.Get[id] == 0 {
			t.Errorf("%s, lost to the damage, answered without a read-back", id)
		}
	}
	if r := e.receipts(); len(r) != n {
		t.Errorf("%d receipts on paper; want %d", len(r), n)
	}
	if code, out, _ := runCLI(t, "", "store", "check", "--state-dir", e.state); code != 0 ||
		!strings.Contains(out, fmt.Sprintf("captures:   %d (captured %d)", n, n)) || !strings.Contains(out, "unfinished: 0\n") {
		t.Fatalf("store check after the daemon settled them: %d\n%s", code, out)
	}
}
