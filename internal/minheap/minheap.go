// Package minheap is a binary min-heap of pointers ordered by an int64 key (a deadline, an
// expiry time), in which each element keeps its own index, so that it can be removed or moved
// after a key change in O(log n) without a search. The broker's result waiters and the memory
// store's results use it.
package minheap

// Elem is what a Heap holds: a pointer whose element reports its key and the place where the
// heap keeps its index (-1 while it is in no heap).
type Elem interface {
	comparable
	HeapKey() int64
	HeapIndex() *int
}

// Heap is a min-heap of E by HeapKey. The zero value is an empty heap; it is not safe for
// concurrent use.
type Heap[E Elem] struct{ s []E }

// Len returns the number of elements.
func (h *Heap[E]) Len() int { return len(h.s) }

// Min returns the element with the smallest key; the heap must not be empty.
func (h *Heap[E]) Min() E { return h.s[0] }

// Contains reports whether e is in h.
func (h *Heap[E]) Contains(e E) bool {
	i := *e.HeapIndex()
	return i >= 0 && i < len(h.s) && h.s[i] == e
}

// Push adds e, which must not be in a heap already.
func (h *Heap[E]) Push(e E) {
	h.s = append(h.s, e)
	*e.HeapIndex() = len(h.s) - 1
	h.up(len(h.s) - 1)
}

// Remove takes e out of h, reporting false when it was not in it.
func (h *Heap[E]) Remove(e E) bool {
	if !h.Contains(e) {
		return false
	}
	i, last := *e.HeapIndex(), len(h.s)-1
	if i != last {
		h.swap(i, last)
	}
	var zero E
	h.s[last] = zero
	h.s = h.s[:last]
	*e.HeapIndex() = -1
	if i < last {
		h.down(i)
		h.up(i)
	}
	return true
}

// Fix restores the order after e's key changed; e must be in h.
func (h *Heap[E]) Fix(e E) {
	i := *e.HeapIndex()
	h.down(i)
	h.up(i)
}

// Reset empties h, forgetting its elements (their indexes are left as they are).
func (h *Heap[E]) Reset() { h.s = nil }

func (h *Heap[E]) swap(i, j int) {
	h.s[i], h.s[j] = h.s[j], h.s[i]
	*h.s[i].HeapIndex() = i
	*h.s[j].HeapIndex() = j
}

func (h *Heap[E]) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if h.s[p].HeapKey() <= h.s[i].HeapKey() {
			return
		}
		h.swap(i, p)
		i = p
	}
}

func (h *Heap[E]) down(i int) {
	n := len(h.s)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		c := l
		if r := l + 1; r < n && h.s[r].HeapKey() < h.s[l].HeapKey() {
			c = r
		}
		if h.s[i].HeapKey() <= h.s[c].HeapKey() {
			return
		}
		h.swap(i, c)
		i = c
	}
}
