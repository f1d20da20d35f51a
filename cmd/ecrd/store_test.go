package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ecrd-pos/ecrd/api"
	"github.com/ecrd-pos/ecrd/secupay/secupaytest"
	"github.com/ecrd-pos/ecrd/store"
)

// The store commands look where `ecrd serve` keeps its state unless told.
func TestStoreDefaultStateDirIsServes(t *testing.T) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var cfg serveConfig
	cfg.register(fs)
	if got := fs.Lookup("state-dir").DefValue; got != defaultStateDir {
		t.Fatalf("ecrd serve --state-dir defaults to %s, the store commands to %s", got, defaultStateDir)
	}
	// ECRD_STATE_DIR, then the env file's, then the default; the flag wins over all.
	dir := t.TempDir()
	env := filepath.Join(dir, "ecrd.env")
	os.WriteFile(env, []byte("# the daemon's\nECRD_STATE_DIR=\"/srv/till\"\n"), 0o644)
	for _, c := range []struct {
		args   []string
		setEnv string
		want   string
	}{
		{[]string{"--env-file", filepath.Join(dir, "none")}, "", ""},
		{[]string{"--env-file", env}, "", "/srv/till"},
		{[]string{"--env-file", env}, "/from/env", "/from/env"},
		{[]string{"--env-file", env, "--state-dir", "/flag"}, "/from/env", "/flag"},
	} {
		if c.setEnv != "" {
			t.Setenv("ECRD_STATE_DIR", c.setEnv)
		}
		_, got, err := storeFlags("check", c.args, os.Stderr)
		if c.want == "" {
			if err == nil {
				t.Errorf("%q: a named env file that is missing: no error", c.args)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q with ECRD_STATE_DIR=%q: %q, %v; want %q", c.args, c.setEnv, got, err, c.want)
		}
	}
}

// `ecrd jobs` lists what the daemon printed and what waits, newest first, and `ecrd reprint`
// prints a transaction's receipt or any job once more — against the daemon as a till runs it.
func TestJobsAndReprintCommands(t *testing.T) {
	e := newDaemonEnv(t)
	e.start()
	if status, out := e.capture(secupaytest.SeedID); status != 200 {
		t.Fatalf("capture: %d %v", status, out)
	}
	sock := "--socket=" + e.socket
	receiptJob := secupaytest.SeedID + ".receipt"

	code, out, errs := runCLI(t, "", "reprint", sock, secupaytest.SeedID)
	if code != 0 || out != "reprint of "+secupaytest.SeedID+": job "+secupaytest.SeedID+".reprint-1 printed\n" {
		t.Fatalf("reprint of a transaction: %d %q %q", code, out, errs)
	}
	code, out, errs = runCLI(t, "", "reprint", sock, receiptJob)
	if code != 0 || out != "copy of job "+receiptJob+": job "+receiptJob+".copy-1 printed\n" {
		t.Fatalf("reprint of a job: %d %q %q", code, out, errs)
	}
	if r := e.waitReceipts(3); len(r) != 3 {
		t.Fatalf("%d receipts on paper, want the receipt and 2 reprints", len(r))
	}

	// Paper out: a capture's receipt waits, and says why.
	os.WriteFile(e.printerFile+".status", []byte("paper_out\n"), 0o644)
	if status, out := e.capture("STX_JOBSQUEUED"); status != 200 || jobOf(out)["state"] != "queued" {
		t.Fatalf("capture with the paper out: %d %v", status, out)
	}
	code, out, errs = runCLI(t, "", "jobs", sock)
	if code != 0 {
		t.Fatalf("ecrd jobs: %d %q %q", code, out, errs)
	}
	t.Logf("ecrd jobs:\n%s", out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 || !regexp.MustCompile(`^JOB +STATE +KIND +TRANSACTION +BYTES +WHEN +REASON$`).MatchString(lines[0]) {
		t.Fatalf("ecrd jobs:\n%s", out)
	}
	for i, want := range []string{
		`^STX_JOBSQUEUED\.receipt +queued +receipt +STX_JOBSQUEUED +[0-9]+ +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +paper_out`,
		`^` + receiptJob + `\.copy-1 +printed +reprint +` + secupaytest.SeedID + ` +[1-9][0-9]* +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +-$`,
		`^` + secupaytest.SeedID + `\.reprint-1 +printed +reprint +` + secupaytest.SeedID + ` `,
		`^` + receiptJob + ` +printed +receipt +` + secupaytest.SeedID + ` `,
	} {
		if !regexp.MustCompile(want).MatchString(lines[i+1]) {
			t.Errorf("line %d %q does not match %s", i+1, lines[i+1], want)
		}
	}
	code, out, _ = runCLI(t, "", "jobs", sock, "--limit", "1", "--json")
	var list api.JobList
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list.Jobs) != 1 || list.Jobs[0].State != "queued" {
		t.Fatalf("ecrd jobs --limit 1 --json: %d %q", code, out)
	}
	// A copy of the waiting receipt waits behind it.
	code, out, _ = runCLI(t, "", "reprint", sock, "STX_JOBSQUEUED.receipt")
	if code != 0 || !strings.Contains(out, "job STX_JOBSQUEUED.receipt.copy-1 queued (paper_out") {
		t.Fatalf("reprint of a waiting job: %d %q", code, out)
	}
	os.WriteFile(e.printerFile+".status", []byte("online\n"), 0o644)
	if r := e.waitReceipts(5); len(r) != 5 {
		t.Fatalf("%d receipts after the paper came back, want 5", len(r))
	}

	// What cannot be done is said, with exit status 1; a wrong command line is 2.
	for _, c := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"reprint", sock, "STX_NEVER.receipt"}, 1, "404 not_found"},
		{[]string{"reprint", sock, "STX_NEVER"}, 1, "404 not_captured"},
		{[]string{"reprint", sock, "../x"}, 1, "400 invalid_id"},
		{[]string{"reprint", sock}, 2, "exactly one"},
		{[]string{"jobs", sock, "--limit", "0"}, 2, "--limit"},
		{[]string{"jobs", "--socket", filepath.Join(e.dir, "none.sock")}, 1, "daemon not reachable"},
		{[]string{"reprint", "--socket", filepath.Join(e.dir, "none.sock"), "STX_A"}, 1, "daemon not reachable"},
	} {
		code, out, errs := runCLI(t, "", c.args...)
		if code != c.code || !strings.Contains(errs, c.says) {
			t.Errorf("ecrd %q: exit %d, stdout %q, stderr %q; want %d saying %q", c.args, code, out, errs, c.code, c.says)
		}
	}
	if n := e.fake.Calls().Captures[secupaytest.SeedID]; n != 1 {
		t.Fatalf("captured %d times", n)
	}
}

// damagePages overwrites pages in the middle of the database, as a failing SD card would.
func damagePages(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	if _, err := f.WriteAt([]byte(strings.Repeat("\xffdamaged", 1024)), fi.Size()/2/4096*4096); err != nil {
		t.Fatal(err)
	}
}

// `ecrd store check` reads the database beside the running daemon and says what it holds and
// whether SQLite finds it whole; a damaged one exits 1 and says what SQLite found, and a
// missing one is an error that creates nothing.
func TestStoreCheck(t *testing.T) {
	e := newDaemonEnv(t)
	p := e.start()
	for i := range 40 {
		if status, out := e.capture(fmt.Sprintf("STX_CHECK%03d", i)); status != 200 {
			t.Fatalf("capture: %d %v", status, out)
		}
	}
	e.waitReceipts(40)
	code, out, errs := runCLI(t, "", "store", "check", "--state-dir", e.state)
	t.Logf("ecrd store check:\n%s", out)
	if code != 0 {
		t.Fatalf("store check beside the daemon: %d %q %q", code, out, errs)
	}
	for _, want := range []string{
		"database:   " + filepath.Join(e.state, store.File) + " (",
		fmt.Sprintf("schema:     version %d (this ecrd writes %d)\n", store.Version, store.Version),
		"captures:   40 (captured 40)\n", "unfinished: 0\n", "pruned:     0\n", "newest:     ",
		"jobs:       0 queued, 40 printed\n", "integrity:  ok\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("store check does not say %q", want)
		}
	}
	// The daemon is not disturbed: it captures on.
	if status, out := e.capture("STX_CHECKAFTER"); status != 200 {
		t.Fatalf("capture after the check: %d %v", status, out)
	}

	stopCleanly(t, p)
	db := filepath.Join(e.state, store.File)
	damagePages(t, db)
	// The built binary, as a technician runs it: exit status 1.
	cmd := exec.Command(ecrdBin, "store", "check", "--state-dir", e.state)
	outb, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("store check of a damaged database: %v\n%s", err, outb)
	}
	t.Logf("ecrd store check, damaged:\n%s%s", outb, err.(*exec.ExitError).Stderr)
	if !strings.Contains(string(outb), "integrity:  damaged: ") || strings.Contains(string(outb), "integrity:  ok") {
		t.Errorf("store check of a damaged database says:\n%s", outb)
	}
	if !strings.Contains(string(err.(*exec.ExitError).Stderr), "The state database is damaged") {
		t.Errorf("no pointer to the recovery: %s", err.(*exec.ExitError).Stderr)
	}
	if _, err := os.Stat(db + store.DamagedSuffix); !os.IsNotExist(err) {
		t.Errorf("store check left the damaged mark: %v", err)
	}

	os.WriteFile(db, []byte(strings.Repeat("not sqlite ", 1000)), 0o600)
	if code, out, _ := runCLI(t, "", "store", "check", "--state-dir", e.state); code != 1 || !strings.Contains(out, "integrity:  damaged: ") {
		t.Errorf("store check of a file that is no database: %d %q", code, out)
	}

	missing := filepath.Join(e.dir, "nothing-here")
	code, out, errs = runCLI(t, "", "store", "check", "--state-dir", missing)
	if code != 1 || !strings.Contains(errs, "no state database at "+filepath.Join(missing, store.File)) {
		t.Errorf("store check of a missing database: %d %q %q", code, out, errs)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("store check of a missing database made %s: %v", missing, err)
	}
	empty := t.TempDir()
	runCLI(t, "", "store", "check", "--state-dir", empty)
	if names, _ := os.ReadDir(empty); len(names) != 0 {
		t.Errorf("store check in an empty state directory left %v", names)
	}
	for _, args := range [][]string{{"store"}, {"store", "fix"}, {"store", "check", "a", "b"}, {"store", "backup", "--state-dir", e.state}} {
		if code, _, _ := runCLI(t, "", args...); code != 2 {
			t.Errorf("ecrd %q: exit %d, want 2", args, code)
		}
	}
}

// `ecrd store backup` copies the database while the daemon runs; the copy restored in its place
// (stop, copy, remove the log, start) is the journal as it was: captures up to the backup are
// answered from it, and one made after it is not captured twice — secupay refuses the second
// start/cash and the read-back finds it captured.
func TestStoreBackup(t *testing.T) {
	e := newDaemonEnv(t)
	p := e.start()
	for i := range 20 {
		if status, out := e.capture(fmt.Sprintf("STX_BACKUP%03d", i)); status != 200 {
			t.Fatalf("capture: %d %v", status, out)
		}
	}
	backup := filepath.Join(e.dir, "ecrd-backup.db")
	code, out, errs := runCLI(t, "", "store", "backup", "--state-dir", e.state, backup)
	t.Logf("ecrd store backup:\n%s", out)
	if code != 0 || !regexp.MustCompile(`^backup: +`+regexp.QuoteMeta(backup)+` \([0-9.]+ KiB, 20 captures, 20 jobs; integrity ok\)\n$`).MatchString(out) {
		t.Fatalf("store backup beside the daemon: %d %q %q", code, out, errs)
	}
	fi, err := os.Stat(backup)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the backup: %v, %v; want mode 0600", fi, err)
	}
	if names, _ := filepath.Glob(filepath.Join(e.dir, ".ecrd-backup-*")); len(names) != 0 {
		t.Errorf("left behind: %q", names)
	}
	if code, _, errs := runCLI(t, "", "store", "backup", "--state-dir", e.state, backup); code != 1 || !strings.Contains(errs, "exists") {
		t.Errorf("a backup over an existing file: %d %q", code, errs)
	}
	if code, out, _ := runCLI(t, "", "store", "check", backup); code != 0 || !strings.Contains(out, "captures:   20 (captured 20)") {
		t.Errorf("store check of the backup: %d %q", code, out)
	}
	if code, _, errs := runCLI(t, "", "store", "backup", "--state-dir", filepath.Join(e.dir, "none"), filepath.Join(e.dir, "b2.db")); code != 1 || !strings.Contains(errs, "no state database") {
		t.Errorf("a backup of no database: %d %q", code, errs)
	}

	// After the backup: one more capture, which the restore will lose.
	const late = "STX_BACKUPLATE"
	if status, out := e.capture(late); status != 200 {
		t.Fatalf("capture: %d %v", status, out)
	}
	stopCleanly(t, p)
	db := filepath.Join(e.state, store.File)
	b, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(db, b, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Remove(db + "-wal")
	os.Remove(db + "-shm")
	e.start()
	before := e.fake.Calls()
	if status, out := e.capture("STX_BACKUP007"); status != 200 || out["replayed"] != true {
		t.Fatalf("a capture in the backup, asked again: %d %v", status, out)
	}
	if status, out := e.capture(late); status != 200 || out["outcome"] != "captured" {
		t.Fatalf("the capture made after the backup, asked again: %d %v", status, out)
	}
	after := e.fake.Calls()
	if after.StartCash["STX_BACKUP007"] != before.StartCash["STX_BACKUP007"] {
		t.Error("a capture the backup holds reached secupay again")
	}
	if after.Captures[late] != 1 {
		t.Errorf("the late capture was captured %d times", after.Captures[late])
	}
}
