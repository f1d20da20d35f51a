package api

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/capture"
	"github.com/ecrd-pos/ecrd/printer"
	"github.com/ecrd-pos/ecrd/receipt"
	"github.com/ecrd-pos/ecrd/secupay"
	"github.com/ecrd-pos/ecrd/secupay/secupaytest"
	"github.com/ecrd-pos/ecrd/spool"
)

// newBenchAPI is newAPI for benchmarks: the same wiring (a real Unix socket, the loopback
// secupay fake, a real journal and spool, a file printer) under a testing.TB.
func newBenchAPI(tb testing.TB) *apiEnv {
	tb.Helper()
	fake := secupaytest.NewServer()
	tb.Cleanup(fake.Close)
	fake.SetAutoCreate(true)
	dir := tb.TempDir()
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte(fake.Token()), 0o600); err != nil {
		tb.Fatal(err)
	}
	pf := filepath.Join(dir, "printer.bin")
	p, err := printer.Open("file:" + pf)
	if err != nil {
		tb.Fatal(err)
	}
	sp, err := spool.Open(filepath.Join(dir, "spool"), p, spool.Options{Poll: 5 * time.Millisecond})
	if err != nil {
		tb.Fatal(err)
	}
	j, err := capture.OpenJournal(filepath.Join(dir, "journal"))
	if err != nil {
		tb.Fatal(err)
	}
	svc := capture.New(capture.Config{Journal: j, Spool: sp, Render: receipt.Options{Columns: 32}, PrintWait: 3 * time.Second,
		Secupay: &secupay.Client{BaseURL: fake.URL, Tokens: secupay.NewFileToken(tok), Timeout: 2 * time.Second}})
	sock := filepath.Join(dir, "ecrd.sock")
	ln, err := Listen(sock)
	if err != nil {
		tb.Fatal(err)
	}
	srv := NewServer(Handler(Config{Capture: svc, Spool: sp}), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { sp.Run(ctx); done <- struct{}{} }()
	go func() { srv.Serve(ln); done <- struct{}{} }()
	tb.Cleanup(func() { srv.Close(); cancel(); <-done; <-done })
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	return &apiEnv{fake: fake, c: c, socket: sock, printerFile: pf}
}

// BenchmarkCaptureOverSocket is one POS capture end to end: HTTP over the Unix socket, the
// journal's intent and answer (fsync), start/cash at the loopback fake, render, spool (fsync)
// and the file printer (fsync) — the answer comes after the receipt printed. Every iteration
// captures a new transaction, so nothing is a replay. Allocations are the test process's:
// client, server and fake together.
func BenchmarkCaptureOverSocket(b *testing.B) {
	e := newBenchAPI(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		req, err := http.NewRequest("POST", fmt.Sprintf("http://ecrd/v1/transactions/STX_BENCH%08d/cash", i), nil)
		if err != nil {
			b.Fatal(err)
		}
		resp, err := e.c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("capture %d: status %d", i, resp.StatusCode)
		}
	}
	b.StopTimer()
	if n := e.fake.TotalStartCashCalls(); n != i {
		b.Fatalf("%d start/cash calls for %d captures", n, i)
	}
}
