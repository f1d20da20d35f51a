// Package spool keeps print jobs durable until the printer has taken their last byte.
//
// A job is one file in DIR/queue, written through the state directory's write-ahead log
// (internal/wal) before Add returns — alone, or in the same flush as the capture it belongs
// to (Stage, Enqueue). One worker goroutine owns the printer and drains the queue oldest
// first, so jobs never interleave on the paper. A job moves to DIR/done only after Print
// returned without error, and that move is not flushed: a crash in the middle of a job, or
// before the move reached the disk, prints the whole job again on restart (a receipt may come
// out twice in that rare case, never zero times). While the printer reports a state that is
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
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/ecrd-pos/ecrd/internal/atomicfile"
	"github.com/ecrd-pos/ecrd/internal/wal"
	"github.com/ecrd-pos/ecrd/printer"
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
	// KeepDone is how many printed jobs' records are kept for GET /v1/jobs (default 10000).
	KeepDone int
	Logger   *zap.Logger
	// Observe, if set, is told about every print attempt when it ends: err nil means the job
	// was printed, else the write failed and the job will be tried again. A job held because
	// the printer is not ready is no attempt. It runs on the worker and must not block.
	Observe func(job Info, err error)
	// Pruned, if set, is told when a prune of the printed jobs' records has ended (the daemon
	// returns the prune's garbage to the kernel then). It runs on the prune's goroutine.
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

// record is a job's file: the job plus the spool's bookkeeping.
type record struct {
	Job
	Seq     uint64    `json:"seq"` // FIFO order; survives restarts
	Created time.Time `json:"created"`
	Printed time.Time `json:"printed,omitzero"`
	// KickLife names the life that may send Kick; empty means handed over by a clean stop
	// (or written by a version before lives), for the next life to claim.
	KickLife string `json:"kick_life,omitempty"`

	unread bool // Open found the file but could not read it yet
}

// Spool is a durable queue in front of one printer.
type Spool struct {
	// life names this process's life: the drawer pulses it may send are those of jobs
	// whose KickLife it is (random, so no other life can share it).
	life              string
	wal               *wal.Log
	queueRel, doneRel string // the directories as the log names them ("spool/queue/")
	queueDir, doneDir string
	p                 printer.Printer
	opt               Options
	log               *zap.Logger

	mu     sync.Mutex
	seq    uint64
	queued map[string]*Info // by id; data stays on disk
	order  []queuedRef      // queued jobs, oldest first
	// recent holds the jobs printed in this life, newest last, at most keepRecent: what
	// WaitPrinted and Job answer from memory. Older printed jobs are read from done/ on demand,
	// so that memory and start-up do not grow with the till's history.
	recent  map[string]*Info
	recentQ []string
	// today holds when each receipt printed today was printed (Unix nanoseconds, for the
	// status line), the newest KeepDone at most, seeded from done/ by the background prune.
	today      []int64
	sincePrune int        // jobs printed since the last prune
	pruning    sync.Mutex // held by the background prune
	status     printer.Status
	statErr    error
	statAt     time.Time
	changed    chan struct{} // closed and replaced on every change, to wake waiters
	// damaged holds the ids of queued jobs whose files could not be parsed; they are set
	// aside (".bad") until their owner remakes them (Replace).
	damaged map[string]bool

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
	seq uint64
}

// keepRecent bounds the printed jobs remembered in memory.
const keepRecent = 1000

// pruneDelay is how long after the worker starts the done directory is first pruned.
var pruneDelay = 30 * time.Second

// Open opens (creating if needed) the spool in dir, a directory of log's state directory
// (given relative to it: "spool"), for printer p. It loads the queued jobs — never the
// printed ones — so that Run resumes them, and removes temporary files a crash left behind.
// Every change to the spool's files goes through log.
func Open(log *wal.Log, dir string, p printer.Printer, opt Options) (*Spool, error) {
	opt.defaults()
	dir = path.Clean(filepath.ToSlash(dir))
	s := &Spool{
		wal:      log,
		epoch:    time.Now(),
		queueRel: path.Join(dir, "queue") + "/",
		doneRel:  path.Join(dir, "done") + "/",
		queueDir: filepath.Join(log.Root(), filepath.FromSlash(dir), "queue"),
		doneDir:  filepath.Join(log.Root(), filepath.FromSlash(dir), "done"),
		p:        p,
		opt:      opt,
		log:      opt.Logger.With(zap.String("printer", p.String())),
		queued:   map[string]*Info{},
		recent:   map[string]*Info{},
		damaged:  map[string]bool{},
		changed:  make(chan struct{}),
		wake:     make(chan struct{}, 1),
		status:   printer.Status{State: printer.StateUnknown, Detail: "not asked yet"},
		life:     newLife(),
	}
	for _, d := range []string{s.queueDir, s.doneDir} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, fmt.Errorf("spool: %w", err)
		}
	}
	queued, err := s.load(s.queueDir)
	if err != nil {
		return nil, err
	}
	for _, r := range queued {
		if r.unread {
			// The file exists but could not be read now (an I/O error): keep its place at the
			// end of the queue; the worker reads it again when its turn comes.
			r.Seq = 0
		}
		s.seq = max(s.seq, r.Seq)
		if _, err := os.Stat(filepath.Join(s.doneDir, r.ID+".json")); err == nil {
			// Written before the log (or by hand): the job was printed; finish the move
			// instead of printing it again.
			if err := s.commit(false, wal.Op{Path: s.queueRel + r.ID + ".json", Remove: true}); err != nil {
				return nil, err
			}
			continue
		}
		s.queued[r.ID] = r.info(StateQueued)
		s.order = append(s.order, queuedRef{r.ID, r.Seq})
	}
	for i := range s.order {
		if s.order[i].seq == 0 {
			s.seq++
			s.order[i].seq = s.seq
		}
	}
	sort.Slice(s.order, func(i, j int) bool { return s.order[i].seq < s.order[j].seq })
	if err := s.claimKicks(queued); err != nil {
		return nil, err
	}
	if err := s.findDamaged(); err != nil {
		return nil, err
	}
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
func (s *Spool) claimKicks(queued []*record) error {
	var ops []wal.Op
	for _, r := range queued {
		if len(r.Kick) == 0 || s.queued[r.ID] == nil {
			continue
		}
		if r.KickLife != "" {
			s.log.Warn("drawer pulse dropped: the daemon that queued the receipt stopped without handing it over, and may have sent it",
				zap.String("job", r.ID), zap.String("transaction_id", r.TransactionID))
			continue
		}
		r.KickLife = s.life
		b, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		ops = append(ops, wal.Op{Path: s.queueRel + r.ID + ".json", Data: b})
	}
	if len(ops) == 0 {
		return nil
	}
	if err := s.commit(true, ops...); err != nil {
		// Not claimed: the pulses stay handed over, and are not sent by this life.
		s.log.Error("drawer pulses handed over by the last stop cannot be claimed; they are not sent", zap.Error(err))
	}
	return nil
}

// Close hands the drawer pulses this life still owes — cash receipts queued and not yet
// printed — to the next life, in one flush. Call it after Run has returned and nothing adds
// jobs any more; without it (a crash) those pulses are never sent.
func (s *Spool) Close() error {
	s.mu.Lock()
	ids := make([]string, 0, len(s.order))
	for _, q := range s.order {
		ids = append(ids, q.id)
	}
	s.mu.Unlock()
	var ops []wal.Op
	for _, id := range ids {
		r, err := readRecord(filepath.Join(s.queueDir, id+".json"))
		if err != nil || len(r.Kick) == 0 || r.KickLife != s.life {
			continue
		}
		r.KickLife = ""
		b, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		ops = append(ops, wal.Op{Path: s.queueRel + id + ".json", Data: b})
	}
	if len(ops) == 0 {
		return nil
	}
	if err := s.commit(true, ops...); err != nil {
		return fmt.Errorf("spool: hand over %d drawer pulses: %w", len(ops), err)
	}
	s.log.Info("drawer pulses of queued receipts handed over to the next start", zap.Int("jobs", len(ops)))
	return nil
}

// commit commits ops through the state directory's log, naming the spool in its errors.
func (s *Spool) commit(sync bool, ops ...wal.Op) error {
	if err := s.wal.Commit(sync, ops...); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	return nil
}

func (r *record) info(st State) *Info {
	return &Info{ID: r.ID, TransactionID: r.TransactionID, Kind: r.Kind, State: st,
		Bytes: len(r.Data), Created: r.Created, Printed: r.Printed}
}

// load reads every job file in dir. A file that cannot be parsed is moved aside with a
// ".bad" suffix and logged rather than stopping the daemon or being silently deleted.
func (s *Spool) load(dir string) ([]*record, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	var out []*record
	for _, e := range ents {
		name := e.Name()
		path := filepath.Join(dir, name)
		if atomicfile.IsTemp(name) {
			os.Remove(path) // never renamed into place: its job was never acknowledged
			continue
		}
		if !strings.HasSuffix(name, ".json") {
			continue
		}
		r, err := readRecord(path)
		switch {
		case errors.Is(err, errDamaged):
			if err := s.setAside(path, err); err != nil {
				return nil, err
			}
			continue
		case err != nil:
			s.log.Error("spool: job file cannot be read now; kept, and read again later", zap.String("file", path), zap.Error(err))
			r = &record{Job: Job{ID: strings.TrimSuffix(name, ".json")}, unread: true}
		}
		out = append(out, r)
	}
	return out, nil
}

// ValidJobID reports whether id can name a job file: letters, digits, '_', '-', '.', not
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

// Add makes job durable and hands it to the worker. It returns only after the job is on
// disk. Adding a job whose id the spool already holds (queued or printed) changes nothing
// and returns that job's info.
func (s *Spool) Add(job Job) (Info, error) {
	st, err := s.Stage(job)
	if err != nil {
		return Info{}, err
	}
	if len(st.jobs) == 0 {
		return s.Job(job.ID) // already held
	}
	if err := s.commit(true, st.Ops()...); err != nil {
		return Info{}, fmt.Errorf("spool: add %s: %w", job.ID, err)
	}
	st.Enqueue()
	return s.Job(job.ID)
}

// Staged is jobs made ready to add: Ops are the log's changes that make them durable, to be
// committed — alone, or with the caller's own changes in one flush (a capture commits its
// journal record and its receipt together) — and then Enqueue hands them to the worker.
type Staged struct {
	s    *Spool
	jobs []*record
	ops  []wal.Op
}

// Ops returns the log changes that write the staged jobs' files.
func (st *Staged) Ops() []wal.Op { return st.ops }

// Enqueue hands the staged jobs, committed, to the worker.
func (st *Staged) Enqueue() {
	s := st.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range st.jobs {
		if _, ok := s.queued[r.ID]; ok {
			continue
		}
		in := r.info(StateQueued)
		s.queued[r.ID] = in
		s.order = append(s.order, queuedRef{r.ID, r.Seq})
		s.log.Info("job spooled", zap.String("job", r.ID), zap.String("transaction_id", r.TransactionID),
			zap.String("kind", r.Kind), zap.Int("bytes", len(r.Data)))
	}
	sort.Slice(s.order, func(i, j int) bool { return s.order[i].seq < s.order[j].seq })
	s.notifyLocked()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Stage checks jobs and prepares their files; jobs the spool already holds are left out.
func (s *Spool) Stage(jobs ...Job) (*Staged, error) {
	st := &Staged{s: s}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, job := range jobs {
		if !ValidJobID(job.ID) {
			return nil, fmt.Errorf("spool: invalid job id %q", job.ID)
		}
		if len(job.Data) == 0 {
			return nil, fmt.Errorf("spool: job %s is empty", job.ID)
		}
		if _, ok := s.queued[job.ID]; ok {
			continue
		}
		if _, err := s.printedLocked(job.ID); err == nil {
			continue
		}
		// Sequence numbers only order the queue; a gap left by a failed commit is harmless.
		s.seq++
		r := &record{Job: job, Seq: s.seq, Created: time.Now().UTC()}
		if len(job.Kick) > 0 {
			r.KickLife = s.life
		}
		b, err := json.Marshal(r)
		if err != nil {
			return nil, fmt.Errorf("spool: %w", err)
		}
		st.jobs = append(st.jobs, r)
		st.ops = append(st.ops, wal.Op{Path: s.queueRel + job.ID + ".json", Data: b})
	}
	return st, nil
}

// Job returns what the spool knows about job id: queued, or printed (from memory for this
// life's jobs, else from its done record on disk).
func (s *Spool) Job(id string) (Info, error) {
	if !ValidJobID(id) {
		return Info{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if in, ok := s.queued[id]; ok {
		return *in, nil
	}
	return s.printedLocked(id)
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
	r, err := readRecord(filepath.Join(s.queueDir, id+".json"))
	if err != nil {
		return nil, fmt.Errorf("spool: job %s: %w", id, err)
	}
	return r.Data, nil
}

// printedLocked finds a printed job: in memory, or its done record on disk.
func (s *Spool) printedLocked(id string) (Info, error) {
	if in, ok := s.recent[id]; ok {
		return *in, nil
	}
	r, err := readRecord(filepath.Join(s.doneDir, id+".json"))
	if err != nil {
		return Info{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return *r.info(StatePrinted), nil
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
		} else if p, err := s.printedLocked(id); err == nil {
			cur, ok = p, true
		}
		s.mu.Unlock()
		if !ok {
			return Info{}, fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		if cur.State == StatePrinted || cur.Held {
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
