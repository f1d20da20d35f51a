//go:build soak

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/ecrd-pos/ecrd/internal/wait"
)

// --- the daemon's lives ---

// launch starts a new life, set to die at crashpoint ("" for none), and waits until it
// answers on its socket — or died at its crash point (a queued receipt prints at start).
func (s *soak) launch(crashpoint string) (*soakLife, error) {
	s.mu.Lock()
	s.lives++
	n := s.lives
	s.mu.Unlock()
	l := &soakLife{n: n, crashpoint: crashpoint, exited: make(chan struct{}), logPath: filepath.Join(s.logDir, fmt.Sprintf("life-%03d.log", n))}
	logf, err := os.Create(l.logPath)
	if err != nil {
		return nil, err
	}
	l.cmd = exec.Command(ecrdBin, "serve")
	l.cmd.Env = append(os.Environ(), s.env...)
	l.cmd.Env = append(l.cmd.Env, "ECRD_CRASHPOINT="+crashpoint)
	l.cmd.Stdout, l.cmd.Stderr = logf, logf
	if err := l.cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	go func() { l.err = l.cmd.Wait(); logf.Close(); close(l.exited) }()
	s.t.Cleanup(func() { l.cmd.Process.Kill(); <-l.exited })
	c := socketClient(s.e.socket, 2*time.Second)
	errExited := errors.New("exited")
	err = wait.TryEvery(30*time.Second, 20*time.Millisecond, func() error {
		status, _, err := call(c, "GET", "/healthz")
		if err == nil && status == 200 {
			return nil
		}
		select {
		case <-l.exited:
			return errExited
		default:
		}
		if err == nil {
			err = fmt.Errorf("/healthz answered %d", status)
		}
		return err
	})
	switch {
	case err == errExited && l.diedAtCrashPoint():
	case err == errExited:
		return nil, fmt.Errorf("daemon life %d exited at start: %v (log %s)", n, l.err, l.logPath)
	case err != nil:
		return nil, fmt.Errorf("daemon life %d did not answer on %s within 30s: %v (log %s)", n, s.e.socket, err, l.logPath)
	}
	s.mu.Lock()
	s.d = l
	s.mu.Unlock()
	return l, nil
}

// stop ends the current life with sig and waits for it. A life that had already ended by
// itself is an error — the daemon must not die but when killed or at its crash point.
func (s *soak) stop(sig syscall.Signal) error {
	s.mu.Lock()
	l := s.d
	s.mu.Unlock()
	select {
	case <-l.exited:
		return s.ended(l)
	default:
	}
	l.cmd.Process.Signal(sig)
	select {
	case <-l.exited:
	case <-time.After(2 * time.Minute):
		l.cmd.Process.Kill()
		<-l.exited
		return fmt.Errorf("daemon life %d did not exit within 2m of %v (log %s)", l.n, sig, l.logPath)
	}
	s.mu.Lock()
	if sig == syscall.SIGKILL {
		s.sigkills++
	} else {
		s.sigterms++
		if l.err != nil {
			s.mu.Unlock()
			return fmt.Errorf("daemon life %d ended with %v after SIGTERM (log %s)", l.n, l.err, l.logPath)
		}
	}
	s.mu.Unlock()
	return nil
}

// ended accounts for a life that ended by itself: at its crash point, or an error.
func (s *soak) ended(l *soakLife) error {
	if !l.diedAtCrashPoint() {
		return fmt.Errorf("daemon life %d exited by itself: %v (log %s)", l.n, l.err, l.logPath)
	}
	s.mu.Lock()
	s.crashes[l.crashpoint]++
	s.mu.Unlock()
	return nil
}

func (s *soak) goroutineFatal(err error) {
	s.mu.Lock()
	s.fatal = append(s.fatal, err.Error())
	s.mu.Unlock()
}

// killer kills (mostly SIGKILL, one in five SIGTERM) and restarts the daemon every 2–10 s;
// a life that died at its crash point is restarted at once, as systemd's Restart= would.
func (s *soak) killer(ctx context.Context, stopAll context.CancelFunc) {
	rng := rand.New(rand.NewSource(s.cfg.seed + 7919))
	fail := func(err error) {
		s.goroutineFatal(err)
		stopAll()
	}
	for {
		s.mu.Lock()
		l := s.d
		s.mu.Unlock()
		wait := 2*time.Second + time.Duration(rng.Int63n(int64(8*time.Second)))
		sig := syscall.SIGKILL
		if rng.Intn(5) == 0 {
			sig = syscall.SIGTERM
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-l.exited:
			timer.Stop()
			if err := s.ended(l); err != nil {
				fail(err)
				return
			}
		case <-timer.C:
			if err := s.stop(sig); err != nil {
				fail(err)
				return
			}
		}
		crashpoint := ""
		if rng.Intn(3) == 0 {
			crashpoint = soakCrashPoints[rng.Intn(len(soakCrashPoints))]
		}
		if _, err := s.launch(crashpoint); err != nil {
			fail(err)
			return
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// --- the POS ---

// posAsk posts one capture and names the answer: "200 ok", "504 secupay_timeout",
// "502 secupay_refused", …, or "no answer" when the daemon was not there to answer.
func (s *soak) posAsk(ctx context.Context, c *http.Client, id string) string {
	req, err := http.NewRequestWithContext(ctx, "POST", "http://ecrd/v1/transactions/"+id+"/cash", nil)
	if err != nil {
		panic(err)
	}
	label := "no answer"
	if resp, err := c.Do(req); err == nil {
		var body struct {
			Status string `json:"status"`
			Error  struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		var raw bytes.Buffer
		_, rerr := raw.ReadFrom(resp.Body)
		resp.Body.Close()
		switch {
		case rerr != nil:
		case json.Unmarshal(raw.Bytes(), &body) != nil:
			label = fmt.Sprintf("%d (not JSON)", resp.StatusCode)
		case resp.StatusCode == 200:
			label = "200 " + body.Status
		default:
			label = fmt.Sprintf("%d %s", resp.StatusCode, body.Error.Code)
		}
	} else if ctx.Err() != nil {
		return "" // the soak ended this request, not the daemon
	}
	s.mu.Lock()
	s.answers[label]++
	if s.perID[id] == nil {
		s.perID[id] = map[string]int{}
	}
	s.perID[id][label]++
	s.mu.Unlock()
	return label
}

// pos is one point-of-sale app: it asks to capture random transactions, mostly ones it has
// not been told "ok" for, and asks again the ways a POS does. The set opens over the first
// 80 % of the run, so first captures — the ones lost answers and kills can hurt — happen
// throughout it, not only in its first seconds.
func (s *soak) pos(ctx context.Context, n int, began time.Time) {
	rng := rand.New(rand.NewSource(s.cfg.seed + int64(n)*104729))
	c := socketClient(s.e.socket, 15*time.Second)
	paid := map[string]bool{}
	soakIDs := s.ids[1:]
	for ctx.Err() == nil {
		open := 1 + int(float64(len(soakIDs))*time.Since(began).Seconds()/(0.8*s.cfg.duration.Seconds()))
		id := soakIDs[rng.Intn(min(open, len(soakIDs)))]
		if paid[id] && rng.Intn(10) < 8 {
			continue // mostly the ones not paid yet; the rest are replays
		}
		var label string
		if rng.Intn(10) == 0 {
			// Two requests for one id at once (a double tap): one may get 409.
			var wg sync.WaitGroup
			var other string
			wg.Add(1)
			go func() { defer wg.Done(); other = s.posAsk(ctx, c, id) }()
			label = s.posAsk(ctx, c, id)
			wg.Wait()
			if other == "200 ok" {
				label = other
			}
		} else {
			label = s.posAsk(ctx, c, id)
		}
		switch label {
		case "200 ok":
			paid[id] = true
			if rng.Intn(5) == 0 {
				s.posAsk(ctx, c, id) // asked again at once: a replay
			}
		case "504 secupay_timeout", "504 in_doubt":
			if rng.Intn(2) == 0 {
				if s.posAsk(ctx, c, id) == "200 ok" {
					paid[id] = true
				}
			} else {
				sleepCtx(ctx, time.Duration(rng.Int63n(int64(2*time.Second))))
			}
		case "no answer":
			sleepCtx(ctx, 100*time.Millisecond+time.Duration(rng.Int63n(int64(400*time.Millisecond))))
		default:
			sleepCtx(ctx, time.Duration(rng.Int63n(int64(500*time.Millisecond))))
		}
		// The next customer.
		sleepCtx(ctx, 50*time.Millisecond+time.Duration(rng.Int63n(int64(350*time.Millisecond))))
	}
}

// settle asks for every id until the answer is definitive: 200 ok, or 502 secupay_refused.
func (s *soak) settle() {
	deadline := time.Now().Add(soakSettle)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	work := make(chan string)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := socketClient(s.e.socket, 15*time.Second)
			for id := range work {
				last := ""
				for {
					label := s.posAsk(ctx, c, id)
					if label == "" {
						break
					}
					last = label
					if label == "200 ok" || label == "502 secupay_refused" {
						s.mu.Lock()
						s.final[id] = label
						s.mu.Unlock()
						break
					}
					if !sleepCtx(ctx, 250*time.Millisecond) {
						break
					}
				}
				if ctx.Err() != nil {
					s.mu.Lock()
					if _, ok := s.final[id]; !ok {
						s.unsettled[id] = last
					}
					s.mu.Unlock()
				}
			}
		}()
	}
	for _, id := range s.ids {
		work <- id
	}
	close(work)
	wg.Wait()
}

// waitDrained waits for the spool to be empty and no capture to be unfinished.
func (s *soak) waitDrained() {
	c := socketClient(s.e.socket, 15*time.Second)
	var last map[string]any
	err := wait.TryEvery(soakSettle, 100*time.Millisecond, func() error {
		status, body, err := call(c, "GET", "/healthz")
		if err == nil && status == 200 && json.Unmarshal(body, &last) == nil &&
			last["queued"] == float64(0) && last["unfinished_captures"] == float64(0) {
			return nil
		}
		return errors.New("not drained")
	})
	if err != nil {
		s.violate("settle", "after %s the daemon still reports %v (queued jobs, unfinished captures)", soakSettle, last)
	}
}
