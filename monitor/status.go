package monitor

import (
	"time"

	"github.com/ecrd-pos/ecrd/printer"
)

// Status is what the status document of `ecrd status --json` and GET /v1/status says
// (docs/operations.md, "ecrd status --json"); package api owns its JSON.
type Status struct {
	Version       string
	Started       time.Time
	UptimeSeconds int64
	// Health is "ok" or "degraded", as /healthz says; Problems says why.
	Health             string
	Problems           []Problem
	Printer            PrinterInfo
	Queue              QueueInfo
	UnfinishedCaptures int
	UnfinishedSince    time.Time
	ReceiptsToday      int
	Secupay            SecupayInfo
	// SecupayEnvironment is the secupay system the till captures with (Config.SecupayEnvironment):
	// live, testing, local or other; "" when not told.
	SecupayEnvironment string
}

// PrinterInfo is the printer as the print worker last saw it.
type PrinterInfo struct {
	URI   string
	Model string // the profile in use; "" when unknown
	// ModelSource says why that profile (--model, the printer's Device ID, the fallback).
	ModelSource string
	State       printer.State
	Detail      string
	Error       string
	Ready       bool
	// Since is when the state was first seen; Checked when the printer was last asked.
	Since   time.Time
	Checked time.Time
}

// QueueInfo is the print queue, oldest job first.
type QueueInfo struct {
	Jobs             int
	OldestAgeSeconds float64
	Pending          []QueuedJob // the oldest maxListed jobs
}

// maxListed bounds the jobs listed in a status: a till whose printer was out all day must
// still answer quickly.
const maxListed = 50

// QueuedJob is one job waiting for the printer.
type QueuedJob struct {
	ID            string
	TransactionID string
	Kind          string
	Created       time.Time
	AgeSeconds    float64
	Attempts      int
	Reason        string
}

// SecupayInfo is what the daemon last heard from secupay.
type SecupayInfo struct {
	LastSuccess *Event
	LastError   *Event
	// TokenExpires is when the access token runs out; absent for a static token file.
	TokenExpires time.Time
}

// Event is one thing that happened, with its time.
type Event struct {
	At         time.Time
	Op         string
	HTTPStatus int
	Error      string
}

// Status returns the daemon's status now.
func (m *Monitor) Status() Status {
	s := m.refresh()
	st := Status{Version: m.cfg.Version, Started: m.started.UTC(),
		UptimeSeconds:      int64(s.now.Sub(m.started) / time.Second),
		UnfinishedCaptures: s.unfinished,
		ReceiptsToday:      m.cfg.Spool.PrintedSince(startOfDay(s.now)),
		Queue:              QueueInfo{Jobs: len(s.pending), Pending: []QueuedJob{}},
		SecupayEnvironment: m.cfg.SecupayEnvironment,
	}
	p := s.printer
	st.Printer = PrinterInfo{URI: p.URI, State: p.Status.State, Detail: p.Status.Detail, Error: p.Error,
		Ready: p.Status.Ready(), Checked: p.Checked}
	if m.cfg.Model != nil {
		st.Printer.Model = m.cfg.Model()
	}
	if m.cfg.ModelSource != nil {
		st.Printer.ModelSource = m.cfg.ModelSource()
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
