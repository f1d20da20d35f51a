package capture

import (
	"encoding/json"
	"errors"
	"fmt"
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
	// PhaseUnknown: start/cash was sent and no usable answer came back (timeout, cut
	// connection, 5xx). Only a GET of the transaction may resolve it.
	PhaseUnknown Phase = "unknown"
	// PhaseCaptured: secupay answered 200 and "ok" (or a GET showed it); Answer holds it.
	PhaseCaptured Phase = "captured"
	// PhaseRefused: secupay refused; nothing was captured. A new attempt may be made.
	PhaseRefused Phase = "refused"
)

// Record is one transaction's line in the journal.
type Record struct {
	TransactionID string          `json:"transaction_id"`
	Phase         Phase           `json:"phase"`
	Attempts      int             `json:"attempts"` // start/cash calls sent
	Created       time.Time       `json:"created"`
	Updated       time.Time       `json:"updated"`
	Answer        json.RawMessage `json:"answer,omitempty"` // secupay's whole answer, as received
	TransID       string          `json:"trans_id,omitempty"`
	Refusal       *Refusal        `json:"refusal,omitempty"`
	// Spooled is set once the receipt jobs are durable in the spool; until then a restart
	// (or a replayed request) renders and spools them again under the same job ids.
	Spooled  bool   `json:"spooled"`
	JobError string `json:"job_error,omitempty"` // why no receipt job could be made
	Reprints int    `json:"reprints"`
}

// unfinished reports whether the record still needs work: an outcome to learn from
// secupay, or a receipt to put in the spool.
func (r *Record) unfinished() bool {
	return r.Phase == PhaseIntent || r.Phase == PhaseUnknown || r.Phase == PhaseCaptured && !r.Spooled
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

func (j *Journal) path(id string) string { return filepath.Join(j.dir, id+".json") }

// Get returns the record of transaction id, or errNoRecord.
func (j *Journal) Get(id string) (*Record, error) {
	b, err := os.ReadFile(j.path(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, errNoRecord
	}
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("journal: %s is corrupt: %w", j.path(id), err)
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

// All returns every record (for resuming after a restart). Unreadable files are returned
// as errors alongside the records that could be read.
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
