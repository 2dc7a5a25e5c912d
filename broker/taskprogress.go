package broker

import (
	"encoding/json"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/internal/rawjson"
	"github.com/zerotask/zerotask/protocol"
)

// Progress of long tasks. A node sends broker.progress {"id":HANDOUT-ID,"progress":JSON} for a
// submitted task it holds (at most one per task per heartbeat interval: the node coalesces).
// The broker keeps the last report of each live submitted task, shows it in the task's record
// as "progress" while the task lives (its result replaces it), and publishes it on the state
// stream as a RUNNING notice with a "progress" member.
//
// Bounds: a report is at most protocol.MaxProgressSize bytes (a larger one is ignored), and
// the table holds one entry per live submitted task that reported; entries of tasks that ended
// are dropped once the table has doubled since the last sweep, so it stays within twice the
// reporting tasks plus progressSweepMin entries.

// progressTable maps a submitted task's seq to its last report.
type progressTable struct {
	m       map[uint64][]byte
	sweepAt int
}

// progressSweepMin is the table size below which ended tasks' entries are not swept.
const progressSweepMin = 64

// set records raw as seq's last report.
func (pt *progressTable) set(c *core, seq uint64, raw []byte) {
	if pt.m == nil {
		pt.m = make(map[uint64][]byte)
		pt.sweepAt = progressSweepMin
	}
	pt.m[seq] = append(pt.m[seq][:0], raw...)
	if len(pt.m) >= pt.sweepAt {
		for s := range pt.m {
			if _, live := c.subm[s]; !live {
				delete(pt.m, s)
			}
		}
		pt.sweepAt = max(progressSweepMin, 2*len(pt.m))
	}
}

// appendMember appends `,"progress":JSON` when seq has a report.
func (pt *progressTable) appendMember(dst []byte, seq uint64) []byte {
	raw, ok := pt.m[seq]
	if !ok {
		return dst
	}
	dst = protocol.AppendMember(dst, protocol.MemberProgress)
	return append(dst, raw...)
}

// bProgress: a node reports the progress of a task it holds.
func (c *core) bProgress(p *peer, tg target, h *codec.Header) {
	if !p.node {
		c.notNode(p, tg, h.ID)
		return
	}
	id := rawjson.Member(h.Params, protocol.ParamID)
	raw := rawjson.Member(h.Params, protocol.MemberProgress)
	if id == nil || len(raw) == 0 || len(raw) > protocol.MaxProgressSize || !json.Valid(raw) {
		c.badParams(tg, h.ID, "expected {\"id\": a task you hold, \"progress\": a JSON value of at most 1024 bytes}")
		return
	}
	k, ours, ok := c.parseHandout(id)
	_, t := c.heldBy(p, k, ok && ours)
	if t != nil {
		c.noteProgress(p)
		if t.flags&fSubmitted != 0 {
			c.progress.set(c, t.seq, raw)
			c.progressChanged(t, raw)
		}
	}
	if tg.client != noRef {
		c.ok(tg, h.ID, trueJSON)
	}
}

// progressChanged publishes a task's progress on the PUB "state" topic.
func (c *core) progressChanged(t *task, raw []byte) {
	if c.pub == nil {
		return
	}
	q := c.queues[t.q]
	pk := &c.states
	if !pk.Room(stateNoticeMax + len(q.methodJSON) + len(q.queueJSON) + len(raw) + 16) {
		c.publishState()
	}
	pk.Begin()
	c.idbuf = c.appendTaskName(c.idbuf[:0], t.seq)
	pk.Cur = protocol.AppendTaskProgressNotice(pk.Cur, c.idbuf, t.state.String(), q.methodJSON, q.queueJSON, raw)
	pk.End()
	if pk.Full() {
		c.publishState()
	}
}
