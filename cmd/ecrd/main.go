// Command ecrd finishes secupay cash payments and prints their receipts on ESC/POS printers.
// This package is wiring only: flags, configuration, logging, signals and systemd; the work
// is done by the packages it connects (see docs/architecture.md).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
)

const usage = `ecrd — capture secupay cash payments and print their receipts

Usage:
  ecrd render  [--model NAME] [--paper 58mm|80mm] [--columns N] [--codepage NAME] [--format escpos|text] [FILE|-]
  ecrd print   --printer URI [render options] FILE      send one receipt (.bin, or JSON to render) to a printer
  ecrd serve   [flags]                                  run the daemon (every flag also as ECRD_<FLAG>)
  ecrd capture [--socket PATH] STX_ID                   ask the daemon to capture and print; exit 0 only if captured
  ecrd status  [--socket PATH]                          the daemon's health and the printer's state
  ecrd jobs    [--socket PATH] [--limit N] [--json]     the print queue and the jobs printed lately, newest first
  ecrd reprint [--socket PATH] STX_ID|JOB_ID            print a transaction's receipt, or any job, once more
  ecrd store   check|backup|recover [--state-dir DIR] [FILE]  check the state database, copy it to FILE, or recover it
  ecrd pair    [--env-file PATH]                        the browser listener's URL and token, for a POS in a browser
  ecrd demo                                             the whole flow on this machine: fake secupay, file printer
  ecrd printers [MODEL]                                 the printer models --model takes, or one model's profile
  ecrd version

Run 'ecrd COMMAND -h' for a command's flags.
`

// version is set at build time with -ldflags "-X main.version=…" (make build, make deb);
// a plain `go build` or `go install` falls back to the module version or VCS revision.
var version = ""

func versionString() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "dev"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return "dev-" + rev
}

// errUsage marks a command-line mistake: exit status 2, as flag.ExitOnError would.
var errUsage = errors.New("usage")

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmds := map[string]func([]string, io.Reader, io.Writer, io.Writer) error{
		"render":   cmdRender,
		"print":    cmdPrint,
		"serve":    cmdServe,
		"capture":  cmdCapture,
		"status":   cmdStatus,
		"jobs":     cmdJobs,
		"reprint":  cmdReprint,
		"store":    cmdStore,
		"pair":     cmdPair,
		"demo":     cmdDemo,
		"printers": cmdPrinters,
	}
	name := args[0]
	switch name {
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "ecrd", versionString())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		fmt.Fprintln(stdout)
		serveUsage(stdout)
		return 0
	}
	cmd, ok := cmds[name]
	if !ok {
		fmt.Fprintf(stderr, "ecrd: unknown command %q\n\n%s", name, usage)
		return 2
	}
	err := cmd(args[1:], stdin, stdout, stderr)
	var l logged
	switch {
	case errors.As(err, &l) && errors.Is(err, errUsage):
		return 2
	case errors.As(err, &l):
		return 1
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "ecrd %s: %v\n", name, err)
		return 2
	case errors.Is(err, errQuiet):
		return 1
	case errors.Is(err, errCheckFailed):
		return 2 // the findings were printed
	default:
		fmt.Fprintf(stderr, "ecrd %s: %v\n", name, err)
		return 1
	}
}

// logged is an error the command has logged already (the daemon's start-up errors go to the
// journal): printed again on stderr — the journal's stream too — it would show twice.
type logged struct{ err error }

func (l logged) Error() string { return l.err.Error() }
func (l logged) Unwrap() error { return l.err }

// errQuiet is a failure whose explanation was already printed.
var errQuiet = errors.New("failed")
