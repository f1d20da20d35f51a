package printer

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/internal/wait"
	"github.com/ecrd-pos/ecrd/printer/printertest"
)

func printJob(t *testing.T, p Printer, job []byte) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return p.Print(ctx, job)
}

// TestInOrderCompletion: a job counts as printed when the printer answers GS r 1 behind it;
// once a printer has shown it answers, silence after a job is "not confirmed", even though
// DLE EOT (answered on arrival, ahead of the buffer) says all is well.
func TestInOrderCompletion(t *testing.T) {
	sim := printertest.NewTCP(t)
	p, err := Open(sim.URI("status_timeout=200ms&confirm_timeout=300ms"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	job := testJob(3000)
	if err := printJob(t, p, job); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sim.Paper(), job) || sim.Markers() != 1 {
		t.Fatalf("paper has %d bytes and %d markers answered, want the job and 1", len(sim.Paper()), sim.Markers())
	}
	if st := mustStatus(t, p, StateOnline); !strings.HasPrefix(st.Completion, "in-order") {
		t.Fatalf("Completion = %q", st.Completion)
	}

	// The printer takes the next job into its buffer and prints nothing (a jam, a roll
	// about to be changed, the power about to go).
	sim.Hold()
	errc := make(chan error, 1)
	go func() { errc <- printJob(t, p, testJob(500)) }()
	// Meanwhile Status answers at once, without sending DLE EOT into the confirmation.
	wait.Until(t, wait.Long, "the job to wait for its confirmation", func() bool { return sim.Buffered() >= 500 })
	queried := len(sim.Queries())
	wait.Until(t, wait.Long, "status while confirming", func() bool {
		st, err := p.Status(context.Background())
		return err == nil && strings.HasPrefix(st.Detail, "printing: waiting")
	})
	if len(sim.Queries()) > queried+1 { // at most the confirmation's own probe
		t.Errorf("Status sent DLE EOT while a job waited for its confirmation")
	}
	err = <-errc
	var we *WriteError
	if !errors.Is(err, ErrNotConfirmed) || !errors.As(err, &we) || we.Written != we.Total {
		t.Fatalf("Print into a held buffer = %v, want a WriteError wrapping ErrNotConfirmed with every byte written", err)
	}
	if !strings.Contains(err.Error(), "answers DLE EOT") {
		t.Errorf("the error should say the printer is alive but the job is stuck: %v", err)
	}
	if st := mustStatus(t, p, StateOnline); st.State != StateOnline {
		t.Fatal("DLE EOT still says online: exactly why it cannot confirm a job")
	}
}

// TestCompletionFallsBack: a printer that never answers GS r 1 is confirmed as before (DLE EOT
// behind the job), and one that answers nothing at all counts once written; each is learnt on
// the first job and shown in Status.
func TestCompletionFallsBack(t *testing.T) {
	for _, c := range []struct {
		name   string
		setup  func(*printertest.Sim)
		prefix string
	}{
		{"no GS r 1", func(s *printertest.Sim) { s.IgnoreInOrder() }, "real-time only"},
		{"silent", func(s *printertest.Sim) { s.IgnoreInOrder(); s.Silence() }, "none"},
	} {
		t.Run(c.name, func(t *testing.T) {
			sim := printertest.NewTCP(t)
			c.setup(sim.Sim)
			p, err := Open(sim.URI("status_timeout=100ms&confirm_timeout=300ms"))
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			for i := range 2 {
				job := testJob(100 + i)
				start := time.Now()
				if err := printJob(t, p, job); err != nil {
					t.Fatalf("job %d: %v", i, err)
				}
				if i == 1 && time.Since(start) >= 300*time.Millisecond {
					// Not a timing assertion on speed: the second job must not wait for a marker at all.
					t.Errorf("job %d waited %v for GS r 1 again after the printer showed it never answers", i, time.Since(start))
				}
			}
			wait.Until(t, wait.Long, "both jobs on paper", func() bool { return len(sim.Paper()) == 201 })
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			st, err := p.Status(ctx)
			if err != nil || !strings.HasPrefix(st.Completion, c.prefix) {
				t.Fatalf("Status = %+v, %v; want completion %q", st, err, c.prefix)
			}
		})
	}
}

// A printer that answers DLE EOT but not GS r 1 and then goes silent with a job in it
// (unplugged, jammed): the job is not confirmed and is sent again whole — the old rule counted
// a silent answer as printed, and the receipt was lost.
func TestRealtimeOnlyPrinterSilentBehindAJobIsNotConfirmed(t *testing.T) {
	sim := printertest.NewTCP(t)
	sim.IgnoreInOrder()
	p, err := Open(sim.URI("status_timeout=100ms&confirm_timeout=300ms"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := printJob(t, p, testJob(100)); err != nil { // learns: real-time only
		t.Fatal(err)
	}
	sim.Silence()
	err = printJob(t, p, testJob(120))
	var we *WriteError
	if !errors.As(err, &we) || !errors.Is(err, ErrNotConfirmed) {
		t.Fatalf("Print with DLE EOT unanswered behind the job = %v, want a WriteError wrapping ErrNotConfirmed", err)
	}
}

// A printer that answered DLE EOT before its first job, then stalls with the job in it (its
// buffer full, unplugged): nothing answers behind the job, and it is not taken for a printer
// that never answers — the job is not confirmed and is sent again whole, not counted printed
// and lost (the till test bed's power cut found it).
func TestPrinterThatAnsweredThenStallsIsNotLearntSilent(t *testing.T) {
	sim := printertest.NewTCP(t)
	p, err := Open(sim.URI("status_timeout=100ms&confirm_timeout=300ms"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	mustStatus(t, p, StateOnline) // it talks
	sim.Silence()
	sim.IgnoreInOrder()
	err = printJob(t, p, testJob(100))
	if !errors.Is(err, ErrNotConfirmed) {
		t.Fatalf("first job into a printer that went silent = %v, want ErrNotConfirmed", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if st, _ := p.Status(ctx); strings.HasPrefix(st.Completion, "none") {
		t.Fatalf("completion learnt as %q from a printer that answered before", st.Completion)
	}
}

// An Automatic Status Back message (four bytes, the last three with bits 4 and 7 clear like
// GS r 1's answer) is not the answer to GS r 1, even split across reads; the byte after it is.
func TestAutomaticStatusBackIsNotAConfirmation(t *testing.T) {
	asb := []byte{0x18, 0x0C, 0x00, 0x0F} // a status change: cover open, paper near end and out
	for split := range len(asb) + 1 {
		var w markerWait
		if w.scan(asb[:split]) || w.scan(asb[split:]) {
			t.Fatalf("split at %d: an automatic status message read as the answer to GS r 1", split)
		}
		if !w.scan([]byte{0x00}) {
			t.Fatalf("split at %d: the answer to GS r 1 after it was not seen", split)
		}
	}
	var w markerWait
	if w.scan([]byte{0x12}) || !w.heard { // a DLE EOT answer: heard, not confirmed
		t.Fatalf("a DLE EOT answer: %+v", w)
	}
}
