package broker

import (
	"time"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/internal/rawjson"
	"github.com/zerotask/zerotask/protocol"
)

// Task deadlines (a ZeroTask extension, see protocol.md): a call whose request object has a
// top-level "timeout_ms" member, or a broker.submit with a "timeout_ms" param, expires when it
// is still queued (or scheduled) that long after it arrived: a call is answered CodeExpired, a
// submitted task ends in state EXPIRED. A task handed to a node takes its deadline along (the
// milliseconds left, as "timeout_ms"): the node ends the handler's context then.
//
// Queued and scheduled tasks with a deadline are in a min-heap of (deadline, key). Entries of
// tasks that were handed out or removed in the meantime are stale and skipped; the heap is
// rebuilt without them when they outnumber the live ones, so its size stays bounded by the
// waiting tasks with a deadline.

// deadlineEntry is one heap entry.
type deadlineEntry struct {
	at  int64
	key uint64
}

// deadlineHeap is a min-heap by at.
type deadlineHeap []deadlineEntry

func (h *deadlineHeap) push(e deadlineEntry) {
	*h = append(*h, e)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if s[p].at <= s[i].at {
			break
		}
		s[p], s[i] = s[i], s[p]
		i = p
	}
}

func (h *deadlineHeap) pop() deadlineEntry {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	s.down(0)
	*h = s
	return top
}

// down moves entry i down to its place.
func (h deadlineHeap) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h[r].at < h[l].at {
			m = r
		}
		if h[i].at <= h[m].at {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// keep drops the entries for which live reports false (stale ones) and restores the heap
// order.
func (h *deadlineHeap) keep(live func(deadlineEntry) bool) {
	s := *h
	w := 0
	for _, e := range s {
		if live(e) {
			s[w] = e
			w++
		}
	}
	clear(s[w:])
	s = s[:w]
	for i := len(s)/2 - 1; i >= 0; i-- {
		s.down(i)
	}
	*h = s
}

// parseTimeout reads a timeout_ms value: a positive integer, capped at protocol.MaxTimeout (0 for
// anything else).
func parseTimeout(v []byte) time.Duration {
	if v == nil {
		return 0
	}
	n, ok := rawjson.ParseUint(v)
	if !ok || n == 0 {
		return 0
	}
	if n > uint64(protocol.MaxTimeout/time.Millisecond) {
		return protocol.MaxTimeout
	}
	return time.Duration(n) * time.Millisecond
}

// setDeadline gives a new task its deadline.
func (c *core) setDeadline(t *task, d time.Duration) {
	if d > 0 {
		t.deadline = c.recvNow() + int64(d)
	}
}

// watchDeadline notes a queued task's deadline in the heap.
func (c *core) watchDeadline(slot uint32, t *task) {
	if t.deadline == 0 {
		return
	}
	c.deadlines.push(deadlineEntry{at: t.deadline, key: t.key(slot)})
	c.withDeadline++
	if len(c.deadlines) > 1024 && len(c.deadlines) > 2*c.withDeadline {
		c.deadlines.keep(func(e deadlineEntry) bool { _, t := c.waitingAt(e.key); return t != nil })
	}
}

// waitingAt returns the task of key k if it is still waiting (queued or scheduled, not handed
// out) under that key.
func (c *core) waitingAt(k uint64) (uint32, *task) {
	slot, t := c.current(k)
	if t == nil || t.flags&fHeld != 0 {
		return slot, nil
	}
	return slot, t
}

// expireDue expires the queued tasks whose deadline has passed.
func (c *core) expireDue(now int64) {
	for len(c.deadlines) > 0 && c.deadlines[0].at <= now {
		e := c.deadlines.pop()
		if slot, t := c.waitingAt(e.key); t != nil { // else handed out or gone since
			c.expire(slot, t)
		}
	}
}

// expire ends a queued or scheduled task whose deadline passed.
func (c *core) expire(slot uint32, t *task) {
	q := c.queues[t.q]
	c.leaveWaiting(q, t)
	c.end(slot, t, errExpired, stExpired)
	c.compact(q)
}

// expired reports whether a queued task's deadline has passed (checked again when it is about
// to be handed out, between ticks).
func (c *core) expired(t *task) bool {
	return t.deadline != 0 && t.deadline <= c.now()
}

// end finishes a task that will not run, with error e and final state st: its caller gets the
// error, a submitted task's record is stored. The task must be out of its queue and its node's
// list already, or be held (it is then taken off its node).
func (c *core) end(slot uint32, t *task, e *codec.Error, st state) {
	c.scratch2 = codec.AppendErrorObject(c.scratch2[:0], e)
	c.observeEnd(t)
	if t.flags&fHeld != 0 {
		c.unlinkHeld(c.peers[t.node], slot, t)
	}
	if t.flags&fClient != 0 {
		tg := target{client: t.client, cgen: t.cgen, batch: t.batch, delim: t.flags&fDelim != 0, member: t.flags&fMember != 0}
		c.unlinkClient(slot, t)
		c.scratch = appendResponse(c.scratch[:0], t.id(), nil, c.scratch2)
		c.deliverAsync(tg, c.scratch)
	}
	if t.flags&fSubmitted != 0 {
		t.state = st
		c.storeTask(slot, t, nil, c.scratch2, "")
	}
	switch st {
	case stExpired:
		c.cnt.expired++
		c.count(t, outExpired)
	case stRevoked:
		c.cnt.revoked++
		c.count(t, outRevoked)
	default:
		c.cnt.failed++
		c.count(t, outFailed)
	}
	c.freeTask(slot, t)
}

// Leases of tasks with a deadline. A task handed to a node takes its deadline along and the
// node ends the handler's context then; a node whose handler ignores its context (or that
// stays connected but never answers) would keep the task RUNNING forever. So the broker gives
// such a task up when its deadline is past by leaseGrace: the task fails with CodeDeadline (its
// caller is answered, a submitted task is recorded FAILURE) and a late answer is ignored.
// Tasks without a deadline are held until their node answers or is lost.

// leaseGrace is how long past its deadline a held task may still be answered by its node.
func (c *core) leaseGrace() int64 { return int64(3 * c.cfg.HeartbeatInterval) }

// watchLease notes a task handed out with a deadline (key: its hand-out).
func (c *core) watchLease(k uint64, deadline int64) {
	c.leases.push(deadlineEntry{at: deadline + c.leaseGrace(), key: k})
	if len(c.leases) > 1024 && len(c.leases) > 2*c.running {
		c.leases.keep(func(e deadlineEntry) bool { return c.heldAt(e.key) != nil })
	}
}

// heldAt returns the task of hand-out key k if a node still holds it under that key.
func (c *core) heldAt(k uint64) *task {
	if _, t := c.current(k); t != nil && t.flags&fHeld != 0 {
		return t
	}
	return nil
}

// runLeases holds the leases of tasks handed out under Config.TaskTimeout (no deadline of
// their own). They all last the same, so they end in the order they were taken: a FIFO, pushed
// and popped in O(1) on the hot path, where the deadline heap would cost a log.
type runLeases struct {
	e    []deadlineEntry
	head int
}

func (r *runLeases) len() int { return len(r.e) - r.head }

// watchRun notes a task handed out under TaskTimeout (key: its hand-out). Entries of tasks
// answered meanwhile are dropped, in order, once they outnumber the held tasks.
func (c *core) watchRun(k uint64) {
	r := &c.runs
	r.e = append(r.e, deadlineEntry{at: c.recvNow() + int64(c.cfg.TaskTimeout) + c.leaseGrace(), key: k})
	if n := r.len(); n > 1024 && n > 2*c.running {
		// Tasks mostly end in the order they were handed out: the answered ones at the front
		// go first, each looked at once; the whole list is walked only when a task still held
		// near the front keeps it from shrinking enough.
		for r.head < len(r.e) && c.heldAt(r.e[r.head].key) == nil {
			r.head++
		}
		r.shift()
		if r.len() <= 2*c.running {
			return
		}
		w := 0
		for _, e := range r.e[r.head:] {
			if c.heldAt(e.key) != nil {
				r.e[w] = e
				w++
			}
		}
		clear(r.e[w:])
		r.e, r.head = r.e[:w], 0
	}
}

// nextRun takes the first run lease due at now, if any.
func (r *runLeases) next(now int64) (deadlineEntry, bool) {
	if r.head == len(r.e) || r.e[r.head].at > now {
		return deadlineEntry{}, false
	}
	e := r.e[r.head]
	r.head++
	r.shift()
	return e, true
}

// shift gives back the room of the entries taken from the front: all of it when none is
// left, else by moving the rest down once the front is at least 1,024 entries and half the
// list (entries are plain values: nothing is kept alive by the stale ones).
func (r *runLeases) shift() {
	if r.head == len(r.e) {
		r.e, r.head = r.e[:0], 0
	} else if r.head >= 1024 && r.head*2 >= len(r.e) {
		n := copy(r.e, r.e[r.head:])
		r.e, r.head = r.e[:n], 0
	}
}

// expireLeases gives up the held tasks whose deadline (or run lease) is past by leaseGrace.
func (c *core) expireLeases(now int64) {
	for {
		var e deadlineEntry
		if len(c.leases) > 0 && c.leases[0].at <= now {
			e = c.leases.pop()
		} else if r, ok := c.runs.next(now); ok {
			e = r
		} else {
			return
		}
		t := c.heldAt(e.key)
		if t == nil {
			continue
		}
		slot, _ := splitKey(e.key)
		if t.state == stRevoked {
			c.unlinkHeld(c.peers[t.node], slot, t)
			c.freeTask(slot, t)
			continue
		}
		c.log.Warn("broker: no answer past a task's deadline: giving it up", "node", c.nodeName(t), "method", c.queues[t.q].method)
		c.end(slot, t, errLeaseLost, stFailure)
	}
}
