// Package spool is the print worker: it keeps print jobs durable until the printer has taken
// their last byte, and prints them one at a time.
//
// A job is a row of the state database's jobs table (package store), committed before Add
// returns — alone, or in the same flush as the capture it belongs to (Stage, AddTo,
// Enqueue). One worker goroutine owns the printer and drains the queue oldest first, so jobs
// never interleave on the paper. A job is marked printed only after Print returned without
// error, and that mark is not flushed: a crash in the middle of a job, or before the mark
// reached the disk, prints the whole job again on restart (a receipt may come out twice in
// that rare case, never zero times). While the printer reports a state that is
// not ready (paper out, cover open, offline, unplugged) the job waits and is retried.
//
// A job's drawer pulse belongs to the life of the daemon that queued it (see Job.Kick).
//
// The spool must never render, talk to secupay, or drop a job because a printer failed.
package spool

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/ecrd-pos/ecrd/printer"
	"github.com/ecrd-pos/ecrd/store"
)

// State is where a job is.
type State string

const (
	StateQueued  State = "queued"  // durable, waiting for or being written to the printer
	StatePrinted State = "printed" // the printer took its last byte
)

// Job is a print job as the caller hands it in.
type Job struct {
	// ID names the job. Callers derive it from what the job is for (a transaction's receipt),
	// so that adding the same job twice — after a crash between spooling and recording that
	// it was spooled — is a no-op instead of a second receipt.
	ID            string `json:"id"`
	TransactionID string `json:"transaction_id,omitempty"`
	Kind          string `json:"kind"` // receipt, merchant, reprint, lines
	Data          []byte `json:"data"` // ESC/POS bytes, written to the printer as they are
	// Kick is a cash drawer pulse, sent at most once, right after Data is printed. It
	// belongs to the life of the daemon that queued the job (the process, from start to
	// exit): only that life sends it, and a clean stop hands the pulses it still owes to the
	// next life (Close), which claims them with a flush before it may send them. A life that
	// ends in a crash takes its pulses with it, sent or not. So a crash may print Data twice
	// but never open the drawer twice, and no flush has to come between the paper and the
	// pulse; what it costs is a drawer that stays shut after a crash while its receipt was
	// queued or printing (the cashier has a key).
	Kick []byte `json:"kick,omitempty"`
}

// Info is what the spool knows about a job.
type Info struct {
	ID            string
	TransactionID string
	Kind          string
	State         State
	Reason        string // why a queued job is not printed yet
	Attempts      int
	Bytes         int
	Created       time.Time
	Printed       time.Time
	// Held is true once the worker has looked at the job and found it cannot print now:
	// the answer to the POS can then say "queued" and why, without waiting longer.
	Held bool
}

// ErrNotFound is returned for a job id the spool does not know.
var ErrNotFound = errors.New("spool: no such job")

// Options tune the worker. Zero values take the defaults.
type Options struct {
	// Poll is how often a held job's printer is asked again (default 2 s).
	Poll time.Duration
	// RetryMax caps the back-off after failed writes (default 30 s).
	RetryMax time.Duration
	// PrintTimeout bounds one Print call (default 2 min: a long receipt on a 9600 baud line).
	PrintTimeout time.Duration
	// StatusTimeout bounds one Status call (default 5 s).
	StatusTimeout time.Duration
	// KeepDone is how many printed jobs' rows are kept for GET /v1/jobs (default 10000).
	KeepDone int
	Logger   *zap.Logger
	// Observe, if set, is told about every print attempt when it ends: err nil means the job
	// was printed, else the write failed and the job will be tried again. A job held because
	// the printer is not ready is no attempt. It runs on the worker and must not block.
	Observe func(job Info, err error)
	// Pruned, if set, is told when a prune of the printed jobs' rows has ended. It runs on
	// the prune's goroutine.
	Pruned func()
}

func (o *Options) defaults() {
	if o.Poll <= 0 {
		o.Poll = 2 * time.Second
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 30 * time.Second
	}
	if o.PrintTimeout <= 0 {
		o.PrintTimeout = 2 * time.Minute
	}
	if o.StatusTimeout <= 0 {
		o.StatusTimeout = 5 * time.Second
	}
	if o.KeepDone <= 0 {
		o.KeepDone = 10000
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
}

// Spool is a durable queue in front of one printer.
type Spool struct {
	// life names this process's life: the drawer pulses it may send are those of jobs
	// whose KickLife it is (random, so no other life can share it).
	life string
	st   *store.Store
	p    printer.Printer
	opt  Options
	log  *zap.Logger

	mu     sync.Mutex
	queued map[string]*Info // by id; the bytes stay in the store
	// unmarked holds the jobs printed in this life whose printed mark the store did not
	// take (a full disk): their rows still say queued, and a restart prints them again.
	unmarked map[string]Info
	order    []queuedRef // queued jobs, oldest first
	// sincePrune counts the jobs printed since the last prune of the printed jobs' rows.
	sincePrune int
	pruning    sync.Mutex // held by the background prune
	status     printer.Status
	statErr    error
	statAt     time.Time
	changed    chan struct{} // closed and replaced on every change, to wake waiters

	wake chan struct{} // a new job arrived

	// due is when the worker must next come round its loop, as nanoseconds since epoch on
	// the monotonic clock (0 while it is not running): Alive compares it with the clock so
	// that the systemd watchdog can tell a worker stuck in a driver from one that is merely
	// waiting or printing. Not the wall clock: a step of it (NTP, a resumed VM) would make a
	// working worker look stuck, and the watchdog would kill the daemon mid-capture.
	due   atomic.Int64
	epoch time.Time // carries the monotonic reading due counts from
}

type queuedRef struct {
	id  string
	seq int64
}

// pruneDelay is how long after the worker starts the printed jobs' rows are first pruned.
var pruneDelay = 30 * time.Second

// Open opens the spool of the state database st for printer p. It loads the queued jobs —
// never the printed ones — by index, so that Run resumes them.
func Open(st *store.Store, p printer.Printer, opt Options) (*Spool, error) {
	opt.defaults()
	s := &Spool{
		st:       st,
		epoch:    time.Now(),
		p:        p,
		opt:      opt,
		log:      opt.Logger.With(zap.String("printer", p.String())),
		queued:   map[string]*Info{},
		unmarked: map[string]Info{},
		changed:  make(chan struct{}),
		wake:     make(chan struct{}, 1),
		status:   printer.Status{State: printer.StateUnknown, Detail: "not asked yet"},
		life:     newLife(),
	}
	jobs, err := st.QueuedJobs()
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	for _, j := range jobs {
		s.queued[j.ID] = infoOf(j)
		s.order = append(s.order, queuedRef{j.ID, j.Seq})
	}
	s.claimKicks(jobs)
	return s, nil
}

// newLife returns a fresh life name: 96 random bits.
func newLife() string {
	var b [12]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// claimKicks makes this life the owner of the drawer pulses a clean stop handed over, in one
// flush before any of them can be sent: if this life crashes, the next finds them owned by a
// dead life and sends none. A pulse owned by another life is dropped — that life crashed,
// and may have sent it.
func (s *Spool) claimKicks(queued []*store.Job) {
	var claim []string
	for _, j := range queued {
		if len(j.Kick) == 0 {
			continue
		}
		if j.KickLife != "" {
			s.log.Warn("drawer pulse dropped: the daemon that queued the receipt stopped without handing it over, and may have sent it",
				zap.String("job", j.ID), zap.String("transaction_id", j.TransactionID))
			continue
		}
		claim = append(claim, j.ID)
	}
	if len(claim) == 0 {
		return
	}
	err := s.st.Flushed(func(tx *store.Tx) error {
		for _, id := range claim {
			if err := tx.SetKickLife(id, s.life); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		// Not claimed: the pulses stay handed over, and are not sent by this life.
		s.log.Error("drawer pulses handed over by the last stop cannot be claimed; they are not sent", zap.Error(err))
	}
}

// Close hands the drawer pulses this life still owes — cash receipts queued and not yet
// printed — to the next life, in one flush. Call it after Run has returned and nothing adds
// jobs any more; without it (a crash) those pulses are never sent.
func (s *Spool) Close() error {
	jobs, err := s.st.QueuedJobs()
	if err != nil {
		return fmt.Errorf("spool: hand over drawer pulses: %w", err)
	}
	var ids []string
	s.mu.Lock()
	for _, j := range jobs {
		// A job printed in this life whose printed mark the store did not take is still
		// queued in its row, and its pulse was sent: it is not handed over (the next life
		// prints it again, without a pulse).
		if _, printed := s.unmarked[j.ID]; len(j.Kick) > 0 && j.KickLife == s.life && !printed {
			ids = append(ids, j.ID)
		}
	}
	s.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	err = s.st.Flushed(func(tx *store.Tx) error {
		for _, id := range ids {
			if err := tx.SetKickLife(id, ""); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("spool: hand over %d drawer pulses: %w", len(ids), err)
	}
	s.log.Info("drawer pulses of queued receipts handed over to the next start", zap.Int("jobs", len(ids)))
	return nil
}

func infoOf(j *store.Job) *Info {
	in := &Info{ID: j.ID, TransactionID: j.TransactionID, Kind: j.Kind, State: State(j.State),
		Attempts: j.Attempts, Bytes: j.Bytes, Created: j.Created, Printed: j.Printed}
	if in.Bytes == 0 {
		in.Bytes = len(j.Data)
	}
	return in
}

// ValidJobID reports whether id can name a job: letters, digits, '_', '-', '.', not
// starting with '.', at most 128 bytes.
func ValidJobID(id string) bool {
	if id == "" || len(id) > 128 || id[0] == '.' {
		return false
	}
	for _, c := range []byte(id) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
		if !ok {
			return false
		}
	}
	return true
}

// Add makes job durable (one flush) and hands it to the worker. Adding a job whose id the
// spool already holds (queued or printed) changes nothing and returns that job's info.
func (s *Spool) Add(job Job) (Info, error) {
	st, err := s.Stage(job)
	if err != nil {
		return Info{}, err
	}
	if err := s.st.Flushed(st.AddTo); err != nil {
		return Info{}, fmt.Errorf("spool: add %s: %w", job.ID, err)
	}
	st.Enqueue()
	return s.Job(job.ID)
}

// Staged is jobs made ready to add: AddTo writes them in the caller's transaction — alone,
// or with the caller's own rows in one flush (a capture commits its journal record and its
// receipt together) — and once that is committed, Enqueue hands them to the worker.
type Staged struct {
	s     *Spool
	jobs  []*store.Job
	added []bool
}

// AddTo adds the staged jobs in tx; a job whose id the store holds already is left alone.
func (st *Staged) AddTo(tx *store.Tx) error {
	st.added = st.added[:0]
	for _, j := range st.jobs {
		ok, err := tx.AddJob(j)
		if err != nil {
			return fmt.Errorf("spool: add %s: %w", j.ID, err)
		}
		st.added = append(st.added, ok)
	}
	return nil
}

// Enqueue hands the staged jobs, committed, to the worker.
func (st *Staged) Enqueue() {
	s := st.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, j := range st.jobs {
		if i >= len(st.added) || !st.added[i] {
			continue // held already, queued or printed
		}
		if _, ok := s.queued[j.ID]; ok {
			continue
		}
		s.queued[j.ID] = infoOf(j)
		s.order = append(s.order, queuedRef{j.ID, j.Seq})
		s.log.Info("job spooled", zap.String("job", j.ID), zap.String("transaction_id", j.TransactionID),
			zap.String("kind", j.Kind), zap.Int("bytes", len(j.Data)))
	}
	// Callers that committed concurrently may enqueue in the other order: the queue is the
	// order of the commits, as a restart reads it.
	sort.Slice(s.order, func(i, j int) bool { return s.order[i].seq < s.order[j].seq })
	s.notifyLocked()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Stage checks jobs and prepares their rows.
func (s *Spool) Stage(jobs ...Job) (*Staged, error) {
	st := &Staged{s: s}
	now := time.Now().UTC()
	for _, job := range jobs {
		if !ValidJobID(job.ID) {
			return nil, fmt.Errorf("spool: invalid job id %q", job.ID)
		}
		if len(job.Data) == 0 {
			return nil, fmt.Errorf("spool: job %s is empty", job.ID)
		}
		j := &store.Job{ID: job.ID, TransactionID: job.TransactionID, Kind: job.Kind, State: store.Queued,
			Data: job.Data, Kick: job.Kick, Created: now}
		if len(job.Kick) > 0 {
			j.KickLife = s.life
		}
		st.jobs = append(st.jobs, j)
	}
	return st, nil
}

// Job returns what the spool knows about job id: queued, or printed (from the store).
func (s *Spool) Job(id string) (Info, error) {
	if !ValidJobID(id) {
		return Info{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	s.mu.Lock()
	in, ok := s.queued[id]
	var cur Info
	if ok {
		cur = *in
	} else {
		cur, ok = s.unmarked[id]
	}
	s.mu.Unlock()
	if ok {
		return cur, nil
	}
	return s.printed(id)
}

// JobData returns the bytes of a queued job (a printed job's are not kept: its owner renders
// them again if it needs them).
func (s *Spool) JobData(id string) ([]byte, error) {
	s.mu.Lock()
	_, queued := s.queued[id]
	s.mu.Unlock()
	if !queued {
		return nil, fmt.Errorf("%w: %s is not queued", ErrNotFound, id)
	}
	b, err := s.st.JobData(id)
	if err != nil {
		return nil, fmt.Errorf("spool: job %s: %w", id, err)
	}
	return b, nil
}

// printed finds a printed job in the store.
func (s *Spool) printed(id string) (Info, error) {
	j, err := s.st.Job(id)
	if errors.Is(err, store.ErrNotFound) {
		return Info{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return Info{}, fmt.Errorf("spool: %w", err)
	}
	return *infoOf(j), nil
}

// WaitPrinted waits until job id is printed, or the worker found that it cannot print it now
// (Held), or ctx ends; it returns the job's info at that moment.
func (s *Spool) WaitPrinted(ctx context.Context, id string) (Info, error) {
	for {
		s.mu.Lock()
		ch := s.changed
		in, ok := s.queued[id]
		var cur Info
		if ok {
			cur = *in
		}
		s.mu.Unlock()
		if !ok {
			return s.Job(id)
		}
		if cur.Held {
			return cur, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return cur, nil
		}
	}
}

// Pending returns the queued jobs, oldest first.
func (s *Spool) Pending() []Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Info, 0, len(s.order))
	for _, r := range s.order {
		out = append(out, *s.queued[r.id])
	}
	return out
}

// Recent returns the newest n jobs the store remembers, queued or printed, newest first: what
// `ecrd jobs` lists.
func (s *Spool) Recent(n int) ([]Info, error) {
	jobs, err := s.st.RecentJobs(n)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	out := make([]Info, 0, len(jobs))
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, j := range jobs {
		if in, ok := s.queued[j.ID]; ok {
			out = append(out, *in)
			continue
		}
		out = append(out, *infoOf(j))
	}
	return out, nil
}
