// Package wal makes the state directory's file changes durable with one flush each: a change
// (a group of file writes and removals) is appended to a write-ahead log and fdatasync'd,
// then applied to the files without flushing them. The journal and the spool keep their
// one-file-per-record layout for readers and technicians; the log is what survives a power
// cut until a checkpoint has flushed the files (docs/durability.md).
//
// Why: on a till's SD card one flush costs 5–50 ms. Writing a file safely on its own takes
// two (the file, then its directory after the rename), and a capture touched five files.
// Through the log a capture costs one flush per step that must be durable before the next.
//
// The log must never be bypassed for a file it manages: a change made behind its back could
// be undone by replaying an older change after a crash.
package wal

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/ecrd-pos/ecrd/internal/atomicfile"
	"github.com/ecrd-pos/ecrd/internal/crashpoint"
)

// Op is one file change: write Data to Path, or remove Path. Path is relative to the
// log's root (the state directory) and uses forward slashes.
type Op struct {
	Path   string `json:"p"`
	Data   []byte `json:"d,omitempty"`
	Remove bool   `json:"r,omitempty"`
}

// DefaultLimit is the log size after which a checkpoint flushes the files and starts a new
// log: small enough to replay in milliseconds at start, large enough that the checkpoint's
// flushes are spread over a few hundred captures.
const DefaultLimit = 1 << 20

// A checkpoint runs beside the commits, never in front of one: its flushes (the next log's
// name, then syncfs of every file the old log's changes were applied to) can take seconds on
// a cheap SD card with much to write, and a POS must not wait for them.
//
//  1. The next log is always made ready ahead: created, its name flushed (prepare) — by Open,
//     with the log it starts, and in the background as soon as a switch has used the last.
//  2. Past the limit, right after a synced change (the old log is then flushed to its end),
//     Commit switches to the next log: a pointer swap under the lock.
//  3. In the background, syncfs flushes the files, then the old log is removed (finish).
//
// So the switch comes at the first synced change past the limit, never later for want of a
// prepared log (which also makes it a step the crash tests can cut at, with a small limit);
// an empty prepared log on disk is replayed as nothing.
//
// A power cut between 2 and 3 leaves both logs: Open replays the old, then the new, which is
// the order the changes were made in. A log that was only ever appended without a flush is
// switched once it reaches twice the limit, after one fdatasync.

// Log is the write-ahead log of one state directory. It is safe for concurrent use; changes
// are applied in the order they are committed.
type Log struct {
	root, dir string
	limit     int64

	mu      sync.Mutex
	f       *os.File
	gen     uint64
	size    int64
	flushed int64 // how much of the log a power cut cannot take (the power-cut tests use it)
	// prevFlushed is how much of the previous log a power cut cannot take, from the switch
	// until the checkpoint removes that log: all of it (the power-cut tests check that).
	prevFlushed int64

	// The checkpoint in progress (see the comment at DefaultLimit): next is the prepared log
	// (nil until prepare made its name durable); preparing and finishing are set while those
	// steps run in the background. background starts them (tests hold them back to cut the
	// power in between); bg counts them for Close.
	next       *os.File
	nextGen    uint64
	preparing  bool
	prepareAt  int64 // after a failed prepare: the log size to try again at
	finishing  bool
	background func(step string, f func())
	bg         sync.WaitGroup
	// flushFiles flushes every file of the state directory: syncfs (the power-cut test wraps
	// it to see exactly what a checkpoint flushed, and when).
	flushFiles func() error
	// OnCheckpointError is told when a background checkpoint step fails (set it before the
	// first Commit; it runs with the log locked and must not call it). Nothing committed is
	// lost: the old log stays and is replayed at the next start, and the next checkpoint
	// tries again.
	OnCheckpointError func(error)

	replayErrs []error // changes Open could not apply (see ReplayErrors)
	// pending are committed changes not applied to the files yet (a disk error, something
	// in the way): applied first, in order, before any later change, and never dropped by
	// a checkpoint while they wait.
	pending  []Op
	applyErr error // why the first pending change could not be applied
	// OnApplyError is told when committed changes cannot be applied to the files (set it
	// before the first Commit; it runs with the log locked and must not call it).
	OnApplyError func(error)
}

// frame header: magic, payload length, CRC-32C of the payload.
const (
	magic     = 0xEC4D_0A1E
	headerLen = 12
	maxFrame  = 64 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Open opens the log of the state directory root (its files are in root/wal), first
// replaying what a previous life committed and checkpointing it, so that the files under
// root are up to date when Open returns. limit ≤ 0 means DefaultLimit.
func Open(root string, limit int64) (*Log, error) {
	if limit <= 0 {
		limit = DefaultLimit
	}
	l := &Log{root: root, dir: filepath.Join(root, "wal"), limit: limit}
	l.background = func(_ string, f func()) {
		l.bg.Add(1)
		go func() { defer l.bg.Done(); f() }()
	}
	l.flushFiles = l.syncfs
	if err := os.MkdirAll(l.dir, 0o750); err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	gens, err := l.generations()
	if err != nil {
		return nil, err
	}
	for _, g := range gens {
		if err := l.replay(g); err != nil {
			return nil, err
		}
	}
	next := uint64(1)
	if len(gens) > 0 {
		next = gens[len(gens)-1] + 1
	}
	// Every replayed change is in the files now; flush them and start a new log. The old
	// logs are removed only after the new one's name is durable — and kept while a change
	// from them waits in pending: replayed again at the next start if this life cannot apply
	// it, and removed by the first checkpoint after it is applied (which waits for pending).
	old := gens
	if len(l.pending) > 0 {
		old = nil
	}
	if err := l.rotate(next, old); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *Log) generations() ([]uint64, error) {
	ents, err := os.ReadDir(l.dir)
	if err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	var gens []uint64
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".log")
		if !ok {
			continue
		}
		g, err := strconv.ParseUint(name, 10, 64)
		if err != nil {
			continue
		}
		gens = append(gens, g)
	}
	sort.Slice(gens, func(i, j int) bool { return gens[i] < gens[j] })
	return gens, nil
}

func (l *Log) path(gen uint64) string { return filepath.Join(l.dir, fmt.Sprintf("%016d.log", gen)) }

// create starts log gen, empty, for appending (its name is not durable until the directory is
// flushed).
func (l *Log) create(gen uint64) (*os.File, error) {
	return os.OpenFile(l.path(gen), os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_TRUNC, 0o640)
}

// replay applies every whole frame of log gen, in order. A frame that is torn (the power
// failed while it was written: never reported committed) or corrupt is skipped, and replay
// resumes at the next whole frame after it: a flipped bit in one change must not take the
// later, committed ones with it (an intent among them would be a capture forgotten).
func (l *Log) replay(gen uint64) error {
	data, err := os.ReadFile(l.path(gen))
	if err != nil {
		return fmt.Errorf("wal: replay: %w", err)
	}
	for off := 0; off+headerLen <= len(data); {
		ops, n, ok := frameAt(data[off:])
		if !ok {
			off = nextMagic(data, off+1)
			continue
		}
		// A file that cannot be written now (a disk error, something in its way) must not
		// stop the till from starting. The change waits in pending, and every later one
		// behind it, in order — as a change Commit cannot apply does — until the files take
		// them (Commit, Retry); its owner finds the file unreadable meanwhile and retries.
		if len(l.pending) > 0 {
			l.pending = append(l.pending, ops...)
		} else if applied, err := l.applyN(ops); err != nil {
			l.pending = append(l.pending, ops[applied:]...)
			l.applyErr = err
			l.replayErrs = append(l.replayErrs, fmt.Errorf("wal: replay: %w", err))
		}
		off += n
	}
	return nil
}

// frameAt decodes the frame at the start of b: its ops and its length.
func frameAt(b []byte) ([]Op, int, bool) {
	if len(b) < headerLen || binary.LittleEndian.Uint32(b[0:]) != magic {
		return nil, 0, false
	}
	n := binary.LittleEndian.Uint32(b[4:])
	if n > maxFrame || int(n) > len(b)-headerLen {
		return nil, 0, false
	}
	payload := b[headerLen : headerLen+int(n)]
	if crc32.Checksum(payload, crcTable) != binary.LittleEndian.Uint32(b[8:]) {
		return nil, 0, false
	}
	var ops []Op
	if err := json.Unmarshal(payload, &ops); err != nil {
		return nil, 0, false
	}
	return ops, headerLen + int(n), true
}

// nextMagic is the offset of the next frame's magic in data at or after from (len(data) if
// none).
func nextMagic(data []byte, from int) int {
	var m [4]byte
	binary.LittleEndian.PutUint32(m[:], magic)
	if from >= len(data) {
		return len(data)
	}
	i := bytes.Index(data[from:], m[:])
	if i < 0 {
		return len(data)
	}
	return from + i
}

// Commit makes ops one change: appended to the log as one frame, flushed when sync is set
// (then the change survives power loss when Commit returns), and applied to the files — or,
// if they cannot take it now, kept pending (see Retry). An error means the change was not
// made, and the caller must act as if it never was; after a failed fdatasync the frame may
// still be on disk and be replayed at the next start, which callers allow for: every change
// ecrd makes is keyed by a transaction or job id, so making it late makes it once.
// Without sync the change survives a crash of the process, and power loss once a later
// synced change or a checkpoint has flushed the log (or the kernel has written it back).
func (l *Log) Commit(sync bool, ops ...Op) error {
	for _, op := range ops {
		// Checked before the frame is written: a frame that cannot be applied would fail
		// every replay, and so every start.
		if !local(op.Path) {
			return fmt.Errorf("wal: op on %q: not a path inside the state directory", op.Path)
		}
	}
	payload, err := json.Marshal(ops)
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	frame := make([]byte, headerLen, headerLen+len(payload))
	binary.LittleEndian.PutUint32(frame[0:], magic)
	binary.LittleEndian.PutUint32(frame[4:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(frame[8:], crc32.Checksum(payload, crcTable))
	frame = append(frame, payload...)

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return errors.New("wal: closed")
	}
	if _, err := l.f.Write(frame); err != nil {
		// The frame may be half written: later frames must not follow a torn one, so the
		// log is cut back to where it was (replay stops at a torn frame anyway).
		l.f.Truncate(l.size)
		l.f.Seek(l.size, io.SeekStart)
		return fmt.Errorf("wal: append: %w", err)
	}
	l.size += int64(len(frame))
	crashpoint.Hit("wal-appended")
	if sync {
		if err := atomicfile.Timed(func() error { return unix.Fdatasync(int(l.f.Fd())) }); err != nil {
			return fmt.Errorf("wal: fdatasync: %w", err)
		}
		l.flushed = l.size
	}
	crashpoint.Hit("wal-committed")
	// Committed: what Commit promises is kept. If the files cannot take the change now, it
	// waits in pending (and in the log) and is applied by the next Commit or Retry.
	l.pending = append(l.pending, ops...)
	l.applyPendingLocked()
	l.checkpointLocked()
	return nil
}

// checkpointLocked moves the checkpoint on by what Commit may do itself: start preparing the
// next log, or switch to it. Neither flushes, except a log that never had a synced change and
// reached twice the limit: it is flushed once, here, so that it can be switched.
func (l *Log) checkpointLocked() {
	if l.next == nil {
		// Not ready: being prepared, or the last try failed (tried again past prepareAt).
		if !l.preparing && l.size >= l.prepareAt {
			l.prepareLocked()
		}
		return
	}
	if l.size < l.limit || len(l.pending) > 0 || l.finishing {
		return
	}
	if l.flushed != l.size {
		// The old log must be flushed to its end before the switch: a synced change in the
		// next log must not survive a power cut that takes an earlier change in this one.
		if l.size < 2*l.limit {
			return // the next synced change flushes it
		}
		if err := atomicfile.Timed(func() error { return unix.Fdatasync(int(l.f.Fd())) }); err != nil {
			l.checkpointFailed(fmt.Errorf("wal: checkpoint: fdatasync: %w", err))
			return
		}
		l.flushed = l.size
	}
	old, oldGen := l.f, l.gen
	l.prevFlushed = l.flushed
	l.f, l.gen, l.size, l.flushed = l.next, l.nextGen, 0, 0
	l.next, l.prepareAt = nil, 0
	l.finishing = true
	// Two logs on disk, the files behind them not flushed yet: a cut here replays both.
	crashpoint.Hit("wal-switched")
	l.background("finish", func() { l.finish(old, oldGen) })
	l.prepareLocked()
}

// prepareLocked starts preparing the log after the current one, in the background.
func (l *Log) prepareLocked() {
	l.preparing = true
	gen := l.gen + 1
	l.background("prepare", func() { l.prepare(gen) })
}

// prepare creates log gen and makes its name durable, for the switch to use.
func (l *Log) prepare(gen uint64) {
	f, err := l.create(gen)
	if err == nil {
		if err = atomicfile.SyncDir(l.dir); err != nil {
			f.Close()
		}
	}
	if err == nil {
		crashpoint.Hit("wal-prepared") // an empty newer log on disk: a cut here replays it too
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.preparing = false
	switch {
	case err != nil:
		// Tried again once the log has grown by another quarter of its limit: not on every
		// commit to a card that is failing.
		l.prepareAt = l.size + l.limit/4
		l.checkpointFailed(fmt.Errorf("wal: checkpoint: prepare log %d: %w", gen, err))
	case l.f == nil || gen != l.gen+1: // closed meanwhile
		f.Close()
	default:
		l.next, l.nextGen = f, gen
	}
}

// finish flushes every file of the state directory (syncfs) — so every change in the logs up
// to oldGen is in the files for good — and then removes those logs.
func (l *Log) finish(old *os.File, oldGen uint64) {
	old.Close()
	err := l.flushFiles()
	if err == nil {
		crashpoint.Hit("wal-synced") // the files hold the old log's changes; the old log is still there
		if gens, gerr := l.generations(); gerr == nil {
			for _, g := range gens {
				if g <= oldGen {
					os.Remove(l.path(g)) // a log surviving this is replayed harmlessly: its changes come first
				}
			}
		}
		crashpoint.Hit("wal-removed") // from here the files alone hold what the old log did
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.finishing = false
	if err != nil {
		l.checkpointFailed(fmt.Errorf("wal: checkpoint: %w", err))
	}
}

func (l *Log) checkpointFailed(err error) {
	if l.OnCheckpointError != nil {
		l.OnCheckpointError(err)
	}
}

func (l *Log) syncfs() error {
	root, err := os.Open(l.root)
	if err != nil {
		return err
	}
	defer root.Close()
	if err := atomicfile.Timed(func() error { return unix.Syncfs(int(root.Fd())) }); err != nil {
		return fmt.Errorf("syncfs: %w", err)
	}
	return nil
}

// applyPendingLocked applies the pending changes in order, keeping those from the first
// that fails.
func (l *Log) applyPendingLocked() {
	n, err := l.applyN(l.pending)
	l.pending = l.pending[n:]
	if len(l.pending) == 0 {
		l.pending = nil
	}
	l.applyErr = err
	if err != nil && l.OnApplyError != nil {
		l.OnApplyError(fmt.Errorf("wal: committed, but not applied to the files yet (%d changes wait): %w", len(l.pending), err))
	}
}

// Retry applies the committed changes the files could not take before. It reports how many
// still wait.
func (l *Log) Retry() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.pending) > 0 {
		l.applyPendingLocked()
	}
	return len(l.pending)
}

// Committed returns the latest committed change to path (the log's form: "journal/a.json")
// that the files have not taken yet: its data, or removed. ok is false when the file on disk
// is up to date. A reader that must not act on a stale file — the journal, before it decides
// whether a start/cash was sent — reads through the log with it.
func (l *Log) Committed(path string) (data []byte, removed, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.pending) - 1; i >= 0; i-- {
		if op := l.pending[i]; op.Path == path {
			return slices.Clone(op.Data), op.Remove, true
		}
	}
	return nil, false, false
}

// PendingUnder returns the paths under dir (the log's form, "journal/") that have committed
// changes the files have not taken yet.
func (l *Log) PendingUnder(dir string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, op := range l.pending {
		if strings.HasPrefix(op.Path, dir) && !slices.Contains(out, op.Path) {
			out = append(out, op.Path)
		}
	}
	return out
}

// Pending reports how many committed changes the files have not taken yet, and why.
func (l *Log) Pending() (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.pending), l.applyErr
}

// applyN applies ops in order and returns how many it applied.
func (l *Log) applyN(ops []Op) (int, error) {
	for i, op := range ops {
		if err := l.applyOne(op); err != nil {
			return i, err
		}
	}
	return len(ops), nil
}

func (l *Log) applyOne(op Op) error {
	if !local(op.Path) {
		return fmt.Errorf("op on %q: not a path inside the state directory", op.Path)
	}
	path := filepath.Join(l.root, filepath.FromSlash(op.Path))
	if op.Remove {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	return atomicfile.Replace(path, op.Data, 0o640)
}

func local(p string) bool { return p != "" && filepath.IsLocal(filepath.FromSlash(p)) }

// rotate is Open's checkpoint, in line (nothing else runs yet): it flushes every file of the
// state directory (syncfs), starts log next and prepares the one after it, makes their names
// durable, and only then removes the logs in old.
func (l *Log) rotate(next uint64, old []uint64) error {
	if err := l.flushFiles(); err != nil {
		return err
	}
	f, err := l.create(next)
	if err != nil {
		return err
	}
	// The log after it, ready for the first switch, made durable by the same directory
	// flush. Without it (it could not be created) the first commit prepares one.
	ahead, aheadErr := l.create(next + 1)
	if err := atomicfile.SyncDir(l.dir); err != nil {
		f.Close()
		if aheadErr == nil {
			ahead.Close()
		}
		return err
	}
	if l.f != nil {
		l.f.Close()
	}
	l.f, l.gen, l.size, l.flushed = f, next, 0, 0
	if aheadErr == nil {
		l.next, l.nextGen = ahead, next+1
	}
	for _, g := range old { // all older than next
		os.Remove(l.path(g)) // a log surviving this is replayed harmlessly: its changes come first
	}
	return nil
}

// Close closes the log, after a checkpoint in progress has finished. Committed changes are in
// the log; nothing is lost.
func (l *Log) Close() error {
	l.mu.Lock()
	f, next := l.f, l.next
	l.f, l.next = nil, nil
	l.mu.Unlock()
	l.bg.Wait()
	if next != nil {
		next.Close()
	}
	if f == nil {
		return nil
	}
	return f.Close()
}

// ReplayErrors returns the changes Open replayed but could not apply to the files, for the
// daemon to log.
func (l *Log) ReplayErrors() []error { return l.replayErrs }

// Root is the state directory the log's paths are relative to.
func (l *Log) Root() string { return l.root }

// Size is how many bytes the current log holds (for tests and metrics).
func (l *Log) Size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.size
}
