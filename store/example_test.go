package store_test

import (
	"fmt"
	"log"
	"os"
	"time"

	"github.com/ecrd-pos/ecrd/store"
)

// A capture's commits: the intent, flushed before start/cash is sent; secupay's answer with
// the receipt job made from it, flushed before the POS hears "captured"; the printed mark,
// not flushed (losing it prints the receipt again).
func Example() {
	dir, err := os.MkdirTemp("", "ecrd-state")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	s, err := store.Open(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	now := time.Now()
	c := &store.Capture{ID: "T-1", Phase: "intent", Unfinished: true, Attempts: 1, Created: now, Updated: now, Sent: now}
	if err := s.Flushed(func(tx *store.Tx) error { return tx.PutCapture(c) }); err != nil {
		log.Fatal(err)
	}

	c.Phase, c.Answer, c.TransID, c.PaymentMethod = "captured", []byte(`{"status":"ok"}`), "TX1", "cash"
	err = s.Flushed(func(tx *store.Tx) error {
		if err := tx.PutCapture(c); err != nil {
			return err
		}
		_, err := tx.AddJob(&store.Job{ID: "T-1/receipt", TransactionID: "T-1", Kind: "receipt",
			Data: []byte("\x1b@receipt\n"), Created: now})
		return err
	})
	if err != nil {
		log.Fatal(err)
	}

	queued, _ := s.QueuedJobs()
	fmt.Println("queued:", queued[0].ID, queued[0].Bytes, "bytes")
	if err := s.Unflushed(func(tx *store.Tx) error { return tx.MarkPrinted("T-1/receipt", time.Now(), 1) }); err != nil {
		log.Fatal(err)
	}
	j, _ := s.Job("T-1/receipt")
	fmt.Println("state:", j.State)
	flushed, unflushed := s.Commits()
	fmt.Println("commits:", flushed, "flushed,", unflushed, "unflushed")
	// Output:
	// queued: T-1/receipt 10 bytes
	// state: printed
	// commits: 2 flushed, 1 unflushed
}
