// Command posload is the till test bed's POS under load: it captures -n transactions one
// after the other over one keep-alive connection to ecrd's Unix socket, as a busy till's POS
// app does, and fails at the first answer that is not "ok" and printed. The memory scenario
// of make test-till runs it to read the packaged daemon's resident memory on Debian's own
// kernel after many captures. It is a test tool and never part of the package.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	socket := flag.String("socket", "/run/ecrd/ecrd.sock", "ecrd's local API socket")
	n := flag.Int("n", 1000, "captures to make")
	prefix := flag.String("prefix", "STX_LOAD", "transaction ids are PREFIX followed by a 6-digit number")
	flag.Parse()
	if err := run(*socket, *prefix, *n); err != nil {
		fmt.Fprintln(os.Stderr, "posload:", err)
		os.Exit(1)
	}
}

func run(socket, prefix string, n int) error {
	dials := 0
	c := &http.Client{
		Timeout: 2 * time.Minute,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				dials++
				var d net.Dialer
				return d.DialContext(ctx, "unix", socket)
			},
			MaxIdleConns: 1,
		},
	}
	began := time.Now()
	for i := range n {
		id := fmt.Sprintf("%s%06d", prefix, i)
		if err := capture(c, id); err != nil {
			return fmt.Errorf("capture %d of %d (%s): %w", i+1, n, id, err)
		}
	}
	d := time.Since(began)
	fmt.Printf("%d captures in %.1f s (%.0f/s) over %d connection(s)\n", n, d.Seconds(), float64(n)/d.Seconds(), dials)
	return nil
}

// capture asks ecrd to capture id and checks the answer: captured, and its receipt printed.
func capture(c *http.Client, id string) error {
	resp, err := c.Post("http://ecrd/v1/transactions/"+id+"/cash", "application/json", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	var ans struct {
		Status        string `json:"status"`
		TransactionID string `json:"transaction_id"`
		Job           struct {
			State string `json:"state"`
		} `json:"job"`
	}
	if err := json.Unmarshal(body, &ans); err != nil {
		return fmt.Errorf("answer %d %q: %w", resp.StatusCode, body, err)
	}
	if resp.StatusCode != http.StatusOK || ans.Status != "ok" || ans.TransactionID != id || ans.Job.State != "printed" {
		return fmt.Errorf("answer %d %s", resp.StatusCode, body)
	}
	return nil
}
