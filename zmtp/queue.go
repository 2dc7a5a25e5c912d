package zmtp

import (
	"sync"
	"sync/atomic"
)

// waiters is a list of goroutines parked until some condition may have changed (a broadcast
// that allocates nothing in steady state: each waiter parks on a 1-slot channel taken from a
// pool). Wakers check n without locking, so the common case with no waiter costs one atomic
// load.
//
// A waiter registers BEFORE re-checking its condition, and a waker changes the condition
// BEFORE calling wakeAll; so either the waiter's re-check sees the change or the waker sees
// the waiter.
type waiters struct {
	mu   sync.Mutex
	n    atomic.Int32
	list []chan struct{}
}

var waitChanPool = sync.Pool{New: func() any { return make(chan struct{}, 1) }}

// register adds a waiter and returns its channel; call done(ch) after waiting.
func (w *waiters) register() chan struct{} {
	ch := waitChanPool.Get().(chan struct{})
	w.mu.Lock()
	w.list = append(w.list, ch)
	w.n.Add(1)
	w.mu.Unlock()
	return ch
}

// done removes ch (if no waker did) and returns it, drained, to the pool.
func (w *waiters) done(ch chan struct{}) {
	w.mu.Lock()
	for i, c := range w.list {
		if c == ch {
			last := len(w.list) - 1
			w.list[i] = w.list[last]
			w.list[last] = nil
			w.list = w.list[:last]
			w.n.Add(-1)
			break
		}
	}
	w.mu.Unlock()
	select { // a waker may have signalled before we removed ourselves
	case <-ch:
	default:
	}
	waitChanPool.Put(ch)
}

// wakeAll signals every registered waiter.
func (w *waiters) wakeAll() {
	if w.n.Load() == 0 {
		return
	}
	w.mu.Lock()
	for i, ch := range w.list {
		select {
		case ch <- struct{}{}:
		default:
		}
		w.list[i] = nil
	}
	w.list = w.list[:0]
	w.n.Store(0)
	w.mu.Unlock()
}

// recvQueue is the socket's bounded receive queue: a ring of messages under a mutex. Readers
// push batches; Recv pops one at a time. When the ring is full, readers park (and stop reading
// from their connection: TCP backpressure) until Recv makes room.
type recvQueue struct {
	mu     sync.Mutex
	ring   []*Msg
	head   int // index of the oldest message
	n      int // messages in the ring
	bytes  int // their buffers' lengths
	max    int // bound on bytes: past it nothing more is pushed (but one message always fits)
	closed bool

	recvWait  waiters // Recv callers waiting for a message
	spaceWait waiters // connection readers waiting for room
}

func newRecvQueue(size, maxBytes int) *recvQueue {
	return &recvQueue{ring: make([]*Msg, size), max: maxBytes}
}

// push appends as many of msgs as fit and returns how many it took. When it took none
// because the ring is full, it returns a channel to wait on (registered before unlocking, so
// no wake-up is lost); the caller must pass it to spaceWait.done after waiting.
func (q *recvQueue) push(msgs []*Msg) (int, chan struct{}, bool) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return 0, nil, false
	}
	free := len(q.ring) - q.n
	if free == 0 || (q.max > 0 && q.n > 0 && q.bytes >= q.max) {
		ch := q.spaceWait.register()
		q.mu.Unlock()
		return 0, ch, true
	}
	k := 0
	tail := q.head + q.n
	for k < min(free, len(msgs)) && (q.max <= 0 || q.n+k == 0 || q.bytes < q.max) {
		j := tail + k
		if j >= len(q.ring) {
			j -= len(q.ring)
		}
		q.ring[j] = msgs[k]
		q.bytes += len(msgs[k].buf)
		k++
	}
	q.n += k
	q.recvWait.wakeAll()
	q.mu.Unlock()
	return k, nil, true
}

// pop removes the oldest message. When the queue is empty it returns a registered channel to
// wait on (pass it to recvWait.done after waiting).
func (q *recvQueue) pop() (*Msg, chan struct{}, bool) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil, nil, false
	}
	if q.n == 0 {
		ch := q.recvWait.register()
		q.mu.Unlock()
		return nil, ch, true
	}
	m := q.ring[q.head]
	q.ring[q.head] = nil
	q.bytes -= len(m.buf)
	q.head++
	if q.head == len(q.ring) {
		q.head = 0
	}
	q.n--
	q.spaceWait.wakeAll()
	q.mu.Unlock()
	return m, nil, true
}

// popN removes up to len(dst) of the oldest messages into dst and returns how many. When the
// queue is empty it returns 0 and a registered channel to wait on (pass it to recvWait.done
// after waiting).
func (q *recvQueue) popN(dst []*Msg) (int, chan struct{}, bool) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return 0, nil, false
	}
	if q.n == 0 {
		ch := q.recvWait.register()
		q.mu.Unlock()
		return 0, ch, true
	}
	k := min(q.n, len(dst))
	for i := range k {
		dst[i] = q.ring[q.head]
		q.bytes -= len(dst[i].buf)
		q.ring[q.head] = nil
		q.head++
		if q.head == len(q.ring) {
			q.head = 0
		}
	}
	q.n -= k
	q.spaceWait.wakeAll()
	q.mu.Unlock()
	return k, nil, true
}

// close marks the queue closed, releases what it holds and wakes everyone.
func (q *recvQueue) close() {
	q.mu.Lock()
	q.closed = true
	for q.n > 0 {
		q.bytes -= len(q.ring[q.head].buf)
		q.ring[q.head].Release()
		q.ring[q.head] = nil
		q.head = (q.head + 1) % len(q.ring)
		q.n--
	}
	q.recvWait.wakeAll()
	q.spaceWait.wakeAll()
	q.mu.Unlock()
}
