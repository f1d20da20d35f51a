//go:build soak

package main

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ecrd-pos/ecrd/internal/wait"
	"github.com/ecrd-pos/ecrd/receipt"
	"github.com/ecrd-pos/ecrd/secupay/secupaytest"
)

// --- the paper ---

// paperJob is one job in the printer file, with the transaction its text names.
type paperJob struct {
	data  []byte
	id    string // "" if it names none and no retry follows it
	whole bool
	names int // distinct transaction ids in the job
}

var soakIDText = regexp.MustCompile(`STX_SOAK[A-Z0-9]+`)

// parsePaper splits the printer file into jobs and drawer kicks. kicksAt[i] is how many
// jobs preceded the i-th kick.
func parsePaper(b, kick []byte) (jobs []paperJob, kicksAt []int) {
	addJobs := func(seg []byte) {
		for _, j := range splitJobs(seg) {
			names := map[string]bool{}
			for _, m := range soakIDText.FindAll(j, -1) {
				names[string(m)] = true
			}
			pj := paperJob{data: j, whole: wholeReceipt(j), names: len(names)}
			for n := range names {
				pj.id = n
			}
			jobs = append(jobs, pj)
		}
	}
	for {
		i := bytes.Index(b, kick)
		if i < 0 {
			addJobs(b)
			break
		}
		addJobs(b[:i])
		kicksAt = append(kicksAt, len(jobs))
		b = b[i+len(kick):]
	}
	// A job torn before its id line names no transaction. The spool prints its queue in
	// order and retries a torn job whole before anything else, so the first whole job after
	// it that starts with its bytes is that retry, and names the transaction.
	for i := range jobs {
		if jobs[i].whole || jobs[i].id != "" {
			continue
		}
		for k := i + 1; k < len(jobs); k++ {
			if jobs[k].whole && bytes.HasPrefix(jobs[k].data, jobs[i].data) {
				jobs[i].id = jobs[k].id
				break
			}
		}
	}
	return jobs, kicksAt
}

// attributeKicks counts the drawer kicks per transaction. Each belongs to the receipt job it
// was written with: the one after it when the kick is the job's first bytes (before the
// fix), the one before it when it is written after the job printed.
func attributeKicks(jobs []paperJob, kicksAt []int, layout string) (kicks map[string]int, problems []string) {
	kicks = map[string]int{}
	for k, at := range kicksAt {
		var j *paperJob
		switch {
		case layout == kickBeforeJob && at < len(jobs):
			j = &jobs[at]
		case layout == kickAfterJob && at > 0:
			j = &jobs[at-1]
			if !j.whole {
				problems = append(problems, fmt.Sprintf("kick %d follows a torn job (of %q): the drawer must open only after its receipt printed", k, j.id))
			}
		}
		if j == nil || j.id == "" {
			problems = append(problems, fmt.Sprintf("kick %d on paper (%s) belongs to no transaction's receipt (after job %d of %d)", k, layout, at, len(jobs)))
			continue
		}
		kicks[j.id]++
	}
	return kicks, problems
}

// probeLayout captures soakProbeID alone and learns from the paper where this daemon puts
// the drawer kick: before the fix it is the first bytes of the receipt job, after it a write
// of its own behind the printed receipt.
func (s *soak) probeLayout() {
	c := socketClient(s.e.socket, 15*time.Second)
	if label := s.posAsk(context.Background(), c, soakProbeID); label != "200 ok" {
		s.fatalf("the probe capture %s before the chaos, with secupay answering at once: %s", soakProbeID, label)
	}
	err := wait.TryEvery(20*time.Second, 50*time.Millisecond, func() error {
		b := readPrinterFile(s.t, s.e)
		jobs, kicks := parsePaper(b, s.kick)
		if len(kicks) > 0 && len(jobs) == 1 && jobs[0].whole {
			switch kicks[0] {
			case 0:
				s.layout = kickBeforeJob
			case 1:
				s.layout = kickAfterJob
			}
			return nil
		}
		return fmt.Errorf("%d jobs, %d kicks on paper: %q", len(jobs), len(kicks), b)
	})
	if err != nil {
		s.fatalf("guarantee 3 (drawer kick): the probe capture %s did not print one whole receipt with one drawer kick (ECRD_DRAWER_KICK=0) within 20s: %v",
			soakProbeID, err)
	}
}

// check asserts the guarantees for every transaction and prints the summary.
func (s *soak) check() {
	if !s.inDoubt {
		s.violate("setup", "`ecrd serve -h` lists no --in-doubt-wait (ECRD_IN_DOUBT_WAIT): the daemon ran without a bound on re-sending start/cash after a lost answer")
	}
	jobs, kicksAt := parsePaper(readPrinterFile(s.t, s.e), s.kick)
	whole, torn := map[string]int{}, map[string]int{}
	tornUnnamed, totalWhole, totalTorn := 0, 0, 0
	for i, j := range jobs {
		if j.names > 1 {
			s.violate("paper", "job %d on paper names %d transactions: jobs interleaved", i, j.names)
		}
		switch {
		case j.whole:
			totalWhole++
			if j.id == "" {
				s.violate("paper", "whole job %d on paper names no soak transaction", i)
				continue
			}
			whole[j.id]++
		default:
			totalTorn++
			if j.id == "" {
				tornUnnamed++
			} else {
				torn[j.id]++
			}
		}
	}
	kicks, problems := attributeKicks(jobs, kicksAt, s.layout)
	for _, p := range problems {
		s.violate("guarantee 3 (drawer kick)", "%s", p)
	}

	paid, refused, multiCopy := 0, 0, 0
	totalKicks := 0
	for _, id := range s.ids {
		captures := s.e.fake.Calls().Captures[id]
		starts := s.e.fake.Calls().StartCash[id]
		final, settled := s.final[id]
		if !settled {
			final = "unsettled (last answer " + strconv.Quote(s.unsettled[id]) + ")"
			s.violate("settle", "%s: no definitive answer within %s; last answer %q; answers %s", id, soakSettle, s.unsettled[id], s.answersOf(id))
		}
		totalKicks += kicks[id]
		if whole[id] > 1 {
			multiCopy++
		}
		if final == "502 secupay_refused" {
			refused++
		}
		if captures > 1 {
			s.violate("guarantee 1 (captured at most once)", "%s: secupay captured it %d times (%d start/cash calls)", id, captures, starts)
		}
		if captures == 0 {
			if whole[id]+torn[id] > 0 {
				s.violate("guarantee 2 (no receipt without payment)", "%s: secupay never captured it but the paper holds %d whole and %d torn receipts of it", id, whole[id], torn[id])
			}
			if final == "200 ok" {
				s.violate("guarantee 2 (no ok without payment)", "%s: secupay never captured it but the POS was finally told 200 ok (answers %s)", id, s.answersOf(id))
			}
			if kicks[id] > 0 {
				s.violate("guarantee 3 (drawer kick)", "%s: secupay never captured it but the drawer opened %d times for it", id, kicks[id])
			}
			continue
		}
		paid++
		// Every start/cash the fake receives either captures, or finds the transaction being
		// processed or captured — except a planned fault that captures nothing. So for a
		// captured transaction that fault is the only legitimate cause of a second start/cash
		// and of a refusal; any other refusal told the cashier "not paid" for a paid one.
		allowed, why := 1, ""
		if f := s.plan[id]; f != nil && !f.captures {
			allowed, why = 2, fmt.Sprintf(" (one more allowed: the first was answered %q without capturing)", f.name)
		}
		if r := s.perID[id]["502 secupay_refused"]; r > allowed-1 {
			s.violate("guarantee 2 (paid ⇒ never told refused)", "%s: secupay captured it but the POS was told 502 secupay_refused %d times, want at most %d%s; answers %s",
				id, r, allowed-1, why, s.answersOf(id))
		}
		if starts > allowed {
			s.violate("guarantee 1 (no second start/cash)", "%s: secupay captured it and received %d start/cash calls, want at most %d%s: a start/cash was sent while another was being processed or after the capture; POS answers %s",
				id, starts, allowed, why, s.answersOf(id))
		}
		if whole[id] < 1 {
			s.violate("guarantee 2 (paid ⇒ receipt)", "%s: secupay captured it but the paper holds %d whole receipts of it (%d torn); POS answers %s", id, whole[id], torn[id], s.answersOf(id))
		}
		if final != "200 ok" {
			s.violate("guarantee 2 (paid ⇒ POS told ok)", "%s: secupay captured it but the POS's final answer is %s; answers %s", id, final, s.answersOf(id))
		}
		if kicks[id] > 1 {
			s.violate("guarantee 3 (drawer kick at most once)", "%s: the drawer opened %d times for one payment (%d whole receipts, %d torn; %s)", id, kicks[id], whole[id], torn[id], s.layout)
		}
	}

	var answers []string
	for label, n := range s.answers {
		answers = append(answers, fmt.Sprintf("%s=%d", label, n))
	}
	sort.Strings(answers)
	var broken []string
	for g, n := range s.failures {
		broken = append(broken, fmt.Sprintf("%s: %d", g, n))
	}
	slices.Sort(broken)
	summary := fmt.Sprintf("soak seed=%d: ids=%d paid=%d refused=%d unsettled=%d; start/cash=%d, secupay captures=%d; receipts whole=%d torn=%d (torn without id %d, ids with >1 whole copy %d); drawer kicks=%d (%s); daemon lives=%d (SIGKILL %d, SIGTERM %d, died at crash point %d: %s); POS answers: %s",
		s.cfg.seed, len(s.ids), paid, refused, len(s.unsettled), s.e.fake.Calls().TotalStartCash, sumCaptures(s.e.fake, s.ids),
		totalWhole, totalTorn, tornUnnamed, multiCopy, len(kicksAt), s.layout, s.lives, s.sigkills, s.sigterms, sumCounts(s.crashes), countsOf(s.crashes), strings.Join(answers, " "))
	if len(broken) > 0 {
		s.t.Errorf("%s\nBROKEN: %s", summary, strings.Join(broken, "; "))
	} else {
		s.t.Log(summary)
	}
}

func (s *soak) answersOf(id string) string { return countsOf(s.perID[id]) }

// countsOf prints counts as "[a×2, b×1]", sorted.
func countsOf(m map[string]int) string {
	var parts []string
	for label, n := range m {
		parts = append(parts, fmt.Sprintf("%s×%d", label, n))
	}
	if len(parts) == 0 {
		return "(none)"
	}
	sort.Strings(parts)
	return "[" + strings.Join(parts, ", ") + "]"
}

func sumCounts(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func sumCaptures(f *secupaytest.Server, ids []string) int {
	n := 0
	for _, id := range ids {
		n += f.Calls().Captures[id]
	}
	return n
}

// TestSoakPaperParse checks the soak's reading of the paper on a made-up printer file, in
// both places the drawer kick can be: a kick belongs to the job it was written with, and a
// job torn before its id line belongs to the whole retry that follows it.
func TestSoakPaperParse(t *testing.T) {
	kick := receipt.DrawerKick(0)
	job := func(id string) []byte {
		b := append([]byte(nil), jobStart...)
		b = append(b, "------ Barzahlung ------\nVorgang: "+id+"\n7,96 EUR\n"...)
		return append(b, 0x1d, 0x56, 66, 0)
	}
	a, b := job(soakID(1)), job(soakID(2))
	tornB := b[:12] // cut before the id line
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, c := range []struct {
		layout string
		paper  []byte
	}{
		{kickBeforeJob, cat(kick, a, kick, tornB, kick, b)},
		{kickAfterJob, cat(a, kick, tornB, b, kick)},
	} {
		jobs, kicksAt := parsePaper(c.paper, kick)
		var got []string
		for _, j := range jobs {
			got = append(got, fmt.Sprintf("%s/%v", j.id, j.whole))
		}
		want := []string{soakID(1) + "/true", soakID(2) + "/false", soakID(2) + "/true"}
		if !slices.Equal(got, want) {
			t.Errorf("%s: jobs %v, want %v", c.layout, got, want)
		}
		kicks, problems := attributeKicks(jobs, kicksAt, c.layout)
		if len(problems) > 0 {
			t.Errorf("%s: %v", c.layout, problems)
		}
		wantKicks := map[string]int{soakID(1): 1, soakID(2): 2}
		if c.layout == kickAfterJob {
			wantKicks[soakID(2)] = 1
		}
		if fmt.Sprint(kicks) != fmt.Sprint(wantKicks) {
			t.Errorf("%s: kicks %v, want %v", c.layout, kicks, wantKicks)
		}
	}
}
