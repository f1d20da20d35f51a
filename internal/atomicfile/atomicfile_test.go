package atomicfile

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestWriteFileReplacesWholeAndLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "job.json")
	if err := WriteFile(p, []byte("first"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("second, longer"), 0o640); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, []byte("second, longer")) {
		t.Fatalf("content = %q", got)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode = %v, want 0640", fi.Mode().Perm())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries, want only the file", len(ents))
	}
}

func TestWriteFileIntoMissingDirFails(t *testing.T) {
	err := WriteFile(filepath.Join(t.TempDir(), "nope", "x"), []byte("x"), 0o600)
	if err == nil {
		t.Fatal("want error for a missing directory")
	}
}

func TestIsTemp(t *testing.T) {
	for name, want := range map[string]bool{".job.json.123.tmp": true, "job.json": false, ".tmp": false, "x.tmp": false} {
		if IsTemp(name) != want {
			t.Errorf("IsTemp(%q) = %v", name, !want)
		}
	}
}

// TestObserveSeesFsyncsAndFailures: the hook behind ecrd_fsync_duration_seconds hears the
// file's and the directory's fsync of a write, and a write that failed.
func TestObserveSeesFsyncsAndFailures(t *testing.T) {
	var syncs, failures int
	Observe(func(op string, d time.Duration, err error) {
		switch {
		case op == "fsync" && err == nil:
			syncs++
		case op == "write" && err != nil:
			failures++
		default:
			t.Errorf("unexpected observation %s %v %v", op, d, err)
		}
	})
	defer Observe(nil)
	dir := t.TempDir()
	if err := WriteFile(filepath.Join(dir, "a"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if syncs != 2 || failures != 0 {
		t.Fatalf("after one write: %d fsyncs, %d failures; want 2, 0", syncs, failures)
	}
	if err := WriteFile(filepath.Join(dir, "missing", "a"), []byte("x"), 0o600); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
	if failures != 1 {
		t.Fatalf("failures = %d after a failed write, want 1", failures)
	}
}
