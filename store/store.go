// Package store keeps ecrd's state in one SQLite database, ecrd.db in the state directory:
// the captures (the journal of every start/cash and secupay's answers) and the print jobs
// (the spool's queue and its recent history), with the steady clock's mark beside them.
//
// It keeps rows and decides nothing: which phase follows which, what counts as unfinished,
// when a record is old enough to prune — all that is capture's and spool's. What the store
// owns is what a commit costs. There are two ways to commit, named for it:
//
//   - Flushed: the transaction is on stable storage when it returns (synchronous=FULL: the
//     write-ahead log is fsync'd). A capture's intent, and its answer with the receipt jobs
//     made from it, are flushed: a power cut must not take them.
//   - Unflushed: the transaction survives a crash of the daemon at once, and a power cut once
//     anything later is flushed (synchronous=NORMAL in WAL mode: SQLite's log is appended in
//     order, so a later flush carries every earlier commit with it). For notes whose loss is
//     harmless — the in-doubt rule settles a lost refusal, doubt or settlement again.
//
// One connection writes; readers have their own (WAL mode lets them read while it writes).
//
// Why SQLite: the state was a write-ahead log and one file per record, written by hand. A
// database engineers trust gives the same two flushes per capture, and transactions,
// indexes, an integrity check, online backup and a file a technician can open with sqlite3.
// modernc.org/sqlite is SQLite compiled to Go: the core of ecrd stays free of cgo.
//
// The store must never import capture, spool or secupay.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"modernc.org/sqlite"

	"github.com/ecrd-pos/ecrd/internal/atomicfile"
	"github.com/ecrd-pos/ecrd/internal/crashpoint"
)

// File is the database's name in the state directory.
const File = "ecrd.db"

// Errors a caller decides on.
var (
	// ErrNotFound: no row of that id.
	ErrNotFound = errors.New("store: not found")
	// ErrCorrupt: SQLite found the database damaged (a failed integrity check, a page that
	// does not parse, a file that is not a database). The daemon stops on it: a journal it
	// cannot trust must not answer whether a transaction was paid. docs/operations.md
	// ("The state database is damaged") says how to recover.
	ErrCorrupt = errors.New("store: the state database is damaged")
	// ErrDiskFailed: a commit's or a checkpoint's write or flush failed with an I/O error. What the kernel
	// then holds of SQLite's log is unknown — Linux may drop the pages a failed fsync could
	// not write and report the next fsync as a success, so a later "flushed" commit could
	// be lost at a power cut. Nothing more is written in this process; the daemon stops and
	// its next start recovers the database from the disk (as PostgreSQL does).
	ErrDiskFailed = errors.New("store: the state directory's disk failed a write")
)

// Store is one state directory's database. It is safe for concurrent use.
type Store struct {
	path string
	w    *sql.DB       // the one writer connection
	r    *sql.DB       // readers
	ckpt *checkpointer // the checkpoints, in the background (checkpoint.go); nil if read-only

	wmu sync.Mutex // one write transaction at a time, each with its own synchronous level

	flushed, unflushed atomic.Int64 // commits, for tests and metrics
	seq                atomic.Int64 // commits, for the checkpointer
	corrupt            atomic.Bool  // latched on the first ErrCorrupt
	diskFailed         atomic.Bool  // latched on the first ErrDiskFailed

	// Observe, if set before the store is used, is told about every commit: op "fsync" for
	// a flushed one, "commit" for one that is not, how long it took, and its error.
	Observe func(op string, d time.Duration, err error)
	// OnCorrupt, if set before the store is used, is called once, when the store first finds
	// the database damaged (the daemon stops on it).
	OnCorrupt func(error)
	// OnDiskFailed, if set before the store is used, is called once, when a commit or a
	// checkpoint first fails with an I/O error (ErrDiskFailed; the daemon stops on it). It may
	// be called from the checkpointer's goroutine.
	OnDiskFailed func(error)
}

// Open opens (creating if needed) the database in state directory dir and brings its schema
// to this version's. A file that is not a database, or whose schema is newer than this
// version knows, is an error: the daemon must not start on a journal it cannot read, since
// an empty one would send start/cash again for transactions already paid.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	path := filepath.Join(dir, File)
	s := &Store{path: path}
	if b, err := os.ReadFile(path + DamagedSuffix); err == nil {
		return nil, fmt.Errorf("%w: %s was found damaged and not recovered since (%s): see docs/operations.md, \"The state database is damaged\"; remove %s once it is recovered",
			ErrCorrupt, path, strings.TrimSpace(string(b)), path+DamagedSuffix)
	}
	var err error
	// journal_mode=WAL is a property of the file; busy_timeout covers the moment a reader
	// (or ecrd store backup) holds a lock the writer needs.
	extra := "&_txlock=immediate"
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		// A new database: free pages (pruned answers, forgotten jobs) can be returned to
		// the file system (Shrink). It takes effect only before anything — journal_mode=WAL
		// included — writes the first page; on an existing database it would cost a write.
		extra = "&_pragma=auto_vacuum(INCREMENTAL)" + extra
	}
	if s.w, err = sql.Open("sqlite", dsn(path, extra)); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetConnMaxLifetime(0)
	s.w.SetMaxIdleConns(1)
	if err := s.migrate(); err != nil {
		s.w.Close()
		return nil, s.wrap("open "+path, err)
	}
	// Readers set nothing that needs a lock: the writer made the file what it is.
	if s.r, err = sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=cache_size("+cacheKiB+")&_pragma=query_only(1)"); err != nil {
		s.w.Close()
		return nil, fmt.Errorf("store: %w", err)
	}
	s.r.SetMaxOpenConns(4)
	s.r.SetMaxIdleConns(4)
	if err := s.startCheckpointer(); err != nil {
		s.r.Close()
		s.w.Close()
		return nil, err
	}
	return s, nil
}

// dsn opens path for writing; extra's pragmas run before journal_mode's. The checkpoints
// are the checkpointer's (checkpoint.go), not SQLite's inside a commit.
func dsn(path, extra string) string {
	return "file:" + path + "?_pragma=busy_timeout(5000)&_pragma=cache_size(" + cacheKiB + ")" + extra +
		"&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=wal_autocheckpoint(0)" +
		"&_pragma=journal_size_limit(" + strconv.FormatInt(walKeepLimit, 10) + ")"
}

// cacheKiB is each connection's page cache (SQLite's default is 2 MiB, on each of the five):
// a till reads a handful of rows per capture, and the cache's memory, which modernc's
// allocator keeps once used, made the daemon 4.3 MiB bigger after a start on 100,000 captures
// than on none; with 256 KiB, 0.8 MiB, at the same captures per second (docs/performance.md).
const cacheKiB = "-256"

// Path is the database file.
func (s *Store) Path() string { return s.path }

// Close closes the database: the checkpointer first, so that none runs after it; then
// SQLite checkpoints its log on the last close, the writer's, and removes it.
func (s *Store) Close() error {
	err := s.stopCheckpointer()
	err = errors.Join(err, s.r.Close())
	return errors.Join(err, s.w.Close())
}

// Tx is one write transaction: rows of both tables change together or not at all.
type Tx struct {
	tx *sql.Tx
	s  *Store
}

// Flushed runs fn in one transaction and flushes it: when Flushed returns nil, the change
// survives power loss. It costs one fsync of SQLite's log; the checkpoints are the
// checkpointer's, beside it (checkpoint.go, docs/performance.md).
func (s *Store) Flushed(fn func(*Tx) error) error { return s.commit(true, fn) }

// Unflushed runs fn in one transaction without a flush of its own: the change survives a
// crash of the daemon, and power loss once anything later is flushed.
func (s *Store) Unflushed(fn func(*Tx) error) error { return s.commit(false, fn) }

// writer takes the one writer connection at a synchronous level (FULL when flush), for a
// write that holds wmu; release gives it back. A store found damaged, or whose disk failed a
// write, writes nothing more.
func (s *Store) writer(ctx context.Context, flush bool) (conn *sql.Conn, release func(), err error) {
	if err := s.latched(); err != nil {
		return nil, nil, err
	}
	s.wmu.Lock()
	if conn, err = s.w.Conn(ctx); err != nil {
		s.wmu.Unlock()
		return nil, nil, err
	}
	release = func() { conn.Close(); s.wmu.Unlock() }
	level := "NORMAL"
	if flush {
		level = "FULL"
	}
	if _, err := conn.ExecContext(ctx, "PRAGMA synchronous="+level); err != nil {
		release()
		return nil, nil, err
	}
	return conn, release, nil
}

func (s *Store) commit(flush bool, fn func(*Tx) error) error {
	ctx := context.Background()
	conn, release, err := s.writer(ctx, flush)
	if err != nil {
		return s.wrap("commit", err)
	}
	defer release()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap("commit", err)
	}
	// Also when fn panics: release (deferred above) closes the connection, which waits for
	// the transaction to end, and would wait forever, holding wmu. After Commit it does nothing.
	defer tx.Rollback()
	if err := fn(&Tx{tx: tx, s: s}); err != nil {
		tx.Rollback()
		return s.wrap("commit", err)
	}
	crashpoint.Hit("store-commit")
	start := time.Now()
	err = tx.Commit()
	if s.Observe != nil {
		op := "commit"
		if flush {
			op = "fsync"
		}
		s.Observe(op, time.Since(start), err)
	}
	if err != nil {
		return s.failed("commit", err)
	}
	if flush {
		s.flushed.Add(1)
	} else {
		s.unflushed.Add(1)
	}
	s.committed()
	crashpoint.Hit("store-committed")
	return nil
}

// failed is wrap for a write to the database's files — a commit's, or a checkpoint's copy
// into ecrd.db — which also latches ErrDiskFailed on an I/O error: what the kernel then holds
// of the log and of ecrd.db is unknown, and a later write that seemed to succeed (a flushed
// commit, a checkpoint that starts the log again) could stand on pages that were lost.
func (s *Store) failed(op string, err error) error {
	if err != nil && isIOError(err) && !s.diskFailed.Swap(true) {
		err = fmt.Errorf("%w: %w", ErrDiskFailed, err)
		if s.OnDiskFailed != nil {
			s.OnDiskFailed(err)
		}
	}
	return s.wrap(op, err)
}

// Shrink returns the database's free pages — left by pruned answers and forgotten jobs — to
// the file system, so that the file does not keep the size of its busiest day (SQLite reuses
// free pages, but never gives them back by itself). It is a write, not flushed, and takes
// about a millisecond per megabyte freed; the daemon calls it after each prune.
func (s *Store) Shrink() error {
	ctx := context.Background()
	conn, release, err := s.writer(ctx, false)
	if err != nil {
		return s.wrap("shrink", err)
	}
	defer release()
	if _, err = conn.ExecContext(ctx, "PRAGMA incremental_vacuum"); err != nil {
		return s.failed("shrink", err) // a write to the log like a commit's, and as untrusted after EIO
	}
	s.committed() // its frames are the checkpointer's to copy, as a commit's
	return nil
}

// Commits returns how many flushed and unflushed transactions the store committed.
func (s *Store) Commits() (flushed, unflushed int64) { return s.flushed.Load(), s.unflushed.Load() }

// Corrupt reports whether the store has found the database damaged since it was opened.
func (s *Store) Corrupt() bool { return s.corrupt.Load() }

// wrap names the store and the operation in err, and turns SQLite's word for a damaged
// database into ErrCorrupt, which it latches: once the database is found damaged no more
// writes are tried.
func (s *Store) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrCorrupt) {
		return err
	}
	if errors.Is(err, ErrDiskFailed) {
		return fmt.Errorf("store: %s: %w", op, err)
	}
	if IsCorrupt(err) {
		err = fmt.Errorf("%w: %s: %w", ErrCorrupt, op, err)
		s.damaged(err)
		return err
	}
	// The system's word for what SQLite met, so that callers (and the POS's answer) can
	// tell a full disk from a broken one.
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case 13: // SQLITE_FULL
			return fmt.Errorf("store: %s: %w: %w", op, syscall.ENOSPC, err)
		case 10: // SQLITE_IOERR
			return fmt.Errorf("store: %s: %w: %w", op, syscall.EIO, err)
		case 8: // SQLITE_READONLY
			return fmt.Errorf("store: %s: %w: %w", op, syscall.EROFS, err)
		}
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

// DamagedSuffix names the file beside the database that says it was found damaged: Open
// refuses to start on it until a technician has recovered the database and removed the file,
// so that a daemon restarted by systemd does not run on a journal it cannot trust.
const DamagedSuffix = ".damaged"

// damaged latches the store's ErrCorrupt, leaves the mark for the next Open, and tells
// OnCorrupt, once.
func (s *Store) damaged(err error) {
	if s.corrupt.Swap(true) {
		return
	}
	msg := time.Now().UTC().Format(time.RFC3339) + " " + err.Error() + "\n"
	if werr := atomicfile.WriteFile(s.path+DamagedSuffix, []byte(msg), 0o640); werr != nil {
		err = errors.Join(err, fmt.Errorf("the mark %s could not be written: %w", s.path+DamagedSuffix, werr))
	}
	if s.OnCorrupt != nil {
		s.OnCorrupt(err)
	}
}

// isIOError reports whether err is SQLite's word for a write or flush the disk failed
// (SQLITE_IOERR and its extended codes), not a full disk or a lock.
func isIOError(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == 10
}

// IsCorrupt reports whether err is SQLite saying the database is damaged or not a database.
func IsCorrupt(err error) bool {
	if errors.Is(err, ErrCorrupt) {
		return true
	}
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff {
	case 11, 26: // SQLITE_CORRUPT, SQLITE_NOTADB
		return true
	}
	return false
}

// Check runs SQLite's integrity_check over the whole database: every page, every index.
// It reads the whole file (seconds on a large journal and a slow card), so the daemon runs
// it in the background and `ecrd store check` on demand. A failure is ErrCorrupt, with what
// SQLite found.
func (s *Store) Check(ctx context.Context) error {
	rows, err := s.r.QueryContext(ctx, "PRAGMA integrity_check(20)")
	if err != nil {
		return s.wrap("integrity check", err)
	}
	defer rows.Close()
	var found []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return s.wrap("integrity check", err)
		}
		if line != "ok" {
			found = append(found, line)
		}
	}
	if err := rows.Err(); err != nil {
		return s.wrap("integrity check", err)
	}
	if len(found) > 0 {
		err := fmt.Errorf("%w: integrity check of %s: %q", ErrCorrupt, s.path, found)
		s.damaged(err)
		return err
	}
	return nil
}

// Backup writes a consistent copy of the database to path (VACUUM INTO), while the daemon
// goes on writing. path must not exist.
func (s *Store) Backup(ctx context.Context, path string) error {
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("store: backup: %s exists", path)
	}
	// VACUUM INTO writes; the readers are query_only, so it runs on a connection of its own.
	// Only a reader's pragmas: auto_vacuum and journal_mode would ask for the write lock.
	db, err := sql.Open("sqlite", "file:"+s.path+"?_pragma=busy_timeout(10000)&_pragma=cache_size("+cacheKiB+")")
	if err != nil {
		return fmt.Errorf("store: backup: %w", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", path); err != nil {
		return s.wrap("backup", err)
	}
	return nil
}
