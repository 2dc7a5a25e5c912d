package broker

import (
	"time"

	"github.com/zerotask/zerotask/internal/minheap"
)

// record is a finished task of a submitted call, as the result store keeps it. method and node
// share the strings of the queue and node they came from (no copy); result and errObj are raw
// JSON owned by the record.
type record struct {
	seq      uint64
	method   string
	queue    string // the named queue, "" for the default one
	node     string
	owner    string // the authenticated name of its submitter, "" without one
	meta     string // its meta object (raw JSON), "" for none
	result   []byte // raw JSON result (SUCCESS)
	errObj   []byte // raw JSON error object (FAILURE, REVOKED, EXPIRED)
	expires  int64  // unix nanoseconds after which the record is forgotten
	attempts uint8
	state    state
	unread   bool // stored during a shutdown and not delivered yet (see Broker.Shutdown)
}

// waiter is a pending broker.result with a wait: the reply target and the client's request id
// (owned, from the routing state's buffer pool).
type waiter struct {
	tg       target
	id       []byte
	seq      uint64
	deadline int64
	hidx     int     // index in the deadline heap, -1 when not in it
	next     *waiter // next waiter of the same seq (the store's list)
	prev     *waiter // previous one, so that forgetting one costs O(1) however many wait
	pprev    *waiter // the client's list of waiters (the routing state's)
	pnext    *waiter
	share    *share // the client share it is charged to
}

// memStore keeps the records of finished submitted tasks for a TTL and up to a bound, and
// wakes the waiters of broker.result when a record arrives: a map by task sequence number, a
// FIFO in completion order for TTL and bound eviction (the TTL is the same for every record,
// so completion order is expiry order), and a deadline heap for waiters. In durable mode the
// records are also written to the store (putResult), and records this broker does not have
// are read from there (lookups); this is the broker's own copy.
//
// Its methods are called by the routing state with its lock held and never block: put
// stores a copy of rec for ttl and wakes every waiter of rec.seq; get returns a record valid
// until the next call; wait registers a waiter woken once (by put, by expire past its
// deadline with a nil record, or by wakeAll); cancel forgets a waiter without waking it.
type memStore struct {
	recs     map[uint64]*record
	order    ring   // seqs in put order
	popped   uint64 // entries popped from the front of order so far (broker.list's positions)
	max      int
	maxBytes int64 // bound on bytes (recordSize of every record)
	bytes    int64
	free     []*record
	waiters  map[uint64]*waiter
	heap     minheap.Heap[*waiter]
	// wake is called (lock held) for each woken waiter; rec is nil when its deadline passed.
	wake func(w *waiter, rec *record)
	now  func() int64
}

// recordOverhead is what a record counts against Config.MaxResultBytes besides its raw JSON:
// the record, its map entry and ring slot.
const recordOverhead = 128

func recordSize(r *record) int64 {
	return int64(len(r.result)+len(r.errObj)+len(r.meta)) + recordOverhead
}

func newMemStore(max int, maxBytes int64, wake func(*waiter, *record), now func() int64) *memStore {
	return &memStore{
		recs:     make(map[uint64]*record),
		waiters:  make(map[uint64]*waiter),
		max:      max,
		maxBytes: maxBytes,
		wake:     wake,
		now:      now,
	}
}

func (s *memStore) put(rec *record, ttl time.Duration) {
	r, ok := s.recs[rec.seq]
	if !ok {
		if n := len(s.free); n > 0 {
			r = s.free[n-1]
			s.free = s.free[:n-1]
		} else {
			r = new(record)
		}
		s.recs[rec.seq] = r
		s.order.pushBack(rec.seq)
	} else {
		s.bytes -= recordSize(r)
	}
	res, eo := r.result[:0], r.errObj[:0]
	*r = *rec
	r.result = append(res, rec.result...)
	r.errObj = append(eo, rec.errObj...)
	r.expires = s.now() + int64(ttl)
	s.bytes += recordSize(r)
	// Past either bound the oldest records go first; the newest one always stays (a single
	// record is bounded by MaxMsgSize).
	for len(s.recs) > 1 && (s.max > 0 && len(s.recs) > s.max || s.maxBytes > 0 && s.bytes > s.maxBytes) {
		s.evictFront()
	}
	for w := s.waiters[rec.seq]; w != nil; {
		next := w.next
		s.heap.Remove(w)
		w.next, w.prev = nil, nil
		s.wake(w, r)
		w = next
	}
	delete(s.waiters, rec.seq)
}

func (s *memStore) evictFront() {
	seq, ok := s.order.popFront()
	if !ok {
		return
	}
	s.popped++
	if r, ok := s.recs[seq]; ok {
		delete(s.recs, seq)
		s.bytes -= recordSize(r)
		if cap(r.result) > 4096 {
			r.result = nil
		}
		if cap(r.errObj) > 4096 {
			r.errObj = nil
		}
		if len(s.free) < 1024 {
			s.free = append(s.free, r)
		}
	}
}

// forget drops the record of seq (a durable broker's archived task run again through the
// store: its record here is stale); its FIFO entry goes stale.
func (s *memStore) forget(seq uint64) {
	if r, ok := s.recs[seq]; ok {
		delete(s.recs, seq)
		s.bytes -= recordSize(r)
	}
}

func (s *memStore) get(seq uint64) (*record, bool) {
	r, ok := s.recs[seq]
	return r, ok
}

func (s *memStore) wait(seq uint64, deadline int64, w *waiter) {
	w.seq, w.deadline = seq, deadline
	w.next, w.prev = s.waiters[seq], nil
	if w.next != nil {
		w.next.prev = w
	}
	s.waiters[seq] = w
	s.heap.Push(w)
}

func (s *memStore) expire(now int64) {
	for {
		seq, ok := s.order.front()
		if !ok {
			break
		}
		if r, ok := s.recs[seq]; ok && r.expires > now {
			break
		}
		s.evictFront()
	}
	for s.heap.Len() > 0 && s.heap.Min().deadline <= now {
		w := s.heap.Min()
		s.heap.Remove(w)
		s.unlinkWaiter(w)
		s.wake(w, nil)
	}
}

// take removes every waiter of seq (from its list and the deadline heap) without waking
// them, and returns the first; the others follow it by next.
func (s *memStore) take(seq uint64) *waiter {
	first := s.waiters[seq]
	delete(s.waiters, seq)
	for w := first; w != nil; w = w.next {
		s.heap.Remove(w)
	}
	return first
}

func (s *memStore) cancel(w *waiter) {
	s.heap.Remove(w)
	s.unlinkWaiter(w)
}

func (s *memStore) wakeAll() {
	for s.heap.Len() > 0 {
		w := s.heap.Min()
		s.heap.Remove(w)
		s.unlinkWaiter(w)
		s.wake(w, nil)
	}
}

// unlinkWaiter removes w from its seq's list, in O(1): a client may have many waits on one
// task, and leave.
func (s *memStore) unlinkWaiter(w *waiter) {
	switch {
	case w.prev != nil:
		w.prev.next = w.next
	case s.waiters[w.seq] == w:
		if w.next == nil {
			delete(s.waiters, w.seq)
		} else {
			s.waiters[w.seq] = w.next
		}
	default:
		return // not in a list
	}
	if w.next != nil {
		w.next.prev = w.prev
	}
	w.next, w.prev = nil, nil
}

func (s *memStore) len() int     { return len(s.recs) }
func (s *memStore) waiting() int { return s.heap.Len() }

// HeapKey and HeapIndex place waiters in the deadline heap (internal/minheap).
func (w *waiter) HeapKey() int64  { return w.deadline }
func (w *waiter) HeapIndex() *int { return &w.hidx }
