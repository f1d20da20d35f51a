package legacy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ecrd-pos/ecrd/store"
)

// The old files' rules, as the old code read them (commit 30fc41b). The importer must not
// import capture or the spool, so each rule it needs is written here with where it comes from.

// Phases (capture.Phase at 30fc41b; "unknown" is what journals before the in-doubt rule
// called in doubt, read as in_doubt by capture.Journal.Get).
const (
	phaseIntent      = "intent"
	phaseInDoubt     = "in_doubt"
	phaseCaptured    = "captured"
	phaseRefused     = "refused"
	phaseNotCaptured = "not_captured"
	phaseUnknown     = "unknown"
)

// unfinished is capture.Record.unfinished: an outcome to learn from secupay, or a receipt to
// put in the spool.
func unfinished(phase string, spooled bool) bool {
	return inDoubt(phase) || phase == phaseCaptured && !spooled
}

func inDoubt(phase string) bool { return phase == phaseIntent || phase == phaseInDoubt }

// validID is secupay.ValidID: "STX_" and 1 to 64 ASCII letters or digits.
func validID(id string) bool {
	const prefix = "STX_"
	if len(id) <= len(prefix) || len(id) > len(prefix)+64 || id[:len(prefix)] != prefix {
		return false
	}
	for _, c := range []byte(id[len(prefix):]) {
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// isTemp is atomicfile.IsTemp: a temporary file of a write that never completed (".NAME.tmp").
func isTemp(name string) bool {
	return len(name) > 4 && name[0] == '.' && filepath.Ext(name) == ".tmp"
}

// The receipt job kinds of a capture (capture's kindReceipt, kindMerchant): a capture's job
// id is its transaction id, a dot and the kind.
const (
	kindReceipt  = "receipt"
	kindMerchant = "merchant"
)

// record is a journal file: capture.Record's JSON at 30fc41b.
type record struct {
	TransactionID string          `json:"transaction_id"`
	Phase         string          `json:"phase"`
	Attempts      int             `json:"attempts"`
	Created       time.Time       `json:"created"`
	Updated       time.Time       `json:"updated"`
	Sent          time.Time       `json:"sent"`
	SentSteady    int64           `json:"sent_steady"`
	UpdatedSteady int64           `json:"updated_steady"`
	Clock         string          `json:"steady_clock"`
	Doubted       bool            `json:"doubted"`
	Doubt         string          `json:"doubt"`
	Answer        json.RawMessage `json:"answer"`
	TransID       string          `json:"trans_id"`
	Refusal       *refusal        `json:"refusal"`
	Spooled       bool            `json:"spooled"`
	JobError      string          `json:"job_error"`
	Reprints      int             `json:"reprints"`
	Pruned        bool            `json:"pruned"`
	PaymentMethod string          `json:"payment_method"`
}

// refusal is capture.Refusal (the store keeps it as this JSON).
type refusal struct {
	HTTPStatus   int    `json:"http_status"`
	Status       string `json:"status,omitempty"`
	Error        string `json:"error,omitempty"`
	ErrorUser    string `json:"error_user,omitempty"`
	ErrorDetails string `json:"error_details,omitempty"`
	Code         string `json:"code,omitempty"`
	SupportID    string `json:"support_id,omitempty"`
}

// parseRecord reads the journal file of transaction id as capture.Journal.Get did at 30fc41b:
// an error means the file is corrupt (capture.CorruptError).
func parseRecord(id string, b []byte) (*record, error) {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	if bytes.Equal(bytes.TrimSpace(r.Answer), []byte("null")) {
		r.Answer = nil // no answer (the old code never wrote one as null)
	}
	if r.Phase == phaseUnknown {
		r.Phase = phaseInDoubt
	}
	switch {
	case r.TransactionID != id:
		return nil, fmt.Errorf("it names transaction %q", r.TransactionID)
	case r.Phase == phaseCaptured && len(r.Answer) == 0 && !r.Pruned:
		return nil, errors.New("captured, but without secupay's answer")
	}
	switch r.Phase {
	case phaseIntent, phaseInDoubt, phaseCaptured, phaseRefused, phaseNotCaptured:
	default:
		return nil, fmt.Errorf("unknown phase %q", r.Phase)
	}
	return &r, nil
}

// rowOf is the capture row of an intact record (capture's rowOf, with unfinished by its rule).
func rowOf(r *record, mod time.Time) *store.Capture {
	c := &store.Capture{ID: r.TransactionID, Phase: r.Phase, Unfinished: unfinished(r.Phase, r.Spooled),
		Attempts: r.Attempts, Created: r.Created, Updated: r.Updated, Sent: r.Sent, SentSteady: r.SentSteady,
		UpdatedSteady: r.UpdatedSteady, SteadyClock: r.Clock, Doubted: r.Doubted, Doubt: r.Doubt,
		Answer: []byte(r.Answer), TransID: r.TransID, PaymentMethod: r.PaymentMethod, Spooled: r.Spooled,
		JobError: r.JobError, Reprints: r.Reprints, Pruned: r.Pruned}
	if r.Refusal != nil {
		c.Refusal, _ = json.Marshal(r.Refusal) // plain strings and an int: always marshals
	}
	// The store needs both wall times; a record of a very old ecrd may lack one.
	if c.Created.IsZero() {
		c.Created = c.Updated
	}
	if c.Created.IsZero() {
		c.Created = mod
	}
	if c.Updated.IsZero() {
		c.Updated = c.Created
	}
	return c
}

// damagedRow is what the old code made of a corrupt journal file (capture.Service.load at
// 30fc41b): in doubt, sent at the latest when the file was last written — something was
// journaled, so a start/cash may have been sent; only a read-back settles it.
func damagedRow(id, file string, mod time.Time, why error) *store.Capture {
	return &store.Capture{ID: id, Phase: phaseInDoubt, Unfinished: true, Doubted: true,
		Doubt:   fmt.Sprintf("imported from a damaged file: %s: %v", file, why),
		Created: mod, Updated: mod, Sent: mod}
}

// paidLine is a line of the paid index (capture.paidLine at 30fc41b): what was kept of a
// captured record once it was pruned.
type paidLine struct {
	ID            string    `json:"id"`
	TransID       string    `json:"trans_id"`
	PaymentMethod string    `json:"payment_method"`
	Captured      time.Time `json:"captured"`
}

// captures writes the journal's capture rows in one transaction.
type captures struct {
	st       *store.Store
	tx       *store.Tx
	rep      *Report
	seen     map[string]bool         // ids whose record was found (the first is the record)
	rerender map[string][]damagedJob // damaged receipt jobs, by transaction id
}

// writeCaptures writes the journal's records: journal/ first, then journal/finished/, then the
// paid index — the order capture.Journal.Get looked in at 30fc41b, so that the first found is
// the record (a damaged one included: Get did not look further either). rerender are the
// transactions whose queued receipt files were damaged.
func writeCaptures(t *tree, st *store.Store, tx *store.Tx, rerender map[string][]damagedJob, rep *Report) error {
	w := &captures{st: st, tx: tx, rep: rep, seen: map[string]bool{}, rerender: rerender}
	for _, dir := range []string{"journal", "journal/finished"} {
		names, err := t.list(dir)
		if err != nil {
			return err
		}
		for _, name := range names {
			if err := w.record(t, dir+"/"+name, name); err != nil {
				return err
			}
		}
	}
	names, err := t.list("journal/paid")
	if err != nil {
		return err
	}
	for _, name := range names {
		if err := w.bucket(t, "journal/paid/"+name, name); err != nil {
			return err
		}
	}
	// Damaged receipt files of transactions the journal cannot render them again for.
	ids := make([]string, 0, len(rerender))
	for id := range rerender {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		for _, dj := range rerender[id] {
			rep.problem(dj.file, true, dj.why, "left out: no captured record of "+id+" with secupay's answer was imported to render it again from")
		}
	}
	return nil
}

// record writes the row of the journal file named name (file: its path).
func (w *captures) record(t *tree, file, name string) error {
	id, ok := strings.CutSuffix(name, ".json")
	switch {
	case isTemp(name):
		w.rep.problem(file, false, "a temporary file of a write that never completed", "left out")
		return nil
	case !ok:
		w.rep.problem(file, false, "not a journal record", "left out")
		return nil
	case !validID(id):
		w.rep.problem(file, true, "not a transaction's record: its name is no secupay transaction id", "left out")
		return nil
	case w.seen[id]:
		return nil // journal/ holds its record (Get read that one)
	}
	b, mod, err := t.read(file)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	r, perr := parseRecord(id, b)
	if perr != nil {
		w.rep.problem(file, true, perr.Error(), "imported in doubt: the daemon reads the transaction back before anything is sent")
		return w.put(damagedRow(id, file, mod, perr))
	}
	return w.put(rowOf(r, mod))
}

// bucket writes the pruned records of the paid index's bucket named name.
func (w *captures) bucket(t *tree, file, name string) error {
	switch {
	case isTemp(name):
		w.rep.problem(file, false, "a temporary file of a write that never completed", "left out")
		return nil
	case filepath.Ext(name) != ".jsonl":
		w.rep.problem(file, false, "not a bucket of the paid index", "left out")
		return nil
	}
	b, mod, err := t.read(file)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	n := 0
	for line := range bytes.Lines(b) {
		n++
		var l paidLine
		if err := json.Unmarshal(line, &l); err != nil || !validID(l.ID) {
			if err == nil {
				err = fmt.Errorf("%q is no secupay transaction id", l.ID)
			}
			w.rep.problem(file, true, fmt.Sprintf("line %d: %v", n, err), "left out: the transaction it kept cannot be read")
			continue
		}
		if w.seen[l.ID] {
			continue // a record of the id was found first (capture.Journal.Get's order)
		}
		at := l.Captured
		if at.IsZero() {
			at = mod
		}
		// capture.Journal.paid at 30fc41b: a pruned record, captured and spooled.
		if err := w.put(&store.Capture{ID: l.ID, Phase: phaseCaptured, TransID: l.TransID, PaymentMethod: l.PaymentMethod,
			Created: at, Updated: at, Spooled: true, Pruned: true}); err != nil {
			return err
		}
	}
	return nil
}

// put writes c unless the store holds a record of its id already.
func (w *captures) put(c *store.Capture) error {
	w.seen[c.ID] = true
	if cur, err := w.st.Capture(c.ID); err == nil {
		// Imported before. The file's record replaces the row only when it is newer — an
		// older release run again after a rollback wrote it — and never takes a capture
		// back: a captured row stays captured, whatever a later record of an ecrd that did
		// not know of it says.
		if !c.Updated.After(cur.Updated) || cur.Phase == phaseCaptured && c.Phase != phaseCaptured {
			w.rep.Kept++
			return nil
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if djs := w.rerender[c.ID]; len(djs) > 0 && c.Phase == phaseCaptured && len(c.Answer) > 0 && !c.Pruned {
		// Its receipt job is lost with the file: unspooled, the daemon's resume renders
		// it again from secupay's answer (under the same job id), as capture's
		// remakeDamaged did at 30fc41b.
		c.Spooled, c.Unfinished = false, true
		w.rep.Rerender = append(w.rep.Rerender, c.ID)
		for _, dj := range djs {
			w.rep.problem(dj.file, true, dj.why, "left out; the receipt is rendered again from the journal's answer of "+c.ID)
		}
		delete(w.rerender, c.ID)
	}
	if err := w.tx.PutCapture(c); err != nil {
		return fmt.Errorf("capture %s: %w", c.ID, err)
	}
	w.rep.Captures++
	if c.Unfinished {
		w.rep.Unfinished++
	}
	if inDoubt(c.Phase) {
		w.rep.InDoubt++
	}
	if c.Pruned {
		w.rep.Pruned++
	}
	return nil
}

// jobFile is a spool job file: spool.record's JSON at 30fc41b.
type jobFile struct {
	ID            string    `json:"id"`
	TransactionID string    `json:"transaction_id"`
	Kind          string    `json:"kind"`
	Data          []byte    `json:"data"`
	Kick          []byte    `json:"kick"`
	Seq           uint64    `json:"seq"`
	Created       time.Time `json:"created"`
	Printed       time.Time `json:"printed"`
	KickLife      string    `json:"kick_life"`

	mod time.Time
}

// parseJob reads a job file as spool.readRecord did at 30fc41b: an error means it is damaged.
func parseJob(name string, b []byte, queued bool) (*jobFile, error) {
	var j jobFile
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, err
	}
	if j.ID == "" || j.ID+".json" != name {
		return nil, fmt.Errorf("job id %q does not match its file name", j.ID)
	}
	if queued && len(j.Data) == 0 {
		return nil, errors.New("no bytes to print")
	}
	return &j, nil
}

// damagedJob is a queued job's file that does not hold its job.
type damagedJob struct {
	file, id, why string
}

type spoolFiles struct {
	printed, queued []*jobFile
	// rerender: damaged receipt jobs, by transaction id, for writeCaptures.
	rerender map[string][]damagedJob
}

// readSpool reads spool/done and spool/queue.
func readSpool(t *tree, rep *Report) (*spoolFiles, error) {
	sf := &spoolFiles{rerender: map[string][]damagedJob{}}
	done, err := readDone(t, sf, rep)
	if err != nil {
		return nil, err
	}
	queued, damaged, err := readQueue(t, sf, done, rep)
	if err != nil {
		return nil, err
	}
	for _, dj := range damaged {
		switch {
		case queued[dj.id]:
			rep.problem(dj.file, false, dj.why+"; remade since", "left out")
			continue
		case done[dj.id]:
			rep.problem(dj.file, true, dj.why, "left out: the job printed (spool/done holds it)")
			continue
		}
		txID, kind, ok := strings.Cut(dj.id, ".")
		if ok && validID(txID) && (kind == kindReceipt || kind == kindMerchant) {
			sf.rerender[txID] = append(sf.rerender[txID], dj) // decided with the journal
			continue
		}
		rep.problem(dj.file, true, dj.why, "left out: not a capture's receipt, which could be rendered again")
	}
	// The old queue's order (spool.Open): by seq.
	bySeq := func(js []*jobFile) {
		sort.SliceStable(js, func(a, b int) bool {
			if js[a].Seq != js[b].Seq {
				return js[a].Seq < js[b].Seq
			}
			return js[a].ID < js[b].ID
		})
	}
	bySeq(sf.printed)
	bySeq(sf.queued)
	return sf, nil
}

// readDone reads spool/done: the printed jobs' records. It returns their ids.
func readDone(t *tree, sf *spoolFiles, rep *Report) (map[string]bool, error) {
	done := map[string]bool{}
	names, err := t.list("spool/done")
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		file := "spool/done/" + name
		switch {
		case isTemp(name):
			rep.problem(file, false, "a temporary file of a write that never completed", "left out")
			continue
		case strings.HasSuffix(name, ".json.bad"):
			rep.problem(file, true, "a damaged job record, set aside by the old spool", "left out")
			continue
		case !strings.HasSuffix(name, ".json"):
			rep.problem(file, false, "not a job file", "left out")
			continue
		}
		b, mod, err := t.read(file)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		j, perr := parseJob(name, b, false)
		if perr != nil {
			rep.problem(file, true, perr.Error(), "left out: the job printed; only its record is lost")
			continue
		}
		j.mod = mod
		done[j.ID] = true
		sf.printed = append(sf.printed, j)
	}
	return done, nil
}

// readQueue reads spool/queue: the queued jobs, less those done holds (printed). It returns
// the ids of the sound ones, and the damaged files to decide on.
func readQueue(t *tree, sf *spoolFiles, done map[string]bool, rep *Report) (map[string]bool, []damagedJob, error) {
	names, err := t.list("spool/queue")
	if err != nil {
		return nil, nil, err
	}
	queued := map[string]bool{}
	var damaged []damagedJob
	for _, name := range names {
		file := "spool/queue/" + name
		switch {
		case isTemp(name):
			rep.problem(file, false, "a temporary file of a write that never completed (its job was never acknowledged)", "left out")
			continue
		case strings.HasSuffix(name, ".json.bad"):
			// Set aside by an old life (spool.setAside); still owed unless it was remade
			// or printed since (spool.findDamaged at 30fc41b).
			damaged = append(damaged, damagedJob{file, strings.TrimSuffix(name, ".json.bad"), "a damaged job file, set aside by the old spool"})
			continue
		case !strings.HasSuffix(name, ".json"):
			rep.problem(file, false, "not a job file", "left out")
			continue
		}
		b, mod, err := t.read(file)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", file, err)
		}
		id := strings.TrimSuffix(name, ".json")
		j, perr := parseJob(name, b, true)
		if perr != nil {
			damaged = append(damaged, damagedJob{file, id, perr.Error()})
			continue
		}
		queued[id] = true
		if done[id] {
			// Printed, and the old code had not finished moving it (spool.Open at 30fc41b
			// finished the move instead of printing it again).
			rep.problem(file, false, "also in spool/done: it printed", "imported as printed")
			continue
		}
		j.mod = mod
		sf.queued = append(sf.queued, j)
	}
	return queued, damaged, nil
}

// writeJobs adds the printed jobs, then the queued ones in the old queue's order (the store
// gives each the next seq). A job the store holds already is left as it is.
func writeJobs(tx *store.Tx, sf *spoolFiles, rep *Report) error {
	created := func(j *jobFile) time.Time {
		if j.Created.IsZero() {
			return j.mod
		}
		return j.Created
	}
	for _, j := range sf.printed {
		// An old done record kept neither the bytes nor their length.
		at := j.Printed
		if at.IsZero() {
			at = j.mod
		}
		row := &store.Job{ID: j.ID, TransactionID: j.TransactionID, Kind: j.Kind, Created: created(j)}
		added, err := tx.AddPrinted(row, at)
		if err != nil {
			return fmt.Errorf("job %s: %w", j.ID, err)
		}
		if !added {
			rep.KeptJobs++
			continue
		}
		rep.PrintedJobs++
	}
	for _, j := range sf.queued {
		// kick_life as the file had it: "" (handed over by a clean stop) is claimed by the
		// next life; another life's name sends no pulse (spool.claimKicks).
		row := &store.Job{ID: j.ID, TransactionID: j.TransactionID, Kind: j.Kind, Data: j.Data, Kick: j.Kick,
			KickLife: j.KickLife, Created: created(j)}
		added, err := tx.AddJob(row)
		if err != nil {
			return fmt.Errorf("job %s: %w", j.ID, err)
		}
		if !added {
			rep.KeptJobs++
			continue
		}
		rep.QueuedJobs++
	}
	return nil
}
