package broker

// Scheduled tasks: a task with a delay or an ETA, and a task waiting for the backoff of a
// retry, is held by the broker itself, apart from the queues and from any node: it is in no
// queue's ring and no node's held list, only in a min-heap by due time (sched, entries of
// (due, key)). So a long delay never looks like a lost lease and never causes a second run
// (Celery's visibility-timeout bug): nothing is handed out before it is due. The tick moves
// the tasks that are due into their queue (or straight to a node with credit).
//
// Entries of tasks removed in the meantime (revoked, expired, client gone) are stale: the task
// is no longer flagged fScheduled or its key's generation moved on. The heap is rebuilt
// without them when they outnumber the live ones.

// schedule holds task t (out of every queue and node) until at (unix nanoseconds), in state
// st (QUEUED for a delay, RETRY for a backoff).
func (c *core) schedule(slot uint32, t *task, at int64, st state) {
	t.flags |= fScheduled
	t.state = st
	c.scheduled++
	c.sched.push(deadlineEntry{at: at, key: t.key(slot)})
	if len(c.sched) > 1024 && len(c.sched) > 2*c.scheduled {
		c.sched.keep(func(e deadlineEntry) bool { _, t := c.scheduledAt(e.key); return t != nil })
	}
	c.watchDeadline(slot, t)
}

// unschedule counts a scheduled task out (its heap entry becomes stale).
func (c *core) unschedule(t *task) {
	t.flags &^= fScheduled
	c.scheduled--
	if t.deadline != 0 {
		c.withDeadline--
	}
}

// scheduledAt returns the task of key k if it is still scheduled under that key.
func (c *core) scheduledAt(k uint64) (uint32, *task) {
	slot, t := c.current(k)
	if t == nil || t.flags&fScheduled == 0 {
		return slot, nil
	}
	return slot, t
}

// runDue queues the scheduled tasks that are due (or expires those whose deadline passed).
func (c *core) runDue(now int64) {
	for len(c.sched) > 0 && c.sched[0].at <= now {
		e := c.sched.pop()
		slot, t := c.scheduledAt(e.key)
		if t == nil {
			continue
		}
		c.unschedule(t)
		q := c.queues[t.q]
		if c.expired(t) {
			c.end(slot, t, errExpired, stExpired)
			continue
		}
		if c.closing {
			if c.staysStored(t) {
				c.release(slot, t)
			} else {
				c.end(slot, t, errShuttingDown, stFailure)
			}
			continue
		}
		c.enqueue(slot, t, q, t.state == stRetry)
	}
}
