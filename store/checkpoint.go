package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
)

// SQLite's automatic checkpoint runs inside whichever commit finds the log over a thousand
// pages: on a capture's path, three flushes more for one capture in sixty (the log, ecrd.db,
// and the next commit's new log header). The writer turns it off (wal_autocheckpoint=0) and
// the checkpointer below copies the log into ecrd.db from its own connection, beside the
// writer, without wmu: a commit never waits for the copy.
//
// When: once the log has grown by ckptGrown commits, at the first moment no commit has come
// for ckptIdle (a till's captures come seconds apart, and a capture waits on secupay longer
// than that between its two commits); or after ckptCommits commits without such a pause.
// Not after every capture: a checkpoint costs three flushes (the log, ecrd.db, the new log's
// header) and writes the pages every commit touches (the indexes, the meta row) to ecrd.db
// again, and on an SD card those would queue in front of the next capture's flushes and wear
// the card. ckptGrown is about SQLite's own thousand pages, at ecrd's five or six a commit. After a checkpoint that copied the whole log with no commit
// since, the checkpointer starts the log again itself (restartLog, under wmu): SQLite flushes
// a new log's header before its first frame, and that flush must not be a capture's.
//
// Bounded: while commits keep coming the log is copied but not started again, and a reader
// (`ecrd store backup`) holds back what it still reads. Once the log's file passes
// walHardLimit the checkpointer copies the rest and starts the log again under wmu, whatever
// comes: a commit waits for that (up to three flushes, as for SQLite's automatic checkpoint),
// but the log cannot grow without bound. If a reader still reads the old log, SQLite appends
// to it instead, and the next checkpoint tries again.
var (
	ckptIdle     = time.Second
	ckptGrown    = int64(180)
	ckptCommits  = int64(1000)
	walHardLimit = int64(64 << 20)
	// walKeepLimit is journal_size_limit: the log's file is cut back to it when the log
	// starts again, so that a busy hour's log does not keep its size on the card.
	walKeepLimit = int64(4 << 20)
	// ckptHook, if set (tests), is called as a checkpoint begins, without wmu.
	ckptHook func()
)

// checkpointer is the store's background checkpoint.
type checkpointer struct {
	db   *sql.DB       // its own connection: a checkpoint needs no write lock
	kick chan struct{} // a commit came (1 buffered: the loop wakes once, however many came)
	urge chan struct{} // ckptCommits came since the last checkpoint
	stop chan struct{}
	done chan struct{}
	once sync.Once // a second Close stops nothing

	last     atomic.Int64 // the store's commits (Store.seq) when the last checkpoint began
	finished atomic.Int64 // the same, of the last checkpoint that has ended (tests)
}

func (s *Store) startCheckpointer() error {
	// synchronous=FULL: the copy is flushed to ecrd.db before SQLite may reuse the log.
	db, err := sql.Open("sqlite", "file:"+s.path+"?_pragma=busy_timeout(5000)&_pragma=cache_size("+cacheKiB+")&_pragma=synchronous(FULL)")
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	c := &checkpointer{db: db, kick: make(chan struct{}, 1), urge: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{})}
	s.ckpt = c
	go s.checkpoints(c)
	return nil
}

// committed tells the checkpointer of a commit. Cheap: two sends that do not block.
func (s *Store) committed() {
	c := s.ckpt
	if c == nil {
		return
	}
	if s.seq.Add(1)-c.last.Load() >= ckptCommits {
		select {
		case c.urge <- struct{}{}:
		default:
		}
	}
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// stopCheckpointer ends the loop, waiting for a checkpoint that runs, and closes its
// connection.
func (s *Store) stopCheckpointer() error {
	c := s.ckpt
	if c == nil {
		return nil
	}
	var err error
	c.once.Do(func() {
		close(c.stop)
		<-c.done
		err = c.db.Close()
	})
	return err
}

func (s *Store) checkpoints(c *checkpointer) {
	defer close(c.done)
	// One thread for every flush the checkpointer makes: TestFlushesPerCapture (cmd/ecrd)
	// tells them from the commits' by strace's thread id, since they now overlap in time.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	opened := false
	for {
		select {
		case <-c.stop:
			return
		case <-c.urge:
		case <-c.kick:
			if !opened {
				// The connection's descriptors from the first commit on, not from the first
				// checkpoint, minutes into a run: the daemon's count of open files stays flat
				// (TestLoadSequentialCapturesNoLeak). A failure here is the checkpoint's to meet.
				var v int
				c.db.QueryRow("PRAGMA user_version").Scan(&v) // opens the log and its index too
				opened = true
			}
			if !s.awaitIdle(c) {
				return
			}
			if s.seq.Load()-c.last.Load() < ckptGrown {
				continue
			}
		}
		if err := s.checkpoint(c); err != nil && s.latched() != nil {
			return // ErrDiskFailed, ErrCorrupt: nothing more is written
		}
	}
}

// awaitIdle waits until no commit has come for ckptIdle, or ckptCommits have; false when
// the store closes.
func (s *Store) awaitIdle(c *checkpointer) bool {
	t := time.NewTimer(ckptIdle)
	defer t.Stop()
	for {
		seq := s.seq.Load()
		select {
		case <-c.stop:
			return false
		case <-c.urge:
			return true
		case <-t.C:
		}
		if s.seq.Load() == seq {
			return true
		}
		t.Reset(ckptIdle)
	}
}

// checkpoint copies the log into ecrd.db. A failure it meets is latched as a commit's is
// (s.failed): after an I/O error the kernel may have dropped pages of the log or of ecrd.db,
// and a later checkpoint that seemed to succeed would start the log again over what was lost.
// Other failures (a full disk) leave the log as it is, for the next checkpoint to copy.
func (s *Store) checkpoint(c *checkpointer) error {
	if err := s.latched(); err != nil {
		return err
	}
	seq := s.seq.Load()
	c.last.Store(seq)
	defer c.finished.Store(seq)
	defer func() {
		if s.seq.Load()-seq >= ckptCommits {
			return // the commits since have urged the next one
		}
		select { // an urge sent before the checkpoint began is answered by it
		case <-c.urge:
		default:
		}
	}()
	if ckptHook != nil {
		ckptHook()
	}
	complete, err := s.copyLog(c.db.QueryRow)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(s.path + "-wal"); err == nil && fi.Size() > walHardLimit {
		return s.restartLog(-1)
	}
	if !complete {
		return nil
	}
	return s.restartLog(seq)
}

// copyLog runs a PASSIVE checkpoint through query (the checkpointer's connection, or the
// writer's under wmu) and reports whether it copied the whole log.
func (s *Store) copyLog(query func(string, ...any) *sql.Row) (complete bool, err error) {
	var busy, log, copied int
	if err := query("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &log, &copied); err != nil {
		if isBusy(err) {
			return false, nil // Backup's connection, say, held it: the next one tries again
		}
		return false, s.failed("checkpoint", err)
	}
	return busy == 0 && log == copied && log > 0, nil
}

// restartLog starts the log from its beginning, with a write of the checkpointer's (the
// schema's version, written again: one page; SQLite flushes the new log's header, and the
// write itself is not flushed). It runs under wmu, and only if no
// commit came since the checkpoint began at commit seq — a commit since then has appended
// to the log, which must be copied first. seq -1 (the log past walHardLimit) copies that rest
// under wmu first, so that the log restarts whatever comes.
func (s *Store) restartLog(seq int64) error {
	ctx := context.Background()
	conn, release, err := s.writer(ctx, false)
	if err != nil {
		return s.wrap("restart the log", err)
	}
	defer release()
	if seq < 0 {
		complete, err := s.copyLog(func(q string, args ...any) *sql.Row { return conn.QueryRowContext(ctx, q, args...) })
		if err != nil || !complete {
			return err
		}
	} else if s.seq.Load() != seq {
		return nil
	}
	_, err = conn.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", Version))
	return s.failed("restart the log", err)
}

// latched is the error of a store that writes nothing more.
func (s *Store) latched() error {
	if s.corrupt.Load() {
		return ErrCorrupt
	}
	if s.diskFailed.Load() {
		return ErrDiskFailed
	}
	return nil
}

// isBusy reports whether err is SQLite's SQLITE_BUSY or SQLITE_LOCKED.
func isBusy(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff {
	case 5, 6:
		return true
	}
	return false
}
