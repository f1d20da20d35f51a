package printer

import (
	"fmt"
	"strings"
)

// The DLE EOT n queries asked, in order, and why each one: n=1 says offline, n=2 says why
// (cover, paper-end stop, error), n=4 reads the paper roll sensor (near end, end).
var statusQueries = [3]byte{1, 2, 4}

// validStatusByte reports whether b can be a DLE EOT answer: the Epson reference fixes bits
// 1 and 4 to 1 and bits 0 and 7 to 0 (0xx1xx10). Anything else is line noise, an automatic
// status back message or the tail of an earlier answer, and must not be read as a state.
func validStatusByte(b byte) bool { return b&0x93 == 0x12 }

// decodeStatus turns the answers to DLE EOT 1, 2 and 4 into one State. The precedence is the
// order a cashier can act on: paper out, cover open, offline (which the first two also cause),
// then paper near end, then online. Every condition seen is named in Detail.
func decodeStatus(answers [3]byte) (Status, error) {
	for i, b := range answers {
		if !validStatusByte(b) {
			return Status{}, fmt.Errorf("invalid answer 0x%02x to DLE EOT %d (want bit pattern 0xx1xx10)", b, statusQueries[i])
		}
	}
	printer, cause, paper := answers[0], answers[1], answers[2]
	var words []string
	flag := func(cond bool, word string) bool {
		if cond {
			words = append(words, word)
		}
		return cond
	}
	paperOut := flag(paper&0x60 != 0, "paper end")
	paperOut = flag(cause&0x20 != 0, "stopped by paper end") || paperOut
	coverOpen := flag(cause&0x04 != 0, "cover open")
	offline := flag(printer&0x08 != 0, "offline")
	offline = flag(cause&0x40 != 0, "error") || offline
	nearEnd := flag(paper&0x0c != 0, "paper near end")

	st := Status{State: StateOnline, Detail: strings.Join(words, ", ")}
	switch {
	case paperOut:
		st.State = StatePaperOut
	case coverOpen:
		st.State = StateCoverOpen
	case offline:
		st.State = StateOffline
	case nearEnd:
		st.State = StatePaperNearEnd
	}
	return st, nil
}
