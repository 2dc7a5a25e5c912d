package broker

import (
	"strconv"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/internal/rawjson"
	"github.com/zerotask/zerotask/protocol"
)

// Queue control (docs/protocol.md, "Steering queues"): pause, resume and purge. They run on
// the routing loop; purge walks the rings of the queues it drops, which is bounded by what
// those queues hold.

// nameParam returns the string param name (at position pos of an array), or ok false when it
// is absent; a param that is present but not a valid name answers -32602 and bad true.
func (c *core) nameParam(tg target, h *codec.Header, name string, pos int) (v string, ok, bad bool) {
	raw := rawjson.Param(h.Params, name, pos)
	if raw == nil {
		return "", false, false
	}
	if codec.Unmarshal(raw, &v) != nil || v == "" || !protocol.ValidName(v) {
		c.badParams(tg, h.ID, name+" must be a non-empty name without control characters")
		return "", false, true
	}
	return v, true, false
}

// bPause pauses (or resumes) a named queue: {"queue":Q} or [Q]. A paused queue keeps
// accepting tasks; none of its tasks is handed to a node until it is resumed. The state is the
// broker's, for every method's queue of that name, present or future.
func (c *core) bPause(tg target, h *codec.Header, pause bool) {
	name, ok, bad := c.nameParam(tg, h, protocol.ParamQueue, 0)
	if bad {
		return
	}
	if !ok || len(name) > protocol.MaxQueueName {
		c.badParams(tg, h.ID, "queue must be a queue name of 1 to "+strconv.Itoa(protocol.MaxQueueName)+" bytes")
		return
	}
	if pause {
		if c.paused == nil {
			c.paused = make(map[string]bool)
		}
		c.paused[name] = true
	} else {
		delete(c.paused, name)
	}
	if c.persistPause != nil {
		c.persistPause(name)
	}
	for _, q := range c.queues {
		if q == nil || qnameOf(q) != name {
			continue
		}
		q.paused = pause
		if !pause {
			c.pumpQueue(q)
		}
	}
	c.ok(tg, h.ID, appendPaused(c.valbuf[:0], name, pause))
}

// qnameOf returns the name of q's named queue (DefaultQueue for the default one).
func qnameOf(q *queue) string {
	if q.qname == "" {
		return DefaultQueue
	}
	return q.qname
}

// appendPaused appends {"queue":Q,"paused":B}.
func appendPaused(dst []byte, name string, paused bool) []byte {
	dst = append(dst, `{"`+protocol.ParamQueue+`":`...)
	dst = codec.AppendString(dst, name)
	dst = protocol.AppendMember(dst, protocol.MemberPaused)
	dst = strconv.AppendBool(dst, paused)
	return append(dst, '}')
}

// bPurge drops the queued tasks of a queue, a method, or a method in a queue:
// {"queue":Q,"method":M} (at least one). Each ends REVOKED (its caller gets CodeRevoked; a
// submitted task's record says REVOKED). Tasks held back until a time (delay, eta, retry
// backoff) and tasks at nodes are not touched. With "archived":true it forgets the archived
// tasks of the queue, method or both instead. Answers {"purged":N}.
func (c *core) bPurge(p *peer, tg target, h *codec.Header) {
	qname, hasQ, bad := c.nameParam(tg, h, protocol.ParamQueue, 0)
	if bad {
		return
	}
	method, hasM, bad := c.nameParam(tg, h, protocol.ParamMethod, 1)
	if bad {
		return
	}
	if !hasQ && !hasM {
		c.badParams(tg, h.ID, "purge needs a queue, a method, or both")
		return
	}
	if raw := rawjson.Param(h.Params, protocol.ParamArchived, -1); raw != nil {
		var archived bool
		if codec.Unmarshal(raw, &archived) != nil {
			c.badParams(tg, h.ID, "archived must be true or false")
			return
		}
		if archived {
			f := filter{queue: qname, hasQ: hasQ, method: method, hasM: hasM}
			if c.darch != nil {
				c.purgeStored(p, tg, h, &f)
				return
			}
			c.ok(tg, h.ID, appendPurged(c.valbuf[:0], c.purgeArchive(&f)))
			return
		}
	}
	n := 0
	for _, q := range c.queues {
		if q == nil || (hasQ && qnameOf(q) != qname) || (hasM && q.method != method) {
			continue
		}
		n += c.purgeQueue(q)
	}
	c.ok(tg, h.ID, appendPurged(c.valbuf[:0], n))
}

// appendPurged appends {"purged":N}.
func appendPurged(dst []byte, n int) []byte {
	dst = append(dst, `{"`+protocol.MemberPurged+`":`...)
	dst = strconv.AppendInt(dst, int64(n), 10)
	return append(dst, '}')
}

// purgeArchive forgets the archived tasks f selects (in memory) and returns how many. It looks
// at every archived task: bounded by Config.ArchiveMax.
func (c *core) purgeArchive(f *filter) int {
	n := 0
	for seq, d := range c.arch.recs {
		if f.matches(d.state, d.method, d.queue) {
			c.arch.remove(seq)
			n++
		}
	}
	return n
}

// purgeQueue ends every queued task of q REVOKED and returns how many there were.
func (c *core) purgeQueue(q *queue) int {
	n := 0
	for q.live > 0 {
		k, ok := q.pop()
		if !ok {
			break
		}
		t := c.queuedIn(k, q)
		if t == nil {
			continue
		}
		slot, _ := splitKey(k)
		c.leaveQueue(q, t)
		c.end(slot, t, errRevoked, stRevoked) // may drop q once its last task is gone
		n++
	}
	return n
}
