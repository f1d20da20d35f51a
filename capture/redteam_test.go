package capture

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/secupay/secupaytest"
)

// Red-team checks of the steady clock, refusals and pruned captures that hold today.

// A reboot that loses or damages the steady clock's mark never shortens the in-doubt wait:
// the intent's own stamp (Clock.AtLeast) carries the clock on, and the wait still ends.
func TestRedteamLostOrDamagedMarkKeepsTheInDoubtWait(t *testing.T) {
	set := func(v string) func([]byte) []byte { return func([]byte) []byte { return []byte(v) } }
	for name, damage := range map[string]func([]byte) []byte{
		"removed":                    nil,
		"garbage":                    set("{\"boot\":"),
		"negative":                   set(`{"boot":"x","uptime_ns":1,"steady_ns":-5}`),
		"zero, other boot":           set(`{"boot":"old","uptime_ns":0,"steady_ns":0}`),
		"this boot, from the future": set(`{"boot":"manual-boot-2","uptime_ns":1000000000000000000,"steady_ns":1}`),
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, nil)
			slowSecupay(t, e, time.Hour)
			if _, err := e.svc.Capture(context.Background(), seed); !errors.Is(err, ErrOutcomeUnknown) {
				t.Fatalf("first answer: %v, want in doubt", err)
			}
			e.clock.Reboot(time.Minute, 30*time.Second)
			damageMark(t, e, damage)
			j2, err := OpenJournal(e.journal.st, e.clock)
			if err != nil {
				t.Fatal(err)
			}
			svc2 := New(Config{Journal: j2, Secupay: e.client, Spool: e.spool, Render: e.svc.cfg.Render})
			svc2.Resume(context.Background())
			if _, err := svc2.Capture(context.Background(), seed); !errors.Is(err, ErrOutcomeUnknown) {
				t.Fatalf("30 s into the new boot: %v, want in doubt", err)
			}
			if n := e.fake.Calls().StartCash[seed]; n != 1 {
				t.Fatalf("%d start/cash calls within the wait", n)
			}
			e.clock.Advance(DefaultInDoubtWait)
			svc2.Resolve(context.Background())
			if rec, _ := j2.Get(seed); rec.Phase != PhaseNotCaptured {
				t.Fatalf("after the wait: %s, want not_captured", rec.Phase)
			}
		})
	}
}

// A documented refusal whose read-back is itself refused (404, 403 after renewal fails, a
// proxy's 4xx) is not a refusal: the POS hears "in doubt", never "refused".
func TestRedteamRefusalWithRefusedReadBackIsInDoubt(t *testing.T) {
	t.Parallel()
	for _, get := range []secupaytest.Fault{
		{Op: "get", ID: seed, Status: 404, Body: secupaytest.ErrorBody("ProductNotFoundException", "Not found", "Fehler", 0, "g1")},
		{Op: "get", ID: seed, Status: 400, Body: `{"status":"error","error":"BadRequest"}`},
		{Op: "get", ID: seed, Status: 200, Body: `{"id":"` + seed + `","status":"pending"}`},
		{Op: "get", ID: seed, Status: 200, Body: `{"id":"STX_SOMEONEELSE","status":"created"}`},
	} {
		t.Run(fmt.Sprintf("%d %s", get.Status, get.Body), func(t *testing.T) {
			e := newEnv(t, nil)
			e.fake.Fault(secupaytest.Fault{Op: "start", ID: seed, Status: 400, CaptureFirst: true,
				Body: secupaytest.ErrorBody("ProductInternalException", "transaction already started", "bereits gestartet", 1001, "s1")})
			e.fake.Fault(get)
			_, err := e.svc.Capture(context.Background(), seed)
			var refused *RefusedError
			if errors.As(err, &refused) || !errors.Is(err, ErrOutcomeUnknown) {
				t.Fatalf("%v, want in doubt", err)
			}
			// The read-back works again: captured, one start/cash, one receipt.
			res, err := e.svc.Capture(context.Background(), seed)
			if err != nil || res.Status != "ok" || e.fake.Calls().StartCash[seed] != 1 || e.receipts() != 1 {
				t.Fatalf("%+v, %v; start/cash %d, receipts %d", res, err, e.fake.Calls().StartCash[seed], e.receipts())
			}
		})
	}
}

// An id that is a prefix of another is never taken for it, pruned or not.
func TestRedteamPrunedPrefixIDs(t *testing.T) {
	t.Parallel()
	short, long := "STX_PFX1", "STX_PFX1A"
	const keep = time.Hour
	e := newEnv(t, func(c *Config) { c.KeepFinished = keep })
	if _, err := e.svc.Capture(context.Background(), long); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(keep + time.Minute)
	e.svc.Prune()
	if rec, err := e.journal.Get(long); err != nil || !rec.Pruned {
		t.Fatalf("%s: %+v, %v; want pruned and paid", long, rec, err)
	}
	if rec, err := e.journal.Get(short); !errors.Is(err, errNoRecord) {
		t.Fatalf("%s (never captured) read as %+v, %v", short, rec, err)
	}
	// And the other way round: the short one captured and pruned, the long one is not paid.
	if _, err := e.svc.Capture(context.Background(), short); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(keep + time.Minute)
	e.svc.Prune()
	for _, id := range []string{short, long} {
		res, err := e.svc.Capture(context.Background(), id)
		if err != nil || !res.Replayed || e.fake.Calls().StartCash[id] != 1 {
			t.Fatalf("%s after both prunes: %+v, %v; start/cash %d", id, res, err, e.fake.Calls().StartCash[id])
		}
	}
}
