package store

import (
	"context"
	"fmt"
)

// migrations bring the schema from version i (PRAGMA user_version) to i+1. Append, never
// edit: a till may skip releases, and each step runs once, in one transaction with the
// version it sets.
var migrations = []string{
	// 1: the captures and the jobs.
	`
CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value BLOB NOT NULL
) WITHOUT ROWID;

-- One row per transaction this till was asked to capture: the journal.
CREATE TABLE captures (
	id             TEXT PRIMARY KEY,  -- secupay's transaction id
	phase          TEXT NOT NULL CHECK (phase IN ('intent','in_doubt','captured','refused','not_captured')),
	unfinished     INTEGER NOT NULL,  -- 1 while it needs work: an outcome to learn, or receipts to spool
	attempts       INTEGER NOT NULL DEFAULT 0,  -- start/cash calls sent
	created        TEXT NOT NULL,     -- wall clock, UTC, for people
	updated        TEXT NOT NULL,
	sent           TEXT,              -- when the latest start/cash left (wall clock)
	sent_steady    INTEGER,           -- the same on the steady clock (nanoseconds)
	updated_steady INTEGER,
	steady_clock   TEXT,              -- the steady clock's epoch of the two readings above
	doubted        INTEGER NOT NULL DEFAULT 0,
	doubt          TEXT,
	answer         BLOB,              -- secupay's whole answer, as received; NULL once pruned
	trans_id       TEXT,
	payment_method TEXT,
	refusal        TEXT,              -- JSON: what secupay said when it refused
	spooled        INTEGER NOT NULL DEFAULT 0,
	job_error      TEXT,
	reprints       INTEGER NOT NULL DEFAULT 0,
	pruned         INTEGER NOT NULL DEFAULT 0,  -- answer dropped: only id, trans_id, payment_method kept
	CHECK (phase <> 'captured' OR answer IS NOT NULL OR pruned),
	-- A capture that may have reached secupay unsettled, or whose receipts are not spooled,
	-- is always unfinished: the resolver finds it, and no prune takes it.
	CHECK (unfinished OR phase IN ('refused','not_captured') OR phase = 'captured' AND spooled)
);
-- A start reads only unfinished work; a prune only finished records, oldest first.
CREATE INDEX captures_unfinished ON captures (id) WHERE unfinished;
CREATE INDEX captures_prunable ON captures (steady_clock, updated_steady) WHERE NOT unfinished AND NOT pruned;

-- One row per print job: queued until the printer took its last byte, then printed.
CREATE TABLE jobs (
	seq            INTEGER PRIMARY KEY,  -- the queue's order
	id             TEXT NOT NULL UNIQUE,
	transaction_id TEXT,
	kind           TEXT NOT NULL,        -- receipt, merchant, reprint, lines
	state          TEXT NOT NULL CHECK (state IN ('queued','printed')),
	data           BLOB,                 -- the ESC/POS bytes; NULL once printed
	bytes          INTEGER NOT NULL DEFAULT 0,  -- their length, kept when they are dropped
	kick           BLOB,                 -- the drawer pulse sent after data, at most once
	kick_life      TEXT,                 -- the daemon's life that may send it ('' handed over)
	attempts       INTEGER NOT NULL DEFAULT 0,
	created        TEXT NOT NULL,
	printed        TEXT,
	CHECK (state <> 'queued' OR coalesce(length(data), 0) > 0)  -- length(NULL) is NULL, which a CHECK lets pass
);
CREATE INDEX jobs_queued ON jobs (seq) WHERE state = 'queued';
CREATE INDEX jobs_printed ON jobs (printed) WHERE state = 'printed';
CREATE INDEX jobs_transaction ON jobs (transaction_id);
`,
}

// Version is the schema version this build writes.
var Version = len(migrations)

func (s *Store) migrate() error {
	ctx := context.Background()
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var v int
	if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return err
	}
	if v > len(migrations) {
		return fmt.Errorf("the database has schema version %d; this ecrd knows %d: it was written by a newer ecrd (downgrade: restore the backup taken before the upgrade, docs/operations.md)", v, len(migrations))
	}
	for ; v < len(migrations); v++ {
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", v+1, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", v+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migration %d: %w", v+1, err)
		}
	}
	return nil
}
