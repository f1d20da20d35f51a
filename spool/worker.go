package spool

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ecrd-pos/ecrd/internal/crashpoint"
	"github.com/ecrd-pos/ecrd/printer"
	"github.com/ecrd-pos/ecrd/store"
	"go.uber.org/zap"
)

// PrinterStatus is the printer's state as the worker last saw it.
type PrinterStatus struct {
	URI     string
	Status  printer.Status
	Error   string
	Checked time.Time
	Queued  int
}

// Status asks the printer now (the printer serialises this with a job in progress) and
// returns its state together with the queue length.
func (s *Spool) Status(ctx context.Context) PrinterStatus {
	ctx, cancel := context.WithTimeout(ctx, s.opt.StatusTimeout)
	defer cancel()
	st, err := s.p.Status(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setStatusLocked(st, err)
	return s.printerStatusLocked()
}

func (s *Spool) printerStatusLocked() PrinterStatus {
	ps := PrinterStatus{URI: s.p.String(), Status: s.status, Checked: s.statAt, Queued: len(s.order)}
	if s.statErr != nil {
		ps.Error = s.statErr.Error()
	}
	return ps
}

func (s *Spool) setStatusLocked(st printer.Status, err error) {
	if err != nil {
		st = printer.Status{State: printer.StateOffline, Detail: err.Error()}
	}
	s.status, s.statErr, s.statAt = st, err, time.Now().UTC()
}

// notifyLocked wakes everyone in WaitPrinted.
func (s *Spool) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Run is the printer's one worker: it drains the queue until ctx ends. A job already being
// written when ctx ends is finished (within PrintTimeout) so that SIGTERM never leaves half
// a receipt on the paper.
func (s *Spool) Run(ctx context.Context) error {
	defer s.due.Store(0)
	// Not while the till starts.
	pruneAtStart := time.AfterFunc(pruneDelay, s.prune)
	defer pruneAtStart.Stop()
	backoff := s.opt.Poll
	// While idle the loop still comes round every Poll, so that Alive can see it turn.
	idle := time.NewTicker(s.opt.Poll)
	defer idle.Stop()
	for {
		id, ok := s.next()
		if !ok {
			s.expect(s.opt.Poll)
			select {
			case <-ctx.Done():
				return nil
			case <-s.wake:
			case <-idle.C:
			}
			continue
		}
		if ctx.Err() != nil {
			return nil
		}
		err := s.attempt(ctx, id)
		if err == nil {
			backoff = s.opt.Poll
			continue
		}
		wait := s.opt.Poll
		if errors.Is(err, errWriteFailed) {
			// Failed writes back off (a printer that takes bytes and errors could otherwise
			// be hammered with the same job); a printer that is merely not ready is polled.
			wait = backoff
			backoff = min(backoff*2, s.opt.RetryMax)
		}
		s.expect(wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// expect records that the worker will be back in its loop within d (plus a second of slack
// for a loaded machine).
func (s *Spool) expect(d time.Duration) {
	s.due.Store(int64(time.Since(s.epoch) + d + time.Second))
}

// Alive reports an error when the worker is not running or has not come round its loop
// when it promised to: waiting, polling a printer that is not ready and printing (within
// StatusTimeout and PrintTimeout) all keep it alive; a Print or Status call that ignores
// its deadline — a driver stuck in the kernel — does not.
func (s *Spool) Alive(now time.Time) error {
	due := s.due.Load()
	if due == 0 {
		return errors.New("spool: worker not running")
	}
	// now.Sub(s.epoch) uses the monotonic readings when now has one (time.Now's does).
	if late := now.Sub(s.epoch) - time.Duration(due); late > 0 {
		return fmt.Errorf("spool: worker stuck (%s overdue)", late.Round(time.Millisecond))
	}
	return nil
}

// LastStatus is the printer's state as the worker last saw it, without asking the printer
// (which may be busy with a job): for status pages and metrics.
func (s *Spool) LastStatus() PrinterStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.printerStatusLocked()
}

// PrintedSince counts the jobs printed at or after t that the spool still remembers
// (KeepDone of them at most), by the store's index.
func (s *Spool) PrintedSince(t time.Time) int {
	n, err := s.st.PrintedSince(t)
	if err != nil {
		s.log.Warn("spool: count printed jobs", zap.Error(err))
	}
	return n
}

func (s *Spool) next() (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.order) == 0 {
		return "", false
	}
	return s.order[0].id, true
}

var (
	errNotReady    = errors.New("printer not ready")
	errWriteFailed = errors.New("write failed")
)

// attempt asks the printer whether it is ready, and if so writes job id and marks it done.
func (s *Spool) attempt(ctx context.Context, id string) error {
	s.expect(s.opt.StatusTimeout)
	sctx, cancel := context.WithTimeout(ctx, s.opt.StatusTimeout)
	st, err := s.p.Status(sctx)
	cancel()
	s.mu.Lock()
	s.setStatusLocked(st, err)
	if err != nil || !st.Ready() {
		reason := string(s.status.State)
		if s.status.Detail != "" {
			reason += ": " + s.status.Detail
		}
		changed := s.holdLocked(reason)
		var txID string
		if in := s.queued[id]; in != nil {
			txID = in.TransactionID
		}
		s.mu.Unlock()
		if changed {
			fields := []zap.Field{zap.String("job", id), zap.String("reason", reason)}
			if txID != "" {
				fields = append(fields, zap.String("transaction_id", txID))
			}
			s.log.Warn("job held: printer not ready", fields...)
		}
		return errNotReady
	}
	s.releaseLocked()
	s.mu.Unlock()

	r, err := s.st.Job(id)
	var data []byte
	if err == nil {
		data, err = s.st.JobData(id)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		// Not a queued job any more (a technician's hand in the database): let the queue
		// move on.
		s.log.Error("spool: queued job vanished from the store", zap.String("job", id))
		s.mu.Lock()
		s.dropLocked(id)
		s.mu.Unlock()
		return nil
	case err != nil:
		// An I/O error reading the job is not the end of it: try again later.
		s.mu.Lock()
		s.holdLocked("job cannot be read: " + err.Error())
		s.mu.Unlock()
		s.log.Warn("spool: queued job cannot be read now; will retry", zap.String("job", id), zap.Error(err))
		return errWriteFailed
	}
	// The write finishes even when ctx ends (shutdown): half a receipt helps nobody.
	s.expect(s.opt.PrintTimeout)
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opt.PrintTimeout)
	crashpoint.Hit("before-print")
	if crashpoint.Armed("mid-print") {
		s.p.Print(pctx, data[:len(data)/2]) // the power fails halfway through the job
		crashpoint.Hit("mid-print")
	}
	err = s.p.Print(pctx, data)
	cancel()
	if err != nil {
		s.mu.Lock()
		s.queued[id].Attempts++
		s.holdLocked("print failed: " + err.Error())
		failed := *s.queued[id]
		s.mu.Unlock()
		if s.opt.Observe != nil {
			s.opt.Observe(failed, err)
		}
		s.log.Warn("job print failed, will retry", zap.String("job", id),
			zap.String("transaction_id", r.TransactionID), zap.Error(err))
		return errWriteFailed
	}
	crashpoint.Hit("after-print")
	// The drawer pulse after the job is sent even during shutdown, like the job itself.
	kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opt.StatusTimeout)
	defer cancel()
	err = s.markPrinted(kctx, r, len(data))
	if s.opt.Observe != nil {
		if in, jerr := s.Job(id); jerr == nil {
			s.opt.Observe(in, nil)
		}
	}
	return err
}

// kick sends job r's drawer pulse if this life owns it (Job.Kick): a job printed again after
// a crash belongs to a dead life and sends none. A failed pulse is not retried: an unknown
// pulse is one that may have opened the drawer.
func (s *Spool) kick(ctx context.Context, r *store.Job) {
	log := s.log.With(zap.String("job", r.ID), zap.String("transaction_id", r.TransactionID))
	switch r.KickLife {
	case s.life:
	case "":
		log.Info("drawer not opened: its pulse was handed over by a clean stop but could not be claimed by this run of the daemon")
		return
	default:
		log.Info("drawer not opened: its pulse belongs to the run of the daemon that queued the receipt, which ended without handing it over (a crash) and may have sent it")
		return
	}
	crashpoint.Hit("before-kick")
	if err := s.p.Print(ctx, r.Kick); err != nil {
		log.Error("drawer pulse failed; not repeated (open the drawer by hand)", zap.Error(err))
		return
	}
	log.Info("drawer opened")
}

// holdLocked records why the queue waits. Every queued job is held with the same reason
// (jobs behind the first cannot print either), so the POS hears "queued, paper out" for a
// new receipt without waiting for its turn. It reports whether anything changed.
func (s *Spool) holdLocked(reason string) bool {
	changed := false
	for _, in := range s.queued {
		if in.Reason != reason || !in.Held {
			in.Reason, in.Held = reason, true
			changed = true
		}
	}
	if changed {
		s.notifyLocked()
	}
	return changed
}

// releaseLocked clears the holds once the printer is ready again.
func (s *Spool) releaseLocked() {
	changed := false
	for _, in := range s.queued {
		if in.Held {
			in.Reason, in.Held = "", false
			changed = true
		}
	}
	if changed {
		s.notifyLocked()
	}
}

func (s *Spool) dropLocked(id string) {
	delete(s.queued, id)
	for i, r := range s.order {
		if r.id == id {
			s.order = append(s.order[:i], s.order[i+1:]...)
			break
		}
	}
	s.notifyLocked()
}

// pulseSent is the owner a job's pulse gets once it was sent while its printed mark failed:
// no life is called that, so no life sends it again.
const pulseSent = "sent"

// markPrinted marks the job printed (dropping its bytes, which are no longer needed) in a
// commit that is not flushed: losing it to a power cut prints the receipt once more — a
// duplicate, never a loss — and costs the POS no flush now. The drawer pulse needs none
// either (Job.Kick).
func (s *Spool) markPrinted(ctx context.Context, r *store.Job, bytes int) error {
	printed := time.Now().UTC()
	s.mu.Lock()
	in := s.queued[r.ID]
	s.mu.Unlock()
	attempts := 1
	if in != nil {
		attempts = in.Attempts + 1
	}
	err := s.st.Unflushed(func(tx *store.Tx) error { return tx.MarkPrinted(r.ID, printed, attempts) })
	s.mu.Lock()
	if err != nil {
		// The receipt is on paper but the spool could not record it (disk full, read-only).
		// Count it printed in memory so it does not print again and again now; its row
		// stays queued, so a restart prints it once more — a duplicate, never a loss.
		s.log.Error("spool: printed job could not be marked printed; it will print again after a restart",
			zap.String("job", r.ID), zap.Error(err))
		if in != nil && len(s.unmarked) < 1000 {
			done := *in
			done.State, done.Printed, done.Attempts, done.Reason, done.Held = StatePrinted, printed, attempts, "", false
			s.unmarked[r.ID] = done
		}
	}
	s.dropLocked(r.ID)
	s.sincePrune++
	if s.sincePrune >= max(1, s.opt.KeepDone/10) {
		s.sincePrune = 0
		go s.prune()
	}
	s.log.Info("job printed", zap.String("job", r.ID), zap.String("transaction_id", r.TransactionID),
		zap.Int("bytes", bytes), zap.Int("attempts", attempts))
	s.mu.Unlock()
	if len(r.Kick) > 0 {
		// Sent even when the mark failed: the row still names this life, so a later life
		// that prints the job again sends no pulse, and Close does not hand it over.
		s.kick(ctx, r)
		if err != nil {
			// And once the store takes writes again, the row says so itself.
			if err := s.st.Unflushed(func(tx *store.Tx) error { return tx.SetKickLife(r.ID, pulseSent) }); err != nil {
				s.log.Warn("spool: the sent pulse could not be noted on the job's row either", zap.String("job", r.ID), zap.Error(err))
			}
		}
	}
	return nil
}

// Prune forgets the oldest printed jobs beyond KeepDone, with one indexed delete, in the
// background: a start never waits for, nor holds, the till's history.
func (s *Spool) Prune() error {
	var n int64
	err := s.st.Unflushed(func(tx *store.Tx) error {
		var err error
		n, err = tx.ForgetPrinted(s.opt.KeepDone)
		return err
	})
	if err != nil {
		return fmt.Errorf("spool: prune: %w", err)
	}
	if n > 0 {
		s.log.Debug("spool: printed jobs forgotten", zap.Int64("jobs", n))
	}
	return nil
}

func (s *Spool) prune() {
	if !s.pruning.TryLock() {
		return // one prune at a time is plenty
	}
	defer s.pruning.Unlock()
	if err := s.Prune(); err != nil {
		s.log.Warn("spool", zap.Error(err))
	}
	if s.opt.Pruned != nil {
		s.opt.Pruned()
	}
}
