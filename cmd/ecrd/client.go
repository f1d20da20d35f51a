package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"time"

	"github.com/ecrd-pos/ecrd/api"
)

// socketClient is an HTTP client that dials the daemon's Unix socket.
func socketClient(path string, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", path)
			},
		},
	}
}

// call sends one request to the daemon and returns the status and the body.
func call(c *http.Client, method, path string) (int, []byte, error) {
	req, err := http.NewRequest(method, "http://ecrd"+path, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, unreachable(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, err
}

// unreachable says why the daemon's socket could not be reached, and what a technician does
// about it.
func unreachable(err error) error {
	path := "the socket"
	var op *net.OpError
	if errors.As(err, &op) && op.Addr != nil {
		path = op.Addr.String()
	}
	var hint string
	switch {
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		hint = fmt.Sprintf("this user may not use %s: add it to the ecrd-pos group (sudo usermod -aG ecrd-pos $USER, then log in again)", path)
	case errors.Is(err, syscall.ENOENT):
		hint = fmt.Sprintf("no socket at %s: is ecrd installed and its socket started? (systemctl status ecrd.socket ecrd.service; another path: --socket)", path)
	case errors.Is(err, syscall.ECONNREFUSED):
		hint = fmt.Sprintf("nothing answers on %s: systemctl status ecrd.socket ecrd.service", path)
	default:
		hint = "systemctl status ecrd.service; journalctl -u ecrd"
	}
	return fmt.Errorf("daemon not reachable: %w\nhint: %s", err, hint)
}

func cmdCapture(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("capture", stderr)
	socket := fs.String("socket", "/run/ecrd/ecrd.sock", "the daemon's socket")
	timeout := fs.Duration("timeout", 3*time.Minute, "give up waiting for the daemon after this long")
	if err := parse(fs, args, true); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: need exactly one transaction id (STX_…)", errUsage)
	}
	// The id is escaped so that whatever was typed reaches the daemon's validation intact.
	status, body, err := call(socketClient(*socket, *timeout), http.MethodPost,
		"/v1/transactions/"+url.PathEscape(fs.Arg(0))+"/cash")
	if err != nil {
		return err
	}
	stdout.Write(bytes.TrimSpace(body))
	fmt.Fprintln(stdout)
	if status != http.StatusOK {
		return errQuiet
	}
	return nil
}

func cmdStatus(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("status", stderr)
	socket := fs.String("socket", "/run/ecrd/ecrd.sock", "the daemon's socket")
	asJSON := fs.Bool("json", false, "print the status document (GET /v1/status) as JSON; exit 1 unless its status is ok")
	if err := parse(fs, args, true); err != nil {
		return err
	}
	c := socketClient(*socket, 15*time.Second)
	if *asJSON {
		return statusJSON(c, stdout)
	}
	_, health, err := call(c, http.MethodGet, "/healthz")
	if err != nil {
		return err
	}
	_, prn, err := call(c, http.MethodGet, "/v1/printer")
	if err != nil {
		return err
	}
	var h map[string]any
	var p struct {
		URI    string `json:"uri"`
		Status struct {
			State, Detail, Completion, Model string
			ModelSource                      string `json:"model_source"`
		} `json:"status"`
		Error  string `json:"error"`
		Queued int    `json:"queued"`
	}
	if err := json.Unmarshal(health, &h); err != nil {
		return fmt.Errorf("daemon answered %q: %w", health, err)
	}
	if err := json.Unmarshal(prn, &p); err != nil {
		return fmt.Errorf("daemon answered %q: %w", prn, err)
	}
	fmt.Fprintf(stdout, "daemon:   %v\n", h["status"])
	if probs, ok := h["problems"].([]any); ok {
		for _, p := range probs {
			if m, ok := p.(map[string]any); ok {
				fmt.Fprintf(stdout, "problem:  %v\n", m["message"])
			}
		}
	}
	fmt.Fprintf(stdout, "printer:  %s %s", p.URI, p.Status.State)
	if p.Status.Detail != "" {
		fmt.Fprintf(stdout, " (%s)", p.Status.Detail)
	}
	if p.Status.Model != "" {
		fmt.Fprintf(stdout, "\nmodel:    %s (%s)", p.Status.Model, p.Status.ModelSource)
	}
	if p.Status.Completion != "" {
		fmt.Fprintf(stdout, "\nprinted:  confirmed by %s", p.Status.Completion)
	}
	fmt.Fprintf(stdout, "\nqueued:   %d job(s)\n", p.Queued)
	statusDetails(c, stdout)
	if da, ok := h["device_authorization"].(map[string]any); ok {
		fmt.Fprintf(stdout, "secupay:  device not yet authorised: enter code %v at %v\n", da["user_code"], da["verification_url"])
	}
	switch p.Status.State {
	case "online", "paper_near_end", "unknown":
		return nil
	}
	return errQuiet
}

// statusJSON prints the daemon's status document for scripts (docs/operations.md, "ecrd status
// --json"): exit 0 only when the daemon says "ok".
func statusJSON(c *http.Client, stdout io.Writer) error {
	code, body, err := call(c, http.MethodGet, "/v1/status")
	if err != nil {
		return err
	}
	var st struct {
		Status string `json:"status"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &st) != nil {
		return fmt.Errorf("daemon answered %d %q", code, bytes.TrimSpace(body))
	}
	stdout.Write(bytes.TrimSpace(body))
	fmt.Fprintln(stdout)
	if st.Status != "ok" {
		return errQuiet
	}
	return nil
}

// statusDetails adds what GET /v1/status knows to the human status; a daemon too old to
// have it is shown without.
func statusDetails(c *http.Client, stdout io.Writer) {
	code, body, err := call(c, http.MethodGet, "/v1/status")
	if err != nil || code != http.StatusOK {
		return
	}
	var st api.Status
	if json.Unmarshal(body, &st) != nil {
		return
	}
	when := func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") }
	fmt.Fprintf(stdout, "version:  %s, up %s\n", st.Version, time.Duration(st.UptimeSeconds)*time.Second)
	fmt.Fprintf(stdout, "since:    printer %s since %s\n", st.Printer.State, when(st.Printer.Since))
	if st.Printer.Model != "" {
		fmt.Fprintf(stdout, "model:    %s\n", st.Printer.Model)
	}
	if st.Queue.Jobs > 0 {
		fmt.Fprintf(stdout, "oldest:   %s waiting\n", time.Duration(st.Queue.OldestAgeSeconds*float64(time.Second)).Round(time.Second))
	}
	fmt.Fprintf(stdout, "today:    %d receipt(s) printed\n", st.ReceiptsToday)
	if st.UnfinishedCaptures > 0 {
		fmt.Fprintf(stdout, "captures: %d unfinished since %s\n", st.UnfinishedCaptures, when(st.UnfinishedSince))
	}
	if e := st.Secupay.LastSuccess; e != nil {
		fmt.Fprintf(stdout, "secupay:  last success %s (%s)\n", when(e.At), e.Op)
	}
	if e := st.Secupay.LastError; e != nil {
		fmt.Fprintf(stdout, "secupay:  last error %s (%s): %s\n", when(e.At), e.Op, e.Error)
	}
	if !st.Secupay.TokenExpires.IsZero() {
		fmt.Fprintf(stdout, "token:    expires %s\n", when(st.Secupay.TokenExpires))
	}
}
