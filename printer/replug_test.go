package printer_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/internal/wait"
	"github.com/ecrd-pos/ecrd/printer"
	"github.com/ecrd-pos/ecrd/printer/printertest"
	"github.com/ecrd-pos/ecrd/spool"
	"github.com/ecrd-pos/ecrd/store"
)

func receipt(tag byte, n int) []byte {
	job := []byte{0x1b, '@'}
	for len(job) < n-5 {
		job = append(job, tag)
	}
	return append(job, '\n', 0x1d, 'V', 66, 3)
}

// TestUnconfirmedJobPrintsAgainWholeAfterReplug is "printed means on paper" end to end, with
// the real spool: a printer takes a whole job into its buffer, confirms nothing (while still
// answering DLE EOT "online", which the old rule took for printed), and is unplugged with the
// job still in its buffer. The job is not reported printed, and after the replug it prints
// again, whole, exactly once.
func TestUnconfirmedJobPrintsAgainWholeAfterReplug(t *testing.T) {
	sim := printertest.NewTCP(t)
	p, err := printer.Open(sim.URI("status_timeout=200ms&confirm_timeout=2s&write_timeout=2s"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sp, err := spool.Open(st, p, spool.Options{Poll: 20 * time.Millisecond, RetryMax: 50 * time.Millisecond,
		StatusTimeout: 2 * time.Second, PrintTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { sp.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	state := func(id string) spool.State {
		in, err := sp.Job(id)
		if err != nil {
			t.Fatal(err)
		}
		return in.State
	}

	first := receipt('A', 1200)
	if _, err := sp.Add(spool.Job{ID: "first", Kind: "receipt", Data: first}); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, wait.Long, "the first job printed", func() bool { return state("first") == spool.StatePrinted })

	sim.Hold()
	second := receipt('B', 3000)
	if _, err := sp.Add(spool.Job{ID: "second", Kind: "receipt", Data: second}); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, wait.Long, "the second job in the printer's buffer", func() bool { return sim.Buffered() >= len(second) })
	queried := len(sim.Queries())
	// The printer has every byte and answers DLE EOT (online) behind them: the old rule
	// would have said printed now.
	wait.Until(t, wait.Long, "a DLE EOT answered behind the job", func() bool { return len(sim.Queries()) > queried })
	if s := state("second"); s == spool.StatePrinted {
		t.Fatal("the job counts as printed while it is only in the printer's buffer")
	}
	sim.Unplug() // the job in the buffer is lost
	wait.Until(t, wait.Long, "the failed attempt to be recorded", func() bool {
		in, _ := sp.Job("second")
		return in.Attempts >= 1
	})
	if s := state("second"); s == spool.StatePrinted {
		t.Fatal("a job lost with the printer's power counts as printed")
	}
	if paper := sim.Paper(); !bytes.Equal(paper, first) {
		t.Fatalf("paper holds %d bytes before the replug, want only the first job", len(paper))
	}

	sim.Replug()
	sim.Release()
	wait.Until(t, wait.Long, "the second job printed after the replug", func() bool { return state("second") == spool.StatePrinted })
	want := append(append([]byte{}, first...), second...)
	if paper := sim.Paper(); !bytes.Equal(paper, want) {
		t.Fatalf("paper holds %d bytes (%d B's), want the first job then the second once, whole (%d bytes)",
			len(paper), bytes.Count(paper, []byte{'B'}), len(want))
	}
}
