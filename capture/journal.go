package capture

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ecrd-pos/ecrd/internal/atomicfile"
	"github.com/ecrd-pos/ecrd/internal/dirscan"
	"github.com/ecrd-pos/ecrd/internal/steady"
	"github.com/ecrd-pos/ecrd/internal/wal"
)

// Phase is how far a capture got. The journal records the phase before and after every
// step whose outcome matters, so a restart knows what happened without guessing.
type Phase string

const (
	// PhaseIntent: start/cash is about to be (or was) sent; its outcome is not known.
	PhaseIntent Phase = "intent"
	// PhaseInDoubt: start/cash was sent and no answer settles it (timeout, cut connection,
	// 5xx, a 200 that is not a clean "ok"). Only reading the transaction back settles it,
	// and no other start/cash is sent until it is settled (settle.go).
	PhaseInDoubt Phase = "in_doubt"
	// PhaseCaptured: secupay answered 200 and "ok" (or a read-back showed it); Answer holds it.
	PhaseCaptured Phase = "captured"
	// PhaseRefused: secupay refused unambiguously; nothing was captured. A new attempt may be made.
	PhaseRefused Phase = "refused"
	// PhaseNotCaptured: settled without a refusal — nothing was sent, or a capture in doubt
	// was read back as not captured after the in-doubt wait. A new attempt may be made.
	PhaseNotCaptured Phase = "not_captured"

	// phaseUnknown is what journals written before the in-doubt rule called PhaseInDoubt.
	phaseUnknown Phase = "unknown"
)

// Record is one transaction's line in the journal.
type Record struct {
	TransactionID string    `json:"transaction_id"`
	Phase         Phase     `json:"phase"`
	Attempts      int       `json:"attempts"` // start/cash calls sent
	Created       time.Time `json:"created"`
	Updated       time.Time `json:"updated"`
	// Sent is when the latest start/cash was sent (journaled just before it left), on the
	// wall clock: for people. A capture in doubt may still be worked on by secupay for a
	// while after it; settle measures that on SentAt, the steady clock's reading then.
	Sent   time.Time      `json:"sent,omitzero"`
	SentAt steady.Instant `json:"sent_steady,omitempty"`
	// UpdatedAt is Updated on the steady clock: pruning measures a record's age on it.
	UpdatedAt steady.Instant `json:"updated_steady,omitempty"`
	// Clock is the steady clock's epoch that SentAt and UpdatedAt were read on; readings of
	// another epoch (a clock whose mark was lost) compare with nothing and count as unknown.
	Clock string `json:"steady_clock,omitempty"`
	// Doubted is set once any start/cash of this transaction was in doubt: a technician's
	// hint. (No refusal is believed without a read-back anyway; see attempt.)
	Doubted bool            `json:"doubted,omitempty"`
	Doubt   string          `json:"doubt,omitempty"`  // why it is in doubt
	Answer  json.RawMessage `json:"answer,omitempty"` // secupay's whole answer, as received
	TransID string          `json:"trans_id,omitempty"`
	Refusal *Refusal        `json:"refusal,omitempty"`
	// Spooled is set once the receipt jobs are durable in the spool; until then a restart
	// (or a replayed request) renders and spools them again under the same job ids.
	Spooled  bool   `json:"spooled"`
	JobError string `json:"job_error,omitempty"` // why no receipt job could be made
	Reprints int    `json:"reprints"`
	// Pruned: the record was pruned and this is what the paid index keeps of it (paid.go):
	// captured, with its trans_id and payment method, but without secupay's answer.
	Pruned        bool   `json:"pruned,omitempty"`
	PaymentMethod string `json:"payment_method,omitempty"` // only on a pruned record
	// Unsure: there is no record, but the paid index could not be read whole where this id
	// would be: it may have been captured and pruned. Never stored.
	Unsure bool `json:"-"`
}

// inDoubt reports whether a start/cash of the record may have reached secupay unsettled.
func (r *Record) inDoubt() bool { return r.Phase == PhaseIntent || r.Phase == PhaseInDoubt }

// unfinished reports whether the record still needs work: an outcome to learn from
// secupay, or a receipt to put in the spool.
func (r *Record) unfinished() bool {
	return r.inDoubt() || r.Phase == PhaseCaptured && !r.Spooled
}

// Refusal is what secupay said when it refused a capture.
type Refusal struct {
	HTTPStatus   int    `json:"http_status"`
	Status       string `json:"status,omitempty"`
	Error        string `json:"error,omitempty"`
	ErrorUser    string `json:"error_user,omitempty"`
	ErrorDetails string `json:"error_details,omitempty"`
	Code         string `json:"code,omitempty"`
	SupportID    string `json:"support_id,omitempty"`
}

// Journal stores one file per transaction: journal/ID.json while the transaction needs work
// (unfinished), journal/finished/ID.json after, so that a start reads only what is
// unfinished however long the till has run. Every change goes through the state directory's
// write-ahead log (internal/wal): one flush makes it durable, and a technician still reads
// a capture's history with cat.
type Journal struct {
	log   *wal.Log
	dir   string
	clock *steady.Clock
}

// The journal's place in the state directory, as the write-ahead log names paths.
const (
	journalDir  = "journal"
	finishedDir = "journal/finished"
	// clockRel is the steady clock's mark (internal/steady), written with every change
	// to the journal, so that the next life's clock goes on from it.
	clockRel = "steady-clock.json"
)

// OpenJournal opens the journal in log's state directory. Its steady clock reads src
// (nil: the machine's) and goes on from the mark a previous life left.
func OpenJournal(log *wal.Log, src steady.Source) (*Journal, error) {
	if src == nil {
		src = steady.System()
	}
	dir := filepath.Join(log.Root(), journalDir)
	if err := os.MkdirAll(filepath.Join(log.Root(), finishedDir), 0o750); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	// Leftovers of writes that never completed; those in finished/ are removed by
	// PruneFinished, which reads that (long) directory anyway, later.
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	for _, e := range ents {
		if atomicfile.IsTemp(e.Name()) {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	j := &Journal{log: log, dir: dir}
	mark, _, err := j.read(clockRel)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("journal: %w", err)
	}
	j.clock = steady.New(src, mark)
	return j, nil
}

// Clock is the journal's steady clock: the in-doubt wait and pruning are measured on it.
func (j *Journal) Clock() *steady.Clock { return j.clock }

var errNoRecord = errors.New("journal: no record")

// CorruptError is a journal file that exists but does not hold a record of its transaction
// (truncated, edited, "null", "{}"). Its transaction is in doubt: the file says something
// was journaled, so a start/cash may have been sent.
type CorruptError struct {
	Path    string
	ModTime time.Time // when the file was last written: the latest a start/cash can have been sent
	Err     error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("journal: %s is corrupt: %v", e.Path, e.Err)
}
func (e *CorruptError) Unwrap() error { return e.Err }

func activeRel(id string) string   { return journalDir + "/" + id + ".json" }
func finishedRel(id string) string { return finishedDir + "/" + id + ".json" }

// Get returns the record of transaction id, errNoRecord, a *CorruptError, or an I/O error.
// It reads through the write-ahead log: a record committed but not yet in its file (the disk
// refused it) is the record, never "no record" — that would send a second start/cash.
func (j *Journal) Get(id string) (*Record, error) {
	path := activeRel(id)
	b, modTime, err := j.read(path)
	if errors.Is(err, os.ErrNotExist) {
		path = finishedRel(id)
		b, modTime, err = j.read(path)
	}
	if errors.Is(err, os.ErrNotExist) {
		return j.paid(id)
	}
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	path = filepath.Join(j.log.Root(), filepath.FromSlash(path))
	corrupt := func(err error) error { return &CorruptError{Path: path, ModTime: modTime, Err: err} }
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, corrupt(err)
	}
	if r.Phase == phaseUnknown {
		r.Phase = PhaseInDoubt
	}
	switch {
	case r.TransactionID != id:
		return nil, corrupt(fmt.Errorf("it names transaction %q", r.TransactionID))
	case r.Phase == PhaseCaptured && len(r.Answer) == 0 && !r.Pruned:
		return nil, corrupt(errors.New("captured, but without secupay's answer"))
	}
	switch r.Phase {
	case PhaseIntent, PhaseInDoubt, PhaseCaptured, PhaseRefused, PhaseNotCaptured:
	default:
		return nil, corrupt(fmt.Errorf("unknown phase %q", r.Phase))
	}
	return &r, nil
}

// read returns the record file rel (the log's form) as committed, and when it was written: the
// change the log holds for it if the files have not taken it yet (written now, as far as
// anyone can tell), else the file.
func (j *Journal) read(rel string) ([]byte, time.Time, error) {
	if data, removed, ok := j.log.Committed(rel); ok {
		if removed {
			return nil, time.Time{}, os.ErrNotExist
		}
		return data, time.Now(), nil
	}
	f, err := os.Open(filepath.Join(j.log.Root(), filepath.FromSlash(rel)))
	if err != nil {
		return nil, time.Time{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, time.Time{}, err
	}
	b, err := io.ReadAll(f)
	return b, fi.ModTime(), err
}

// PutFlushed writes r durably: one flush of the log; it returns only once r survives power loss.
func (j *Journal) PutFlushed(r *Record) error { return j.commit(true, j.ops(r)...) }

// PutUnflushed writes r without a flush of its own: it survives a crash of the daemon, and power loss once anything
// later is flushed. For changes whose loss on a power cut is harmless: the record before
// them (an intent, at worst) makes the capture in doubt, and a read-back settles it again.
func (j *Journal) PutUnflushed(r *Record) error { return j.commit(false, j.ops(r)...) }

// ops are the log's changes that write r, in the directory its state belongs in.
func (j *Journal) ops(r *Record) []wal.Op {
	now := j.clock.Wall().UTC()
	if r.Created.IsZero() {
		r.Created = now
	}
	if r.Clock != j.clock.Epoch() {
		r.SentAt = 0 // read on a lost clock: unknown from now on
	}
	r.Updated, r.UpdatedAt, r.Clock = now, j.clock.Now(), j.clock.Epoch()
	return j.placeOps(r)
}

// move writes r, unchanged, in the directory its state belongs in. The file keeps the time
// of r's last change, which pruning goes by.
func (j *Journal) move(r *Record) error {
	if err := j.commit(false, j.placeOps(r)...); err != nil {
		return err
	}
	rel := activeRel(r.TransactionID)
	if !r.unfinished() {
		rel = finishedRel(r.TransactionID)
	}
	os.Chtimes(filepath.Join(j.log.Root(), filepath.FromSlash(rel)), r.Updated, r.Updated)
	return nil
}

func (j *Journal) placeOps(r *Record) []wal.Op {
	b, err := json.Marshal(r)
	if err != nil {
		panic("journal: a record always marshals: " + err.Error())
	}
	write, remove := activeRel(r.TransactionID), finishedRel(r.TransactionID)
	if !r.unfinished() {
		write, remove = remove, write
	}
	return []wal.Op{{Path: write, Data: b}, {Path: remove, Remove: true}}
}

// commit commits ops through the log, naming the journal in its errors. The steady clock's
// mark goes with them: a few bytes in the same frame, so that the next life's clock loses
// at most the time since the journal last changed.
func (j *Journal) commit(sync bool, ops ...wal.Op) error {
	ops = append(ops, wal.Op{Path: clockRel, Data: j.clock.Mark()})
	if err := j.log.Commit(sync, ops...); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// Remove deletes the record of transaction id.
func (j *Journal) Remove(ids ...string) error {
	ops := make([]wal.Op, 0, 2*len(ids))
	for _, id := range ids {
		ops = append(ops, wal.Op{Path: activeRel(id), Remove: true}, wal.Op{Path: finishedRel(id), Remove: true})
	}
	return j.commit(false, ops...)
}

// PruneFinished prunes the finished records whose last change is at least keep ago on the
// steady clock: a refused or not-captured record is removed, a captured one leaves its line
// in the paid index (paid.go) in the same change, so that its id is never sent to secupay
// again. It streams the directory's names and times, reads only the records whose file time
// says they may be old enough, and commits in batches: bounded memory however long the till
// has run. It returns how many records it pruned.
//
// The file time only chooses what to read; the steady clock decides. A wall clock stepped
// forward makes every record a candidate, and the steady clock keeps the young ones (their
// file time is set back to their steady age, so the next prune passes them by); a wall
// clock stepped back makes records look younger, which only keeps them longer. A record of
// an ecrd that kept no steady time is judged by its file time.
//
// claim, if set, claims a transaction for the prune (false: a request is on it, and the
// record is left for the next prune); its release is called once the prune's change is
// committed, so that no capture can write the record between the prune's read and its removal.
func (j *Journal) PruneFinished(keep time.Duration, claim func(id string) (release func(), ok bool)) (int, error) {
	dir := filepath.Join(j.log.Root(), finishedDir)
	now, wall := j.clock.Now(), j.clock.Wall()
	// A batch holds what the paid index keeps of its captured records and the removals:
	// never secupay's answers, which may be megabytes each.
	var lines []paidLine
	var removals []wal.Op
	var held []func()
	releaseAll := func() {
		for _, r := range held {
			r()
		}
		held = held[:0]
	}
	defer releaseAll()
	pruned := 0
	flush := func() error {
		defer releaseAll()
		if len(removals) == 0 {
			return nil
		}
		paid, err := j.paidOps(lines)
		if err != nil {
			return err
		}
		if err := j.commit(false, append(paid, removals...)...); err != nil {
			return err
		}
		pruned += len(removals)
		lines, removals = lines[:0], removals[:0]
		return nil
	}
	err := dirscan.Each(dir, func(name string, mod time.Time) error {
		if atomicfile.IsTemp(name) {
			os.Remove(filepath.Join(dir, name)) // a write that never completed
			return nil
		}
		id, ok := strings.CutSuffix(name, ".json")
		if !ok || wall.Sub(mod) < keep {
			return nil
		}
		release := func() {}
		if claim != nil {
			var ok bool
			if release, ok = claim(id); !ok {
				return nil // a request is on it: the next prune
			}
		}
		line, prune := j.pruneCandidate(id, now, keep, func(age time.Duration) {
			// Young on the steady clock: the wall clock was stepped forward. Date the file
			// by its steady age, so that later prunes do not read it again.
			t := wall.Add(-age)
			os.Chtimes(filepath.Join(dir, name), t, t)
		})
		if !prune {
			release()
			return nil
		}
		held = append(held, release)
		if line != nil {
			lines = append(lines, *line)
		}
		removals = append(removals, wal.Op{Path: finishedRel(id), Remove: true})
		if len(removals) < pruneBatch {
			return nil
		}
		return flush()
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return pruned, fmt.Errorf("journal: prune: %w", err)
	}
	return pruned, nil
}

// pruneCandidate reads the finished record of id and says whether the prune takes it, and,
// for a captured one, the line the paid index keeps of it. young is called with the age of a
// record the steady clock finds too young although its file looked old enough.
func (j *Journal) pruneCandidate(id string, now steady.Instant, keep time.Duration, young func(time.Duration)) (*paidLine, bool) {
	r, err := j.Get(id)
	if err != nil || r.unfinished() || r.Pruned {
		return nil, false // unreadable: kept for a technician; unfinished: not this prune's
	}
	if !r.UpdatedAt.IsZero() && r.Clock == j.clock.Epoch() {
		if age := now.Sub(r.UpdatedAt); age < keep {
			young(age)
			return nil, false
		}
	}
	if r.Phase != PhaseCaptured {
		return nil, true
	}
	l := paidLine{ID: r.TransactionID, TransID: clip(r.TransID, paidFieldMax), Captured: r.Updated}
	if tx, err := answerOf(r); err == nil {
		l.PaymentMethod = clip(tx.PaymentMethod, paidFieldMax)
	}
	return &l, true
}

// pruneBatch is how many records one of a prune's commits removes: the buckets it rewrites
// stay a few megabytes even with millions of captures in the paid index.
const pruneBatch = 256

// All returns every record that was unfinished when last written (for resuming after a
// restart; finished ones are not read). Files that cannot be read are returned as errors
// alongside the records that could be (a *CorruptError names its file).
func (j *Journal) All() ([]*Record, []error) {
	ents, err := os.ReadDir(j.dir)
	if err != nil {
		return nil, []error{fmt.Errorf("journal: %w", err)}
	}
	var recs []*Record
	var errs []error
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	// Records committed but not yet in their files are unfinished work too.
	for _, rel := range j.log.PendingUnder(journalDir + "/") {
		if name := strings.TrimPrefix(rel, journalDir+"/"); !strings.Contains(name, "/") && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	for _, name := range names {
		if filepath.Ext(name) != ".json" || atomicfile.IsTemp(name) {
			continue
		}
		r, err := j.Get(name[:len(name)-len(".json")])
		if errors.Is(err, errNoRecord) {
			continue // moved to finished, or removed, in a change the files have not taken
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		recs = append(recs, r)
	}
	return recs, errs
}
