package broker

import "github.com/zerotask/zerotask/protocol"

// Key-group limits. A task's key_group option (a customer id, say) names the group whose limit
// of scope "group" applies to it, across its method and queue. Tasks of many groups share a
// queue, so a closed group must not hold back the others behind its task: a task popped for a
// hand-out while its group is closed is parked in the group's FIFO (state stLimited, in no
// queue, counted in core.parked), and goes back to the front of its queue, one at a time, as
// the group opens again (pumpGroup). A parked task stays waiting in every other respect: a
// revoke, its client's departure or its deadline removes it (leaveWaiting), a shutdown puts it
// back in its queue first (unparkAll).
//
// groupScope is the scope of key-group limits.
const groupScope = protocol.LimitGroup

// The check costs nothing while no group limit exists (core.groupLimits == 0), and only a task
// with per-task options (fOpts) can have a group.

// groupLimit returns the limit of t's group, nil when it has none.
func (c *core) groupLimit(slot uint32, t *task) *limiter {
	if c.groupLimits == 0 || t.flags&fOpts == 0 {
		return nil
	}
	g := c.opts[slot].group
	if g == "" {
		return nil
	}
	return c.limits[limitKey{groupScope, g}]
}

// groupOf returns t's group ("" for none).
func (c *core) groupOf(slot uint32, t *task) string {
	if t.flags&fOpts == 0 {
		return ""
	}
	return c.opts[slot].group
}

// groupClosed reports whether t's group keeps it from a hand-out now.
func (c *core) groupClosed(slot uint32, t *task) (*limiter, bool) {
	l := c.groupLimit(slot, t)
	if l == nil || c.closing {
		return nil, false
	}
	return l, !l.open(c.limitNow(), l.running)
}

// parkTask moves task t to its group's FIFO: a task popped from its queue (counted out of it), or
// a fresh one that was never queued.
func (c *core) parkTask(l *limiter, slot uint32, t *task, fresh bool) {
	t.state = stLimited
	l.parked.pushBack(t.key(slot))
	c.parked++
	if fresh {
		t.since = c.clock
		c.watchDeadline(slot, t)
	} else if t.deadline != 0 {
		c.withDeadline++ // its deadline entry stays live
	}
	c.noteBlocked(l)
	if l.parked.len() > 1024 && l.parked.len() > 2*c.parked {
		l.parked.filter(func(k uint64) bool { return c.parkedAt(k) != nil })
	}
}

// parkedAt returns the task of key k if it is still parked under that key.
func (c *core) parkedAt(k uint64) *task {
	slot, gen := splitKey(k)
	t := c.tasks.at(slot)
	if t == nil || t.buf == nil || t.gen != gen || t.state != stLimited {
		return nil
	}
	return t
}

// unpark counts parked task t out of its group's FIFO (its entry there becomes stale).
func (c *core) unpark(t *task) {
	t.state = stQueued
	c.parked--
	if t.deadline != 0 {
		c.withDeadline--
	}
}

// pumpGroup lets l's parked tasks out while it is open (all of them when all: l was removed):
// each goes back to the front of its queue and that queue is pumped, until one is not handed
// out (its queue's nodes are busy, or another limit holds it: it waits in its queue now) or l
// closes.
func (c *core) pumpGroup(l *limiter, all bool) {
	for {
		k, ok := l.parked.front()
		if !ok {
			return
		}
		t := c.parkedAt(k)
		if t == nil {
			l.parked.popFront()
			continue
		}
		if !all && !l.open(c.limitNow(), l.running) {
			c.noteBlocked(l)
			return
		}
		l.parked.popFront()
		slot, _ := splitKey(k)
		c.unpark(t)
		q := c.queues[t.q]
		c.queueTask(slot, t, q, true)
		c.pumpQueue(q)
		if t.flags&fHeld == 0 && t.buf != nil && t.state != stLimited {
			return // still in its queue
		}
	}
}

// unparkAll puts every parked task back in its queue (a shutdown drains the queues).
func (c *core) unparkAll() {
	if c.parked == 0 {
		return
	}
	for _, l := range c.limits {
		for {
			k, ok := l.parked.popFront()
			if !ok {
				break
			}
			if t := c.parkedAt(k); t != nil {
				slot, _ := splitKey(k)
				c.unpark(t)
				c.queueTask(slot, t, c.queues[t.q], true)
			}
		}
	}
}

// chargeGroup counts a hand-out of t against its group's limit.
func (c *core) chargeGroup(slot uint32, t *task) {
	if l := c.groupLimit(slot, t); l != nil {
		if l.rate > 0 {
			l.tokens--
		}
		l.running++
	}
}

// releaseGroup counts t, no longer held by a node, out of its group's running tasks.
func (c *core) releaseGroup(slot uint32, t *task) {
	if l := c.groupLimit(slot, t); l != nil && l.running > 0 {
		l.running--
		if l.maxRunning > 0 {
			c.noteBlocked(l)
		}
	}
}
