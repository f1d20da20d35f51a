package api

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/ecrd-pos/ecrd/capture"
)

// BenchmarkListenerOverhead is what the browser listener adds to a capture: the same stubbed
// capture (no secupay, journal or printer: only the API's own work) over the Unix socket, over
// loopback TCP to the bare handler, and over loopback TCP through BrowserGate with the token
// and an allowed Origin, as a browser POS sends it. Connections are kept alive, as browsers
// and the POS's HTTP clients keep them. The difference between socket and gate is the
// listener's cost per capture; a real capture takes milliseconds (BenchmarkCaptureOverSocket).
func BenchmarkListenerOverhead(b *testing.B) {
	stub := &stubs{res: &capture.Result{TransactionID: "STX_A1", Status: "ok", TransID: "29008411", PaymentMethod: "cash",
		Job: capture.JobResult{ID: "STX_A1.receipt", State: capture.JobPrinted}}}
	h := stub.handler()

	sock := filepath.Join(b.TempDir(), "ecrd.sock")
	unixLn, err := Listen(sock)
	if err != nil {
		b.Fatal(err)
	}
	serveOn(b, unixLn, h)
	socketClient := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}

	bareLn := tcpListen(b)
	serveOn(b, bareLn, h)
	gateLn := tcpListen(b)
	gated, err := BrowserGate(h, BrowserConfig{Token: browserToken, Origins: []string{browserOrigin}, Addr: gateLn.Addr().String()})
	if err != nil {
		b.Fatal(err)
	}
	serveOn(b, gateLn, gated)
	tcpClient := &http.Client{Transport: &http.Transport{}}

	for _, c := range []struct {
		name   string
		client *http.Client
		url    string
		header http.Header
	}{
		{"socket", socketClient, "http://ecrd", nil},
		{"loopback", tcpClient, "http://" + bareLn.Addr().String(), nil},
		{"loopback+gate", tcpClient, "http://" + gateLn.Addr().String(), browserHeader(browserToken, browserOrigin)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req, err := http.NewRequest("POST", c.url+"/v1/transactions/STX_A1/cash", nil)
				if err != nil {
					b.Fatal(err)
				}
				for k, v := range c.header {
					req.Header[k] = v
				}
				resp, err := c.client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
		})
	}
}

func tcpListen(b *testing.B) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	return ln
}

// serveOn runs the API's server on ln until the benchmark ends.
func serveOn(b *testing.B, ln net.Listener, h http.Handler) {
	srv := NewServer(h, nil)
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	b.Cleanup(func() { srv.Close(); <-done })
}

// BenchmarkGateChecks is the gate's own work per request, without a network: the stubbed
// capture through the handler, and through BrowserGate with the token and an allowed Origin.
func BenchmarkGateChecks(b *testing.B) {
	stub := &stubs{res: &capture.Result{TransactionID: "STX_A1", Status: "ok",
		Job: capture.JobResult{ID: "STX_A1.receipt", State: capture.JobPrinted}}}
	h := stub.handler()
	gated, err := BrowserGate(h, BrowserConfig{Token: browserToken, Origins: []string{browserOrigin}, Addr: browserAddr})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		h      http.Handler
		header http.Header
	}{
		{"handler", h, nil},
		{"gate+handler", gated, browserHeader(browserToken, browserOrigin)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest("POST", "http://"+browserAddr+"/v1/transactions/STX_A1/cash", nil)
				for k, v := range c.header {
					req.Header[k] = v
				}
				w := httptest.NewRecorder()
				c.h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d", w.Code)
				}
			}
		})
	}
}
