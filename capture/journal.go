package capture

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/ecrd-pos/ecrd/internal/atomicfile"
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
	// Sent is when the latest start/cash was sent (journaled just before it left). A
	// capture in doubt may still be worked on by secupay for a while after it; see settle.
	Sent time.Time `json:"sent,omitzero"`
	// Doubted is set once any start/cash of this transaction was in doubt: from then on no
	// refusal is believed without reading the transaction back, since the earlier call may
	// have been the one that captured.
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

// Journal stores one file per transaction in a directory. A file per transaction keeps
// every write small and atomic (write, fsync, rename, fsync dir) and lets a technician read
// a capture's history with cat; captures of different transactions never contend.
type Journal struct {
	dir string
}

// OpenJournal opens (creating if needed) the journal directory.
func OpenJournal(dir string) (*Journal, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	for _, e := range ents {
		if atomicfile.IsTemp(e.Name()) {
			os.Remove(filepath.Join(dir, e.Name())) // a write that never completed
		}
	}
	return &Journal{dir: dir}, nil
}

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

func (j *Journal) path(id string) string { return filepath.Join(j.dir, id+".json") }

// Get returns the record of transaction id, errNoRecord, a *CorruptError, or an I/O error.
func (j *Journal) Get(id string) (*Record, error) {
	path := j.path(id)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, errNoRecord
	}
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	corrupt := func(err error) error { return &CorruptError{Path: path, ModTime: fi.ModTime(), Err: err} }
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
	case r.Phase == PhaseCaptured && len(r.Answer) == 0:
		return nil, corrupt(errors.New("captured, but without secupay's answer"))
	}
	switch r.Phase {
	case PhaseIntent, PhaseInDoubt, PhaseCaptured, PhaseRefused, PhaseNotCaptured:
	default:
		return nil, corrupt(fmt.Errorf("unknown phase %q", r.Phase))
	}
	return &r, nil
}

// Put writes r durably; it returns only once r survives power loss.
func (j *Journal) Put(r *Record) error {
	now := time.Now().UTC()
	if r.Created.IsZero() {
		r.Created = now
	}
	r.Updated = now
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if err := atomicfile.WriteFile(j.path(r.TransactionID), b, 0o640); err != nil {
		return fmt.Errorf("journal: record %s %s: %w", r.TransactionID, r.Phase, err)
	}
	return nil
}

// Remove deletes the record of transaction id.
func (j *Journal) Remove(id string) error {
	if err := os.Remove(j.path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("journal: %w", err)
	}
	return atomicfile.SyncDir(j.dir)
}

// All returns every record (for resuming after a restart). Files that cannot be read are
// returned as errors alongside the records that could be (a *CorruptError names its file).
func (j *Journal) All() ([]*Record, []error) {
	ents, err := os.ReadDir(j.dir)
	if err != nil {
		return nil, []error{fmt.Errorf("journal: %w", err)}
	}
	var recs []*Record
	var errs []error
	for _, e := range ents {
		name := e.Name()
		if filepath.Ext(name) != ".json" || atomicfile.IsTemp(name) {
			continue
		}
		r, err := j.Get(name[:len(name)-len(".json")])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		recs = append(recs, r)
	}
	return recs, errs
}
