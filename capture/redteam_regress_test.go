package capture

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/internal/dirscan"
	"github.com/ecrd-pos/ecrd/internal/steady"
	"github.com/ecrd-pos/ecrd/secupay"
	"github.com/ecrd-pos/ecrd/secupay/secupaytest"
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
	j1, err := OpenJournal(e.journal.log, unknownBoot{e.clock, ""})
	if err != nil {
		t.Fatal(err)
	}
	svc1 := New(Config{Journal: j1, Secupay: e.client, Spool: e.spool, Render: e.svc.cfg.Render})
	if _, err := svc1.Capture(context.Background(), seed); !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("first answer: %v, want in doubt", err)
	}

	e.clock.Advance(5 * time.Second) // the daemon is restarted (watchdog, crash, upgrade); no reboot
	j2, err := OpenJournal(e.journal.log, unknownBoot{e.clock, ""})
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

// flipStamp sets bit 0x08 of the first digit of key's value in the record file at path, as a
// one-bit flip on the card would ('1' -> '9'); the JSON still parses.
func flipStamp(t *testing.T, path, key string) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte(`"`+key+`":`))
	if i < 0 {
		t.Fatalf("no %s in %s", key, b)
	}
	i += len(key) + 3
	if b[i] != '1' {
		t.Fatalf("stamp starts with %q, want '1'", b[i])
	}
	b[i] |= 0x08
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
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
	path := filepath.Join(e.state, "journal", "finished", other+".json")
	flipStamp(t, path, "updated_steady")
	old := time.Now().Add(-100 * 24 * time.Hour)
	os.Chtimes(path, old, old) // an old file: the prune reads it

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

// sameBucket returns n valid ids whose paid-index bucket is the same.
func sameBucket(prefix string, n int) []string {
	byB := map[uint32][]string{}
	for i := 0; ; i++ {
		id := fmt.Sprintf("%s%06d", prefix, i)
		h := fnv.New32a()
		h.Write([]byte(id))
		b := h.Sum32() % paidBuckets
		byB[b] = append(byB[b], id)
		if len(byB[b]) == n {
			return byB[b]
		}
	}
}

// Finding 4: a captured transaction whose answer carries a trans_id over 1 MiB (within the
// client's 8 MiB limit) wrote a paid-index line the look-up could not read: it and every id
// after it in the bucket read as "no record" and got a second start/cash.
func TestRegressionLongPaidLineHidesTheBucket(t *testing.T) {
	t.Parallel()
	const keep = time.Hour
	e := newEnv(t, func(c *Config) { c.KeepFinished = keep })
	ids := sameBucket("STX_REDTEAMLONG", 2)
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
		p := filepath.Join(e.state, "journal", "finished", id+".json")
		old := time.Now().Add(-2 * keep)
		os.Chtimes(p, old, old)
		e.svc.Prune()
	}
	for _, id := range ids {
		res, err := e.svc.Capture(context.Background(), id)
		if n := e.fake.Calls().StartCash[id]; n != 1 {
			t.Errorf("%s after the prune: %d start/cash calls, want 1 (answer: replayed=%v, %v)", id, n, res != nil && res.Replayed, err)
		}
	}
}

// Finding 5: one damaged byte in a paid-index line read as "no record" (a second start/cash);
// now the bucket is "unsure" and the transaction is read back before anything is sent.
func TestRegressionDamagedPaidLineIsNoRecord(t *testing.T) {
	t.Parallel()
	const keep = time.Hour
	e := newEnv(t, func(c *Config) { c.KeepFinished = keep })
	if _, err := e.svc.Capture(context.Background(), seed); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(keep + time.Minute)
	p := filepath.Join(e.state, "journal", "finished", seed+".json")
	old := time.Now().Add(-2 * keep)
	os.Chtimes(p, old, old)
	e.svc.Prune()
	bucket := filepath.Join(e.state, filepath.FromSlash(paidRel(seed)))
	b, err := os.ReadFile(bucket)
	if err != nil {
		t.Fatal(err)
	}
	b = regexp.MustCompile(`"id"`).ReplaceAll(b, []byte(`"id&`)) // '"' 0x22 -> '&' 0x26: one bit
	os.WriteFile(bucket, b, 0o640)
	res, err := e.svc.Capture(context.Background(), seed)
	if n := e.fake.Calls().StartCash[seed]; n != 1 {
		t.Errorf("after one flipped bit in its paid line: %d start/cash calls, want 1 (answer %+v, %v; receipts %d)", n, res, err, e.receipts())
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
	fin := filepath.Join(e.state, "journal", "finished")
	refused := map[string]bool{}
	for i := range 10 {
		id := fmt.Sprintf("STX_REDTEAMREFUSED%02d", i)
		refused[id] = true
		if err := e.journal.PutFlushed(&Record{TransactionID: id, Phase: PhaseRefused, Refusal: &Refusal{HTTPStatus: 400}}); err != nil {
			t.Fatal(err)
		}
	}
	// A till's long history: files the prune must read (here: unreadable ones it keeps).
	for i := range 5000 {
		if err := os.WriteFile(filepath.Join(fin, fmt.Sprintf("STX_FILL%06d.json", i)), []byte("x"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * keep)
	ents, _ := os.ReadDir(fin)
	for _, en := range ents {
		os.Chtimes(filepath.Join(fin, en.Name()), old, old)
	}
	// The first refused record in the directory's order.
	var id string
	pos, n := 0, 0
	dirscanEach(t, fin, func(name string) {
		if cand := strings.TrimSuffix(name, ".json"); id == "" && refused[cand] {
			id, pos = cand, n
		}
		n++
	})
	t.Logf("%s is entry %d of %d", id, pos, n)
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

func dirscanEach(t *testing.T, dir string, f func(string)) {
	if err := dirscan.Each(dir, func(name string, _ time.Time) error { f(name); return nil }); err != nil {
		t.Fatal(err)
	}
}

// Finding 2b: the same through steady-clock.json: a mark whose steady_ns took a bit flip.
func TestRegressionFlippedMarkEndsTheWait(t *testing.T) {
	e := newEnv(t, nil)
	e.clock.Advance(2 * time.Hour)
	slowEverything(t, e, 3*time.Second)
	if _, err := e.svc.Capture(context.Background(), seed); !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("first answer: %v, want in doubt", err)
	}
	e.clock.Reboot(time.Minute, 30*time.Second) // power cut; back 90 s later
	flipStamp(t, filepath.Join(e.state, clockRel), "steady_ns")
	j2, err := OpenJournal(e.journal.log, e.clock)
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
