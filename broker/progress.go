package broker

import "github.com/zerotask/zerotask/protocol"

// Nodes that hold tasks and show no progress. A node's credit is its lease on the tasks it
// holds; a node that stays connected (its ZMTP heartbeats answered) but neither answers nor
// reports anything running would keep the tasks it has not started forever, while other nodes
// idle. So the broker watches each node's progress (any answer, any broker.running notice):
// a node silent for Config.ProgressTimeout while it holds tasks it never reported running
// loses those tasks. They did not run as far as the broker knows, so they go back to the front
// of their queues with no attempt counted; the node is sent a broker.revoke for them (a node
// that is merely slow then drops them), and the event is logged and counted. Tasks it reported
// running stay with it, bounded by their deadline (Config.TaskTimeout without one).

// noteProgress records that node p answered or reported a task running.
func (c *core) noteProgress(p *peer) { p.progress = c.recvNow() }

// reclaimStalled takes back the unstarted tasks of every node that showed no progress for
// ProgressTimeout. It runs on tick, walking the nodes at most every quarter of the timeout.
func (c *core) reclaimStalled(now int64) {
	to := int64(c.cfg.ProgressTimeout)
	if to <= 0 || now < c.nextStallCheck {
		return
	}
	c.nextStallCheck = now + max(to/4, int64(c.cfg.Tick))
	for _, p := range c.peers {
		if !p.alive || !p.node || p.held == 0 || now-p.progress < to {
			continue
		}
		c.reclaim(p)
		p.progress = now // the tasks it still holds (running) start a new period
	}
}

// reclaim takes back the tasks node p holds and never reported running.
func (c *core) reclaim(p *peer) {
	// No more tasks for it until it grants credit again: its unused credit would otherwise
	// hand the same tasks straight back to it.
	c.setCredit(p, 0)
	c.ntbuf = protocol.AppendRevokeOpen(c.ntbuf[:0])
	n := 0
	for slot := p.htail; slot != noRef; {
		t := c.tasks.at(slot)
		prev := t.nprev
		if t.state != stRunning && t.state != stRevoked && t.flags&fOrphan == 0 {
			if n > 0 {
				c.ntbuf = append(c.ntbuf, ',')
			}
			c.ntbuf = c.appendHandout(c.ntbuf, t.key(slot))
			n++
			c.unlinkHeld(p, slot, t)
			c.handBack(slot, t)
		}
		slot = prev
	}
	if n == 0 {
		return
	}
	c.cnt.reclaimed++
	c.log.Warn("broker: a node showed no progress: its tasks not started go to other nodes", "node", p.name, "tasks", n, "silent", c.cfg.ProgressTimeout)
	c.ntbuf = protocol.AppendRevokeClose(c.ntbuf)
	c.flushTasks(p)
	c.send(p, p.delim, c.ntbuf)
	for _, qi := range p.methods {
		c.pumpQueue(c.queues[qi])
	}
}
