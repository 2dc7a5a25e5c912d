package broker

import (
	"context"
	"encoding/binary"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/internal/rawjson"
	"github.com/zerotask/zerotask/protocol"
	"github.com/zerotask/zerotask/store"
)

// Durable mode (Config.Store set): the broker keeps routing from memory, as without a store,
// and writes through to the store so that nothing it acknowledged is lost with it.
//
//   - Accept: a task call or a broker.submit takes its slot as usual but waits in state
//     "storing" (shown as QUEUED): the holder goroutine writes every task accepted meanwhile in
//     one store.Hold (in flight, held by this broker's owner id), and only then are the tasks
//     queued or handed to nodes and the submits answered. So an acknowledged submit is in the
//     store, and a call's answer (its result) comes after its task was written.
//   - Finish: a finished submitted task's result is Put with Config.ResultTTL, then every task
//     that left the broker (finished, failed, expired, revoked, dropped) is Acked: the finisher
//     goroutine sends them in batches, a Put always before the Ack of its task, so a crash in
//     between runs the task again (at least once) rather than losing it.
//   - Node loss and retries stay in memory: the store still holds the task for this broker.
//   - Start: Register(owner) starts a run of the owner id (the owner of every write, see
//     durable_loop.go) and gives back what an earlier run held (a kill -9); a run whose writes
//     are fenced (its lease ran out and its tasks went to others) forgets them (dropStored)
//     and registers anew. The claimer claims tasks from the store's queues for the queues whose nodes
//     here have credit and nothing queued, so given-back tasks (and those of a broker whose
//     lease ran out) run wherever there is room.
//   - Graceful shutdown: submitted tasks and recovered calls still queued, delayed, retried or
//     on a lost node stay in the store (not failed with CodeShuttingDown as without a store,
//     see staysStored); once Serve ends they are given back (Recover) for the next run or
//     another broker. Calls this run accepted are answered CodeShuttingDown and acked, as
//     their callers know they failed.
//   - broker.status and broker.result for a task this broker does not know (another broker's,
//     or one from before a restart whose record left memory) ask the store off the routing
//     loop: the result, or QUEUED while the store holds the task, or UNKNOWN; a wait is the
//     store's Wait (woken by the Put of whichever broker finishes it).
//
// Everything here runs under Broker.mu except the store calls, which durable mode's goroutines
// (durable_loop.go: holder, claimer, heartbeat, finisher, lookups) make without the lock.

// durable is the routing state's side of durable mode (guarded by Broker.mu).
type durable struct {
	st   store.Store
	name string                 // the owner id (Config.StoreOwner)
	run  atomic.Pointer[string] // this run of it in the store (store.Register): the owner of its writes
	log  *slog.Logger
	// fenceMu serializes lostLease (the loops may all learn of a fence at once)
	fenceMu sync.Mutex
	// lost is the last run whose tasks dropStored forgot: a write made under it that Redis
	// took before the fence is settled as stale (see stale).
	lost string

	holds []holdEntry // accepted tasks waiting to be written
	puts  []putEntry  // results waiting to be written
	pbuf  []byte      // their result and error bytes
	acks  []string    // ids to ack, after the puts before them
	// running marks for the store, in order: a node reported the task started (other
	// brokers then say RUNNING), or the broker has it back to run again
	marks  []runMark
	marked map[string]struct{} // takeFinished's scratch
	// ids claimed that cannot run here (no queue could be made): given back
	requeues []string
	deads    []store.Dead // tasks to archive in the store, before their acks

	alias    map[uint64]string // local seq -> store id of tasks taken from the store (other brokers' ids)
	aliasIdx map[string]uint64
	lookups  int // status/result lookups running against the store
	claimed  uint64
	stored   uint64
	failed   uint64 // task writes the store refused (the tasks were refused)
	storing  int    // tasks accepted and being written
	unacked  int64  // their bytes (holdEntry.bytes), for MaxStoreBytes

	// leaseUntil is until when this broker's lease is surely live, on mono: the last
	// confirmed renewal's send time plus three quarters of the lease. Past it, paused: no task
	// is handed out (another broker may own them by now) until a renewal is confirmed, or the
	// store fences the run (lostLease). The lease is a duration on Redis's clock from the
	// renewal, so it is measured here as a duration too, on the monotonic clock: a jump of
	// this host's wall clock (or of Redis's) neither stretches nor ends it.
	leaseUntil int64
	paused     bool
	// mono is the monotonic clock of the lease (ns since the broker's start)
	mono func() int64

	idbuf []byte // storeID's buffer: its own, as callers pass scratch buffers along with the id

	hkick chan struct{} // wakes the holder
	fkick chan struct{} // wakes the finisher
}

func newDurable(st store.Store, owner string, log *slog.Logger) *durable {
	return &durable{
		st:       st,
		name:     owner,
		log:      log,
		alias:    make(map[uint64]string),
		aliasIdx: make(map[string]uint64),
		marked:   make(map[string]struct{}),
		hkick:    make(chan struct{}, 1),
		fkick:    make(chan struct{}, 1),
		mono:     monoClock(),
	}
}

// monoClock returns a clock of nanoseconds on the monotonic clock since its making: time.Since
// reads the monotonic reading time.Now carries, which no wall clock step moves.
func monoClock() func() int64 {
	base := time.Now()
	return func() int64 { return int64(time.Since(base)) }
}

// holdEntry is an accepted task being written.
type holdEntry struct {
	key   uint64 // the task's key when it was accepted (a moved-on generation: it is gone)
	id    string // its store id
	seq   uint64 // its sequence number (a submit's public id)
	due   int64  // when a delayed task is due (0: now)
	reply bool   // a submit whose answer waits for the write
	tg    target // the submit's reply target
	reqID []byte // the submit's request id (pooled)
	bytes int64  // what it counts against MaxStoreBytes (storeCost) until its write is answered
}

// storeCost is what a task with n bytes of params counts against MaxStoreBytes while its
// write is under way: the params, and its id, metadata and the store's command around them.
func storeCost(n int) int64 { return int64(n) + taskOverhead }

// putEntry is a finished submitted task's result waiting to be written.
type putEntry struct {
	id, state, node, method string
	key                     string // the idempotency key, bound again for the result's TTL
	submitter               string // the authenticated name of its submitter, "" for none
	attempts                int
	at                      int64
	rOff, rEnd, eEnd        int // result pbuf[rOff:rEnd], error object pbuf[rEnd:eEnd]
}

// handOutHeld reports whether hand-outs wait for the lease to be confirmed (durable mode).
func (c *core) handOutHeld() bool { return c.dur != nil && c.dur.paused }

// checkLease pauses hand-outs once the lease is no longer surely live (tick).
func (c *core) checkLease() {
	d := c.dur
	if !d.paused && d.leaseUntil != 0 && d.mono() > d.leaseUntil {
		d.paused = true
		d.log.Warn("broker: store: the lease is not confirmed any more: tasks are not handed out until it is")
	}
}

// leaseConfirmed notes a confirmed renewal sent at sent (on d.mono) and resumes hand-outs if
// they were paused.
func (c *core) leaseConfirmed(sent int64, lease time.Duration) {
	d := c.dur
	d.leaseUntil = sent + int64(lease)*3/4
	if d.paused && d.mono() <= d.leaseUntil {
		d.paused = false
		d.log.Info("broker: store: the lease is confirmed again: tasks are handed out")
		for _, q := range c.queues {
			if q != nil {
				c.pumpQueue(q)
			}
		}
	}
}

// owner returns the store owner the broker's writes go under: its current run.
func (d *durable) owner() string { return *d.run.Load() }

// stale reports (under Broker.mu) whether run, under which a write was made, has been lost
// and its tasks forgotten (dropStored). A Hold or Claim of that run that Redis took did so
// before the run was fenced, so the fence's give-back put its tasks back in Redis's queues:
// they are not this broker's to run. Taken in under the next run they would run here with
// results the store does not write (the task is not that run's) and acks that forget them
// unrun from the queue: acknowledged tasks lost.
func (d *durable) stale(run string) bool { return run == d.lost || run != d.owner() }

func kick(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// storeID returns the store id of task t: its public id, or the id it came with from the
// store. It writes no shared scratch buffer: the broker's own error records are built in
// c.scratch2 and reach putResult with the id built after them.
func (c *core) storeID(t *task) string {
	if id, ok := c.dur.alias[t.seq]; ok {
		return id
	}
	d := c.dur
	d.idbuf = c.appendBareID(d.idbuf[:0], t.seq)
	return string(d.idbuf)
}

// hold parks a newly accepted task until the store has it (durable mode). due is when a
// delayed task is due (0: now). For a submit (reply), the answer waits too.
func (c *core) hold(p *peer, slot uint32, t *task, due int64, reply bool, tg target, reqID []byte) {
	d := c.dur
	if t.seq == 0 {
		c.seq++
		t.seq = c.seq
	}
	t.state = stStoring
	d.storing++
	e := holdEntry{key: t.key(slot), id: c.storeID(t), seq: t.seq, due: due, reply: reply, bytes: storeCost(len(t.params()))}
	d.unacked += e.bytes
	if reply && tg.client != noRef {
		e.tg = tg
		e.reqID = append(c.pool.get(len(reqID)), reqID...)
		c.pending(p, tg)
	} else {
		e.tg = noTarget
	}
	d.holds = append(d.holds, e)
	kick(d.hkick)
}

// storingAt returns the task of key k if it is still being written under that key.
func (c *core) storingAt(k uint64) (uint32, *task) {
	slot, t := c.current(k)
	if t == nil || t.state != stStoring {
		return slot, nil
	}
	return slot, t
}

// takeHolds moves the holds to write into batch and the tasks' bytes into tasks (their
// Params and Meta in arena): tasks dropped meanwhile are answered and left out.
func (c *core) takeHolds(batch []holdEntry, tasks []store.Task, arena []byte) ([]holdEntry, []store.Task, []byte) {
	d := c.dur
	type span struct{ p0, p1, m1 int }
	var spans [64]span
	sp := spans[:0]
	for _, e := range d.holds {
		slot, t := c.storingAt(e.key)
		if t == nil {
			d.unacked -= e.bytes
			c.holdDone(e, false) // never written: nothing to ack
			continue
		}
		q := c.queues[t.q]
		p0 := len(arena)
		arena = append(arena, t.params()...)
		p1 := len(arena)
		arena = c.appendMeta(arena, slot, t, e)
		sp = append(sp, span{p0, p1, len(arena)})
		st := store.Task{ID: e.id, Queue: q.name, Method: q.method, Attempts: int(t.attempts), Deadline: unixTime(t.deadline)}
		if t.flags&fOpts != 0 {
			if key := c.opts[slot].key; key != "" {
				// Bound until the task's result is put (which binds it for the result's TTL),
				// with room for a task that waits: its delay, and a day.
				st.Key = key
				st.KeyTTL = c.cfg.ResultTTL + keySlack
				if e.due > 0 {
					st.KeyTTL += time.Duration(e.due - c.now())
				}
			}
		}
		tasks = append(tasks, st)
		batch = append(batch, e)
	}
	d.holds = emptied(d.holds)
	for i := range tasks {
		s := sp[i]
		if s.p1 > s.p0 {
			tasks[i].Params = arena[s.p0:s.p1:s.p1]
		}
		tasks[i].Meta = arena[s.p1:s.m1:s.m1]
	}
	return batch, tasks, arena
}

func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// Task metadata in the store (store.Task.Meta): a version byte, flags, the priority, the
// attempts bound, then uvarints: retry backoff and its ceiling (ms), and the due time of a
// delayed task (0 for none), then the idempotency key and the submitter's authenticated name
// (each a uvarint length, then its bytes), then its meta object the same way. Version 5 added
// the meta object, version 4 the submitter. Version 3 keeps the due time as ms after the hold plus one (the store's clock gives the
// task's age at a claim, see store.Task.Age: brokers with skewed clocks agree on it); versions
// 1 and 2 kept it as unix ms of the writer's clock, and 1 had no key.
const (
	metaVersion   = 5
	metaSubmitted = 1 << 0
	maxMetaKey    = MaxKeyLen
	maxMetaOwner  = MaxUserName
	maxMetaMeta   = protocol.MaxMetaLen
)

func (c *core) appendMeta(dst []byte, slot uint32, t *task, e holdEntry) []byte {
	var fl byte
	if t.flags&fSubmitted != 0 {
		fl |= metaSubmitted
	}
	var o taskOpts
	if t.flags&fOpts != 0 {
		o = c.opts[slot]
	}
	var due uint64
	if e.due > 0 {
		due = uint64(max(e.due-c.now(), 0)/int64(time.Millisecond)) + 1
	}
	return appendMetaOf(dst, fl, t.prio, o, due)
}

// appendMetaOf appends the metadata of a task with flags fl, priority prio, options o and due
// time due (ms after the hold plus one; 0 for none).
func appendMetaOf(dst []byte, fl, prio byte, o taskOpts, due uint64) []byte {
	dst = append(dst, metaVersion, fl, prio, o.maxAttempts)
	dst = binary.AppendUvarint(dst, uint64(o.backoff/time.Millisecond))
	dst = binary.AppendUvarint(dst, uint64(o.maxBackoff/time.Millisecond))
	dst = binary.AppendUvarint(dst, due)
	dst = binary.AppendUvarint(dst, uint64(len(o.key)))
	dst = append(dst, o.key...)
	dst = binary.AppendUvarint(dst, uint64(len(o.owner)))
	dst = append(dst, o.owner...)
	dst = binary.AppendUvarint(dst, uint64(len(o.meta)))
	return append(dst, o.meta...)
}

// taskMeta is a decoded store.Task.Meta.
type taskMeta struct {
	submitted bool
	prio      uint8
	opts      taskOpts
	due       int64 // unix ns on this broker's clock (0: none)
}

// decodeMeta decodes b, read by a claim at now (this broker's clock) of a task held age ago
// (the store's clock).
func decodeMeta(b []byte, now int64, age time.Duration) (taskMeta, bool) {
	var m taskMeta
	if len(b) < 4 || b[0] < 1 || b[0] > metaVersion {
		return m, false
	}
	version := b[0]
	m.submitted = b[1]&metaSubmitted != 0
	m.prio = min(b[2], MaxPriority)
	m.opts.maxAttempts = min(b[3], MaxAttemptsCap)
	b = b[4:]
	var v [3]uint64
	for i := range v {
		n, k := binary.Uvarint(b)
		if k <= 0 {
			return m, false
		}
		v[i], b = n, b[k:]
	}
	const maxMS = uint64(protocol.MaxTimeout / time.Millisecond * 1000)
	m.opts.backoff = time.Duration(min(v[0], maxMS)) * time.Millisecond
	m.opts.maxBackoff = time.Duration(min(v[1], maxMS)) * time.Millisecond
	switch {
	case v[2] == 0 || v[2] >= 1<<62/uint64(time.Millisecond):
	case version >= 3:
		m.due = now + int64(v[2]-1)*int64(time.Millisecond) - int64(age)
	default:
		m.due = int64(v[2]) * int64(time.Millisecond)
	}
	// The strings each version added, in order: the key (2), the owner (4), the meta (5).
	for _, f := range [...]struct {
		since byte
		max   uint64
		to    *string
	}{{2, maxMetaKey, &m.opts.key}, {4, maxMetaOwner, &m.opts.owner}, {5, maxMetaMeta, &m.opts.meta}} {
		if version < f.since {
			break
		}
		n, k := binary.Uvarint(b)
		if k <= 0 || n > f.max || n > uint64(len(b)-k) {
			return m, false
		}
		*f.to = string(b[k : k+int(n)])
		b = b[k+int(n):]
	}
	return m, true
}

// keySlack is how long past ResultTTL (and its delay) an idempotency key stays bound to a
// task that has not finished; its result's Put binds it again for the result's TTL.
const keySlack = 24 * time.Hour

// holdsWritten finishes a written batch (err nil) or a failed one: written tasks are queued (or
// scheduled) and their submits answered; a failed write answers the submits and calls with
// CodeQueueFull and acks the ids (the write may have landed before the error). A task whose key the
// store found bound to another task (tasks[i].Bound) was not written: its submit is answered
// with that task, "duplicate":true, with the state in bstates[i] (read from the store).
func (c *core) holdsWritten(run string, batch []holdEntry, tasks []store.Task, bstates []string, err error) {
	d := c.dur
	stale := err == nil && d.stale(run)
	for _, e := range batch {
		d.unacked -= e.bytes // the store answered, whatever it said
	}
	for i, e := range batch {
		slot, t := c.storingAt(e.key)
		if c.wf.cq != nil && t != nil {
			var st *store.Task
			var bst string
			if i < len(tasks) {
				st = &tasks[i]
			}
			if i < len(bstates) {
				bst = bstates[i]
			}
			if c.flowWritten(e, slot, t, st, bst, err, stale) {
				continue
			}
			if err == nil && st != nil && c.stepWritten(slot, t, st.Taken) {
				continue
			}
		}
		if err == nil && i < len(tasks) && tasks[i].Bound != "" {
			c.duplicateHeld(e, slot, t, tasks[i].Bound, bstates[i])
			continue
		}
		if err == nil && i < len(tasks) && tasks[i].Taken {
			c.idTaken(e, slot, t)
			continue
		}
		if t == nil {
			c.ack(e.id) // written, and dropped (revoked, client gone) meanwhile
			c.holdDone(e, false)
			continue
		}
		d.storing--
		t.state = stQueued
		if err != nil {
			// Refused; the write may have landed before the error, so freeing it acks it.
			c.cnt.rejected++
			d.failed++
			if e.reply {
				c.fail(e.tg, e.reqID, errStoreFailed)
				c.releaseReply(e)
				c.unlinkClient(slot, t)
				c.freeTask(slot, t)
			} else {
				c.end(slot, t, errStoreFailed, stFailure)
			}
			continue
		}
		d.stored++
		if stale {
			c.holdStale(e, slot, t)
			continue
		}
		if c.closing {
			if c.staysStored(t) {
				c.holdDone(e, true)
				c.release(slot, t) // stays in the store, given back when Serve ends
			} else {
				c.end(slot, t, errShuttingDown, stFailure)
			}
			continue
		}
		q := c.queues[t.q]
		if e.due > c.now() {
			c.schedule(slot, t, e.due, stQueued)
		} else {
			c.enqueue(slot, t, q, false)
		}
		c.holdDone(e, true)
	}
}

// idTaken settles a task whose id the store has as another task (an id collision: an earlier
// run drew the same epoch): it was not stored, so it is refused, and nothing is acked or
// written under its id (that would touch the other task).
func (c *core) idTaken(e holdEntry, slot uint32, t *task) {
	c.cnt.rejected++
	c.dur.log.Error("broker: store: a task id is another task's in the store (an id collision): the task is refused", "id", e.id)
	if e.reply {
		c.fail(e.tg, e.reqID, errStoreFailed)
		c.releaseReply(e)
	}
	if t == nil {
		return
	}
	c.dur.storing--
	if t.flags&fOpts != 0 {
		if key := c.opts[slot].key; key != "" && c.keys[key] == t.seq {
			delete(c.keys, key)
		}
	}
	t.state = stStoring // not in the store: nothing to ack
	if !e.reply && t.flags&fSubmitted == 0 {
		c.end(slot, t, errStoreFailed, stFailure) // a call: its caller is told
		return
	}
	c.unlinkClient(slot, t)
	c.freeTask(slot, t)
}

// holdsUncertain settles a batch whose write got no answer while the broker stops: the
// tasks may be in the store (given back to its queues when Serve ends) or not, so their
// submits are not answered either way, and nothing is acked.
func (c *core) holdsUncertain(batch []holdEntry) {
	for _, e := range batch {
		if e.reply {
			c.releaseReply(e)
		}
		if slot, t := c.storingAt(e.key); t != nil {
			c.dur.storing--
			c.release(slot, t)
		}
	}
}

// holdsLost settles a batch whose write got no answer and whose run was then fenced: the
// tasks may have landed (and run through whichever broker claims them) or not. The broker
// forgets them and tells their waiting submits and calls so with errStoreLeaseLost, which is
// not a refusal: the task may run.
func (c *core) holdsLost(batch []holdEntry) {
	for _, e := range batch {
		if e.reply {
			c.fail(e.tg, e.reqID, errStoreLeaseLost)
			c.releaseReply(e)
		}
		slot, t := c.storingAt(e.key)
		if t == nil {
			continue
		}
		c.dur.storing--
		if !e.reply && t.flags&fClient != 0 && t.flags&fSubmitted == 0 {
			tg := target{client: t.client, cgen: t.cgen, batch: t.batch, delim: t.flags&fDelim != 0, member: t.flags&fMember != 0}
			c.unlinkClient(slot, t)
			c.fail(tg, t.id(), errStoreLeaseLost)
		}
		c.release(slot, t)
	}
}

// holdStale settles a task whose write Redis took under a run lost since (d.stale): the
// fence gave it back to Redis's queue, from which a broker claims and runs it. Its submit is
// answered accepted (the task is in Redis); a plain call, whose answer would come from this
// broker's node, is told errStoreLeaseLost (it runs as a recovered call, its answer lost).
func (c *core) holdStale(e holdEntry, slot uint32, t *task) {
	if !e.reply && t.flags&fClient != 0 && t.flags&fSubmitted == 0 {
		tg := target{client: t.client, cgen: t.cgen, batch: t.batch, delim: t.flags&fDelim != 0, member: t.flags&fMember != 0}
		c.unlinkClient(slot, t)
		c.fail(tg, t.id(), errStoreLeaseLost)
	}
	c.holdDone(e, true)
	c.release(slot, t)
}

// duplicateHeld settles a submit whose key the store found bound to task bound: its own task
// (t, if still here) was not written and goes; the answer names bound and its state.
func (c *core) duplicateHeld(e holdEntry, slot uint32, t *task, bound, st string) {
	c.cnt.duplicate++
	if t != nil {
		c.dur.storing--
		if t.flags&fOpts != 0 {
			if key := c.opts[slot].key; key != "" && c.keys[key] == t.seq {
				delete(c.keys, key)
			}
		}
		c.cnt.submitted--
		c.cnt.accepted--
		t.state = stStoring // never written: nothing to ack
		c.unlinkClient(slot, t)
		c.freeTask(slot, t)
	}
	if e.reply {
		if e.tg.client != noRef {
			raw := codec.AppendString(c.scratch2[:0], bound)
			c.scratch2 = raw
			if c.localRecord(raw) {
				// Known here (a task of this broker that the key named): its state now.
				seq, _ := c.parsePublicID(raw)
				c.valbuf = c.appendSubmitted(c.valbuf[:0], seq, true)
			} else {
				v := append(c.valbuf[:0], `{"id":`...)
				v = append(v, raw...)
				v = append(v, `,"state":`...)
				v = codec.AppendString(v, st)
				c.valbuf = append(v, `,"duplicate":true}`...)
			}
			c.scratch = codec.AppendResult(c.scratch[:0], e.reqID, c.valbuf)
			c.deliverAsync(e.tg, c.scratch)
		}
		c.pool.put(e.reqID)
	}
}

// holdDone answers a submit whose write is over.
func (c *core) holdDone(e holdEntry, ok bool) {
	if !e.reply {
		return
	}
	if e.tg.client != noRef {
		c.scratch = codec.AppendResult(c.scratch[:0], e.reqID, c.appendSubmitted(c.valbuf[:0], e.seq, false))
		c.deliverAsync(e.tg, c.scratch)
	}
	c.pool.put(e.reqID)
}

// releaseReply settles a submit answered with an error after its write failed.
func (c *core) releaseReply(e holdEntry) {
	if e.tg.client != noRef {
		c.deliverAsync(e.tg, nil)
	}
	c.pool.put(e.reqID)
}

var errStoreFailed = codec.NewError(CodeQueueFull, "queue full: the store did not take the task", nil)

// staysStored reports whether a task that a graceful stop leaves unfinished stays in the
// store, to run after the stop (durable mode): a submitted task, or one claimed from the store
// (a recovered call has nobody to answer, so failing it would only lose it). A plain call
// accepted by this run is answered CodeShuttingDown instead: its caller waits for that answer.
func (c *core) staysStored(t *task) bool {
	if c.dur == nil {
		return false
	}
	if t.flags&fSubmitted != 0 {
		return true
	}
	_, claimed := c.dur.alias[t.seq]
	return claimed
}

// release forgets a task without acking it: the store keeps it (a graceful shutdown in
// durable mode, given back when Serve ends; a lost lease, given back by the fence), and its
// broker.result waits go on against the store (handOffWaits).
func (c *core) release(slot uint32, t *task) {
	if c.dur != nil && t.flags&fSubmitted != 0 {
		c.handOffWaits(t)
	}
	t.state = stStoring // freeTask acks nothing for it
	c.unlinkClient(slot, t)
	c.freeTask(slot, t)
}

// handOffWaits takes the broker.result waits on task t, which the broker forgets unfinished
// while Redis keeps it, off its memory: left there, their deadline would answer them from
// memory, where the task is gone (UNKNOWN), while it is in Redis and runs through the next
// run or another broker. Each goes on as a store lookup for the rest of its wait, answered
// with the result whichever broker writes it, or the task's state in Redis at the deadline.
// During a graceful stop, which ends the lookups, each is answered at once with the state it
// is left in: QUEUED in the store.
func (c *core) handOffWaits(t *task) {
	first := c.store.take(t.seq)
	if first == nil {
		return
	}
	id := c.storeID(t)
	now := c.now()
	for w := first; w != nil; {
		next := w.next
		w.next, w.prev = nil, nil
		if c.closing || c.ask == nil {
			c.scratch = codec.AppendResult(c.scratch[:0], w.id, appendStateRecord(nil, id, protocol.StateQueued))
			c.deliverAsync(w.tg, c.scratch)
		} else {
			// Already counted: against MaxWaiting as a wait (now as a lookup), and in its
			// client's requests in flight until the lookup answers it.
			c.dur.lookups++
			c.ask(&lookup{id: id, reqID: append([]byte(nil), w.id...), tg: w.tg, wait: time.Duration(max(w.deadline-now, 0))})
		}
		c.unlinkPeerWaiter(w)
		c.freeWaiter(w)
		w = next
	}
}

// ack queues the ack of a task that left the broker, after the results queued before it.
func (c *core) ack(id string) {
	d := c.dur
	d.acks = append(d.acks, id)
	kick(d.fkick)
}

// runMark is a running mark (or its removal) to write for a stored task.
type runMark struct {
	id      string
	running bool
}

// markRunning queues the running mark of a stored task: its node reported it started
// (running), or the broker has it back after it ran (a lost node, a retry), so that other
// brokers read its state from the store as RUNNING, or QUEUED again.
func (c *core) markRunning(t *task, running bool) {
	if c.dur == nil || t.seq == 0 {
		return
	}
	d := c.dur
	d.marks = append(d.marks, runMark{id: c.storeID(t), running: running})
	kick(d.fkick)
}

// freed is called by freeTask in durable mode: the task left the broker (finished, failed,
// expired, revoked or dropped), so its store entry is acked, unless it is still being written
// (the holder acks it when the write is over) or was released.
func (c *core) freed(t *task) {
	d := c.dur
	if t.state != stStoring && t.seq != 0 {
		c.ack(c.storeID(t))
	}
	if id, ok := d.alias[t.seq]; ok {
		delete(d.alias, t.seq)
		delete(d.aliasIdx, id)
	}
}

// putResult queues the result of a finished submitted task for the store.
func (c *core) putResult(slot uint32, t *task, rec *record) {
	d := c.dur
	c.queuePut(slot, t, putEntry{id: c.storeID(t), state: rec.state.String(), node: rec.node, method: rec.method, attempts: int(rec.attempts), at: c.now()}, rec.result, rec.errObj)
	kick(d.fkick)
}

// queuePut queues e, the result record of task t in slot, with its result and error (copied)
// and the task's key and submitter, for the store.
func (c *core) queuePut(slot uint32, t *task, e putEntry, result, errObj []byte) {
	d := c.dur
	if t.flags&fOpts != 0 {
		e.key, e.submitter = c.opts[slot].key, c.opts[slot].owner
	}
	e.rOff = len(d.pbuf)
	d.pbuf = append(d.pbuf, result...)
	e.rEnd = len(d.pbuf)
	d.pbuf = append(d.pbuf, errObj...)
	e.eEnd = len(d.pbuf)
	d.puts = append(d.puts, e)
}

// takeFinished moves the results, acks, give-backs and running marks to write into the
// caller's buffers; of several marks of one task, the last counts.
func (c *core) takeFinished(results []store.Result, ids, requeues, starts, stops []string, buf []byte) ([]store.Result, []string, []string, []string, []string, []byte) {
	d := c.dur
	owner := d.owner()
	buf = append(buf[:0], d.pbuf...)
	for _, e := range d.puts {
		r := store.Result{ID: e.id, State: e.state, Node: e.node, Method: e.method, Submitter: e.submitter, Key: e.key, Attempts: e.attempts, FinishedAt: time.Unix(0, e.at), Owner: owner}
		if e.rEnd > e.rOff {
			r.Result = buf[e.rOff:e.rEnd:e.rEnd]
		}
		if e.eEnd > e.rEnd {
			r.Error = buf[e.rEnd:e.eEnd:e.eEnd]
		}
		results = append(results, r)
	}
	ids = append(ids, d.acks...)
	requeues = append(requeues, d.requeues...)
	d.requeues = emptied(d.requeues)
	for i := len(d.marks) - 1; i >= 0; i-- { // the last mark of a task wins
		m := d.marks[i]
		if _, seen := d.marked[m.id]; seen {
			continue
		}
		d.marked[m.id] = struct{}{}
		if m.running {
			starts = append(starts, m.id)
		} else {
			stops = append(stops, m.id)
		}
	}
	clear(d.marked)
	d.marks = emptied(d.marks)
	d.puts = emptied(d.puts)
	d.acks = emptied(d.acks)
	if cap(d.pbuf) > 1<<20 {
		d.pbuf = nil
	} else {
		d.pbuf = d.pbuf[:0]
	}
	return results, ids, requeues, starts, stops, buf
}

// claim is a queue with idle capacity: nodes with credit and nothing queued.
type claim struct {
	queue string
	idx   uint32
	n     int
	token string // the claim's idempotency token in the store
}

// claimMin is the fewest tasks a claim asks for.
const claimMin = 64

// Claims back off per queue while the store has nothing for it: from claimInterval, doubled
// after every empty claim, up to maxClaimGap; a claim that got tasks resets it.
const maxClaimGap = time.Second

// idleQueues lists the queues to claim store tasks for now.
func (c *core) idleQueues(dst []claim) []claim {
	if c.closing {
		return dst
	}
	now := c.now()
	if q := c.flowQueue(); q != nil && now >= q.nextClaim {
		// Graphs first: a graph resumed before its steps are claimed finds them here.
		dst = append(dst, claim{queue: q.name, idx: q.idx, n: claimMin})
	}
	for _, q := range c.queues {
		if q == nil || q.live > 0 || q.withCredit == 0 || now < q.nextClaim {
			continue
		}
		n := 0
		for _, s := range q.nodes {
			n += c.peers[s].credit
		}
		if n > 0 {
			// At least claimMin, so that priorities order a claimed batch (the store's
			// queues are FIFO); what the nodes cannot take at once waits here, held.
			dst = append(dst, claim{queue: q.name, idx: q.idx, n: min(max(n, claimMin), c.cfg.MaxBatch)})
		}
	}
	return dst
}

// claimDone notes the outcome of a claim for queue cl: got tasks, or none (back off).
func (c *core) claimDone(cl claim, got int) {
	q := c.queues[cl.idx]
	if q == nil || q.name != cl.queue {
		return
	}
	if got > 0 {
		q.claimGap, q.nextClaim = 0, 0
		return
	}
	q.claimGap = min(max(2*q.claimGap, int64(claimInterval)), int64(maxClaimGap))
	q.nextClaim = c.now() + q.claimGap
}

// claimed takes tasks claimed from the store into the routing state: they run like accepted
// ones (a submitted task records its result under its own id; a call has nobody to answer).
func (c *core) claimed(ts []store.Task) {
	d := c.dur
	var last *queue
	for i := range ts {
		st := &ts[i]
		m, ok := decodeMeta(st.Meta, c.now(), st.Age)
		if !ok {
			c.log.Warn("broker: a task from the store has unreadable metadata: running it with defaults", "id", st.ID)
		}
		qname := []byte(nil)
		if sep := strings.IndexByte(st.Queue, 0); sep >= 0 {
			qname = []byte(st.Queue[sep+1:]) // a named queue: method + "\x00" + name (queueFor)
		}
		if len(c.wf.bysid) > 0 && c.stepClaim(st.ID) {
			continue
		}
		q, _ := c.queueFor([]byte(st.Method), qname, nil)
		if q == nil {
			c.log.Warn("broker: too many methods: a task from the store goes back", "id", st.ID)
			d.requeues = append(d.requeues, st.ID)
			kick(d.fkick)
			continue
		}
		slot, t, ok := c.newTask(q, nil, st.Params)
		if !ok {
			c.maybeDropQueue(q)
			continue
		}
		d.claimed++
		c.seq++
		t.seq = c.seq
		d.alias[t.seq] = st.ID
		d.aliasIdx[st.ID] = t.seq
		if len(c.wf.bysid) > 0 {
			c.stepClaimed(st.ID, t.seq)
		}
		t.attempts = uint8(min(st.Attempts, MaxAttemptsCap))
		t.prio = m.prio
		if !st.Deadline.IsZero() {
			// The time left, on this broker's clock (the store read it back relative to the
			// hold, on its own clock).
			t.deadline = c.now() + int64(time.Until(st.Deadline))
		}
		if m.opts != (taskOpts{}) {
			t.flags |= fOpts
			c.opts[slot] = m.opts
		}
		if m.opts.key != "" {
			c.keys[m.opts.key] = t.seq
		}
		if m.submitted {
			t.flags |= fSubmitted
			c.submitted(t.seq, slot)
		}
		c.cnt.accepted++
		if m.due > c.now() {
			c.schedule(slot, t, m.due, stQueued)
			continue
		}
		// Queued first, handed out after the batch: the highest priority goes first.
		c.queueTask(slot, t, q, false)
		if q != last {
			if last != nil {
				c.pumpQueue(last)
			}
			last = q
		}
	}
	if last != nil {
		c.pumpQueue(last)
	}
}

// lookup is a broker.status or broker.result of a task this broker does not know, answered
// from the store off the routing loop.
type lookup struct {
	id    string // the task id, unquoted
	reqID []byte // the request's id (owned)
	tg    target
	wait  time.Duration // broker.result's wait (0: answer at once)
	// user is the authenticated name of the asker when it may read only its own tasks (no
	// admin role), or "" when it may read any.
	user string
	// run, when set, answers the request instead of a status lookup (durable_archive.go),
	// and after, when set, runs under Broker.mu before the answer is delivered.
	run   func(ctx context.Context) ([]byte, *codec.Error)
	after func()
}

// localRecord reports whether the task of public id raw is known here (live, or its record
// kept in memory).
func (c *core) localRecord(raw []byte) bool {
	seq, ok := c.parsePublicID(raw)
	if !ok {
		return false
	}
	return c.known(seq)
}

// startLookup answers a status or result request from the store (durable mode).
func (c *core) startLookup(p *peer, tg target, h *codec.Header, raw []byte, wait time.Duration) {
	if tg.client == noRef {
		return // a notification: nothing to answer
	}
	id, ok := rawjson.Unquote(raw)
	if !ok || c.ask == nil {
		c.ok(tg, h.ID, appendUnknown(c.valbuf[:0], raw))
		return
	}
	l := &lookup{id: string(id), tg: tg, wait: wait}
	if p.deny&RoleAdmin != 0 {
		l.user = p.user
	}
	c.askStore(p, tg, h, l)
}

// askStore hands l to the store's workers within the bounds every store request is held to
// (the client's requests in flight, MaxWaiting); past one the request is refused.
func (c *core) askStore(p *peer, tg target, h *codec.Header, l *lookup) {
	switch {
	case tg.client != noRef && p.inflight >= c.cfg.MaxInFlightPerClient:
		c.cnt.rejected++
		c.fail(tg, h.ID, errTooManyInFlight)
		return
	case c.dur.lookups+c.store.waiting() >= c.cfg.MaxWaiting:
		c.cnt.rejected++
		c.fail(tg, h.ID, errTooManyWaits)
		return
	}
	if tg.client != noRef {
		l.reqID = append([]byte(nil), h.ID...)
		c.pending(p, tg)
	}
	c.dur.lookups++
	c.ask(l)
}

// lookupDone delivers a lookup's answer (the record as JSON; lock held).
func (c *core) lookupDone(l *lookup, value []byte) {
	c.dur.lookups--
	if l.tg.client == noRef {
		return
	}
	c.scratch = codec.AppendResult(c.scratch[:0], l.reqID, value)
	c.deliverAsync(l.tg, c.scratch)
}

// appendStoredRecord appends a record read from the store.
func appendStoredRecord(dst []byte, r *store.Result) []byte {
	dst = append(dst, `{"id":`...)
	dst = codec.AppendString(dst, r.ID)
	if r.Method != "" {
		dst = append(dst, `,"method":`...)
		dst = codec.AppendString(dst, r.Method)
	}
	dst = append(dst, `,"state":`...)
	dst = codec.AppendString(dst, r.State)
	dst = append(dst, `,"attempts":`...)
	dst = strconv.AppendInt(dst, int64(r.Attempts), 10)
	if r.Submitter != "" {
		dst = append(dst, `,"submitter":`...)
		dst = codec.AppendString(dst, r.Submitter)
	}
	return appendOutcome(dst, r.State == store.StateSuccess, r.Result, r.Error, r.Node)
}

// appendStateRecord appends the state record of task id (off the hot path: a store lookup).
func appendStateRecord(dst []byte, id, st string) []byte {
	return protocol.AppendStateRecord(dst, codec.AppendString(nil, id), st)
}

var errStoreLeaseLost = codec.NewError(codec.CodeInternalError, "Internal error: the broker lost its store lease; the task may run through another broker", nil)

// dropStored forgets every task the broker has from the store after its lease was lost
// (Broker.lostLease): queued, delayed and on nodes, without acking them, as the store has
// given them to other brokers. A call whose client waits is told so (errStoreLeaseLost); a node's
// answer for a dropped task is stale. Tasks being written stay: their write is refused.
func (c *core) dropStored(run string) int {
	c.dur.lost = run
	n := 0
	drop := func(slot uint32, t *task) {
		n++
		if t.flags&fHeld != 0 {
			c.unlinkHeld(c.peers[t.node], slot, t)
		}
		if t.flags&fClient != 0 && t.flags&fSubmitted == 0 {
			tg := target{client: t.client, cgen: t.cgen, batch: t.batch, delim: t.flags&fDelim != 0, member: t.flags&fMember != 0}
			c.unlinkClient(slot, t)
			c.scratch2 = codec.AppendErrorObject(c.scratch2[:0], errStoreLeaseLost)
			c.scratch = appendResponse(c.scratch[:0], t.id(), nil, c.scratch2)
			c.deliverAsync(tg, c.scratch)
		}
		c.release(slot, t)
	}
	for _, q := range c.queues {
		for q != nil && q.live > 0 {
			k, ok := q.pop()
			if !ok {
				break
			}
			if t := c.queuedIn(k, q); t != nil {
				slot, _ := splitKey(k)
				c.leaveQueue(q, t)
				drop(slot, t)
			}
		}
	}
	c.drainScheduled(drop)
	c.eachHeld(func(_ *peer, slot uint32, t *task) { drop(slot, t) })
	// What is waiting to be written for those tasks is the lost run's: its results, acks,
	// give-backs and marks would be refused as fenced, and written under the next run they
	// would act on tasks that are others' now (an ack of a task given back to a queue forgets
	// it unrun).
	d := c.dur
	d.puts, d.pbuf = emptied(d.puts), d.pbuf[:0]
	d.acks = emptied(d.acks)
	d.requeues = emptied(d.requeues)
	d.marks = emptied(d.marks)
	d.deads = emptied(d.deads)
	return n
}

// emptied clears s (so that what its elements point to can be collected) and returns it
// empty, its capacity kept for reuse.
func emptied[T any](s []T) []T {
	clear(s)
	return s[:0]
}
