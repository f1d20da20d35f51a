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
	asJSON := fs.Bool("json", false, "print the status document (GET /v1/status) as JSON")
	if err := parse(fs, args, true); err != nil {
		return err
	}
	// One document, one rule: the text shows the fields of GET /v1/status, and both forms exit 0
	// only when the till can take a payment and print its receipt now: the document says "ok"
	// and the printer is not known to be unable to print (docs/operations.md, "ecrd status
	// --json"). A printer unplugged a minute ago is not "degraded" yet (--health-printer-grace),
	// but a technician who runs `ecrd status` must see it fail.
	code, body, err := call(socketClient(*socket, 15*time.Second), http.MethodGet, "/v1/status")
	var st api.Status
	switch {
	case err != nil:
		if *asJSON {
			// A script reading --json gets a document whatever happens.
			b, _ := json.Marshal(map[string]string{"status": "unreachable", "error": err.Error()})
			fmt.Fprintf(stdout, "%s\n", b)
		}
		return err
	case code != http.StatusOK || json.Unmarshal(body, &st) != nil:
		return fmt.Errorf("daemon answered %d %q", code, bytes.TrimSpace(body))
	}
	if *asJSON {
		stdout.Write(bytes.TrimSpace(body))
		fmt.Fprintln(stdout)
	} else {
		writeStatus(stdout, st)
	}
	switch {
	case st.Health != "ok":
		return errQuiet
	case st.Printer.State != "online" && st.Printer.State != "paper_near_end" && st.Printer.State != "unknown":
		return errQuiet
	}
	return nil
}

// writeStatus is the status document for a technician: the same fields as --json.
func writeStatus(w io.Writer, st api.Status) {
	when := func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") }
	fmt.Fprintf(w, "daemon:   %s\n", st.Health)
	for _, p := range st.Problems {
		fmt.Fprintf(w, "problem:  %s\n", p.Message)
	}
	fmt.Fprintf(w, "version:  %s, up %s\n", st.Version, time.Duration(st.UptimeSeconds)*time.Second)
	if env := st.Secupay.Environment; env != "" {
		fmt.Fprintf(w, "secupay:  %s (%s)\n", env, environmentWords(env))
	}
	p := st.Printer
	fmt.Fprintf(w, "printer:  %s %s", p.URI, p.State)
	if p.Detail != "" {
		fmt.Fprintf(w, " (%s)", p.Detail)
	}
	fmt.Fprintf(w, " since %s\n", when(p.Since))
	if p.Error != "" {
		fmt.Fprintf(w, "error:    %s\n", p.Error)
	}
	if p.Model != "" {
		fmt.Fprintf(w, "model:    %s", p.Model)
		if p.ModelSource != "" {
			fmt.Fprintf(w, " (%s)", p.ModelSource)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "queued:   %d job(s)\n", st.Queue.Jobs)
	if st.Queue.Jobs > 0 {
		fmt.Fprintf(w, "oldest:   %s waiting\n", time.Duration(st.Queue.OldestAgeSeconds*float64(time.Second)).Round(time.Second))
	}
	fmt.Fprintf(w, "today:    %d receipt(s) printed\n", st.ReceiptsToday)
	if st.UnfinishedCaptures > 0 {
		fmt.Fprintf(w, "captures: %d unfinished since %s\n", st.UnfinishedCaptures, when(st.UnfinishedSince))
	}
	if e := st.Secupay.LastSuccess; e != nil {
		fmt.Fprintf(w, "secupay:  last success %s (%s)\n", when(e.At), e.Op)
	}
	if e := st.Secupay.LastError; e != nil {
		fmt.Fprintf(w, "secupay:  last error %s (%s): %s\n", when(e.At), e.Op, e.Error)
	}
	if !st.Secupay.TokenExpires.IsZero() {
		fmt.Fprintf(w, "token:    expires %s\n", when(st.Secupay.TokenExpires))
	}
	if da := st.DeviceAuthorization; da != nil {
		fmt.Fprintf(w, "secupay:  device not yet authorised: enter code %s at %s\n", da.UserCode, da.VerificationURL)
	}
}
