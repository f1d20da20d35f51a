package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// defaultEnvFile is where the package keeps the daemon's settings (systemd's EnvironmentFile).
const defaultEnvFile = "/etc/ecrd/ecrd.env"

// cmdPair prints what an administrator pastes into a browser POS's settings: the browser
// listener's URL and its token. The settings are the daemon's: a flag, else the ECRD_
// variable, else /etc/ecrd/ecrd.env — so that on a till it needs no arguments.
func cmdPair(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("pair", stderr)
	envFile := fs.String("env-file", defaultEnvFile, "the daemon's settings, read for ECRD_HTTP_LISTEN, ECRD_HTTP_TOKEN_FILE and ECRD_ALLOW_ORIGIN unless a flag or the environment sets them")
	var b browserFlags
	b.register(fs)
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: ecrd pair [flags]\n\nPrints the browser listener's URL and token for a POS that runs in a browser.\n\n")
		fs.PrintDefaults()
	}
	if err := parse(fs, args, true); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if err := settingsFromFile(fs, *envFile, set, set["env-file"]); err != nil {
		return err
	}
	if b.listen == "" {
		return fmt.Errorf("the browser listener is not configured: set ECRD_HTTP_LISTEN (e.g. 127.0.0.1:8765), ECRD_HTTP_TOKEN_FILE and ECRD_ALLOW_ORIGIN in %s, then systemctl restart ecrd", *envFile)
	}
	if loopback, err := loopbackAddr(b.listen); err != nil || !loopback {
		return fmt.Errorf("ECRD_HTTP_LISTEN=%q is not a loopback address with a port; the daemon refuses it too", b.listen)
	}
	host, port, _ := net.SplitHostPort(b.listen)
	if port == "0" {
		return fmt.Errorf("ECRD_HTTP_LISTEN=%q has no fixed port: a POS cannot be told where to call", b.listen)
	}
	if b.tokenFile == "" {
		return fmt.Errorf("ECRD_HTTP_LISTEN is set but ECRD_HTTP_TOKEN_FILE is not (in %s): the daemon does not start so", *envFile)
	}
	path := credentialPath(b.tokenFile)
	if !strings.Contains(path, "/") {
		// A bare name is a systemd credential of the unit, read from beside the env file.
		path = filepath.Join(filepath.Dir(*envFile), path)
	}
	tok, err := readHTTPToken(path)
	if err != nil {
		return fmt.Errorf("the listener's token: %w (as root, or in the ecrd-pos group)", err)
	}
	url := "http://" + net.JoinHostPort(host, port)
	fmt.Fprintf(stdout, "url:     %s\ntoken:   %s\norigins: %s\n", url, tok, orNone(b.origins.String()))
	if len(b.origins.list) == 0 {
		fmt.Fprintln(stderr, "ecrd pair: no ECRD_ALLOW_ORIGIN: the daemon refuses every browser page; add the POS page's origin (scheme://host[:port])")
	}
	if problem := probeListener(url, tok); problem != "" {
		fmt.Fprintf(stderr, "ecrd pair: %s\n", problem)
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// settingsFromFile sets the listener's flags not set yet from the env file. A missing file is
// an error only when it was named.
func settingsFromFile(fs *flag.FlagSet, path string, set map[string]bool, named bool) error {
	vars, err := readEnvFile(path)
	if errors.Is(err, os.ErrNotExist) && !named {
		return nil
	}
	if err != nil {
		return err
	}
	for _, name := range []string{"http-listen", "http-token-file", "allow-origin"} {
		if v, ok := vars[envName(name)]; ok && !set[name] {
			if err := fs.Set(name, v); err != nil {
				return fmt.Errorf("%s: %s=%q: %v", path, envName(name), v, err)
			}
		}
	}
	return nil
}

// readEnvFile reads KEY=VALUE lines as systemd's EnvironmentFile= does for the simple cases
// the package's file has: comments (# or ;), blank lines, values in single or double quotes.
func readEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	vars := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		vars[strings.TrimSpace(k)] = v
	}
	return vars, sc.Err()
}

// probeListener asks the listener's /healthz with the token, as a POS would, and says what is
// wrong, or "" when it answers.
func probeListener(url, tok string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/healthz", nil)
	if err != nil {
		return err.Error()
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err != nil {
		return fmt.Sprintf("the listener does not answer (%v): is ecrd running with these settings? systemctl restart ecrd", err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized {
		return "the listener refuses this token: the file changed since ecrd started; systemctl restart ecrd"
	}
	return ""
}
