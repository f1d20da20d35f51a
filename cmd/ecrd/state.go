package main

import (
	"context"
	"errors"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/ecrd-pos/ecrd/capture"
	"github.com/ecrd-pos/ecrd/internal/legacy"
	"github.com/ecrd-pos/ecrd/store"
)

// openState opens the state database (package store) — importing, on the first start after
// an upgrade, the files an older ecrd kept — and the journal in it.
func openState(dir string, log *zap.Logger) (*store.Store, *capture.Journal, error) {
	st, err := store.Open(dir)
	if err != nil {
		return nil, nil, err
	}
	// The daemon must not start without the old journal: an import that fails stops it, and
	// the next start tries again (nothing is written until the whole import commits).
	rep, err := legacy.Import(dir, st)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	logImport(log, rep)
	journal, err := capture.OpenJournal(st, nil)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return st, journal, nil
}

// logImport logs what the import of an older ecrd's state files did (nothing, on every start
// after the first): each damaged or skipped file, then the counts.
func logImport(log *zap.Logger, rep legacy.Report) {
	if rep.Empty() {
		return
	}
	for _, p := range rep.Problems {
		fields := []zap.Field{zap.String("file", filepath.Join(legacy.AsideDir, p.File)), zap.String("problem", p.What), zap.String("action", p.Action)}
		if p.Damaged {
			log.Warn("state import: a damaged file of the older ecrd", fields...)
		} else {
			log.Info("state import: a file of the older ecrd left out", fields...)
		}
	}
	if rep.Resumed && !rep.Imported {
		log.Info("state import: imported by an earlier start; the older ecrd's files are moved aside now",
			zap.Strings("moved", rep.Moved), zap.String("to", rep.Aside), zap.ByteString("summary", rep.Summary))
		return
	}
	log.Info("state import: the older ecrd's journal and spool are in the state database; its files are moved aside",
		zap.Int("captures", rep.Captures), zap.Int("unfinished", rep.Unfinished), zap.Int("in_doubt", rep.InDoubt),
		zap.Int("pruned", rep.Pruned), zap.Int("kept", rep.Kept), zap.Int("printed_jobs", rep.PrintedJobs),
		zap.Int("queued_jobs", rep.QueuedJobs), zap.Int("kept_jobs", rep.KeptJobs), zap.Strings("rerender", rep.Rerender),
		zap.Int("log_frames", rep.Frames), zap.Int("skipped_frames", rep.SkippedFrames), zap.Int("problems", len(rep.Problems)),
		zap.Strings("moved", rep.Moved), zap.String("to", rep.Aside))
}

// checkDelay is how long after the start the state database's integrity check begins.
const checkDelay = 5 * time.Second

// maintainState looks after the state database until ctx ends, beside the API and the
// resolver (which never wait for it). The whole database is checked once per start, once
// the start is done: it reads every page (seconds on a large journal and a slow card), and
// with one P it would hold the first requests back; a failure stops the daemon
// (store.OnCorrupt). The journal is pruned 30 s after the start, not while the till starts,
// then once a day for a till that runs for months; the pages a prune freed go back to the
// file system.
func (d *runningDaemon) maintainState(ctx context.Context, svc *capture.Service) {
	check := time.NewTimer(checkDelay)
	defer check.Stop()
	prune := time.NewTimer(30 * time.Second)
	defer prune.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-check.C:
			if err := d.store.Check(ctx); err != nil && !errors.Is(err, store.ErrCorrupt) && ctx.Err() == nil {
				d.log.Warn("state database: the integrity check could not run", zap.Error(err))
			}
		case <-prune.C:
			svc.Prune()
			if err := d.store.Shrink(); err != nil {
				d.log.Warn("state database: shrink", zap.Error(err))
			}
			returnMemory()
			prune.Reset(24 * time.Hour)
		}
	}
}
