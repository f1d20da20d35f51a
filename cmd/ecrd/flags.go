package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ecrd-pos/ecrd/receipt"
)

// envName is the environment variable that sets flag name: --state-dir ⇔ ECRD_STATE_DIR.
func envName(flagName string) string {
	return "ECRD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parse applies ECRD_ environment variables to fs's flags, then the command line, so that
// a flag given explicitly wins over the EnvironmentFile systemd loaded.
func parse(fs *flag.FlagSet, args []string, withEnv bool) error {
	if withEnv {
		var err error
		fs.VisitAll(func(f *flag.Flag) {
			if v, ok := os.LookupEnv(envName(f.Name)); ok && err == nil {
				if serr := fs.Set(f.Name, v); serr != nil {
					err = fmt.Errorf("%w: %s=%q: %v", errUsage, envName(f.Name), v, serr)
				}
			}
		})
		if err != nil {
			return err
		}
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("ecrd "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// layoutFlags are the receipt layout settings shared by render, print and serve.
type layoutFlags struct {
	paper, codepage, cut string
	columns              int
}

func (l *layoutFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&l.paper, "paper", "80mm", "paper width: 58mm or 80mm")
	fs.IntVar(&l.columns, "columns", 0, "characters per line (overrides --paper; 0 = from paper)")
	fs.StringVar(&l.codepage, "codepage", "cp858", "printer code page: "+strings.Join(receipt.CodePages(), ", "))
	fs.StringVar(&l.cut, "cut", "partial", "paper cut at the end of a receipt: partial or full")
}

func (l *layoutFlags) options() (receipt.Options, error) {
	cols := l.columns
	if cols == 0 {
		var err error
		if cols, err = receipt.PaperColumns(l.paper); err != nil {
			return receipt.Options{}, fmt.Errorf("%w: %v", errUsage, err)
		}
	}
	opt := receipt.Options{Columns: cols, CodePage: l.codepage}
	switch l.cut {
	case "partial":
		opt.Cut = receipt.CutPartial
	case "full":
		opt.Cut = receipt.CutFull
	default:
		return receipt.Options{}, fmt.Errorf("%w: --cut must be partial or full, not %q", errUsage, l.cut)
	}
	if err := opt.Validate(); err != nil {
		return receipt.Options{}, fmt.Errorf("%w: %v", errUsage, err)
	}
	return opt, nil
}
