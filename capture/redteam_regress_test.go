package capture

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/internal/steady"
	"github.com/ecrd-pos/ecrd/secupay"
	"github.com/ecrd-pos/ecrd/secupay/secupaytest"
	"github.com/ecrd-pos/ecrd/store"
)

// unknownBoot is steady.System() when the boot id is unknown (the shipped unit's
// ProcSubset=pid hides /proc/sys, and ECRD_BOOT_ID is not set), while CLOCK_BOOTTIME (here:
// the env's Manual) goes on.
type unknownBoot struct {
	m    *steady.Manual
	boot string
}

func (u unknownBoot) Wall() time.Time       { return u.m.Wall() }
func (u unknownBoot) Boot() string          { return u.boot }
func (u unknownBoot) Uptime() time.Duration { return u.m.Uptime() }

// secupay keeps working on every start/cash for d of real time; the client gives up after 300 ms
// (so, as with slowSecupay, tests that use it do not run in parallel).
func slowEverything(t *testing.T, e *env, d time.Duration) {
	e.client.set(t, secupay.Config{BaseURL: e.fake.URL, Tokens: e.tokens, Timeout: 300 * time.Millisecond})
	e.fake.SetProcessingTime(func(string) time.Duration { return d })
}

// The red team's finding 1: under the shipped unit a daemon restart ended every in-doubt wait at
// once (second start/cash while secupay still processed the first, POS told "refused").
func TestRegressionRestartWithoutBootIDEndsTheInDoubtWait(t *testing.T) {
	e := newEnv(t, nil)
	slowEverything(t, e, 3*time.Second)
	j1, err := OpenJournal(e.journal.st, unknownBoot{e.clock, ""})
	if err != nil {
		t.Fatal(err)
	}
	svc1 := New(Config{Journal: j1, Secupay: e.client, Spool: e.spool, Render: e.svc.cfg.Render})
	if _, err := svc1.Capture(context.Background(), seed); !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("first answer: %v, want in doubt", err)
	}

	e.clock.Advance(5 * time.Second) // the daemon is restarted (watchdog, crash, upgrade); no reboot
	j2, err := OpenJournal(e.journal.st, unknownBoot{e.clock, ""})
	if err != nil {
		t.Fatal(err)
	}
	svc2 := New(Config{Journal: j2, Secupay: e.client, Spool: e.spool, Render: e.svc.cfg.Render})
	svc2.Resume(context.Background())
	_, err = svc2.Capture(context.Background(), seed)
	var refused *RefusedError
	if errors.As(err, &refused) {
		waitCaptured(t, e, seed)
		rec, _ := j2.Get(seed)
		t.Errorf("5 s after the first start/cash, across a daemon restart: POS told %v; journal %s; secupay then captured (captures=%d, start/cash=%d)",
			err, rec.Phase, e.fake.Calls().Captures[seed], e.fake.Calls().StartCash[seed])
	}
	if n := e.fake.Calls().StartCash[seed]; n != 1 {
		t.Fatalf("%d start/cash calls within the in-doubt wait, want 1", n)
	}
}

// flipDigit sets bit 0x08 of the first digit of n, as a one-bit flip on the card would
// ('1' -> '9'); the value still reads as a number.
func flipDigit(t *testing.T, n int64) int64 {
	b := []byte(strconv.FormatInt(n, 10))
	if b[0] != '1' {
		t.Fatalf("%d starts with %q, want '1'", n, b[0])
	}
	b[0] |= 0x08
	v, _ := strconv.ParseInt(string(b), 10, 64)
	return v
}

// Finding 2: one finished record whose updated_steady took a bit flip (valid JSON), read by the
// start-up prune, moved the clock to it, and another capture's in-doubt wait ended at once.
func TestRegressionOneBadStampEndsAnotherCapturesWait(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.KeepFinished = 90 * 24 * time.Hour })
	e.clock.Advance(2 * time.Hour) // steady readings ~1.1e13 ns: they start with '1'
	const other = "STX_REDTEAMOLDREFUSED"
	if err := e.journal.PutFlushed(&Record{TransactionID: other, Phase: PhaseRefused, Refusal: &Refusal{HTTPStatus: 400}}); err != nil {
		t.Fatal(err)
	}
	var stamp int64
	if err := stateDB(t, e).QueryRow(`SELECT updated_steady FROM captures WHERE id = ?`, other).Scan(&stamp); err != nil {
		t.Fatal(err)
	}
	execState(t, e, `UPDATE captures SET updated_steady = ? WHERE id = ?`, flipDigit(t, stamp), other)

	slowEverything(t, e, 3*time.Second)
	if _, err := e.svc.Capture(context.Background(), seed); !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("first answer: %v, want in doubt", err)
	}
	e.clock.Advance(time.Second)
	e.svc.Prune() // the daemon's start-up prune (30 s after start)
	_, err := e.svc.Capture(context.Background(), seed)
	var refused *RefusedError
	if errors.As(err, &refused) {
		waitCaptured(t, e, seed)
		t.Errorf("1 s after the first start/cash: POS told %v; secupay then captured", err)
	}
	if n := e.fake.Calls().StartCash[seed]; n != 1 {
		t.Fatalf("%d start/cash calls within the in-doubt wait, want 1", n)
	}
}

// Finding 4: a captured transaction whose answer carries a trans_id over 1 MiB (within the
// client's 8 MiB limit) wrote a paid-index line the look-up could not read: it and every id
// after it in the bucket read as "no record" and got a second start/cash. (The paid index is
// the captures table now; the case stays.)
func TestRegressionLongTransIDSurvivesThePrune(t *testing.T) {
	t.Parallel()
	const keep = time.Hour
	e := newEnv(t, func(c *Config) { c.KeepFinished = keep })
	ids := []string{"STX_REDTEAMLONG000001", "STX_REDTEAMLONG000002"}
	big, small := ids[0], ids[1]
	answer := `{"object":"smart.transactions","id":"` + big + `","status":"ok","payment_method":"cash","trans_id":"` +
		strings.Repeat("7", 1<<20+10) + `","receipt":[{"type":"textline","value":{"text":"Beleg"}}]}`
	e.fake.Fault(secupaytest.Fault{Op: "start", ID: big, Status: 200, Body: answer, CaptureFirst: true})
	// Captured and pruned one after the other (two prunes: two starts of the daemon, months apart).
	for _, id := range []string{big, small} {
		if res, err := e.svc.Capture(context.Background(), id); err != nil || res.Status != "ok" {
			t.Fatalf("capture %s: %+v, %v", id, res, err)
		}
		e.clock.Advance(keep + time.Minute)
		e.svc.Prune()
	}
	for _, id := range ids {
		res, err := e.svc.Capture(context.Background(), id)
		if n := e.fake.Calls().StartCash[id]; n != 1 {
			t.Errorf("%s after the prune: %d start/cash calls, want 1 (answer: replayed=%v, %v)", id, n, res != nil && res.Replayed, err)
		}
	}
}

// Finding 3: the start-up prune read an old refused record, the POS captured that id while the
// prune scanned on, and the prune's batch then removed the captured record with no paid line.
// Now the prune claims each id it takes until its change is committed.
func TestRegressionPruneRemovesACaptureMadeDuringTheScan(t *testing.T) {
	t.Parallel()
	for _, wait := range []time.Duration{50 * time.Millisecond} {
		t.Run(wait.String(), func(t *testing.T) { pruneRace(t, wait) })
	}
}

func pruneRace(t *testing.T, wait time.Duration) {
	const keep = time.Hour
	e := newEnv(t, func(c *Config) { c.KeepFinished = keep })
	refused := map[string]bool{}
	for i := range 10 {
		id := fmt.Sprintf("STX_REDTEAMREFUSED%02d", i)
		refused[id] = true
		if err := e.journal.PutFlushed(&Record{TransactionID: id, Phase: PhaseRefused, Refusal: &Refusal{HTTPStatus: 400}}); err != nil {
			t.Fatal(err)
		}
	}
	// A till's long history: rows the prune reads before it comes to the refused ones (the
	// index orders them by their steady stamp).
	var fill []*store.Capture
	old := time.Now().Add(-2 * keep)
	for i := range 5000 {
		fill = append(fill, &store.Capture{ID: fmt.Sprintf("STX_FILL%06d", i), Phase: string(PhaseRefused),
			Created: old, Updated: old, SteadyClock: e.journal.Clock().Epoch(), UpdatedSteady: 1 + int64(i)})
	}
	putRows(t, e, fill...)
	id := "STX_REDTEAMREFUSED00"
	e.clock.Advance(keep + time.Minute)

	done := make(chan struct{})
	start := time.Now()
	var pruneTook time.Duration
	go func() { e.svc.Prune(); pruneTook = time.Since(start); close(done) }()
	time.Sleep(wait) // not an assertion's wait: the capture starts while the prune scans
	capStart := time.Since(start)
	if res, err := e.svc.Capture(context.Background(), id); err != nil || res.Status != "ok" {
		t.Fatalf("capture %s: %+v, %v", id, res, err)
	}
	capTook := time.Since(start) - capStart
	<-done
	t.Logf("prune took %v; capture from %v for %v", pruneTook, capStart, capTook)
	rec, err := e.journal.Get(id)
	if err != nil || rec.Phase != PhaseCaptured {
		t.Errorf("after the prune the journal has for the captured %s: %+v, %v", id, rec, err)
	}
	if _, err := e.svc.Reprint(context.Background(), id); errors.Is(err, ErrNotCaptured) {
		t.Errorf("reprint of the paid %s: %v (API: 404 not_captured)", id, err)
	}
	e.svc.Capture(context.Background(), id)
	if n := e.fake.Calls().StartCash[id]; n != 1 {
		t.Fatalf("%s: %d start/cash calls, want 1", id, n)
	}
}

// Finding 2b: the same through the steady clock's mark: one whose steady_ns took a bit flip.
func TestRegressionFlippedMarkEndsTheWait(t *testing.T) {
	e := newEnv(t, nil)
	e.clock.Advance(2 * time.Hour)
	slowEverything(t, e, 3*time.Second)
	if _, err := e.svc.Capture(context.Background(), seed); !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("first answer: %v, want in doubt", err)
	}
	e.clock.Reboot(time.Minute, 30*time.Second) // power cut; back 90 s later
	damageMark(t, e, func(m []byte) []byte {
		var v map[string]any
		if err := json.Unmarshal(m, &v); err != nil {
			t.Fatal(err)
		}
		ns := int64(v["steady_ns"].(float64))
		return bytes.Replace(m, []byte(strconv.FormatInt(ns, 10)), []byte(strconv.FormatInt(flipDigit(t, ns), 10)), 1)
	})
	j2, err := OpenJournal(e.journal.st, e.clock)
	if err != nil {
		t.Fatal(err)
	}
	svc2 := New(Config{Journal: j2, Secupay: e.client, Spool: e.spool, Render: e.svc.cfg.Render})
	svc2.Resume(context.Background())
	_, err = svc2.Capture(context.Background(), seed)
	var refused *RefusedError
	if errors.As(err, &refused) {
		waitCaptured(t, e, seed)
		t.Errorf("30 s into the new boot: POS told %v; secupay then captured", err)
	}
	if n := e.fake.Calls().StartCash[seed]; n != 1 {
		t.Fatalf("%d start/cash calls within the in-doubt wait, want 1", n)
	}
}
