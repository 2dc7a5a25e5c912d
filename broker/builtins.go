package broker

import (
	"context"
	"strconv"
	"time"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/dispatch"
	"github.com/zerotask/zerotask/internal/rawjson"
	"github.com/zerotask/zerotask/protocol"
)

// The broker's own methods (broker.*). Params come as an object or as a positional array in the
// order protocol.md gives. The node-side ones (credit, running) are on the hot path and parse
// their few numbers by hand; the rest may allocate.

// brokerCall runs a broker.* method: a built-in, else a user task registered under that name on
// the broker's dispatcher (run off the routing loop), else -32601.
func (c *core) brokerCall(p *peer, tg target, h *codec.Header) {
	c.cnt.brokerCalls++
	if r, refusal := methodRole(string(h.Method)); refusal != nil && !c.may(p, r, tg, h.ID, refusal) {
		return
	}
	switch string(h.Method) {
	case protocol.MethodCredit:
		c.bCredit(p, tg, h)
	case protocol.MethodRunning:
		c.bRunning(p, tg, h)
	case protocol.MethodHello:
		c.bHello(p, tg, h)
	case protocol.MethodBye:
		if !p.node {
			c.notNode(p, tg, h.ID)
			return
		}
		c.nodeGone(p, true)
		c.ok(tg, h.ID, trueJSON)
	case protocol.MethodSubmit:
		c.bSubmit(p, tg, h)
	case protocol.MethodStatus:
		c.bStatus(p, tg, h)
	case protocol.MethodResult:
		c.bResult(p, tg, h)
	case protocol.MethodRevoke:
		c.bRevoke(p, tg, h)
	case protocol.MethodStats:
		c.ok(tg, h.ID, c.appendStats(c.valbuf[:0]))
	case protocol.MethodNodes:
		v, fits := c.appendNodes(c.valbuf[:0], c.replyRoom(p, tg, h.ID))
		c.okIfFits(tg, h.ID, v, fits)
	case protocol.MethodProgress:
		c.bProgress(p, tg, h)
	case protocol.MethodQueues:
		v, fits := c.appendQueues(c.valbuf[:0], c.now(), c.replyRoom(p, tg, h.ID))
		c.okIfFits(tg, h.ID, v, fits)
	case protocol.MethodPing:
		c.ok(tg, h.ID, pongJSON)
	case protocol.MethodPause:
		c.bPause(tg, h, true)
	case protocol.MethodResume:
		c.bPause(tg, h, false)
	case protocol.MethodPurge:
		c.bPurge(p, tg, h)
	case protocol.MethodList:
		c.bList(p, tg, h)
	case protocol.MethodRequeue:
		c.bRequeue(p, tg, h)
	case protocol.MethodScheduleSet:
		c.bScheduleSet(p, tg, h)
	case protocol.MethodScheduleRemove:
		c.bScheduleRemove(p, tg, h)
	case protocol.MethodScheduleList:
		c.ok(tg, h.ID, c.appendSchedules(c.valbuf[:0]))
	case protocol.MethodLimitSet:
		c.bLimitSet(tg, h)
	case protocol.MethodLimitList:
		c.ok(tg, h.ID, c.appendLimits(c.valbuf[:0]))
	default:
		c.userCall(p, tg, h)
	}
}

// methodRole is the role a broker method needs and the refusal of a connection without it
// (see Role); the methods not named here need none.
func methodRole(method string) (Role, *codec.Error) {
	switch method {
	case protocol.MethodSubmit:
		return RoleClient, errNotClientKey
	case protocol.MethodStatus, protocol.MethodResult, protocol.MethodRevoke:
		return RoleClient | RoleAdmin, errNotClientKey
	case protocol.MethodPause, protocol.MethodResume, protocol.MethodPurge, protocol.MethodList,
		protocol.MethodRequeue, protocol.MethodScheduleSet, protocol.MethodScheduleRemove,
		protocol.MethodLimitSet:
		return RoleAdmin, errNotAdminKey
	}
	return 0, nil
}

var (
	trueJSON = []byte("true")
	pongJSON = []byte(`"pong"`)
)

// okIfFits answers a request with result v when it fits the requester's messages, else with
// errReplyTooLarge.
func (c *core) okIfFits(tg target, id, v []byte, fits bool) {
	if !fits {
		c.cnt.tooLarge++
		c.fail(tg, id, errReplyTooLarge)
		return
	}
	c.ok(tg, id, v)
}

// ok answers a request with a raw result at once.
func (c *core) ok(tg target, id, result []byte) {
	if tg.client == noRef {
		return
	}
	c.scratch = codec.AppendResult(c.scratch[:0], id, result)
	c.deliverNow(tg, c.scratch)
}

// badParams answers -32602 with a message saying what is wrong.
func (c *core) badParams(tg target, id []byte, msg string) {
	c.fail(tg, id, &codec.Error{Code: codec.CodeInvalidParams, Message: "Invalid params: " + msg})
}

// notNode answers what only a node sends (credit, running notices, bye, task answers) from a
// peer that is not a node on this connection: a request gets -32602, and the peer is told
// once, with a broker.hello_required notification, to say hello again. That is how a node
// learns that the broker forgot it (a restarted broker, or one that declared it lost while
// its connection lived on): its next credit, running notice or answer brings the notice.
func (c *core) notNode(p *peer, tg target, id []byte) {
	c.fail(tg, id, errNotNode)
	if p.told {
		return
	}
	p.told = true
	c.ntbuf = protocol.AppendHelloRequired(c.ntbuf[:0], c.epoch)
	c.send(p, p.delim, c.ntbuf)
}

// maxCredit bounds the credit one node may hold.
const maxCredit = 1 << 30

// bCredit: a node grants n more tasks ([n] or {"credit":n}).
func (c *core) bCredit(p *peer, tg target, h *codec.Header) {
	n, ok := rawjson.ParseInt(rawjson.Param(h.Params, protocol.ParamCredit, 0))
	if !ok || n < 0 {
		c.badParams(tg, h.ID, "credit must be a non-negative integer")
		return
	}
	if !p.node {
		c.notNode(p, tg, h.ID)
		return
	}
	credit := int64(p.credit) + n
	if credit > maxCredit {
		credit = maxCredit
	}
	c.setCredit(p, int(credit))
	c.pumpNode(p)
	if tg.client != noRef {
		c.ok(tg, h.ID, strconv.AppendInt(c.valbuf[:0], int64(p.credit), 10))
	}
}

// bRunning: a node started these tasks ([k1, k2, ...] or {"ids":[...]}).
func (c *core) bRunning(p *peer, tg target, h *codec.Header) {
	if !p.node {
		c.notNode(p, tg, h.ID)
		return
	}
	list := h.Params
	if ids := rawjson.Member(list, protocol.ParamIDs); ids != nil {
		list = ids
	}
	var it rawjson.Array
	if !it.Reset(list) {
		c.badParams(tg, h.ID, "expected an array of task ids")
		return
	}
	for it.Next() {
		k, ours, ok := c.parseHandout(it.Value())
		_, t := c.heldBy(p, k, ok && ours)
		if t == nil {
			continue
		}
		c.noteProgress(p)
		if t.state != stRunning && t.state != stRevoked {
			t.state = stRunning
			c.stateChanged(t)
			c.markRunning(t, true) // durable mode: other brokers read RUNNING from the store
		}
	}
	c.ok(tg, h.ID, trueJSON)
}

type helloParams struct {
	Role        string   `json:"role"`
	Name        string   `json:"name"`
	Methods     []string `json:"methods"`
	Queues      []string `json:"queues"`
	Concurrency int      `json:"concurrency"`
	Unordered   bool     `json:"unordered"`
	MaxMsgSize  int64    `json:"max_msg_size"`
}

// minMsgSize is the smallest max_msg_size a hello may announce (a node's own lower bound).
const minMsgSize = 256

// maxNodeMethods bounds the methods one node's hello may list.
const maxNodeMethods = 4096

// bHello: a client says how it reads replies; a node says what it serves (its credit starts
// from zero again).
func (c *core) bHello(p *peer, tg target, h *codec.Header) {
	var hp helloParams
	ps := rawjson.TrimSpace(h.Params)
	switch {
	case len(ps) == 0:
	case ps[0] == '{':
		if err := codec.Unmarshal(ps, &hp); err != nil {
			c.badParams(tg, h.ID, err.Error())
			return
		}
	default: // positional: [role, ...] with the members of that role in protocol order
		if err := codec.Unmarshal(rawjson.Param(ps, "", 0), &hp.Role); err != nil {
			c.badParams(tg, h.ID, "role: "+err.Error())
			return
		}
		var err error
		if hp.Role == protocol.RoleNode {
			if v := rawjson.Param(ps, "", 1); v != nil {
				err = codec.Unmarshal(v, &hp.Name)
			}
			if v := rawjson.Param(ps, "", 2); v != nil && err == nil {
				err = codec.Unmarshal(v, &hp.Methods)
			}
			if v := rawjson.Param(ps, "", 3); v != nil && err == nil {
				err = codec.Unmarshal(v, &hp.Concurrency)
			}
		} else if v := rawjson.Param(ps, "", 1); v != nil {
			err = codec.Unmarshal(v, &hp.Unordered)
		}
		if err != nil {
			c.badParams(tg, h.ID, err.Error())
			return
		}
	}
	if hp.Role == "" && hp.Methods != nil {
		hp.Role = protocol.RoleNode
	}
	maxOut := c.maxMsg
	if hp.MaxMsgSize != 0 {
		if hp.MaxMsgSize < minMsgSize {
			c.badParams(tg, h.ID, "max_msg_size must be at least 256")
			return
		}
		maxOut = int(min(hp.MaxMsgSize, 1<<40))
	}
	switch hp.Role {
	case "", protocol.RoleClient:
		p.unordered = hp.Unordered
	case protocol.RoleNode:
		if !c.may(p, RoleNode, tg, h.ID, errNotNodeKey) {
			// It would receive others' tasks: it has no business on this connection.
			p.dropped = true
			if c.closeAfterReply != nil {
				c.closeAfterReply(p.ident)
			}
			return
		}
		if msg := c.checkNodeHello(&hp, maxOut); msg != "" {
			c.badParams(tg, h.ID, msg)
			return
		}
		if err := c.nodeHello(p, &hp); err != nil {
			c.cnt.rejected++
			c.fail(tg, h.ID, err)
			return
		}
	default:
		c.badParams(tg, h.ID, `role must be "client" or "node"`)
		return
	}
	c.setMaxOut(p, maxOut)
	c.valbuf = protocol.AppendHelloReply(c.valbuf[:0], c.epoch, c.cfg.HeartbeatInterval.Milliseconds(), c.cfg.MaxBatch, c.maxMsg)
	c.ok(tg, h.ID, c.valbuf)
}

// checkNodeHello returns why a node's hello is refused, or "". What a node names lands in
// every broker.nodes reply, so it is bounded here (Config.MaxNodeName, MaxNodeLists); and a
// node must take every task the broker accepts (maxOut is the message size it announced).
func (c *core) checkNodeHello(hp *helloParams, maxOut int) string {
	if len(hp.Methods)*max(1, len(hp.Queues)) > maxNodeMethods {
		return "too many methods (times queues)"
	}
	if hp.Concurrency < 0 {
		return "concurrency must not be negative (0: not said)"
	}
	lists := 0
	for _, q := range hp.Queues {
		if q == "" || len(q) > MaxQueueName {
			return msgQueueNames
		}
		if !protocol.ValidName(q) {
			return msgBadName
		}
		lists += len(q)
	}
	for _, m := range hp.Methods {
		if !protocol.ValidName(m) {
			return msgBadName
		}
		lists += len(m)
	}
	switch {
	case len(hp.Name) > c.cfg.MaxNodeName:
		return "name longer than " + strconv.Itoa(c.cfg.MaxNodeName) + " bytes"
	case lists > c.cfg.MaxNodeLists:
		return "method and queue names longer than " + strconv.Itoa(c.cfg.MaxNodeLists) + " bytes together"
	case maxOut < c.maxMsg:
		return "max_msg_size below the broker's (" + strconv.Itoa(c.maxMsg) + "): a node must take every task the broker accepts"
	}
	return ""
}

// unserve takes node p out of the queues it serves.
func (c *core) unserve(p *peer) {
	for _, qi := range p.methods {
		q := c.queues[qi]
		q.dropNode(p.slot)
		c.maybeDropQueue(q)
	}
	p.methods = p.methods[:0]
}

// nodeHello (re)registers p as a node serving hp.Methods, with no credit. When a queue for
// one of them cannot be made (MaxMethods, or the node's share of it), nothing is registered,
// p is no node, and the error is the hello's answer: a node that serves nothing must not
// believe it serves.
func (c *core) nodeHello(p *peer, hp *helloParams) *codec.Error {
	if p.node {
		c.setCredit(p, 0)
		c.unserve(p)
	} else {
		c.nodes++
	}
	p.node, p.told = true, false
	p.name = hp.Name
	if p.name == "" {
		p.name = "node-" + strconv.Quote(string(p.ident))
	}
	p.concurrency = hp.Concurrency
	p.queues = hp.Queues
	if len(p.queues) == 0 {
		p.queues = defaultQueues
	}
	p.mnames = p.mnames[:0]
	for _, m := range hp.Methods {
		if m == "" || len(m) > c.cfg.MaxMethodLen || codec.IsReservedName(m) || protocol.IsBrokerMethod(m) {
			continue
		}
		p.mnames = append(p.mnames, m)
		for _, qn := range p.queues {
			q, err := c.queueFor([]byte(m), []byte(qn), p.share)
			if err != nil {
				c.unserve(p)
				p.node = false
				c.nodes--
				p.mnames = p.mnames[:0]
				return err
			}
			dup := false
			for _, s := range q.nodes {
				if s == p.slot {
					dup = true
					break
				}
			}
			if !dup {
				q.nodes = append(q.nodes, p.slot)
				p.methods = append(p.methods, q.idx)
			}
		}
	}
	p.entryLen = c.nodeEntryLen(p)
	c.log.Debug("broker: node hello", "node", p.name, "user", p.user, "methods", hp.Methods, "queues", p.queues, "concurrency", hp.Concurrency)
	return nil
}

// nodeEntryLen returns the most bytes p's entry in a broker.nodes reply takes: its names as
// written there, plus room for its numbers (see appendNodes).
func (c *core) nodeEntryLen(p *peer) int {
	b := c.appendNodeEntry(c.valbuf[len(c.valbuf):], p)
	return len(b) + 3*20 // concurrency, credit and running, at most 20 digits each
}

var defaultQueues = []string{DefaultQueue}

// initSubmitted makes the new task t a submitted one: its options from x, its submitter
// (owner, "" for none) and the next public id.
func (c *core) initSubmitted(slot uint32, t *task, x *taskExt, owner string) {
	c.setDeadline(t, x.timeout)
	t.prio = x.priority
	c.setOpts(slot, t, x)
	if owner != "" {
		o := c.opts[slot]
		o.owner = owner
		c.opts[slot] = o
		t.flags |= fOpts
	}
	c.seq++
	t.seq = c.seq
	t.flags |= fSubmitted
	c.submitted(t.seq, slot)
}

// bSubmit queues a task and answers at once with its id; the result goes to the store.
// Params: {"method":M,"params":P, ...options} or [M, P, timeout_ms]; the options are the
// extension members of a task call (see ext.go) plus "key", the idempotency key.
func (c *core) bSubmit(p *peer, tg target, h *codec.Header) {
	mraw := rawjson.Param(h.Params, "method", 0)
	if mraw == nil {
		if graph := rawjson.Member(h.Params, protocol.ParamWorkflow); graph != nil {
			c.bWorkflow(p, tg, h, graph)
			return
		}
	}
	var method string
	if mraw == nil || codec.Unmarshal(mraw, &method) != nil || method == "" {
		c.badParams(tg, h.ID, "method must be a non-empty string")
		return
	}
	if len(method) > c.cfg.MaxMethodLen {
		c.fail(tg, h.ID, errMethodTooLong)
		return
	}
	if codec.IsReservedName(method) || protocol.IsBrokerMethod(method) {
		c.badParams(tg, h.ID, protocol.MethodPrefix+"* and rpc.* methods cannot be submitted")
		return
	}
	if !protocol.ValidName(method) {
		c.badParams(tg, h.ID, msgBadName)
		return
	}
	params := rawjson.Param(h.Params, "params", 1)
	if params != nil && params[0] != '[' && params[0] != '{' {
		c.badParams(tg, h.ID, "params must be an array or an object")
		return
	}
	x := &c.ext
	if ps := rawjson.TrimSpace(h.Params); len(ps) > 0 && ps[0] == '{' {
		c.readExt(ps, params, x, true)
		if x.bad != "" {
			c.badParams(tg, h.ID, x.bad)
			return
		}
	} else {
		*x = taskExt{timeout: parseTimeout(rawjson.Param(h.Params, protocol.MemberTimeoutMS, 2))}
	}
	var scoped []byte
	if x.key != nil {
		// A key is the submitter's own, for one method: another client's key, or the same
		// key for another method, names another task.
		scoped = scopeKey(p.user, method, x.key)
		// A task whose write is not confirmed yet does not count (durable mode): this submit
		// is written with the key too, and the store binds the key to whichever lands first.
		if seq, ok := c.keyed(scoped); ok && !c.unconfirmed(seq) {
			// The same key while the first task is known: its id, and nothing runs again.
			c.cnt.duplicate++
			c.ok(tg, h.ID, c.appendSubmitted(c.valbuf[:0], seq, true))
			return
		}
	}
	q, qerr := c.queueFor([]byte(method), x.queue, p.share)
	if !c.admit(p, tg, h.ID, q, qerr, x.delay > 0, false, len(params)) || c.tooLarge(tg, h.ID, q, params, x) {
		if q != nil {
			c.maybeDropQueue(q)
		}
		return
	}
	slot, t, ok := c.newTask(q, nil, params)
	if !ok {
		c.cnt.rejected++
		c.fail(tg, h.ID, errQueueFull)
		c.maybeDropQueue(q)
		return
	}
	c.initSubmitted(slot, t, x, p.user)
	if x.key != nil {
		c.keys[string(scoped)] = t.seq
		c.pruneKeys()
		if c.dur != nil {
			// The store makes the key one task across brokers and restarts (see hold).
			o := c.opts[slot]
			o.key = string(scoped)
			c.opts[slot] = o
			t.flags |= fOpts
		}
	}
	c.cnt.submitted++
	c.cnt.accepted++
	c.stateChanged(t)
	seq := t.seq
	if c.dur != nil {
		// Answered once the store has it.
		c.hold(p, slot, t, c.due(x.delay), true, tg, h.ID)
		return
	}
	c.start(slot, t, q, x.delay)
	c.ok(tg, h.ID, c.appendSubmitted(c.valbuf[:0], seq, false))
}

// appendSubmitted appends broker.submit's answer for task or workflow seq: its id and state
// now, and "duplicate":true when an earlier submit with the same key made it.
func (c *core) appendSubmitted(dst []byte, seq uint64, dup bool) []byte {
	dst = append(dst, `{"id":`...)
	dst = c.appendPublicID(dst, seq)
	dst = append(dst, `,"state":"`...)
	st := stUnknown
	if f := c.flowOf(seq); f != nil {
		st = f.state
	} else if slot, ok := c.subm[seq]; ok {
		st = c.tasks.at(slot).state
	} else if rec, ok := c.store.get(seq); ok {
		st = rec.state
	}
	dst = append(dst, st.String()...)
	dst = append(dst, '"')
	if dup {
		dst = append(dst, `,"duplicate":true`...)
	}
	c.valbuf = append(dst, '}')
	return c.valbuf
}

// appendPublicID appends the quoted public id "<epoch>-<seq>-<tag>" of a submitted task
// (taskid.go).
func (c *core) appendPublicID(dst []byte, seq uint64) []byte {
	if c.dur != nil {
		if id, ok := c.dur.alias[seq]; ok {
			return codec.AppendString(dst, id)
		}
	}
	dst = append(dst, '"')
	dst = c.appendBareID(dst, seq)
	return append(dst, '"')
}

// appendBareID appends the public id of task seq of this broker run, unquoted.
func (c *core) appendBareID(dst []byte, seq uint64) []byte {
	dst = append(dst, c.epoch...)
	dst = append(dst, '-')
	dst = appendUint(dst, seq)
	dst = append(dst, '-')
	return c.ids.appendTag(dst, seq)
}

// appendTaskName appends the quoted name of submitted task seq: its public id without the tag,
// what the PUB state stream shows (taskid.go).
func (c *core) appendTaskName(dst []byte, seq uint64) []byte {
	if c.dur != nil {
		if id, ok := c.dur.alias[seq]; ok {
			return codec.AppendString(dst, taskName(id))
		}
	}
	dst = append(dst, '"')
	dst = append(dst, c.epoch...)
	dst = append(dst, '-')
	dst = appendUint(dst, seq)
	return append(dst, '"')
}

// parsePublicID returns the sequence number of a public task id of this broker; a wrong tag
// is no id.
func (c *core) parsePublicID(raw []byte) (uint64, bool) {
	s, ok := rawjson.Unquote(raw)
	if ok && c.dur != nil && len(c.dur.aliasIdx) > 0 {
		if seq, found := c.dur.aliasIdx[string(s)]; found {
			return seq, true
		}
	}
	e := len(c.epoch)
	if !ok || len(s) < e+3+idTagLen || string(s[:e]) != c.epoch || s[e] != '-' || s[len(s)-idTagLen-1] != '-' {
		return 0, false
	}
	seq, ok := rawjson.ParseUint(s[e+1 : len(s)-idTagLen-1])
	if !ok || !c.ids.validTag(s[len(s)-idTagLen:], seq) {
		return 0, false
	}
	return seq, true
}

// idParam returns the raw "id" param, answering -32602 when it is missing or not a string.
func (c *core) idParam(tg target, h *codec.Header) []byte {
	raw := rawjson.TrimSpace(rawjson.Param(h.Params, protocol.ParamID, 0))
	if len(raw) == 0 || raw[0] != '"' {
		c.badParams(tg, h.ID, "id must be a task id string")
		return nil
	}
	return raw
}

// hidden answers the task of public id raw as unknown when p may not read it (see mayRead),
// and reports whether it did.
func (c *core) hidden(p *peer, tg target, h *codec.Header, raw []byte) bool {
	if c.mayRead(p, raw) {
		return false
	}
	c.ok(tg, h.ID, appendUnknown(c.valbuf[:0], raw))
	return true
}

func (c *core) bStatus(p *peer, tg target, h *codec.Header) {
	raw := c.idParam(tg, h)
	if raw == nil || c.hidden(p, tg, h, raw) {
		return
	}
	if c.dur != nil && !c.localRecord(raw) {
		c.startLookup(p, tg, h, raw, 0)
		return
	}
	c.ok(tg, h.ID, c.appendRecordOf(c.valbuf[:0], raw))
}

// bResult answers the task's record once it is finished or wait_ms has passed.
func (c *core) bResult(p *peer, tg target, h *codec.Header) {
	raw := c.idParam(tg, h)
	if raw == nil {
		return
	}
	var waitMS int64
	if v := rawjson.Param(h.Params, protocol.ParamWaitMS, 1); v != nil {
		n, ok := rawjson.ParseInt(v)
		if !ok || n < 0 {
			c.badParams(tg, h.ID, "wait_ms must be a non-negative integer")
			return
		}
		waitMS = n
	}
	if c.hidden(p, tg, h, raw) {
		return
	}
	seq, ok := c.parsePublicID(raw)
	_, live := c.subm[seq]
	if f := c.flowOf(seq); f != nil && f.state == stRunning {
		live = true
	}
	if c.dur != nil && !live && !c.localRecord(raw) {
		wait := min(time.Duration(waitMS)*time.Millisecond, protocol.MaxWait)
		c.startLookup(p, tg, h, raw, wait)
		return
	}
	if !ok || !live || waitMS == 0 || tg.client == noRef {
		// Answered at once (also during a shutdown: the waits of live tasks are kept, since
		// the running ones still finish and the queued ones end with CodeShuttingDown).
		c.ok(tg, h.ID, c.appendRecordOf(c.valbuf[:0], raw))
		return
	}
	switch {
	case p.inflight >= c.cfg.MaxInFlightPerClient:
		c.cnt.rejected++
		c.fail(tg, h.ID, errTooManyInFlight)
		return
	case c.store.waiting() >= c.cfg.MaxWaiting:
		c.cnt.rejected++
		c.fail(tg, h.ID, errTooManyWaits)
		return
	case p.share != nil && p.share.waits >= c.shareOf(c.cfg.MaxWaiting):
		c.cnt.rejected++
		c.fail(tg, h.ID, errWaitShare)
		return
	}
	wait := time.Duration(waitMS) * time.Millisecond
	if wait > protocol.MaxWait {
		wait = protocol.MaxWait
	}
	w := c.newWaiter()
	w.tg = tg
	if w.share = p.share; w.share != nil {
		w.share.waits++
	}
	w.id = append(c.pool.get(len(h.ID)), h.ID...)
	w.pnext = p.waiters
	if p.waiters != nil {
		p.waiters.pprev = w
	}
	p.waiters = w
	c.pending(p, tg)
	c.store.wait(seq, c.now()+int64(wait), w)
}

func (c *core) newWaiter() *waiter {
	if k := len(c.waiterFree); k > 0 {
		w := c.waiterFree[k-1]
		c.waiterFree = c.waiterFree[:k-1]
		return w
	}
	return &waiter{hidx: -1}
}

// wake answers a broker.result waiter: with the finished record, or (rec nil, the wait is
// over) with the task's record as it is now.
func (c *core) wake(w *waiter, rec *record) {
	v := c.valbuf[:0]
	if rec != nil {
		if c.livePeer(w.tg.client, w.tg.cgen) != nil {
			c.delivered(rec)
		}
		if f := c.flowOf(rec.seq); f != nil {
			v = c.appendFlowRecord(v, f)
		} else {
			v = c.appendRecord(v, rec)
		}
	} else {
		v = c.appendRecordSeq(v, w.seq, nil)
	}
	c.valbuf = v
	c.scratch = codec.AppendResult(c.scratch[:0], w.id, v)
	c.deliverAsync(w.tg, c.scratch)
	c.unlinkPeerWaiter(w)
	c.freeWaiter(w)
}

// unlinkPeerWaiter removes w from its client's list of waiters.
func (c *core) unlinkPeerWaiter(w *waiter) {
	if p := c.livePeer(w.tg.client, w.tg.cgen); p != nil {
		if w.pprev != nil {
			w.pprev.pnext = w.pnext
		} else if p.waiters == w {
			p.waiters = w.pnext
		}
		if w.pnext != nil {
			w.pnext.pprev = w.pprev
		}
	}
}

// freeWaiter returns a waiter (and its id buffer) to the free list.
func (c *core) freeWaiter(w *waiter) {
	c.pool.put(w.id)
	if sh := w.share; sh != nil {
		sh.waits--
		c.releaseShare(sh)
	}
	*w = waiter{hidx: -1}
	if len(c.waiterFree) < 1024 {
		c.waiterFree = append(c.waiterFree, w)
	}
}

// bRevoke revokes a submitted task: a queued one is removed, a running one is marked REVOKED
// (its result will be ignored) and its node is told on the PUB control topic.
func (c *core) bRevoke(p *peer, tg target, h *codec.Header) {
	raw := c.idParam(tg, h)
	if raw == nil || c.hidden(p, tg, h, raw) {
		return
	}
	if seq, ok := c.parsePublicID(raw); ok {
		if f := c.flowOf(seq); f != nil {
			c.revokeFlow(f)
		} else {
			c.revokeSeq(seq)
		}
	}
	c.ok(tg, h.ID, c.appendRecordOf(c.valbuf[:0], raw))
}

// revokeSeq revokes live submitted task seq: a queued one is removed, a running one is marked
// REVOKED (its result will be ignored) and its node is told.
func (c *core) revokeSeq(seq uint64) {
	slot, live := c.subm[seq]
	if !live {
		return
	}
	t := c.tasks.at(slot)
	was := t.state
	t.state = stRevoked
	c.cnt.revoked++
	c.count(t, outRevoked)
	c.scratch2 = codec.AppendErrorObject(c.scratch2[:0], errRevoked)
	c.storeTask(slot, t, nil, c.scratch2, c.nodeName(t))
	t.flags &^= fSubmitted
	c.unsubmit(seq)
	if t.flags&fHeld != 0 {
		// Told on the PUB control topic (every node, lossy) and straight to the node that
		// holds it on the ROUTER (reliable); the node cancels the handler's context and
		// answers CodeRevoked, which releases the task here.
		k := t.key(slot)
		c.ctlIDs = append(c.ctlIDs, k)
		c.revokeAt(c.peers[t.node], k)
	} else {
		if was == stStoring || was == stLimited {
			t.state = was // in no queue: being written (the holder acks it once written), or waiting for its group
		}
		c.dropWaiting(slot, t)
	}
}

// revokeAt sends node p a broker.revoke notification for task key k, after the tasks already
// packed for it (so that it knows the task when the notice arrives).
func (c *core) revokeAt(p *peer, k uint64) {
	c.flushTasks(p)
	b := protocol.AppendRevokeOpen(c.ntbuf[:0])
	b = c.appendHandout(b, k)
	c.ntbuf = protocol.AppendRevokeClose(b)
	c.send(p, p.delim, c.ntbuf)
}

// job is a user broker.* task waiting for, or running on, a broker-task worker.
type job struct {
	h      dispatch.Handler
	method []byte
	params []byte
	id     []byte
	tg     target
	// run, when set, is a built-in's work off the routing loop (a store call) in place of a
	// handler; apply then runs under the lock with its outcome and makes the reply.
	run   func(ctx context.Context) error
	apply func(err error) ([]byte, error)
}

// call runs j off the routing loop: its built-in work, or its handler on d.
func (j *job) call(ctx context.Context, d *dispatch.Dispatcher) ([]byte, error) {
	if j.run != nil {
		return nil, j.run(ctx)
	}
	return d.Call(ctx, nil, j.method, j.params)
}

// userCall runs a user broker.* task off the routing loop; the reply comes when it is done.
func (c *core) userCall(p *peer, tg target, h *codec.Header) {
	hd, ok := c.disp.Lookup(h.Method)
	if !ok || c.jobs == nil {
		c.fail(tg, h.ID, codec.ErrMethodNotFound)
		return
	}
	if c.closing {
		c.cnt.rejected++
		c.fail(tg, h.ID, errShuttingDown)
		return
	}
	if tg.client != noRef && p.inflight >= c.cfg.MaxInFlightPerClient {
		c.cnt.rejected++
		c.fail(tg, h.ID, errTooManyInFlight)
		return
	}
	j := &job{h: hd, method: append([]byte(nil), h.Method...), params: append([]byte(nil), h.Params...), tg: tg}
	if tg.client != noRef {
		j.id = append([]byte(nil), h.ID...)
	}
	if !c.jobs(j) {
		c.cnt.rejected++
		c.fail(tg, h.ID, errBrokerBusy)
		return
	}
	if tg.client != noRef {
		c.pending(p, tg)
	}
}

// jobDone delivers a user broker task's reply (called with the lock held).
func (c *core) jobDone(j *job, result []byte, err error) {
	if j.apply != nil {
		result, err = j.apply(err)
	}
	if j.tg.client == noRef {
		return
	}
	if err != nil {
		c.scratch = codec.AppendError(c.scratch[:0], j.id, codec.AsError(err))
	} else {
		c.scratch = codec.AppendResult(c.scratch[:0], j.id, result)
	}
	c.deliverAsync(j.tg, c.scratch)
}
