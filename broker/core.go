package broker

import (
	"cmp"
	"encoding/hex"
	"errors"
	"log/slog"
	"math/bits"
	"slices"
	"strconv"
	"time"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/dispatch"
	"github.com/zerotask/zerotask/internal/batch"
	"github.com/zerotask/zerotask/internal/rawjson"
	"github.com/zerotask/zerotask/protocol"
	"github.com/zerotask/zerotask/store"
	"github.com/zerotask/zerotask/zmtp"
)

// sender is what the routing state sends through: the ROUTER and the PUB socket (TrySend never
// blocks, so one slow peer never stalls the loop), or a recorder in tests.
type sender interface {
	TrySend(m *zmtp.Msg) error
}

// target is where a reply goes: a client peer (slot and generation, so a reply for a peer that
// has gone is dropped), possibly a strict batch collecting replies, and whether the request came
// with the empty delimiter frame. client noRef means no reply is owed.
type target struct {
	client uint32
	cgen   uint32
	batch  uint32
	delim  bool
	member bool // a member of a batch (an unordered client's replies to members are arrays)
}

var noTarget = target{client: noRef, batch: noRef}

// peer is one connection on the ROUTER, known by its routing identity. It may be a client, a
// node, or both (a node that also calls tasks).
type peer struct {
	ident []byte // routing identity (owned)
	slot  uint32
	gen   uint32 // bumped when the slot is freed: stale references never match
	alive bool
	delim bool   // its last message had the empty delimiter frame
	share *share // what its client holds in the shared tables (shares.go)

	// Who it is (auth.go), set on its first message.
	keyed bool          // it authenticated with a CURVE key
	key   zmtp.CurveKey // that key
	user  string        // its authenticated name ("" without a key)
	deny  Role          // the roles it lacks (the zero value may do everything)

	// Client side.
	unordered bool         // broker.hello {"unordered":true}: replies packed as they complete
	inflight  int          // replies owed (task calls, result waits, broker tasks)
	ibytes    int64        // what its task calls in thead take (taskCost), for MaxInFlightBytes
	thead     uint32       // head of the list of its task calls that owe a reply (task.cprev/cnext)
	waiters   *waiter      // its broker.result waits (waiter.pprev/pnext)
	replies   batch.Packer // unordered replies waiting for the flush
	rbatch    bool         // replies holds a reply to a batch member: it leaves as an array

	// Node side.
	node        bool
	told        bool  // sent broker.hello_required since it last said hello as a node
	progress    int64 // unix ns of its last answer or running notice, or of the hand-out that found it holding nothing
	dropped     bool  // closed for a protocol violation: what it still sends is ignored
	name        string
	concurrency int
	methods     []uint32 // queues it serves
	credit      int
	hbytes      int64  // bytes of params of the tasks it holds (MaxNodeBytes; handout.go)
	reopen      bool   // in core.reopenedNodes: an answer made room (handout.go)
	full        bool   // a queue's next task did not fit its MaxNodeBytes (handout.go)
	held        int    // tasks it holds
	hhead       uint32 // its held tasks, oldest first (task.nprev/nnext)
	htail       uint32
	mrr         int          // round robin over methods when pulling with credit
	tasks       batch.Packer // tasks waiting for the flush

	queues []string // the queues a node serves (its hello's "queues"; nil: the default one)
	mnames []string // the methods a node serves, as its hello listed them (broker.nodes)
	// entryLen bounds its entry in a broker.nodes reply (set at hello)
	entryLen int
	dirty    bool     // in core.dirty (tasks or replies hold members)
	outbox   [][]byte // messages the ROUTER refused (send queue full), retried on tick
	backlog  int64    // bytes in outbox (bounded by Config.MaxBacklog)
	blocked  bool     // in core.blocked
}

// queue holds the tasks of one method in one named queue (the default queue, or one a task
// named) and the nodes that serve it: a FIFO per priority, highest priority first.
type queue struct {
	name       string // the key in core.queueIdx: the method, or method + "\x00" + queue name
	method     string
	qname      string // the named queue, "" for the default one
	idx        uint32
	methodJSON []byte             // the method as a JSON string, for task requests
	queueJSON  []byte             // the queue member of a hand-out (nil for the default queue)
	topic      []byte             // "tasks.<method>"
	owner      *share             // the client share it is charged to (shares.go), or nil
	ring       lanes              // task keys of priority 0, a lane per client (shares.go); entries of removed tasks are skipped
	hi         *[MaxPriority]ring // priorities 1..MaxPriority, made on the first such task
	mask       uint16             // bit p set while the ring of priority p holds entries (live or stale)
	live       int                // queued tasks
	refs       int                // live tasks of this method (queued or held): the queue stays while > 0
	nodes      []uint32
	rr         int        // the node hand-outs go to first (pickNode)
	turn       int        // tasks handed out since the last flush (pickNode); > 0: in core.handed
	withCredit int        // serving nodes with credit > 0
	st         *qstats    // its metrics (metrics.go)
	announce   bool       // tasks were queued since the last PUB tick
	nextClaim  int64      // durable mode: no claim from the store before (unix ns)
	claimGap   int64      // durable mode: the current back-off between empty claims
	paused     bool       // its named queue is paused (broker.pause): it keeps accepting, nothing is handed out
	held       int        // its tasks held by nodes (the running count of its limits)
	lims       []*limiter // the limits that gate it (ratelimit.go), nil when none
}

// dropNode takes the node of peer slot out of the queue's nodes.
func (q *queue) dropNode(slot uint32) {
	if i := slices.Index(q.nodes, slot); i >= 0 {
		q.nodes = slices.Delete(q.nodes, i, i+1)
	}
}

// ringOf returns the ring of priority p > 0, making the high rings on first use.
func (q *queue) ringOf(p uint8) *ring {
	if q.hi == nil {
		q.hi = new([MaxPriority]ring)
	}
	return &q.hi[p-1]
}

// push adds task key k of priority p and of client (a peer slot, noRef for none), at the
// front (a task given back by a lost node runs next among its priority) or the back.
func (q *queue) push(p uint8, k uint64, front bool, client uint32) {
	if p == 0 {
		q.ring.push(client, k, front)
		q.mask |= 1
		return
	}
	r := q.ringOf(p)
	if front {
		r.pushFront(k)
	} else {
		r.pushBack(k)
	}
	q.mask |= 1 << p
}

// pop takes the first entry of the highest priority that has one.
func (q *queue) pop() (uint64, bool) {
	for q.mask != 0 {
		p := uint8(15 - bits.LeadingZeros16(q.mask))
		if p == 0 {
			k, ok := q.ring.pop()
			if q.ring.len() == 0 {
				q.mask &^= 1
			}
			if ok {
				return k, true
			}
			continue
		}
		r := q.ringOf(p)
		k, ok := r.popFront()
		if r.len() == 0 {
			q.mask &^= 1 << p
		}
		if ok {
			return k, true
		}
	}
	return 0, false
}

// peek returns the first entry pop would take, without taking it.
func (q *queue) peek() (uint64, bool) {
	if q.mask == 0 {
		return 0, false
	}
	p := uint8(15 - bits.LeadingZeros16(q.mask))
	if p == 0 {
		return q.ring.peek()
	}
	return q.ringOf(p).front()
}

// entries returns the ring entries of every priority, live or stale.
func (q *queue) entries() int {
	n := q.ring.len()
	if q.hi != nil {
		for i := range q.hi {
			n += q.hi[i].len()
		}
	}
	return n
}

// batchReply collects the replies of a strict client batch until every member is done.
type batchReply struct {
	client  uint32
	cgen    uint32
	delim   bool
	pending int          // members still to answer (plus one while the batch is being read)
	out     batch.Packer // the replies so far, bounded by the client's message size
	reserve int          // bytes kept for the -32603 errors of the members not answered yet
	used    bool
}

// errReplySize returns the bytes a member's -32603 "reply too large" takes in a batch's
// array, with an id of idLen bytes (and the ',' before it).
func errReplySize(idLen int) int { return errReplyFixed + idLen }

var errReplyFixed = len(codec.AppendError(nil, nil, errReplyTooLarge)) - len(nullJSON) + 1

// counters are the routing state's statistics.
type counters struct {
	accepted, submitted, succeeded, failed, retried, revoked, expired      uint64
	dropped, stale, rejected, badFrames, brokerCalls, duplicate, forbidden uint64
	unsent, tooLarge, handedBack, badAnswers, violations, reclaimed        uint64
	rateLimited, ticks                                                     uint64
}

// core is the broker's routing state. Every field is guarded by Broker.mu (held by the
// routing loop while it handles received messages, by the ticker, by broker-task workers when
// they deliver a reply, and by Stats). Nothing under the lock does a syscall: sends go through
// TrySend, which only copies into the peer's queue.
type core struct {
	cfg   *Config
	log   *slog.Logger
	epoch string  // 8 hex digits: public task ids are "<epoch>-<seq>-<tag>" (taskid.go)
	ids   *idKeys // tags public task ids
	now   func() int64
	// clock is c.now() read once per batch of received messages and per tick: the timestamps
	// of the metrics (metrics.go), so the routing path reads no clock per task.
	clock int64
	// msgClock is the time the routing loop read when it took the message it handles (0
	// outside the loop): the per-task timestamps of that message (deadlines, run watches, a
	// node's progress) read it instead of the clock (see recvNow).
	msgClock int64
	// qstats are the metrics of every queue seen (bounded by statsMax), otherStats the entry
	// the queues past the bound share.
	qstats     map[string]*qstats
	otherStats *qstats
	disp       *dispatch.Dispatcher
	lim        codec.Limits
	// maxMsg is the largest message the broker receives (Config.MaxMsgSize), and the one it
	// sends to a peer that announced no limit of its own.
	maxMsg int
	// nodeLim is lim with twice the batch length, for a node's packed arrays: a node answering
	// a full array of MaxBatch tasks adds its credit and running notices to the results.
	nodeLim codec.Limits

	out  sender // the ROUTER
	pub  sender // the PUB (nil when disabled)
	omsg zmtp.Msg

	// handshakes counts the connections of the ROUTER and the PUB that failed their handshake
	// (nil in an Engine, which has no sockets).
	handshakes func() uint64

	pool  bufPool
	tasks taskSlab

	peers     []*peer
	peerIdx   map[string]uint32
	freePeers []uint32
	nodes     int

	queues     []*queue
	queueIdx   map[string]uint32
	lastQueue  *queue // the queue queueFor found last (nil once dropped): most tasks name the same one
	freeQueues []uint32

	batches     []batchReply
	freeBatches []uint32

	subm      map[uint64]uint32 // live submitted tasks: seq -> slot
	progress  progressTable     // running submitted tasks' last progress reports (taskprogress.go)
	seq       uint64
	store     *memStore
	keys      map[string]uint64   // idempotency keys of submitted tasks -> seq (see keys.go)
	shares    map[string]*share   // per-client shares of the shared tables (see shares.go)
	taskBytes int64               // what the live tasks take, for MaxTaskBytes (taskCost)
	opts      map[uint32]taskOpts // per-task options of the tasks with fOpts, by slot
	wf        workflows           // workflow graphs (see workflow.go)
	qkey      []byte              // a queue key being built (queueFor)
	rnd       uint64              // state of the backoff jitter (splitmix64)

	lix  liveIndex // the seqs of c.subm, in order (list.go)
	arch *archive  // the dead-letter archive (archive.go); off when darch is set
	// darch is the archive in the store (durable mode on a store that keeps one,
	// durable_archive.go), bounded by dlim
	darch archiveStore
	dlim  store.ArchiveLimits
	tries map[uint32][]attemptErr // failed attempts of live submitted tasks that ran again, by slot (archive.go)

	// persistPause writes the state of a paused or resumed queue to the store (durable mode;
	// nil without a store). It must not block.
	persistPause func(name string)
	paused       map[string]bool // paused queue names (broker.pause), DefaultQueue for the default one
	waiterFree   []*waiter
	dirty        []uint32
	blocked      []uint32
	announce     []uint32 // queues with q.announce set
	scratch      []byte   // replies being built
	scratch2     []byte   // values inside them
	valbuf       []byte   // result values being built
	rec          record   // the record being stored
	recbuf       []byte   // a record measured for resultRoom

	deadlines    deadlineHeap // queued and scheduled tasks with a deadline (see expiry.go)
	withDeadline int          // queued and scheduled tasks with a deadline (the live entries of deadlines)
	sched        deadlineHeap // scheduled tasks by due time (see schedule.go)
	leases       deadlineHeap // held tasks with a deadline, by deadline + leaseGrace (see expiry.go)
	runs         runLeases    // held tasks under Config.TaskTimeout, in hand-out order (see expiry.go)
	runMS        int64        // Config.TaskTimeout in milliseconds (at least 1)
	scheduled    int          // scheduled tasks (the live entries of sched)
	ext          taskExt      // the options of the request being handled
	hdr          codec.Header
	it           codec.BatchIter
	items        []batchItem         // the members of the client batch being handled
	mscratch     []byte              // an escaped method name, decoded
	pubScratch   []byte              // a task's public id, while its hand-out is built (dispatch)
	taskw        protocol.TaskWriter // writes hand-outs, remembering the last timeout (dispatch)
	// ubudget is the bytes of results left for the replies an unordered client's batch gets
	// while it is read (MaxMember of the client at its start), or -1 outside handleBatch.
	ubudget int
	ntbuf   []byte // a notice being sent to one peer (revoke, shutdown)

	// PUB output, flushed on tick.
	states batch.Packer // broker.state notices
	idbuf  []byte       // the public id of the task whose state notice is being written
	ctlIDs []uint64

	// jobs runs a user broker.* task off the routing loop (set by the Broker); it reports false
	// when its queue is full.
	jobs func(j *job) bool
	// closePeer closes the connection of a peer that violated the protocol (set by the Broker;
	// nil without a network). It must not block.
	closePeer func(ident []byte)
	// closeAfterReply closes a peer's connection once the reply just sent had time to leave
	// (set by the Broker; nil in an Engine).
	closeAfterReply func(ident []byte)
	// dur is durable mode's state (Config.Store set), nil without a store; ask runs a lookup
	// against the store off the routing loop (set by the Broker).
	dur *durable
	ask func(l *lookup)

	nextStallCheck int64 // unix ns: reclaimStalled walks the nodes again then

	// Hand-out limits (ratelimit.go): every limit by scope and name, and those that closed
	// while tasks waited for them (looked at again on flush and tick).
	limits          map[limitKey]*limiter
	limBlocked      []*limiter
	reopenedNodes   []uint32 // nodes an answer opened again (MaxNodeBytes), pumped at the flush
	handed          []uint32 // queues that handed out tasks since the last flush (pickNode)
	backlog         int64    // bytes in all peers' outboxes (MaxBacklogTotal)
	limBlockedSpare []*limiter
	groupLimits     int // limits of scope group: while 0 no task is looked at for its group
	parked          int // tasks waiting for their group (state stLimited)

	// Periodic tasks (schedules.go): by name, the earliest next tick, the peer their ticks
	// are submitted as, and (durable mode) the last ticks not yet written to the store.
	periodics    map[string]*periodic
	nextPeriodic int64
	schedPeer    *peer
	schedBuf     []byte
	schedDirty   map[string]int64

	closing bool
	unread  int // records stored since closing began and not delivered yet
	queued  int // tasks waiting in queues
	running int // tasks held by nodes
	cnt     counters
}

func newCore(cfg *Config, out, pub sender) *core {
	c := &core{
		cfg:      cfg,
		log:      cfg.Logger,
		epoch:    cfg.epoch,
		ids:      newIDKeys(),
		now:      func() int64 { return time.Now().UnixNano() },
		disp:     cfg.Dispatcher,
		lim:      codec.Limits{MaxFrame: int(cfg.MaxMsgSize), MaxBatch: cfg.MaxBatch},
		out:      out,
		pub:      pub,
		peerIdx:  make(map[string]uint32),
		queueIdx: make(map[string]uint32),
		qstats:   make(map[string]*qstats),
		subm:     make(map[uint64]uint32),
		keys:     make(map[string]uint64),
		shares:   make(map[string]*share),
		opts:     make(map[uint32]taskOpts),
		scratch:  make([]byte, 0, 4096),
		rnd:      uint64(time.Now().UnixNano()),
	}
	if cfg.MaxMsgSize < 0 || cfg.MaxMsgSize > 1<<40 {
		c.lim.MaxFrame = 1 << 40
	}
	c.nodeLim = c.lim
	c.ubudget = -1
	c.maxMsg = c.lim.MaxFrame
	c.states.MaxBatch, c.states.MaxBytes = cfg.MaxBatch, c.maxMsg
	c.nodeLim.MaxBatch = 2 * cfg.MaxBatch
	c.hdr.Scratch = make([]byte, 0, maxMethodLen)
	c.runMS = max(cfg.TaskTimeout.Milliseconds(), 1)
	c.mscratch = make([]byte, 0, maxMethodLen)
	c.arch = newArchive(cfg.ArchiveMax, cfg.ArchiveMaxBytes, cfg.ArchiveTTL)
	c.store = newMemStore(cfg.MaxResults, cfg.MaxResultBytes, c.wake, func() int64 { return c.now() })
	return c
}

// maxMethodLen bounds the escaped method names the broker decodes (longer escaped names are
// answered as not found; unescaped names of any length work).
const maxMethodLen = 1024

// ---- peers ----

// peerFor returns the live peer with routing identity ident, creating it on its first message.
func (c *core) peerFor(ident []byte) *peer {
	if i, ok := c.peerIdx[string(ident)]; ok {
		return c.peers[i]
	}
	var p *peer
	if k := len(c.freePeers); k > 0 {
		p = c.peers[c.freePeers[k-1]]
		c.freePeers = c.freePeers[:k-1]
	} else {
		p = &peer{slot: uint32(len(c.peers))}
		c.peers = append(c.peers, p)
	}
	p.ident = append(p.ident[:0], ident...)
	p.alive = true
	c.setMaxOut(p, c.maxMsg)
	p.thead, p.hhead, p.htail = noRef, noRef, noRef
	c.peerIdx[string(p.ident)] = p.slot
	return p
}

// livePeer returns the peer of a reply target if it is still connected.
func (c *core) livePeer(slot, gen uint32) *peer {
	if slot == noRef || int(slot) >= len(c.peers) {
		return nil
	}
	p := c.peers[slot]
	if !p.alive || p.gen != gen {
		return nil
	}
	return p
}

// peerGone forgets a disconnected peer: a node's held tasks go back to their queues (RETRY),
// a client's queued calls are dropped and its pending replies with them (tasks already at a
// node still run; submitted tasks are not a client's and keep going).
func (c *core) peerGone(ident []byte) {
	i, ok := c.peerIdx[string(ident)]
	if !ok {
		return
	}
	p := c.peers[i]
	delete(c.peerIdx, string(p.ident))
	if p.node {
		c.nodeGone(p, false)
	}
	p.alive = false // from here on no reply reaches it (batches settle silently)
	// Detach the client's task calls.
	for s := p.thead; s != noRef; {
		t := c.tasks.at(s)
		next := t.cnext
		t.flags &^= fClient
		t.flags |= fOrphan
		t.cprev, t.cnext = noRef, noRef
		tg := target{client: t.client, cgen: t.cgen, batch: t.batch}
		t.client, t.batch = noRef, noRef
		if t.flags&fHeld == 0 && t.flags&fSubmitted == 0 {
			// Queued (or scheduled) and nobody will read its answer: drop it.
			c.dropWaiting(s, t)
			c.cnt.dropped++
		}
		c.deliverAsync(tg, nil)
		s = next
	}
	// Its broker.result waits are forgotten (they would otherwise live until their deadline).
	for w := p.waiters; w != nil; {
		next := w.pnext
		c.store.cancel(w)
		c.deliverAsync(w.tg, nil)
		c.freeWaiter(w)
		w = next
	}
	for _, b := range p.outbox {
		c.pool.put(b)
	}
	clear(p.outbox)
	c.backlog -= p.backlog
	if sh := p.share; sh != nil {
		sh.peers--
		c.releaseShare(sh)
	}
	// Keep the buffers, and the dirty/blocked flags that match the slot's entries in c.dirty
	// and c.blocked (skipped while the slot is free, valid again once it is reused).
	tasks, replies := p.tasks, p.replies
	tasks.Take(false)
	replies.Take(false)
	tasks.Shrink(64 << 10) // a burst's buffers go back to the GC with the peer
	replies.Shrink(64 << 10)
	*p = peer{slot: p.slot, gen: p.gen + 1, ident: p.ident[:0], tasks: tasks, replies: replies,
		outbox: p.outbox[:0], methods: p.methods[:0], dirty: p.dirty, blocked: p.blocked,
		thead: noRef, hhead: noRef, htail: noRef}
	c.freePeers = append(c.freePeers, p.slot)
}

// linkClient adds a task call to its client's list.
func (c *core) linkClient(p *peer, slot uint32, t *task) {
	t.flags |= fClient
	p.ibytes += taskCost(cap(t.buf))
	t.cprev, t.cnext = noRef, p.thead
	if p.thead != noRef {
		c.tasks.at(p.thead).cprev = slot
	}
	p.thead = slot
}

func (c *core) unlinkClient(slot uint32, t *task) {
	if t.flags&fClient == 0 {
		return
	}
	t.flags &^= fClient
	p := c.livePeer(t.client, t.cgen)
	if p != nil {
		p.ibytes -= taskCost(cap(t.buf))
	}
	if t.cprev != noRef {
		c.tasks.at(t.cprev).cnext = t.cnext
	} else if p != nil && p.thead == slot {
		p.thead = t.cnext
	}
	if t.cnext != noRef {
		c.tasks.at(t.cnext).cprev = t.cprev
	}
	t.cprev, t.cnext = noRef, noRef
}

// ---- queues ----

// queueFor returns the queue of method in the named queue qname (nil or "default": the
// default queue), creating it charged to the client share sh (nil: none). It returns nil and
// the refusal when MaxMethods queues exist already or sh holds its share of them.
func (c *core) queueFor(method, qname []byte, sh *share) (*queue, *codec.Error) {
	key := method
	if len(qname) > 0 && string(qname) != DefaultQueue {
		c.qkey = append(append(append(c.qkey[:0], method...), 0), qname...)
		key = c.qkey
	} else {
		qname = nil
	}
	// Most tasks name the queue the task before them named: compare with it before hashing.
	if q := c.lastQueue; q != nil && q.name == string(key) && c.queues[q.idx] == q {
		return q, nil
	}
	if i, ok := c.queueIdx[string(key)]; ok {
		c.lastQueue = c.queues[i]
		return c.lastQueue, nil
	}
	if len(c.queueIdx) >= c.cfg.MaxMethods {
		return nil, errTooManyMethods
	}
	if sh != nil && sh.methods >= c.shareOf(c.cfg.MaxMethods) {
		return nil, errMethodShare
	}
	q := &queue{name: string(key), method: string(method), qname: string(qname), owner: sh}
	q.paused = c.paused[cmp.Or(q.qname, DefaultQueue)]
	if sh != nil {
		sh.methods++
	}
	if k := len(c.freeQueues); k > 0 {
		q.idx = c.freeQueues[k-1]
		c.freeQueues = c.freeQueues[:k-1]
		c.queues[q.idx] = q
	} else {
		q.idx = uint32(len(c.queues))
		c.queues = append(c.queues, q)
	}
	q.methodJSON = codec.AppendString(nil, q.method)
	q.queueJSON = protocol.AppendQueueMember(nil, q.qname)
	q.topic = append([]byte(protocol.TopicTasksPrefix), q.method...)
	c.queueIdx[q.name] = q.idx
	q.st = c.statsFor(q)
	if len(c.limits) > 0 {
		c.attachLimits(q)
	}
	return q, nil
}

// maybeDropQueue forgets a queue that holds no task and that no node serves.
func (c *core) maybeDropQueue(q *queue) {
	if q.refs > 0 || len(q.nodes) > 0 || q.live > 0 {
		return
	}
	delete(c.queueIdx, q.name)
	if q.lims != nil {
		c.detachLimits(q)
	}
	if sh := q.owner; sh != nil {
		sh.methods--
		q.owner = nil
		c.releaseShare(sh)
	}
	c.queues[q.idx] = nil
	c.freeQueues = append(c.freeQueues, q.idx)
	if c.lastQueue == q {
		c.lastQueue = nil
	}
}

// compact drops the entries of removed tasks from q's rings once they outnumber the live ones.
func (c *core) compact(q *queue) {
	dead := q.entries() - q.live
	if dead < 1024 || dead < q.live {
		return
	}
	keep := func(k uint64) bool { return c.queuedIn(k, q) != nil }
	q.ring.filter(keep)
	if q.ring.len() == 0 {
		q.mask &^= 1
	}
	if q.hi != nil {
		for i := range q.hi {
			q.hi[i].filter(keep)
			if q.hi[i].len() == 0 {
				q.mask &^= 1 << (i + 1)
			}
		}
	}
}

// queuedIn returns the task of key k if it is still queued in q.
func (c *core) queuedIn(k uint64, q *queue) *task {
	_, t := c.current(k)
	if t == nil || t.flags&(fHeld|fScheduled) != 0 || t.q != q.idx {
		return nil
	}
	return t
}

// current returns the task of key k if k still names it: the slot holds a live task of k's
// generation.
func (c *core) current(k uint64) (uint32, *task) {
	slot, gen := splitKey(k)
	if t := c.tasks.at(slot); t != nil && t.buf != nil && t.gen == gen {
		return slot, t
	}
	return slot, nil
}

// ---- tasks ----

// newTask takes a task slot and copies id and params into one pooled buffer.
func (c *core) newTask(q *queue, id, params []byte) (uint32, *task, bool) {
	slot, t, ok := c.tasks.alloc()
	if !ok {
		return 0, nil, false
	}
	n := len(id) + len(params)
	if n == 0 {
		n = 1 // buf != nil marks a live task
	}
	t.buf = append(append(c.pool.get(n), id...), params...)
	c.taskBytes += taskCost(cap(t.buf))
	t.idLen = uint32(len(id))
	t.q = q.idx
	t.client, t.batch, t.node = noRef, noRef, noRef
	t.cprev, t.cnext, t.nprev, t.nnext = noRef, noRef, noRef, noRef
	t.state = stQueued
	t.born, t.since = c.clock, c.clock
	q.refs++
	return slot, t, true
}

// taskOverhead is what a live task costs besides its buffer: its slot, its ring or schedule
// entry, its options and the maps that know it, rounded up.
const taskOverhead = 256

// taskCost is what a live task with a buffer of n bytes counts against MaxTaskBytes.
func taskCost(n int) int64 { return int64(n) + taskOverhead }

// freeTask returns a finished task's slot and buffer.
func (c *core) freeTask(slot uint32, t *task) {
	q := c.queues[t.q]
	q.refs--
	if t.flags&fSubmitted != 0 {
		c.unsubmit(t.seq)
	}
	if t.flags&fOpts != 0 {
		delete(c.opts, slot)
	}
	if len(c.tries) > 0 {
		delete(c.tries, slot)
	}
	if c.dur != nil {
		c.freed(t)
	}
	c.taskBytes -= taskCost(cap(t.buf))
	c.pool.put(t.buf)
	c.tasks.release(slot)
	c.maybeDropQueue(q)
}

// dropWaiting removes a queued or scheduled task (client gone, revoked): its ring or schedule
// entry becomes stale and is skipped.
func (c *core) dropWaiting(slot uint32, t *task) {
	q := c.queues[t.q]
	c.leaveWaiting(q, t)
	c.unlinkClient(slot, t)
	c.freeTask(slot, t)
	c.compact(q)
}

// leaveWaiting counts a queued or scheduled task out of its queue or the schedule.
func (c *core) leaveWaiting(q *queue, t *task) {
	if t.state == stStoring {
		c.dur.storing-- // being written: in no queue yet
		return
	}
	if t.flags&fScheduled != 0 {
		c.unschedule(t)
		return
	}
	if t.state == stLimited {
		c.unpark(t) // waiting for its group, in no queue
		return
	}
	c.leaveQueue(q, t)
}

// leaveQueue counts a task out of its queue.
func (c *core) leaveQueue(q *queue, t *task) {
	q.live--
	c.queued--
	if t.deadline != 0 {
		c.withDeadline--
	}
}

// enqueue hands a new or returned task to a node with credit, or queues it (front: a task
// given back by a lost node runs next).
func (c *core) enqueue(slot uint32, t *task, q *queue, front bool) {
	if c.groupLimits > 0 {
		if l, closed := c.groupClosed(slot, t); closed {
			c.parkTask(l, slot, t, true)
			return
		}
	}
	if q.withCredit > 0 && q.live == 0 && !q.paused && !c.handOutHeld() && (q.lims == nil || c.limitsOpen(q)) {
		if p := c.pickFit(q, t); p != nil {
			c.dispatch(p, q, slot, t)
			return
		}
	}
	c.queueTask(slot, t, q, front)
}

// queueTask puts t in q without handing it out (at the front: a task given back runs next).
func (c *core) queueTask(slot uint32, t *task, q *queue, front bool) {
	q.push(t.prio, t.key(slot), front, t.client)
	t.since = c.clock
	q.live++
	c.queued++
	c.announceQueue(q)
	c.watchDeadline(slot, t)
}

// announceQueue marks q for the PUB "tasks.<method>" topic at the next tick.
func (c *core) announceQueue(q *queue) {
	if !q.announce {
		q.announce = true
		c.announce = append(c.announce, q.idx)
	}
}

// pickNode returns the node serving q that hand-outs go to, or the next one after it with
// credit. Round robin is per flush, not per task: the tasks handed out between two flushes go
// to one node while it has credit, up to MaxBatch of them, and the flush moves q's turn to the
// next node. A burst then leaves as one hand-out message to one node instead of a slice to
// each, so that adding nodes does not cut the batches each of them reads, runs and answers
// into pieces (each piece a wake-up and a message more); the bursts still spread over the
// nodes, and the next node fills once one's credit is spent (credit shrinks to the slots when
// tasks are slow, so no node hoards them).
func (c *core) pickNode(q *queue) *peer {
	n := len(q.nodes)
	if q.turn > 0 && q.turn%c.cfg.MaxBatch == 0 {
		q.rr++
	}
	for i := 0; i < n; i++ {
		if q.rr >= n {
			q.rr = 0
		}
		if p := c.peers[q.nodes[q.rr]]; c.open(p) {
			return p
		}
		q.rr++
	}
	return nil
}

// turnQueues moves the turn of each queue that handed out tasks since the last flush to its
// next node.
func (c *core) turnQueues() {
	for _, qi := range c.handed {
		if int(qi) < len(c.queues) {
			if q := c.queues[qi]; q != nil && q.turn > 0 {
				q.turn = 0
				q.rr++
			}
		}
	}
	c.handed = c.handed[:0]
}

// popQueued takes the first live task of q, highest priority first.
func (c *core) popQueued(q *queue) (uint32, *task) {
	for {
		k, ok := q.pop()
		if !ok {
			return noRef, nil
		}
		if t := c.queuedIn(k, q); t != nil {
			slot, _ := splitKey(k)
			c.leaveQueue(q, t)
			if c.expired(t) {
				c.end(slot, t, errExpired, stExpired)
				continue
			}
			if c.groupLimits > 0 {
				if l, closed := c.groupClosed(slot, t); closed {
					c.parkTask(l, slot, t, false)
					continue
				}
			}
			return slot, t
		}
	}
}

// pumpQueue hands q's queued tasks to its nodes with credit.
func (c *core) pumpQueue(q *queue) {
	for q.live > 0 && q.withCredit > 0 && !q.paused && !c.handOutHeld() && (q.lims == nil || c.limitsOpen(q)) {
		p := c.pickFit(q, nil)
		if p == nil {
			return
		}
		slot, t := c.popQueued(q)
		if t == nil {
			return
		}
		c.dispatch(p, q, slot, t)
	}
}

// pumpNode hands queued tasks to node p while it has credit, taking one task at a time from
// each of its queues in turn. A queue whose next task did not fit p's MaxNodeBytes has the
// first turn of the next pump, so that big tasks are not passed over for ever by small ones
// that take the room an answer makes.
func (c *core) pumpNode(p *peer) {
	n := len(p.methods)
	missed := -1
	for c.open(p) && n > 0 && !c.handOutHeld() {
		progress := false
		for i := 0; i < n && c.open(p); i++ {
			if p.mrr >= n {
				p.mrr = 0
			}
			q := c.queues[p.methods[p.mrr]]
			p.mrr++
			if q.live == 0 || q.paused || q.lims != nil && !c.limitsOpen(q) {
				continue
			}
			if !c.headFits(p, q) {
				if missed < 0 {
					missed = p.mrr - 1
				}
				continue
			}
			slot, t := c.popQueued(q)
			if t == nil {
				continue
			}
			c.dispatch(p, q, slot, t)
			progress = true
		}
		if !progress {
			break
		}
	}
	if missed >= 0 {
		p.mrr = missed
	}
}

// setCredit changes a node's credit, keeping its queues' withCredit counts.
func (c *core) setCredit(p *peer, credit int) {
	was := c.open(p)
	p.credit = credit
	c.reopened(p, was)
}

// reopened keeps the withCredit counts of p's queues when p's openness (c.open) changed from
// was.
func (c *core) reopened(p *peer, was bool) {
	if now := c.open(p); now != was {
		d := 1
		if !now {
			d = -1
		}
		for _, qi := range p.methods {
			c.queues[qi].withCredit += d
		}
	}
}

// dispatch hands task t to node p: one credit used, the task appended to p's pending array.
func (c *core) dispatch(p *peer, q *queue, slot uint32, t *task) {
	c.setCredit(p, p.credit-1)
	c.holdBytes(p, t)
	t.bump()
	t.flags |= fHeld
	t.node = p.slot
	t.attempts++
	c.observeHandout(q, t)
	t.nprev, t.nnext = p.htail, noRef
	if p.htail != noRef {
		c.tasks.at(p.htail).nnext = slot
	} else {
		p.hhead = slot
	}
	p.htail = slot
	p.held++
	c.running++
	q.held++
	if q.lims != nil {
		c.chargeLimits(q)
	}
	if c.groupLimits > 0 {
		c.chargeGroup(slot, t)
	}

	// Every task was admitted within the node's bound (see envelopeMax and admitSize), so it
	// always fits a message of its own.
	pk := &p.tasks
	if !pk.Room(envelopeMax(q, len(t.params())+c.metaSize(slot, t))) {
		c.flushTasks(p)
	}
	pk.Begin()
	var idb [handoutIDMax]byte
	id := c.appendHandout(idb[:0], t.key(slot))
	left := int64(0)
	if p.held == 1 {
		p.progress = c.recvNow() // the progress clock starts with the first task held
	}
	if t.deadline == 0 && c.cfg.TaskTimeout > 0 {
		// No deadline of its own: the run is bounded by TaskTimeout, from the hand-out (a
		// deadline for this hand-out only: a task given back waits in its queue unbounded).
		left = c.runMS
		c.watchRun(t.key(slot))
	} else if t.deadline != 0 {
		// The deadline travels with the task as the milliseconds left (the node's clock takes
		// it from there): its handler's context ends then.
		left = max((t.deadline-c.recvNow()+int64(time.Millisecond)-1)/int64(time.Millisecond), 1)
		c.watchLease(t.key(slot), t.deadline)
	}
	pk.Cur = c.taskw.Append(pk.Cur, id, q.methodJSON, t.params(), left)
	var pub []byte
	if t.seq != 0 {
		// A field, not an array on the stack: appendPublicID's dst escapes, and a stack array
		// would cost an allocation per task on the routing path.
		c.pubScratch = c.appendPublicID(c.pubScratch[:0], t.seq)
		pub = c.pubScratch
	}
	pk.Cur = protocol.AppendTaskInfo(pk.Cur, pub, int(t.attempts), q.queueJSON)
	if m := c.metaOf(slot, t); m != "" {
		pk.Cur = protocol.AppendTaskMeta(pk.Cur, m)
	}
	pk.End()
	if pk.Full() || pk.Bytes() >= pk.MaxBytes/2 {
		c.flushTasks(p)
	} else {
		c.markDirty(p)
	}
}

// envHead starts every response the broker builds (see replyID).
const envHead = `{"jsonrpc":"2.0","id":`

// envOverhead is the most bytes a task's message to its node takes around the method, the
// queue and the params: the envelope, a hand-out id and the task's info.
const envOverhead = protocol.TaskOverhead + handoutIDMax + protocol.TaskInfoOverhead

// envelopeMax returns the most bytes a task of queue q with params of paramsLen bytes takes
// in its message to a node.
func envelopeMax(q *queue, paramsLen int) int {
	return envOverhead + len(q.methodJSON) + len(q.queueJSON) + paramsLen
}

// unlinkHeld removes t from its node's held list.
func (c *core) unlinkHeld(p *peer, slot uint32, t *task) {
	if t.nprev != noRef {
		c.tasks.at(t.nprev).nnext = t.nnext
	} else {
		p.hhead = t.nnext
	}
	if t.nnext != noRef {
		c.tasks.at(t.nnext).nprev = t.nprev
	} else {
		p.htail = t.nprev
	}
	t.nprev, t.nnext = noRef, noRef
	t.flags &^= fHeld
	c.releaseBytes(p, t)
	c.observeRun(t)
	t.node = noRef
	p.held--
	c.running--
	q := c.queues[t.q]
	q.held--
	if c.groupLimits > 0 {
		c.releaseGroup(slot, t)
	}
	if q.lims != nil {
		for _, l := range q.lims {
			if l.maxRunning > 0 {
				c.noteBlocked(l) // a slot came free: its queues are pumped at the flush
			}
		}
	}
}

// nodeGone puts back every task node p held, at the front of its queue in their original
// order, and forgets p as a node. A task that may have run (the node was lost, or it reported
// the task running) comes back in state RETRY, its attempt counted; a task that a node saying
// bye never reported running was handed back unstarted (bye true) and comes back as if it had
// never left its queue, no attempt counted: a stop is not a failure.
func (c *core) nodeGone(p *peer, bye bool) {
	for slot := p.htail; slot != noRef; {
		t := c.tasks.at(slot)
		prev := t.nprev
		c.unlinkHeld(p, slot, t)
		switch {
		case bye && t.state != stRunning && t.state != stRevoked && t.flags&fOrphan == 0 && !c.closing:
			c.handBack(slot, t)
		case t.state == stRevoked || t.flags&fOrphan != 0:
			// Revoked, or a call whose client has gone: nobody wants it run again.
			c.freeTask(slot, t)
		case c.closing && c.staysStored(t):
			c.release(slot, t) // the next run, or another broker, runs it
		case c.closing:
			// Shutting down: it would never run again.
			c.end(slot, t, errShuttingDown, stFailure)
		case int(t.attempts) >= c.maxAttempts(slot, t):
			// Lost as many times as it may be handed out: a task that kills its nodes stops.
			c.end(slot, t, errNodeLost, stFailure)
		case c.expired(t):
			c.end(slot, t, errExpired, stExpired)
		default:
			if t.state == stRunning {
				c.markRunning(t, false)
			}
			t.bump()
			t.state = stRetry
			c.cnt.retried++
			c.count(t, outRetried)
			c.stateChanged(t)
			c.queueTask(slot, t, c.queues[t.q], true)
		}
		slot = prev
	}
	methods := p.methods
	c.setCredit(p, 0)
	p.methods = p.methods[:0]
	p.queues, p.mnames = nil, nil
	p.node = false
	c.nodes--
	for _, qi := range methods {
		q := c.queues[qi]
		q.dropNode(p.slot)
		c.pumpQueue(q)
		c.maybeDropQueue(q)
	}
	p.tasks.Take(false) // not sent: every task in it went back above
	c.log.Debug("broker: node gone", "node", p.name, "requeued", c.queued)
}

// handBack puts a held task that did not run back at the front of its queue (the node is off
// its held list already): the hand-out is not counted as an attempt.
func (c *core) handBack(slot uint32, t *task) {
	if t.attempts > 0 {
		t.attempts--
	}
	t.bump()
	c.cnt.handedBack++
	c.queueTask(slot, t, c.queues[t.q], true)
}

// ---- replies ----

// deliverNow delivers a reply produced while its request is being handled.
func (c *core) deliverNow(tg target, elem []byte) {
	if tg.batch != noRef {
		c.batchAppend(tg.batch, elem)
		return
	}
	if tg.member && c.ubudget >= 0 && !isErrorReply(elem) {
		// A member of an unordered client's batch, answered while the batch is read: its
		// results share the batch's budget (errors are small and always go).
		if len(elem) > c.ubudget {
			c.cnt.tooLarge++
			c.valbuf = codec.AppendError(c.valbuf[:0], replyID(elem), errReplyTooLarge)
			elem = c.valbuf
		} else {
			c.ubudget -= len(elem)
		}
	}
	if p := c.livePeer(tg.client, tg.cgen); p != nil {
		c.reply(p, tg.delim, elem, tg.member)
	}
}

// isErrorReply reports whether a response the broker built is an error: its member after the
// id is "error".
func isErrorReply(elem []byte) bool {
	id := replyID(elem)
	if id == nil {
		return false
	}
	rest := elem[len(envHead)+len(id):]
	return len(rest) > len(`,"error"`) && string(rest[:len(`,"error"`)]) == `,"error"`
}

// deliverAsync delivers the reply of a request that was pending (elem nil: none, the request
// is settled without answer) and releases the client's in-flight slot.
func (c *core) deliverAsync(tg target, elem []byte) {
	p := c.livePeer(tg.client, tg.cgen)
	if p != nil {
		p.inflight--
	}
	if tg.batch != noRef {
		if elem != nil {
			c.batchAppend(tg.batch, elem)
		}
		c.batchDone(tg.batch)
		return
	}
	if p != nil && elem != nil {
		c.reply(p, tg.delim, elem, tg.member)
	}
}

// reply sends one reply to a client: at once in its own message (JSON-RPC clients expect one
// response per request), or packed with others at the next flush for unordered clients.
func (c *core) reply(p *peer, delim bool, elem []byte, batchMember bool) {
	pk := &p.replies
	if elem = c.fitReply(elem, pk.MaxMember()); elem == nil {
		return
	}
	if !p.unordered {
		c.send(p, delim, elem)
		return
	}
	if !pk.Room(len(elem)) {
		c.flushReplies(p)
	}
	pk.Append(elem)
	p.rbatch = p.rbatch || batchMember
	if pk.Full() || pk.Bytes() >= pk.MaxBytes/2 {
		c.flushReplies(p)
	} else {
		c.markDirty(p)
	}
}

// fitReply returns elem, a reply built by the broker, when it is at most max bytes, else a
// short -32603 error with the same id in its place, or nil (counted as unsent) when even that
// does not fit (an id nearly as large as the bound). A reply past its receiver's bound would
// only make the receiver drop its connection.
func (c *core) fitReply(elem []byte, max int) []byte {
	if len(elem) <= max {
		return elem
	}
	id := replyID(elem)
	c.valbuf = codec.AppendError(c.valbuf[:0], id, errReplyTooLarge)
	if len(c.valbuf) > max {
		c.cnt.unsent++
		return nil
	}
	c.cnt.tooLarge++
	return c.valbuf
}

// replyRoom returns the most bytes a reply to request id from p may take where it goes: the
// room left in its strict batch's array (keeping the reserve of the other members), or p's
// bound. A reply built past it is replaced by an error anyway, so a large reply (broker.nodes)
// stops building there.
func (c *core) replyRoom(p *peer, tg target, id []byte) int {
	if tg.batch == noRef {
		if tg.member && c.ubudget >= 0 {
			return min(c.ubudget, p.replies.MaxMember()) - len(`{"jsonrpc":"2.0","id":,"result":}`) - len(id)
		}
		return p.replies.MaxMember()
	}
	b := &c.batches[tg.batch]
	rest := max(0, b.reserve-errReplySize(len(id)))
	return b.out.MaxBytes - b.out.Bytes() - 2 - rest
}

// replyID returns the raw id of a response the broker built (it starts with envHead).
func replyID(elem []byte) []byte {
	if len(elem) <= len(envHead) || string(elem[:len(envHead)]) != envHead {
		return nil
	}
	end := rawjson.Skip(elem, len(envHead))
	if end < 0 {
		return nil
	}
	return elem[len(envHead):end]
}

// ---- batches ----

func (c *core) newBatch(p *peer, delim bool) uint32 {
	var bi uint32
	if k := len(c.freeBatches); k > 0 {
		bi = c.freeBatches[k-1]
		c.freeBatches = c.freeBatches[:k-1]
	} else {
		bi = uint32(len(c.batches))
		c.batches = append(c.batches, batchReply{})
	}
	b := &c.batches[bi]
	b.client, b.cgen, b.delim, b.pending, b.reserve, b.used = p.slot, p.gen, delim, 1, 0, true
	b.out.Take(false)
	// Every member of a batch (a node's array may hold twice MaxBatch) gets its reply in the
	// one array: the bound that matters is the client's message size.
	b.out.MaxBatch, b.out.MaxBytes = 1<<30, p.replies.MaxBytes
	return bi
}

// batchAppend adds a member's reply to a strict batch's array. A reply that would pass the
// client's message size, with room kept for the errors of the members still to answer
// (reserve, see handleBatch), is replaced with a short -32603 error for that member (its id
// kept), which the reserve has room for. Should even that not fit (a member the reserve did
// not count), its reply is dropped and counted (Stats.Unsent): the array that leaves is always
// within the client's bound.
func (c *core) batchAppend(bi uint32, elem []byte) {
	b := &c.batches[bi]
	if c.livePeer(b.client, b.cgen) == nil {
		return
	}
	id := replyID(elem)
	rest := max(0, b.reserve-errReplySize(len(id)))
	b.reserve = rest
	if !b.out.Room(len(elem) + rest) {
		c.cnt.tooLarge++
		c.valbuf = codec.AppendError(c.valbuf[:0], id, errReplyTooLarge)
		if elem = c.valbuf; !b.out.Room(len(elem)) {
			c.cnt.unsent++
			return
		}
	}
	b.out.Append(elem)
}

// batchDone settles one pending member; the last one sends the batch's array (unless every
// member was a notification) and frees the batch.
func (c *core) batchDone(bi uint32) {
	b := &c.batches[bi]
	b.pending--
	if b.pending > 0 {
		return
	}
	if msg := b.out.Take(true); msg != nil {
		if p := c.livePeer(b.client, b.cgen); p != nil {
			c.send(p, b.delim, msg)
		}
	}
	b.out.Shrink(64 << 10)
	b.used = false
	c.freeBatches = append(c.freeBatches, bi)
}

// ---- output ----

func (c *core) markDirty(p *peer) {
	if !p.dirty {
		p.dirty = true
		c.dirty = append(c.dirty, p.slot)
	}
}

// flush sends every pending array (tasks to nodes, unordered replies to clients). It runs when
// there is nothing more to read, so a burst leaves in as few messages as possible and a lone
// call leaves at once.
func (c *core) flush() {
	if len(c.wf.outcomes) > 0 {
		c.advanceFlows()
	}
	c.pumpBlocked()
	c.pumpReopened()
	c.turnQueues()
	for _, s := range c.dirty {
		p := c.peers[s]
		p.dirty = false
		if !p.alive {
			continue
		}
		c.flushTasks(p)
		c.flushReplies(p)
	}
	c.dirty = c.dirty[:0]
}

func (c *core) flushTasks(p *peer) {
	if msg := p.tasks.Take(false); msg != nil {
		c.send(p, p.delim, msg)
	}
}

func (c *core) flushReplies(p *peer) {
	if msg := p.replies.Take(p.rbatch); msg != nil {
		c.send(p, p.delim, msg)
	}
	p.rbatch = false
}

// setMaxOut sets the largest message p receives, its announced limit or the default one.
func (c *core) setMaxOut(p *peer, n int) {
	p.tasks.MaxBatch, p.tasks.MaxBytes = c.cfg.MaxBatch, n
	p.replies.MaxBatch, p.replies.MaxBytes = c.cfg.MaxBatch, n
}

// send sends one message to p without blocking. When p's send queue is full the message
// waits in p's outbox (bounded by p's credit or in-flight limit) and is retried on tick.
func (c *core) send(p *peer, delim bool, body []byte) {
	if len(p.outbox) > 0 {
		c.park(p, delim, body)
		return
	}
	err := c.trySend(p.ident, delim, body)
	if errors.Is(err, zmtp.ErrQueueFull) {
		c.park(p, delim, body)
	}
}

func (c *core) trySend(ident []byte, delim bool, body []byte) error {
	m := &c.omsg
	m.Frames = append(m.Frames[:0], ident)
	if delim {
		m.Frames = append(m.Frames, nil)
	}
	m.Frames = append(m.Frames, body)
	err := c.out.TrySend(m)
	clear(m.Frames)
	return err
}

// park keeps a message for p's outbox: the delimiter flag is stored as a leading byte. Past
// MaxBacklog bytes (a peer that does not read what it asked for) the message is dropped and
// counted: the broker's memory stays bounded whatever a peer does.
func (c *core) park(p *peer, delim bool, body []byte) {
	if p.backlog > 0 && (p.backlog+int64(len(body)) > c.cfg.MaxBacklog || c.backlog+int64(len(body)) > c.cfg.MaxBacklogTotal) { // one message always fits
		c.cnt.unsent++
		if c.cnt.unsent&(c.cnt.unsent-1) == 0 { // 1, 2, 4, 8, ...: a trace, not a flood
			c.log.Warn("broker: a peer does not read its replies: dropping them", "peer", hex.EncodeToString(p.ident), "name", p.name, "backlog", p.backlog, "dropped", c.cnt.unsent)
		}
		return
	}
	p.backlog += int64(len(body))
	c.backlog += int64(len(body))
	b := c.pool.get(len(body) + 1)
	if delim {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	p.outbox = append(p.outbox, append(b, body...))
	if !p.blocked {
		p.blocked = true
		c.blocked = append(c.blocked, p.slot)
	}
}

// retryBlocked sends what waits in the outboxes, in order, until a queue is full again.
func (c *core) retryBlocked() {
	w := 0
	for _, s := range c.blocked {
		p := c.peers[s]
		if !p.alive {
			p.blocked = false
			continue
		}
		n := 0
		for _, b := range p.outbox {
			err := c.trySend(p.ident, b[0] == 1, b[1:])
			if errors.Is(err, zmtp.ErrQueueFull) {
				break
			}
			p.backlog -= int64(len(b) - 1)
			c.backlog -= int64(len(b) - 1)
			c.pool.put(b)
			n++
		}
		k := copy(p.outbox, p.outbox[n:])
		clear(p.outbox[k:])
		p.outbox = p.outbox[:k]
		if k > 0 {
			c.blocked[w] = s
			w++
		} else {
			p.blocked = false
		}
	}
	c.blocked = c.blocked[:w]
}

// appendUint appends n in decimal. (The few broker.* params and envelope members the routing
// path reads are found with internal/rawjson, on bytes codec.Scan has validated; params and
// results are never decoded.)
func appendUint(dst []byte, n uint64) []byte { return strconv.AppendUint(dst, n, 10) }

// recvNow is the time the routing loop took the message being handled, and the clock outside
// the loop: one clock read per message instead of several per task (a message is handled in
// well under a millisecond, and the timestamps taken from it are deadlines and timeouts of
// milliseconds and more).
func (c *core) recvNow() int64 {
	if c.msgClock != 0 {
		return c.msgClock
	}
	return c.now()
}
