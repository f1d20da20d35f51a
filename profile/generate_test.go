package profile

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestGeneratedFileIsCurrent regenerates the profiles from data/capabilities.json and compares
// them with the checked-in profiles_gen.go: a changed data file or generator without
// `go generate ./profile` fails here.
func TestGeneratedFileIsCurrent(t *testing.T) {
	out := filepath.Join(t.TempDir(), "profiles_gen.go")
	cmd := exec.Command("go", "run", "./internal/gen", "-in", "data/capabilities.json", "-out", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run ./internal/gen: %v\n%s", err, b)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("profiles_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("profiles_gen.go is stale: run go generate ./profile")
	}
}
