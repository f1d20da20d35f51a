package spool

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ecrd-pos/ecrd/internal/atomicfile"
	"github.com/ecrd-pos/ecrd/internal/dirscan"
	"github.com/ecrd-pos/ecrd/internal/wal"
	"go.uber.org/zap"
)

// Prune forgets the oldest printed jobs beyond KeepDone, and notes when today's receipts
// were printed (for the status line). It streams the done directory's entries (never the
// records) twice, in memory bounded by KeepDone, and runs in the background: a
// start never waits for, nor holds, the till's history.
func (s *Spool) Prune() error {
	// Today's receipts are counted from the scan up to a second before it began, and from
	// what this life printed since then: every job printed before that second has its done
	// file in place when the scan passes, and a file's time (the kernel's coarse clock) is
	// within milliseconds of the job's printed time, so no receipt is counted twice or lost.
	now := time.Now()
	midnight, joint := startOfDay(now).UnixNano(), now.Add(-time.Second).UnixNano()
	// Both lists hold KeepDone times at most however many records the directory has: a
	// till's history must not lift the heap (and with it the collector's metadata, which the
	// runtime keeps) each time it is pruned.
	keep := newest{k: s.opt.KeepDone}  // the newest modification times, for the cut-off
	today := newest{k: s.opt.KeepDone} // today's, for PrintedSince
	total := 0
	err := s.eachDone(func(id string, mod time.Time) error {
		m := mod.UnixNano()
		total++
		keep.offer(m)
		if m >= midnight && m < joint {
			today.offer(m)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	s.mu.Lock()
	for _, t := range s.today {
		if t >= joint && t >= midnight {
			today.h = append(today.h, t)
		}
	}
	if len(today.h) > s.opt.KeepDone { // the spool remembers no more jobs than that
		slices.Sort(today.h)
		today.h = slices.Clone(today.h[len(today.h)-s.opt.KeepDone:])
	}
	s.today = today.h
	s.mu.Unlock()

	if total <= s.opt.KeepDone {
		return nil
	}
	cut := keep.min() // remove what is older than the KeepDone newest
	b := s.wal.Batch()
	err = s.eachDone(func(id string, mod time.Time) error {
		if mod.UnixNano() >= cut {
			return nil
		}
		return b.Add(wal.Op{Path: s.doneRel + id + ".json", Remove: true})
	})
	if err == nil {
		err = b.Flush()
	}
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	return nil
}

// eachDone calls f for every done record's job id and modification time, in memory that
// does not grow with the directory (dirscan). An error from f is returned as it is.
func (s *Spool) eachDone(f func(id string, mod time.Time) error) error {
	return dirscan.Each(s.doneDir, func(name string, mod time.Time) error {
		if id, ok := strings.CutSuffix(name, ".json"); ok && !atomicfile.IsTemp(name) {
			return f(id, mod)
		}
		return nil
	})
}

func (s *Spool) prune() {
	if !s.pruning.TryLock() {
		return // one prune at a time is plenty
	}
	defer s.pruning.Unlock()
	if err := s.Prune(); err != nil {
		s.log.Warn("spool: prune", zap.Error(err))
	}
	if s.opt.Pruned != nil {
		s.opt.Pruned()
	}
}

func startOfDay(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, t.Location())
}
