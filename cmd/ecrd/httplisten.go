package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"

	"go.uber.org/zap"

	"github.com/ecrd-pos/ecrd/api"
)

// browserFlags are the settings of the loopback listener for a POS that runs in a browser
// (issue 22; docs/api.md, "A POS in a browser"): the same API handler as the socket's, on a
// loopback TCP port, behind api.BrowserGate. Off unless --http-listen is set.
type browserFlags struct {
	listen    string
	origins   originList
	tokenFile string
}

func (b *browserFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&b.listen, "http-listen", "", "also serve the local API over HTTP on this loopback address, e.g. 127.0.0.1:8765, for a POS in a browser (off by default; needs --http-token-file; 'ecrd pair' prints what the POS needs)")
	fs.Var(&b.origins, "allow-origin", "an origin, scheme://host[:port], whose pages may call --http-listen, e.g. https://pos.example.com; repeat the flag, or separate several by spaces or commas (none: only clients that send no Origin, not browsers)")
	fs.StringVar(&b.tokenFile, "http-token-file", "", "file holding the bearer token every request to --http-listen must carry (not world-readable; the package makes /etc/ecrd/http-token, 0640 root:ecrd-pos)")
}

// originList is --allow-origin: repeatable, and one value may hold several origins separated
// by spaces or commas (ECRD_ALLOW_ORIGIN="https://a.example https://b.example"). Each is
// checked as it is set, so that a typo stops the daemon at start.
type originList struct {
	list    []string
	fromEnv bool
}

func (o *originList) String() string { return strings.Join(o.list, " ") }

func (o *originList) Set(s string) error {
	if o.fromEnv { // the command line replaces the environment's list
		o.list, o.fromEnv = nil, false
	}
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		canon, err := api.ParseOrigin(f)
		if err != nil {
			return err
		}
		o.list = append(o.list, canon)
	}
	return nil
}

func (o *originList) fromEnvironment() { o.fromEnv = true }

// check validates the listener's settings before the daemon touches its state directory.
func (b browserFlags) check() error {
	if b.listen == "" {
		return nil
	}
	if loopback, err := loopbackAddr(b.listen); err != nil {
		return fmt.Errorf("%w: --http-listen %q: %v", errUsage, b.listen, err)
	} else if !loopback {
		return fmt.Errorf("%w: --http-listen %q is not a loopback address: the browser listener serves this till's own browser only (127.0.0.1:PORT, [::1]:PORT or localhost:PORT)", errUsage, b.listen)
	}
	if b.tokenFile == "" {
		return fmt.Errorf("%w: --http-listen needs --http-token-file (ECRD_HTTP_TOKEN_FILE): every request to it carries that token", errUsage)
	}
	if _, err := readHTTPToken(credentialPath(b.tokenFile)); err != nil {
		return fmt.Errorf("%w: --http-token-file (ECRD_HTTP_TOKEN_FILE): %v", errUsage, err)
	}
	return nil
}

// readHTTPToken reads the listener's token: one line of printable ASCII, at least
// api.MinTokenLength long, in a regular file that others may not read or write and the group
// may not write (the package's is 0640 root:ecrd-pos: the POS's user reads it, as it may use
// the socket anyway). Stat and read go through one open file, so the mode checked is the
// mode of the file read.
func readHTTPToken(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o027 != 0 {
		return "", fmt.Errorf("%s has mode %04o: others may read it or the group may write it; chmod 0640 (or 0600) it", path, perm)
	}
	b, err := io.ReadAll(io.LimitReader(f, 4097))
	if err != nil {
		return "", err
	}
	if len(b) > 4096 {
		return "", fmt.Errorf("%s is larger than 4 KiB: not a token", path)
	}
	tok := strings.TrimSpace(string(b))
	switch {
	case tok == "":
		return "", fmt.Errorf("%s is empty", path)
	case len(tok) < api.MinTokenLength:
		return "", fmt.Errorf("%s holds %d characters; a token has at least %d (the package makes 64 hex digits)", path, len(tok), api.MinTokenLength)
	}
	for _, c := range []byte(tok) {
		if c <= ' ' || c > '~' {
			return "", fmt.Errorf("%s must hold one token: printable ASCII, no spaces or line breaks", path)
		}
	}
	return tok, nil
}

// serveBrowser opens the loopback listener, if configured, and serves h — the socket's own
// handler, so the paths, answers, body limits and render slots are the same — behind the
// gate. The server is shut down with the socket's (shutdownBrowser); the function returned
// closes it if the daemon does not start after all.
func (d *runningDaemon) serveBrowser(b browserFlags, h http.Handler) (func() error, error) {
	noop := func() error { return nil }
	if b.listen == "" {
		if b.tokenFile != "" || len(b.origins.list) > 0 {
			d.log.Warn("--http-token-file or --allow-origin set without --http-listen: no browser listener")
		}
		return noop, nil
	}
	tok, err := readHTTPToken(credentialPath(b.tokenFile))
	if err != nil {
		return nil, fmt.Errorf("%w: --http-token-file (ECRD_HTTP_TOKEN_FILE): %v", errUsage, err)
	}
	ln, err := net.Listen("tcp", b.listen)
	if err != nil {
		return nil, fmt.Errorf("browser listener: %w", err)
	}
	gate, err := api.BrowserGate(h, api.BrowserConfig{Token: tok, Origins: b.origins.list, Addr: ln.Addr().String(), Logger: d.log})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if len(b.origins.list) == 0 {
		d.log.Warn("browser listener without --allow-origin: every browser page is refused; only clients that send no Origin get in")
	}
	d.log.Info("browser listener", zap.String("address", ln.Addr().String()), zap.Strings("origins", b.origins.list))
	d.browserSrv = api.NewServer(gate, d.log)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := d.browserSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("browser listener stopped", zap.Error(err))
		}
	}()
	return d.browserSrv.Close, nil
}

// shutdownBrowser stops the browser listener as the socket's server stops: no new requests,
// captures in flight finish. The channel is closed when it has.
func (d *runningDaemon) shutdownBrowser(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if d.browserSrv != nil {
			d.browserSrv.Shutdown(ctx)
		}
	}()
	return done
}
