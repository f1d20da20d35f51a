package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The help text (and the package's man page, made from it) lists every ECRD_ variable
// because it is generated from the flag set: a new flag cannot be left out.
func TestServeHelpListsEveryVariable(t *testing.T) {
	code, _, errs := runCLI(t, "", "serve", "-h")
	if code != 0 {
		t.Fatalf("serve -h exit %d", code)
	}
	code, out, _ := runCLI(t, "", "help")
	if code != 0 {
		t.Fatalf("help exit %d", code)
	}
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	var cfg serveConfig
	cfg.register(fs)
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		n++
		for name, text := range map[string]string{"serve -h": errs, "help": out} {
			if !strings.Contains(text, "--"+f.Name+", "+envName(f.Name)) {
				t.Errorf("%s does not list --%s / %s", name, f.Name, envName(f.Name))
			}
		}
	})
	if n < 20 {
		t.Errorf("only %d serve flags registered", n)
	}
}

func TestVersionFromLinkerFlag(t *testing.T) {
	old := version
	t.Cleanup(func() { version = old })
	version = "1.2.3-4"
	if code, out, _ := runCLI(t, "", "version"); code != 0 || out != "ecrd 1.2.3-4\n" {
		t.Errorf("version = %d %q", code, out)
	}
	version = ""
	if code, out, _ := runCLI(t, "", "version"); code != 0 || !strings.HasPrefix(out, "ecrd ") || len(out) < len("ecrd x\n") {
		t.Errorf("version without ldflags = %d %q", code, out)
	}
}

func TestTokenFileBareNameIsACredential(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("CREDENTIALS_DIRECTORY", dir)
	if got := credentialPath("token"); got != filepath.Join(dir, "token") {
		t.Errorf("bare name: %q", got)
	}
	if got := credentialPath("/etc/ecrd/token"); got != "/etc/ecrd/token" {
		t.Errorf("absolute path: %q", got)
	}
	if got := credentialPath("sub/token"); got != "sub/token" {
		t.Errorf("relative path: %q", got)
	}
	os.Unsetenv("CREDENTIALS_DIRECTORY")
	if got := credentialPath("token"); got != "token" {
		t.Errorf("no credentials directory: %q", got)
	}
}
