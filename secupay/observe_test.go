package secupay

import (
	"context"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/secupay/secupaytest"
)

// TestObserveSeesEveryCall: the hook behind ecrd_secupay_request_duration_seconds hears each
// public call once, with its op, the last HTTP status and its error.
func TestObserveSeesEveryCall(t *testing.T) {
	srv, c, _ := newFake(t)
	type obs struct {
		op     string
		status int
		ok     bool
	}
	var got []obs
	c = c.with(t, func(cfg *Config) {
		cfg.Observe = func(op string, status int, d time.Duration, err error) {
			if d <= 0 {
				t.Errorf("%s: duration %v", op, d)
			}
			got = append(got, obs{op, status, err == nil})
		}
	})
	if _, err := c.CaptureCash(context.Background(), secupaytest.SeedID); err != nil {
		t.Fatal(err)
	}
	srv.Fault(secupaytest.Fault{Op: "get", Status: 404,
		Body: secupaytest.ErrorBody("ProductNotFoundException", "Not found", "unbekannt", 1002, "s1")})
	if _, err := c.Transaction(context.Background(), secupaytest.SeedID); err == nil {
		t.Fatal("want the 404 refusal")
	}
	want := []obs{{"capture", 200, true}, {"get", 404, false}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("observed %+v, want %+v", got, want)
	}
}
