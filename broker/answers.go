package broker

import (
	"encoding/hex"
	"strconv"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/internal/rawjson"
)

// Answers a node gets wrong. An invalid answer that names a task the node holds (its id is one
// of this run's hand-out ids) fails that task at once with CodeBadAnswer, naming the node and
// what is wrong, so that its caller does not wait for a deadline; an answer that names no task
// at all (no id, an id that is not a hand-out id, not JSON) is a protocol violation: the
// node's connection is closed and the tasks it held go back to their queues.

// badNodeMsg handles a message (or array member) raw from node p that did not scan as a
// JSON-RPC object: err is the scan error. tg answers what is a malformed request.
func (c *core) badNodeMsg(p *peer, tg target, raw []byte, err error) {
	if codec.AsError(err).Code == codec.CodeParseError {
		c.violation(p, "a message that is not valid JSON")
		return
	}
	if rawjson.Member(raw, "method") != nil {
		// A malformed request or notice, not an answer: -32600 as for any peer.
		c.cnt.badFrames++
		c.scratch = codec.AppendError(c.scratch[:0], nil, codec.AsError(err))
		c.deliverNow(tg, c.scratch)
		return
	}
	fault := answerFault(raw)
	id := rawjson.Member(raw, "id")
	k, ours, ok := c.parseHandout(id)
	if !ok {
		c.violation(p, "an invalid answer ("+fault+") whose id names no task: "+clip(id))
		return
	}
	slot, t := c.heldBy(p, k, ours)
	if t == nil {
		return // another run's task, or one the node no longer holds: stale
	}
	c.cnt.badAnswers++
	if t.state == stRevoked {
		c.unlinkHeld(p, slot, t)
		c.freeTask(slot, t)
		return
	}
	c.log.Warn("broker: invalid answer from a node: the task fails", "node", p.name, "method", c.queues[t.q].method, "reason", fault)
	c.end(slot, t, &codec.Error{Code: CodeBadAnswer, Message: "invalid answer from node " + strconv.Quote(p.name) + ": " + fault}, stFailure)
}

// heldBy returns the task of hand-out key k if node p holds it under that key (ours: the key is
// of this broker run), counting a stale answer otherwise.
func (c *core) heldBy(p *peer, k uint64, ours bool) (uint32, *task) {
	if ours {
		if slot, t := c.current(k); t != nil && t.flags&fHeld != 0 && t.node == p.slot {
			return slot, t
		}
	}
	c.cnt.stale++
	return 0, nil
}

// answerFault says what is wrong with a response object that codec.Scan refused (raw is valid
// JSON).
func answerFault(raw []byte) string {
	res, errObj := rawjson.Member(raw, "result"), rawjson.Member(raw, "error")
	switch {
	case firstByte(raw) != '{':
		return "not an object"
	case string(rawjson.TrimSpace(rawjson.Member(raw, "jsonrpc"))) != `"2.0"`:
		return `"jsonrpc" is not "2.0"`
	case res != nil && errObj != nil:
		return "both result and error"
	case res == nil && errObj == nil:
		return "neither result nor error"
	case errObj != nil && firstByte(errObj) != '{':
		return "error is not an object"
	case errObj != nil:
		if _, ok := rawjson.ParseInt(rawjson.Member(errObj, "code")); !ok {
			return "error code is not an integer"
		}
		if firstByte(rawjson.Member(errObj, "message")) != '"' {
			return "error message is not a string"
		}
	}
	return "not a valid JSON-RPC response"
}

// violation ends node p's session for a protocol violation: the tasks it held go back to
// their queues (their attempt counted: they may have run), the rest of what it sent is
// ignored, and its connection is closed (a node that reconnects says hello again).
func (c *core) violation(p *peer, reason string) {
	c.cnt.violations++
	c.log.Warn("broker: protocol violation by a node: closing its connection", "node", p.name, "peer", hex.EncodeToString(p.ident), "reason", reason)
	if p.node {
		c.nodeGone(p, false)
	}
	p.dropped, p.told = true, true
	if c.closePeer != nil {
		c.closePeer(p.ident)
	}
}

// clip returns b as a string of at most 64 bytes, for a log or an error message.
func clip(b []byte) string {
	if b == nil {
		return "(none)"
	}
	if len(b) > 64 {
		return string(b[:64]) + "..."
	}
	return string(b)
}
