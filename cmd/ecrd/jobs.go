package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/ecrd-pos/ecrd/api"
	"github.com/ecrd-pos/ecrd/secupay"
)

// cmdJobs lists the print queue and the jobs printed lately, newest first, as `lpstat -o` lists
// a CUPS queue: what a technician looks at when a receipt did not come out.
func cmdJobs(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("jobs", stderr)
	socket := fs.String("socket", "/run/ecrd/ecrd.sock", "the daemon's socket")
	limit := fs.Int("limit", api.DefaultJobsLimit, fmt.Sprintf("how many of the newest jobs, 1 to %d", api.MaxJobsLimit))
	asJSON := fs.Bool("json", false, "print the daemon's answer (GET /v1/jobs) as JSON")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: ecrd jobs [--socket PATH] [--limit N] [--json]\n\nThe print queue and the jobs printed lately, newest first.\n\n")
		fs.PrintDefaults()
	}
	if err := parse(fs, args, true); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if *limit < 1 || *limit > api.MaxJobsLimit {
		return fmt.Errorf("%w: --limit must be from 1 to %d", errUsage, api.MaxJobsLimit)
	}
	code, body, err := call(socketClient(*socket, 15*time.Second), http.MethodGet, "/v1/jobs?limit="+strconv.Itoa(*limit))
	if err != nil {
		return err
	}
	var list api.JobList
	if code != http.StatusOK || json.Unmarshal(body, &list) != nil {
		return daemonSaid(code, body)
	}
	if *asJSON {
		stdout.Write(bytes.TrimSpace(body))
		fmt.Fprintln(stdout)
		return nil
	}
	writeJobs(stdout, list.Jobs)
	return nil
}

// writeJobs is the job table: one line a job, newest first. WHEN is when it printed, or when
// it was queued while it waits; BYTES is known while it waits (a printed job's are dropped).
func writeJobs(w io.Writer, jobs []api.Job) {
	if len(jobs) == 0 {
		fmt.Fprintln(w, "no print jobs")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tSTATE\tKIND\tTRANSACTION\tBYTES\tWHEN\tREASON")
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	for _, j := range jobs {
		when, size := j.Created, "-"
		if j.State == "printed" {
			when = j.Printed
		}
		if j.Bytes > 0 {
			size = strconv.Itoa(j.Bytes)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", j.ID, j.State, j.Kind, dash(j.TransactionID), size,
			when.Local().Format("2006-01-02 15:04:05"), dash(j.Reason))
	}
	tw.Flush()
}

// cmdReprint prints a receipt once more: a transaction's (STX_…), rendered again from the
// journal, or any job's by its id, as `ecrd jobs` lists it. Never the cash drawer.
func cmdReprint(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("reprint", stderr)
	socket := fs.String("socket", "/run/ecrd/ecrd.sock", "the daemon's socket")
	timeout := fs.Duration("timeout", 3*time.Minute, "give up waiting for the daemon after this long")
	asJSON := fs.Bool("json", false, "print the daemon's answer as JSON")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: ecrd reprint [--socket PATH] [--json] STX_ID|JOB_ID

Prints a receipt once more, never opening the cash drawer: a transaction's (STX_…) from the
journal, or a print job's by its id, as 'ecrd jobs' lists it.

`)
		fs.PrintDefaults()
	}
	if err := parse(fs, args, true); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: need exactly one transaction id (STX_…) or job id", errUsage)
	}
	id := fs.Arg(0)
	path := "/v1/jobs/" + url.PathEscape(id) + "/reprint"
	if secupay.ValidID(id) {
		path = "/v1/transactions/" + url.PathEscape(id) + "/reprint"
	}
	code, body, err := call(socketClient(*socket, *timeout), http.MethodPost, path)
	if err != nil {
		return err
	}
	var ans struct {
		ReprintOf string        `json:"reprint_of"`
		Job       api.JobResult `json:"job"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &ans) != nil {
		if *asJSON {
			stdout.Write(bytes.TrimSpace(body))
			fmt.Fprintln(stdout)
		}
		return daemonSaid(code, body)
	}
	if *asJSON {
		stdout.Write(bytes.TrimSpace(body))
		fmt.Fprintln(stdout)
	} else {
		of := "reprint of " + id
		if ans.ReprintOf != "" {
			of = "copy of job " + ans.ReprintOf
		}
		switch ans.Job.State {
		case "printed":
			fmt.Fprintf(stdout, "%s: job %s printed\n", of, ans.Job.ID)
		case "queued":
			fmt.Fprintf(stdout, "%s: job %s queued (%s); it prints when the printer can\n", of, ans.Job.ID, ans.Job.Error)
		default:
			fmt.Fprintf(stdout, "%s: no job: %s\n", of, ans.Job.Error)
		}
	}
	if ans.Job.State == "failed" {
		return errQuiet
	}
	return nil
}

// daemonSaid is an answer other than the one asked for: the daemon's error code and message
// when it sent its error shape, else the status and body as they came.
func daemonSaid(code int, body []byte) error {
	var e api.ErrorBody
	if json.Unmarshal(body, &e) == nil && e.Error.Code != "" {
		return fmt.Errorf("daemon answered %d %s: %s", code, e.Error.Code, e.Error.Message)
	}
	return fmt.Errorf("daemon answered %d %q", code, bytes.TrimSpace(body))
}
