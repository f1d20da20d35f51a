package printer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// filePrinter is the fake printer (docs/architecture.md): jobs are appended to a file, and a
// file beside it (<path>.status) holds the state a test or demo wants the printer to be in.
type filePrinter struct {
	uri, path string
	mu        sync.Mutex
	closed    bool
}

// parseFile parses file:PATH. The fake takes no options: it neither waits nor times out.
func parseFile(t *target, rest string, _ uriOptions) (err error) {
	t.path, err = devicePath("file", rest)
	return err
}

func newFilePrinter(uri, path string) *filePrinter { return &filePrinter{uri: uri, path: path} }

func (p *filePrinter) String() string { return p.uri }

// Print appends the whole job in one write and fsyncs, so a reader of the file never sees half
// a receipt and a crash after Print returns cannot lose it. Like a real printer that is not
// ready, it refuses jobs while the status file says offline, paper_out or cover_open: the spool
// asks Status first, but a state that changes between the two calls must fail the job, not
// print it.
func (p *filePrinter) Print(ctx context.Context, job []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return &WriteError{URI: p.uri, Total: len(job), Err: err}
	}
	st, err := p.status()
	if err != nil {
		return &WriteError{URI: p.uri, Total: len(job), Err: err}
	}
	if !st.Ready() {
		return &WriteError{URI: p.uri, Total: len(job), Err: fmt.Errorf("printer is %s (%s)", st.State, st.Detail)}
	}
	// O_NONBLOCK matters only when the path is a FIFO (a demo piping the printer into a
	// viewer): opening one with no reader fails at once (ENXIO) instead of blocking the
	// printer's lock, status requests and shutdown, and a reader that stops reading makes the
	// write fail at ctx's deadline. On a regular file it changes nothing.
	f, err := os.OpenFile(p.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NONBLOCK, 0o644)
	if errors.Is(err, syscall.ENXIO) {
		err = fmt.Errorf("%s is a FIFO with no reader: %w", p.path, err)
	}
	if err != nil {
		return &WriteError{URI: p.uri, Total: len(job), Err: err}
	}
	if d, ok := ctx.Deadline(); ok {
		f.SetWriteDeadline(d) // honoured for FIFOs; regular files never block
	}
	n, err := f.Write(job)
	if err == nil {
		if err = f.Sync(); errors.Is(err, syscall.EINVAL) {
			err = nil // a FIFO cannot be synced; there is nothing on disk to lose
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return &WriteError{URI: p.uri, Written: n, Total: len(job), Err: err}
	}
	return nil
}

// Status reads <path>.status. No status file means online. An unknown first word (or an empty
// file) is reported as offline with the word in Detail rather than as an error: the fake is
// reachable, and holding jobs is the safe reading of a state nobody can interpret.
func (p *filePrinter) Status(ctx context.Context) (Status, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return Status{}, ErrClosed
	}
	return p.status()
}

func (p *filePrinter) status() (Status, error) {
	// The directory stands for the device: without it no job could be written.
	if _, err := os.Stat(filepath.Dir(p.path)); err != nil {
		return Status{}, fmt.Errorf("printer: status of %s: %w", p.uri, err)
	}
	statusPath := p.path + ".status"
	data, err := os.ReadFile(statusPath)
	if errors.Is(err, os.ErrNotExist) {
		return Status{State: StateOnline}, nil
	}
	if err != nil {
		return Status{}, fmt.Errorf("printer: status of %s: %w", p.uri, err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	word, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
	rest = strings.TrimSpace(rest)
	switch st := State(word); st {
	case StateOnline, StateOffline, StatePaperOut, StateCoverOpen, StatePaperNearEnd:
		if rest == "" && st != StateOnline {
			rest = strings.ReplaceAll(word, "_", " ")
		}
		return Status{State: st, Detail: rest}, nil
	}
	return Status{State: StateOffline, Detail: fmt.Sprintf("unknown state %q in %s", word, statusPath)}, nil
}

func (p *filePrinter) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	return nil
}
