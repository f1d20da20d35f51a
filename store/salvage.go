package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Salvaged is what Salvage could and could not copy of a damaged database.
type Salvaged struct {
	// Copied counts the rows copied whole, by table (captures, jobs, meta).
	Copied map[string]int
	// LostCaptures are journal records an index still names but whose row could not be
	// read: the till no longer knows how far their capture got.
	LostCaptures []LostCapture
	// LostJobs are print jobs an index still names but whose row could not be read.
	LostJobs []LostJob
	// Unreadable says, in SQLite's words, what could not be read.
	Unreadable []string
	// Reopened are journal records copied whole that the index of unfinished work says are
	// unfinished, though the row reads finished: a page of the table older than the index
	// (a write the card lost). The row cannot be trusted to say how far the capture got.
	Reopened []string
	// UnnamedLoss: part of the captures table could not be read, nor the index of every
	// id whole — records may be lost that nothing names.
	UnnamedLoss bool
}

// LostCapture is a journal record known only by its id: an index held the id, the table
// page that held the row is damaged.
type LostCapture struct {
	ID string
	// Unfinished: the index of unfinished work held it too — it was in doubt, or captured
	// with receipts not yet spooled.
	Unfinished bool
}

// LostJob is a print job known only from the indexes; what they did not hold is empty.
type LostJob struct {
	Seq           int64
	ID            string
	TransactionID string
	Queued        bool // the index of queued jobs held it, or could not be read whole: it may not have printed
}

// salvageTables are the tables Salvage copies row by row.
var salvageTables = []string{"captures", "jobs"}

// Salvage copies every row SQLite can still read of the damaged database at path into to, a
// store just opened on an empty directory, and says which rows it could not read that an
// index still names (`ecrd store recover`, docs/operations.md). It decides nothing about
// them: what a lost record means for money is the journal's to decide (package capture).
//
// A damaged page hides the rows on it, or every row beneath it in the table's tree; each
// index is a tree of its own that holds the key of every row, so Salvage lists the rows
// from the table and from every index, then copies them one by one, and a row lost to the
// table is still known by its id. The damaged file is opened read-only: it stays as it was,
// for support.
func Salvage(ctx context.Context, path string, to *Store) (*Salvaged, error) {
	from, err := sql.Open("sqlite", "file:"+uriPath(path)+"?mode=ro&_pragma=query_only(1)")
	if err != nil {
		return nil, fmt.Errorf("store: salvage: %w", err)
	}
	defer from.Close()
	var v int
	if err := from.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return nil, fmt.Errorf("store: salvage %s: its first page cannot be read (%w): nothing can be salvaged; restore a backup", path, err)
	}
	if v != Version {
		return nil, fmt.Errorf("store: salvage %s: schema version %d; this ecrd salvages version %d only", path, v, Version)
	}
	conn, err := to.w.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: salvage: %w", err)
	}
	defer conn.Close()
	// The writer's checkpoints are the checkpointer's, which only commits wake (checkpoint.go);
	// this copy commits on the connection itself, row by row. SQLite's own checkpoint, for
	// the copy's length, keeps the log from holding the whole salvaged database until Close.
	if _, err := conn.ExecContext(ctx, "PRAGMA wal_autocheckpoint=1000"); err != nil {
		return nil, fmt.Errorf("store: salvage: %w", err)
	}
	defer conn.ExecContext(context.Background(), "PRAGMA wal_autocheckpoint=0")
	// The copy runs as SQL on the new database's writer: INSERT … SELECT from the damaged
	// one, attached read-only, so every column is copied as it is stored, and the new
	// database's CHECKs judge each row.
	if _, err := conn.ExecContext(ctx, "ATTACH DATABASE ? AS damaged", "file:"+uriPath(path)+"?mode=ro"); err != nil {
		return nil, fmt.Errorf("store: salvage: attach %s: %w", path, err)
	}
	defer conn.ExecContext(context.Background(), "DETACH DATABASE damaged")

	// One row per autocommit transaction, unflushed: a row SQLite finds damaged ends the
	// transaction it is read in, whatever else that holds. The salvaged database is flushed
	// once, whole, by the caller (Store.Close checkpoints it).
	if _, err := conn.ExecContext(ctx, "PRAGMA synchronous=OFF"); err != nil {
		return nil, fmt.Errorf("store: salvage: %w", err)
	}
	sv := &Salvaged{Copied: map[string]int{}}
	for _, table := range salvageTables {
		keys := sv.keys(ctx, from, table)
		var lost []int64
		var first error
		for _, rowid := range keys.rowids() {
			if err := copyRow(ctx, conn, table, rowid); err != nil {
				lost, first = append(lost, rowid), cmp.Or(first, err)
				sv.lost(table, keys, rowid)
				continue
			}
			sv.Copied[table]++
		}
		if len(lost) > 0 {
			sv.unreadable("%s: %d rows (rowid %d to %d): %v", table, len(lost), lost[0], lost[len(lost)-1], first)
		}
		if table == "captures" {
			sv.UnnamedLoss = !keys.tableWhole && !keys.idWhole
			if err := sv.reopened(ctx, conn, keys); err != nil {
				return nil, fmt.Errorf("store: salvage: %w", err)
			}
		}
	}
	// meta is a few rows without a rowid: the steady clock's mark and the import's summary.
	// Copied whole or not at all; without the mark, the clock starts a new epoch, and the
	// journal judges records of the old one by their wall time (internal/steady).
	if res, err := conn.ExecContext(ctx, "INSERT INTO main.meta SELECT * FROM damaged.meta"); err != nil {
		sv.unreadable("meta: %v", err)
	} else if n, err := res.RowsAffected(); err == nil {
		sv.Copied["meta"] = int(n)
	}
	if _, err := conn.ExecContext(ctx, "PRAGMA synchronous=FULL"); err != nil {
		return nil, fmt.Errorf("store: salvage: %w", err)
	}
	return sv, nil
}

// reopened lists the copied records the index of unfinished work holds but whose row reads
// finished.
func (sv *Salvaged) reopened(ctx context.Context, conn *sql.Conn, k *rowKeys) error {
	for rowid := range k.unfinished {
		var id string
		var unfinished bool
		err := conn.QueryRowContext(ctx, "SELECT id, unfinished FROM main.captures WHERE rowid = ?", rowid).Scan(&id, &unfinished)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			continue // not copied: lost, and named so
		case err != nil:
			return err
		case !unfinished:
			sv.Reopened = append(sv.Reopened, id)
		}
	}
	slices.Sort(sv.Reopened)
	return nil
}

// copyRow copies one row by its rowid: a point lookup, which reads only the pages on the way
// to that row.
func copyRow(ctx context.Context, conn *sql.Conn, table string, rowid int64) error {
	res, err := conn.ExecContext(ctx, "INSERT INTO main."+table+" SELECT * FROM damaged."+table+" WHERE rowid = ?", rowid)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return errors.Join(err, errors.New("the row is gone from the table's pages"))
	}
	return nil
}

// rowKeys is what the table and its indexes say of a table's rows, by rowid.
type rowKeys struct {
	seen       map[int64]bool
	id         map[int64]string // captures.id, jobs.id
	txn        map[int64]string // jobs.transaction_id
	unfinished map[int64]bool   // captures_unfinished
	queued     map[int64]bool   // jobs_queued

	tableWhole  bool // the table's own scan met no damage
	idWhole     bool // the index of ids was read whole: every row is named
	queuedWhole bool // jobs_queued was read whole: a job it does not hold had printed
}

func (k *rowKeys) rowids() []int64 {
	ids := make([]int64, 0, len(k.seen))
	for id := range k.seen {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// keys lists table's rows from the table itself and from each of its indexes. Each source
// is read as far as it can be; what stops one is noted, and the others go on.
func (sv *Salvaged) keys(ctx context.Context, db *sql.DB, table string) *rowKeys {
	k := &rowKeys{seen: map[int64]bool{}, id: map[int64]string{}, txn: map[int64]string{},
		unfinished: map[int64]bool{}, queued: map[int64]bool{}}
	k.tableWhole = sv.scanRowids(ctx, db, table, k)
	// Covering scans: each reads the index's own pages only. The index names are the
	// schema's (schema.go); sqlite_autoindex_T_1 is the UNIQUE id's.
	add := func(m map[int64]string) func(int64, string) {
		return func(rowid int64, v string) { k.seen[rowid] = true; m[rowid] = v }
	}
	mark := func(m map[int64]bool) func(int64, string) {
		return func(rowid int64, _ string) { k.seen[rowid] = true; m[rowid] = true }
	}
	switch table {
	case "captures":
		k.idWhole = sv.scanIndex(ctx, db, "SELECT rowid, id FROM captures INDEXED BY sqlite_autoindex_captures_1", add(k.id))
		sv.scanIndex(ctx, db, "SELECT rowid, id FROM captures INDEXED BY captures_unfinished WHERE unfinished",
			func(rowid int64, id string) { add(k.id)(rowid, id); k.unfinished[rowid] = true })
	case "jobs":
		k.idWhole = sv.scanIndex(ctx, db, "SELECT seq, id FROM jobs INDEXED BY sqlite_autoindex_jobs_1", add(k.id))
		sv.scanIndex(ctx, db, "SELECT seq, coalesce(transaction_id, '') FROM jobs INDEXED BY jobs_transaction", add(k.txn))
		k.queuedWhole = sv.scanIndex(ctx, db, "SELECT seq, '' FROM jobs INDEXED BY jobs_queued WHERE state = 'queued'", mark(k.queued))
	}
	return k
}

// scanRowids lists the table's rowids in order, and says whether it met no damage. A damaged
// page stops the scan; it goes on past it by seeking ever further (1, 2, 4, … rowids on), so
// a damaged stretch costs at most 64 seeks, and from the first row found so back down to
// the damage, so that no readable row between is skipped.
func (sv *Salvaged) scanRowids(ctx context.Context, db *sql.DB, table string, k *rowKeys) bool {
	q := "SELECT rowid FROM " + table + " NOT INDEXED WHERE rowid > ? ORDER BY rowid"
	after := int64(math.MinInt64)
	whole := true
	for {
		err := func() error {
			rows, err := db.QueryContext(ctx, q, after)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				if err := rows.Scan(&after); err != nil {
					return err
				}
				k.seen[after] = true
			}
			return rows.Err()
		}()
		if err == nil {
			return whole
		}
		whole = false
		sv.unreadable("%s after row %d: %v", table, after, err)
		if !sv.skip(ctx, db, table, &after, k) {
			return whole
		}
	}
}

// skip moves after past a damaged stretch of the table: to the rowid before the first row a
// seek further on can read, having listed the readable rows between that row and the
// damage. False when no seek finds one.
func (sv *Salvaged) skip(ctx context.Context, db *sql.DB, table string, after *int64, k *rowKeys) bool {
	q := "SELECT rowid FROM " + table + " NOT INDEXED WHERE rowid > ? ORDER BY rowid LIMIT 1"
	for step := int64(1); step > 0 && *after <= math.MaxInt64-step; step *= 2 {
		var next int64
		err := db.QueryRowContext(ctx, q, *after+step).Scan(&next)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return false
		case err == nil:
			sv.scanBack(ctx, db, table, *after, next, k)
			*after = next - 1
			return true
		}
	}
	return false
}

// scanBack lists the rowids between from and to (both excluded), from to down, until the
// damage stops it.
func (sv *Salvaged) scanBack(ctx context.Context, db *sql.DB, table string, from, to int64, k *rowKeys) {
	rows, err := db.QueryContext(ctx, "SELECT rowid FROM "+table+" NOT INDEXED WHERE rowid > ? AND rowid < ? ORDER BY rowid DESC", from, to)
	if err != nil {
		return
	}
	defer rows.Close()
	for rows.Next() {
		var rowid int64
		if rows.Scan(&rowid) != nil {
			return
		}
		k.seen[rowid] = true
	}
}

// scanIndex reads (rowid, text) pairs from one index as far as it can be read, and says
// whether it read it whole.
func (sv *Salvaged) scanIndex(ctx context.Context, db *sql.DB, q string, add func(int64, string)) bool {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		sv.unreadable("index: %v", err)
		return false
	}
	defer rows.Close()
	for rows.Next() {
		var rowid int64
		var v string
		if err := rows.Scan(&rowid, &v); err != nil {
			sv.unreadable("index: %v", err)
			return false
		}
		add(rowid, v)
	}
	if err := rows.Err(); err != nil {
		sv.unreadable("index: %v", err)
		return false
	}
	return true
}

// lost notes a row the table could not give, with what the indexes knew of it.
func (sv *Salvaged) lost(table string, k *rowKeys, rowid int64) {
	switch table {
	case "captures":
		if id, ok := k.id[rowid]; ok {
			sv.LostCaptures = append(sv.LostCaptures, LostCapture{ID: id, Unfinished: k.unfinished[rowid]})
		}
	case "jobs":
		// Unknown is queued: a receipt printed twice, never one lost.
		sv.LostJobs = append(sv.LostJobs, LostJob{Seq: rowid, ID: k.id[rowid], TransactionID: k.txn[rowid],
			Queued: k.queued[rowid] || !k.queuedWhole})
	}
}

func (sv *Salvaged) unreadable(format string, args ...any) {
	sv.Unreadable = append(sv.Unreadable, fmt.Sprintf(format, args...))
}
