package broker

import (
	"encoding/hex"
	"strconv"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/protocol"
)

// Task records, stats and node lists as JSON, and the PUB topics.

// appendRecordOf appends the record of the task with public id raw (a quoted JSON string):
// live, stored, or its state record saying UNKNOWN.
func (c *core) appendRecordOf(dst, raw []byte) []byte {
	if seq, ok := c.parsePublicID(raw); ok {
		return c.appendRecordSeq(dst, seq, raw)
	}
	return appendUnknown(dst, raw)
}

// appendRecordSeq appends the record of submitted task seq as it is now.
func (c *core) appendRecordSeq(dst []byte, seq uint64, raw []byte) []byte {
	if f := c.flowOf(seq); f != nil {
		return c.appendFlowRecord(dst, f)
	}
	if slot, ok := c.subm[seq]; ok {
		t := c.tasks.at(slot)
		q := c.queues[t.q]
		dst = c.appendRecordHead(dst, seq, q.method, q.qname, t.state, uint64(t.attempts), c.ownerOf(slot, t))
		dst = appendMeta(dst, c.metaOf(slot, t))
		if t.prio != 0 {
			dst = append(dst, `,"priority":`...)
			dst = strconv.AppendUint(dst, uint64(t.prio), 10)
		}
		if name := c.nodeName(t); name != "" {
			dst = append(dst, `,"node":`...)
			dst = codec.AppendString(dst, name)
		}
		dst = c.progress.appendMember(dst, seq)
		return append(dst, '}')
	}
	if rec, ok := c.store.get(seq); ok {
		c.delivered(rec)
		return c.appendRecord(dst, rec)
	}
	if d, ok := c.arch.get(seq); ok {
		return c.appendDead(dst, d)
	}
	if raw == nil {
		raw = c.appendPublicID(c.scratch2[:0], seq)
		c.scratch2 = raw
	}
	return appendUnknown(dst, raw)
}

func appendUnknown(dst, raw []byte) []byte {
	return protocol.AppendStateRecord(dst, raw, protocol.StateUnknown)
}

// appendRecord appends a stored (finished) record.
func (c *core) appendRecord(dst []byte, rec *record) []byte {
	dst = c.appendRecordHead(dst, rec.seq, rec.method, rec.queue, rec.state, uint64(rec.attempts), rec.owner)
	dst = appendMeta(dst, rec.meta)
	return appendOutcome(dst, rec.state == stSuccess, rec.result, rec.errObj, rec.node)
}

// appendRecordHead opens the record of task seq: its id, method, queue (none for the default
// queue), state, attempts and submitter (none when "").
func (c *core) appendRecordHead(dst []byte, seq uint64, method, queue string, st state, attempts uint64, owner string) []byte {
	dst = append(dst, `{"id":`...)
	dst = c.appendPublicID(dst, seq)
	dst = append(dst, `,"method":`...)
	dst = codec.AppendString(dst, method)
	if queue != "" {
		dst = append(dst, `,"queue":`...)
		dst = codec.AppendString(dst, queue)
	}
	dst = append(dst, `,"state":"`...)
	dst = append(dst, st.String()...)
	dst = append(dst, `","attempts":`...)
	dst = strconv.AppendUint(dst, attempts, 10)
	if owner != "" {
		dst = append(dst, `,"submitter":`...)
		dst = codec.AppendString(dst, owner)
	}
	return dst
}

// appendMeta appends a record's meta member: the task's meta object as its client wrote it
// (nothing for none).
func appendMeta(dst []byte, meta string) []byte {
	if meta == "" {
		return dst
	}
	dst = protocol.AppendMember(dst, protocol.MemberMeta)
	return append(dst, meta...)
}

// appendOutcome ends a finished record: its result (null when empty) on success, else its
// error object when there is one, then the node that ran it.
func appendOutcome(dst []byte, success bool, result, errObj []byte, node string) []byte {
	if success {
		dst = append(dst, `,"result":`...)
		if len(result) == 0 {
			dst = append(dst, nullJSON...)
		} else {
			dst = append(dst, result...)
		}
	} else if len(errObj) > 0 {
		dst = append(dst, `,"error":`...)
		dst = append(dst, errObj...)
	}
	if node != "" {
		dst = append(dst, `,"node":`...)
		dst = codec.AppendString(dst, node)
	}
	return append(dst, '}')
}

// nodeName returns the name of the node holding t, or "".
func (c *core) nodeName(t *task) string {
	if t.flags&fHeld == 0 || t.node == noRef {
		return ""
	}
	return c.peers[t.node].name
}

// delivered notes that a record has been read by a client (see Broker.Shutdown: the results
// stored during a shutdown are kept until they are read, or the grace period ends).
func (c *core) delivered(rec *record) {
	if rec.unread {
		rec.unread = false
		c.unread--
	}
}

// storeTask puts the record of a finished submitted task into the result store.
func (c *core) storeTask(slot uint32, t *task, result, errObj []byte, node string) {
	if t.state != stSuccess {
		c.archiveTask(slot, t, errObj, node)
	}
	q := c.queues[t.q]
	c.rec = record{
		seq:      t.seq,
		method:   q.method,
		queue:    q.qname,
		node:     node,
		owner:    c.ownerOf(slot, t),
		meta:     c.metaOf(slot, t),
		result:   result,
		errObj:   errObj,
		attempts: t.attempts,
		state:    t.state,
		// A result a node produced during a shutdown is kept readable for a while (see
		// Broker.Shutdown); the broker's own CodeShuttingDown for tasks it ends is not waited for.
		unread: c.closing && node != "",
	}
	if c.rec.unread {
		c.unread++
	}
	c.stateChanged(t)
	c.store.put(&c.rec, c.cfg.ResultTTL)
	if c.dur != nil {
		c.putResult(slot, t, &c.rec)
	}
	c.rec = record{}
	if len(c.wf.steps) > 0 {
		c.stepEnded(t, result, errObj)
	}
}

// appendStats appends the broker.stats object.
func (c *core) appendStats(dst []byte) []byte {
	s := c.stats()
	field := func(dst []byte, name string, v uint64) []byte {
		dst = append(dst, ',', '"')
		dst = append(dst, name...)
		dst = append(dst, '"', ':')
		return strconv.AppendUint(dst, v, 10)
	}
	dst = append(dst, `{"broker":"`...)
	dst = append(dst, c.epoch...)
	dst = append(dst, '"')
	dst = field(dst, "queued", uint64(s.Queued))
	dst = field(dst, "running", uint64(s.Running))
	dst = field(dst, "accepted", s.Accepted)
	dst = field(dst, "submitted", s.Submitted)
	dst = field(dst, "succeeded", s.Succeeded)
	dst = field(dst, "failed", s.Failed)
	dst = field(dst, "retried", s.Retried)
	dst = field(dst, "revoked", s.Revoked)
	dst = field(dst, "expired", s.Expired)
	dst = field(dst, "scheduled", uint64(s.Scheduled))
	dst = field(dst, "duplicate", s.Duplicate)
	dst = field(dst, "unsent", s.Unsent)
	dst = field(dst, "too_large", s.TooLarge)
	dst = field(dst, "dropped", s.Dropped)
	dst = field(dst, "stale", s.Stale)
	dst = field(dst, "rejected", s.Rejected)
	dst = field(dst, "bad_frames", s.BadFrames)
	dst = field(dst, "handed_back", s.HandedBack)
	dst = field(dst, "bad_answers", s.BadAnswers)
	dst = field(dst, "violations", s.Violations)
	dst = field(dst, "reclaimed", s.Reclaimed)
	dst = field(dst, "forbidden", s.Forbidden)
	dst = field(dst, "handshake_failures", s.HandshakeFailures)
	dst = field(dst, "nodes", uint64(s.Nodes))
	dst = field(dst, "clients", uint64(s.Clients))
	dst = field(dst, "results", uint64(s.Results))
	dst = field(dst, "waiting", uint64(s.Waiting))
	dst = field(dst, "methods", uint64(s.Methods))
	if c.dur != nil {
		dst = field(dst, "storing", uint64(s.Storing))
		dst = field(dst, "stored", s.Stored)
		dst = field(dst, "claimed", s.Claimed)
	}
	return append(dst, '}')
}

// appendNodes appends the broker.nodes array and reports true, or false (dst unfinished) when
// it would pass limit bytes, the room its reply has: each node's entry is bounded beforehand
// (peer.entryLen), so a reply that cannot be sent costs nothing to refuse.
func (c *core) appendNodes(dst []byte, limit int) ([]byte, bool) {
	dst = append(dst, '[')
	first := true
	for _, p := range c.peers {
		if !p.alive || !p.node {
			continue
		}
		if len(dst)+1+p.entryLen+1 > limit {
			return dst, false
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = c.appendNodeEntry(dst, p)
	}
	return append(dst, ']'), true
}

// appendNodeEntry appends node p's object of the broker.nodes array.
func (c *core) appendNodeEntry(dst []byte, p *peer) []byte {
	dst = append(dst, `{"id":"`...)
	dst = hex.AppendEncode(dst, p.ident)
	dst = append(dst, `","name":`...)
	dst = codec.AppendString(dst, p.name)
	if p.user != "" {
		dst = append(dst, `,"user":`...)
		dst = codec.AppendString(dst, p.user)
	}
	dst = append(dst, `,"methods":[`...)
	for i, m := range p.mnames {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = codec.AppendString(dst, m)
	}
	dst = append(dst, `],"queues":[`...)
	for i, q := range p.queues {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = codec.AppendString(dst, q)
	}
	dst = append(dst, `],"concurrency":`...)
	dst = strconv.AppendInt(dst, int64(p.concurrency), 10)
	dst = append(dst, `,"credit":`...)
	dst = strconv.AppendInt(dst, int64(p.credit), 10)
	dst = append(dst, `,"running":`...)
	dst = strconv.AppendInt(dst, int64(p.held), 10)
	dst = append(dst, '}')
	return dst
}

// stats returns the counters as a Stats value.
func (c *core) stats() Stats {
	s := Stats{
		Queued:     c.queued + c.parked,
		Running:    c.running,
		Accepted:   c.cnt.accepted,
		Submitted:  c.cnt.submitted,
		Succeeded:  c.cnt.succeeded,
		Failed:     c.cnt.failed,
		Retried:    c.cnt.retried,
		Revoked:    c.cnt.revoked,
		Expired:    c.cnt.expired,
		Scheduled:  c.scheduled,
		Duplicate:  c.cnt.duplicate,
		Unsent:     c.cnt.unsent,
		TooLarge:   c.cnt.tooLarge,
		Dropped:    c.cnt.dropped,
		Stale:      c.cnt.stale,
		Rejected:   c.cnt.rejected,
		BadFrames:  c.cnt.badFrames,
		HandedBack: c.cnt.handedBack,
		BadAnswers: c.cnt.badAnswers,
		Violations: c.cnt.violations,
		Reclaimed:  c.cnt.reclaimed,
		Forbidden:  c.cnt.forbidden,
		Nodes:      c.nodes,
		Clients:    len(c.peerIdx) - c.nodes,
		Results:    c.store.len(),
		Waiting:    c.store.waiting(),
		Methods:    len(c.queueIdx),
		Storing:    c.storing(),
	}
	if c.handshakes != nil {
		s.HandshakeFailures = c.handshakes()
	}
	if c.dur != nil {
		s.Stored, s.Claimed, s.StoreErrors = c.dur.stored, c.dur.claimed, c.dur.failed
	}
	return s
}

// ---- PUB ----

// stateChanged notes a state change of a submitted task for the PUB "state" topic.
func (c *core) stateChanged(t *task) {
	if t.flags&fSubmitted == 0 || c.pub == nil {
		return
	}
	// A notice is at most stateNoticeMax bytes: an id of this or another broker (durable
	// aliases are as short) and a state name.
	q := c.queues[t.q]
	pk := &c.states
	if !pk.Room(stateNoticeMax + len(q.methodJSON) + len(q.queueJSON)) {
		c.publishState()
	}
	pk.Begin()
	c.idbuf = c.appendTaskName(c.idbuf[:0], t.seq) // never the id: a subscriber may not act on it
	pk.Cur = protocol.AppendTaskStateNotice(pk.Cur, c.idbuf, t.state.String(), q.methodJSON, q.queueJSON)
	pk.End()
	if pk.Full() {
		c.publishState()
	}
}

var (
	topicState   = []byte(protocol.TopicState)
	topicControl = []byte(protocol.TopicControl)
)

func (c *core) publishState() {
	if msg := c.states.Take(true); msg != nil {
		c.publishMsg(topicState, msg)
	}
}

// stateNoticeMax bounds one broker.state notice besides its method and queue: its fixed text,
// a quoted public id (an epoch or owner alias and a sequence number: well under 160 bytes) and
// the longest state name.
const stateNoticeMax = 256

// publishMsg sends [topic, body] on the PUB socket, which never blocks (a slow subscriber
// loses messages: PUB only wakes and informs).
func (c *core) publishMsg(topic, body []byte) {
	if c.pub == nil {
		return
	}
	m := &c.omsg
	m.Frames = append(m.Frames[:0], topic, body)
	_ = c.pub.TrySend(m)
	clear(m.Frames)
}

// publish sends what the tick collected: tasks waiting per method, state changes, revokes.
func (c *core) publish() {
	for _, qi := range c.announce {
		q := c.queues[qi]
		if q == nil || !q.announce {
			continue
		}
		q.announce = false
		if q.live == 0 || c.pub == nil {
			continue
		}
		c.valbuf = protocol.AppendTasksNotice(c.valbuf[:0], q.methodJSON, q.qname, q.live)
		c.publishMsg(q.topic, c.valbuf)
	}
	c.announce = c.announce[:0]
	c.publishState()
	if len(c.ctlIDs) > 0 {
		c.publishRevokes()
	}
}

// publishRevokes sends the revokes of the tick on the control topic, as many notices as keep
// each within the subscribers' message size (a hand-out id takes at most handoutIDMax bytes).
func (c *core) publishRevokes() {
	v, n := c.valbuf[:0], 0
	for _, k := range c.ctlIDs {
		if n > 0 && len(v)+1+handoutIDMax+len("]}}") > c.maxMsg {
			c.publishMsg(topicControl, protocol.AppendRevokeClose(v))
			v, n = v[:0], 0
		}
		if n == 0 {
			v = protocol.AppendRevokeOpen(v)
		} else {
			v = append(v, ',')
		}
		v = c.appendHandout(v, k)
		n++
	}
	c.valbuf = protocol.AppendRevokeClose(v)
	c.publishMsg(topicControl, c.valbuf)
	c.ctlIDs = c.ctlIDs[:0]
}

// publishShutdown tells nodes and clients on the control topic that the broker is stopping.
func (c *core) publishShutdown() {
	c.publishMsg(topicControl, shutdownNotice)
}

// tick runs the timers: result TTLs and waits, delayed tasks, deadlines, blocked outboxes, PUB
// batches.
func (c *core) tick(now int64) {
	c.store.expire(now)
	c.arch.expire(now)
	if len(c.wf.finished) > 0 {
		c.pruneFlows(false)
	}
	if c.dur != nil {
		c.checkLease()
	}
	c.runDue(now)
	c.runSchedules()
	c.expireDue(now)
	c.expireLeases(now)
	c.reclaimStalled(now)
	c.retryBlocked()
	c.publish()
	c.flush()
}
