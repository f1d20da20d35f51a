// Package journald is a zap core that logs to systemd's journal in its native protocol
// (github.com/coreos/go-systemd/v22/journal), so that `journalctl -p err` filters by the
// log level and `journalctl TRANSACTION_ID=STX_…` finds every line of one capture.
//
// Each zap level becomes a syslog priority, the message becomes MESSAGE, and every field
// becomes a journal field: its name upper-cased and reduced to A–Z, 0–9 and '_' (journald
// drops other names), with the names ecrd's operators filter on made explicit
// (transaction_id → TRANSACTION_ID, job → JOB_ID, printer → PRINTER). It must never drop a
// line silently: an entry the journal refuses is written to the fallback core instead.
package journald

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
	"go.uber.org/zap/zapcore"
)

// Available reports whether this process should log to the journal natively: systemd
// connected its stderr to the journal (JOURNAL_STREAM names stderr's device and inode) and
// the journal's socket answers.
func Available() bool {
	if os.Getenv("JOURNAL_STREAM") == "" {
		return false
	}
	if ok, err := journal.StderrIsJournalStream(); err != nil || !ok {
		return false
	}
	return journal.Enabled()
}

// SendFunc sends one entry; journal.Send is the real one.
type SendFunc func(message string, priority journal.Priority, vars map[string]string) error

// Options configure a Core.
type Options struct {
	// Identifier is SYSLOG_IDENTIFIER (default "ecrd").
	Identifier string
	// Send delivers an entry (default journal.Send).
	Send SendFunc
	// Fallback takes entries the journal refused (e.g. its socket went away); nil drops them.
	Fallback zapcore.Core
}

// Core is a zapcore.Core writing to the journal.
type Core struct {
	zapcore.LevelEnabler
	opt    Options
	fields map[string]string // from With, already named for the journal
}

// NewCore returns a core that logs entries at or above enab to the journal.
func NewCore(enab zapcore.LevelEnabler, opt Options) *Core {
	if opt.Identifier == "" {
		opt.Identifier = "ecrd"
	}
	if opt.Send == nil {
		opt.Send = journal.Send
	}
	return &Core{LevelEnabler: enab, opt: opt, fields: map[string]string{}}
}

// With returns a core that adds fields to every entry.
func (c *Core) With(fields []zapcore.Field) zapcore.Core {
	clone := &Core{LevelEnabler: c.LevelEnabler, opt: c.opt, fields: make(map[string]string, len(c.fields)+len(fields))}
	for k, v := range c.fields {
		clone.fields[k] = v
	}
	addFields(clone.fields, fields)
	if c.opt.Fallback != nil {
		clone.opt.Fallback = c.opt.Fallback.With(fields)
	}
	return clone
}

// Check adds the core to ce when the entry's level is enabled.
func (c *Core) Check(ent zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(ent.Level) {
		return ce.AddCore(ent, c)
	}
	return ce
}

// Write sends one entry.
func (c *Core) Write(ent zapcore.Entry, fields []zapcore.Field) error {
	vars := make(map[string]string, len(c.fields)+len(fields)+5)
	for k, v := range c.fields {
		vars[k] = v
	}
	addFields(vars, fields)
	vars["SYSLOG_IDENTIFIER"] = c.opt.Identifier
	if ent.LoggerName != "" {
		vars["LOGGER"] = ent.LoggerName
	}
	if ent.Caller.Defined {
		vars["CODE_FILE"] = ent.Caller.File
		vars["CODE_LINE"] = strconv.Itoa(ent.Caller.Line)
		if ent.Caller.Function != "" {
			vars["CODE_FUNC"] = ent.Caller.Function
		}
	}
	if ent.Stack != "" {
		vars["STACK"] = ent.Stack
	}
	err := c.opt.Send(withTransaction(ent.Message, vars["TRANSACTION_ID"]), Priority(ent.Level), vars)
	if err != nil && c.opt.Fallback != nil {
		return c.opt.Fallback.Write(ent, fields)
	}
	return err
}

// withTransaction puts the transaction id in a capture line's message text as well as its
// field: `journalctl -u ecrd | grep STX_…` shows MESSAGE only, and a technician greps.
func withTransaction(msg, id string) string {
	if id == "" || strings.Contains(msg, id) {
		return msg
	}
	return id + ": " + msg
}

// Sync does nothing: every entry is one datagram, sent when written.
func (c *Core) Sync() error { return nil }

// Priority maps a zap level to a syslog priority.
func Priority(l zapcore.Level) journal.Priority {
	switch {
	case l <= zapcore.DebugLevel:
		return journal.PriDebug
	case l == zapcore.InfoLevel:
		return journal.PriInfo
	case l == zapcore.WarnLevel:
		return journal.PriWarning
	case l == zapcore.ErrorLevel:
		return journal.PriErr
	}
	return journal.PriCrit // DPanic, Panic, Fatal: the daemon is about to fail
}

// renamed are the field names ecrd's operators filter on, spelled for the journal.
var renamed = map[string]string{
	"transaction_id": "TRANSACTION_ID",
	"job":            "JOB_ID",
	"printer":        "PRINTER",
}

// reserved are journal fields the core sets itself or that journald interprets; a zap field
// of that name is kept under ECRD_<NAME> instead of changing the entry's meaning.
var reserved = map[string]bool{"MESSAGE": true, "MESSAGE_ID": true, "PRIORITY": true, "CODE_FILE": true,
	"CODE_LINE": true, "CODE_FUNC": true, "ERRNO": true, "SYSLOG_IDENTIFIER": true, "SYSLOG_FACILITY": true,
	"SYSLOG_PID": true, "SYSLOG_TIMESTAMP": true, "SYSLOG_RAW": true, "INVOCATION_ID": true,
	"USER_INVOCATION_ID": true, "DOCUMENTATION": true, "TID": true, "LOGGER": true, "STACK": true}

// FieldName turns a zap field name into a journal field name: upper case, every character
// outside A–Z, 0–9 and '_' replaced by '_', no leading '_' or digit (journald reserves a
// leading '_' for its trusted fields), at most 64 characters.
func FieldName(name string) string {
	if r, ok := renamed[name]; ok {
		return r
	}
	b := make([]byte, 0, len(name))
	for _, r := range strings.ToUpper(name) {
		switch {
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b = append(b, byte(r))
		default:
			b = append(b, '_')
		}
	}
	out := strings.TrimLeft(string(b), "_0123456789")
	if out == "" {
		out = "FIELD"
	}
	if reserved[out] {
		out = "ECRD_" + out
	}
	if len(out) > 64 {
		out = out[:64]
	}
	return out
}

// addFields encodes zap fields as strings under their journal names.
func addFields(vars map[string]string, fields []zapcore.Field) {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		f.AddTo(enc)
	}
	for k, v := range enc.Fields {
		vars[FieldName(k)] = valueString(v)
	}
}

// valueString renders a field's value as the journal stores it: text for strings, numbers,
// durations and times, JSON for objects and arrays.
func valueString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case bool:
		return strconv.FormatBool(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case int:
		return strconv.Itoa(v)
	case uint64:
		return strconv.FormatUint(v, 10)
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return fmt.Sprint(v)
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	case time.Duration:
		return v.String()
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	case []byte:
		return string(v)
	case fmt.Stringer:
		return v.String()
	case error:
		return v.Error()
	}
	if b, err := json.Marshal(v); err == nil {
		return string(b)
	}
	return fmt.Sprint(v)
}
