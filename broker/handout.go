package broker

// Hand-out ids. The id a node sees for a task is a JSON string "<epoch>.<key>": the broker
// run's epoch (8 hex digits, the "broker" of its hello reply) and the task key (see taskKey).
// Keys alone restart from the same values in every broker run, so an answer that a node sends
// to a restarted broker (or to another broker on the same store) for a task of an earlier run
// could otherwise finish whatever task now has that key. With the epoch in the id, such an
// answer names its own run, and the broker ignores it (counted stale); revokes on the shared
// PUB "control" topic name tasks of one broker run only, too.

// handoutIDMax bounds the bytes of a hand-out id: quotes, epoch, dot and a key below 2^53.
const handoutIDMax = 2 + 8 + 1 + 16

// appendHandout appends the JSON hand-out id of task key k.
func (c *core) appendHandout(dst []byte, k uint64) []byte {
	dst = append(dst, '"')
	dst = append(dst, c.epoch...)
	dst = append(dst, '.')
	dst = appendUint(dst, k)
	return append(dst, '"')
}

// parseHandout reads a hand-out id from a node (raw JSON). ok is false when raw is not a
// hand-out id at all (it names nothing: a protocol violation); ours is false for the id of
// another broker run (a late answer to a task this run never handed out).
func (c *core) parseHandout(raw []byte) (k uint64, ours, ok bool) {
	n := len(raw)
	e := len(c.epoch)
	if n < e+4 || n > handoutIDMax || raw[0] != '"' || raw[n-1] != '"' || raw[e+1] != '.' {
		return 0, false, false
	}
	// Almost every id is of this run: one compare; another run's epoch is checked for its
	// form.
	if ours = string(raw[1:e+1]) == c.epoch; !ours {
		for _, b := range raw[1 : e+1] {
			if !('0' <= b && b <= '9' || 'a' <= b && b <= 'f') {
				return 0, false, false
			}
		}
	}
	digits := raw[e+2 : n-1]
	if len(digits) == 0 || len(digits) > 16 {
		return 0, false, false
	}
	for _, b := range digits {
		if b < '0' || b > '9' {
			return 0, false, false
		}
		k = k*10 + uint64(b-'0')
	}
	if k >= 1<<53 {
		return 0, false, false
	}
	return k, ours, true
}

// A node's bytes. Credit bounds the tasks a node holds by count, and a node's window grows to
// thousands of tasks when its tasks are fast; with tasks of tens of KB that is megabytes on
// the node's one connection, and every task handed out after them waits for all of them to
// travel, and for their answers to travel back, whoever sent them. So a task goes to a node
// only if the params the node holds, with the task's, stay within MaxNodeBytes (or the node
// holds none: one task always goes, whatever its size). A small task of another client still
// goes beside a node full of big ones (the room left is enough for it), and a big one waits
// in its queue until an answer makes room; what travels ahead of any task on the connection is
// at most MaxNodeBytes, instead of everything one client has in flight.

// open reports whether node p may take a task now (one that fits: see fits).
func (c *core) open(p *peer) bool {
	return p.credit > 0 && p.hbytes < c.cfg.MaxNodeBytes
}

// fits reports whether task t fits node p's MaxNodeBytes.
func (c *core) fits(p *peer, t *task) bool {
	if p.hbytes == 0 || p.hbytes+int64(len(t.params())) <= c.cfg.MaxNodeBytes {
		return true
	}
	p.full = true
	return false
}

// headFits reports whether q's next task fits node p, dropping the stale entries ahead of
// it. (popQueued may still skip it, when it has expired or its group is closed, and hand out
// the one after: a node holds at most one task past MaxNodeBytes.)
func (c *core) headFits(p *peer, q *queue) bool {
	if p.hbytes == 0 {
		return true
	}
	for {
		k, ok := q.peek()
		if !ok {
			return true
		}
		if t := c.queuedIn(k, q); t != nil {
			return c.fits(p, t)
		}
		q.pop() // stale: the entry of a removed task
	}
}

// holdBytes counts the params of t, handed to p, in p.hbytes.
func (c *core) holdBytes(p *peer, t *task) {
	was := c.open(p)
	p.hbytes += int64(len(t.params()))
	c.reopened(p, was)
}

// releaseBytes counts t, no longer held by p, out of p.hbytes. When a task did not fit p, or
// p was closed by its bytes, p is noted for a pump at the flush: the tasks waiting may fit now
// (not at once: the caller may be in the middle of changing the task's state).
func (c *core) releaseBytes(p *peer, t *task) {
	was := c.open(p)
	p.hbytes -= int64(len(t.params()))
	c.reopened(p, was)
	if (p.full || !was && c.open(p)) && !p.reopen {
		p.full = false
		p.reopen = true
		c.reopenedNodes = append(c.reopenedNodes, p.slot)
	}
}

// pumpReopened hands queued tasks to the nodes that answers made room in.
func (c *core) pumpReopened() {
	for _, s := range c.reopenedNodes {
		p := c.peers[s]
		if p == nil {
			continue
		}
		p.reopen = false
		if p.alive && p.node {
			c.pumpNode(p)
		}
	}
	c.reopenedNodes = c.reopenedNodes[:0]
}

// pickFit returns the node serving q whose turn it is (pickNode), or the next one, that is
// open and that task t fits (t nil: q's next queued task), or nil.
func (c *core) pickFit(q *queue, t *task) *peer {
	for range len(q.nodes) {
		p := c.pickNode(q)
		if p == nil {
			return nil
		}
		if t != nil && c.fits(p, t) || t == nil && c.headFits(p, q) {
			if q.turn == 0 {
				c.handed = append(c.handed, q.idx)
			}
			q.turn++
			return p
		}
		q.rr++ // the next node may have room for it
	}
	return nil
}
