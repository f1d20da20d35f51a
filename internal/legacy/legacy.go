// Package legacy imports the state directory of an ecrd before the SQLite store — the
// release with the write-ahead log and one file per record (commit 30fc41b and earlier) —
// into the store, once, at the first start after the upgrade.
//
// The old files: the journal (journal/ID.json while a capture is unfinished,
// journal/finished/ID.json after, and journal/paid/*.jsonl, the lines kept of captured
// records that were pruned), the spool (spool/queue/ID.json, spool/done/ID.json), the
// steady clock's mark (steady-clock.json), and the write-ahead log (wal/N.log), whose last
// committed changes may never have reached the files: the log is laid over the files as the
// old code replayed it at every start (files.go).
//
// Import writes every row, the steady clock's mark and a short summary (meta "legacy_import")
// in one flushed transaction: a crash before it leaves the old files as they were, and the
// next start imports them again; a crash after it finds the summary and only moves the old
// files aside (into pre-sqlite/), never importing twice. A row the store already holds is
// never overwritten. Nothing the old journal held is dropped: a damaged record is imported in
// doubt, so that the daemon reads the transaction back from secupay before anything is sent.
//
// It knows the old files' format, not the rules of capture or the spool, which it must not
// import: the few rules it needs to read the files as the old code did are written here, each
// with where it comes from.
package legacy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/ecrd-pos/ecrd/store"
)

// AsideDir is where Import moves the old files, in the state directory.
const AsideDir = "pre-sqlite"

// MetaKey is the store's meta key of the import's summary: once it is there, Import never
// imports again.
const MetaKey = "legacy_import"

// clockKey is the steady clock's mark in the store's meta table (capture.clockKey); the old
// steady-clock.json held the same bytes.
const clockKey = "steady_clock"

// oldPaths are the state directory's entries the old release kept, moved aside once imported.
// lock and oauth.json stay: the new release uses them as they are.
var oldPaths = []string{"journal", "spool", "wal", "steady-clock.json"}

// Report is what Import did. The zero Report: there was nothing to import.
type Report struct {
	// Imported: this call wrote rows. Resumed: an earlier call had imported (the summary was
	// in the store); this one imported only records newer than the rows (an older release
	// run again after a rollback), if any, and moved the old files aside.
	Imported, Resumed bool
	// Moved are the old paths moved into Aside (the directory, absolute) by this call.
	Moved []string
	Aside string
	// Summary is the store's summary of the import (meta "legacy_import").
	Summary json.RawMessage

	Logs, Frames, SkippedFrames int // the write-ahead log: files, frames replayed, bad runs skipped

	Captures   int // capture rows written
	Unfinished int // of them, unfinished: the daemon's resume works on these
	InDoubt    int // of them, intent or in doubt (damaged records included)
	Pruned     int // of them, from the paid index
	Kept       int // records the store held already: left as they were

	PrintedJobs, QueuedJobs int
	KeptJobs                int // jobs the store held already

	// Rerender are the captured transactions whose queued receipt file was damaged: imported
	// unspooled, so that the daemon renders the receipt again from secupay's answer.
	Rerender []string
	// Clock: the steady clock's mark was imported.
	Clock bool

	// Problems are every file (or part of the log) that was damaged or left out, and what
	// was done about it.
	Problems []Problem
}

// Problem is one damaged or skipped file.
type Problem struct {
	File    string // relative to the state directory
	Damaged bool   // damaged (a technician should know), rather than merely left out
	What    string
	Action  string
}

func (p Problem) String() string { return p.File + ": " + p.What + ": " + p.Action }

func (r *Report) problem(file string, damaged bool, what, action string) {
	r.Problems = append(r.Problems, Problem{File: file, Damaged: damaged, What: what, Action: action})
}

// Empty reports whether there was nothing to do.
func (r *Report) Empty() bool { return !r.Imported && !r.Resumed && len(r.Moved) == 0 }

// summary is the short JSON kept in meta "legacy_import".
type summary struct {
	From          string    `json:"from"`
	At            time.Time `json:"at"`
	Captures      int       `json:"captures"`
	Unfinished    int       `json:"unfinished"`
	InDoubt       int       `json:"in_doubt"`
	Pruned        int       `json:"pruned"`
	Kept          int       `json:"kept"`
	PrintedJobs   int       `json:"printed_jobs"`
	QueuedJobs    int       `json:"queued_jobs"`
	Rerender      int       `json:"rerender"`
	LogFrames     int       `json:"log_frames"`
	SkippedFrames int       `json:"skipped_frames"`
	Problems      int       `json:"problems"`
	Damaged       int       `json:"damaged"`
	Aside         string    `json:"aside"`
}

// Import imports the old state files of state directory dir into st (see the package
// comment), then moves them into dir/pre-sqlite. If dir holds none of them it does nothing.
// An error leaves the store as it was (or, after the commit, the files partly moved; the
// next call finishes the move): the daemon must not start without the old journal.
func Import(dir string, st *store.Store) (Report, error) {
	var present []string
	for _, p := range oldPaths {
		if _, err := os.Lstat(filepath.Join(dir, p)); err == nil {
			present = append(present, p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return Report{}, fmt.Errorf("legacy: %w", err)
		}
	}
	if len(present) == 0 {
		return Report{}, nil
	}
	var rep Report
	// Old files beside an imported store: an earlier start stopped before the move (the
	// files are what it imported: every row is kept), or an older release ran again after
	// a rollback and wrote them anew (its records are newer, and its transactions may be
	// unknown to the store). Importing again covers both: a row is replaced only by a newer
	// record, and a capture is never taken back.
	if _, err := st.Meta(MetaKey); err == nil {
		rep.Resumed = true
	} else if !errors.Is(err, store.ErrNotFound) {
		return Report{}, fmt.Errorf("legacy: %w", err)
	}
	if err := load(dir, st, &rep); err != nil {
		return Report{}, err
	}
	rep.Imported = !rep.Resumed || rep.Captures+rep.PrintedJobs+rep.QueuedJobs > 0
	if err := moveAside(dir, present, &rep); err != nil {
		return rep, err
	}
	return rep, nil
}

// load reads the old files and writes their rows, the mark and the summary in one flush.
func load(dir string, st *store.Store, rep *Report) error {
	t, err := openTree(dir, rep)
	if err != nil {
		return err
	}
	jobs, err := readSpool(t, rep)
	if err != nil {
		return fmt.Errorf("legacy: spool: %w", err)
	}
	clock, _, err := t.read("steady-clock.json")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("legacy: %w", err)
	}
	hasClock := err == nil
	if hasClock {
		if _, err := st.Meta(clockKey); err == nil {
			hasClock = false // the store's own mark is newer: kept
		} else if !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("legacy: %w", err)
		}
	}
	err = st.Flushed(func(tx *store.Tx) error {
		if err := writeCaptures(t, st, tx, jobs.rerender, rep); err != nil {
			return err
		}
		if err := writeJobs(tx, jobs, rep); err != nil {
			return err
		}
		if hasClock {
			if err := tx.PutMeta(clockKey, clock); err != nil {
				return err
			}
			rep.Clock = true
		}
		s := summary{From: "the state files of ecrd before the SQLite store (write-ahead log release)",
			At: time.Now().UTC(), Captures: rep.Captures, Unfinished: rep.Unfinished, InDoubt: rep.InDoubt,
			Pruned: rep.Pruned, Kept: rep.Kept, PrintedJobs: rep.PrintedJobs, QueuedJobs: rep.QueuedJobs,
			Rerender: len(rep.Rerender), LogFrames: rep.Frames, SkippedFrames: rep.SkippedFrames,
			Problems: len(rep.Problems), Aside: AsideDir}
		for _, p := range rep.Problems {
			if p.Damaged {
				s.Damaged++
			}
		}
		if rep.Resumed && rep.Captures+rep.PrintedJobs+rep.QueuedJobs == 0 {
			// The files were imported before (a move the last start did not finish):
			// the first import's summary stays.
			prev, err := st.Meta(MetaKey)
			rep.Summary = prev
			return err
		}
		b, err := json.Marshal(s)
		if err != nil {
			return err
		}
		rep.Summary = b
		return tx.PutMeta(MetaKey, b)
	})
	if err != nil {
		return fmt.Errorf("legacy: import: %w", err)
	}
	return nil
}

// moveAside renames the old paths into dir/pre-sqlite and flushes both directories. A name
// taken there already (moved aside before, by an import this one does not repeat) gets a
// number: nothing moved aside is ever replaced.
func moveAside(dir string, present []string, rep *Report) error {
	aside := filepath.Join(dir, AsideDir)
	if err := os.MkdirAll(aside, 0o750); err != nil {
		return fmt.Errorf("legacy: %w", err)
	}
	rep.Aside = aside
	for _, p := range present {
		to := filepath.Join(aside, p)
		for i := 2; ; i++ {
			if _, err := os.Lstat(to); errors.Is(err, fs.ErrNotExist) {
				break
			}
			to = filepath.Join(aside, fmt.Sprintf("%s.%d", p, i))
		}
		if err := os.Rename(filepath.Join(dir, p), to); err != nil {
			return fmt.Errorf("legacy: move the old files aside: %w", err)
		}
		rep.Moved = append(rep.Moved, p)
	}
	if err := syncDir(aside); err != nil {
		return fmt.Errorf("legacy: move the old files aside: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("legacy: move the old files aside: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
