package printer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestLPRegularFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "lp0")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Open("lp:" + path + "?chunk=100")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	job := testJob(1830)
	for range 2 {
		if err := p.Print(ctx, job); err != nil {
			t.Fatalf("Print: %v", err)
		}
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, append(append([]byte{}, job...), job...)) {
		t.Fatalf("file holds %d bytes, want two whole jobs", len(got))
	}
	// A file cannot answer DLE EOT: reachable but unknown, and the query bytes are not written.
	if st := mustStatus(t, p, StateUnknown); !strings.Contains(st.Detail, "cannot send status back") {
		t.Errorf("Detail = %q", st.Detail)
	}
	if got, _ := os.ReadFile(path); len(got) != 2*len(job) {
		t.Errorf("Status wrote %d bytes into the device", len(got)-2*len(job))
	}
}

func TestLPFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lp0")
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := Open("lp:" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	// Nobody reading: like a printer that is not there.
	if err := p.Print(context.Background(), []byte("x")); err == nil || !strings.Contains(err.Error(), "no reader") {
		t.Fatalf("Print to a FIFO without reader = %v, want a no-reader error", err)
	}

	// O_RDWR keeps the reader's end open without waiting for a writer (Linux FIFO semantics).
	r, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	job := testJob(200000) // bigger than a pipe buffer: the writer must wait for the reader
	got := make(chan []byte, 1)
	go func() {
		buf := make([]byte, len(job))
		n, _ := io.ReadFull(r, buf)
		got <- buf[:n]
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10e9)
	defer cancel()
	if err := p.Print(ctx, job); err != nil {
		t.Fatalf("Print: %v", err)
	}
	if b := <-got; !bytes.Equal(b, job) {
		t.Fatalf("reader got %d bytes, want the whole %d-byte job", len(b), len(job))
	}
	mustStatus(t, p, StateUnknown)
}

func TestLPMissingDevice(t *testing.T) {
	p, err := Open("lp:" + filepath.Join(t.TempDir(), "lp9"))
	if err != nil {
		t.Fatalf("Open must not require the device: %v", err)
	}
	defer p.Close()
	if _, err := p.Status(context.Background()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Status = %v, want ErrNotExist", err)
	}
	if err := p.Print(context.Background(), []byte("x")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Print = %v, want ErrNotExist", err)
	}
}
