package api

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// A refused request leaves a trace at debug, and none at info.
func TestRefusedRequestsAreTracedAtDebug(t *testing.T) {
	for _, level := range []zapcore.Level{zapcore.DebugLevel, zapcore.InfoLevel} {
		core, logs := observer.New(level)
		s := &stubs{}
		h := Handler(Config{Capture: s, Lines: s, Spool: s, Logger: zap.New(core)})
		serve(t, h, "DELETE", "/v1/printer", "")
		serve(t, h, "GET", "/v1/nothing", "")
		got := logs.FilterMessage("api: request refused").All()
		want := 0
		if level == zapcore.DebugLevel {
			want = 2
		}
		if len(got) != want {
			t.Fatalf("at %v: %d traces, want %d: %v", level, len(got), want, got)
		}
		if want > 0 {
			if f := got[0].ContextMap(); f["status"] != int64(405) || f["method"] != "DELETE" {
				t.Errorf("trace fields %v", f)
			}
		}
	}
}
