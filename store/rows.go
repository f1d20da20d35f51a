package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Capture is one row of the captures table: what the journal knows of one transaction. The
// store neither checks nor derives any of it: capture decides every field.
type Capture struct {
	ID            string
	Phase         string
	Unfinished    bool
	Attempts      int
	Created       time.Time
	Updated       time.Time
	Sent          time.Time
	SentSteady    int64
	UpdatedSteady int64
	SteadyClock   string
	Doubted       bool
	Doubt         string
	Answer        []byte
	TransID       string
	PaymentMethod string
	Refusal       []byte // JSON
	Spooled       bool
	JobError      string
	Reprints      int
	Pruned        bool
}

// Job is one row of the jobs table. Data is left out by the reads that list jobs (Bytes
// says how long it is); JobData reads it.
type Job struct {
	Seq           int64
	ID            string
	TransactionID string
	Kind          string
	State         string // "queued" or "printed"
	Data          []byte
	Bytes         int
	Kick          []byte
	KickLife      string
	Attempts      int
	Created       time.Time
	Printed       time.Time
}

// Job states.
const (
	Queued  = "queued"
	Printed = "printed"
)

// timeFormat stores wall times as fixed-width UTC text: readable in sqlite3, and ordered as
// strings are.
const timeFormat = "2006-01-02T15:04:05.000000000Z"

func text(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(timeFormat)
}

func parseTime(s sql.NullString) time.Time {
	if !s.Valid {
		return time.Time{}
	}
	t, err := time.Parse(timeFormat, s.String)
	if err != nil {
		t, _ = time.Parse(time.RFC3339Nano, s.String)
	}
	return t
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullInt(n int64) any {
	if n == 0 {
		return nil
	}
	return n
}

func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// PutCapture writes c in place of the row of its id, or adds it.
func (tx *Tx) PutCapture(c *Capture) error {
	_, err := tx.tx.Exec(`INSERT INTO captures (id, phase, unfinished, attempts, created, updated, sent,
	sent_steady, updated_steady, steady_clock, doubted, doubt, answer, trans_id, payment_method, refusal,
	spooled, job_error, reprints, pruned) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
ON CONFLICT (id) DO UPDATE SET phase=excluded.phase, unfinished=excluded.unfinished,
	attempts=excluded.attempts, created=excluded.created, updated=excluded.updated, sent=excluded.sent,
	sent_steady=excluded.sent_steady, updated_steady=excluded.updated_steady,
	steady_clock=excluded.steady_clock, doubted=excluded.doubted, doubt=excluded.doubt,
	answer=excluded.answer, trans_id=excluded.trans_id, payment_method=excluded.payment_method,
	refusal=excluded.refusal, spooled=excluded.spooled, job_error=excluded.job_error,
	reprints=excluded.reprints, pruned=excluded.pruned`,
		c.ID, c.Phase, c.Unfinished, c.Attempts, text(c.Created), text(c.Updated), text(c.Sent),
		nullInt(c.SentSteady), nullInt(c.UpdatedSteady), nullString(c.SteadyClock), c.Doubted,
		nullString(c.Doubt), nullBytes(c.Answer), nullString(c.TransID), nullString(c.PaymentMethod),
		nullString(string(c.Refusal)), c.Spooled, nullString(c.JobError), c.Reprints, c.Pruned)
	return err
}

// DeleteCapture removes the row of id.
func (tx *Tx) DeleteCapture(id string) error {
	_, err := tx.tx.Exec(`DELETE FROM captures WHERE id = ?`, id)
	return err
}

// PutMeta writes a value of the meta table.
func (tx *Tx) PutMeta(key string, value []byte) error {
	_, err := tx.tx.Exec(`INSERT INTO meta (key, value) VALUES (?, ?)
ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	return err
}

// AddJob adds j as queued at the end of the queue, unless a job of its id exists (queued or
// printed): then it changes nothing and reports false. j.Seq is set when it was added.
func (tx *Tx) AddJob(j *Job) (bool, error) {
	res, err := tx.tx.Exec(`INSERT INTO jobs (id, transaction_id, kind, state, data, bytes, kick, kick_life, created)
VALUES (?,?,?,'queued',?,?,?,?,?) ON CONFLICT (id) DO NOTHING`,
		j.ID, nullString(j.TransactionID), j.Kind, j.Data, len(j.Data), nullBytes(j.Kick), nullString(j.KickLife), text(j.Created))
	if err != nil {
		return false, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, nil
	}
	j.Seq, err = res.LastInsertId()
	return true, err
}

// AddPrinted adds j as a job printed at at, without bytes (j.Bytes says how many it had),
// unless a job of its id exists: then it changes nothing and reports false. For the import
// of an older ecrd's printed jobs, whose bytes were dropped when they printed.
func (tx *Tx) AddPrinted(j *Job, at time.Time) (bool, error) {
	res, err := tx.tx.Exec(`INSERT INTO jobs (id, transaction_id, kind, state, bytes, attempts, created, printed)
VALUES (?,?,?,'printed',?,?,?,?) ON CONFLICT (id) DO NOTHING`,
		j.ID, nullString(j.TransactionID), j.Kind, j.Bytes, j.Attempts, text(j.Created), text(at))
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// SetKickLife names the life that may send queued job id's drawer pulse ("": handed over).
func (tx *Tx) SetKickLife(id, life string) error {
	_, err := tx.tx.Exec(`UPDATE jobs SET kick_life = ? WHERE id = ? AND state = 'queued'`, nullString(life), id)
	return err
}

// MarkPrinted moves job id from the queue to the printed jobs, dropping its bytes and pulse.
func (tx *Tx) MarkPrinted(id string, at time.Time, attempts int) error {
	_, err := tx.tx.Exec(`UPDATE jobs SET state = 'printed', printed = ?, attempts = ?, data = NULL,
kick = NULL, kick_life = NULL WHERE id = ?`, text(at), attempts, id)
	return err
}

// ForgetPrinted removes the printed jobs older than the newest keep, and says how many.
func (tx *Tx) ForgetPrinted(keep int) (int64, error) {
	res, err := tx.tx.Exec(`DELETE FROM jobs WHERE seq IN (SELECT seq FROM jobs WHERE state = 'printed'
ORDER BY printed DESC LIMIT -1 OFFSET ?)`, keep)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

const captureColumns = `id, phase, unfinished, attempts, created, updated, sent, sent_steady, updated_steady,
steady_clock, doubted, doubt, answer, trans_id, payment_method, refusal, spooled, job_error, reprints, pruned`

func scanCapture(row interface{ Scan(...any) error }) (*Capture, error) {
	var c Capture
	var created, updated, sent, clock, doubt, transID, method, refusal, jobErr sql.NullString
	var sentSteady, updatedSteady sql.NullInt64
	err := row.Scan(&c.ID, &c.Phase, &c.Unfinished, &c.Attempts, &created, &updated, &sent, &sentSteady,
		&updatedSteady, &clock, &c.Doubted, &doubt, &c.Answer, &transID, &method, &refusal, &c.Spooled,
		&jobErr, &c.Reprints, &c.Pruned)
	if err != nil {
		return nil, err
	}
	c.Created, c.Updated, c.Sent = parseTime(created), parseTime(updated), parseTime(sent)
	c.SentSteady, c.UpdatedSteady = sentSteady.Int64, updatedSteady.Int64
	c.SteadyClock, c.Doubt, c.TransID, c.PaymentMethod = clock.String, doubt.String, transID.String, method.String
	c.JobError = jobErr.String
	if refusal.Valid {
		c.Refusal = []byte(refusal.String)
	}
	return &c, nil
}

// Capture reads the row of transaction id, or ErrNotFound.
func (s *Store) Capture(id string) (*Capture, error) {
	c, err := scanCapture(s.r.QueryRow(`SELECT `+captureColumns+` FROM captures WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return c, s.wrap("read capture "+id, err)
}

// UnfinishedIDs reads the ids of the rows marked unfinished, by index: what a start and the
// resolver work through. Ids only, so that one row a hand has damaged cannot hide the others.
func (s *Store) UnfinishedIDs() ([]string, error) {
	rows, err := s.r.Query(`SELECT id FROM captures WHERE unfinished ORDER BY id`)
	if err != nil {
		return nil, s.wrap("unfinished captures", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, s.wrap("unfinished captures", err)
		}
		ids = append(ids, id)
	}
	return ids, s.wrap("unfinished captures", rows.Err())
}

// UnfinishedCaptures reads the rows marked unfinished, by index: a start reads only these,
// however long the till has run.
func (s *Store) UnfinishedCaptures() ([]*Capture, error) {
	return s.captures(`SELECT `+captureColumns+` FROM captures WHERE unfinished ORDER BY id`, "unfinished captures")
}

// PrunableCaptures reads up to limit finished, unpruned rows last changed at or before
// steadyBefore on the steady clock of epoch, or — rows read on another clock, or on none — at
// or before wallBefore on the wall clock, in no particular order. Their answers are left out.
func (s *Store) PrunableCaptures(epoch string, steadyBefore int64, wallBefore time.Time, limit int) ([]*Capture, error) {
	q := `SELECT ` + captureColumns + ` FROM (
	SELECT * FROM captures WHERE NOT unfinished AND NOT pruned AND steady_clock = ? AND updated_steady <= ?
	UNION ALL
	SELECT * FROM captures WHERE NOT unfinished AND NOT pruned AND steady_clock IS NOT ? AND updated <= ?
) LIMIT ?`
	rows, err := s.r.Query(q, epoch, steadyBefore, epoch, text(wallBefore), limit)
	if err != nil {
		return nil, s.wrap("prunable captures", err)
	}
	return s.collect(rows, "prunable captures")
}

func (s *Store) captures(q, what string, args ...any) ([]*Capture, error) {
	rows, err := s.r.Query(q, args...)
	if err != nil {
		return nil, s.wrap(what, err)
	}
	return s.collect(rows, what)
}

func (s *Store) collect(rows *sql.Rows, what string) ([]*Capture, error) {
	defer rows.Close()
	var out []*Capture
	for rows.Next() {
		c, err := scanCapture(rows)
		if err != nil {
			return nil, s.wrap(what, err)
		}
		c.Answer = nil
		out = append(out, c)
	}
	return out, s.wrap(what, rows.Err())
}

// Meta reads a value of the meta table, or ErrNotFound.
func (s *Store) Meta(key string) ([]byte, error) {
	var v []byte
	err := s.r.QueryRow(`SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return v, s.wrap("read meta "+key, err)
}

const jobColumns = `seq, id, transaction_id, kind, state, bytes, kick, kick_life, attempts, created, printed`

func scanJob(row interface{ Scan(...any) error }) (*Job, error) {
	var j Job
	var tx, life, created, printed sql.NullString
	var n sql.NullInt64
	if err := row.Scan(&j.Seq, &j.ID, &tx, &j.Kind, &j.State, &n, &j.Kick, &life, &j.Attempts, &created, &printed); err != nil {
		return nil, err
	}
	j.TransactionID, j.KickLife, j.Bytes = tx.String, life.String, int(n.Int64)
	j.Created, j.Printed = parseTime(created), parseTime(printed)
	return &j, nil
}

// Job reads job id without its bytes, or ErrNotFound.
func (s *Store) Job(id string) (*Job, error) {
	j, err := scanJob(s.r.QueryRow(`SELECT `+jobColumns+` FROM jobs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return j, s.wrap("read job "+id, err)
}

// JobData reads the bytes of queued job id (a printed job's are dropped), or ErrNotFound.
func (s *Store) JobData(id string) ([]byte, error) {
	var b []byte
	err := s.r.QueryRow(`SELECT data FROM jobs WHERE id = ? AND state = 'queued'`, id).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return b, s.wrap("read job "+id, err)
}

// QueuedJobs reads the queued jobs, oldest first, without their bytes, by index.
func (s *Store) QueuedJobs() ([]*Job, error) {
	return s.jobs(`SELECT `+jobColumns+` FROM jobs WHERE state = 'queued' ORDER BY seq`, "queued jobs")
}

// RecentJobs reads the newest limit jobs, queued or printed, newest first, without bytes.
func (s *Store) RecentJobs(limit int) ([]*Job, error) {
	return s.jobs(`SELECT `+jobColumns+` FROM jobs ORDER BY seq DESC LIMIT ?`, "recent jobs", limit)
}

// TransactionJobs reads the jobs of transaction id, oldest first, without bytes.
func (s *Store) TransactionJobs(id string) ([]*Job, error) {
	return s.jobs(`SELECT `+jobColumns+` FROM jobs WHERE transaction_id = ? ORDER BY seq`, "jobs of "+id, id)
}

func (s *Store) jobs(q, what string, args ...any) ([]*Job, error) {
	rows, err := s.r.Query(q, args...)
	if err != nil {
		return nil, s.wrap(what, err)
	}
	defer rows.Close()
	var out []*Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, s.wrap(what, err)
		}
		out = append(out, j)
	}
	return out, s.wrap(what, rows.Err())
}

// PrintedSince counts the printed jobs the store remembers that printed at or after t.
func (s *Store) PrintedSince(t time.Time) (int, error) {
	var n int
	since := "" // before every printed time
	if !t.IsZero() {
		since = t.UTC().Format(timeFormat)
	}
	err := s.r.QueryRowContext(context.Background(),
		`SELECT count(*) FROM jobs WHERE state = 'printed' AND printed >= ?`, since).Scan(&n)
	return n, s.wrap("count printed jobs", err)
}
