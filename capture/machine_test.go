package capture

import (
	"fmt"
	"testing"
)

// The in-doubt rule and the drawer of money it guards, as properties of the state machine,
// checked for every phase, event and walk: next is the one place they are decided.
func TestStateMachineKeepsTheMoneyRules(t *testing.T) {
	t.Parallel()
	phases := []Phase{"", PhaseIntent, PhaseInDoubt, PhaseCaptured, PhaseRefused, PhaseNotCaptured}
	events := []event{asked, resumed, sentCaptured, sentNotSent, sentRefused, sentInDoubt,
		readCaptured, readEnded, readNotCaptured, readInDoubt}
	refusal := &Refusal{HTTPStatus: 400, Status: "error", Error: "ProductBadRequestException"}
	// The walks that can meet each event: a request starts unsent, the resolver never sends,
	// a refusal is known only after this walk's start/cash was refused.
	resolver, request := walk{}, walk{asked: true}
	sent, refused := walk{asked: true, sent: true}, walk{asked: true, sent: true, refusal: refusal}
	walksFor := func(ev event) []walk {
		switch ev {
		case asked:
			return []walk{request}
		case resumed:
			return []walk{resolver}
		case sentRefused:
			return []walk{refused}
		case sentCaptured, sentNotSent, sentInDoubt:
			return []walk{sent}
		}
		return []walk{resolver, request, sent, refused}
	}
	for _, ph := range phases {
		for _, spooled := range []bool{false, true} {
			rec := &Record{TransactionID: seed, Phase: ph, Spooled: spooled}
			for _, ev := range events {
				for _, w := range walksFor(ev) {
					name := fmt.Sprintf("phase %q spooled %v, event %d, walk %+v", ph, spooled, ev, w)
					st := next(rec, ev, w)
					switch {
					case st == stepSend && (ev == asked || ev == resumed) && rec.inDoubt():
						t.Errorf("%s: sends while a start/cash may be unsettled", name)
					case st == stepSend && ev == asked && ph == PhaseCaptured:
						t.Errorf("%s: sends for a captured transaction", name)
					case st == stepSend && !w.asked:
						t.Errorf("%s: the resolver sends start/cash", name)
					case st == stepSend && ev != asked && ev != readNotCaptured:
						t.Errorf("%s: sends after %d, which proves nothing", name, ev)
					case st == stepSend && w.sent:
						t.Errorf("%s: a second start/cash in one walk", name)
					case st == stepRefuse && ev != readEnded && ev != readNotCaptured:
						t.Errorf("%s: a refusal believed without a read-back", name)
					case st == stepRefuse && w.refusal == nil:
						t.Errorf("%s: refused without secupay's refusal", name)
					case (ev == sentCaptured || ev == readCaptured) && st != stepRecord:
						t.Errorf("%s: a capture not journaled first (%d)", name, st)
					case ev == sentRefused && st != stepReadBack:
						t.Errorf("%s: a refusal not read back (%d)", name, st)
					case ev == sentInDoubt && st != stepReadBack:
						t.Errorf("%s: a doubt not read back (%d)", name, st)
					case !w.asked && (st == stepAnswer || st == stepUnreachable || st == stepInDoubt || st == stepNotCaptured):
						t.Errorf("%s: the resolver answers a POS (%d)", name, st)
					}
				}
			}
		}
	}
}

// The walks a capture takes, step by step, as the table in docs/durability.md tells them.
func TestStateMachineWalks(t *testing.T) {
	t.Parallel()
	pos, resolver := walk{asked: true}, walk{}
	sent := walk{asked: true, sent: true}
	refused := walk{asked: true, sent: true, refusal: &Refusal{HTTPStatus: 400}}
	for _, c := range []struct {
		phase Phase
		ev    event
		w     walk
		want  step
	}{
		{"", asked, pos, stepSend},
		{PhaseRefused, asked, pos, stepSend},
		{PhaseNotCaptured, asked, pos, stepSend},
		{PhaseCaptured, asked, pos, stepAnswer},
		{PhaseIntent, asked, pos, stepReadBack},
		{PhaseInDoubt, asked, pos, stepReadBack},
		{PhaseInDoubt, readNotCaptured, pos, stepSend},
		{PhaseInDoubt, readEnded, pos, stepNotCaptured},
		{PhaseInDoubt, readInDoubt, pos, stepInDoubt},
		{PhaseIntent, sentCaptured, sent, stepRecord},
		{PhaseIntent, sentNotSent, sent, stepUnreachable},
		{PhaseIntent, sentRefused, refused, stepReadBack},
		{PhaseIntent, readNotCaptured, refused, stepRefuse},
		{PhaseIntent, readCaptured, refused, stepRecord},
		{PhaseInDoubt, readNotCaptured, sent, stepNotCaptured},
		{PhaseInDoubt, readInDoubt, refused, stepInDoubt},
		{PhaseInDoubt, resumed, resolver, stepReadBack},
		{PhaseInDoubt, readCaptured, resolver, stepRecord},
		{PhaseInDoubt, readInDoubt, resolver, stepDone},
		{PhaseNotCaptured, readNotCaptured, resolver, stepDone},
		{PhaseRefused, resumed, resolver, stepDone},
	} {
		rec := &Record{TransactionID: seed, Phase: c.phase}
		if got := next(rec, c.ev, c.w); got != c.want {
			t.Errorf("phase %q, event %d, walk %+v: step %d, want %d", c.phase, c.ev, c.w, got, c.want)
		}
	}
	rec := &Record{TransactionID: seed, Phase: PhaseCaptured}
	if got := next(rec, resumed, resolver); got != stepSpool {
		t.Errorf("captured, not spooled, resumed: step %d, want stepSpool", got)
	}
	rec.Spooled = true
	if got := next(rec, resumed, resolver); got != stepDone {
		t.Errorf("captured and spooled, resumed: step %d, want stepDone", got)
	}
}
