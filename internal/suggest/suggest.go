// Package suggest finds the word a person probably meant — "did you mean lp?" for a URI
// scheme typed "pl:", "TM-T88V" for "TMT88V" — so an error about a typo says how to fix it.
package suggest

import (
	"strings"
	"unicode/utf8"
)

// Closest returns the candidate nearest to word (case and the characters " -_." ignored),
// if it is near enough to be a typo of it: at most one edit in a short word, a third of the
// word's length in a longer one, or the candidate begins with a word of four characters or
// more ("tm-t20" for "TM-T20II"). ok is false when none is.
func Closest(word string, candidates []string) (best string, ok bool) {
	w := fold(word)
	if w == "" {
		return "", false
	}
	limit := max(1, utf8.RuneCountInString(w)/3)
	bestD := limit + 1
	for _, c := range candidates {
		fc := fold(c)
		d := distance(w, fc)
		if len(w) >= 4 && strings.HasPrefix(fc, w) {
			d = min(d, limit)
		}
		if d < bestD {
			best, bestD = c, d
		}
	}
	return best, bestD <= limit
}

func fold(s string) string {
	return strings.Map(func(r rune) rune {
		if strings.ContainsRune(" -_.", r) {
			return -1
		}
		return r
	}, strings.ToLower(strings.TrimSpace(s)))
}

// distance is the Levenshtein distance of a and b, with a swap of two neighbours as one edit
// (the commonest typo).
func distance(a, b string) int {
	x, y := []rune(a), []rune(b)
	prev2 := make([]int, len(y)+1)
	prev := make([]int, len(y)+1)
	cur := make([]int, len(y)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(x); i++ {
		cur[0] = i
		for j := 1; j <= len(y); j++ {
			cost := 1
			if x[i-1] == y[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && x[i-1] == y[j-2] && x[i-2] == y[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(y)]
}
