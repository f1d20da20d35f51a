package main

import (
	"path/filepath"

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
