package printer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckFindsWhatCannotPrint(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "plain")
	os.WriteFile(file, []byte("x"), 0o644)
	for _, tc := range []struct {
		uri   string
		fatal bool   // a problem that stops ecrd
		warn  bool   // a warning only
		says  string // in the message
	}{
		{uri: "file:" + filepath.Join(dir, "p.bin")},
		{uri: "file:/no/such/dir/p.bin", fatal: true, says: "/no/such/dir"},
		{uri: "file:" + file + "/p.bin", fatal: true, says: "not a directory"},
		{uri: "file:" + dir, fatal: true, says: "is a directory"},
		{uri: "lp:/dev/usb/lp97", warn: true, says: "not there now"},
		{uri: "serial:" + file, fatal: true, says: "not a device"},
		{uri: "lp:/dev/null"},
		{uri: "tcp:192.0.2.1:9100"},
		{uri: "ftp:x", fatal: true, says: "unknown scheme"},
		{uri: "pl:/dev/usb/lp0", fatal: true, says: "did you mean lp:?"},
	} {
		ps := Check(tc.uri)
		switch {
		case !tc.fatal && !tc.warn && len(ps) != 0:
			t.Errorf("Check(%q) = %v, want nothing", tc.uri, ps)
		case (tc.fatal || tc.warn) && len(ps) != 1:
			t.Errorf("Check(%q) = %v, want one problem", tc.uri, ps)
		case len(ps) == 1 && (ps[0].Fatal != tc.fatal || !strings.Contains(ps[0].Error(), tc.says)):
			t.Errorf("Check(%q) = %+v, want fatal=%v saying %q", tc.uri, ps[0], tc.fatal, tc.says)
		}
	}
}
