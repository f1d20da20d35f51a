// Package capture finishes a cash payment: it asks secupay to capture a Smart Transaction
// exactly once, records every step in a durable journal, renders the receipt secupay sends
// back and puts it in the spool before anyone is told "captured".
//
// The rules it keeps (docs/durability.md):
//   - the intent is journaled (fsync) before start/cash is sent, the whole answer right after;
//   - a start/cash whose outcome is in doubt is settled only by reading the transaction back
//     (settle.go), and no other start/cash is sent for it until it is settled;
//   - the receipt job is durable in the spool before Capture returns success;
//   - the cash drawer opens at most once per capture.
//
// It must never talk to a printer (the spool's worker does) nor know HTTP (the api package does).
package capture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ecrd-pos/ecrd/internal/steady"
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
	ErrInvalidID  = errors.New("invalid transaction id")
	ErrInProgress = errors.New("a capture of this transaction is in progress")
	// ErrOutcomeUnknown is the class of every *InDoubtError.
	ErrOutcomeUnknown = errors.New("the capture is in doubt")
	// ErrUnreachable: the call could not be made (no connection, no token): nothing was
	// sent, nothing captured, and asking again is safe.
	ErrUnreachable = errors.New("the call to secupay could not be made; nothing was captured")
	ErrNotCaptured = errors.New("transaction was not captured by this till")
	// ErrReceiptPruned: this till captured the transaction, but its record was pruned
	// (Config.KeepFinished): the journal keeps that it was paid, not its receipt.
	ErrReceiptPruned = errors.New("captured by this till, but its receipt was pruned from the journal")
	// ErrStorage: the state directory failed. Alone it means no start/cash was sent for
	// this request; with ErrCapturedNotRecorded, secupay did capture.
	ErrStorage = errors.New("state directory")
	// ErrCapturedNotRecorded: secupay captured, but the journal could not record its
	// answer. The payment must not be taken again; the receipt prints once the disk takes it.
	ErrCapturedNotRecorded = errors.New("captured at secupay, but not recorded")
)

// InDoubtError is a capture whose start/cash may have reached secupay while nothing yet says
// what secupay did with it. ecrd settles it by reading the transaction back — in the
// background, and whenever the POS asks again — and sends no other start/cash until then.
// If the payment went through, its receipt prints without the POS asking.
type InDoubtError struct {
	TransactionID string
	Reason        string
	// NoAnswer: this request's own start/cash got no usable answer (rather than an
	// earlier one still being unsettled).
	NoAnswer bool
	// RetryAfter is when asking again can next settle it (0: whenever).
	RetryAfter time.Duration
	// Secupay is what secupay said, when an answer in the story carried its error body (a
	// 5xx with its fields, a refusal not yet proven): the cashier reads error_user, support
	// wants supportId. Nil when secupay said nothing of its own.
	Secupay *Refusal
	Err     error
}

func (e *InDoubtError) Error() string {
	msg := fmt.Sprintf("capture %s in doubt: %s", e.TransactionID, e.Reason)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg + "; ecrd reads the transaction back and prints the receipt if it was captured, and sends no other start/cash until it knows"
}

func (e *InDoubtError) Unwrap() error        { return e.Err }
func (e *InDoubtError) Is(target error) bool { return target == ErrOutcomeUnknown }

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

// JobResult is where a print job is, for the answer to a capture (api maps it to JSON).
type JobResult struct {
	ID    string
	State string // JobPrinted, JobQueued or JobFailed
	Error string // why it is queued or failed
}

// Result is the outcome of a capture or reprint (api maps it to JSON).
type Result struct {
	TransactionID string
	Status        string
	TransID       string
	PaymentMethod string
	Replayed      bool // answered from the journal
	Job           JobResult
	MerchantJob   *JobResult
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
	// InDoubtWait bounds how long secupay may still be working on a start/cash whose answer
	// was lost (default 2 min): while a read-back shows the transaction not captured within
	// this time of the call, it stays in doubt; after it, it is settled as not captured
	// and the POS may try again. See settle.
	InDoubtWait time.Duration
	// KeepFinished is how long, on the steady clock, the journal keeps a finished record
	// whole (captured and spooled, or refused) after its last change; 0 keeps records
	// forever. Unfinished ones are kept always. After it a captured record leaves its id,
	// trans_id and payment method, which are never pruned: a repeated
	// request is still answered from the journal and never reaches secupay, but its
	// receipt can no longer be reprinted.
	KeepFinished time.Duration
	Logger       *zap.Logger
}

// DefaultInDoubtWait is Config.InDoubtWait's default: four times secupay's default call
// timeout, so that a call secupay went on working on after ecrd gave up has long finished.
const DefaultInDoubtWait = 2 * time.Minute

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
	// firstDoubted is when this life first found a capture in doubt whose record has no
	// steady time of its start/cash (a corrupt record, or one an older ecrd wrote): its
	// in-doubt wait counts from then, which is never before the call.
	firstDoubted map[string]steady.Instant
}

// New returns a Service.
func New(cfg Config) *Service {
	if cfg.PrintWait <= 0 {
		cfg.PrintWait = 10 * time.Second
	}
	if cfg.InDoubtWait <= 0 {
		cfg.InDoubtWait = DefaultInDoubtWait
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return &Service{cfg: cfg, log: cfg.Logger, inflight: map[string]*claim{}, unfinished: map[string]bool{},
		firstDoubted: map[string]steady.Instant{}}
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

// tryClaim claims id for background work (the prune) if nothing is on it; a POS request that
// comes meanwhile waits for release, as it waits for the start-up resume.
func (s *Service) tryClaim(id string) (release func(), ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, busy := s.inflight[id]; busy {
		return nil, false
	}
	s.inflight[id] = &claim{done: make(chan struct{}), resume: true}
	return func() { s.end(id) }, true
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

// putFlushed journals rec durably and, once it is on disk, notes whether it is finished. A record
// the disk did not take changes nothing: the resolver works from what the journal holds.
func (s *Service) putFlushed(rec *Record) error {
	if err := s.cfg.Journal.PutFlushed(rec); err != nil {
		return err
	}
	s.track(rec.TransactionID, rec.unfinished())
	return nil
}

// putUnflushed journals rec without a flush of its own: for records whose loss on a power cut
// leaves an earlier, safe one (an intent makes the capture in doubt; a read-back settles it
// again). It saves a flush per refusal, doubt and settlement on a slow SD card.
func (s *Service) putUnflushed(rec *Record) error {
	if err := s.cfg.Journal.PutUnflushed(rec); err != nil {
		return err
	}
	s.track(rec.TransactionID, rec.unfinished())
	return nil
}

func (s *Service) track(id string, unfinished bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if unfinished {
		s.unfinished[id] = true
	} else {
		delete(s.unfinished, id)
		delete(s.firstDoubted, id)
	}
}

// claimFor checks id and claims it for a POS request (op names it in errors); the caller
// must s.end(id). It returns the logger that carries the transaction id.
func (s *Service) claimFor(ctx context.Context, op, id string) (*zap.Logger, error) {
	if !secupay.ValidID(id) {
		return nil, fmt.Errorf("%s %q: %w", op, id, ErrInvalidID)
	}
	if err := s.begin(ctx, id, false); err != nil {
		return nil, fmt.Errorf("%s %s: %w", op, id, err)
	}
	return s.log.With(zap.String("transaction_id", id)), nil
}

// Capture captures transaction id with secupay (once, ever) and prints its receipt.
func (s *Service) Capture(ctx context.Context, id string) (*Result, error) {
	log, err := s.claimFor(ctx, "capture", id)
	if err != nil {
		return nil, err
	}
	defer s.end(id)

	rec, err := s.load(id)
	if err != nil {
		// The journal cannot say whether an earlier request sent start/cash, and nothing is
		// sent without it. Only a working state directory can settle this, so it is not
		// handed to the resolver (which would fail on it every pass); the POS asks again.
		log.Error("journal unreadable; nothing sent", zap.Error(err))
		return nil, fmt.Errorf("%w: %w", ErrStorage, &InDoubtError{TransactionID: id,
			Reason: "its journal record cannot be read, so whether an earlier request captured it is unknown; nothing was sent now", Err: err})
	}

	if rec.Phase == PhaseCaptured {
		log.Info("capture replayed from journal")
	}
	return s.drive(ctx, log, rec, asked)
}

// readBackTimeout bounds the read-back right after a start/cash in doubt.
const readBackTimeout = 10 * time.Second

// secupaySaid returns secupay's own error fields in err, if it carries any.
func secupaySaid(err error) *Refusal {
	var se *secupay.Error
	if !errors.As(err, &se) || se.Err == "" && se.ErrorUser == "" && se.SupportID == "" {
		return nil
	}
	r := refusalOf(se)
	return &r
}

func refusalOf(se *secupay.Error) Refusal {
	return Refusal{HTTPStatus: se.HTTPStatus, Status: se.Status, Error: se.Err, ErrorUser: se.ErrorUser,
		ErrorDetails: se.ErrorDetails, Code: se.Code, SupportID: se.SupportID}
}

func (s *Service) refuse(log *zap.Logger, rec *Record, r Refusal) error {
	rec.Phase = PhaseRefused
	rec.Refusal = &r
	rec.Doubt = ""
	if err := s.putUnflushed(rec); err != nil {
		log.Error("journal write failed", zap.Error(err))
	}
	e := &RefusedError{TransactionID: rec.TransactionID, Refusal: r}
	log.Warn("capture refused", zap.Int("http_status", r.HTTPStatus), zap.String("error", r.Error),
		zap.String("error_details", r.ErrorDetails), zap.String("support_id", r.SupportID), zap.String("status", r.Status))
	return e
}

// recordCaptured journals secupay's answer together with the receipt jobs rendered from it —
// one record, one flush. Nothing else happens before both are on disk.
func (s *Service) recordCaptured(log *zap.Logger, rec *Record, tx *secupay.Transaction) error {
	rec.Phase = PhaseCaptured
	rec.Answer = append(json.RawMessage(nil), tx.Raw...)
	rec.TransID, rec.PaymentMethod = tx.TransID, tx.PaymentMethod
	// The drawer opens for a capture this till sent, not for one ecrd store recover left in
	// doubt: its customer is long gone (recovered.go).
	drawer := rec.Attempts > 0 && !rec.recovered()
	rec.Refusal, rec.Doubt = nil, ""
	if err := s.commitReceipts(log, rec, tx, drawer); err != nil {
		// The payment is captured at secupay but this till cannot remember it. The intent
		// on disk makes the resolver (and a repeated request) read the transaction back, so
		// nothing is captured twice; the receipt prints once the disk takes it.
		log.Error("captured, but the answer could not be journaled", zap.String("trans_id", tx.TransID), zap.Error(err))
		return fmt.Errorf("capture %s: %w (trans_id %s): %w: %w", rec.TransactionID, ErrCapturedNotRecorded, tx.TransID, ErrStorage, err)
	}
	log.Info("captured", zap.String("trans_id", tx.TransID), zap.String("payment_method", tx.PaymentMethod))
	return nil
}

// load returns the journal's record of id, a new one if there is none, or a storage error:
// then nobody can say whether a start/cash was sent, and nothing is.
func (s *Service) load(id string) (*Record, error) {
	rec, err := s.cfg.Journal.Get(id)
	if errors.Is(err, errNoRecord) {
		rec = &Record{TransactionID: id}
		if at, ok := s.cfg.Journal.unnamedLoss(); ok && s.unnamedLossApplies(at) {
			// ecrd store recover may have lost this id's record: a start/cash of an earlier
			// life may have reached secupay. It is read back first, as a capture in doubt,
			// whose wait counts from the recovery (recovered.go).
			rec.Phase, rec.Doubted, rec.Doubt = PhaseInDoubt, true, doubtUnnamed
			rec.SentAt, rec.Clock = at, s.cfg.Journal.Clock().Epoch()
		}
		return rec, nil
	}
	return rec, err
}

// unnamedLossApplies says whether a recovery's unnamed loss at at (zero: on a lost clock)
// still makes unknown ids read back first: for as long as the journal keeps a finished
// record, the window in which a POS asking again is answered from the journal at all.
func (s *Service) unnamedLossApplies(at steady.Instant) bool {
	return at == 0 || s.cfg.KeepFinished <= 0 || s.cfg.Journal.Clock().Now().Sub(at) < s.cfg.KeepFinished
}
