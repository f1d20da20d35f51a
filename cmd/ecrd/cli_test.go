package main

import (
	"bytes"
	"fmt"
	"image/color"
	"image/png"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/internal/wait"
	"github.com/ecrd-pos/ecrd/receipt"
	"github.com/ecrd-pos/ecrd/secupay/secupaytest"
)

const seedFile = "../../testdata/receipts/seed.json"

func runCLI(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestRenderMatchesGoldenFiles(t *testing.T) {
	for _, c := range []struct {
		args   []string
		golden string
	}{
		{[]string{"render", seedFile}, "seed.80mm.bin"},
		{[]string{"render", "--paper", "58mm", seedFile}, "seed.58mm.bin"},
		{[]string{"render", "--format", "text", seedFile}, "seed.80mm.txt"},
		{[]string{"render", "--format", "text", "--columns", "32", seedFile}, "seed.58mm.txt"},
		// A model supplies columns, code-page slots and cut; explicit flags still win.
		{[]string{"render", "--model", "TH230", seedFile}, "seed.TH230.bin"},
		{[]string{"render", "--model", "tm-t88v", "--format", "text", seedFile}, "seed.TM-T88V.txt"},
		{[]string{"render", "--model", "TSP600", "--paper", "80mm", seedFile}, "seed.TSP600.bin"},
		{[]string{"render", "--model", "POS-5890", "--format", "text", seedFile}, "seed.POS-5890.txt"},
		{[]string{"render", "--model", "generic", "--paper", "58mm", seedFile}, "seed.58mm.bin"},
	} {
		code, out, errs := runCLI(t, "", c.args...)
		want, err := os.ReadFile(filepath.Join("../../testdata/receipts", c.golden))
		if err != nil {
			t.Fatal(err)
		}
		if code != 0 || out != string(want) {
			t.Errorf("ecrd %v: exit %d, stderr %q; output differs from %s", c.args, code, errs, c.golden)
		}
	}
}

// TestModelFlagsWin: an explicit --columns and --codepage override the model's defaults, and
// the code page's slot still comes from the model (CP858 is ESC t 4 on a Star).
func TestModelFlagsWin(t *testing.T) {
	code, out, errs := runCLI(t, `[{"type":"textline","value":{"text":"Summe 7,96 €"}}]`,
		"render", "--model", "TSP600", "--columns", "40", "--codepage", "cp858", "-")
	if code != 0 || !strings.HasPrefix(out, "\x1b@\x1bR\x00\x1bt\x04") || !strings.Contains(out, "Summe 7,96 \xd5") {
		t.Fatalf("exit %d, stderr %q, out %q", code, errs, out)
	}
	code, out, _ = runCLI(t, `[{"type":"textline","value":{"text":"x"}}]`, "render", "--model", "TSP600", "--columns", "40", "--format", "text", "-")
	if code != 0 || !strings.Contains(out, strings.Repeat(" ", 0)+"x\n") {
		t.Fatalf("exit %d, out %q", code, out)
	}
}

// TestRenderPNG: ecrd render --format png draws what the golden picture shows, pixel for pixel.
func TestRenderPNG(t *testing.T) {
	for _, c := range []struct {
		args   []string
		golden string
	}{
		{[]string{"render", "--format", "png", seedFile}, "seed.generic.png"},
		{[]string{"render", "--format", "png", "--model", "TH230", "../../testdata/receipts/intl.json"}, "intl.TH230.png"},
	} {
		code, out, errs := runCLI(t, "", c.args...)
		if code != 0 {
			t.Fatalf("ecrd %v: exit %d: %s", c.args, code, errs)
		}
		got, err := png.Decode(strings.NewReader(out))
		if err != nil {
			t.Fatalf("ecrd %v: output is not a PNG: %v", c.args, err)
		}
		f, err := os.Open(filepath.Join("../../testdata/receipts", c.golden))
		if err != nil {
			t.Fatal(err)
		}
		want, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got.Bounds() != want.Bounds() {
			t.Fatalf("ecrd %v: %v, want %v", c.args, got.Bounds(), want.Bounds())
		}
		for y := want.Bounds().Min.Y; y < want.Bounds().Max.Y; y++ {
			for x := want.Bounds().Min.X; x < want.Bounds().Max.X; x++ {
				if g, w := color.GrayModel.Convert(got.At(x, y)), color.GrayModel.Convert(want.At(x, y)); g != w {
					t.Fatalf("ecrd %v: pixel (%d,%d) is %v, golden %s has %v", c.args, x, y, g, c.golden, w)
				}
			}
		}
	}
}

func TestPrintersListsModels(t *testing.T) {
	code, out, _ := runCLI(t, "", "printers")
	for _, want := range []string{"generic", "TM-T88V", "42", "TH230", "cp858 (ESC t 6)", "TSP600", "cp858 (ESC t 4)", "POS-5890", "none (tear bar)", "escpos-printer-db", "CC BY 4.0"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("ecrd printers: exit %d, output lacks %q:\n%s", code, want, out)
		}
	}
	code, out, _ = runCLI(t, "", "printers", "TH230")
	if code != 0 || !strings.Contains(out, "font 0:   Font A, 44 columns") || !strings.Contains(out, "    6  CP858\n") {
		t.Fatalf("ecrd printers TH230: exit %d:\n%s", code, out)
	}
	if code, _, errs := runCLI(t, "", "printers", "nope"); code != 2 || !strings.Contains(errs, "nope") {
		t.Fatalf("ecrd printers nope: exit %d, %q", code, errs)
	}
}

func TestRenderReadsStdinAndBareArrays(t *testing.T) {
	code, out, _ := runCLI(t, `[{"type":"textline","value":{"text":"Summe 7,96 €"}}]`, "render", "--format", "text", "-")
	if code != 0 || !strings.Contains(out, "Summe 7,96 €") {
		t.Fatalf("exit %d, out %q", code, out)
	}
	code, out, _ = runCLI(t, `[{"type":"textline","value":{"text":"Summe 7,96 €"}}]`, "render")
	if code != 0 || !bytes.Contains([]byte(out), []byte("Summe 7,96 \xd5")) || !strings.HasPrefix(out, "\x1b@") {
		t.Fatalf("escpos: exit %d, out %q", code, out)
	}
}

func TestRenderErrors(t *testing.T) {
	for _, c := range []struct {
		stdin string
		args  []string
		code  int
		want  string
	}{
		{`{"receipt": []}`, []string{"render"}, 1, "no receipt lines"},
		{`{"receipt": [`, []string{"render"}, 1, "offset"},
		{`[]`, []string{"render", "--paper", "99mm"}, 2, "99mm"},
		{`[]`, []string{"render", "--codepage", "utf8"}, 2, "utf8"},
		{`[]`, []string{"render", "--format", "pdf"}, 2, "pdf"},
		{`[]`, []string{"render", "--model", "TM-T1000"}, 2, "TM-T1000"},
		{`[]`, []string{"render", "--model", "TSP600", "--codepage", "iso8859-7"}, 2, "iso8859-7"},
		{``, []string{"render", "a", "b"}, 2, "one input file"},
		{``, []string{"render", "/nonexistent/receipt.json"}, 1, "no such file"},
	} {
		code, _, errs := runCLI(t, c.stdin, c.args...)
		if code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("ecrd %v <<%q: exit %d, stderr %q; want exit %d mentioning %q", c.args, c.stdin, code, errs, c.code, c.want)
		}
	}
}

func TestRenderWarnsOfUnknownLineTypes(t *testing.T) {
	code, out, errs := runCLI(t, `[{"type":"barcode","value":{"text":"4999012345678"}}]`, "render", "--format", "text")
	if code != 0 || !strings.Contains(out, "4999012345678") || !strings.Contains(errs, `unknown type "barcode"`) {
		t.Fatalf("exit %d, out %q, err %q", code, out, errs)
	}
}

func TestPrintToFilePrinter(t *testing.T) {
	dir := t.TempDir()
	pf := filepath.Join(dir, "printer.bin")
	code, out, errs := runCLI(t, "", "print", "--printer", "file:"+pf, seedFile)
	if code != 0 || !strings.Contains(out, "online") {
		t.Fatalf("exit %d, out %q, err %q", code, out, errs)
	}
	got, _ := os.ReadFile(pf)
	want, _ := os.ReadFile("../../testdata/receipts/seed.80mm.bin")
	if !bytes.Equal(got, want) {
		t.Fatal("the printer file does not hold the rendered seed receipt")
	}
	// ESC/POS bytes are sent as they are.
	bin := filepath.Join(dir, "job.bin")
	os.WriteFile(bin, []byte("\x1b@raw job"), 0o600)
	if code, _, errs := runCLI(t, "", "print", "--printer", "file:"+pf, bin); code != 0 {
		t.Fatalf("raw job: exit %d, %s", code, errs)
	}
	if got, _ := os.ReadFile(pf); !bytes.HasSuffix(got, []byte("\x1b@raw job")) {
		t.Fatal("raw job not appended as is")
	}
	// A printer that is not ready is refused unless --force.
	os.WriteFile(pf+".status", []byte("cover_open"), 0o644)
	code, _, errs = runCLI(t, "", "print", "--printer", "file:"+pf, bin)
	if code != 1 || !strings.Contains(errs, "cover_open") {
		t.Fatalf("cover open: exit %d, err %q", code, errs)
	}
	code, _, errs = runCLI(t, "", "print", "--printer", "usb:", bin)
	wantErr := "no printer found"
	if !usbLinked {
		wantErr = "use lp:/dev/usb/lp0" // a CGO_ENABLED=0 build: no libusb
	}
	if code != 1 || !strings.Contains(errs, wantErr) {
		t.Fatalf("usb without a device: exit %d, err %q, want %q", code, errs, wantErr)
	}
}

func TestDemo(t *testing.T) {
	code, out, errs := runCLI(t, "", "demo")
	if code != 0 {
		t.Fatalf("demo: exit %d\n%s\n%s", code, out, errs)
	}
	lines, err := receipt.Decode(secupaytest.SeedAnswer())
	if err != nil {
		t.Fatal(err)
	}
	preview, _ := receipt.Preview(lines, receipt.Options{Columns: 48})
	for _, want := range []string{`"state": "printed"`, `"replayed": true`, "1 start/cash call(s)", "(1 receipt(s))", preview} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}

func TestFlagsWinOverEnvironment(t *testing.T) {
	t.Setenv("ECRD_PAPER", "58mm")
	t.Setenv("ECRD_CODEPAGE", "cp437")
	fs := newFlagSet("test", &bytes.Buffer{})
	var lf layoutFlags
	lf.register(fs)
	if err := parse(fs, []string{"--paper", "80mm"}, true); err != nil {
		t.Fatal(err)
	}
	if lf.paper != "80mm" || lf.codepage != "cp437" {
		t.Fatalf("paper %q codepage %q: want the flag to win and the environment to fill the rest", lf.paper, lf.codepage)
	}
	if envName("state-dir") != "ECRD_STATE_DIR" {
		t.Fatal(envName("state-dir"))
	}
}

// TestDaemonSocketActivation hands the daemon a listening socket the way systemd does
// (fd 3, LISTEN_FDS=1, LISTEN_PID = the daemon's pid) and checks it serves on it instead of
// creating its own socket.
func TestDaemonSocketActivation(t *testing.T) {
	e := newDaemonEnv(t)
	activated := filepath.Join(e.dir, "activated.sock")
	ln, err := net.Listen("unix", activated)
	if err != nil {
		t.Fatal(err)
	}
	ul := ln.(*net.UnixListener)
	f, err := ul.File()
	if err != nil {
		t.Fatal(err)
	}
	ul.SetUnlinkOnClose(false) // the socket file must outlive this copy of the listener
	ul.Close()
	// The shell's pid is the daemon's after exec, so LISTEN_PID can name it.
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" serve`, ecrdBin)
	cmd.ExtraFiles = []*os.File{f}
	cmd.Env = append(os.Environ(), "ECRD_SOCKET="+e.socket, "ECRD_STATE_DIR="+e.state, "ECRD_SECUPAY_URL="+e.fake.URL,
		"ECRD_TOKEN_FILE="+e.tokenFile, "ECRD_PRINTER=file:"+e.printerFile)
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	e.socket = activated
	err = wait.TryEvery(20*time.Second, 10*time.Millisecond, func() error {
		if status, _, err := e.request("GET", "/healthz"); err != nil || status != 200 {
			return fmt.Errorf("/healthz: %d %v", status, err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("no answer on the activated socket: %v\n%s", err, logs.String())
	}
	if st, out := e.capture(secupaytest.SeedID); st != 200 {
		t.Fatalf("capture over the activated socket: %d %v", st, out)
	}
	if !strings.Contains(logs.String(), "systemd:") {
		t.Fatalf("log does not say the socket came from systemd:\n%s", logs.String())
	}
	if _, err := os.Stat(filepath.Join(e.dir, "ecrd.sock")); !os.IsNotExist(err) {
		t.Fatalf("the daemon created its own socket too: %v", err)
	}
}
