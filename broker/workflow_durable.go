package broker

import (
	"strconv"
	"sync"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/internal/rawjson"
	"github.com/zerotask/zerotask/protocol"
	"github.com/zerotask/zerotask/store"
)

// Workflows in durable mode (docs/workflows.md, "Durable mode"). The graph is kept in the
// store as a task of its own, the coordinator: its params are the submit's params (graph,
// policy), its id the graph's id, held by this broker like any accepted task, in the store
// queue protocol.WorkflowQueue that no node serves. Each step is an ordinary durable task
// whose id is derived from the graph's: "<graph id>.<k>" for the k-th task step in graph
// order, so the steps of a graph are found again by id. The graph's progress is not written
// anywhere else: it follows from which steps have a result in the store.
//
// A broker killed mid-graph loses nothing: its next run (or, past the lease, any broker on
// that Redis) claims the coordinator from WorkflowQueue, reads the results of the graph's
// steps, and replays the graph: a step with a result feeds it on as if it had just ended;
// a step without one is held again under its id, which the store refuses (Taken) when the
// step is still there (queued, or held by a run that has not given it back yet). Such a step
// is "away": it is attached when this broker claims it, and its result is read from the store
// (pollAway) in case another broker runs it. A step with a result never runs again; one that
// was running at the crash runs again (at least once, as every task).
//
// At the graph's end its record is put in the store under the graph's id, then the
// coordinator is acked (the finisher writes results before acks).

// flowResumeReaders bounds the store reads of one resume at once.
const flowResumeReaders = 16

// awayPollMax bounds the away steps whose result one poll reads.
const awayPollMax = 256

// stepID returns the store id of step k of the graph whose id is graph.
func stepID(graph string, k int) string { return graph + "." + strconv.Itoa(k) }

// flowQueue returns the queue of the coordinators (durable mode), made once and kept.
func (c *core) flowQueue() *queue {
	if c.wf.cq == nil {
		q, _ := c.queueFor([]byte(protocol.WorkflowQueue), nil, nil)
		if q == nil {
			return nil
		}
		q.refs++ // kept: the claimer claims graphs for it
		c.wf.cq = q
	}
	return c.wf.cq
}

// holdFlow writes the coordinator of a new graph f (durable mode); its submit is answered and
// the graph started once the store has it (flowWritten).
func (c *core) holdFlow(p *peer, tg target, h *codec.Header, f *workflow, scoped []byte) bool {
	q := c.flowQueue()
	if q == nil {
		c.fail(tg, h.ID, errTooManyMethods)
		return false
	}
	slot, t, ok := c.newTask(q, nil, rawjson.TrimSpace(h.Params))
	if !ok {
		c.maybeDropQueue(q)
		c.fail(tg, h.ID, errQueueFull)
		return false
	}
	t.seq = f.seq
	f.coord = slot
	if f.owner != "" || scoped != nil {
		t.flags |= fOpts
		c.opts[slot] = taskOpts{owner: f.owner, key: string(scoped)}
	}
	c.hold(p, slot, t, 0, true, tg, h.ID)
	return true
}

// flowWritten settles the write of a coordinator (from holdsWritten): the graph starts, or it
// is dropped with its task. A coordinator Redis took under a run lost since (stale: the fence
// gave it back to the workflow queue) is not started here: its submit is answered (the graph
// is in Redis), and whichever broker claims it runs the graph; started here, its steps would
// run under the next run and its ack would forget the queued coordinator, the graph unrun and
// its record never written. It reports whether t was a coordinator.
func (c *core) flowWritten(e holdEntry, slot uint32, t *task, st *store.Task, bstate string, err error, stale bool) bool {
	if c.wf.cq == nil || t == nil || t.q != c.wf.cq.idx {
		return false
	}
	f := c.flowOf(t.seq)
	switch {
	case err == nil && st != nil && st.Bound != "":
		c.dropFlow(f)
		c.duplicateHeld(e, slot, t, st.Bound, bstate)
		return true
	case err == nil && st != nil && st.Taken:
		c.dropFlow(f)
		c.idTaken(e, slot, t)
		return true
	case err != nil || f == nil:
		c.dur.storing--
		c.dropFlow(f)
		if e.reply {
			c.fail(e.tg, e.reqID, errStoreFailed)
			c.releaseReply(e)
		}
		c.unlinkClient(slot, t)
		t.state = stQueued
		c.freeTask(slot, t) // acks it: the write may have landed
		return true
	}
	c.dur.storing--
	c.dur.stored++
	if stale {
		c.dropFlow(f)
		c.holdDone(e, true)
		c.release(slot, t) // no ack: the coordinator is the workflow queue's now
		return true
	}
	t.state = stRunning // in no queue: it stands for the graph until it ends
	c.runNode(f, 0, nil)
	c.holdDone(e, true)
	return true
}

// dropFlow forgets a graph whose coordinator was not written.
func (c *core) dropFlow(f *workflow) {
	if f == nil {
		return
	}
	delete(c.wf.byseq, f.seq)
	for k, seq := range c.keys {
		if seq == f.seq {
			delete(c.keys, k)
		}
	}
}

// holdStep writes a new step task (durable mode) under its derived id.
func (c *core) holdStep(f *workflow, n int32, slot uint32, t *task, due int64) {
	d := c.dur
	sid := f.nodes[n].sid
	d.alias[t.seq] = sid
	d.aliasIdx[sid] = t.seq
	c.hold(nil, slot, t, due, false, noTarget, nil)
}

// stepWritten settles the write of a step task (from holdsWritten) that is not to run here:
// one whose step was claimed from the store while it was written (superseded), or one the
// store already has (taken: the step is away). Its local task goes, and nothing is acked
// under its id (the store entry is the other one's). It reports whether it did.
func (c *core) stepWritten(slot uint32, t *task, taken bool) bool {
	if t == nil {
		return false
	}
	if c.wf.superseded[t.seq] {
		delete(c.wf.superseded, t.seq)
	} else {
		ref, ok := c.wf.steps[t.seq]
		if !ok || !taken {
			return false
		}
		delete(c.wf.steps, t.seq)
		nd := &ref.f.nodes[ref.n]
		nd.seq, nd.away = 0, true
		c.wf.away[nd.sid] = ref
	}
	c.dur.storing--
	t.flags &^= fSubmitted
	c.unsubmit(t.seq)
	delete(c.dur.alias, t.seq) // the id names the other task now
	t.state = stStoring        // nothing to ack
	c.freeTask(slot, t)
	return true
}

// stepClaim decides what becomes of a task claimed from the store that is a step of a graph
// here: skip (true) when the step has ended (its result is in: the task is acked) or a task
// of this broker runs it already (the claim took the store entry that task holds, which acks
// it when done).
func (c *core) stepClaim(id string) bool {
	ref, ok := c.wf.bysid[id]
	if !ok {
		return false
	}
	nd := &ref.f.nodes[ref.n]
	if nd.ended {
		c.ack(id)
		return true
	}
	if nd.seq != 0 {
		if slot, live := c.subm[nd.seq]; live && c.tasks.at(slot).state != stStoring {
			return true
		}
	}
	return false
}

// stepClaimed attaches a task claimed from the store to the graph step it is.
func (c *core) stepClaimed(id string, seq uint64) {
	ref, ok := c.wf.bysid[id]
	if !ok {
		return
	}
	nd := &ref.f.nodes[ref.n]
	switch {
	case nd.ended:
		return
	case nd.away:
		delete(c.wf.away, id)
		nd.away = false
	case nd.seq != 0 && nd.seq != seq:
		// Its task here is still being written (a hold by this run is a no-op in the store
		// once the run holds the id by this claim): that one goes when its write is over.
		if _, live := c.subm[nd.seq]; !live {
			return
		}
		delete(c.wf.steps, nd.seq)
		c.wf.superseded[nd.seq] = true
	case nd.seq == 0:
		// Not reached yet in its graph: it runs now anyway (it had started before the
		// restart), and its result is fed when the graph gets to it (startKnown).
	}
	nd.seq = seq
	c.wf.steps[seq] = ref
}

// awayResult feeds the stored result of away step id.
func (c *core) awayResult(id string, r *store.Result) {
	ref, ok := c.wf.away[id]
	if !ok {
		return
	}
	delete(c.wf.away, id)
	nd := &ref.f.nodes[ref.n]
	nd.away = false
	c.feedStored(ref.f, ref.n, r)
}

// feedStored ends step n of f with stored result r.
func (c *core) feedStored(f *workflow, n int32, r *store.Result) {
	nd := &f.nodes[n]
	st := stFailure
	for s := stSuccess; s <= stExpired; s++ {
		if s.String() == r.State {
			st = s
		}
	}
	nd.ended, nd.fin = true, st
	o := stepOutcome{f: f, n: n, ok: st == stSuccess}
	switch {
	case o.ok && len(r.Result) > 0:
		o.val = append([]byte(nil), r.Result...)
	case o.ok:
		o.val = nullJSON
	case len(r.Error) > 0:
		o.val = append([]byte(nil), r.Error...)
	default:
		o.val = codec.AppendErrorObject(nil, errRevoked)
	}
	c.wf.outcomes = append(c.wf.outcomes, o)
}

// endStored puts a finished graph's record in the store and acks its coordinator.
func (c *core) endStored(f *workflow) {
	d := c.dur
	for _, n := range f.steps {
		if nd := &f.nodes[n]; nd.away {
			delete(c.wf.away, nd.sid)
			c.ack(nd.sid) // a queued step leaves its queue
		}
	}
	slot := f.coord
	t := c.tasks.at(slot)
	if t == nil || t.buf == nil || t.seq != f.seq {
		return
	}
	c.queuePut(slot, t, putEntry{id: c.storeID(t), state: f.state.String(), method: protocol.WorkflowMethod, at: c.now()}, f.result, f.errObj)
	id, aliased := d.alias[f.seq]
	c.freeTask(slot, t) // the ack, after the put
	if aliased {
		// A resumed graph keeps its id while its record is kept (pruneFlows forgets it).
		d.alias[f.seq] = id
		d.aliasIdx[id] = f.seq
	}
}

// resumeFlows takes graphs claimed from the store (their coordinators) into the routing state
// and replays them with their steps' stored results (by graph id, then step).
func (c *core) resumeFlows(ts []store.Task, stored map[string]map[int]*store.Result) {
	for i := range ts {
		c.resumeFlow(&ts[i], stored[ts[i].ID])
	}
}

func (c *core) resumeFlow(st *store.Task, stored map[int]*store.Result) {
	d := c.dur
	fp := flowParse{c: c}
	graph := rawjson.Member(st.Params, protocol.ParamWorkflow)
	if graph != nil {
		fp.node(graph, -1, 0, 1, true)
	}
	q := c.flowQueue()
	if graph == nil || fp.bad != "" || q == nil {
		c.log.Warn("broker: a workflow from the store cannot be read: it goes", "id", st.ID, "err", fp.bad)
		c.ack(st.ID)
		return
	}
	slot, t, ok := c.newTask(q, nil, st.Params)
	if !ok {
		d.requeues = append(d.requeues, st.ID)
		kick(d.fkick)
		return
	}
	m, _ := decodeMeta(st.Meta, c.now(), st.Age)
	c.seq++
	t.seq = c.seq
	t.state = stRunning
	d.alias[t.seq] = st.ID
	d.aliasIdx[st.ID] = t.seq
	if m.opts != (taskOpts{}) {
		t.flags |= fOpts
		c.opts[slot] = m.opts
	}
	if m.opts.key != "" {
		c.keys[m.opts.key] = t.seq
	}
	policy := policyFailFast
	if s, _ := rawjson.Unquote(rawjson.Member(st.Params, protocol.ParamPolicy)); string(s) == protocol.PolicyContinue {
		policy = policyContinue
	}
	f := &workflow{seq: t.seq, policy: policy, state: stRunning, nodes: fp.nodes, steps: fp.steps, owner: m.opts.owner, coord: slot}
	f.known = stored
	c.initFlows()
	for k, n := range f.steps {
		f.nodes[n].sid = stepID(st.ID, k)
		c.wf.bysid[f.nodes[n].sid] = stepRef{f: f, n: n}
	}
	c.wf.byseq[f.seq] = f
	d.claimed++
	c.cnt.accepted++
	c.runNode(f, 0, nil)
}

// startKnown ends a step of a resumed graph at once when the store had its result, or
// attaches it to its task when this broker holds it already. It reports whether it did.
func (c *core) startKnown(f *workflow, n int32) bool {
	nd := &f.nodes[n]
	if f.known != nil {
		if r, ok := f.known[int(nd.step)]; ok {
			delete(f.known, int(nd.step))
			c.feedStored(f, n, r)
			return true
		}
	}
	if c.dur == nil || nd.sid == "" {
		return false
	}
	if nd.seq != 0 {
		if _, live := c.subm[nd.seq]; live {
			return true // claimed before its graph got to it: it runs already
		}
	}
	return false
}

// awayIDs lists up to awayPollMax away steps to read the results of.
func (c *core) awayIDs(dst []string) []string {
	for id := range c.wf.away {
		if len(dst) >= awayPollMax {
			break
		}
		dst = append(dst, id)
	}
	return dst
}

// flowSteps returns how many task steps the graph of a coordinator's params has (0 when it
// cannot be read). It runs off the routing loop: it reads only the configuration.
func (c *core) flowSteps(params []byte) int {
	graph := rawjson.Member(params, protocol.ParamWorkflow)
	if graph == nil {
		return 0
	}
	fp := flowParse{c: c}
	fp.node(graph, -1, 0, 1, true)
	if fp.bad != "" {
		return 0
	}
	return len(fp.steps)
}

// fetchFlowSteps reads from the store the results of the steps of the claimed graphs ts, off
// the routing loop, flowResumeReaders at a time.
func (b *Broker) fetchFlowSteps(ts []store.Task) map[string]map[int]*store.Result {
	out := make(map[string]map[int]*store.Result, len(ts))
	var mu sync.Mutex
	sem := make(chan struct{}, flowResumeReaders)
	var wg sync.WaitGroup
	for i := range ts {
		id := ts[i].ID
		m := make(map[int]*store.Result)
		out[id] = m
		for k := range b.c.flowSteps(ts[i].Params) {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				ctx, cancel := b.storeCtx()
				defer cancel()
				var r store.Result
				if ok, err := b.c.dur.st.Get(ctx, stepID(id, k), &r); err == nil && ok {
					mu.Lock()
					m[k] = &r
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	return out
}

// pollAway reads the results of away steps from the store (another broker may run them).
func (b *Broker) pollAway(ids []string) {
	for _, id := range ids {
		ctx, cancel := b.storeCtx()
		var r store.Result
		ok, err := b.c.dur.st.Get(ctx, id, &r)
		cancel()
		if err != nil || !ok {
			continue
		}
		b.mu.Lock()
		b.c.awayResult(id, &r)
		b.c.flush()
		b.mu.Unlock()
	}
}
