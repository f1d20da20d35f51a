package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
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
	ctx := context.Background()
	db := filepath.Join(dir, store.File)
	mark := db + store.DamagedSuffix
	_, markErr := os.Stat(mark)
	marked := markErr == nil

	ro, err := store.OpenReadOnly(dir)
	if errors.Is(err, store.ErrNoDatabase) {
		return fmt.Errorf("%w; a database set aside by an earlier recover is in %s", err, filepath.Join(dir, "damaged-*"))
	}
	if err != nil && !errors.Is(err, store.ErrCorrupt) {
		return err
	}
	if err == nil {
		err = ro.Check(ctx)
		ro.Close()
		if err == nil && !marked {
			fmt.Fprintln(stdout, "integrity:  ok: the database is not damaged; nothing done")
			return nil
		}
		if err != nil && !errors.Is(err, store.ErrCorrupt) {
			return err
		}
	}
	if !marked {
		msg := time.Now().UTC().Format(time.RFC3339) + " ecrd store recover: " + errString(err) + "\n"
		if err := os.WriteFile(mark, []byte(msg), 0o640); err != nil {
			return fmt.Errorf("the mark that keeps the daemon stopped meanwhile: %w", err)
		}
	}

	tmp := filepath.Join(dir, "recover.tmp")
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	to, err := store.Open(tmp)
	if err != nil {
		return err
	}
	sv, err := store.Salvage(ctx, db, to)
	var ro2 *capture.Reopened
	if err == nil {
		ro2, err = capture.Reopen(to, sv)
	}
	if err == nil {
		err = to.Check(ctx)
	}
	if cerr := to.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fitFile(filepath.Join(tmp, store.File), db)
	}
	if err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("nothing changed: %w", err)
	}

	aside := filepath.Join(dir, "damaged-"+time.Now().UTC().Format("20060102T150405Z"))
	if err := os.Mkdir(aside, 0o700); err != nil {
		return err
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Rename(db+suffix, filepath.Join(aside, store.File+suffix)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if err := os.Rename(filepath.Join(tmp, store.File), db); err != nil {
		return fmt.Errorf("the damaged database is in %s, the recovered one in %s: %w", aside, tmp, err)
	}
	os.RemoveAll(tmp)
	if err := syncFile(db); err != nil {
		return err
	}
	if err := os.Rename(mark, filepath.Join(aside, store.File+store.DamagedSuffix)); err != nil {
		return err
	}
	if err := syncFile(db); err != nil {
		return err
	}
	writeRecovered(stdout, db, aside, sv, ro2)
	return nil
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
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 {
		if err := os.Chown(path, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
	}
	return syncFile(path)
}

func errString(err error) string {
	if err == nil {
		return "marked damaged"
	}
	return err.Error()
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
