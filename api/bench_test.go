package api

import (
	"fmt"
	"io"
	"net/http"
	"testing"
)

// BenchmarkCaptureOverSocket is one POS capture end to end: HTTP over the Unix socket, the
// journal's intent and answer (fsync), start/cash at the loopback fake, render, spool (fsync)
// and the file printer (fsync) — the answer comes after the receipt printed. Every iteration
// captures a new transaction, so nothing is a replay. Allocations are the test process's:
// client, server and fake together.
func BenchmarkCaptureOverSocket(b *testing.B) {
	e := newAPI(b)
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
	if n := e.fake.Calls().TotalStartCash; n != i {
		b.Fatalf("%d start/cash calls for %d captures", n, i)
	}
}
