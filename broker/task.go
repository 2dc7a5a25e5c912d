package broker

import "github.com/zerotask/zerotask/protocol"

// state is a task's state as the protocol names it (see stateNames).
type state uint8

const (
	stUnknown state = iota
	stQueued
	stRunning
	stSuccess
	stFailure
	stRetry
	stRevoked
	stExpired
	// stStoring: accepted and being written to the store (durable mode), in no queue, the
	// schedule or a node yet; it reads as QUEUED.
	stStoring
	// stLimited: waiting for its key group's limit to open (ratelimit_group.go), in no queue;
	// it reads as QUEUED.
	stLimited
)

var stateNames = [...]string{
	stUnknown: protocol.StateUnknown,
	stQueued:  protocol.StateQueued,
	stRunning: protocol.StateRunning,
	stSuccess: protocol.StateSuccess,
	stFailure: protocol.StateFailure,
	stRetry:   protocol.StateRetry,
	stRevoked: protocol.StateRevoked,
	stExpired: protocol.StateExpired,
	stStoring: protocol.StateQueued,
	stLimited: protocol.StateQueued,
}

func (s state) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return protocol.StateUnknown
}

// noRef marks an absent slot reference (peer, batch, task, queue).
const noRef = ^uint32(0)

// Task keys. A task lives in a slot of the task slab; the slot's generation is bumped each
// time the task is handed to a node, given back to its queue, or freed. The key of a task,
// gen<<slotBits | slot, is the JSON-RPC id it carries to its node and what its queue entry
// holds: a result or a queue entry whose generation no longer matches is stale (an earlier
// attempt, a dropped or revoked task) and is ignored. Keys stay below 2^53 so that every JSON
// implementation reads them exactly.
const (
	slotBits = 26 // at most 64M live tasks
	slotMask = 1<<slotBits - 1
	genBits  = 27
	genMask  = 1<<genBits - 1
	maxSlots = slotMask // slot slotMask is never used, so no key is ambiguous
)

func taskKey(slot, gen uint32) uint64 { return uint64(gen&genMask)<<slotBits | uint64(slot) }

func splitKey(k uint64) (slot, gen uint32) {
	return uint32(k & slotMask), uint32(k>>slotBits) & genMask
}

// Task flags.
const (
	fHeld      uint8 = 1 << iota // handed to a node (task.node holds it)
	fDelim                       // the client's request came with the empty delimiter frame
	fClient                      // linked in its client's task list (a reply is owed)
	fSubmitted                   // broker.submit: the result goes to the store under task.seq
	fOrphan                      // a call whose client has gone: nobody reads its result
	fMember                      // a member of a client batch
	fScheduled                   // held back until a time (delay, eta, retry backoff): see schedule.go
	fOpts                        // has per-task options in core.opts (attempts, backoff)
)

// task is one queued or running task. It is kept small (104 bytes) because a million of them
// may wait in the queues: the client's id and the params share one pooled buffer, every
// reference is a 32-bit slot, the method (and named queue) is its queue's index, and the rare
// per-task options (attempts, backoff) live in a side table (core.opts, flag fOpts).
type task struct {
	buf      []byte // the client's raw id (idLen bytes), then the raw params; from bufPool
	seq      uint64 // public sequence number of a submitted task (0 for a call)
	deadline int64  // unix nanoseconds after which it expires unless started; 0 = none
	born     int64  // core.clock when it was accepted (metrics)
	since    int64  // core.clock when it entered its queue or was handed out (metrics)
	gen      uint32 // see taskKey
	idLen    uint32
	q        uint32 // its queue (method)
	client   uint32 // peer slot owed the reply, noRef for none
	cgen     uint32 // that peer's generation
	batch    uint32 // batch slot of a strict client batch, noRef for none
	node     uint32 // the node holding it (fHeld)
	cprev    uint32 // the client's task list
	cnext    uint32
	nprev    uint32 // the node's held list
	nnext    uint32
	attempts uint8 // times handed to a node (at most maxAttemptsCap)
	prio     uint8 // priority in its queue, 0..maxPriority
	state    state
	flags    uint8
}

func (t *task) id() []byte     { return t.buf[:t.idLen] }
func (t *task) params() []byte { return t.buf[t.idLen:] }
func (t *task) key(slot uint32) uint64 {
	return taskKey(slot, t.gen)
}

// bump moves the task to its next generation: every key handed out before is stale.
func (t *task) bump() { t.gen = (t.gen + 1) & genMask }

// taskSlab holds tasks in fixed chunks (pointers stay valid as it grows; no copy of a million
// records when it does) with a free list of slots: steady state allocates nothing.
type taskSlab struct {
	chunks [][]task
	free   []uint32
	n      uint32 // slots created so far
	live   int
}

const (
	chunkBits = 12
	chunkSize = 1 << chunkBits
)

// alloc returns a free slot and its zeroed task (generation kept), or ok false when maxSlots
// tasks are live.
func (s *taskSlab) alloc() (uint32, *task, bool) {
	var slot uint32
	if k := len(s.free); k > 0 {
		slot = s.free[k-1]
		s.free = s.free[:k-1]
	} else {
		if s.n >= maxSlots {
			return 0, nil, false
		}
		slot = s.n
		s.n++
		if int(slot>>chunkBits) == len(s.chunks) {
			s.chunks = append(s.chunks, make([]task, chunkSize))
		}
	}
	s.live++
	t := &s.chunks[slot>>chunkBits][slot&(chunkSize-1)]
	return slot, t, true
}

// at returns the task in slot, or nil when the slot was never created.
func (s *taskSlab) at(slot uint32) *task {
	if slot >= s.n {
		return nil
	}
	return &s.chunks[slot>>chunkBits][slot&(chunkSize-1)]
}

// release frees slot; the task's buffer must already be returned by the caller. Its
// generation is bumped so stale keys never match the next occupant.
func (s *taskSlab) release(slot uint32) {
	t := s.at(slot)
	gen := (t.gen + 1) & genMask
	*t = task{gen: gen}
	s.free = append(s.free, slot)
	s.live--
}
