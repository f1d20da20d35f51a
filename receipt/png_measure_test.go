//go:build measure

package receipt

// The memory a preview really takes (issue 18: "previews with bounds"): the peak resident
// set (VmHWM) of a process that draws the worst receipt the API accepts, alone and 8 at
// once, each from its own copy of the job's bytes as the daemon reads them from the spool.
// Run with: go test -tags measure -run TestMeasurePreviewRSS -v -timeout 30m ./receipt
// It reports figures and asserts only the bounds (64 MiB alone, 128 MiB for 8).

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMeasurePreviewRSS(t *testing.T) {
	if n := os.Getenv("ECRD_MEASURE_PREVIEWS"); n != "" {
		measurePreviewsChild(t, n)
		return
	}
	job := filepath.Join(t.TempDir(), "job")
	if err := os.WriteFile(job, worstAcceptedJob(t, Options{}), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		n     int
		bound int64
	}{{1, 64 << 20}, {8, 128 << 20}} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMeasurePreviewRSS$", "-test.v")
		cmd.Env = append(os.Environ(), "ECRD_MEASURE_PREVIEWS="+strconv.Itoa(c.n), "ECRD_MEASURE_JOB="+job)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%d previews: %v\n%s", c.n, err, out)
		}
		_, line, ok := strings.Cut(string(out), "MEASURED ")
		line, _, _ = strings.Cut(line, "\n")
		if !ok {
			t.Fatalf("%d previews: no figures in\n%s", c.n, out)
		}
		t.Logf("%d preview(s) of the worst accepted receipt: %s", c.n, line)
		var hwm int64
		fmt.Sscanf(line[strings.Index(line, "VmHWM ")+len("VmHWM "):], "%d", &hwm)
		if hwm<<10 > c.bound {
			t.Errorf("%d preview(s): peak RSS %d KiB, over %d MiB", c.n, hwm, c.bound>>20)
		}
	}
}

// measurePreviewsChild draws n previews at once and prints its peak RSS.
func measurePreviewsChild(t *testing.T, n string) {
	count, err := strconv.Atoi(n)
	if err != nil {
		t.Fatal(err)
	}
	before := vmKiB(t, "VmHWM")
	start := time.Now()
	var wg sync.WaitGroup
	sizes := make([]int, count)
	errs := make([]error, count)
	for i := range count {
		wg.Add(1)
		go func() {
			defer wg.Done()
			job, err := os.ReadFile(os.Getenv("ECRD_MEASURE_JOB"))
			if err != nil {
				errs[i] = err
				return
			}
			w := &countingWriter{}
			errs[i] = WriteJobPNG(w, job, nil)
			sizes[i] = w.n
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	p, err := os.ReadFile(os.Getenv("ECRD_MEASURE_JOB"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("MEASURED VmHWM %d KiB (%d KiB before drawing), %v for %d job(s) of %d KiB: %d rows, %d KiB of PNG each\n",
		vmKiB(t, "VmHWM"), before, time.Since(start).Round(time.Second), count, len(p)>>10, pictureRows(p, nil), sizes[0]>>10)
}

type countingWriter struct{ n int }

func (c *countingWriter) Write(b []byte) (int, error) { c.n += len(b); return len(b), nil }

// vmKiB is a field of /proc/self/status, in KiB.
func vmKiB(t *testing.T, field string) int64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range bytes.Lines(status) {
		if v, ok := bytes.CutPrefix(line, []byte(field+":")); ok {
			n, err := strconv.ParseInt(string(bytes.TrimSuffix(bytes.TrimSpace(v), []byte(" kB"))), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}
