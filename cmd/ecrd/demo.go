package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/ecrd-pos/ecrd/receipt"
	"github.com/ecrd-pos/ecrd/secupay/secupaytest"
)

// cmdDemo runs the whole flow on this machine with no hardware and no account: the
// loopback secupay fake, the daemon on a temporary socket, a file printer, one capture of
// the seed's transaction, a repeat of it, and the receipt as it was printed.
func cmdDemo(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", stderr)
	var lf layoutFlags
	lf.register(fs)
	keep := fs.Bool("keep", false, "keep the temporary state directory and printer file, and print their paths")
	verbose := fs.Bool("verbose", false, "show the daemon's log")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	opt, err := lf.options()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "ecrd-demo-")
	if err != nil {
		return err
	}
	if *keep {
		fmt.Fprintf(stdout, "demo files in %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}

	fake := secupaytest.NewServer()
	defer fake.Close()
	fake.AddSeed()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(fake.Token()+"\n"), 0o600); err != nil {
		return err
	}
	printerFile := filepath.Join(dir, "printer.bin")
	cfg := serveConfig{
		socket:         filepath.Join(dir, "ecrd.sock"),
		stateDir:       filepath.Join(dir, "state"),
		secupayURL:     fake.URL,
		tokenFile:      tokenFile,
		printerURI:     "file:" + printerFile,
		layout:         lf,
		drawer:         "off",
		printWait:      10 * time.Second,
		secupayTimeout: 10 * time.Second,
		poll:           200 * time.Millisecond,
		resolveEvery:   time.Minute,
	}
	log := zap.NewNop()
	if *verbose {
		if log, err = newLogger("info", "console", stderr); err != nil {
			return err
		}
	}
	d, err := startDaemon(cfg, log, nil)
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		d.shutdown(ctx)
	}()

	c := socketClient(cfg.socket, time.Minute)
	id := secupaytest.SeedID
	fmt.Fprintf(stdout, "secupay (loopback fake) at %s; printer %s\n\n", fake.URL, cfg.printerURI)
	for i, title := range []string{"capture", "the same capture again"} {
		fmt.Fprintf(stdout, "$ ecrd capture %s    # %s\n", id, title)
		status, body, err := call(c, http.MethodPost, "/v1/transactions/"+id+"/cash")
		if err != nil {
			return err
		}
		var pretty bytes.Buffer
		json.Indent(&pretty, bytes.TrimSpace(body), "", "  ")
		fmt.Fprintf(stdout, "HTTP %d\n%s\n\n", status, pretty.Bytes())
		if status != http.StatusOK {
			return fmt.Errorf("demo capture %d failed", i+1)
		}
	}
	printed, err := os.ReadFile(printerFile)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "secupay saw %d start/cash call(s); the printer file holds %d bytes (%d receipt(s))\n\n",
		fake.Calls().StartCash[id], len(printed), bytes.Count(printed, []byte{0x1b, 0x40}))

	lines, err := receipt.Decode(fake.Transaction(id))
	if err != nil {
		return err
	}
	preview, err := receipt.Preview(lines, opt)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "The receipt as printed (%d columns):\n\n%s", opt.Columns, preview)
	return nil
}
