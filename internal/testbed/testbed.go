// Package testbed is the one place tests wire what a capture service runs against: the
// loopback secupay fake, a token file, a file printer, and a state directory whose
// database (package store) holds a running spool. capture's own tests and api's wire their service
// from it (capture cannot be imported here: its internal tests use this package). Only tests
// import it; deps_test.go holds the daemon to that.
package testbed

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/ecrd-pos/ecrd/printer"
	"github.com/ecrd-pos/ecrd/secupay"
	"github.com/ecrd-pos/ecrd/secupay/secupaytest"
	"github.com/ecrd-pos/ecrd/spool"
	"github.com/ecrd-pos/ecrd/store"
)

// Till is one till's parts outside the capture service.
type Till struct {
	Fake        *secupaytest.Server // secupay
	TokenFile   string              // holds Fake's token
	Tokens      *secupay.FileToken  // reads TokenFile
	PrinterFile string              // the file printer's output (PrinterFile+".status" sets its state)
	State       string              // the state directory
	Store       *store.Store        // State's database
	Spool       *spool.Spool        // in State/spool, printing to PrinterFile
	// StopSpool stops the spool's worker and returns once it has; the test's end does too.
	StopSpool func()
}

// Options say how a Till differs from the default one. The zero Options are that: a new
// fake with the seed transaction that creates any other id it is asked for, a new temporary
// state directory, a spool polling every 5 ms and backing off at most 100 ms after a failed
// write (a till's backs off up to 30 s, longer than a test waits for a receipt), no logger.
type Options struct {
	Fake   *secupaytest.Server // nil: a new one, as above
	State  string              // "": a new temporary directory
	Logger *zap.Logger         // the spool's logger (nil: none)
}

// New wires a Till; everything it started stops when the test ends.
func New(tb testing.TB, opt Options) *Till {
	tb.Helper()
	t := &Till{Fake: opt.Fake, State: opt.State}
	if t.Fake == nil {
		t.Fake = secupaytest.NewServer()
		tb.Cleanup(t.Fake.Close)
		t.Fake.AddSeed()
		t.Fake.SetAutoCreate(true)
	}
	if t.State == "" {
		t.State = tb.TempDir()
	}
	// The token file and the printer are configuration and a device, not state: elsewhere.
	dir := tb.TempDir()
	t.TokenFile = filepath.Join(dir, "token")
	if err := os.WriteFile(t.TokenFile, []byte(t.Fake.Token()), 0o600); err != nil {
		tb.Fatal(err)
	}
	t.Tokens = secupay.NewFileToken(t.TokenFile)
	t.PrinterFile = filepath.Join(dir, "printer.bin")
	p, err := printer.Open("file:" + t.PrinterFile)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.Close() })
	if t.Store, err = store.Open(t.State); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { t.Store.Close() })
	logger := opt.Logger
	if logger == nil {
		logger = zap.NewNop()
	}
	if t.Spool, err = spool.Open(t.Store, p, spool.Options{Poll: 5 * time.Millisecond, RetryMax: 100 * time.Millisecond, Logger: logger}); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { t.Spool.Run(ctx); close(done) }()
	t.StopSpool = func() { cancel(); <-done }
	tb.Cleanup(t.StopSpool)
	return t
}

// Secupay is a client configuration for the fake: its URL, the token file, a 2 s timeout.
func (t *Till) Secupay() secupay.Config {
	return secupay.Config{BaseURL: t.Fake.URL, Tokens: t.Tokens, Timeout: 2 * time.Second}
}

// Receipts counts the jobs on the printer's paper: each begins with ESC @ ESC R 0.
func (t *Till) Receipts(tb testing.TB) int {
	tb.Helper()
	b, err := os.ReadFile(t.PrinterFile)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		tb.Fatal(err)
	}
	return bytes.Count(b, []byte{0x1b, 0x40, 0x1b, 0x52, 0x00})
}
