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

// recvQueue is the socket's bounded receive queue, fair between connections: each connection
// has its lane (a FIFO of its messages), and Recv takes one message from each lane in turn,
// so a peer that floods the socket delays another peer's message by at most one of its own,
// not by the whole queue. The bounds (RecvHWM messages, RecvHWMBytes) hold over all lanes,
// except that a connection with nothing queued may always queue one message (it has read it
// already): a flood fills the queue but never locks the other peers out of it. When their
// room is gone, readers park (and stop reading from their connection: TCP backpressure)
// until Recv makes room.
type recvQueue struct {
	mu      sync.Mutex
	active  []*recvLane // lanes with messages, in turn order from ahead
	ahead   int
	n       int // messages in the lanes
	bytes   int // their buffers' lengths
	maxN    int // bound on messages
	max     int // bound on bytes (<= 0: none)
	closed  bool
	orphans map[string]*recvLane // ROUTER: lanes of gone connections still holding messages, by identity

	recvWait  waiters // Recv callers waiting for a message
	spaceWait waiters // connection readers waiting for room
}

// recvLane is one connection's messages in the receive queue; q.mu guards it.
type recvLane struct {
	msgs   []*Msg // msgs[head:] wait, oldest first
	head   int
	active bool   // in q.active
	owner  *conn  // the connection that queues into it
	id     string // set while it is in q.orphans
}

func (l *recvLane) len() int { return len(l.msgs) - l.head }

func newRecvQueue(size, maxBytes int) *recvQueue {
	return &recvQueue{maxN: size, max: maxBytes}
}

// roomFor reports whether l may queue one more message.
func (q *recvQueue) roomFor(l *recvLane) bool {
	return l.len() == 0 || (q.n < q.maxN && (q.max <= 0 || q.bytes < q.max))
}

// push appends as many of msgs to lane l as fit and returns how many it took. When it took
// none because there is no room, it returns a channel to wait on (registered before
// unlocking, so no wake-up is lost); the caller must pass it to spaceWait.done after waiting.
func (q *recvQueue) push(l *recvLane, msgs []*Msg) (int, chan struct{}, bool) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return 0, nil, false
	}
	k := 0
	for k < len(msgs) && q.roomFor(l) {
		if l.head > 0 && len(l.msgs) == cap(l.msgs) {
			l.msgs = l.msgs[:copy(l.msgs, l.msgs[l.head:])]
			clear(l.msgs[len(l.msgs):cap(l.msgs)])
			l.head = 0
		}
		l.msgs = append(l.msgs, msgs[k])
		q.bytes += len(msgs[k].buf)
		q.n++
		k++
	}
	if k == 0 {
		ch := q.spaceWait.register()
		q.mu.Unlock()
		return 0, ch, true
	}
	if !l.active {
		l.active = true
		q.active = append(q.active, l)
	}
	q.recvWait.wakeAll()
	q.mu.Unlock()
	return k, nil, true
}

// take removes the next message in turn: the oldest of the lane at the front, which then goes
// to the back if it has more. q.n > 0.
func (q *recvQueue) take() *Msg {
	l := q.active[q.ahead]
	q.active[q.ahead] = nil
	q.ahead++
	m := l.msgs[l.head]
	l.msgs[l.head] = nil
	l.head++
	q.n--
	q.bytes -= len(m.buf)
	if l.len() > 0 {
		if q.ahead > 0 && len(q.active) == cap(q.active) {
			q.active = q.active[:copy(q.active, q.active[q.ahead:])]
			clear(q.active[len(q.active):cap(q.active)])
			q.ahead = 0
		}
		q.active = append(q.active, l)
	} else {
		l.msgs, l.head, l.active = l.msgs[:0], 0, false
		if l.id != "" {
			delete(q.orphans, l.id)
			l.id = ""
		}
	}
	if q.ahead == len(q.active) {
		q.active, q.ahead = q.active[:0], 0
	}
	return m
}

// pop removes the next message in turn. When the queue is empty it returns a registered
// channel to wait on (pass it to recvWait.done after waiting).
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
	m := q.take()
	q.spaceWait.wakeAll()
	q.mu.Unlock()
	return m, nil, true
}

// popN removes up to len(dst) messages, in turn, into dst and returns how many. When the
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
		dst[i] = q.take()
	}
	q.spaceWait.wakeAll()
	q.mu.Unlock()
	return k, nil, true
}

// orphan notes that c is gone: a connection that takes its routing identity next adopts its
// lane while the lane holds messages, so that what c sent (and its disconnect notification)
// comes first.
func (q *recvQueue) orphan(c *conn) {
	q.mu.Lock()
	defer q.mu.Unlock()
	l := c.lane
	if l.owner != c || l.len() == 0 || q.closed {
		return // another connection took the lane over, or nothing is left in it
	}
	if q.orphans == nil {
		q.orphans = map[string]*recvLane{}
	}
	if old := q.orphans[string(c.id)]; old != nil {
		old.id = "" // a still older lane: its turn order against l is lost, as with two peers
	}
	l.id = string(c.id)
	q.orphans[l.id] = l
}

// handOver gives old's lane to c, which takes over old's routing identity.
func (q *recvQueue) handOver(old, c *conn) {
	q.mu.Lock()
	c.lane, old.lane.owner = old.lane, c
	q.mu.Unlock()
}

// adopt makes c queue into the lane of a gone connection with routing identity id that still
// holds messages, if there is one.
func (q *recvQueue) adopt(c *conn, id []byte) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if l := q.orphans[string(id)]; l != nil {
		delete(q.orphans, l.id)
		l.id, l.owner = "", c
		c.lane = l
	}
}

// close marks the queue closed, releases what it holds and wakes everyone.
func (q *recvQueue) close() {
	q.mu.Lock()
	q.closed = true
	for q.n > 0 {
		q.take().Release()
	}
	q.recvWait.wakeAll()
	q.spaceWait.wakeAll()
	q.mu.Unlock()
}
