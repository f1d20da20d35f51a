package store

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

// BenchmarkCaptureCommits measures the commits of one capture as capture and spool make
// them: the intent with the steady clock's mark (flushed), secupay's answer with the receipt
// job made from it (flushed), and the job's printed mark (not flushed). The state directory
// is the test's temporary one: run it with TMPDIR on the disk of interest (an SD card).
func BenchmarkCaptureCommits(b *testing.B) {
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	answer := bytes.Repeat([]byte(`{"status":"ok","data":{"trans_id":"TX","payment_method":"cash"}}`), 16) // ~1 KB
	receipt := bytes.Repeat([]byte("\x1b@Receipt line 1234567890 EUR 12.34\n"), 57)                        // ~2 KB
	mark := []byte("steady-mark-0123456789")
	f0, u0 := s.Commits()
	i := 0
	for b.Loop() {
		i++
		id := fmt.Sprintf("bench-%08d", i)
		now := time.Now()
		c := &Capture{ID: id, Phase: "intent", Unfinished: true, Attempts: 1, Created: now, Updated: now,
			Sent: now, SentSteady: int64(i), UpdatedSteady: int64(i), SteadyClock: "boot"}
		err := s.Flushed(func(tx *Tx) error {
			if err := tx.PutCapture(c); err != nil {
				return err
			}
			return tx.PutMeta("steady", mark)
		})
		if err != nil {
			b.Fatal(err)
		}
		c.Phase, c.Answer, c.TransID, c.PaymentMethod, c.Updated = "captured", answer, "TX"+id, "cash", time.Now()
		err = s.Flushed(func(tx *Tx) error {
			if err := tx.PutCapture(c); err != nil {
				return err
			}
			_, err := tx.AddJob(&Job{ID: id + "-r", TransactionID: id, Kind: "receipt", Data: receipt, Created: now})
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Unflushed(func(tx *Tx) error { return tx.MarkPrinted(id+"-r", time.Now(), 1) }); err != nil {
			b.Fatal(err)
		}
	}
	f1, u1 := s.Commits()
	b.ReportMetric(float64(f1-f0+u1-u0)/float64(b.N), "commits/op")
	b.ReportMetric(float64(f1-f0)/float64(b.N), "flushes/op")
}
