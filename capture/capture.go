// Package capture finishes a cash payment: it asks secupay to capture a Smart Transaction
// exactly once, records every step in a durable journal, renders the receipt secupay sends
// back and puts it in the spool before anyone is told "captured".
//
// The rules it keeps (DESIGN.md, "Durability rules"):
//   - the intent is journaled (fsync) before start/cash is sent, the whole answer right after;
//   - a capture whose answer was lost is resolved by reading the transaction (GET), never by a
//     blind second start/cash;
//   - the receipt job is durable in the spool before Capture returns success.
//
// It must never talk to a printer (the spool's worker does) nor know HTTP (the api package does).
package capture

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ecrd-pos/ecrd/internal/crashpoint"
	"github.com/ecrd-pos/ecrd/receipt"
	"github.com/ecrd-pos/ecrd/secupay"
	"github.com/ecrd-pos/ecrd/spool"
)

// Secupay is what capture needs of the secupay client.
type Secupay interface {
	CaptureCash(ctx context.Context, id string) (*secupay.Transaction, error)
	Transaction(ctx context.Context, id string) (*secupay.Transaction, error)
}

// Errors a caller decides on (the API maps them to HTTP statuses).
var (
	ErrInvalidID      = errors.New("invalid transaction id")
	ErrInProgress     = errors.New("a capture of this transaction is in progress")
	ErrOutcomeUnknown = errors.New("secupay gave no usable answer; the outcome will be read from secupay when asked again")
	ErrUnreachable    = errors.New("secupay could not be reached; nothing was captured")
	ErrNotCaptured    = errors.New("transaction was not captured by this till")
	ErrStorage        = errors.New("state directory")
)

// RefusedError is a capture secupay refused: nothing was captured.
type RefusedError struct {
	TransactionID string
	Refusal       Refusal
}

func (e *RefusedError) Error() string {
	r := e.Refusal
	msg := fmt.Sprintf("capture %s refused by secupay", e.TransactionID)
	if r.HTTPStatus != 0 && r.HTTPStatus != 200 {
		msg += fmt.Sprintf(": %d", r.HTTPStatus)
	}
	if r.Error != "" {
		msg += " " + r.Error
	} else if r.Status != "" {
		msg += fmt.Sprintf(" status %q", r.Status)
	}
	if r.ErrorDetails != "" {
		msg += ": " + r.ErrorDetails
	}
	if r.SupportID != "" {
		msg += " (support id " + r.SupportID + ")"
	}
	return msg
}

// Job states in answers.
const (
	JobPrinted = "printed"
	JobQueued  = "queued"
	JobFailed  = "failed"
)

// JobResult is a print job as the POS sees it.
type JobResult struct {
	ID    string `json:"id,omitempty"`
	State string `json:"state"`
	Error string `json:"error,omitempty"` // why it is queued or failed
}

// Result is the answer to a capture or reprint.
type Result struct {
	TransactionID string     `json:"transaction_id"`
	Status        string     `json:"status"`
	TransID       string     `json:"trans_id,omitempty"`
	PaymentMethod string     `json:"payment_method,omitempty"`
	Replayed      bool       `json:"replayed,omitempty"`
	Job           JobResult  `json:"job"`
	MerchantJob   *JobResult `json:"merchant_job,omitempty"`
}

// Config wires a Service.
type Config struct {
	Journal *Journal
	Secupay Secupay
	Spool   *spool.Spool
	Render  receipt.Options
	// DrawerPin is the cash drawer pin (0 or 1) kicked with the receipt of a real cash
	// capture; nil disables the kick. Never on reprints, never from receipt content.
	DrawerPin *int
	// PrintWait is how long a capture waits for its receipt to print before it answers
	// "queued" (default 10 s). A printer known not to be ready answers at once.
	PrintWait time.Duration
	// KeepFinished is how long the journal keeps a finished record (captured and spooled, or
	// refused) after its last change; 0 keeps records forever. Unfinished ones are kept
	// always. Within this time a repeated request is answered from the journal; after it,
	// secupay itself refuses a second start/cash of a captured transaction.
	KeepFinished time.Duration
	Logger       *zap.Logger
}

// Service captures and prints. It is safe for concurrent use; captures of one
// transaction are serialised (a second concurrent one gets ErrInProgress).
type Service struct {
	cfg Config
	log *zap.Logger

	mu       sync.Mutex
	inflight map[string]*claim
	// unfinished holds the transactions whose capture outcome is unknown or whose receipt
	// is not in the spool yet; the resolver works through them until they are settled.
	unfinished map[string]bool
}

// New returns a Service.
func New(cfg Config) *Service {
	if cfg.PrintWait <= 0 {
		cfg.PrintWait = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return &Service{cfg: cfg, log: cfg.Logger, inflight: map[string]*claim{}, unfinished: map[string]bool{}}
}

// begin claims transaction id for one operation. A POS request that finds another POS
// request on the id fails (ErrInProgress: the POS sent it twice at once); one that finds the
// start-up resume on it waits for the resume, which only reads and spools.
func (s *Service) begin(ctx context.Context, id string, resume bool) error {
	for {
		s.mu.Lock()
		cur, busy := s.inflight[id]
		if !busy {
			s.inflight[id] = &claim{done: make(chan struct{}), resume: resume}
			s.mu.Unlock()
			return nil
		}
		s.mu.Unlock()
		if resume || !cur.resume {
			return ErrInProgress
		}
		select {
		case <-cur.done:
		case <-ctx.Done():
			return ErrInProgress
		}
	}
}

func (s *Service) end(id string) {
	s.mu.Lock()
	if c := s.inflight[id]; c != nil {
		close(c.done)
	}
	delete(s.inflight, id)
	s.mu.Unlock()
}

// claim is an operation on one transaction.
type claim struct {
	done   chan struct{}
	resume bool
}

// put journals rec and notes whether it is finished. Tracking follows the record in memory
// even when the write fails, so the resolver retries what the disk could not keep.
func (s *Service) put(rec *Record) error {
	err := s.cfg.Journal.Put(rec)
	s.track(rec.TransactionID, rec.unfinished())
	return err
}

func (s *Service) track(id string, unfinished bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if unfinished {
		s.unfinished[id] = true
	} else {
		delete(s.unfinished, id)
	}
}

// capturable reports whether a transaction in this status may be sent start/cash: it is
// not captured, not being captured, and not finished otherwise.
func capturable(status string) bool {
	switch status {
	case "created", "processing", "approved":
		return true
	}
	return false
}

// Capture captures transaction id with secupay (once, ever) and prints its receipt.
func (s *Service) Capture(ctx context.Context, id string) (*Result, error) {
	if !secupay.ValidID(id) {
		return nil, fmt.Errorf("capture %q: %w", id, ErrInvalidID)
	}
	if err := s.begin(ctx, id, false); err != nil {
		return nil, fmt.Errorf("capture %s: %w", id, err)
	}
	defer s.end(id)
	log := s.log.With(zap.String("transaction_id", id))

	rec, err := s.cfg.Journal.Get(id)
	switch {
	case errors.Is(err, errNoRecord):
		rec = &Record{TransactionID: id}
	case err != nil:
		log.Error("journal unreadable", zap.Error(err))
		return nil, fmt.Errorf("capture %s: %w: %w", id, ErrStorage, err)
	}

	switch rec.Phase {
	case PhaseCaptured:
		log.Info("capture replayed from journal")
		return s.finish(ctx, log, rec, true)
	case PhaseIntent, PhaseUnknown:
		// An earlier attempt may have reached secupay: read before anything else.
		tx, err := s.cfg.Secupay.Transaction(ctx, id)
		if err != nil {
			log.Warn("earlier capture still unresolved", zap.Error(err))
			return nil, fmt.Errorf("capture %s: %w: %w", id, ErrOutcomeUnknown, err)
		}
		log.Info("earlier capture resolved by reading the transaction", zap.String("status", tx.Status))
		switch {
		case tx.Status == "ok":
			if err := s.recordCaptured(log, rec, tx); err != nil {
				return nil, err
			}
			return s.finish(ctx, log, rec, false)
		case capturable(tx.Status):
			// Not captured: a new start/cash is safe.
		case tx.Status == "pending":
			return nil, fmt.Errorf("capture %s: secupay reports %q: %w", id, tx.Status, ErrOutcomeUnknown)
		default:
			return nil, s.refuse(log, rec, Refusal{HTTPStatus: 200, Status: tx.Status})
		}
	}

	rec.Phase = PhaseIntent
	rec.Attempts++
	rec.Refusal = nil
	if err := s.put(rec); err != nil {
		// Without the intent on disk a crash could not be resolved safely: do not call secupay.
		log.Error("journal write failed; capture not attempted", zap.Error(err))
		return nil, fmt.Errorf("capture %s: %w: %w", id, ErrStorage, err)
	}
	crashpoint.Hit("before-start")
	log.Info("capture started", zap.Int("attempt", rec.Attempts))
	tx, err := s.cfg.Secupay.CaptureCash(ctx, id)
	crashpoint.Hit("after-answer")
	if err == nil {
		if err := s.recordCaptured(log, rec, tx); err != nil {
			return nil, err
		}
		crashpoint.Hit("after-journal")
		return s.finish(ctx, log, rec, false)
	}

	var se *secupay.Error
	if errors.As(err, &se) && se.HTTPStatus < 500 && se.Status != "pending" {
		return nil, s.refuse(log, rec, refusalOf(se))
	}
	if errors.Is(err, secupay.ErrNotSent) {
		// Nothing reached secupay: not captured, and a new attempt is safe.
		rec.Phase = PhaseRefused
		rec.Refusal = &Refusal{Error: "unreachable", ErrorDetails: err.Error()}
		if perr := s.put(rec); perr != nil {
			log.Error("journal write failed", zap.Error(perr))
		}
		log.Warn("secupay not reachable; nothing captured", zap.Error(err))
		return nil, fmt.Errorf("capture %s: %w: %w", id, ErrUnreachable, err)
	}
	// No usable answer: the capture may or may not have happened at secupay.
	rec.Phase = PhaseUnknown
	if perr := s.put(rec); perr != nil {
		log.Error("journal write failed", zap.Error(perr)) // the intent record already says "unknown outcome"
	}
	log.Warn("capture outcome unknown, reading the transaction", zap.Error(err))
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	tx, gerr := s.cfg.Secupay.Transaction(rctx, id)
	cancel()
	switch {
	case gerr == nil && tx.Status == "ok":
		if err := s.recordCaptured(log, rec, tx); err != nil {
			return nil, err
		}
		return s.finish(ctx, log, rec, false)
	case gerr == nil && capturable(tx.Status) && se != nil:
		// secupay answered with an error and the transaction is untouched: a refusal.
		return nil, s.refuse(log, rec, refusalOf(se))
	}
	return nil, fmt.Errorf("capture %s: %w: %w", id, ErrOutcomeUnknown, err)
}

func refusalOf(se *secupay.Error) Refusal {
	return Refusal{HTTPStatus: se.HTTPStatus, Status: se.Status, Error: se.Err, ErrorUser: se.ErrorUser,
		ErrorDetails: se.ErrorDetails, Code: se.Code, SupportID: se.SupportID}
}

func (s *Service) refuse(log *zap.Logger, rec *Record, r Refusal) error {
	rec.Phase = PhaseRefused
	rec.Refusal = &r
	if err := s.put(rec); err != nil {
		log.Error("journal write failed", zap.Error(err))
	}
	e := &RefusedError{TransactionID: rec.TransactionID, Refusal: r}
	log.Warn("capture refused", zap.Int("http_status", r.HTTPStatus), zap.String("error", r.Error),
		zap.String("error_details", r.ErrorDetails), zap.String("support_id", r.SupportID), zap.String("status", r.Status))
	return e
}

// recordCaptured journals secupay's answer. Nothing else happens before it is on disk.
func (s *Service) recordCaptured(log *zap.Logger, rec *Record, tx *secupay.Transaction) error {
	rec.Phase = PhaseCaptured
	rec.Answer = append(json.RawMessage(nil), tx.Raw...)
	rec.TransID = tx.TransID
	rec.Refusal = nil
	if err := s.put(rec); err != nil {
		// The payment is captured at secupay but this till cannot remember it. The intent
		// record on disk makes a later request read the transaction, so nothing is captured
		// twice; the receipt prints then.
		log.Error("captured, but the answer could not be journaled", zap.Error(err))
		return fmt.Errorf("capture %s: captured at secupay but %w: %w", rec.TransactionID, ErrStorage, err)
	}
	log.Info("captured", zap.String("trans_id", tx.TransID), zap.String("payment_method", tx.PaymentMethod))
	return nil
}

// answer is the part of a stored secupay answer that printing needs.
func answerOf(rec *Record) (*secupay.Transaction, error) {
	var tx secupay.Transaction
	if err := json.Unmarshal(rec.Answer, &tx); err != nil {
		return nil, fmt.Errorf("stored answer of %s: %w", rec.TransactionID, err)
	}
	return &tx, nil
}

// finish makes sure the receipt jobs are spooled, waits briefly for the receipt to print
// and builds the answer.
func (s *Service) finish(ctx context.Context, log *zap.Logger, rec *Record, replayed bool) (*Result, error) {
	tx, err := answerOf(rec)
	if err != nil {
		return nil, fmt.Errorf("capture %s: %w: %w", rec.TransactionID, ErrStorage, err)
	}
	if !rec.Spooled {
		s.spoolReceipts(log, rec, tx)
		crashpoint.Hit("after-spool")
	}
	res := &Result{TransactionID: rec.TransactionID, Status: "ok", TransID: rec.TransID,
		PaymentMethod: tx.PaymentMethod, Replayed: replayed}
	wait := s.cfg.PrintWait
	if replayed {
		wait = 0 // a replay reports where the job is; it does not hold the POS
	}
	res.Job = s.jobResult(ctx, rec.TransactionID+".receipt", rec.JobError, wait)
	if tx.ReceiptMerchantPrint && len(tx.ReceiptMerchant) > 0 {
		mj := s.jobResult(ctx, rec.TransactionID+".merchant", "", 0)
		res.MerchantJob = &mj
	}
	log.Info("capture answered", zap.String("job_state", res.Job.State), zap.String("job_error", res.Job.Error),
		zap.Bool("replayed", replayed))
	return res, nil
}

// spoolReceipts renders the customer receipt (and the merchant copy when secupay asks for
// it) and spools them under ids derived from the transaction, so a repeat after a crash
// cannot add a second copy. Failures are recorded, not returned: the payment is captured
// whatever happens to the paper, and the POS is told why there is no receipt.
func (s *Service) spoolReceipts(log *zap.Logger, rec *Record, tx *secupay.Transaction) {
	id := rec.TransactionID
	var kick []byte
	if s.cfg.DrawerPin != nil && tx.PaymentMethod == "cash" {
		kick = receipt.DrawerKick(*s.cfg.DrawerPin)
	}
	type receiptJob struct {
		kind  string
		lines json.RawMessage
		pre   []byte // the drawer kick, sent before the receipt
	}
	jobs := []receiptJob{{"receipt", tx.Receipt, kick}}
	if tx.ReceiptMerchantPrint && len(tx.ReceiptMerchant) > 0 {
		jobs = append(jobs, receiptJob{"merchant", tx.ReceiptMerchant, nil})
	}
	rec.JobError = ""
	for _, j := range jobs {
		data, err := s.render(log, j.lines)
		if err != nil {
			// Lines that cannot be rendered now never will: record why and go on.
			log.Error("receipt cannot be rendered", zap.String("kind", j.kind), zap.Error(err))
			if j.kind == "receipt" {
				rec.JobError = err.Error()
			}
			continue
		}
		job := spool.Job{ID: id + "." + j.kind, TransactionID: id, Kind: j.kind, Data: append(j.pre, data...)}
		if _, err := s.cfg.Spool.Add(job); err != nil {
			// Storage trouble: leave Spooled false so that a replay or a restart tries again
			// (jobs already added are not added twice: their ids are fixed).
			log.Error("receipt not spooled", zap.String("kind", j.kind), zap.Error(err))
			if j.kind == "receipt" {
				rec.JobError = err.Error()
			}
			return
		}
	}
	rec.Spooled = true
	if err := s.put(rec); err != nil {
		// Jobs are in the spool under fixed ids; a replay re-adding them is harmless.
		log.Error("journal write failed after spooling", zap.Error(err))
	}
}

func (s *Service) render(log *zap.Logger, raw json.RawMessage) ([]byte, error) {
	lines, err := receipt.DecodeLines(raw)
	if err != nil {
		return nil, err
	}
	opt := s.cfg.Render
	opt.OnUnknown = func(i int, typ string) {
		log.Warn("unknown receipt line type printed as text", zap.Int("line", i), zap.String("type", typ))
	}
	return receipt.Render(lines, opt)
}

// jobResult reports job id, waiting up to wait for it to print.
func (s *Service) jobResult(ctx context.Context, id, jobErr string, wait time.Duration) JobResult {
	if jobErr != "" {
		if _, err := s.cfg.Spool.Job(id); err != nil {
			return JobResult{State: JobFailed, Error: jobErr}
		}
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	in, err := s.cfg.Spool.Settle(wctx, id)
	if err != nil {
		msg := "no print job"
		if jobErr != "" {
			msg = jobErr
		}
		return JobResult{ID: id, State: JobFailed, Error: msg}
	}
	if in.State == spool.StatePrinted {
		return JobResult{ID: id, State: JobPrinted}
	}
	reason := in.Reason
	if reason == "" {
		reason = "waiting for the printer"
	}
	return JobResult{ID: id, State: JobQueued, Error: reason}
}

// Reprint prints the receipt of a transaction this till captured once more.
func (s *Service) Reprint(ctx context.Context, id string) (*Result, error) {
	if !secupay.ValidID(id) {
		return nil, fmt.Errorf("reprint %q: %w", id, ErrInvalidID)
	}
	if err := s.begin(ctx, id, false); err != nil {
		return nil, fmt.Errorf("reprint %s: %w", id, err)
	}
	defer s.end(id)
	log := s.log.With(zap.String("transaction_id", id))
	rec, err := s.cfg.Journal.Get(id)
	if errors.Is(err, errNoRecord) || err == nil && rec.Phase != PhaseCaptured {
		return nil, fmt.Errorf("reprint %s: %w", id, ErrNotCaptured)
	}
	if err != nil {
		return nil, fmt.Errorf("reprint %s: %w: %w", id, ErrStorage, err)
	}
	tx, err := answerOf(rec)
	if err != nil {
		return nil, fmt.Errorf("reprint %s: %w: %w", id, ErrStorage, err)
	}
	data, err := s.render(log, tx.Receipt)
	if err != nil {
		return nil, fmt.Errorf("reprint %s: %w", id, err)
	}
	rec.Reprints++
	if err := s.put(rec); err != nil {
		return nil, fmt.Errorf("reprint %s: %w: %w", id, ErrStorage, err)
	}
	jobID := id + ".reprint-" + strconv.Itoa(rec.Reprints)
	if _, err := s.cfg.Spool.Add(spool.Job{ID: jobID, TransactionID: id, Kind: "reprint", Data: data}); err != nil {
		return nil, fmt.Errorf("reprint %s: %w: %w", id, ErrStorage, err)
	}
	log.Info("reprint spooled", zap.String("job", jobID))
	return &Result{TransactionID: id, Status: "ok", TransID: rec.TransID, PaymentMethod: tx.PaymentMethod,
		Job: s.jobResult(ctx, jobID, "", s.cfg.PrintWait)}, nil
}

// PrintLines prints receipt lines the POS sends itself (no secupay involved).
func (s *Service) PrintLines(ctx context.Context, lines []receipt.Line) (JobResult, error) {
	opt := s.cfg.Render
	data, err := receipt.Render(lines, opt)
	if err != nil {
		return JobResult{}, fmt.Errorf("print lines: %w", err)
	}
	var rnd [4]byte
	rand.Read(rnd[:])
	id := fmt.Sprintf("pos-%d-%s", time.Now().UnixNano(), hex.EncodeToString(rnd[:]))
	if _, err := s.cfg.Spool.Add(spool.Job{ID: id, Kind: "lines", Data: data}); err != nil {
		return JobResult{}, fmt.Errorf("print lines: %w: %w", ErrStorage, err)
	}
	return s.jobResult(ctx, id, "", s.cfg.PrintWait), nil
}

// Resume finishes what a previous life of the daemon left: captured transactions whose
// receipts were not spooled yet are spooled, and captures whose outcome was lost are
// resolved by reading the transaction. It never sends start/cash. Call it once at start.
func (s *Service) Resume(ctx context.Context) {
	recs, errs := s.cfg.Journal.All()
	for _, err := range errs {
		s.log.Error("journal record unreadable", zap.Error(err))
	}
	pruned := 0
	for _, rec := range recs {
		switch {
		case rec.unfinished():
			s.track(rec.TransactionID, true)
		case s.cfg.KeepFinished > 0 && time.Since(rec.Updated) > s.cfg.KeepFinished:
			if err := s.cfg.Journal.Remove(rec.TransactionID); err != nil {
				s.log.Warn("journal: prune", zap.String("transaction_id", rec.TransactionID), zap.Error(err))
				continue
			}
			pruned++
		}
	}
	if pruned > 0 {
		s.log.Info("journal: finished records pruned", zap.Int("records", pruned), zap.Duration("older_than", s.cfg.KeepFinished))
	}
	s.Resolve(ctx)
}

// Unfinished returns how many transactions wait for their outcome or their receipt.
func (s *Service) Unfinished() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.unfinished)
}

// Resolve works once through the unfinished transactions (see Resume).
func (s *Service) Resolve(ctx context.Context) {
	s.mu.Lock()
	ids := make([]string, 0, len(s.unfinished))
	for id := range s.unfinished {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	for _, id := range ids {
		if ctx.Err() != nil {
			return
		}
		s.resumeOne(ctx, id)
	}
}

// RunResolver calls Resolve every interval until ctx ends, so that a capture answered
// "timeout" to the POS, or a receipt the disk could not take, is settled without waiting
// for the POS to ask again or for a restart.
func (s *Service) RunResolver(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Resolve(ctx)
		}
	}
}

func (s *Service) resumeOne(ctx context.Context, id string) {
	if s.begin(ctx, id, true) != nil {
		return // a POS request is on it
	}
	defer s.end(id)
	log := s.log.With(zap.String("transaction_id", id))
	rec, err := s.cfg.Journal.Get(id)
	if err != nil {
		log.Error("resume: journal", zap.Error(err))
		return
	}
	if rec.Phase == PhaseIntent || rec.Phase == PhaseUnknown {
		tx, err := s.cfg.Secupay.Transaction(ctx, id)
		if err != nil {
			log.Warn("resume: capture outcome still unknown", zap.Error(err))
			return
		}
		if tx.Status != "ok" {
			if tx.Status != "pending" {
				// Not captured and not about to be: nothing to finish unless the POS asks again.
				s.track(id, false)
			}
			log.Info("resume: transaction not captured; the POS may try again", zap.String("status", tx.Status))
			return
		}
		if err := s.recordCaptured(log, rec, tx); err != nil {
			return
		}
	}
	if rec.Phase != PhaseCaptured {
		s.track(id, rec.unfinished())
		return
	}
	if tx, err := answerOf(rec); err != nil {
		log.Error("resume: stored answer unreadable", zap.Error(err))
		s.track(id, false) // retrying cannot mend it; the record stays for a technician
	} else if !rec.Spooled {
		s.spoolReceipts(log, rec, tx)
		log.Info("resume: receipt spooled", zap.Bool("spooled", rec.Spooled))
	} else {
		s.track(id, false)
	}
}
