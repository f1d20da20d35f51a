package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/store"
)

// redteamKilledRecover runs the built `ecrd store recover` under strace, which kills it with
// SIGKILL at its nth call of syscall sc (a technician's Ctrl-\ or a power button at that
// instant, as far as the files go). It reports whether the kill happened.
func redteamKilledRecover(t *testing.T, state, sc string, n int) (killed bool, out string) {
	t.Helper()
	cmd := exec.Command("strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace="+sc,
		"-e", fmt.Sprintf("inject=%s:signal=SIGKILL:when=%d", sc, n),
		ecrdBin, "store", "recover", "--state-dir", state)
	b, err := cmd.CombinedOutput()
	return err != nil && !strings.Contains(string(b), "recovered:"), string(b)
}

// startsOrRefuses launches the daemon; it reports whether it came up healthy (else it
// refused to start, which it must while the recovery is unfinished).
func (e *daemonEnv) redteamStartsOrRefuses(t *testing.T) (*proc, bool) {
	t.Helper()
	p := e.launch()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			return p, false
		default:
		}
		if status, _, err := e.request("GET", "/healthz"); err == nil && status == 200 {
			return p, true
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("daemon neither healthy nor exited\n%s", p.logs)
	return p, false
}

// `ecrd store recover` killed at each rename, each unlink and each fsync: the daemon either
// starts on the database as it was (killed before the mark) or refuses until a rerun has
// finished the recovery, and afterwards no paid capture is sent start/cash again.
func TestRedteamRecoverKilledAtEachStep(t *testing.T) {
	t.Parallel()
	for _, sc := range []string{"renameat,rename,renameat2", "fsync,fdatasync", "unlinkat,unlink,rmdir"} {
		t.Run(strings.SplitN(sc, ",", 2)[0], func(t *testing.T) {
			t.Parallel()
			redteamKillEach(t, sc)
		})
	}
}

// redteamKillEach kills recover at the 1st, 2nd, … call of the syscalls sc until one run
// is not killed (it finished first).
func redteamKillEach(t *testing.T, sc string) {
	for n := 1; n < 40; n++ {
		name := fmt.Sprintf("%s#%d", strings.SplitN(sc, ",", 2)[0], n)
		done := false
		t.Run(name, func(t *testing.T) {
			e := newDaemonEnv(t)
			p := e.start()
			const cnt = 40
			for i := range cnt {
				if status, out := e.capture(fmt.Sprintf("STX_KILL%03d", i)); status != 200 {
					t.Fatalf("capture: %d %v", status, out)
				}
			}
			e.waitReceipts(cnt)
			stopCleanly(t, p)
			damageCapturesLeafSmall(t, filepath.Join(e.state, store.File))

			killed, out := redteamKilledRecover(t, e.state, sc, n)
			if !killed {
				done = true
				return
			}
			ls, _ := filepath.Glob(filepath.Join(e.state, "*"))
			t.Logf("killed at %s: %s\nstate dir: %q", name, out, ls)
			p, up := e.redteamStartsOrRefuses(t)
			if up {
				// Only a finished recovery may let it start: every capture still known.
				t.Logf("the daemon started after the kill")
			} else {
				code, out, errs := runCLI(t, "", "store", "recover", "--state-dir", e.state)
				if code != 0 {
					t.Fatalf("rerun of recover after a kill at %s: exit %d\n%s%s", name, code, out, errs)
				}
				p = e.start()
			}
			for i := range cnt {
				e.capture(fmt.Sprintf("STX_KILL%03d", i))
			}
			stopCleanly(t, p)
			calls := e.fake.Calls()
			for i := range cnt {
				if id := fmt.Sprintf("STX_KILL%03d", i); calls.StartCash[id] != 1 {
					t.Errorf("%s: start/cash sent %d times", id, calls.StartCash[id])
				}
			}
			if r := e.receipts(); len(r) < cnt {
				t.Errorf("%d receipts of %d", len(r), cnt)
			}
		})
		if done {
			break
		}
	}
}

// damageCapturesLeafSmall overwrites the second leaf of the captures table (40 captures fill
// a few).
func damageCapturesLeafSmall(t *testing.T, db string) {
	t.Helper()
	leaves := dbPages(t, db, "SELECT pageno FROM dbstat WHERE name = 'captures' AND pagetype = 'leaf' ORDER BY pageno")
	if len(leaves) < 2 {
		t.Fatalf("captures fill %d leaves", len(leaves))
	}
	overwritePage(t, db, leaves[1])
}
