package spool

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestNewestKeepsTheKLargest(t *testing.T) {
	for _, k := range []int{0, 1, 7, 100} {
		for _, count := range []int{0, 5, 7, 100, 1000} {
			var n newest
			n.k = k
			var all []int64
			for range count {
				v := rand.Int64N(50) // repeats, as file times that share a clock tick
				all = append(all, v)
				n.offer(v)
			}
			slices.Sort(all)
			want := all[max(0, len(all)-k):]
			got := slices.Clone(n.h)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Fatalf("k=%d of %d: kept %v, want %v", k, count, got, want)
			}
			if k > 0 && count >= k && n.min() != want[0] {
				t.Fatalf("k=%d of %d: min %d, want %d", k, count, n.min(), want[0])
			}
		}
	}
}
