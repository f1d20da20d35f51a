// The package map's rules (docs/architecture.md, "Packages"), as tests: who may import whom.
// Breaking one fails make test with the reason and the imports that broke it. The checker is
// internal/deptest; a rule that names a package which no longer exists fails too, so a rename
// cannot switch one off: fix the rule instead.
package ecrd_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/ecrd-pos/ecrd/internal/deptest"
)

const mod = "github.com/ecrd-pos/ecrd"

// Why each package is kept out where the rules below keep it out.
const (
	whyGousb   = "gousb is libusb through cgo: only the USB leaf (printer/usb) and the command that registers it may link it, so that everything else builds with CGO_ENABLED=0"
	whyUSBLeaf = "printer/usb is the one cgo package: only cmd/ecrd links it (cmd/ecrd/usb.go, built with cgo)"
	whyDevice  = "receipt turns lines into bytes and must never do device I/O: it takes the printer model from profile, never from printer"
	whyRender  = "printer writes finished bytes and must never render receipts"
	whyPayment = "knows jobs, not payments"
	whyCaller  = "imports its caller: data flows one way, api → capture → store → spool → printer"
)

func TestNothingButTheUSBLeafLinksGousb(t *testing.T) {
	t.Parallel()
	bad := map[string]string{"github.com/google/gousb/...": whyGousb, mod + "/printer/usb": whyUSBLeaf}
	for _, pkg := range deptest.Packages(t, mod+"/...") {
		switch pkg {
		case mod + "/printer/usb":
			continue
		case mod + "/cmd/ecrd":
			// It links the leaf only with cgo: a CGO_ENABLED=0 ecrd has no usb: transport.
			deptest.DepChecker{Pkg: pkg, CGO: "0", Tests: true, BadDeps: bad}.Check(t)
			continue
		}
		deptest.DepChecker{Pkg: pkg, Tests: true, BadDeps: bad}.Check(t)
	}
}

func TestReceiptAndPrinterDoNotImportEachOther(t *testing.T) {
	t.Parallel()
	deptest.DepChecker{Pkg: "./receipt", Tests: true, BadDeps: map[string]string{mod + "/printer/...": whyDevice}}.Check(t)
	deptest.DepChecker{Pkg: "./profile", Tests: true, BadDeps: map[string]string{
		mod + "/printer/...": "profile is data: receipt depends on it, so it must not bring the device in",
		mod + "/receipt":     "profile is data that receipt lays text out with: " + whyCaller,
	}}.Check(t)
	for _, pkg := range []string{"./printer", "./printer/printertest", "./printer/usb"} {
		deptest.DepChecker{Pkg: pkg, Tests: true, BadDeps: map[string]string{mod + "/receipt": whyRender}}.Check(t)
	}
}

// secupay is the API client: it keeps nothing and knows nothing of ecrd but internal/.
func TestSecupayImportsOnlyInternal(t *testing.T) {
	t.Parallel()
	bad := map[string]string{}
	for _, pkg := range deptest.Packages(t, mod+"/...") {
		if !strings.HasPrefix(pkg, mod+"/internal/") && pkg != mod+"/secupay" && !strings.HasPrefix(pkg, mod+"/secupay/") && pkg != mod {
			bad[pkg] = "secupay may import nothing of ecrd's but internal/: it is the API client, and the rest of ecrd calls it"
		}
	}
	for _, pkg := range []string{"./secupay", "./secupay/secupaytest"} {
		deptest.DepChecker{Pkg: pkg, Tests: true, BadDeps: bad}.Check(t)
	}
}

// internal/escposread is the one ESC/POS interpreter, shared by receipt's preview,
// printer/printertest and the till's printersim, which must not import each other: it
// imports nothing of ecrd's. Its tests may: they read what receipt.Render makes.
func TestTheESCPOSInterpreterIsALeaf(t *testing.T) {
	t.Parallel()
	bad := map[string]string{}
	for _, pkg := range deptest.Packages(t, mod+"/...") {
		if pkg != mod+"/internal/escposread" && pkg != mod {
			bad[pkg] = "internal/escposread is the ESC/POS interpreter receipt and printer/printertest share: it may import nothing of ecrd's"
		}
	}
	deptest.DepChecker{Pkg: "./internal/escposread", BadDeps: bad}.Check(t)
}

func TestSpoolKnowsJobsNotPayments(t *testing.T) {
	t.Parallel()
	deptest.DepChecker{Pkg: "./spool", BadDeps: map[string]string{
		mod + "/capture":     "spool " + whyPayment,
		mod + "/secupay/...": "spool " + whyPayment + ", and never talks to secupay",
		mod + "/receipt":     "spool must never render: jobs arrive as finished bytes",
		mod + "/api":         "spool " + whyCaller,
		mod + "/monitor":     "spool " + whyCaller + " (monitor reads the spool)",
	}}.Check(t)
}

// The store keeps rows and decides nothing: what a phase means, when a record is old, which
// pulse a life may send are capture's and the spool's, which call it.
func TestStoreDecidesNothing(t *testing.T) {
	t.Parallel()
	bad := map[string]string{}
	for _, pkg := range []string{"capture", "spool", "secupay/...", "api", "monitor", "printer/...", "receipt", "profile"} {
		bad[mod+"/"+pkg] = "store keeps rows and decides nothing: " + whyCaller
	}
	deptest.DepChecker{Pkg: "./store", Tests: true, BadDeps: bad}.Check(t)
	// The import of an older release's files writes rows; it knows their format, not the rules.
	deptest.DepChecker{Pkg: "./internal/legacy", BadDeps: map[string]string{
		mod + "/capture": "the import writes rows as the old files hold them; capture decides on them after",
		mod + "/spool":   "the import writes rows as the old files hold them; the spool claims them after",
	}}.Check(t)
}

// api asks capture and the spool; it never holds a printer or the store itself. Its
// dependencies do (the spool's status carries the printer's), hence Direct. Its tests may:
// they wire a whole daemon with a file printer.
func TestAPIDoesNotTalkToDevices(t *testing.T) {
	t.Parallel()
	bad := map[string]string{
		mod + "/printer/...": "api asks the spool about the printer; it must not talk to one itself",
		mod + "/secupay/...": "api asks capture; it must not talk to secupay itself",
		mod + "/store":       "api asks capture and the spool; the rows are theirs",
	}
	deptest.DepChecker{Pkg: "./api", Direct: true, BadDeps: bad}.Check(t)
}

// No package imports its caller (the tests may: an end-to-end test of printer runs the real spool).
func TestNoPackageImportsItsCaller(t *testing.T) {
	t.Parallel()
	for pkg, callers := range map[string][]string{
		"./printer": {"spool", "capture", "api", "monitor", "cmd/ecrd"},
		"./receipt": {"capture", "spool", "api", "monitor", "cmd/ecrd"},
		"./capture": {"api", "monitor", "cmd/ecrd"},
		"./spool":   {"capture", "api", "monitor", "cmd/ecrd"},
		"./monitor": {"api", "cmd/ecrd"},
	} {
		bad := map[string]string{}
		for _, c := range callers {
			bad[mod+"/"+c] = strings.TrimPrefix(pkg, "./") + " " + whyCaller
		}
		deptest.DepChecker{Pkg: pkg, BadDeps: bad}.Check(t)
	}
}

// A CGO_ENABLED=0 build of everything but the USB leaf works: a machine without a C compiler
// or libusb's headers can build ecrd (without usb:) and every package it is made of.
func TestEverythingButTheUSBLeafBuildsWithoutCgo(t *testing.T) {
	t.Parallel()
	// Every package with code to build (docs/ and this one hold only tests), by the default
	// build's files: a package that cgo's absence empties must still be built, and fail.
	list := exec.Command("go", "list", "-e", "-f", "{{if or .GoFiles .CgoFiles}}{{.ImportPath}}{{end}}", mod+"/...")
	out, err := list.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []string
	for _, pkg := range strings.Fields(string(out)) {
		if pkg != mod+"/printer/usb" {
			pkgs = append(pkgs, pkg)
		}
	}
	cmd := exec.Command("go", append([]string{"build"}, pkgs...)...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build of %d packages: %v\n%s", len(pkgs), err, out)
	}
	if len(pkgs) < 20 {
		t.Fatalf("built only %d packages: %q", len(pkgs), pkgs)
	}
}

// internal/testbed and internal/wait are for tests: no package's own code imports them. One
// go list of every package's imports (not its tests'): a package that depends on them at all
// has code that imports one of them itself.
func TestTestHelpersStayInTests(t *testing.T) {
	t.Parallel()
	helpers := map[string]string{
		mod + "/internal/testbed": "it wires a till of fakes for tests",
		mod + "/internal/wait":    "the daemon never waits by polling a condition",
	}
	out, err := exec.Command("go", "list", "-e", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", mod+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		seen[f[0]] = true
		for _, imp := range f[1:] {
			if why, ok := helpers[imp]; ok {
				t.Errorf("%s imports %s, which only tests may: %s", f[0], imp, why)
			}
		}
	}
	for h := range helpers {
		if !seen[h] {
			t.Errorf("the rule names %s, which is not a package: renamed or removed? Fix the rule, do not drop it", h)
		}
	}
}
