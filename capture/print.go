package capture

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/ecrd-pos/ecrd/internal/crashpoint"
	"github.com/ecrd-pos/ecrd/receipt"
	"github.com/ecrd-pos/ecrd/secupay"
	"github.com/ecrd-pos/ecrd/spool"
)

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
	if rec.Pruned {
		return s.finishPruned(ctx, log, rec), nil
	}
	tx, err := answerOf(rec)
	if err != nil {
		return nil, fmt.Errorf("capture %s: %w: %w", rec.TransactionID, ErrStorage, err)
	}
	if !rec.Spooled {
		// A record journaled captured before its receipts were (by an older ecrd).
		if err := s.commitReceipts(log, rec, tx, false); err != nil {
			log.Error("receipt not spooled; will retry", zap.Error(err))
			rec.JobError = err.Error()
		}
	}
	res := &Result{TransactionID: rec.TransactionID, Status: "ok", TransID: rec.TransID,
		PaymentMethod: tx.PaymentMethod, Replayed: replayed}
	wait := s.cfg.PrintWait
	if replayed {
		wait = 0 // a replay reports where the job is; it does not hold the POS
	}
	res.Job = s.jobResult(ctx, rec.TransactionID+"."+kindReceipt, rec.JobError, wait)
	if len(receiptKinds(tx)) > 1 {
		mj := s.jobResult(ctx, rec.TransactionID+"."+kindMerchant, "", 0)
		res.MerchantJob = &mj
	}
	fields := []zap.Field{zap.String("job_state", res.Job.State), zap.Bool("replayed", replayed)}
	if res.Job.Error != "" {
		fields = append(fields, zap.String("job_error", res.Job.Error))
	}
	log.Info("capture answered", fields...)
	return res, nil
}

// finishPruned answers a repeat of a capture whose record was pruned: captured, from the
// journal's pruned record, without a word to secupay. Its receipt printed long ago — the spool never
// prunes a job before it printed — unless the spool still holds it.
func (s *Service) finishPruned(ctx context.Context, log *zap.Logger, rec *Record) *Result {
	res := &Result{TransactionID: rec.TransactionID, Status: "ok", TransID: rec.TransID,
		PaymentMethod: rec.PaymentMethod, Replayed: true}
	jobID := rec.TransactionID + "." + kindReceipt
	if _, err := s.cfg.Spool.Job(jobID); err == nil {
		res.Job = s.jobResult(ctx, jobID, "", 0)
	} else {
		res.Job = JobResult{ID: jobID, State: JobPrinted}
	}
	log.Info("capture answered from the journal's pruned record", zap.String("trans_id", rec.TransID))
	return res
}

// commitReceipts renders the customer receipt (and the merchant copy when secupay asks for
// it) and commits them with rec in one flushed transaction of the store: the journal's answer
// and the jobs made from it become durable together. Job ids derive from the transaction,
// so committing again after a crash cannot add a second copy. A receipt that cannot be
// rendered is recorded (JobError), not returned: the payment is captured whatever happens to
// the paper, and the POS is told why there is no receipt. An error means nothing was
// committed: rec stays unfinished on disk, and the resolver tries again.
//
// drawer says whether the receipt may carry the drawer pulse: only when this life journals
// the answer. A record an earlier life (an older ecrd, or the import of its files) journaled
// captured without its receipts is rendered without one: nobody can tell whether that life
// opened the drawer (docs/durability.md, "The drawer rule").
func (s *Service) commitReceipts(log *zap.Logger, rec *Record, tx *secupay.Transaction, drawer bool) error {
	var jobs []spool.Job
	rec.JobError = ""
	for _, kind := range receiptKinds(tx) {
		job, err := s.receiptJob(log, rec.TransactionID, kind, tx, drawer)
		if err != nil {
			// Lines that cannot be rendered now never will: record why and go on.
			log.Error("receipt cannot be rendered", zap.String("kind", kind), zap.Error(err))
			if kind == kindReceipt {
				rec.JobError = err.Error()
			}
			continue
		}
		jobs = append(jobs, job)
	}
	staged, err := s.cfg.Spool.Stage(jobs...)
	if err != nil {
		return err
	}
	rec.Spooled = true
	if err := s.cfg.Journal.commit(true, rec, staged); err != nil {
		rec.Spooled = false
		s.track(rec.TransactionID, true)
		return err
	}
	s.track(rec.TransactionID, false)
	crashpoint.Hit("after-journal")
	staged.Enqueue()
	crashpoint.Hit("after-spool")
	return nil
}

// Receipt job kinds; a capture's job id is its transaction id, a dot and the kind.
const (
	kindReceipt  = "receipt"
	kindMerchant = "merchant"
)

func receiptKinds(tx *secupay.Transaction) []string {
	if tx.ReceiptMerchantPrint && len(tx.ReceiptMerchant) > 0 {
		return []string{kindReceipt, kindMerchant}
	}
	return []string{kindReceipt}
}

// receiptJob renders one of a capture's receipt jobs. The customer receipt of a cash
// capture carries the drawer pulse — as the spool's at-most-once trailer, which only the
// daemon's life that queued the receipt may send, so that a receipt printed twice after a
// crash never opens the drawer twice (spool.Job.Kick; docs/durability.md, "The drawer rule").
func (s *Service) receiptJob(log *zap.Logger, id, kind string, tx *secupay.Transaction, drawer bool) (spool.Job, error) {
	lines := tx.Receipt
	if kind == kindMerchant {
		lines = tx.ReceiptMerchant
	}
	data, err := s.render(log, lines)
	if err != nil {
		return spool.Job{}, err
	}
	job := spool.Job{ID: id + "." + kind, TransactionID: id, Kind: kind, Data: data}
	if drawer && kind == kindReceipt && s.cfg.DrawerPin != nil && tx.PaymentMethod == "cash" {
		job.Kick = receipt.DrawerKick(*s.cfg.DrawerPin)
	}
	return job, nil
}

func (s *Service) render(log *zap.Logger, raw json.RawMessage) ([]byte, error) {
	return s.renderWith(log, raw, s.cfg.Render)
}

func (s *Service) renderWith(log *zap.Logger, raw json.RawMessage, opt receipt.Options) ([]byte, error) {
	lines, err := receipt.DecodeLinesSkipping(raw, func(i int, err error) {
		// Print the rest: a captured payment's receipt is never lost to one broken line.
		log.Error("receipt line left out: it is not a line", zap.Int("line", i), zap.Error(err))
	})
	if err != nil {
		return nil, err
	}
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
	in, err := s.cfg.Spool.WaitPrinted(wctx, id)
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

// Reprint prints the receipt of a transaction this till captured once more. A reprint never
// opens the cash drawer.
func (s *Service) Reprint(ctx context.Context, id string) (*Result, error) {
	log, err := s.claimFor(ctx, "reprint", id)
	if err != nil {
		return nil, err
	}
	defer s.end(id)
	rec, err := s.cfg.Journal.Get(id)
	if errors.Is(err, errNoRecord) || err == nil && rec.Phase != PhaseCaptured {
		return nil, fmt.Errorf("reprint %s: %w", id, ErrNotCaptured)
	}
	if err != nil {
		return nil, fmt.Errorf("reprint %s: %w: %w", id, ErrStorage, err)
	}
	if rec.Pruned {
		return nil, fmt.Errorf("reprint %s: %w", id, ErrReceiptPruned)
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
	jobID := id + ".reprint-" + strconv.Itoa(rec.Reprints)
	staged, err := s.cfg.Spool.Stage(spool.Job{ID: jobID, TransactionID: id, Kind: "reprint", Data: data})
	if err == nil {
		// The count and the job in one flush: a crash cannot leave a count without its job.
		err = s.cfg.Journal.commit(true, rec, staged)
	}
	if err != nil {
		return nil, fmt.Errorf("reprint %s: %w: %w", id, ErrStorage, err)
	}
	staged.Enqueue()
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

// JobBytes returns the ESC/POS bytes of job id as they print: a queued job's from the spool,
// a capture's receipt (or its merchant copy, or a reprint) rendered again from the journal's
// stored answer once printed. The drawer pulse is not part of them.
func (s *Service) JobBytes(id string) ([]byte, error) {
	data, err := s.cfg.Spool.JobData(id)
	if err == nil || !errors.Is(err, spool.ErrNotFound) {
		return data, err
	}
	// A copy (ReprintJob) that printed: its bytes were its original's.
	txID, kind, _ := strings.Cut(copySuffix.ReplaceAllString(id, ""), ".")
	if !secupay.ValidID(txID) || (kind != kindReceipt && kind != kindMerchant && !strings.HasPrefix(kind, "reprint-")) {
		return nil, err // a POS's own receipt, printed: its bytes are gone
	}
	rec, jerr := s.cfg.Journal.Get(txID)
	if jerr != nil || rec.Phase != PhaseCaptured || rec.Pruned {
		return nil, err
	}
	tx, aerr := answerOf(rec)
	if aerr != nil {
		return nil, aerr
	}
	lines := tx.Receipt
	if kind == kindMerchant {
		lines = tx.ReceiptMerchant
	}
	// A picture of what printed: the metric counted its characters when it was rendered.
	opt := s.cfg.Render
	opt.Counters = nil
	return s.renderWith(s.log.With(zap.String("transaction_id", txID)), lines, opt)
}
