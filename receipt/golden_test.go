package receipt

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in ../testdata/receipts")

const goldenDir = "../testdata/receipts"

// TestGolden renders every receipt in testdata/receipts at both paper widths
// and compares the job bytes and the preview with the files beside it.
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join(goldenDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) == 0 {
		t.Fatalf("no golden inputs in %s", goldenDir)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".json")
		data, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		for _, paper := range []string{"80mm", "58mm"} {
			t.Run(name+"."+paper, func(t *testing.T) {
				lines, err := Decode(data)
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				cols, err := PaperColumns(paper)
				if err != nil {
					t.Fatal(err)
				}
				job, preview, err := checkJob(lines, Options{Columns: cols})
				if err != nil {
					t.Fatal(err)
				}
				compareGolden(t, filepath.Join(goldenDir, name+"."+paper+".bin"), job)
				compareGolden(t, filepath.Join(goldenDir, name+"."+paper+".txt"), []byte(preview))
			})
		}
	}
}

func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s is missing; run go test ./receipt -update", path)
	}
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test ./receipt -update and review the diff)\ngot:\n%q\nwant:\n%q", path, got, want)
	}
}
