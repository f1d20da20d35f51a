package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/capture"
	"github.com/ecrd-pos/ecrd/secupay/secupaytest"
	"github.com/ecrd-pos/ecrd/spool"
)

// reprinterFunc and listerFunc stand in for capture.Service.ReprintJob and
// spool.Spool.Recent where a working till cannot be made to fail on demand.
type reprinterFunc func(ctx context.Context, id string) (*capture.Result, error)

func (f reprinterFunc) ReprintJob(ctx context.Context, id string) (*capture.Result, error) {
	return f(ctx, id)
}

type listerFunc func(n int) ([]spool.Info, error)

func (f listerFunc) Recent(n int) ([]spool.Info, error) { return f(n) }

// jobsHandler is the API as the daemon wires it — Config names neither Jobs nor Reprinter:
// the capture service and the spool are found to have them.
func jobsHandler(t *testing.T) http.Handler {
	fake := secupaytest.NewServer()
	t.Cleanup(fake.Close)
	fake.AddSeed()
	fake.SetAutoCreate(true)
	svc, sp, _ := newService(t, fake, fake.URL, 5*time.Second)
	return Handler(Config{Capture: svc, Lines: svc, Spool: sp})
}

func decodeJobs(t *testing.T, body []byte) []Job {
	t.Helper()
	var out struct {
		Jobs []Job `json:"jobs"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.Jobs == nil {
		t.Fatalf("not a job list: %s (%v)", body, err)
	}
	return out.Jobs
}

// GET /v1/jobs lists the newest jobs, queued or printed, newest first, as GET /v1/jobs/{id}
// shows each; limit is one whole number from 1 to 1000.
func TestListJobs(t *testing.T) {
	t.Parallel()
	c := loadContract(t)
	h := jobsHandler(t)
	if jobs := decodeJobs(t, c.send(t, h, probe{method: "GET", path: "/v1/jobs", status: 200})); len(jobs) != 0 {
		t.Fatalf("a new till lists %+v", jobs)
	}
	c.send(t, h, probe{method: "POST", path: "/v1/transactions/" + secupaytest.SeedID + "/cash", status: 200})
	c.send(t, h, probe{method: "POST", path: "/v1/transactions/" + secupaytest.SeedID + "/reprint", status: 200})
	var lines struct{ Job JobResult }
	json.Unmarshal(c.send(t, h, probe{method: "POST", path: "/v1/receipts", body: `[{"type":"space"}]`, status: 200}), &lines)

	jobs := decodeJobs(t, c.send(t, h, probe{method: "GET", path: "/v1/jobs", status: 200}))
	var ids []string
	for _, j := range jobs {
		ids = append(ids, j.ID)
		if j.State != "printed" || j.Printed.IsZero() || j.Created.IsZero() {
			t.Errorf("job %+v", j)
		}
	}
	want := []string{lines.Job.ID, secupaytest.SeedID + ".reprint-1", secupaytest.SeedID + ".receipt"}
	if fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Fatalf("jobs %q, want %q, newest first", ids, want)
	}
	// Each as GET /v1/jobs/{id} shows it.
	var one Job
	json.Unmarshal(c.send(t, h, probe{method: "GET", path: "/v1/jobs/" + want[2], status: 200}), &one)
	if one != jobs[2] {
		t.Errorf("listed %+v, alone %+v", jobs[2], one)
	}
	if jobs[2].Kind != "receipt" || jobs[2].TransactionID != secupaytest.SeedID || jobs[1].Kind != "reprint" || jobs[0].Kind != "lines" {
		t.Errorf("kinds and transactions: %+v", jobs)
	}

	if jobs := decodeJobs(t, c.send(t, h, probe{method: "GET", path: "/v1/jobs?limit=1", status: 200})); len(jobs) != 1 || jobs[0].ID != want[0] {
		t.Errorf("limit=1: %+v", jobs)
	}
	if jobs := decodeJobs(t, c.send(t, h, probe{method: "GET", path: "/v1/jobs?limit=1000", status: 200})); len(jobs) != 3 {
		t.Errorf("limit=1000: %+v", jobs)
	}
	for _, q := range []string{"0", "1001", "-1", "x", "", "2.5", "1&limit=2"} {
		body := c.send(t, h, probe{method: "GET", path: "/v1/jobs?limit=" + q, status: 400, code: "bad_request"})
		if !strings.Contains(string(body), "from 1 to 1000") {
			t.Errorf("limit=%s: %s", q, body)
		}
	}
	c.send(t, h, probe{method: "POST", path: "/v1/jobs", status: 405, code: "method_not_allowed"})
}

// A queued job is listed with why it waits.
func TestListJobsSaysWhyAJobWaits(t *testing.T) {
	t.Parallel()
	c := loadContract(t)
	stub := &stubs{}
	queued := spool.Info{ID: "STX_Q.receipt", TransactionID: "STX_Q", Kind: "receipt", State: spool.StateQueued,
		Reason: "paper_out: paper end", Bytes: 812, Created: time.Now().UTC(), Held: true}
	h := Handler(Config{Capture: stub, Lines: stub, Spool: stub, Jobs: listerFunc(func(n int) ([]spool.Info, error) {
		if n != DefaultJobsLimit {
			t.Errorf("limit %d, want the default %d", n, DefaultJobsLimit)
		}
		return []spool.Info{queued}, nil
	})})
	jobs := decodeJobs(t, c.send(t, h, probe{method: "GET", path: "/v1/jobs", status: 200}))
	if len(jobs) != 1 || jobs[0].State != "queued" || jobs[0].Reason != queued.Reason || !jobs[0].Printed.IsZero() {
		t.Fatalf("%+v", jobs)
	}
	broken := Handler(Config{Capture: stub, Lines: stub, Spool: stub, Jobs: listerFunc(func(int) ([]spool.Info, error) {
		return nil, errors.New("spool: store: disk I/O error")
	})})
	c.send(t, broken, probe{method: "GET", path: "/v1/jobs", status: 500, code: "storage"})
}

// POST /v1/jobs/{id}/reprint prints a job's bytes once more as a new job, answered as a
// reprint is: where the copy is.
func TestReprintJob(t *testing.T) {
	t.Parallel()
	c := loadContract(t)
	h := jobsHandler(t)
	var res Result
	json.Unmarshal(c.send(t, h, probe{method: "POST", path: "/v1/transactions/" + secupaytest.SeedID + "/cash", status: 200}), &res)

	for i, of := range []string{res.Job.ID, res.Job.ID, res.Job.ID + ".copy-2"} {
		var rp JobReprint
		body := c.send(t, h, probe{method: "POST", path: "/v1/jobs/" + of + "/reprint", status: 200})
		if err := json.Unmarshal(body, &rp); err != nil {
			t.Fatal(err)
		}
		want := JobReprint{Status: "ok", ReprintOf: of, TransactionID: secupaytest.SeedID,
			Job: JobResult{ID: fmt.Sprintf("%s.copy-%d", res.Job.ID, i+1), State: "printed"}}
		if rp != want {
			t.Fatalf("reprint of %s: %s, want %+v", of, body, want)
		}
	}
	var copy1 Job
	json.Unmarshal(c.send(t, h, probe{method: "GET", path: "/v1/jobs/" + res.Job.ID + ".copy-1", status: 200}), &copy1)
	if copy1.Kind != "reprint" || copy1.TransactionID != secupaytest.SeedID || copy1.State != "printed" {
		t.Fatalf("the copy: %+v", copy1)
	}

	// A POS's own receipt, printed: its bytes are gone.
	var lines struct{ Job JobResult }
	json.Unmarshal(c.send(t, h, probe{method: "POST", path: "/v1/receipts", body: `[{"type":"space"}]`, status: 200}), &lines)
	if lines.Job.State != "printed" {
		t.Fatalf("POS receipt %+v", lines.Job)
	}
	body := c.send(t, h, probe{method: "POST", path: "/v1/jobs/" + lines.Job.ID + "/reprint", status: 410, code: "job_bytes_gone"})
	if !strings.Contains(string(body), "not kept") {
		t.Errorf("410 says %s", body)
	}
	c.send(t, h, probe{method: "POST", path: "/v1/jobs/STX_NEVER.receipt/reprint", status: 404, code: "not_found"})
	c.send(t, h, probe{method: "POST", path: "/v1/jobs/..%2Fqueue/reprint", status: 400, code: "invalid_id"})
	c.send(t, h, probe{method: "POST", path: "/v1/jobs/" + res.Job.ID + "/reprint", body: strings.Repeat("x", MaxCaptureBody+1),
		status: 413, code: "body_too_large"})
	c.send(t, h, probe{method: "GET", path: "/v1/jobs/" + res.Job.ID + "/reprint", status: 405, code: "method_not_allowed"})
}

// What a working till cannot be made to say on demand: a pruned receipt, a failed disk, a bug.
func TestReprintJobErrors(t *testing.T) {
	t.Parallel()
	c := loadContract(t)
	stub := &stubs{}
	for _, e := range []struct {
		err    error
		status int
		code   string
	}{
		{fmt.Errorf("reprint job STX_A.receipt: %w", capture.ErrReceiptPruned), 410, "receipt_pruned"},
		{fmt.Errorf("reprint job STX_A.receipt: %w", capture.ErrJobBytesGone), 410, "job_bytes_gone"},
		{fmt.Errorf("reprint job STX_A.receipt: %w", capture.ErrNoJob), 404, "not_found"},
		{fmt.Errorf("reprint job STX_A.receipt: %w: disk full", capture.ErrStorage), 500, "storage"},
		{errors.New("a bug"), 500, "internal"},
	} {
		h := Handler(Config{Capture: stub, Lines: stub, Spool: stub, Reprinter: reprinterFunc(func(context.Context, string) (*capture.Result, error) {
			return nil, e.err
		})})
		c.send(t, h, probe{method: "POST", path: "/v1/jobs/STX_A.receipt/reprint", status: e.status, code: e.code})
	}
	// A queued copy says why it waits.
	h := Handler(Config{Capture: stub, Lines: stub, Spool: stub, Reprinter: reprinterFunc(func(context.Context, string) (*capture.Result, error) {
		return &capture.Result{Status: "ok", Job: capture.JobResult{ID: "pos-1.copy-1", State: capture.JobQueued, Error: "paper_out"}}, nil
	})})
	var rp JobReprint
	json.Unmarshal(c.send(t, h, probe{method: "POST", path: "/v1/jobs/pos-1/reprint", status: 200}), &rp)
	if rp.TransactionID != "" || rp.Job.State != "queued" || rp.Job.Error != "paper_out" || rp.ReprintOf != "pos-1" {
		t.Fatalf("%+v", rp)
	}
}

// A daemon wired without them (capture and spool stand-ins that lack the methods) answers
// both paths 404, in the API's error shape.
func TestJobPathsNotServed(t *testing.T) {
	t.Parallel()
	c := loadContract(t)
	h := (&stubs{}).handler()
	c.send(t, h, probe{method: "GET", path: "/v1/jobs", status: 404, code: "not_found"})
	c.send(t, h, probe{method: "POST", path: "/v1/jobs/STX_A.receipt/reprint", status: 404, code: "not_found"})
}
