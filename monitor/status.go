package monitor

import (
	"time"

	"github.com/ecrd-pos/ecrd/printer"
)

// Status is the document of `ecrd status --json` and GET /v1/status. Fields are only ever
// added (README.md, "ecrd status --json"); scripts on a fleet read it.
type Status struct {
	Version       string    `json:"version"`
	Started       time.Time `json:"started"`
	UptimeSeconds int64     `json:"uptime_seconds"`
	// Health is "ok" or "degraded", as /healthz says; Problems says why.
	Health             string      `json:"status"`
	Problems           []Problem   `json:"problems"`
	Printer            PrinterInfo `json:"printer"`
	Queue              QueueInfo   `json:"queue"`
	UnfinishedCaptures int         `json:"unfinished_captures"`
	UnfinishedSince    time.Time   `json:"unfinished_since,omitzero"`
	ReceiptsToday      int         `json:"receipts_today"`
	Secupay            SecupayInfo `json:"secupay"`
}

// PrinterInfo is the printer as the print worker last saw it.
type PrinterInfo struct {
	URI    string        `json:"uri"`
	Model  string        `json:"model"` // as detected; "" when unknown
	State  printer.State `json:"state"`
	Detail string        `json:"detail,omitempty"`
	Error  string        `json:"error,omitempty"`
	Ready  bool          `json:"ready"`
	// Since is when the state was first seen; Checked when the printer was last asked.
	Since   time.Time `json:"since"`
	Checked time.Time `json:"checked,omitzero"`
}

// QueueInfo is the print queue, oldest job first.
type QueueInfo struct {
	Jobs             int         `json:"jobs"`
	OldestAgeSeconds float64     `json:"oldest_age_seconds"`
	Pending          []QueuedJob `json:"pending"` // the oldest maxListed jobs
}

// maxListed bounds the jobs listed in a status: a till whose printer was out all day must
// still answer quickly.
const maxListed = 50

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

// SecupayInfo is what the daemon last heard from secupay.
type SecupayInfo struct {
	LastSuccess *Event `json:"last_success"`
	LastError   *Event `json:"last_error"`
	// TokenExpires is when the access token runs out; absent for a static token file.
	TokenExpires time.Time `json:"token_expires,omitzero"`
}

// Event is one thing that happened, with its time.
type Event struct {
	At         time.Time `json:"at"`
	Op         string    `json:"op"`
	HTTPStatus int       `json:"http_status,omitempty"`
	Error      string    `json:"error,omitempty"`
}

// Status returns the daemon's status now.
func (m *Monitor) Status() Status {
	s := m.refresh()
	st := Status{Version: m.cfg.Version, Started: m.started.UTC(),
		UptimeSeconds:      int64(s.now.Sub(m.started) / time.Second),
		UnfinishedCaptures: s.unfinished,
		ReceiptsToday:      m.cfg.Spool.PrintedSince(startOfDay(s.now)),
		Queue:              QueueInfo{Jobs: len(s.pending), Pending: []QueuedJob{}},
	}
	p := s.printer
	st.Printer = PrinterInfo{URI: p.URI, State: p.Status.State, Detail: p.Status.Detail, Error: p.Error,
		Ready: p.Status.Ready(), Checked: p.Checked}
	if m.cfg.Model != nil {
		st.Printer.Model = m.cfg.Model()
	}
	for i, j := range s.pending {
		age := s.now.Sub(j.Created).Seconds()
		if i == 0 {
			st.Queue.OldestAgeSeconds = age
		}
		if i < maxListed {
			st.Queue.Pending = append(st.Queue.Pending, QueuedJob{ID: j.ID, TransactionID: j.TransactionID,
				Kind: j.Kind, Created: j.Created, AgeSeconds: age, Attempts: j.Attempts, Reason: j.Reason})
		}
	}
	if m.cfg.TokenExpires != nil {
		st.Secupay.TokenExpires = m.cfg.TokenExpires().UTC()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	st.Printer.Since = m.printerSince.UTC()
	st.UnfinishedSince = m.unfinishedSince.UTC()
	if m.unfinishedSince.IsZero() {
		st.UnfinishedSince = time.Time{}
	}
	st.Secupay.LastSuccess, st.Secupay.LastError = copyEvent(m.secupayOK), copyEvent(m.secupayErr)
	st.Problems = m.problemsLocked(s)
	st.Health = "ok"
	if len(st.Problems) > 0 {
		st.Health = "degraded"
	}
	return st
}

func copyEvent(e *Event) *Event {
	if e == nil {
		return nil
	}
	c := *e
	return &c
}
