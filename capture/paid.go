package capture

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"time"
	"unicode/utf8"

	"github.com/ecrd-pos/ecrd/internal/wal"
	"github.com/ecrd-pos/ecrd/secupay"
)

// The paid index: what the journal keeps of a captured transaction once its record is pruned.
//
// A paid capture is never forgotten (docs/durability.md): if it were, the POS asking again
// would send a second start/cash, and secupay's answer to that ("already completed", a 400)
// would tell the POS "refused" for a transaction the customer paid. Pruning drops the heavy
// parts — secupay's whole answer, from which receipts are rendered — and keeps the id, its
// trans_id and payment method here, a line of about 120 bytes, for as long as the state
// directory lives. A repeat of the id is answered from it (Record.Pruned) and never reaches
// secupay.
//
// The lines live in paidBuckets files chosen by a hash of the id, so that a look-up reads one
// small file however many captures the till has made (a million captures: about 30 KB), and
// a prune rewrites only the buckets its batch touches, through the write-ahead log together
// with the removal of the records they replace: a cut between the two cannot happen.
const (
	paidDir     = "journal/paid"
	paidBuckets = 4096
)

// paidLine is one line of a bucket: JSON, so that no id or trans_id can break the format.
type paidLine struct {
	ID            string    `json:"id"`
	TransID       string    `json:"trans_id,omitempty"`
	PaymentMethod string    `json:"payment_method,omitempty"`
	Captured      time.Time `json:"captured"` // wall time of the record's last change, for people
}

func paidRel(id string) string {
	h := fnv.New32a()
	h.Write([]byte(id))
	return fmt.Sprintf("%s/%03x.jsonl", paidDir, h.Sum32()%paidBuckets)
}

// paid returns the pruned record of a captured transaction, or errNoRecord. A bucket with a
// line that does not parse (a damaged disk) may have held id: then it returns a record that
// is Unsure, and the capture reads the transaction back before it sends anything.
func (j *Journal) paid(id string) (*Record, error) {
	b, _, err := j.read(paidRel(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, errNoRecord
	}
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	damaged := false
	for line := range bytes.Lines(b) {
		var l paidLine
		if err := json.Unmarshal(line, &l); err != nil || !secupay.ValidID(l.ID) {
			damaged = true
			continue
		}
		if l.ID == id {
			return &Record{TransactionID: id, Phase: PhaseCaptured, TransID: l.TransID, PaymentMethod: l.PaymentMethod,
				Created: l.Captured, Updated: l.Captured, Spooled: true, Pruned: true}, nil
		}
	}
	if damaged || len(b) > 0 && b[len(b)-1] != '\n' {
		return &Record{TransactionID: id, Unsure: true}, nil
	}
	return nil, errNoRecord
}

// paidFieldMax bounds what a paid line keeps of secupay's trans_id and payment method
// (a number and a word, on the wire): a line stays small whatever secupay sent.
const paidFieldMax = 128

// clip returns s cut to at most n bytes, at a character boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// paidOps returns the log's changes that add lines to the buckets they belong in.
func (j *Journal) paidOps(lines []paidLine) ([]wal.Op, error) {
	byBucket := map[string][]byte{}
	var order []string
	for _, l := range lines {
		rel := paidRel(l.ID)
		if _, ok := byBucket[rel]; !ok {
			cur, _, err := j.read(rel)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, err
			}
			byBucket[rel] = cur
			order = append(order, rel)
		}
		b, err := json.Marshal(l)
		if err != nil {
			return nil, err
		}
		byBucket[rel] = append(append(byBucket[rel], b...), '\n')
	}
	ops := make([]wal.Op, 0, len(order))
	for _, rel := range order {
		ops = append(ops, wal.Op{Path: rel, Data: byBucket[rel]})
	}
	return ops, nil
}
