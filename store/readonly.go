package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ErrNoDatabase is returned when there is no state database where one was to be read. A
// read-only open never creates one.
var ErrNoDatabase = errors.New("store: no state database")

// OpenReadOnly opens the database of state directory dir for reading only: what `ecrd store
// check` and `ecrd store backup` work on, with the daemon running or not (WAL mode lets a
// reader in beside the writer). Unlike Open it never creates the directory or the database
// (ErrNoDatabase), runs no migration, and opens a database marked damaged (DamagedSuffix):
// checking one is what it is for. Like Open it refuses a schema newer than this version knows.
//
// It writes nothing to the database, and Check leaves no damaged mark when it finds damage:
// that mark stops the daemon, and is the daemon's to leave. (For that the store is latched
// damaged from the start, so Corrupt says true and every commit fails: a read-only store
// has none to make.) Backup still works: VACUUM INTO only reads the database.
func OpenReadOnly(dir string) (*Store, error) {
	return OpenReadOnlyFile(filepath.Join(dir, File))
}

// OpenReadOnlyFile is OpenReadOnly of a database file named by its path: a backup, say,
// before it is restored.
func OpenReadOnlyFile(path string) (*Store, error) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%w at %s", ErrNoDatabase, path)
	case err != nil:
		return nil, fmt.Errorf("store: %w", err)
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("%w at %s: not a regular file", ErrNoDatabase, path)
	}
	s := &Store{path: path}
	s.corrupt.Store(true) // see OpenReadOnly: no commits, no damaged mark
	// mode=ro: SQLite opens the file read-only (a write is SQLITE_READONLY); query_only on top.
	// No journal_mode, no auto_vacuum: those are the writer's.
	ro := "file:" + uriPath(path) + "?mode=ro&_pragma=busy_timeout(5000)&_pragma=query_only(1)"
	if s.r, err = sql.Open("sqlite", ro); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	s.r.SetMaxOpenConns(2)
	if s.w, err = sql.Open("sqlite", ro); err != nil { // Close closes both; nothing writes
		s.r.Close()
		return nil, fmt.Errorf("store: %w", err)
	}
	s.w.SetMaxOpenConns(1)
	if err := s.readableSchema(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// uriPath escapes what SQLite's URI file names would read otherwise: '%' starts an escape,
// '?' the query, '#' a fragment.
func uriPath(path string) string {
	return strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
}

// readableSchema refuses a database this version cannot read: a newer schema, or a file that
// is a database but not ecrd's. A file that is not a database at all is ErrCorrupt.
func (s *Store) readableSchema() error {
	var v int
	if err := s.r.QueryRow("PRAGMA user_version").Scan(&v); err != nil {
		return s.wrap("open "+s.path, err)
	}
	if v > len(migrations) {
		return fmt.Errorf("store: open %s: the database has schema version %d; this ecrd knows %d: it was written by a newer ecrd", s.path, v, len(migrations))
	}
	var tables int
	err := s.r.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN ('captures', 'jobs')`).Scan(&tables)
	if err != nil {
		return s.wrap("open "+s.path, err)
	}
	if v == 0 || tables < 2 {
		return fmt.Errorf("store: open %s: not an ecrd state database (schema version %d, %d of its 2 tables)", s.path, v, tables)
	}
	return nil
}

// Summary is what a technician reads of a state database before trusting it, restoring it or
// sending it to support (`ecrd store check`).
type Summary struct {
	Path          string
	SchemaVersion int
	Bytes         int64 // the database file
	WALBytes      int64 // SQLite's write-ahead log beside it, not yet checkpointed into it (0: none)
	// Captures counts the journal's records, Phases them by phase (intent, in_doubt,
	// captured, refused, not_captured).
	Captures int
	Phases   map[string]int
	// Unfinished: records that still need work (an outcome to learn, receipts to spool).
	// Pruned: captured records whose answer and receipt were dropped after --journal-keep.
	Unfinished, Pruned int
	// Newest is when the newest record was made (zero when there is none): after a restore,
	// the captures since then are not in the journal.
	Newest time.Time
	// JobsQueued wait for the printer; JobsPrinted are the printed jobs still remembered.
	JobsQueued, JobsPrinted int
}

// Summary counts the database's rows, in one read transaction: one moment's picture even while
// the daemon writes.
func (s *Store) Summary(ctx context.Context) (*Summary, error) {
	sum := &Summary{Path: s.path, Phases: map[string]int{}}
	if fi, err := os.Stat(s.path); err == nil {
		sum.Bytes = fi.Size()
	}
	if fi, err := os.Stat(s.path + "-wal"); err == nil {
		sum.WALBytes = fi.Size()
	}
	tx, err := s.r.BeginTx(ctx, nil)
	if err != nil {
		return nil, s.wrap("summary", err)
	}
	defer tx.Rollback()
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&sum.SchemaVersion); err != nil {
		return nil, s.wrap("summary", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT phase, count(*) FROM captures GROUP BY phase`)
	if err != nil {
		return nil, s.wrap("summary", err)
	}
	for rows.Next() {
		var phase string
		var n int
		if err := rows.Scan(&phase, &n); err != nil {
			rows.Close()
			return nil, s.wrap("summary", err)
		}
		sum.Phases[phase] = n
		sum.Captures += n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, s.wrap("summary", err)
	}
	var newest sql.NullString
	err = tx.QueryRowContext(ctx, `SELECT
	(SELECT count(*) FROM captures WHERE unfinished),
	(SELECT count(*) FROM captures WHERE pruned),
	(SELECT max(created) FROM captures),
	(SELECT count(*) FROM jobs WHERE state = 'queued'),
	(SELECT count(*) FROM jobs WHERE state = 'printed')`).Scan(&sum.Unfinished, &sum.Pruned, &newest,
		&sum.JobsQueued, &sum.JobsPrinted)
	if err != nil {
		return nil, s.wrap("summary", err)
	}
	sum.Newest = parseTime(newest)
	return sum, nil
}
