package dirscan

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestEachSeesEveryRegularFileWithItsTime(t *testing.T) {
	dir := t.TempDir()
	want := map[string]time.Time{}
	base := time.Date(2026, 11, 26, 8, 0, 0, 123456789, time.UTC)
	for i := range 1000 { // several getdents calls' worth
		name := fmt.Sprintf("STX_%06d.receipt.json", i)
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		mod := base.Add(time.Duration(i) * time.Second)
		if err := os.Chtimes(p, mod, mod); err != nil {
			t.Fatal(err)
		}
		want[name] = mod
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("STX_000000.receipt.json", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	got := map[string]time.Time{}
	err := Each(dir, func(name string, mod time.Time) error {
		if _, dup := got[name]; dup {
			t.Errorf("%s seen twice", name)
		}
		got[name] = mod
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("saw %d entries, want the %d regular files (not the directory or the link)", len(got), len(want))
	}
	for name, mod := range want {
		if !got[name].Equal(mod) {
			t.Errorf("%s: time %v, want %v", name, got[name], mod)
		}
	}
}

func TestEachStopsAtTheCallbacksError(t *testing.T) {
	dir := t.TempDir()
	for i := range 10 {
		os.WriteFile(filepath.Join(dir, fmt.Sprint(i)), nil, 0o600)
	}
	stop := errors.New("stop")
	calls := 0
	err := Each(dir, func(string, time.Time) error { calls++; return stop })
	if err != stop || calls != 1 {
		t.Fatalf("Each = %v after %d calls, want the callback's error after 1", err, calls)
	}
}

func TestEachNamesAMissingDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "gone")
	err := Each(dir, func(string, time.Time) error { return nil })
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Each(missing) = %v, want not-exist", err)
	}
	var pe *os.PathError
	if !errors.As(err, &pe) || pe.Path != dir {
		t.Fatalf("Each(missing) = %v, want a PathError naming %s", err, dir)
	}
}

// BenchmarkEach reads a 10,000-file directory: the allocations are the names (one string
// each) and nothing per batch that grows with the directory.
func BenchmarkEach(b *testing.B) {
	dir := historyDir(b)
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		Each(dir, func(string, time.Time) error { n++; return nil })
		if n != 10000 {
			b.Fatal(n)
		}
	}
}

// BenchmarkReadDir is the same directory through (*os.File).ReadDir and Info, for comparison.
func BenchmarkReadDir(b *testing.B) {
	dir := historyDir(b)
	b.ReportAllocs()
	for b.Loop() {
		d, _ := os.Open(dir)
		n := 0
		for {
			ents, err := d.ReadDir(1024)
			for _, e := range ents {
				if _, err := e.Info(); err == nil {
					n++
				}
			}
			if err != nil {
				break
			}
		}
		d.Close()
		if n != 10000 {
			b.Fatal(n)
		}
	}
}

// historyDir is a directory of 10,000 printed jobs' names, as a till's spool/done.
func historyDir(b *testing.B) string {
	dir := b.TempDir()
	for i := range 10000 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("STX_HISTORY%08d.receipt.json", i)), nil, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	return dir
}
