package main

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/ecrd-pos/ecrd/store"
)

// A red team's break of ecrd store recover, kept as a regression test of its fix. The break:
// root runs `ecrd store recover` on a state directory of the daemon's user (here nobody,
// 65534) that holds no lock file (a state directory restored or copied by hand): the recovered
// ecrd.db is the daemon's, but the lock file recover creates is root's, 0640 — the daemon's
// user cannot open it read-write, and `ecrd serve` cannot lock its state directory any more.
func TestRedteamRecoverAsRootLeavesFilesTheDaemonCanOpen(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	const uid, gid = 65534, 65534
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	state := filepath.Join(dir, "state")
	st, err := store.Open(state)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	db := filepath.Join(state, store.File)
	for _, p := range []string{state, db} {
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(state, 0o700)
	os.Chmod(db, 0o600)
	// The daemon marked it damaged.
	os.WriteFile(db+store.DamagedSuffix, []byte("damaged\n"), 0o640)
	os.Chown(db+store.DamagedSuffix, uid, gid)

	code, out, errs := runCLI(t, "", "store", "recover", "--state-dir", state)
	t.Logf("exit %d\n%s%s", code, out, errs)
	if code != 0 {
		t.Fatal("recover failed")
	}
	entries, _ := os.ReadDir(state)
	for _, e := range entries {
		fi, _ := os.Stat(filepath.Join(state, e.Name()))
		s := fi.Sys().(*syscall.Stat_t)
		t.Logf("%s: uid %d gid %d mode %v", e.Name(), s.Uid, s.Gid, fi.Mode())
		if e.IsDir() {
			continue // damaged-TIME: for support, not for the daemon
		}
		if s.Uid != uid {
			t.Errorf("%s is left owned by uid %d, mode %v: the daemon's user (uid %d) cannot open it read-write", e.Name(), s.Uid, fi.Mode(), uid)
		}
	}
}
