package journald

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

type sent struct {
	msg  string
	pri  journal.Priority
	vars map[string]string
}

func recorder(out *[]sent, fail *bool) SendFunc {
	return func(msg string, p journal.Priority, vars map[string]string) error {
		if *fail {
			return errors.New("journal socket gone")
		}
		*out = append(*out, sent{msg, p, vars})
		return nil
	}
}

func TestLevelsBecomePrioritiesAndFieldsJournalFields(t *testing.T) {
	var got []sent
	fail := false
	log := zap.New(NewCore(zapcore.DebugLevel, Options{Send: recorder(&got, &fail)}), zap.AddCaller())
	log = log.With(zap.String("printer", "usb:04b8:0e15"))
	log.Debug("d")
	log.Info("job printed", zap.String("job", "STX_A-receipt"), zap.String("transaction_id", "STX_A"),
		zap.Int("bytes", 1830), zap.Duration("duration", 1500*time.Millisecond), zap.Bool("token_renewed", false))
	log.Warn("w", zap.String("support-id", "d1f0"), zap.String("message", "not the entry's"))
	log.Error("e", zap.Error(errors.New("disk full")), zap.Any("ids", []string{"a", "b"}))

	if len(got) != 4 {
		t.Fatalf("sent %d entries, want 4", len(got))
	}
	for i, want := range []journal.Priority{journal.PriDebug, journal.PriInfo, journal.PriWarning, journal.PriErr} {
		if got[i].pri != want {
			t.Errorf("entry %d (%s): priority %d, want %d", i, got[i].msg, got[i].pri, want)
		}
		if got[i].vars["PRINTER"] != "usb:04b8:0e15" || got[i].vars["SYSLOG_IDENTIFIER"] != "ecrd" {
			t.Errorf("entry %d lacks the logger's fields: %v", i, got[i].vars)
		}
		if !strings.HasSuffix(got[i].vars["CODE_FILE"], "journald_test.go") || got[i].vars["CODE_LINE"] == "" {
			t.Errorf("entry %d: no caller: %v", i, got[i].vars)
		}
	}
	info := got[1].vars
	for k, want := range map[string]string{"JOB_ID": "STX_A-receipt", "TRANSACTION_ID": "STX_A", "BYTES": "1830",
		"DURATION": "1.5s", "TOKEN_RENEWED": "false"} {
		if info[k] != want {
			t.Errorf("%s = %q, want %q", k, info[k], want)
		}
	}
	if got[1].msg != "STX_A: job printed" { // the id in the text too: journalctl | grep finds it
		t.Errorf("message %q", got[1].msg)
	}
	if got[0].msg != "d" {
		t.Errorf("a line without a transaction: message %q", got[0].msg)
	}
	warn := got[2].vars
	if warn["SUPPORT_ID"] != "d1f0" || warn["ECRD_MESSAGE"] != "not the entry's" {
		t.Errorf("sanitised names: %v", warn)
	}
	if e := got[3].vars; e["ERROR"] != "disk full" || e["IDS"] != `["a","b"]` {
		t.Errorf("error entry: %v", e)
	}
	for _, s := range got {
		for k := range s.vars {
			if FieldName(k) != k && k != "SYSLOG_IDENTIFIER" && !strings.HasPrefix(k, "CODE_") {
				t.Errorf("field %q is not a valid journal name", k)
			}
		}
	}
}

func TestFieldName(t *testing.T) {
	for in, want := range map[string]string{
		"transaction_id": "TRANSACTION_ID", "job": "JOB_ID", "printer": "PRINTER", "state_dir": "STATE_DIR",
		"http.status": "HTTP_STATUS", "_secret": "SECRET", "2fa": "FA", "ümlaut": "MLAUT", "": "FIELD",
		"priority": "ECRD_PRIORITY", strings.Repeat("a", 80): strings.Repeat("A", 64),
	} {
		if got := FieldName(in); got != want {
			t.Errorf("FieldName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRefusedEntryGoesToFallback: when the journal refuses an entry, it is written to the
// fallback (stderr), with the logger's fields, instead of being lost.
func TestRefusedEntryGoesToFallback(t *testing.T) {
	var got []sent
	fail := true
	var buf bytes.Buffer
	fb := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&buf), zapcore.DebugLevel)
	log := zap.New(NewCore(zapcore.InfoLevel, Options{Send: recorder(&got, &fail), Fallback: fb}))
	log.With(zap.String("transaction_id", "STX_B")).Error("capture failed")
	log.Debug("below the level: nowhere")
	if len(got) != 0 || !strings.Contains(buf.String(), `"transaction_id":"STX_B"`) || strings.Contains(buf.String(), "nowhere") {
		t.Fatalf("fallback got %q", buf.String())
	}
}
