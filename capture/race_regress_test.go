package capture

import (
	"context"
	"sync"
	"testing"
	"time"
)

// From the red team: POS captures, reprints, the resolver and the prune on one id at once,
// under -race: one start/cash, and the record ends captured.
func TestRegressionRaceCaptureReprintResolvePrune(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.KeepFinished = time.Millisecond; c.PrintWait = time.Millisecond })
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	errs := map[string]int{}
	for i := 0; i < 8; i++ {
		wg.Add(4)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				_, err := e.svc.Capture(ctx, seed)
				mu.Lock()
				if err != nil {
					errs[err.Error()[:min(60, len(err.Error()))]]++
				}
				mu.Unlock()
			}
		}()
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				e.svc.Reprint(ctx, seed)
			}
		}()
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				e.svc.Resolve(ctx)
			}
		}()
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				e.clock.Advance(time.Second)
				e.svc.Prune()
			}
		}()
	}
	wg.Wait()
	t.Logf("errors: %v", errs)
	// The storm may have kept every capture out (in_progress); the POS asks once more.
	if _, err := e.svc.Capture(ctx, seed); err != nil {
		t.Fatalf("capture after the storm: %v", err)
	}
	if n := e.fake.Calls().StartCash[seed]; n != 1 {
		t.Fatalf("start/cash %d times", n)
	}
	rec, err := e.journal.Get(seed)
	if err != nil || rec.Phase != PhaseCaptured {
		t.Fatalf("%+v %v", rec, err)
	}
}
