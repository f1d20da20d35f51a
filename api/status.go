package api

import (
	"time"

	"github.com/ecrd-pos/ecrd/monitor"
)

// Status is the document of GET /v1/status and `ecrd status --json` (docs/operations.md, "ecrd status
// --json"). Fleet scripts read it: fields are only ever added.
type Status struct {
	Version            string        `json:"version"`
	Started            time.Time     `json:"started"`
	UptimeSeconds      int64         `json:"uptime_seconds"`
	Health             string        `json:"status"` // ok or degraded, as /healthz says
	Problems           []Problem     `json:"problems"`
	Printer            StatusPrinter `json:"printer"`
	Queue              StatusQueue   `json:"queue"`
	UnfinishedCaptures int           `json:"unfinished_captures"`
	UnfinishedSince    time.Time     `json:"unfinished_since,omitzero"`
	ReceiptsToday      int           `json:"receipts_today"`
	Secupay            StatusSecupay `json:"secupay"`
	// DeviceAuthorization is an OAuth device code waiting for a technician (as /healthz says).
	DeviceAuthorization *DeviceAuthorization `json:"device_authorization,omitempty"`
}

// Health is the answer to GET /healthz: 200 when Status is "ok", 503 when "degraded".
type Health struct {
	Status             string    `json:"status"`
	Problems           []Problem `json:"problems"`
	Queued             int       `json:"queued"`
	UnfinishedCaptures int       `json:"unfinished_captures"`
	// DeviceAuthorization is an OAuth device code waiting for a technician to confirm it.
	DeviceAuthorization *DeviceAuthorization `json:"device_authorization,omitempty"`
}

// DeviceAuthorization is what a technician enters, and where, to let this till use secupay.
type DeviceAuthorization struct {
	UserCode        string `json:"user_code"`
	VerificationURL string `json:"verification_url"`
}

// HealthOf is h as GET /healthz answers it; the caller adds what the monitor does not know
// (UnfinishedCaptures, DeviceAuthorization), and the API the queue.
func HealthOf(h monitor.Health) Health {
	return Health{Status: h.Status, Problems: problemsOf(h.Problems)}
}

func problemsOf(ps []monitor.Problem) []Problem {
	out := make([]Problem, 0, len(ps))
	for _, p := range ps {
		out = append(out, Problem{Code: p.Code, Message: p.Message, Since: p.Since})
	}
	return out
}

// Problem is one reason the daemon is degraded.
type Problem struct {
	Code    string    `json:"code"`
	Message string    `json:"message"`
	Since   time.Time `json:"since,omitzero"`
}

// StatusPrinter is the printer as the print worker last saw it.
type StatusPrinter struct {
	URI   string `json:"uri"`
	Model string `json:"model"` // the profile in use, as GET /v1/printer's status.model
	// ModelSource says why that profile, as GET /v1/printer's status.model_source.
	ModelSource string    `json:"model_source,omitempty"`
	State       string    `json:"state"`
	Detail      string    `json:"detail,omitempty"`
	Error       string    `json:"error,omitempty"`
	Ready       bool      `json:"ready"`
	Since       time.Time `json:"since"`
	Checked     time.Time `json:"checked,omitzero"`
}

// StatusQueue is the print queue, oldest job first.
type StatusQueue struct {
	Jobs             int         `json:"jobs"`
	OldestAgeSeconds float64     `json:"oldest_age_seconds"`
	Pending          []QueuedJob `json:"pending"`
}

// QueuedJob is one job waiting for the printer.
type QueuedJob struct {
	ID            string    `json:"id"`
	TransactionID string    `json:"transaction_id,omitempty"`
	Kind          string    `json:"kind"`
	Created       time.Time `json:"created"`
	AgeSeconds    float64   `json:"age_seconds"`
	Attempts      int       `json:"attempts"`
	Reason        string    `json:"reason,omitempty"`
}

// StatusSecupay is what the daemon last heard from secupay.
type StatusSecupay struct {
	// Environment is which of secupay's systems the till captures with: live (real
	// payments), testing, local (a fake on this machine) or other (a host ecrd does not know).
	Environment  string    `json:"environment,omitempty"`
	LastSuccess  *Event    `json:"last_success"`
	LastError    *Event    `json:"last_error"`
	TokenExpires time.Time `json:"token_expires,omitzero"`
}

// Event is one secupay call that succeeded or failed.
type Event struct {
	At         time.Time `json:"at"`
	Op         string    `json:"op"`
	HTTPStatus int       `json:"http_status,omitempty"`
	Error      string    `json:"error,omitempty"`
}

func statusOf(s monitor.Status) Status {
	out := Status{Version: s.Version, Started: s.Started, UptimeSeconds: s.UptimeSeconds, Health: s.Health,
		Problems: problemsOf(s.Problems), UnfinishedCaptures: s.UnfinishedCaptures,
		UnfinishedSince: s.UnfinishedSince, ReceiptsToday: s.ReceiptsToday}
	p := s.Printer
	out.Printer = StatusPrinter{URI: p.URI, Model: p.Model, ModelSource: p.ModelSource, State: string(p.State), Detail: p.Detail,
		Error: p.Error, Ready: p.Ready, Since: p.Since, Checked: p.Checked}
	out.Queue = StatusQueue{Jobs: s.Queue.Jobs, OldestAgeSeconds: s.Queue.OldestAgeSeconds,
		Pending: make([]QueuedJob, 0, len(s.Queue.Pending))}
	for _, j := range s.Queue.Pending {
		out.Queue.Pending = append(out.Queue.Pending, QueuedJob{ID: j.ID, TransactionID: j.TransactionID, Kind: j.Kind,
			Created: j.Created, AgeSeconds: j.AgeSeconds, Attempts: j.Attempts, Reason: j.Reason})
	}
	out.Secupay = StatusSecupay{Environment: s.SecupayEnvironment, LastSuccess: eventOf(s.Secupay.LastSuccess),
		LastError: eventOf(s.Secupay.LastError), TokenExpires: s.Secupay.TokenExpires}
	return out
}

func eventOf(e *monitor.Event) *Event {
	if e == nil {
		return nil
	}
	return &Event{At: e.At, Op: e.Op, HTTPStatus: e.HTTPStatus, Error: e.Error}
}
