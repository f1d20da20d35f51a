package api

import (
	"time"

	"github.com/ecrd-pos/ecrd/capture"
	"github.com/ecrd-pos/ecrd/spool"
)

// The JSON the POS reads. These types are the local API's contract (docs/api.md,
// docs/openapi.yaml): field names are only ever added, never renamed. The packages behind
// the API keep their own types free of JSON; each is mapped here, once.

// What a capture's answer says about the money. Every answer to a capture carries one, so a
// POS never has to guess from a status code.
const (
	OutcomeCaptured    = "captured"     // secupay captured: never take the payment again
	OutcomeNotCaptured = "not_captured" // nothing captured: asking again (or another payment) is safe
	OutcomeInDoubt     = "in_doubt"     // unknown yet: ecrd settles it by reading secupay back; ask again later
)

// Result is the answer to a capture or a reprint of a captured payment.
type Result struct {
	TransactionID string `json:"transaction_id"`
	Status        string `json:"status"` // always "ok"
	// Outcome is always OutcomeCaptured: a 200 answer is only ever given for a captured payment.
	Outcome       string     `json:"outcome"`
	TransID       string     `json:"trans_id,omitempty"`
	PaymentMethod string     `json:"payment_method,omitempty"`
	Replayed      bool       `json:"replayed,omitempty"` // answered from the journal; secupay was not called
	Job           JobResult  `json:"job"`
	MerchantJob   *JobResult `json:"merchant_job,omitempty"`
}

// JobResult is where a print job is, as an answer to the request that made it.
type JobResult struct {
	ID    string `json:"id,omitempty"`
	State string `json:"state"`           // printed, queued or failed
	Error string `json:"error,omitempty"` // why it is queued or failed
}

// Job is a print job as GET /v1/jobs/{id} shows it.
type Job struct {
	ID            string    `json:"id"`
	TransactionID string    `json:"transaction_id,omitempty"`
	Kind          string    `json:"kind"`  // receipt, merchant, reprint, lines
	State         string    `json:"state"` // queued or printed
	Reason        string    `json:"reason,omitempty"`
	Attempts      int       `json:"attempts"`
	Bytes         int       `json:"bytes"`
	Created       time.Time `json:"created"`
	Printed       time.Time `json:"printed,omitzero"`
}

// JobList is the answer to GET /v1/jobs: the newest jobs, queued or printed, newest first.
type JobList struct {
	Jobs []Job `json:"jobs"`
}

// JobReprint is the answer to POST /v1/jobs/{id}/reprint: the new job that prints the bytes of
// job ReprintOf once more.
type JobReprint struct {
	Status        string    `json:"status"` // always "ok"
	ReprintOf     string    `json:"reprint_of"`
	TransactionID string    `json:"transaction_id,omitempty"` // the original's; none for a POS's own receipt
	Job           JobResult `json:"job"`
}

// PrinterStatus is the answer to GET /v1/printer.
type PrinterStatus struct {
	URI     string       `json:"uri"`
	Status  PrinterState `json:"status"`
	Error   string       `json:"error,omitempty"`
	Checked time.Time    `json:"checked,omitzero"`
	Queued  int          `json:"queued"`
}

// PrinterState is what the printer said, in words a cashier can act on, and which printer
// it is.
type PrinterState struct {
	State  string `json:"state"` // online, paper_near_end, paper_out, cover_open, offline, unknown
	Detail string `json:"detail,omitempty"`
	// Completion is how the printer confirms a job is on paper, as learnt so far.
	Completion string `json:"completion,omitempty"`
	// Model is the printer profile in use; ModelSource says why it was chosen.
	Model       string `json:"model,omitempty"`
	ModelSource string `json:"model_source,omitempty"`
}

// ErrorBody is the JSON shape of every error answer.
type ErrorBody struct {
	Error ErrorInfo `json:"error"`
}

// ErrorInfo describes an error. Secupay's own fields are included when it refused.
type ErrorInfo struct {
	Code          string `json:"code"`
	Message       string `json:"message"`
	TransactionID string `json:"transaction_id,omitempty"`
	// Outcome is set on every error of a capture: captured, not_captured or in_doubt.
	Outcome string `json:"outcome,omitempty"`
	// RetryAfter (seconds) is when asking again about a capture in doubt can settle it.
	RetryAfter int `json:"retry_after,omitempty"`
	// From secupay's refusal: show ErrorUser to the cashier, quote SupportID to support.
	HTTPStatus   int    `json:"secupay_http_status,omitempty"`
	SecupayError string `json:"secupay_error,omitempty"`
	ErrorUser    string `json:"error_user,omitempty"`
	ErrorDetails string `json:"error_details,omitempty"`
	SecupayCode  string `json:"secupay_code,omitempty"`
	SupportID    string `json:"support_id,omitempty"`
	Status       string `json:"secupay_status,omitempty"`
}

func resultOf(r *capture.Result) Result {
	out := Result{TransactionID: r.TransactionID, Status: r.Status, Outcome: OutcomeCaptured, TransID: r.TransID,
		PaymentMethod: r.PaymentMethod, Replayed: r.Replayed, Job: jobResultOf(r.Job)}
	if r.MerchantJob != nil {
		mj := jobResultOf(*r.MerchantJob)
		out.MerchantJob = &mj
	}
	return out
}

func jobResultOf(j capture.JobResult) JobResult {
	return JobResult{ID: j.ID, State: j.State, Error: j.Error}
}

func jobOf(in spool.Info) Job {
	return Job{ID: in.ID, TransactionID: in.TransactionID, Kind: in.Kind, State: string(in.State), Reason: in.Reason,
		Attempts: in.Attempts, Bytes: in.Bytes, Created: in.Created, Printed: in.Printed}
}

func printerStatusOf(ps spool.PrinterStatus) PrinterStatus {
	st := ps.Status
	return PrinterStatus{URI: ps.URI, Status: PrinterState{State: string(st.State), Detail: st.Detail,
		Completion: st.Completion, Model: st.Model, ModelSource: st.ModelSource},
		Error: ps.Error, Checked: ps.Checked, Queued: ps.Queued}
}

// refusalInfo puts secupay's refusal, as the journal keeps it, into the error answer.
func refusalInfo(i *ErrorInfo, r capture.Refusal) {
	i.HTTPStatus, i.SecupayError, i.ErrorUser, i.ErrorDetails = r.HTTPStatus, r.Error, r.ErrorUser, r.ErrorDetails
	i.SecupayCode, i.SupportID, i.Status = r.Code, r.SupportID, r.Status
}

// receiptsAnswer is the answer to POST /v1/receipts.
type receiptsAnswer struct {
	Job JobResult `json:"job"`
}
