package spool

import "container/heap"

// newest keeps the k largest values offered to it: the KeepDone newest printed times, out of
// a done directory that may hold far more, in memory bounded by k. It is a min-heap, so the
// smallest kept value — the cut-off — is at the root.
type newest struct {
	k int
	h int64Heap
}

func (n *newest) offer(v int64) {
	switch {
	case n.k <= 0:
	case len(n.h) < n.k:
		n.h = append(n.h, v)
		if len(n.h) == n.k {
			heap.Init(&n.h)
		}
	case v > n.h[0]:
		n.h[0] = v
		heap.Fix(&n.h, 0)
	}
}

// min is the smallest value kept; only meaningful once k values were offered.
func (n *newest) min() int64 { return n.h[0] }

// int64Heap is a min-heap for container/heap. Push and Pop are never called: newest only
// replaces the root, which allocates nothing.
type int64Heap []int64

func (h int64Heap) Len() int           { return len(h) }
func (h int64Heap) Less(i, j int) bool { return h[i] < h[j] }
func (h int64Heap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *int64Heap) Push(x any)        { *h = append(*h, x.(int64)) }
func (h *int64Heap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
