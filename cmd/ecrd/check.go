package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ecrd-pos/ecrd/printer"
	"github.com/ecrd-pos/ecrd/secupay"
)

// `ecrd serve --check` validates a configuration before a restart, as `nginx -t` or
// `sshd -t` do: with the same flags and environment as the daemon, it runs what start-up
// checks and looks at what start-up would only meet later (the printer's place on this
// machine, the state directory), prints one line per finding, and exits 0, or 2 when the
// daemon would refuse to start. Start-up refuses exactly the findings marked "error".

// finding is one line of `ecrd serve --check`.
type finding struct {
	level   string // "ok", "warning" or "error"
	setting string // the flag it is about
	msg     string
}

// errCheckFailed: --check found what start-up refuses; the findings were printed.
var errCheckFailed = errors.New("configuration refused")

// withoutCheckFlag removes --check (or -check) from args. It is a mode of `ecrd serve`, not a
// setting: no ECRD_CHECK variable may turn a daemon into a checker.
func withoutCheckFlag(args []string) ([]string, bool) {
	out := make([]string, 0, len(args))
	check := false
	for i, a := range args {
		if a == "--" {
			out = append(out, args[i:]...)
			break
		}
		if a == "--check" || a == "-check" || a == "--check=true" {
			check = true
			continue
		}
		out = append(out, a)
	}
	return out, check
}

// serveSettingsFromFile sets every flag of flags that neither the command line nor the
// environment set from the env file at path, as systemd's EnvironmentFile= would have, so that
// `sudo ecrd serve --check` on a till checks what the unit starts with. It returns the finding
// that says which file was read. A missing file is an error only when it was named.
func serveSettingsFromFile(flags *flag.FlagSet, path string) (finding, error) {
	set := map[string]bool{}
	flags.Visit(func(f *flag.Flag) { set[f.Name] = true })
	vars, err := readEnvFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist) && !set["env-file"]:
		return finding{"ok", "--env-file", path + " does not exist: the flags and the environment only"}, nil
	case err != nil:
		return finding{}, fmt.Errorf("%w: --env-file: %v", errUsage, err)
	}
	var bad []string
	flags.VisitAll(func(f *flag.Flag) {
		v, ok := vars[envName(f.Name)]
		if !ok || set[f.Name] || f.Name == "env-file" {
			return
		}
		if err := flags.Set(f.Name, v); err != nil {
			bad = append(bad, fmt.Sprintf("%s=%q: %v", envName(f.Name), v, err))
		}
	})
	if len(bad) > 0 {
		// The daemon refuses such a value at start as a usage error (exit 2) too.
		return finding{"error", "--env-file", path + ": " + strings.Join(bad, "; ")}, nil
	}
	return finding{"ok", "--env-file", path + " read"}, nil
}

// asTheUnit resolves a bare credential name (ECRD_TOKEN_FILE=token) where the unit's
// LoadCredential= takes it from, beside the env file (/etc/ecrd/token), when this is not the
// unit (no $CREDENTIALS_DIRECTORY): a root shell then checks the file the daemon will be given,
// not a "token" in the current directory. ecrd pair resolves it the same way.
func asTheUnit(cfg serveConfig, credDir string) serveConfig {
	if os.Getenv("CREDENTIALS_DIRECTORY") != "" {
		return cfg
	}
	for _, p := range []*string{&cfg.tokenFile, &cfg.oauthSecretFile} {
		if *p != "" && !strings.Contains(*p, "/") {
			*p = filepath.Join(credDir, *p)
		}
	}
	return cfg
}

// checkServe runs every check and prints the findings to w, read (the env file's) first.
func checkServe(cfg serveConfig, read finding, w io.Writer) error {
	refused := false
	for _, f := range append([]finding{read}, serveFindings(cfg)...) {
		fmt.Fprintf(w, "%-7s  %s: %s\n", f.level, f.setting, f.msg)
		refused = refused || f.level == "error"
	}
	if refused {
		return errCheckFailed
	}
	return nil
}

// serveFindings checks cfg without starting anything: no socket, no lock, no printer opened,
// no call to secupay.
func serveFindings(cfg serveConfig) []finding {
	var out []finding
	add := func(level, setting, format string, args ...any) {
		out = append(out, finding{level, setting, fmt.Sprintf(format, args...)})
	}
	errText := func(err error) string {
		return strings.TrimPrefix(strings.TrimPrefix(err.Error(), errUsage.Error()+": "), "secupay: ")
	}
	if _, err := cfg.check(); err != nil {
		add("error", "settings", "%s", errText(err))
	}

	if cfg.secupayURL != "" {
		env := secupay.Environment(cfg.secupayURL)
		if _, err := secupay.NewClient(secupay.Config{BaseURL: cfg.secupayURL, Tokens: secupay.NewFileToken(os.DevNull)}); err != nil {
			add("error", "--secupay-url", "%s", errText(err))
		} else {
			add("ok", "--secupay-url", "%s: %s", cfg.secupayURL, environmentWords(env))
		}
		if _, _, err := tokenSource(cfg, zap.NewNop()); err != nil {
			add("error", "token", "%s", errText(err))
		} else if cfg.tokenFile != "" {
			add("ok", "--token-file", "%s is readable and holds a token", credentialPath(cfg.tokenFile))
		} else {
			add("ok", "--oauth-client-id", "%s (%s grant)", cfg.oauthClientID, cfg.oauthGrant)
		}
	}

	if cfg.printerURI != "" {
		problems := printer.Check(cfg.printerURI)
		for _, p := range problems {
			level := "warning"
			if p.Fatal {
				level = "error"
			}
			add(level, "--printer", "%s", strings.TrimPrefix(p.Error(), "printer: "))
		}
		if len(problems) == 0 {
			add("ok", "--printer", "%s", cfg.printerURI)
		}
	}

	if err := stateDirWritable(cfg.stateDir); err != nil {
		add("error", "--state-dir", "%v", err)
	} else {
		add("ok", "--state-dir", "%s", cfg.stateDir)
	}
	return out
}

// environmentWords says which secupay system an environment is, for a technician.
func environmentWords(env string) string {
	switch env {
	case secupay.EnvLive:
		return "secupay's live system: real payments"
	case secupay.EnvTesting:
		return "secupay's testing system: no real money moves"
	case secupay.EnvLocal:
		return "a secupay fake on this machine"
	}
	return "a host ecrd does not know as secupay's (a proxy?)"
}

// stateDirWritable says whether the daemon can keep its state in dir: dir is a directory it
// may write, or does not exist yet under one it may.
func stateDirWritable(dir string) error {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if errors.Is(err, fs.ErrNotExist) && d != filepath.Dir(d) {
			continue // created at start
		}
		switch {
		case err != nil:
			return err
		case !fi.IsDir():
			return fmt.Errorf("%s is not a directory", d)
		}
		if err := unix.Access(d, unix.W_OK|unix.X_OK); err != nil {
			return fmt.Errorf("%s: %w", d, err)
		}
		return nil
	}
}
