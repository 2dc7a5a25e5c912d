package broker

// ring is a FIFO of task keys (see taskKey) that also takes pushes at the front (a task given
// back by a dead node runs next). Its capacity is a power of two that doubles when full and
// halves when a quarter full, so a burst of a million queued tasks costs 8 MiB and the memory
// goes back once the burst is drained. It is owned by the routing state (b.mu held).
type ring struct {
	buf  []uint64
	head int // index of the front element
	n    int // number of elements
}

// minRing is the smallest capacity a ring allocates or shrinks to.
const minRing = 16

func (r *ring) len() int { return r.n }

func (r *ring) grow() {
	size := len(r.buf) * 2
	if size < minRing {
		size = minRing
	}
	r.resize(size)
}

func (r *ring) resize(size int) {
	nb := make([]uint64, size)
	if r.n > 0 {
		m := len(r.buf) - 1
		for i := 0; i < r.n; i++ {
			nb[i] = r.buf[(r.head+i)&m]
		}
	}
	r.buf = nb
	r.head = 0
}

func (r *ring) pushBack(v uint64) {
	if r.n == len(r.buf) {
		r.grow()
	}
	r.buf[(r.head+r.n)&(len(r.buf)-1)] = v
	r.n++
}

func (r *ring) pushFront(v uint64) {
	if r.n == len(r.buf) {
		r.grow()
	}
	r.head = (r.head - 1) & (len(r.buf) - 1)
	r.buf[r.head] = v
	r.n++
}

// at returns element i (0 is the front); i must be below len.
func (r *ring) at(i int) uint64 { return r.buf[(r.head+i)&(len(r.buf)-1)] }

// front returns the first element without removing it; ok is false when empty.
func (r *ring) front() (uint64, bool) {
	if r.n == 0 {
		return 0, false
	}
	return r.buf[r.head], true
}

func (r *ring) popFront() (uint64, bool) {
	if r.n == 0 {
		return 0, false
	}
	v := r.buf[r.head]
	r.head = (r.head + 1) & (len(r.buf) - 1)
	r.n--
	if r.n == 0 {
		r.head = 0
	}
	r.maybeShrink()
	return v, true
}

// maybeShrink halves the buffer when it is at most a quarter full, never below minRing*4: the
// memory of a drained burst goes back to the GC without reallocating on every small swing.
func (r *ring) maybeShrink() {
	if len(r.buf) > minRing*4 && r.n <= len(r.buf)/4 {
		r.resize(len(r.buf) / 2)
	}
}

// filter keeps the elements for which keep returns true, in order (used to drop the entries of
// removed tasks once they outnumber the live ones).
func (r *ring) filter(keep func(uint64) bool) {
	if r.n == 0 {
		return
	}
	m := len(r.buf) - 1
	w := 0
	for i := 0; i < r.n; i++ {
		v := r.buf[(r.head+i)&m]
		if keep(v) {
			r.buf[(r.head+w)&m] = v
			w++
		}
	}
	r.n = w
	for len(r.buf) > minRing*4 && r.n <= len(r.buf)/4 {
		r.resize(len(r.buf) / 2)
	}
}
