package broker

import (
	"bytes"
	"strconv"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/internal/rawjson"
	"github.com/zerotask/zerotask/protocol"
	"github.com/zerotask/zerotask/store"
)

// Workflows (docs/workflows.md): a broker.submit carrying a graph of chains, groups and chords
// instead of one task. The whole graph lives here, in the routing state: no counter is spread
// over a store, so a chord's callback starts exactly when its last member's answer is routed.
//
// A graph is a tree of wnodes (index 0 is the root). Its task nodes become ordinary submitted
// tasks (own ids and records, retries, deadlines) as they are reached: the first steps at
// accept time, the next ones when the results they take arrive. A step's end is noted in
// storeTask (stepEnded, which copies the outcome) and acted on in advanceFlows at the next
// flush, outside whatever path finished the task, so that starting the next steps never runs
// inside the middle of another task's bookkeeping.
//
// Results are raw JSON from the node's answer, copied once and never decoded: a chain passes
// a step's result by appending it to the next step's params array; a group's result is the
// array of its members' results in member order.

// The kinds of graph node.
const (
	wTask uint8 = iota
	wChain
	wGroup
)

// The failure policies.
const (
	policyFailFast uint8 = iota
	policyContinue
)

// wnode is one node of a graph.
type wnode struct {
	kind   uint8
	ended  bool  // its outcome is known (for a task: its state is fin)
	fin    state // a task's final state
	parent int32 // -1 for the root
	pos    int32 // its index among its parent's kids
	kids   []int32
	// A task's method, its params (owned, without a received result) and options (queue owned).
	method string
	params []byte
	ext    taskExt
	seq    uint64 // its task's seq once started, 0 before
	step   int32  // its index in the graph's steps
	sid    string // durable mode: its store id (stepID)
	away   bool   // durable mode: its task is in the store, not here (workflow_durable.go)
	// A group's member outcomes in place, and how many ended.
	results [][]byte
	ndone   int
}

// workflow is one graph and its progress.
type workflow struct {
	seq    uint64
	policy uint8
	state  state // stRunning, then stSuccess, stFailure or stRevoked
	nodes  []wnode
	steps  []int32 // the task nodes, in graph order (the record's steps)
	owner  string
	result []byte // the root's result (SUCCESS) or error object
	errObj []byte
	ended  int64 // unix ns when it finished
	// Durable mode: the coordinator task's slot, and the stored results of the steps of a
	// resumed graph, by step index, not fed yet.
	coord uint32
	known map[int]*store.Result
}

// stepRef names a started step of a graph.
type stepRef struct {
	f *workflow
	n int32
}

// stepOutcome is a step's end waiting for advanceFlows.
type stepOutcome struct {
	f   *workflow
	n   int32
	ok  bool
	val []byte // the result (ok) or error object, owned
}

// workflows is the routing state's part for graphs.
type workflows struct {
	byseq    map[uint64]*workflow // live and finished graphs (finished ones for ResultTTL)
	steps    map[uint64]stepRef   // started steps not ended, by task seq
	outcomes []stepOutcome        // ended steps not acted on yet
	finished []uint64             // finished graphs in finishing order (pruneFlows)
	// Durable mode: the queue of the coordinators, and the away steps by store id.
	cq         *queue
	away       map[string]stepRef
	bysid      map[string]stepRef // every step of the durable graphs here, by store id
	superseded map[uint64]bool    // step tasks being written whose step was claimed meanwhile
}

// initFlows makes the maps of the graphs' state.
func (c *core) initFlows() {
	if c.wf.byseq == nil {
		c.wf.byseq = make(map[uint64]*workflow)
		c.wf.steps = make(map[uint64]stepRef)
		c.wf.away = make(map[string]stepRef)
		c.wf.bysid = make(map[string]stepRef)
		c.wf.superseded = make(map[uint64]bool)
	}
}

// The refusals of a graph.
var (
	errFlowFull = codec.NewError(protocol.CodeQueueFull, "queue full: workflows", []byte(`{"budget":"workflows"}`))
)

// flowParse builds a graph's nodes from its JSON.
type flowParse struct {
	c     *core
	nodes []wnode
	steps []int32
	ready int // task nodes that start at once
	bytes int // params bytes
	bad   string
	names map[string]string // the method names seen, interned
}

// size makes room for the nodes and steps of graph at once: a large graph's nodes (a few
// hundred bytes each) would otherwise be copied at every doubling. Each task step names
// "method" once; a container (chain, group, chord) adds a node or two. The estimate is bounded
// by MaxWorkflowSteps, as the graph is; a wrong one only costs growth.
func (fp *flowParse) size(graph []byte) {
	steps := min(bytes.Count(graph, methodMember), fp.c.cfg.MaxWorkflowSteps)
	containers := min(bytes.Count(graph, groupMember)+bytes.Count(graph, chainMember), steps)
	fp.nodes = make([]wnode, 0, steps+2*containers+1)
	fp.steps = make([]int32, 0, steps)
}

// The member names size counts.
var (
	methodMember = []byte(`"method"`)
	groupMember  = []byte(`"` + protocol.MemberGroup + `"`)
	chainMember  = []byte(`"` + protocol.MemberChain + `"`)
)

func (fp *flowParse) fail(msg string) {
	if fp.bad == "" {
		fp.bad = msg
	}
}

// node parses raw as a graph node under parent, at nesting depth; ready says whether it
// starts at accept time. It returns the node's index.
func (fp *flowParse) node(raw []byte, parent, pos int32, depth int, ready bool) int32 {
	c := fp.c
	if fp.bad != "" {
		return -1
	}
	if depth > c.cfg.MaxWorkflowDepth {
		fp.fail("workflow nested deeper than " + strconv.Itoa(c.cfg.MaxWorkflowDepth))
		return -1
	}
	var method, params, chain, group, callback []byte
	opts := false // members besides these: the task options, read by readExt
	var o rawjson.Object
	if !o.Reset(raw) {
		fp.fail("a workflow node must be an object")
		return -1
	}
	for o.Next() {
		switch string(o.Name()) {
		case "method":
			method = o.Value()
		case "params":
			params = o.Value()
		case protocol.MemberChain:
			chain = o.Value()
		case protocol.MemberGroup:
			group = o.Value()
		case protocol.MemberCallback:
			callback = o.Value()
		default:
			opts = true
		}
	}
	if o.Malformed() {
		fp.fail("a workflow node must be an object")
		return -1
	}
	idx := int32(len(fp.nodes))
	fp.nodes = append(fp.nodes, wnode{parent: parent, pos: pos})
	switch {
	case method != nil && chain == nil && group == nil && callback == nil:
		fp.task(idx, raw, method, params, ready, opts)
	case chain != nil && method == nil && group == nil && callback == nil:
		fp.nodes[idx].kind = wChain
		fp.list(idx, chain, depth, func(i int) bool { return ready && i == 0 })
	case group != nil && method == nil && chain == nil && callback == nil:
		fp.nodes[idx].kind = wGroup
		fp.list(idx, group, depth, func(int) bool { return ready })
	case group != nil && callback != nil && method == nil && chain == nil:
		// A chord is a chain of the group and its callback.
		fp.nodes[idx].kind = wChain
		g := int32(len(fp.nodes))
		fp.nodes = append(fp.nodes, wnode{kind: wGroup, parent: idx, pos: 0})
		fp.list(g, group, depth+1, func(int) bool { return ready })
		cb := fp.node(callback, idx, 1, depth+1, false)
		if fp.bad == "" {
			fp.nodes[idx].kids = []int32{g, cb}
		}
	default:
		fp.fail(`a workflow node must have "method", "chain", "group", or "group" and "callback"`)
	}
	return idx
}

// list parses the array of a chain's steps or a group's members into node idx's kids.
func (fp *flowParse) list(idx int32, raw []byte, depth int, ready func(int) bool) {
	var a rawjson.Array
	var kids []int32
	for a.Reset(raw); a.Next() && fp.bad == ""; {
		i := len(kids)
		kids = append(kids, fp.node(a.Value(), idx, int32(i), depth+1, ready(i)))
	}
	switch {
	case fp.bad != "":
		return
	case a.Malformed():
		fp.fail("chain and group must be arrays of workflow nodes")
		return
	case len(kids) == 0:
		fp.fail("chain and group must not be empty")
		return
	}
	fp.nodes[idx].kids = kids
	if fp.nodes[idx].kind == wGroup {
		fp.nodes[idx].results = make([][]byte, len(kids))
	}
}

// task checks and keeps a task node.
func (fp *flowParse) task(idx int32, raw, mraw, params []byte, ready, opts bool) {
	c := fp.c
	var method string
	if m, ok := rawjson.Unquote(mraw); ok {
		if fp.names == nil {
			fp.names = make(map[string]string)
		}
		if method, ok = fp.names[string(m)]; !ok {
			method = string(m)
			fp.names[method] = method // a graph repeats few methods: one string each
		}
	} else if codec.Unmarshal(mraw, &method) != nil {
		method = ""
	}
	if method == "" {
		fp.fail("method must be a non-empty string")
		return
	}
	switch {
	case len(method) > c.cfg.MaxMethodLen:
		fp.fail("method name too long")
		return
	case codec.IsReservedName(method) || protocol.IsBrokerMethod(method):
		fp.fail(protocol.MethodPrefix + "* and rpc.* methods cannot be submitted")
		return
	case !protocol.ValidName(method):
		fp.fail(msgBadName)
		return
	}
	params = rawjson.TrimSpace(params)
	if len(params) > 0 && params[0] != '[' && (params[0] != '{' || !ready) {
		// A step that receives a result needs an array to append it to.
		fp.fail("params must be an array (or an object for a step that receives no result)")
		return
	}
	var x taskExt
	if opts {
		c.readExt(raw, params, &x, true)
	}
	switch {
	case x.bad != "":
		fp.fail(x.bad)
		return
	case x.key != nil:
		fp.fail("key applies to the whole workflow, not to a step")
		return
	}
	if x.queue != nil {
		x.queue = append([]byte(nil), x.queue...)
	}
	nd := &fp.nodes[idx]
	nd.kind = wTask
	nd.method = method
	nd.params = append([]byte(nil), params...)
	nd.ext = x
	nd.step = int32(len(fp.steps))
	fp.steps = append(fp.steps, idx)
	fp.bytes += len(params)
	if ready {
		fp.ready++
	}
	if len(fp.steps) > c.cfg.MaxWorkflowSteps {
		fp.fail("workflow has more than " + strconv.Itoa(c.cfg.MaxWorkflowSteps) + " steps")
	}
}

// bWorkflow accepts a graph (broker.submit with "workflow"): all of it or none, one answer.
func (c *core) bWorkflow(p *peer, tg target, h *codec.Header, graph []byte) {
	policy := policyFailFast
	if v := rawjson.Member(h.Params, protocol.ParamPolicy); v != nil {
		switch s, _ := rawjson.Unquote(v); string(s) {
		case protocol.PolicyFailFast:
		case protocol.PolicyContinue:
			policy = policyContinue
		default:
			c.badParams(tg, h.ID, `policy must be "`+protocol.PolicyFailFast+`" or "`+protocol.PolicyContinue+`"`)
			return
		}
	}
	var scoped []byte
	if v := rawjson.Member(h.Params, protocol.MemberKey); v != nil {
		key, ok := rawjson.Unquote(v)
		if !ok || len(key) == 0 || len(key) > MaxKeyLen {
			c.badParams(tg, h.ID, msgKey)
			return
		}
		scoped = scopeKey(p.user, protocol.WorkflowMethod, key)
		if seq, ok := c.keyed(scoped); ok {
			c.cnt.duplicate++
			c.ok(tg, h.ID, c.appendSubmitted(c.valbuf[:0], seq, true))
			return
		}
	}
	fp := flowParse{c: c}
	fp.size(graph)
	fp.node(graph, -1, 0, 1, true)
	if fp.bad != "" {
		c.badParams(tg, h.ID, "workflow: "+fp.bad)
		return
	}
	if e := c.admitFlow(&fp); e != nil {
		c.cnt.rejected++
		c.fail(tg, h.ID, e)
		return
	}
	c.seq++
	f := &workflow{seq: c.seq, policy: policy, state: stRunning, nodes: fp.nodes, steps: fp.steps, owner: p.user}
	if c.dur != nil {
		graph := string(c.appendBareID(nil, f.seq))
		for k, n := range f.steps {
			f.nodes[n].sid = stepID(graph, k)
			c.wf.bysid[f.nodes[n].sid] = stepRef{f: f, n: n}
		}
		if !c.holdFlow(p, tg, h, f, scoped) {
			c.cnt.rejected++
			return
		}
	}
	c.wf.byseq[f.seq] = f
	if scoped != nil {
		c.keys[string(scoped)] = f.seq
		c.pruneKeys()
	}
	c.cnt.submitted++
	c.cnt.accepted++
	if c.dur != nil {
		return // started and answered once the store has it (flowWritten)
	}
	c.runNode(f, 0, nil)
	c.ok(tg, h.ID, c.appendSubmitted(c.valbuf[:0], f.seq, false))
}

// admitFlow checks that a parsed graph fits the broker's bounds now: its first steps in
// MaxQueued, its params in MaxTaskBytes, its methods in MaxMethods, itself in MaxWorkflows.
// Steps that start later are not refused for a bound reached meanwhile (nothing accepted is
// dropped), except a message past MaxMsgSize, which fails the step.
func (c *core) admitFlow(fp *flowParse) *codec.Error {
	if c.closing {
		return errShuttingDown
	}
	c.initFlows()
	c.pruneFlows(true)
	if len(c.wf.byseq) >= c.cfg.MaxWorkflows {
		return errFlowFull
	}
	if c.queued+c.scheduled+c.storing()+fp.ready > c.cfg.MaxQueued {
		return errQueueFull
	}
	if c.taskBytes+int64(fp.bytes)+int64(len(fp.steps))*taskOverhead > c.cfg.MaxTaskBytes {
		return errTaskBytes
	}
	fresh := map[string]bool{}
	for _, n := range fp.steps {
		nd := &fp.nodes[n]
		key := nd.method
		if len(nd.ext.queue) > 0 && string(nd.ext.queue) != DefaultQueue {
			key = nd.method + "\x00" + string(nd.ext.queue)
		}
		if _, ok := c.queueIdx[key]; !ok {
			fresh[key] = true
		}
		if envOverhead+len(nd.method)+2+len(nd.ext.queue)+len(`,"queue":""`)+len(nd.params) > c.maxMsg-2 {
			return codec.NewError(codec.CodeInvalidRequest, protocol.TaskTooLargeMessage, nil)
		}
	}
	if len(c.queueIdx)+len(fresh) > c.cfg.MaxMethods {
		return errTooManyMethods
	}
	return nil
}

// runNode starts node n of f with input, the result it receives (nil for none).
func (c *core) runNode(f *workflow, n int32, input []byte) {
	nd := &f.nodes[n]
	switch nd.kind {
	case wTask:
		c.startStep(f, n, input)
	case wChain:
		c.runNode(f, nd.kids[0], input)
	case wGroup:
		for _, k := range nd.kids {
			c.runNode(f, k, input)
		}
	}
}

// stepParams returns a step's params with input appended as the last element of its array.
func stepParams(params, input []byte) []byte {
	if input == nil {
		return params
	}
	if len(params) == 0 {
		out := make([]byte, 0, len(input)+2)
		return append(append(append(out, '['), input...), ']')
	}
	body := rawjson.TrimSpace(params[1 : len(params)-1])
	out := make([]byte, 0, len(params)+len(input)+2)
	out = append(out, '[')
	if len(body) > 0 {
		out = append(append(out, body...), ',')
	}
	out = append(out, input...)
	return append(out, ']')
}

// startStep makes task node n of f a submitted task with the result input appended to its
// params. A step that cannot start (its message too large, no room for its method) ends at
// once with the refusal.
func (c *core) startStep(f *workflow, n int32, input []byte) {
	if c.startKnown(f, n) {
		return
	}
	nd := &f.nodes[n]
	params := stepParams(nd.params, input)
	x := &nd.ext
	q, qerr := c.queueFor([]byte(nd.method), x.queue, nil)
	if q == nil {
		c.stepFailedToStart(f, n, qerr)
		return
	}
	if envelopeMax(q, len(params)) > c.maxMsg-2 {
		c.maybeDropQueue(q)
		c.stepFailedToStart(f, n, codec.NewError(codec.CodeInvalidRequest, protocol.TaskTooLargeMessage, nil))
		return
	}
	slot, t, ok := c.newTask(q, nil, params)
	if !ok {
		c.maybeDropQueue(q)
		c.stepFailedToStart(f, n, errQueueFull)
		return
	}
	c.initSubmitted(slot, t, x, f.owner)
	nd.seq = t.seq
	c.wf.steps[t.seq] = stepRef{f: f, n: n}
	c.cnt.submitted++
	c.cnt.accepted++
	c.stateChanged(t)
	if c.dur != nil {
		c.holdStep(f, n, slot, t, c.due(x.delay))
		return
	}
	c.start(slot, t, q, x.delay)
}

// stepFailedToStart ends a step that could not become a task.
func (c *core) stepFailedToStart(f *workflow, n int32, e *codec.Error) {
	nd := &f.nodes[n]
	nd.ended, nd.fin = true, stFailure
	c.wf.outcomes = append(c.wf.outcomes, stepOutcome{f: f, n: n, val: codec.AppendErrorObject(nil, e)})
}

// stepEnded notes the end of a graph's step task (from storeTask: t is finished in state
// t.state with result or errObj, which are copied).
func (c *core) stepEnded(t *task, result, errObj []byte) {
	ref, ok := c.wf.steps[t.seq]
	if !ok {
		return
	}
	delete(c.wf.steps, t.seq)
	nd := &ref.f.nodes[ref.n]
	nd.ended, nd.fin = true, t.state
	o := stepOutcome{f: ref.f, n: ref.n, ok: t.state == stSuccess}
	if o.ok {
		if len(result) == 0 {
			result = nullJSON
		}
		o.val = append([]byte(nil), result...)
	} else {
		if len(errObj) == 0 {
			errObj = codec.AppendErrorObject(nil, errRevoked)
		}
		o.val = append([]byte(nil), errObj...)
	}
	c.wf.outcomes = append(c.wf.outcomes, o)
}

// advanceFlows acts on the steps that ended since the last call: the next steps start, groups
// complete, graphs finish. It runs at each flush.
func (c *core) advanceFlows() {
	for i := 0; i < len(c.wf.outcomes); i++ {
		o := c.wf.outcomes[i]
		c.wf.outcomes[i] = stepOutcome{}
		if o.f.state == stRunning {
			c.nodeDone(o.f, o.n, o.ok, o.val)
		}
	}
	c.wf.outcomes = c.wf.outcomes[:0]
}

// nodeDone records that node n of f ended (ok with result val, or failed with error object
// val) and moves its parent on.
func (c *core) nodeDone(f *workflow, n int32, ok bool, val []byte) {
	for f.state == stRunning {
		nd := &f.nodes[n]
		nd.ended = true
		if nd.parent < 0 {
			c.finishFlow(f, ok, val)
			return
		}
		pn := &f.nodes[nd.parent]
		switch pn.kind {
		case wChain:
			if ok && int(nd.pos)+1 < len(pn.kids) {
				c.runNode(f, pn.kids[nd.pos+1], val)
				return
			}
		case wGroup:
			if !ok && f.policy == policyFailFast {
				break // the group fails with this member's error
			}
			if !ok {
				val = appendInPlaceError(val)
			}
			pn.results[nd.pos] = val
			pn.ndone++
			if pn.ndone < len(pn.kids) {
				return
			}
			val, ok = c.groupResult(pn)
		}
		n = nd.parent
	}
}

// appendInPlaceError returns a failed member's place in its group's result: {"error":E}.
func appendInPlaceError(errObj []byte) []byte {
	out := make([]byte, 0, len(errObj)+len(protocol.MemberError)+5)
	out = append(out, `{"`...)
	out = append(out, protocol.MemberError...)
	out = append(out, `":`...)
	out = append(out, errObj...)
	return append(out, '}')
}

// groupResult returns the array of a group's member results in member order, or the
// ErrResultTooLarge error object when it could not travel in one message.
func (c *core) groupResult(g *wnode) ([]byte, bool) {
	size := 2
	for _, r := range g.results {
		size += len(r) + 1
	}
	if size > c.maxMsg-statusReplyRoom-1024 {
		return resultTooLargeJSON, false
	}
	out := make([]byte, 0, size)
	out = append(out, '[')
	for i, r := range g.results {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, r...)
	}
	g.results = nil
	return append(out, ']'), true
}

// finishFlow ends graph f: SUCCESS with its root's result, or FAILURE with the error that
// reached it, in which case every step not ended is revoked (fail fast).
func (c *core) finishFlow(f *workflow, ok bool, val []byte) {
	// The counters of Stats count tasks: the graph's steps are counted there, not the graph.
	if ok {
		f.state, f.result = stSuccess, val
	} else {
		f.state, f.errObj = stFailure, val
	}
	c.endFlow(f)
}

// revokeFlow revokes graph f and every step of it not ended (broker.revoke of its id).
func (c *core) revokeFlow(f *workflow) {
	if f.state != stRunning {
		return
	}
	f.state = stRevoked
	f.errObj = codec.AppendErrorObject(nil, errRevoked)
	c.endFlow(f)
}

// endFlow revokes the steps of a finished graph that have not ended, stores its record (waking
// the broker.result waits on it) and keeps it for ResultTTL.
func (c *core) endFlow(f *workflow) {
	// The steps not running go first: a node that holds a step it has not started then reads
	// that step's revoke before those of its running steps, whose cancels free workers that
	// would otherwise start it.
	for _, running := range [2]bool{false, true} {
		for _, n := range f.steps {
			nd := &f.nodes[n]
			if nd.ended || c.stepRunning(nd) != running {
				continue
			}
			if nd.seq != 0 {
				c.revokeSeq(nd.seq) // its stepEnded comes through storeTask
			}
			nd.ended, nd.fin = true, stRevoked
			delete(c.wf.steps, nd.seq)
		}
	}
	for i := range f.nodes {
		f.nodes[i].results = nil
		if f.nodes[i].sid != "" {
			delete(c.wf.bysid, f.nodes[i].sid)
		}
	}
	f.ended = c.now()
	c.wf.finished = append(c.wf.finished, f.seq)
	c.rec = record{seq: f.seq, method: protocol.WorkflowMethod, owner: f.owner, result: f.result, errObj: f.errObj, state: f.state}
	c.store.put(&c.rec, c.cfg.ResultTTL)
	c.rec = record{}
	f.known = nil
	if c.dur != nil {
		c.endStored(f)
	}
}

// pruneFlows forgets the finished graphs past ResultTTL and, with room asked for, the oldest
// finished one while MaxWorkflows are kept.
func (c *core) pruneFlows(room bool) {
	now := c.now()
	i := 0
	for ; i < len(c.wf.finished); i++ {
		f := c.wf.byseq[c.wf.finished[i]]
		if f != nil && now-f.ended < int64(c.cfg.ResultTTL) && !(room && len(c.wf.byseq) >= c.cfg.MaxWorkflows) {
			break
		}
		delete(c.wf.byseq, c.wf.finished[i])
		if c.dur != nil {
			if id, ok := c.dur.alias[c.wf.finished[i]]; ok {
				delete(c.dur.alias, c.wf.finished[i])
				delete(c.dur.aliasIdx, id)
			}
		}
	}
	if i > 0 {
		c.wf.finished = append(c.wf.finished[:0], c.wf.finished[i:]...)
	}
}

// flowOf returns graph seq, nil for a task or an unknown id.
func (c *core) flowOf(seq uint64) *workflow {
	if c.wf.byseq == nil {
		return nil
	}
	return c.wf.byseq[seq]
}

// stepRunning reports whether task node nd's task runs on a node now.
func (c *core) stepRunning(nd *wnode) bool {
	if nd.seq == 0 {
		return false
	}
	slot, ok := c.subm[nd.seq]
	return ok && c.tasks.at(slot).state == stRunning
}

// stepState returns the state of task node nd now.
func (c *core) stepState(nd *wnode) string {
	switch {
	case nd.ended:
		return nd.fin.String()
	case nd.away:
		return protocol.StateQueued
	case nd.seq == 0:
		return protocol.StatePending
	}
	if slot, ok := c.subm[nd.seq]; ok {
		return c.tasks.at(slot).state.String()
	}
	return protocol.StateUnknown
}

// appendFlowRecord appends graph f's record: its state, its steps' states counted and listed
// (id once started, method, state) in graph order, and its result or error once finished. The
// list is left out (with "steps_omitted":true) when the record would not fit a message.
func (c *core) appendFlowRecord(dst []byte, f *workflow) []byte {
	start := len(dst)
	dst = c.appendFlowHead(dst, f)
	mark := len(dst)
	dst = append(dst, `,"`+protocol.MemberSteps+`":[`...)
	for i, n := range f.steps {
		nd := &f.nodes[n]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '{')
		if nd.seq != 0 {
			dst = append(dst, `"id":`...)
			dst = c.appendPublicID(dst, nd.seq)
			dst = append(dst, ',')
		} else if nd.away {
			dst = append(dst, `"id":`...)
			dst = codec.AppendString(dst, nd.sid)
			dst = append(dst, ',')
		}
		dst = append(dst, `"method":`...)
		dst = codec.AppendString(dst, nd.method)
		dst = append(dst, `,"state":"`...)
		dst = append(dst, c.stepState(nd)...)
		dst = append(dst, `"}`...)
	}
	dst = append(dst, ']')
	if len(dst)-start+len(f.result)+len(f.errObj)+statusReplyRoom+64 > c.maxMsg {
		dst = append(dst[:mark], `,"steps_omitted":true`...)
	}
	return appendOutcome(dst, f.state == stSuccess, f.result, f.errObj, "")
}

// appendFlowHead appends a graph record's members before its steps.
func (c *core) appendFlowHead(dst []byte, f *workflow) []byte {
	dst = append(dst, `{"id":`...)
	dst = c.appendPublicID(dst, f.seq)
	dst = append(dst, `,"method":"`+protocol.WorkflowMethod+`","`+protocol.ParamWorkflow+`":true,"state":"`...)
	dst = append(dst, f.state.String()...)
	dst = append(dst, `","`+protocol.ParamPolicy+`":"`...)
	if f.policy == policyContinue {
		dst = append(dst, protocol.PolicyContinue...)
	} else {
		dst = append(dst, protocol.PolicyFailFast...)
	}
	dst = append(dst, '"')
	if f.owner != "" {
		dst = append(dst, `,"submitter":`...)
		dst = codec.AppendString(dst, f.owner)
	}
	var pending int
	var counts [len(stateNames)]int
	for _, n := range f.steps {
		nd := &f.nodes[n]
		switch {
		case nd.ended:
			counts[nd.fin]++
		case nd.away:
			counts[stQueued]++
		case nd.seq == 0:
			pending++
		default:
			st := stUnknown
			if slot, ok := c.subm[nd.seq]; ok {
				st = c.tasks.at(slot).state
			}
			counts[st]++
		}
	}
	counts[stQueued] += counts[stStoring]
	dst = append(dst, `,"`+protocol.MemberCounts+`":{`...)
	first := true
	add := func(name string, k int) {
		if k == 0 {
			return
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, '"')
		dst = append(dst, name...)
		dst = append(dst, `":`...)
		dst = strconv.AppendInt(dst, int64(k), 10)
	}
	add(protocol.StatePending, pending)
	for _, st := range []state{stQueued, stRunning, stRetry, stSuccess, stFailure, stRevoked, stExpired, stUnknown} {
		add(st.String(), counts[st])
	}
	return append(dst, '}')
}
