package printer

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestFilePrinter(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "printer.bin")
	p, err := Open("file:" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.String() != "file:"+path {
		t.Errorf("String() = %q", p.String())
	}

	// No status file: online, and jobs append whole.
	mustStatus(t, p, StateOnline)
	job1, job2 := testJob(1830), []byte("second\n")
	for _, job := range [][]byte{job1, job2} {
		if err := p.Print(ctx, job); err != nil {
			t.Fatalf("Print: %v", err)
		}
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, append(append([]byte{}, job1...), job2...)) {
		t.Fatalf("printer.bin holds %d bytes, want both jobs (%d bytes) in order", len(got), len(job1)+len(job2))
	}

	setState := func(content string) {
		t.Helper()
		if err := os.WriteFile(path+".status", []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		content string
		want    State
		detail  string
	}{
		{"online\n", StateOnline, ""},
		{"paper_near_end\n", StatePaperNearEnd, "paper near end"},
		{"cover_open\n", StateCoverOpen, "cover open"},
		{"offline switched off by the demo\n", StateOffline, "switched off by the demo"},
		{"paper_out", StatePaperOut, "paper out"},
	} {
		setState(tc.content)
		if st := mustStatus(t, p, tc.want); st.Detail != tc.detail {
			t.Errorf("status file %q: Detail = %q, want %q", tc.content, st.Detail, tc.detail)
		}
	}

	// Like a real printer out of paper, the fake refuses the job and nothing reaches the file.
	before, _ := os.ReadFile(path)
	err = p.Print(ctx, []byte("must not print"))
	var we *WriteError
	if !errors.As(err, &we) || we.Written != 0 || !strings.Contains(err.Error(), "paper_out") {
		t.Fatalf("Print while paper_out = %v, want a WriteError with 0 written naming paper_out", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("a refused job reached the file")
	}

	// An unknown word holds jobs (offline) and says which word.
	setState("jammed\n")
	if st := mustStatus(t, p, StateOffline); !strings.Contains(st.Detail, `unknown state "jammed"`) {
		t.Errorf("Detail = %q, want it to name the unknown word", st.Detail)
	}
	setState("")
	mustStatus(t, p, StateOffline)

	// Back online: printing resumes.
	if err := os.Remove(path + ".status"); err != nil {
		t.Fatal(err)
	}
	if err := p.Print(ctx, []byte("resumed")); err != nil {
		t.Fatalf("Print after recovery: %v", err)
	}

	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Print(ctx, []byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Print after Close = %v, want ErrClosed", err)
	}
}

func TestFilePrinterMissingDirectory(t *testing.T) {
	p, err := Open("file:" + filepath.Join(t.TempDir(), "gone", "printer.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Status(context.Background()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Status = %v, want ErrNotExist", err)
	}
	if err := p.Print(context.Background(), []byte("x")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Print = %v, want ErrNotExist", err)
	}
}

// A file printer that is a FIFO with no reader (or a reader that stopped reading) must fail
// the job by its deadline, not hold the printer's lock forever: status requests and
// shutdown wait on that lock.
func TestFilePrinterFIFOWithoutReaderFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "printer.fifo")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := Open("file:" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := p.Print(ctx, []byte("job")); err == nil || !strings.Contains(err.Error(), "no reader") {
		t.Fatalf("print to a FIFO with no reader: %v", err)
	}
	if _, err := p.Status(ctx); err != nil {
		t.Fatalf("status after the failed job: %v", err)
	}

	// A reader that opened the FIFO and never reads: a job larger than the pipe's buffer
	// fails at the deadline.
	r, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	short, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	var we *WriteError
	if err := p.Print(short, make([]byte, 1<<20)); !errors.As(err, &we) || we.Written >= we.Total {
		t.Fatalf("print to a stalled FIFO: %v, want a partial WriteError", err)
	}
}
