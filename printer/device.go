package printer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"
)

// Conn is the seam under every real transport: an open byte pipe to one ESC/POS device with
// deadlines, so that a stalled line or a silent printer ends a call instead of hanging it.
// *os.File (nonblocking tty, FIFO, usblp), net.Conn and printer/usb's connection all satisfy
// it. A deadline that passes must end a blocked Read or Write with an error that
// errors.Is(err, os.ErrDeadlineExceeded), as net and os do: that is how "no answer in time"
// is told from a broken line. A transport registered from outside (RegisterTransport) speaks
// to the engine only through Conn, ErrNoReadBack and DeviceIDConn.
type Conn interface {
	io.ReadWriteCloser
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
}

// Dialer opens the transport. It is called lazily, on the first call after Open or after an
// error closed the previous Conn, which is how an unplugged printer comes back.
type Dialer func(ctx context.Context) (Conn, error)

// ErrNoReadBack is returned (wrapped) by a Conn's Read when the device cannot send anything
// back (a unidirectional usblp printer, a FIFO, a regular file, a USB interface without bulk
// IN): Status then reports StateUnknown, and a job counts once written.
var ErrNoReadBack = errors.New("device cannot send status back")

// outputDrainer is implemented by conns that buffer output in the kernel (a tty): Print waits
// for the buffer to empty so that "printed" means the bytes left the machine.
type outputDrainer interface {
	drainOutput(deadline time.Time) error
}

// device is the ESC/POS engine shared by lp, serial, tcp and usb.
type device struct {
	uri  string
	cfg  deviceConfig
	dial Dialer
	// drainWindow is how long Status listens for stale input before asking: long enough to
	// catch bytes already in flight, short enough not to slow every status call. It is only
	// needed when something may be in flight (settled is false).
	drainWindow time.Duration
	// settled is true while nothing the printer was asked for can still be on its way: the
	// last exchange on this connection got every answer it asked for. A drain then takes only
	// what is already buffered (settledWindow) — a receipt then waits about 4 ms for its two
	// drains instead of 40 ms. A new connection, a query left unanswered, a give-up and DLE
	// EOT probes sent while a job printed all leave it false. Writing a job keeps it: jobs are
	// built from commands that ask the printer nothing (docs/escpos.md). Guarded by sem.
	settled bool

	// sem is a one-slot mutex that a context can give up waiting on: a Status call must be
	// able to time out while a long Print holds the device.
	sem    chan struct{}
	c      Conn
	closed bool
	// learnt is what this printer has shown about confirming jobs (a completion); it is learnt
	// from the first jobs and kept across reconnects (the same printer comes back). Atomic so
	// that Status can report it while a job holds the device.
	learnt atomic.Int32
	// answered is set once the printer has answered a status query in this life: a printer
	// that can talk and then says nothing behind a job is stuck, not write-only.
	answered atomic.Bool
	// confirming is set while Print waits for the printer to confirm a job: Status then answers
	// without asking the device, whose answer would be read as (or steal) the confirmation.
	confirming atomic.Bool
}

func (d *device) completion() completion     { return completion(d.learnt.Load()) }
func (d *device) setCompletion(c completion) { d.learnt.Store(int32(c)) }

// completion is how a printer confirms that a job is on paper.
type completion int

const (
	completionUnknown  completion = iota // no job yet
	completionInOrder                    // answers GS r 1 after printing what came before it
	completionRealtime                   // answers DLE EOT but never GS r 1: the old rule
	completionSilent                     // answers nothing (or cannot): the line staying open is all there is
)

func (c completion) String() string {
	switch c {
	case completionInOrder:
		return "in-order (GS r 1 answered after the job)"
	case completionRealtime:
		return "real-time only (DLE EOT after the job; GS r 1 never answered)"
	case completionSilent:
		return "none (the printer never answers; a job counts once written)"
	}
	return ""
}

// confirmRate is the slowest printing speed the confirmation wait allows for, in job bytes a
// second (an impact printer's few lines a second), so a long receipt is not given up on.
const confirmRate = 200

// gsR1 is GS r 1, "transmit paper sensor status": unlike DLE EOT, it waits its turn in the
// receive buffer, so its answer means everything sent before it has been processed.
var gsR1 = []byte{0x1D, 'r', 1}

func newDevice(uri string, cfg deviceConfig, dial Dialer) *device {
	return &device{uri: uri, cfg: cfg, dial: dial, drainWindow: 20 * time.Millisecond, sem: make(chan struct{}, 1)}
}

func (d *device) String() string { return d.uri }

func (d *device) lock(ctx context.Context) error {
	select {
	case d.sem <- struct{}{}:
	default:
		// Busy: wait, unless the caller gives up first. (Trying the free case alone first
		// keeps an already-cancelled context from winning a coin toss against a free device.)
		select {
		case d.sem <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("printer %s: waiting for the device: %w", d.uri, ctx.Err())
		}
	}
	if d.closed {
		<-d.sem
		return ErrClosed
	}
	return nil
}

func (d *device) unlock() { <-d.sem }

// connect returns the open Conn, dialling if there is none.
func (d *device) connect(ctx context.Context) (Conn, error) {
	if d.c != nil {
		return d.c, nil
	}
	c, err := d.dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("printer: open %s: %w", d.uri, err)
	}
	d.c, d.settled = c, false // a fresh line: a printer may greet it, or answer late
	return c, nil
}

// drop closes the Conn after an error: its state is unknown (half a command sent, a dead
// socket, a vanished USB device), and the next call starts clean by dialling again.
func (d *device) drop() {
	d.settled = false
	if d.c != nil {
		d.c.Close()
		d.c = nil
	}
}

// deadline is now+d, or the context's deadline when that is sooner.
func deadline(ctx context.Context, d time.Duration) time.Time {
	t := time.Now().Add(d)
	if cd, ok := ctx.Deadline(); ok && cd.Before(t) {
		return cd
	}
	return t
}

// setDeadline ignores os.ErrNoDeadline: a regular file (lp: in tests) never blocks anyway.
func setDeadline(set func(time.Time) error, t time.Time) error {
	if err := set(t); err != nil && !errors.Is(err, os.ErrNoDeadline) {
		return err
	}
	return nil
}

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// Print writes job in chunks, each with its own deadline, so a stalled line fails within
// write_timeout and the WriteError says how many bytes went out.
func (d *device) Print(ctx context.Context, job []byte) error {
	if err := d.lock(ctx); err != nil {
		return err
	}
	defer d.unlock()
	c, err := d.connect(ctx)
	if err != nil {
		return err
	}
	// Cancelling ctx (not only its deadline) must end a blocked write too.
	stop := context.AfterFunc(ctx, func() { c.SetWriteDeadline(time.Now()) })
	defer stop()

	fail := func(written int, err error) error {
		if ctxErr := ctx.Err(); ctxErr != nil && isTimeout(err) {
			err = fmt.Errorf("%w (%v)", ctxErr, err)
		}
		d.drop()
		return &WriteError{URI: d.uri, Written: written, Total: len(job), Err: err}
	}
	written := 0
	for written < len(job) {
		if err := ctx.Err(); err != nil {
			return fail(written, err)
		}
		end := min(written+d.cfg.chunk, len(job))
		if err := setDeadline(c.SetWriteDeadline, deadline(ctx, d.cfg.writeTimeout)); err != nil {
			return fail(written, err)
		}
		n, err := c.Write(job[written:end])
		written += n
		if err == nil && n < end-(written-n) {
			err = io.ErrShortWrite
		}
		if err != nil {
			return fail(written, err)
		}
	}
	if dr, ok := c.(outputDrainer); ok {
		if err := dr.drainOutput(deadline(ctx, d.cfg.writeTimeout)); err != nil {
			return fail(written, err)
		}
	}
	// A written job is only in the kernel's buffers, and then in the printer's (4-45 KiB):
	// "written" is not "on paper". confirm asks the printer to say so in order.
	if err := d.confirm(ctx, c, len(job)); err != nil {
		return &WriteError{URI: d.uri, Written: written, Total: len(job), Err: fmt.Errorf("after the job: %w", err)}
	}
	return nil
}

// confirm ends a job with GS r 1 and waits for its answer, which the printer sends only after
// processing (printing) the job: that answer is what "printed" means. Meanwhile it asks
// DLE EOT 1 now and then, which the printer answers at once, to tell a printer that is busy
// from one that is gone.
//
// What a printer shows is learnt per printer (completion): one that has never answered GS r 1
// but answers DLE EOT is confirmed the old way (DLE EOT answered behind the job on the same
// connection), one that answers nothing counts once written. One that answered GS r 1 before
// and is silent now did not print the job: ErrNotConfirmed, and the job is sent again whole.
//
// GS r 1's answer has bits 4 and 7 clear; DLE EOT's has bit 4 set, and so has the first byte
// of an automatic status message, whose three others scan skips: the answers cannot be
// confused. An answer that arrives after a give-up is drained before
// the next marker, and the connection is dropped on a give-up so it cannot confirm a later job.
func (d *device) confirm(ctx context.Context, c Conn, jobLen int) error {
	switch d.completion() {
	case completionRealtime:
		return d.confirmRealtime(ctx, c, jobLen)
	case completionSilent:
		// Nothing ever comes back: written is all that can be known. A reset or hang-up
		// still shows as an error.
		_, err := d.query(ctx, c)
		return err
	}
	d.confirming.Store(true)
	defer d.confirming.Store(false)
	stop := context.AfterFunc(ctx, func() { c.SetReadDeadline(time.Now()); c.SetWriteDeadline(time.Now()) })
	defer stop()
	if err := d.drainInput(ctx, c); errors.Is(err, ErrNoReadBack) {
		// A write-only device (a unidirectional usblp printer, a FIFO, a file): written is
		// all that can be known, and a marker nobody answers is not sent.
		d.setCompletion(completionSilent)
		return nil
	} else if err != nil {
		return d.confirmFailed(ctx, "draining input", err)
	}
	d.settled = false // until GS r 1 is answered
	if err := setDeadline(c.SetWriteDeadline, deadline(ctx, d.cfg.writeTimeout)); err != nil {
		return d.confirmFailed(ctx, "set deadline", err)
	}
	if _, err := c.Write(gsR1); err != nil {
		return d.confirmFailed(ctx, "sending GS r 1", err)
	}
	wait := d.cfg.confirmTimeout + time.Duration(jobLen)*time.Second/confirmRate
	w, err := d.awaitMarker(ctx, c, wait)
	switch {
	case err != nil:
		return err
	case w.answered:
		d.setCompletion(completionInOrder)
		d.settled = !w.probed
		return nil
	case w.noReadBack:
		// A write-only device (a unidirectional usblp printer): written is all we can know.
		d.setCompletion(completionSilent)
		return nil
	}
	return d.unanswered(ctx, wait, w)
}

// confirmRealtime confirms a job on a printer that answers DLE EOT but not GS r 1. Streams are
// in order, so an answer to DLE EOT sent behind the job means the whole job got there. A
// printer that answers DLE EOT at all but leaves the one behind this job unanswered for the
// job's whole confirm time — unplugged, switched off, jammed with the job half in — did not
// take it: ErrNotConfirmed, and the spool sends the job again whole. A receipt may print
// twice then, never zero times (a silent answer used to count as printed).
func (d *device) confirmRealtime(ctx context.Context, c Conn, jobLen int) error {
	until := time.Now().Add(d.cfg.confirmTimeout + time.Duration(jobLen)*time.Second/confirmRate)
	for {
		st, err := d.query(ctx, c)
		if err != nil {
			return err
		}
		if st.State != StateUnknown {
			return nil
		}
		if ctx.Err() != nil || time.Now().After(until) {
			return d.confirmFailed(ctx, "DLE EOT behind the job unanswered by a printer that answers it ("+st.Detail+")", ErrNotConfirmed)
		}
	}
}

// confirmFailed drops the connection after a failure while confirming a job (a give-up
// included, so a late answer cannot confirm a later job) and says what failed.
func (d *device) confirmFailed(ctx context.Context, what string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		err = ctxErr
	}
	d.drop()
	return fmt.Errorf("%s: %w", what, err)
}

// markerWait is what the printer showed while confirm waited for the answer to GS r 1.
type markerWait struct {
	answered   bool // GS r 1 answered: the job is on paper
	probed     bool // DLE EOT was asked meanwhile: its answer may still be on its way
	noReadBack bool // the device cannot send anything back
	heard      bool // DLE EOT answered: the printer is there
	offline    bool // DLE EOT's last answer said offline
	asbLeft    int  // bytes of an Automatic Status Back message still to come
}

// scan reads bytes the printer sent and reports whether one is the answer to GS r 1.
//
// A printer with Automatic Status Back switched on (ecrd never asks for it, a shop's setup
// may have) sends four bytes on its own whenever its state changes: a first byte 0xx1xx00 and
// three whose bits 4 and 7 are clear, just like GS r 1's answer. Those three are skipped, or
// paper running out mid-job would count the job as printed.
func (w *markerWait) scan(b []byte) bool {
	for _, x := range b {
		switch {
		case w.asbLeft > 0:
			w.asbLeft--
		case x&0x93 == 0x10:
			w.asbLeft = 3
		case x&0x90 == 0:
			w.answered = true
			return true
		case validStatusByte(x):
			w.heard, w.offline = true, x&0x08 != 0
		}
	}
	return false
}

// awaitMarker waits up to wait for the answer to GS r 1, asking DLE EOT 1 every probe
// interval meanwhile. An error (the connection already dropped) means the line failed or
// the caller gave up.
func (d *device) awaitMarker(ctx context.Context, c Conn, wait time.Duration) (markerWait, error) {
	end := deadline(ctx, wait)
	probeEvery := max(d.cfg.statusTimeout, 500*time.Millisecond)
	nextProbe := time.Now().Add(probeEvery)
	var w markerWait
	buf := make([]byte, 64)
	for {
		until := nextProbe
		if end.Before(until) {
			until = end
		}
		if err := setDeadline(c.SetReadDeadline, until); err != nil {
			return w, d.confirmFailed(ctx, "set deadline", err)
		}
		n, err := c.Read(buf)
		if w.scan(buf[:n]) {
			return w, nil
		}
		switch {
		case errors.Is(err, ErrNoReadBack):
			w.noReadBack = true
			return w, nil
		case err != nil && !(isTimeout(err) && ctx.Err() == nil):
			return w, d.confirmFailed(ctx, "waiting for the answer to GS r 1", err)
		case n == 0 && err == nil:
			// An empty read (a zero-length USB packet) is not an answer; do not spin on it.
			time.Sleep(10 * time.Millisecond)
		}
		now := time.Now()
		if !now.Before(end) {
			return w, nil
		}
		if !now.Before(nextProbe) {
			if err := d.probe(ctx, c); err != nil {
				return w, err
			}
			w.probed = true
			nextProbe = now.Add(probeEvery)
		}
	}
}

// probe sends DLE EOT 1 while a job waits for its confirmation. A write that flow control
// holds past status_timeout is not a failure: the printer is busy.
func (d *device) probe(ctx context.Context, c Conn) error {
	if err := setDeadline(c.SetWriteDeadline, deadline(ctx, d.cfg.statusTimeout)); err != nil {
		return d.confirmFailed(ctx, "set deadline", err)
	}
	if _, err := c.Write([]byte{0x10, 0x04, 1}); err != nil && !(isTimeout(err) && ctx.Err() == nil) {
		return d.confirmFailed(ctx, "sending DLE EOT 1", err)
	}
	return nil
}

// unanswered decides about a job whose GS r 1 was not answered within wait. A printer that has
// answered it before, a give-up and an offline printer mean the job is not on paper:
// ErrNotConfirmed. Otherwise this is the printer's first job and it does not know GS r 1: it
// is confirmed the old way from now on.
func (d *device) unanswered(ctx context.Context, wait time.Duration, w markerWait) error {
	// Learning "answers nothing" from a printer that has answered before would count a job
	// stuck in a stalled or unplugged printer as printed — and lose the receipt.
	stuck := !w.heard && d.answered.Load()
	if d.completion() == completionInOrder || ctx.Err() != nil || w.offline || stuck {
		d.drop()
		why := "no answer to GS r 1 within " + wait.String()
		switch {
		case ctx.Err() != nil:
			why = "gave up waiting for the answer to GS r 1: " + ctx.Err().Error()
		case w.offline:
			why += " (the printer says it is offline)"
		case w.heard:
			why += " (the printer answers DLE EOT: the job is stuck in it)"
		case stuck:
			why += " (the printer answered before and is silent now: stalled, off or unplugged)"
		default:
			why += " (the printer does not answer at all)"
		}
		return fmt.Errorf("%w: %s", ErrNotConfirmed, why)
	}
	if w.heard {
		d.setCompletion(completionRealtime)
	} else {
		d.setCompletion(completionSilent)
	}
	return nil
}

// Status drains stale input, then asks DLE EOT 1, 2 and 4 and decodes the three answers.
// While a job waits for its confirmation it answers at once, without asking: the printer took
// the job (it was ready), and it is printing it.
func (d *device) Status(ctx context.Context) (Status, error) {
	// Wait for the device, but answer as soon as a job holding it starts waiting for its
	// confirmation (a long job's writes still hold Status off, as before).
	for {
		if d.confirming.Load() {
			return Status{State: StateOnline, Detail: "printing: waiting for the printer to confirm the job", Completion: d.completion().String()}, nil
		}
		wctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
		err := d.lock(wctx)
		cancel()
		if err == nil {
			break
		}
		if errors.Is(err, ErrClosed) || ctx.Err() != nil {
			if ctx.Err() != nil {
				return Status{}, fmt.Errorf("printer %s: waiting for the device: %w", d.uri, ctx.Err())
			}
			return Status{}, err
		}
	}
	defer d.unlock()
	c, err := d.connect(ctx)
	if err != nil {
		return Status{}, err
	}
	st, err := d.query(ctx, c)
	st.Completion = d.completion().String()
	return st, err
}

// query is Status on an open connection, with the device locked. An error means the
// connection failed (it is dropped); a printer that does not answer is StateUnknown.
func (d *device) query(ctx context.Context, c Conn) (Status, error) {
	stop := context.AfterFunc(ctx, func() { c.SetReadDeadline(time.Now()); c.SetWriteDeadline(time.Now()) })
	defer stop()

	fail := func(what string, err error) (Status, error) {
		if ctxErr := ctx.Err(); ctxErr != nil {
			// The caller gave up; the device is not known to be broken, but half a query may be
			// in flight, so start clean next time anyway.
			err = ctxErr
		}
		d.drop()
		return Status{}, fmt.Errorf("printer: status of %s: %s: %w", d.uri, what, err)
	}
	unknown := func(detail string) (Status, error) { return Status{State: StateUnknown, Detail: detail}, nil }

	// An answer left over from an earlier query that timed out, or bytes the printer pushed on
	// its own, would otherwise be read as the answer to this one.
	if err := d.drainInput(ctx, c); err != nil {
		if errors.Is(err, ErrNoReadBack) {
			return unknown(err.Error())
		}
		return fail("draining input", err)
	}
	d.settled = false // until all three answers are in
	var answers [3]byte
	buf := make([]byte, 1)
	for i, n := range statusQueries {
		if err := setDeadline(c.SetWriteDeadline, deadline(ctx, d.cfg.statusTimeout)); err != nil {
			return fail("set deadline", err)
		}
		if _, err := c.Write([]byte{0x10, 0x04, n}); err != nil {
			if isTimeout(err) && ctx.Err() == nil {
				// Flow control is holding the line (a busy or switched-off serial printer): the
				// device is there but says nothing. Start clean next time, the query may be stuck.
				d.drop()
				return unknown(fmt.Sprintf("DLE EOT %d not accepted within %v (flow control holding the line)", n, d.cfg.statusTimeout))
			}
			return fail(fmt.Sprintf("sending DLE EOT %d", n), err)
		}
		if err := setDeadline(c.SetReadDeadline, deadline(ctx, d.cfg.statusTimeout)); err != nil {
			return fail("set deadline", err)
		}
		got, err := c.Read(buf)
		switch {
		case errors.Is(err, ErrNoReadBack):
			return unknown(err.Error())
		case isTimeout(err) && ctx.Err() == nil, got == 0 && err == nil:
			return unknown(fmt.Sprintf("no answer to DLE EOT %d within %v", n, d.cfg.statusTimeout))
		case err != nil:
			return fail(fmt.Sprintf("reading answer to DLE EOT %d", n), err)
		}
		answers[i] = buf[0]
	}
	d.answered.Store(true)
	st, err := decodeStatus(answers)
	d.settled = err == nil // answers that do not decode may be out of step with the questions
	if err != nil {
		// A device that answers garbage is reachable but not understood: try it, do not block the spool.
		return unknown(err.Error())
	}
	return st, nil
}

// settledWindow is how long a drain listens on a settled line: only for bytes already
// buffered. Not zero: a read whose deadline has passed returns without looking.
const settledWindow = 2 * time.Millisecond

// drainInput reads and discards whatever arrives within drainWindow of the last byte (or
// settledWindow on a settled line), up to a cap, so a printer that chatters without end cannot
// keep Status here forever.
func (d *device) drainInput(ctx context.Context, c Conn) error {
	window := d.drainWindow
	if d.settled {
		window = settledWindow
	}
	buf := make([]byte, 256)
	for total := 0; total < 64<<10; {
		if err := setDeadline(c.SetReadDeadline, deadline(ctx, window)); err != nil {
			return err
		}
		n, err := c.Read(buf)
		total += n
		if n > 0 {
			window = d.drainWindow // bytes nobody asked for: listen for the rest of them
		}
		if isTimeout(err) && ctx.Err() == nil {
			return nil
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
	}
	return nil
}

// Close waits for a Print in progress (bounded by write_timeout per chunk) rather than cutting
// a job in half, then closes the transport.
func (d *device) Close() error {
	d.sem <- struct{}{}
	defer d.unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	if d.c == nil {
		return nil
	}
	err := d.c.Close()
	d.c = nil
	return err
}
