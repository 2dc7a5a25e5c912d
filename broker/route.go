package broker

import (
	"bytes"
	"strconv"
	"time"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/internal/rawjson"
	"github.com/zerotask/zerotask/protocol"
	"github.com/zerotask/zerotask/zmtp"
)

// The routing path: a message from the ROUTER is scanned once (codec.Scan: kind, id, method,
// raw params or result, nothing decoded), and then either queued as a task (params copied once
// into a pooled buffer), matched to the task a node answers (the node's raw result copied once
// into the client's reply), or handled as a broker.* call. Nothing here allocates in steady
// state, and nothing blocks: replies go out through TrySend.

// handle routes one message received on the ROUTER. The caller releases m right after: what
// must outlive it is copied.
func (c *core) handle(m *zmtp.Msg) {
	fr := m.Frames
	if len(fr) < 2 {
		return
	}
	ident := fr[0]
	var delim bool
	var body []byte
	switch {
	case len(fr) == 2:
		body = fr[1]
	case len(fr) == 3 && len(fr[1]) == 0:
		delim, body = true, fr[2]
	default:
		// Not [body] nor ["", body]: -32600 with id null, in the same envelope shape.
		c.cnt.badFrames++
		c.scratch = codec.AppendError(c.scratch[:0], nil, codec.ErrInvalidRequest)
		_ = c.trySend(ident, len(fr[1]) == 0, c.scratch)
		return
	}
	p := c.peerFor(ident)
	if p.share == nil {
		c.identify(p, m)
		key := ident
		if k, ok := m.CurveKey(); ok {
			key = k[:]
		}
		p.share = c.shareFor(key)
		p.share.peers++
	}
	if p.dropped {
		return // its connection is being closed for a protocol violation
	}
	p.delim = delim
	c.handleBody(p, delim, body)
}

// handleBody routes one JSON-RPC frame (object or array) from p.
func (c *core) handleBody(p *peer, delim bool, body []byte) {
	if firstByte(body) == '[' {
		if p.node {
			// A node's packed results and notices: walked member by member (each member is
			// validated as it comes). Only a client batch needs the all-or-nothing -32700 of
			// the specification; what a node sent before a parse error has been handled.
			c.handleArray(p, delim, body)
		} else {
			c.handleBatch(p, delim, body)
		}
		return
	}
	h := &c.hdr
	if err := codec.ScanLimits(body, h, &c.lim); err != nil {
		if p.node {
			c.badNodeMsg(p, target{client: p.slot, cgen: p.gen, batch: noRef, delim: delim}, body, err)
			return
		}
		// The whole frame is bad: one error object with id null (also for `[]`).
		c.cnt.badFrames++
		c.scratch = codec.AppendError(c.scratch[:0], nil, codec.AsError(err))
		c.send(p, delim, c.scratch)
		return
	}
	c.handleOne(p, target{client: p.slot, cgen: p.gen, batch: noRef, delim: delim}, h, body)
}

// batchItem is one member of a client batch, scanned.
type batchItem struct {
	h   codec.Header
	err error
	raw []byte
}

// handleBatch routes a client batch. The array is walked once, collecting each member's
// header (a sub-slice view, nothing copied), and acted on only when the whole array proved
// valid JSON within the limits: a bad batch is answered with one error object and nothing of
// it runs, as the specification wants, without scanning the array twice.
func (c *core) handleBatch(p *peer, delim bool, body []byte) {
	it := &c.it
	it.Scratch = nil // escaped method names stay escaped here: decoded in handleOne
	it.ResetLimits(body, &c.lim)
	items := c.items[:0]
	reserve := 0
	for it.Next() {
		h, err := it.Header()
		items = append(items, batchItem{h: *h, err: err, raw: it.Elem()})
		if err != nil {
			reserve += errReplySize(len(nullJSON))
		} else if h.Kind == codec.KindRequest {
			reserve += errReplySize(len(h.ID))
		}
	}
	c.items = items
	if err := it.Err(); err != nil {
		if err == codec.ErrBatchTooLarge || err == codec.ErrTooDeep {
			// Invalid JSON takes precedence over a limit: let the full scan decide.
			if e := codec.ScanLimits(body, &c.hdr, &c.lim); e != nil {
				err = e
			}
		}
		c.cnt.badFrames++
		c.scratch = codec.AppendError(c.scratch[:0], nil, codec.AsError(err))
		c.send(p, delim, c.scratch)
		clear(items)
		return
	}
	if !p.unordered && reserve > p.replies.MaxMember() {
		// Even an error per member would not fit in one reply: nothing of it runs.
		c.cnt.badFrames++
		c.scratch = codec.AppendError(c.scratch[:0], nil, errBatchTooLarge)
		c.send(p, delim, c.scratch)
		clear(items)
		return
	}
	tg := target{client: p.slot, cgen: p.gen, batch: noRef, delim: delim, member: true}
	if p.unordered {
		c.ubudget = p.replies.MaxMember()
	}
	for i := range items {
		m := &items[i]
		needsReply := m.err != nil || m.h.Kind == codec.KindRequest
		if needsReply && tg.batch == noRef && !p.unordered {
			tg.batch = c.newBatch(p, delim)
			c.batches[tg.batch].reserve = reserve
		}
		if m.err != nil {
			c.cnt.badFrames++
			c.scratch = codec.AppendError(c.scratch[:0], nil, codec.AsError(m.err))
			c.deliverNow(tg, c.scratch)
			continue
		}
		c.handleOne(p, tg, &m.h, m.raw)
	}
	c.ubudget = -1
	clear(items)
	if tg.batch != noRef {
		c.batchDone(tg.batch) // the reading guard: sends now if nothing is pending
	}
}

// firstByte returns the first non-space byte of b, or 0.
func firstByte(b []byte) byte {
	if i := rawjson.SkipSpace(b, 0); i < len(b) {
		return b[i]
	}
	return 0
}

// handleArray routes a node's array member by member: mostly results and notices (nothing to
// answer); requests in it are answered as a batch. The batch record is only made for the first
// member that needs a reply.
func (c *core) handleArray(p *peer, delim bool, body []byte) {
	tg := target{client: p.slot, cgen: p.gen, batch: noRef, delim: delim}
	it := &c.it
	it.Scratch = nil
	it.ResetLimits(body, &c.nodeLim)
	tg.member = true
	for it.Next() && !p.dropped {
		h, err := it.Header()
		needsReply := err != nil || h.Kind == codec.KindRequest
		if needsReply && tg.batch == noRef && !p.unordered {
			tg.batch = c.newBatch(p, delim)
		}
		if err != nil {
			if p.node {
				c.badNodeMsg(p, tg, it.Elem(), err)
				continue
			}
			c.cnt.badFrames++
			c.scratch = codec.AppendError(c.scratch[:0], nil, codec.AsError(err))
			c.deliverNow(tg, c.scratch)
			continue
		}
		c.handleOne(p, tg, h, it.Elem())
	}
	if tg.batch != noRef {
		c.batchDone(tg.batch) // the reading guard: sends now if nothing is pending
	}
	if err := it.Err(); err != nil && !p.dropped {
		if p.node && codec.AsError(err).Code == codec.CodeParseError {
			c.violation(p, "an array that is not valid JSON")
			return
		}
		// The rest of the array is not valid: one error object.
		c.cnt.badFrames++
		c.scratch = codec.AppendError(c.scratch[:0], nil, codec.AsError(err))
		c.send(p, delim, c.scratch)
	}
}

// handleOne routes one JSON-RPC object (raw is its bytes).
func (c *core) handleOne(p *peer, tg target, h *codec.Header, raw []byte) {
	switch h.Kind {
	case codec.KindResponse:
		c.nodeResult(p, h, raw)
		return
	case codec.KindNotification:
		tg.client = noRef // nothing is ever answered
	case codec.KindRequest:
	default:
		return
	}
	method := h.Method
	if len(method) > c.cfg.MaxMethodLen {
		// A huge name would make a queue (and a PUB topic) of that size: refused, as written.
		c.cnt.badFrames++
		c.fail(tg, h.ID, errMethodTooLong)
		return
	}
	if h.MethodEscaped {
		// A method name written with escapes (rare): decode it into the routing state's own
		// scratch buffer (bounded by MaxMethodLen above).
		c.mscratch = codec.AppendUnescape(c.mscratch[:0], method)
		method = c.mscratch
		h.Method, h.MethodEscaped = method, false
	}
	if !protocol.ValidName(method) {
		// A control character (a NUL would name another queue: see queueFor).
		c.cnt.badFrames++
		c.fail(tg, h.ID, protocol.ErrBadName)
		return
	}
	switch {
	case bytes.HasPrefix(method, brokerPrefix):
		c.brokerCall(p, tg, h)
	case codec.IsReserved(method):
		c.fail(tg, h.ID, codec.ErrMethodNotFound)
	default:
		if p.deny != 0 && !c.may(p, RoleClient, tg, h.ID, errNotClientKey) {
			return
		}
		x := &c.ext
		c.readCallExt(h.Ext, h.Params, x)
		if x.bad != "" {
			c.badParams(tg, h.ID, x.bad)
			return
		}
		c.call(p, tg, method, h.ID, h.Params, x)
	}
}

var brokerPrefix = []byte(protocol.MethodPrefix)

// fail answers a request with an error at once (nothing for a notification).
func (c *core) fail(tg target, id []byte, e *codec.Error) {
	if tg.client == noRef {
		return
	}
	c.scratch = codec.AppendError(c.scratch[:0], id, e)
	c.deliverNow(tg, c.scratch)
}

// admit checks the limits for a new task of queue q (nil: no queue could be made, for the
// reason qerr; delayed: it will be scheduled; call: its reply waits for the task, so it counts
// against the client's MaxInFlightBytes) from a client with reply target tg; it answers the
// request and returns false when one is reached.
func (c *core) admit(p *peer, tg target, id []byte, q *queue, qerr *codec.Error, delayed, call bool, size int) bool {
	switch {
	case c.closing:
		c.cnt.rejected++
		c.fail(tg, id, errShuttingDown)
		return false
	case tg.client != noRef && p != nil && p.inflight >= c.cfg.MaxInFlightPerClient:
		c.cnt.rejected++
		c.fail(tg, id, errTooManyInFlight)
		return false
	case q == nil:
		c.cnt.rejected++
		c.fail(tg, id, qerr)
		return false
	case (q.live > 0 || q.withCredit == 0 || delayed || c.dur != nil) && c.queued+c.parked+c.scheduled+c.storing() >= c.cfg.MaxQueued:
		// Only a task that would wait counts against MaxQueued (queued or scheduled); nothing
		// accepted is dropped.
		c.cnt.rejected++
		c.fail(tg, id, errQueueFull)
		return false
	case c.taskBytes+taskCost(poolCap(max(size, 1))) > c.cfg.MaxTaskBytes:
		c.cnt.rejected++
		c.fail(tg, id, errTaskBytes)
		return false
	case c.dur != nil && c.dur.unacked > 0 && c.dur.unacked+storeCost(size) > c.cfg.MaxStoreBytes:
		c.cnt.rejected++
		c.fail(tg, id, errStoreBytes)
		return false
	case call && tg.client != noRef && p != nil && p.ibytes > 0 && p.ibytes+taskCost(poolCap(max(size, 1))) > c.cfg.MaxInFlightBytes:
		c.cnt.rejected++
		c.fail(tg, id, errInFlightBytes)
		return false
	}
	return true
}

// tooLarge refuses (-32600, answered) a task of queue q whose message to a node could pass
// the bound every node accepts: the broker's own MaxMsgSize, which a node's hello may raise
// but not lower (see bHello). So a task that is accepted always travels, its meta with it.
func (c *core) tooLarge(tg target, id []byte, q *queue, params []byte, x *taskExt) bool {
	n := envelopeMax(q, len(params))
	if len(x.meta) > 0 {
		n += protocol.MetaOverhead + len(x.meta)
	}
	if n <= c.maxMsg-2 {
		return false
	}
	c.cnt.rejected++
	if tg.client != noRef {
		data := append(append([]byte(`{"bytes":`), strconv.Itoa(n)...), `,"max":`...)
		data = append(append(data, strconv.Itoa(c.maxMsg-2)...), '}')
		c.fail(tg, id, codec.NewError(codec.CodeInvalidRequest, protocol.TaskTooLargeMessage, data))
	}
	return true
}

// call queues a task call (a notification when tg.client is noRef) with the options x.
func (c *core) call(p *peer, tg target, method, id, params []byte, x *taskExt) {
	var sh *share
	if p != nil {
		sh = p.share
	}
	q, qerr := c.queueFor(method, x.queue, sh)
	if !c.admit(p, tg, id, q, qerr, x.delay > 0, true, len(id)+len(params)) || c.tooLarge(tg, id, q, params, x) {
		if q != nil {
			c.maybeDropQueue(q)
		}
		return
	}
	if tg.client == noRef {
		id = nil
	}
	slot, t, ok := c.newTask(q, id, params)
	if !ok {
		c.cnt.rejected++
		c.fail(tg, id, errQueueFull)
		c.maybeDropQueue(q)
		return
	}
	if tg.client != noRef {
		c.own(p, tg, slot, t)
	}
	c.setDeadline(t, x.timeout)
	t.prio = x.priority
	c.setOpts(slot, t, x)
	c.cnt.accepted++
	if c.dur != nil {
		c.hold(p, slot, t, c.due(x.delay), false, noTarget, nil)
		return
	}
	c.start(slot, t, q, x.delay)
}

// due returns when a task delayed by d is due (0 for no delay).
func (c *core) due(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return c.now() + int64(d)
}

// storing returns the tasks being written to the store (durable mode).
func (c *core) storing() int {
	if c.dur == nil {
		return 0
	}
	return c.dur.storing
}

// start queues a new task, or schedules it when it is delayed.
func (c *core) start(slot uint32, t *task, q *queue, delay time.Duration) {
	if delay > 0 {
		c.schedule(slot, t, c.now()+int64(delay), stQueued)
		return
	}
	c.enqueue(slot, t, q, false)
}

// own makes task t owe its reply to tg's client.
func (c *core) own(p *peer, tg target, slot uint32, t *task) {
	t.client, t.cgen, t.batch = tg.client, tg.cgen, tg.batch
	if tg.delim {
		t.flags |= fDelim
	}
	if tg.member {
		t.flags |= fMember
	}
	c.linkClient(p, slot, t)
	c.pending(p, tg)
}

// pending counts a request whose reply will come later.
func (c *core) pending(p *peer, tg target) {
	p.inflight++
	if tg.batch != noRef {
		c.batches[tg.batch].pending++
	}
}

// nodeResult handles a response from a node: the result (or error) of the task whose key is
// its id (raw is the response object). A response for a task the broker did not give to this
// node, or for an earlier attempt (its generation has moved on), is ignored and counted. An
// error marked retryable runs the task again if it has attempts left.
func (c *core) nodeResult(p *peer, h *codec.Header, raw []byte) {
	if !p.node {
		// A node the broker does not know (it restarted, or lost the node): say hello again.
		c.cnt.stale++
		c.notNode(p, noTarget, nil)
		return
	}
	k, ours, ok := c.parseHandout(h.ID)
	if !ok {
		c.violation(p, "an answer whose id names no task: "+clip(h.ID))
		return
	}
	slot, t := c.heldBy(p, k, ours)
	if t == nil {
		return
	}
	c.noteProgress(p)
	c.unlinkHeld(p, slot, t)
	if t.state == stRevoked {
		c.freeTask(slot, t) // its record was stored when it was revoked
		return
	}
	if h.Error != nil {
		// The error path only: a success costs nothing here.
		if code := errObjCode(h.Error); isRateLimited(code, h.Error) {
			c.rateLimited(slot, t, h.Error)
			return
		}
		if ok, after := retryAsked(raw, h.Error); ok && c.retry(slot, t, after) {
			c.noteTry(slot, t, h.Error, p.name)
			return
		}
		code := errObjCode(h.Error)
		if code == CodeNoCredit && rawjson.IsTrue(rawjson.Member(rawjson.Member(h.Error, "data"), "no_credit")) {
			// The node was full: it did not run the task. Each such answer used up one unit
			// of credit the broker counted for it, so this ends once the books agree.
			c.refused(slot, t)
			return
		}
		if code == CodeExpired {
			// It waited in the node past its deadline and did not run.
			c.end(slot, t, errExpired, stExpired)
			return
		}
	}
	c.finish(slot, t, h.Result, h.Error, p.name)
}

// refused puts back a task its node refused for lack of credit: front of its queue, the
// hand-out not counted as an attempt.
func (c *core) refused(slot uint32, t *task) {
	if t.state == stRunning {
		c.markRunning(t, false)
		t.state = stQueued
	}
	c.handBack(slot, t)
	c.pumpQueue(c.queues[t.q])
}

// finish completes a task: the reply to its client (the node's raw result or error object
// after the client's own id), its record in the store if it was submitted, and its slot freed.
func (c *core) finish(slot uint32, t *task, result, errObj []byte, node string) {
	if t.flags&fSubmitted != 0 && errObj == nil && len(result) > c.resultRoom(t, node) {
		// Its record could not be read in one message: the task fails instead.
		c.cnt.tooLarge++
		result, errObj = nil, resultTooLargeJSON
	}
	st := stSuccess
	if errObj != nil {
		st = stFailure
		c.cnt.failed++
		c.count(t, outFailed)
	} else {
		c.cnt.succeeded++
		c.count(t, outSucceeded)
	}
	c.observeEnd(t)
	if t.flags&fClient != 0 {
		tg := target{client: t.client, cgen: t.cgen, batch: t.batch, delim: t.flags&fDelim != 0, member: t.flags&fMember != 0}
		c.unlinkClient(slot, t)
		c.scratch = appendResponse(c.scratch[:0], t.id(), result, errObj)
		c.deliverAsync(tg, c.scratch)
	}
	if t.flags&fSubmitted != 0 {
		t.state = st
		c.storeTask(slot, t, result, errObj, node)
	}
	c.freeTask(slot, t)
}

// appendResponse appends a response with raw id and raw result or error object.
func appendResponse(dst, id, result, errObj []byte) []byte {
	dst = append(dst, `{"jsonrpc":"2.0","id":`...)
	if id == nil {
		id = nullJSON
	}
	dst = append(dst, id...)
	if errObj != nil {
		dst = append(dst, `,"error":`...)
		dst = append(dst, errObj...)
	} else {
		dst = append(dst, `,"result":`...)
		if result == nil {
			result = nullJSON
		}
		dst = append(dst, result...)
	}
	return append(dst, '}')
}

var nullJSON = []byte("null")

// resultTooLargeJSON is the error a submitted task ends with when its result is past
// resultRoom.
var resultTooLargeJSON = codec.AppendErrorObject(nil, protocol.ErrResultTooLarge)

// statusReplyRoom is what a broker.status or broker.result reply adds around a record: the
// response envelope with an id of up to 20 bytes, and the brackets of an array of one.
const statusReplyRoom = len(envHead) + 20 + len(`,"result":`) + len("}") + 2

// resultRoom returns the largest result submitted task t may finish with: its record (the
// record with a null result, measured as built, plus the result) read back in a reply fits
// MaxMsgSize.
func (c *core) resultRoom(t *task, node string) int {
	q := c.queues[t.q]
	rec := record{seq: t.seq, method: q.method, queue: q.qname, node: node, attempts: t.attempts, state: stSuccess}
	c.recbuf = c.appendRecord(c.recbuf[:0], &rec)
	return c.maxMsg - statusReplyRoom - (len(c.recbuf) - len(nullJSON))
}
