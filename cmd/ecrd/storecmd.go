package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ecrd-pos/ecrd/store"
)

// defaultStateDir is `ecrd serve --state-dir`'s default, where the package keeps the state.
const defaultStateDir = "/var/lib/ecrd"

const storeUsage = `Usage:
  ecrd store check  [--state-dir DIR] [FILE]   the database's counts and SQLite's integrity check; exit 1 if damaged
  ecrd store backup [--state-dir DIR] FILE     a consistent copy of the database in FILE (VACUUM INTO), checked
  ecrd store recover [--state-dir DIR]         replace a damaged database by what can still be read of it

check and backup work on the state database directly, with the daemon running or stopped,
and never change it. recover needs the daemon stopped (systemctl stop ecrd.socket ecrd): it
copies every readable row into a new database, makes each capture it could not read a
capture in doubt (read back from secupay before anything is sent), prints again the queued
receipts it lost, and sets the damaged files aside in DIR/damaged-TIME. DIR is --state-dir, else ECRD_STATE_DIR, else ECRD_STATE_DIR in --env-file
(/etc/ecrd/ecrd.env), else /var/lib/ecrd: the daemon's. 'check FILE' checks a database file
instead, such as a backup before it is restored.
`

// cmdStore is `ecrd store check`, `backup` and `recover`: the state database for a technician
// (docs/operations.md, "The state database").
func cmdStore(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, storeUsage)
		return fmt.Errorf("%w: need check, backup or recover", errUsage)
	}
	switch args[0] {
	case "check":
		return storeCheck(args[1:], stdout, stderr)
	case "backup":
		return storeBackup(args[1:], stdout, stderr)
	case "recover":
		return storeRecover(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, storeUsage)
		return flag.ErrHelp
	}
	fmt.Fprint(stderr, storeUsage)
	return fmt.Errorf("%w: unknown store command %q", errUsage, args[0])
}

// storeFlags parses a store command's flags and says which state directory it means.
func storeFlags(name string, args []string, stderr io.Writer) (*flag.FlagSet, string, error) {
	fs := newFlagSet("store "+name, stderr)
	dir := fs.String("state-dir", defaultStateDir, "the daemon's state directory, which holds "+store.File)
	envFile := fs.String("env-file", defaultEnvFile, "the daemon's settings, read for ECRD_STATE_DIR unless --state-dir or the environment sets it")
	fs.Usage = func() {
		fmt.Fprint(stderr, storeUsage+"\n")
		fs.PrintDefaults()
	}
	if err := parse(fs, args, true); err != nil {
		return nil, "", err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if _, inEnv := os.LookupEnv(envName("state-dir")); !set["state-dir"] && !inEnv {
		vars, err := readEnvFile(*envFile)
		switch {
		case err == nil:
			if v := vars[envName("state-dir")]; v != "" {
				*dir = v
			}
		case errors.Is(err, os.ErrNotExist) && !set["env-file"]:
		default:
			return nil, "", err
		}
	}
	return fs, *dir, nil
}

func storeCheck(args []string, stdout, stderr io.Writer) error {
	fs, dir, err := storeFlags("check", args, stderr)
	if err != nil {
		return err
	}
	var st *store.Store
	switch fs.NArg() {
	case 0:
		st, err = store.OpenReadOnly(dir)
	case 1:
		st, err = store.OpenReadOnlyFile(fs.Arg(0))
	default:
		return fmt.Errorf("%w: at most one database file", errUsage)
	}
	if errors.Is(err, store.ErrCorrupt) {
		return damagedDB(stdout, stderr, err)
	}
	if err != nil {
		return err
	}
	defer st.Close()
	ctx := context.Background()
	// A database damaged where the counts read stops them; the integrity check still says
	// where else it is.
	sum, serr := st.Summary(ctx)
	if serr != nil && !errors.Is(serr, store.ErrCorrupt) {
		return serr
	}
	if serr == nil {
		writeSummary(stdout, sum)
	}
	if b, err := os.ReadFile(st.Path() + store.DamagedSuffix); err == nil {
		fmt.Fprintf(stdout, "mark:       %s: %s\n", st.Path()+store.DamagedSuffix, strings.TrimSpace(string(b)))
	}
	cerr := st.Check(ctx)
	switch {
	case errors.Is(cerr, store.ErrCorrupt):
		return damagedDB(stdout, stderr, cerr)
	case cerr != nil:
		return cerr
	case serr != nil:
		return damagedDB(stdout, stderr, serr)
	}
	fmt.Fprintln(stdout, "integrity:  ok")
	return nil
}

// damagedDB says what SQLite found, and where the recovery is; exit status 1.
func damagedDB(stdout, stderr io.Writer, err error) error {
	fmt.Fprintf(stdout, "integrity:  damaged: %s\n", strings.TrimPrefix(err.Error(), store.ErrCorrupt.Error()+": "))
	fmt.Fprintln(stderr, `ecrd store check: the database is damaged; the recovery is in /usr/share/doc/ecrd/docs/operations.md.gz, "The state database is damaged"`)
	return errQuiet
}

// writeSummary prints what the database holds, as `ecrd store check` shows it.
func writeSummary(w io.Writer, s *store.Summary) {
	fmt.Fprintf(w, "database:   %s (%s", s.Path, sizeOf(s.Bytes))
	if s.WALBytes > 0 {
		fmt.Fprintf(w, ", write-ahead log %s", sizeOf(s.WALBytes))
	}
	fmt.Fprintln(w, ")")
	fmt.Fprintf(w, "schema:     version %d (this ecrd writes %d)\n", s.SchemaVersion, store.Version)
	var phases []string
	for _, p := range []string{"captured", "refused", "not_captured", "in_doubt", "intent"} {
		if n := s.Phases[p]; n > 0 {
			phases = append(phases, fmt.Sprintf("%s %d", p, n))
		}
	}
	fmt.Fprintf(w, "captures:   %d", s.Captures)
	if len(phases) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(phases, ", "))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "unfinished: %d\n", s.Unfinished)
	fmt.Fprintf(w, "pruned:     %d\n", s.Pruned)
	if !s.Newest.IsZero() {
		fmt.Fprintf(w, "newest:     %s\n", s.Newest.Local().Format("2006-01-02 15:04:05"))
	}
	fmt.Fprintf(w, "jobs:       %d queued, %d printed\n", s.JobsQueued, s.JobsPrinted)
}

// sizeOf says a file's size as a person reads it.
func sizeOf(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d bytes", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	default:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
}

func storeBackup(args []string, stdout, stderr io.Writer) error {
	fs, dir, err := storeFlags("backup", args, stderr)
	if err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: need the backup's file name", errUsage)
	}
	out, err := filepath.Abs(fs.Arg(0))
	if err != nil {
		return err
	}
	if _, err := os.Lstat(out); err == nil {
		return fmt.Errorf("%s exists: a backup never overwrites a file; name a new one", out)
	}
	st, err := store.OpenReadOnly(dir)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := backupTo(st, out); err != nil {
		return err
	}
	// Checked as it is, before anyone trusts it.
	b, err := store.OpenReadOnlyFile(out)
	if err != nil {
		return fmt.Errorf("backup %s cannot be read back: %w", out, err)
	}
	defer b.Close()
	sum, err := b.Summary(context.Background())
	if err == nil {
		err = b.Check(context.Background())
	}
	if err != nil {
		return fmt.Errorf("backup %s is not sound: %w", out, err)
	}
	fi, err := os.Stat(out)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backup:     %s (%s, %d captures, %d jobs; integrity ok)\n", out, sizeOf(fi.Size()),
		sum.Captures, sum.JobsQueued+sum.JobsPrinted)
	return nil
}

// backupTo writes st's copy to out, which must not exist, whole or not at all: VACUUM INTO
// writes it in a directory of its own beside out (mode 0700: the copy holds every payment's
// answer), where it is made 0600 and flushed — SQLite does not flush what VACUUM INTO wrote,
// and a backup taken before an upgrade must survive the power cut that may follow — then
// linked to out, which fails rather than replace a file made meanwhile.
func backupTo(st *store.Store, out string) error {
	tmp, err := os.MkdirTemp(filepath.Dir(out), ".ecrd-backup-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	part := filepath.Join(tmp, store.File)
	if err := st.Backup(context.Background(), part); err != nil {
		return err
	}
	if err := os.Chmod(part, 0o600); err != nil {
		return err
	}
	if err := syncFile(part); err != nil {
		return fmt.Errorf("backup not flushed: %w", err)
	}
	if err := os.Link(part, out); err != nil {
		return err
	}
	if err := syncFile(out); err != nil {
		return fmt.Errorf("backup %s written but not flushed: %w", out, err)
	}
	return nil
}

// syncFile flushes a file and the directory entry that names it.
func syncFile(path string) error {
	for _, p := range []string{path, filepath.Dir(path)} {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
