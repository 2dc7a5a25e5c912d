package minheap

import (
	"math/rand/v2"
	"slices"
	"testing"
)

type item struct {
	key int64
	idx int
}

func (it *item) HeapKey() int64  { return it.key }
func (it *item) HeapIndex() *int { return &it.idx }

// TestAgainstSort drives a heap with random pushes, removals, key changes and pops, and checks
// each pop against a sorted copy of what should be in it.
func TestAgainstSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var h Heap[*item]
	in := map[*item]bool{}
	for step := range 20000 {
		switch op := rng.IntN(10); {
		case op < 5:
			it := &item{key: rng.Int64N(1000), idx: -1}
			h.Push(it)
			in[it] = true
		case op < 7 && len(in) > 0:
			for it := range in { // any one
				if !h.Remove(it) {
					t.Fatalf("step %d: Remove of a member reported false", step)
				}
				if h.Remove(it) || h.Contains(it) || it.idx != -1 {
					t.Fatalf("step %d: removed element still in the heap", step)
				}
				delete(in, it)
				break
			}
		case op < 8 && len(in) > 0:
			for it := range in {
				it.key = rng.Int64N(1000)
				h.Fix(it)
				break
			}
		case len(in) > 0:
			keys := make([]int64, 0, len(in))
			for it := range in {
				keys = append(keys, it.key)
			}
			slices.Sort(keys)
			m := h.Min()
			if m.key != keys[0] {
				t.Fatalf("step %d: Min key %d, want %d", step, m.key, keys[0])
			}
			h.Remove(m)
			delete(in, m)
		}
		if h.Len() != len(in) {
			t.Fatalf("step %d: Len %d, want %d", step, h.Len(), len(in))
		}
	}
	// A stranger whose index points at a member's place is not that member.
	member := &item{key: 1, idx: -1}
	h.Push(member)
	stranger := &item{idx: *member.HeapIndex()}
	if h.Contains(stranger) || h.Remove(stranger) || !h.Contains(member) {
		t.Fatal("a stranger whose index points into the heap taken for a member")
	}
}

func TestAllocs(t *testing.T) {
	var h Heap[*item]
	items := make([]*item, 64)
	for i := range items {
		items[i] = &item{key: int64(64 - i), idx: -1}
	}
	for _, it := range items { // grow the slice once
		h.Push(it)
	}
	for _, it := range items {
		h.Remove(it)
	}
	if n := testing.AllocsPerRun(100, func() {
		for _, it := range items {
			h.Push(it)
		}
		for h.Len() > 0 {
			h.Remove(h.Min())
		}
	}); n != 0 {
		t.Fatalf("%v allocations per cycle, want 0", n)
	}
}
