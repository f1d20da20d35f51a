package printer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Problem is what Check finds wrong with a printer URI's place on this machine.
type Problem struct {
	// Fatal: the printer can never work so (a file printer in a directory that does not
	// exist): ecrd refuses to start, since it would take money for receipts that cannot print.
	// Otherwise a warning: a device that is not there now may be plugged in later.
	Fatal bool
	Err   error
}

func (p Problem) Error() string { return p.Err.Error() }

// Check parses uri as Open does and looks, without opening anything, at what it names on
// this machine: a file printer's directory, an lp: or serial: device node. It returns the
// URI's own error, or what it found; nil when all is in place. A tcp: or registered
// transport's address is only parsed: whether a printer answers there is a matter of now.
func Check(uri string) []Problem {
	t, err := parseURI(uri)
	if err != nil {
		return []Problem{{Fatal: true, Err: err}}
	}
	switch t.scheme {
	case "file":
		dir := filepath.Dir(t.path)
		fi, err := os.Stat(dir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return []Problem{{Fatal: true, Err: fmt.Errorf("printer %s: directory %s does not exist", uri, dir)}}
		case err != nil:
			return []Problem{{Fatal: true, Err: fmt.Errorf("printer %s: %w", uri, err)}}
		case !fi.IsDir():
			return []Problem{{Fatal: true, Err: fmt.Errorf("printer %s: %s is not a directory", uri, dir)}}
		}
		if fi, err := os.Stat(t.path); err == nil && fi.IsDir() {
			return []Problem{{Fatal: true, Err: fmt.Errorf("printer %s: %s is a directory, not a file", uri, t.path)}}
		}
	case "lp", "serial":
		fi, err := os.Stat(t.path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return []Problem{{Err: fmt.Errorf("printer %s: %s is not there now (unplugged, or another name?); receipts wait until it is", uri, t.path)}}
		case err != nil:
			return []Problem{{Err: fmt.Errorf("printer %s: %w", uri, err)}}
		case fi.Mode()&fs.ModeCharDevice == 0:
			return []Problem{{Fatal: true, Err: fmt.Errorf("printer %s: %s is not a device (%s)", uri, t.path, fi.Mode().Type())}}
		}
		if err := unix.Access(t.path, unix.R_OK|unix.W_OK); err != nil {
			return []Problem{{Err: fmt.Errorf("printer %s: %s: %w (the ecrd user needs the device's group: lp for usblp, dialout for serial)", uri, t.path, err)}}
		}
	}
	return nil
}
