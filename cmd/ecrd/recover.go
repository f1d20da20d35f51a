package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ecrd-pos/ecrd/capture"
	"github.com/ecrd-pos/ecrd/store"
)

// storeRecover is `ecrd store recover`: a damaged state database replaced by what SQLite can
// still read of it, with the journal's rules applied to what it cannot (capture.Reopen), the
// damaged files kept aside for support (docs/operations.md, "The state database is damaged").
//
// The order keeps a till from ever starting on an empty journal: the damaged mark is written
// first (if the daemon had not left one) and removed last, so a daemon started while this
// runs, or after it was cut short, refuses to start; the new database is whole and flushed
// before it takes the old one's name.
func storeRecover(args []string, stdout, stderr io.Writer) error {
	fs, dir, err := storeFlags("recover", args, stderr)
	if err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: store recover takes no file: it works on the state directory", errUsage)
	}
	lock, err := lockStateDir(dir)
	if err != nil {
		return fmt.Errorf("%w: stop it first (systemctl stop ecrd.socket ecrd)", err)
	}
	defer lock.Close()
	// Run as root on a directory without a lock file, this made one the daemon's user
	// could not open.
	if err := chownLike(filepath.Join(dir, "lock"), dir); err != nil {
		return err
	}
	db := filepath.Join(dir, store.File)
	tmp := filepath.Join(dir, "recover.tmp")
	if done, err := finishCutShort(dir, db, tmp, stdout); done || err != nil {
		return err
	}
	damaged, err := needsRecovery(dir, db)
	if err != nil || !damaged {
		if err == nil {
			fmt.Fprintln(stdout, "integrity:  ok: the database is not damaged; nothing done")
		}
		return err
	}
	sv, ro, err := salvageInto(tmp, db)
	if err != nil {
		return fmt.Errorf("nothing changed: %w", err)
	}
	aside, err := swapIn(dir, db, tmp)
	if err != nil {
		return err
	}
	writeRecovered(stdout, db, aside, sv, ro)
	return nil
}

// needsRecovery says whether the database is damaged or marked so, and leaves the mark if it
// is damaged and the daemon left none: from here until the recovered database is in place no
// daemon may start on this directory.
func needsRecovery(dir, db string) (bool, error) {
	mark := db + store.DamagedSuffix
	_, markErr := os.Stat(mark)
	ro, err := store.OpenReadOnly(dir)
	switch {
	case errors.Is(err, store.ErrNoDatabase):
		return false, err
	case err == nil:
		err = ro.Check(context.Background())
		ro.Close()
	}
	switch {
	case err != nil && !errors.Is(err, store.ErrCorrupt):
		return false, err
	case err == nil && markErr != nil:
		return false, nil
	case markErr == nil:
		return true, nil
	}
	msg := time.Now().UTC().Format(time.RFC3339) + " ecrd store recover: " + err.Error() + "\n"
	if err := os.WriteFile(mark, []byte(msg), 0o640); err != nil {
		return false, fmt.Errorf("the mark that keeps the daemon stopped meanwhile: %w", err)
	}
	return true, nil
}

// salvageInto writes the recovered database to tmp/ecrd.db, whole, checked and flushed, with
// db's owner and mode.
func salvageInto(tmp, db string) (*store.Salvaged, *capture.Reopened, error) {
	if err := os.RemoveAll(tmp); err != nil {
		return nil, nil, err
	}
	to, err := store.Open(tmp)
	if err != nil {
		return nil, nil, err
	}
	sv, err := store.Salvage(context.Background(), db, to)
	var ro *capture.Reopened
	if err == nil {
		ro, err = capture.Reopen(to, sv)
	}
	if err == nil {
		err = to.Check(context.Background())
	}
	if cerr := to.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fitFile(filepath.Join(tmp, store.File), db)
	}
	if err != nil {
		os.RemoveAll(tmp)
		return nil, nil, err
	}
	return sv, ro, nil
}

// swapIn sets the damaged files aside in a new damaged-TIME directory, puts tmp's database in
// db's place, then moves the mark aside: the last step, so that a recovery cut short leaves
// a directory no daemon starts on (finishCutShort ends it).
func swapIn(dir, db, tmp string) (string, error) {
	aside, err := os.MkdirTemp(dir, "damaged-"+time.Now().UTC().Format("20060102T150405Z")+"-")
	if err != nil {
		return "", err
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Rename(db+suffix, filepath.Join(aside, store.File+suffix)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
	}
	return aside, placeRecovered(db, tmp, aside)
}

// placeRecovered moves tmp's database to db and the mark into aside, each flushed.
func placeRecovered(db, tmp, aside string) error {
	if err := os.Rename(filepath.Join(tmp, store.File), db); err != nil {
		return fmt.Errorf("the damaged database is in %s, the recovered one in %s: %w", aside, tmp, err)
	}
	os.RemoveAll(tmp)
	if err := syncFile(db); err != nil {
		return err
	}
	if err := os.Rename(db+store.DamagedSuffix, filepath.Join(aside, store.File+store.DamagedSuffix)); err != nil {
		return err
	}
	return syncFile(db)
}

// finishCutShort ends a recovery that was cut short after its database was written whole
// (tmp holds it, db is gone, the mark is in place): the rest of the damaged files go to the
// newest damaged-TIME directory, and the database into place.
func finishCutShort(dir, db, tmp string, stdout io.Writer) (bool, error) {
	if _, err := os.Stat(filepath.Join(tmp, store.File)); err != nil {
		return false, nil
	}
	if _, err := os.Stat(db); err == nil {
		return false, nil // cut short before the swap: start over
	}
	asides, _ := filepath.Glob(filepath.Join(dir, "damaged-*"))
	if len(asides) == 0 {
		return false, fmt.Errorf("%s holds a recovered database but no damaged-* directory the damaged one went to: see docs/operations.md, \"The state database is damaged\"", tmp)
	}
	slices.Sort(asides)
	aside := asides[len(asides)-1]
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Rename(db+suffix, filepath.Join(aside, store.File+suffix)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return true, err
		}
	}
	if err := placeRecovered(db, tmp, aside); err != nil {
		return true, err
	}
	fmt.Fprintf(stdout, "recovered:  %s (the recovery cut short before was finished; the damaged files are in %s)\n", db, aside)
	return true, nil
}

// fitFile gives the recovered database the damaged one's owner and mode: the daemon runs as
// its own user, a technician runs this as root.
func fitFile(path, like string) error {
	fi, err := os.Stat(like)
	if err != nil {
		return err
	}
	if err := os.Chmod(path, fi.Mode().Perm()); err != nil {
		return err
	}
	if err := chownLike(path, like); err != nil {
		return err
	}
	return syncFile(path)
}

// chownLike gives path like's owner, when run as root.
func chownLike(path, like string) error {
	fi, err := os.Stat(like)
	if err != nil {
		return err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 {
		return os.Chown(path, int(st.Uid), int(st.Gid))
	}
	return nil
}

func writeRecovered(w io.Writer, db, aside string, sv *store.Salvaged, ro *capture.Reopened) {
	fmt.Fprintf(w, "recovered:  %s\n", db)
	fmt.Fprintf(w, "copied:     %d captures, %d jobs, %d settings whole\n", sv.Copied["captures"], sv.Copied["jobs"], sv.Copied["meta"])
	for _, u := range sv.Unreadable {
		fmt.Fprintf(w, "unreadable: %s\n", u)
	}
	if len(ro.InDoubt) > 0 {
		fmt.Fprintf(w, "in doubt:   %d captures known only by id; each is read back from secupay before anything is sent, one found captured prints its receipt unless its job shows it printed (never the drawer): %s\n",
			len(ro.InDoubt), strings.Join(ro.InDoubt, " "))
	}
	if len(ro.Respool) > 0 {
		fmt.Fprintf(w, "reprinting: %d captures whose queued receipt was lost print it again: %s\n", len(ro.Respool), strings.Join(ro.Respool, " "))
	}
	for _, j := range ro.JobsGone {
		fmt.Fprintf(w, "job lost:   queued job %s (transaction %s, queue position %d) cannot be made again: print it again from the POS\n",
			orUnknown(j.ID), orUnknown(j.TransactionID), j.Seq)
	}
	if ro.UnnamedLoss {
		fmt.Fprintln(w, "unnamed:    the damage took records that no index names: until --journal-keep has passed, every transaction the journal does not know is read back from secupay before its first start/cash")
	}
	if ro.Completed > 0 {
		fmt.Fprintf(w, "printed:    %d printed jobs lost from the history (nothing owed)\n", ro.Completed)
	}
	fmt.Fprintf(w, "set aside:  %s (keep it for support)\n", aside)
	fmt.Fprintln(w, "next:       systemctl start ecrd; ecrd status")
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
