package broker

import (
	"bytes"
	"strconv"
	"time"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/protocol"
)

// The dead-letter archive (docs/protocol.md, "The archive"): every submitted task that ends
// FAILURE (after its last attempt, or with an error that is not retried), EXPIRED or REVOKED is
// kept with its params, its options and the error and node of every failed attempt, so that
// an operator can list the failures of the last day, look at them and run them again
// (broker.requeue). It is bounded by count (Config.ArchiveMax), bytes (ArchiveMaxBytes) and
// age (ArchiveTTL), oldest out first, and is independent of the result TTL. Like the result
// store it is owned by the routing state (b.mu held) and never blocks.

// attemptErr is one failed attempt of a submitted task that ran again (kept in core.tries
// until the task ends, then in its archive entry).
type attemptErr struct {
	attempt uint8
	node    string
	at      int64  // unix ns
	err     []byte // the raw JSON-RPC error object (owned; see keptError)
}

// dead is an archived task.
type dead struct {
	seq     uint64
	alias   string // durable mode: its id in the store when it is not "<epoch>-<seq>" (another run's task)
	method  string
	queue   string // the named queue, "" for the default one
	owner   string // its submitter's authenticated name
	params  []byte // raw params (owned), nil for none
	errs    []attemptErr
	opts    taskOpts      // its per-task options (attempts, backoff), key excluded
	timeout time.Duration // its timeout_ms as given, 0 for none
	prio    uint8
	tries   uint8 // hand-outs it took
	state   state
	born    int64  // unix ns: accepted
	ended   int64  // unix ns: archived
	size    int64  // what it counts against ArchiveMaxBytes
	pos     uint64 // the position of its FIFO entry (see archive.popped); older entries of it are stale
}

// deadOverhead is what an archived task counts against ArchiveMaxBytes besides its params and
// errors: the entry, its map and ring slots and its strings' headers.
const deadOverhead = 256

// maxKeptError bounds an attempt's error object as the archive keeps it: a larger one is kept
// as its code and a message saying how large it was (every archived task stays listable in
// one page of a 1 MiB message).
const maxKeptError = 1024

// keptError returns the error object the archive keeps for errObj (a copy).
func keptError(errObj []byte) []byte {
	if len(errObj) <= maxKeptError {
		return append([]byte(nil), errObj...)
	}
	e := &codec.Error{Code: errObjCode(errObj), Message: "error object of " + strconv.Itoa(len(errObj)) + " bytes not kept"}
	return codec.AppendErrorObject(nil, e)
}

// archive holds the dead tasks: a map by sequence number and a FIFO in archive order (the age
// order) for the bounds. popped counts the FIFO entries dropped from its front, so that
// popped+i is a stable position for entry i: broker.list's cursor. A task archived again
// (requeued and failed again) has a new entry; its old one is stale, as is the entry of a
// task requeued or deleted.
type archive struct {
	recs     map[uint64]*dead
	aliases  map[string]uint64 // the seqs of entries with an alias, by alias
	order    ring
	popped   uint64
	max      int   // <0: no archive
	maxBytes int64 // bound on the sum of dead.size
	ttl      int64 // ns
	bytes    int64
}

func newArchive(max int, maxBytes int64, ttl time.Duration) *archive {
	return &archive{recs: make(map[uint64]*dead), aliases: make(map[string]uint64), max: max, maxBytes: maxBytes, ttl: int64(ttl)}
}

func (a *archive) enabled() bool { return a.max > 0 }

// archOn reports whether tasks are archived: in memory, or in the store (durable mode).
func (c *core) archOn() bool { return c.arch.enabled() || c.darch != nil }

// put archives d (replacing an earlier entry of the same task), then applies the bounds. The
// newest entry always stays.
func (a *archive) put(d *dead) {
	if old, ok := a.recs[d.seq]; ok {
		a.bytes -= old.size // its FIFO entry goes stale: the task moves to the back
	}
	d.pos = a.popped + uint64(a.order.len())
	d.size = deadOverhead + int64(len(d.params)+len(d.opts.meta))
	for _, e := range d.errs {
		d.size += int64(len(e.err)) + 64
	}
	a.recs[d.seq] = d
	if d.alias != "" {
		a.aliases[d.alias] = d.seq
	}
	a.order.pushBack(d.seq)
	a.bytes += d.size
	for len(a.recs) > 1 && (len(a.recs) > a.max || a.bytes > a.maxBytes) {
		a.evictFront()
	}
	// Stale entries (requeued, deleted or moved tasks) are dropped once they outnumber the
	// live ones; this moves later cursors back by the entries dropped before them.
	if a.order.len() > 2*len(a.recs)+1024 {
		a.compact()
	}
}

// evictFront drops the oldest FIFO entry, and its task unless the entry is stale.
func (a *archive) evictFront() {
	seq, ok := a.order.popFront()
	if !ok {
		return
	}
	pos := a.popped
	a.popped++
	if d, ok := a.recs[seq]; ok && d.pos == pos {
		a.drop(d)
	}
}

// compact drops the stale FIFO entries; the later entries move to lower positions (a cursor
// held across it may skip entries).
func (a *archive) compact() {
	var keep ring
	base := a.popped + uint64(a.order.len())
	for i := 0; i < a.order.len(); i++ {
		seq := a.order.at(i)
		if d, ok := a.recs[seq]; ok && d.pos == a.popped+uint64(i) {
			keep.pushBack(seq)
		}
	}
	a.popped = base - uint64(keep.len())
	for i := 0; i < keep.len(); i++ {
		a.recs[keep.at(i)].pos = a.popped + uint64(i)
	}
	a.order = keep
}

// get returns the archived task seq.
func (a *archive) get(seq uint64) (*dead, bool) {
	d, ok := a.recs[seq]
	return d, ok
}

// remove forgets archived task seq (requeued or deleted); its FIFO entry goes stale.
func (a *archive) remove(seq uint64) {
	if d, ok := a.recs[seq]; ok {
		a.drop(d)
	}
}

// drop forgets archived task d.
func (a *archive) drop(d *dead) {
	delete(a.recs, d.seq)
	if d.alias != "" {
		delete(a.aliases, d.alias)
	}
	a.bytes -= d.size
}

// expire drops the entries older than the TTL.
func (a *archive) expire(now int64) {
	for {
		seq, ok := a.order.front()
		if !ok {
			return
		}
		if d, ok := a.recs[seq]; ok && d.pos == a.popped && d.ended+a.ttl > now {
			return
		}
		a.evictFront()
	}
}

// at returns the entry at position pos (see archive.popped), ok false past either end; d is
// nil for a stale entry.
func (a *archive) at(pos uint64) (d *dead, ok bool) {
	if pos < a.popped || pos-a.popped >= uint64(a.order.len()) {
		return nil, false
	}
	if d = a.recs[a.order.at(int(pos-a.popped))]; d != nil && d.pos != pos {
		d = nil
	}
	return d, true
}

// noteTry keeps the error of a failed attempt of submitted task t that runs again.
func (c *core) noteTry(slot uint32, t *task, errObj []byte, node string) {
	if t.flags&fSubmitted == 0 || !c.archOn() {
		return
	}
	if c.tries == nil {
		c.tries = make(map[uint32][]attemptErr)
	}
	c.tries[slot] = append(c.tries[slot], attemptErr{attempt: t.attempts, node: node, at: c.now(), err: keptError(errObj)})
}

// archiveTask archives submitted task t, which ends now in state t.state with error object
// errObj, at node ("" for none).
func (c *core) archiveTask(slot uint32, t *task, errObj []byte, node string) {
	if !c.archOn() {
		return
	}
	q := c.queues[t.q]
	d := &dead{
		seq:    t.seq,
		method: q.method,
		queue:  q.qname,
		owner:  c.ownerOf(slot, t),
		prio:   t.prio,
		tries:  t.attempts,
		state:  t.state,
		born:   t.born,
		ended:  c.now(),
		errs:   c.tries[slot],
	}
	if c.dur != nil {
		d.alias = c.dur.alias[t.seq]
	}
	if p := t.params(); len(p) > 0 {
		d.params = append([]byte(nil), p...)
	}
	if t.flags&fOpts != 0 {
		d.opts = c.opts[slot]
		d.opts.key = ""
		d.opts.owner = ""
	}
	if t.deadline != 0 && t.born != 0 {
		d.timeout = time.Duration(t.deadline - t.born)
	}
	if len(errObj) > 0 {
		d.errs = append(d.errs, attemptErr{attempt: t.attempts, node: node, at: d.ended, err: keptError(errObj)})
	}
	if c.darch != nil {
		c.archiveStored(t, q, d)
		return
	}
	c.arch.put(d)
}

// appendDead appends the record of an archived task: the fields of a finished record, its
// final error, then params, every failed attempt, its options and its timestamps.
func (c *core) appendDead(dst []byte, d *dead) []byte {
	if d.alias == "" {
		dst = c.appendRecordHead(dst, d.seq, d.method, d.queue, d.state, uint64(d.tries), d.owner)
	} else {
		// Named by its id in the store (another run's task), not by its local sequence number.
		// Not built in a scratch buffer: archiving (durable mode) runs while the caller's
		// error object may sit in one.
		var buf [512]byte
		head := c.appendRecordHead(buf[:0], d.seq, d.method, d.queue, d.state, uint64(d.tries), d.owner)
		dst = append(dst, `{"id":`...)
		dst = codec.AppendString(dst, d.alias)
		dst = append(dst, head[bytes.Index(head, []byte(`,"method":`)):]...)
	}
	if d.prio != 0 {
		dst = append(dst, `,"priority":`...)
		dst = strconv.AppendUint(dst, uint64(d.prio), 10)
	}
	dst = appendMeta(dst, d.opts.meta)
	if n := len(d.errs); n > 0 {
		dst = protocol.AppendMember(dst, protocol.MemberError)
		dst = append(dst, d.errs[n-1].err...)
		if d.errs[n-1].node != "" {
			dst = protocol.AppendMember(dst, protocol.MemberNode)
			dst = codec.AppendString(dst, d.errs[n-1].node)
		}
	}
	dst = protocol.AppendMember(dst, protocol.MemberArchived)
	dst = append(dst, "true"...)
	if d.params != nil {
		dst = protocol.AppendMember(dst, protocol.MemberParams)
		dst = append(dst, d.params...)
	}
	dst = protocol.AppendMember(dst, protocol.MemberErrors)
	dst = append(dst, '[')
	for i, e := range d.errs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"`+protocol.MemberAttempt+`":`...)
		dst = strconv.AppendUint(dst, uint64(e.attempt), 10)
		dst = protocol.AppendMember(dst, protocol.MemberError)
		dst = append(dst, e.err...)
		if e.node != "" {
			dst = protocol.AppendMember(dst, protocol.MemberNode)
			dst = codec.AppendString(dst, e.node)
		}
		dst = protocol.AppendMember(dst, protocol.MemberAtMS)
		dst = strconv.AppendInt(dst, e.at/int64(time.Millisecond), 10)
		dst = append(dst, '}')
	}
	dst = append(dst, ']')
	if d.opts.maxAttempts != 0 {
		dst = protocol.AppendMember(dst, protocol.MemberMaxAttempts)
		dst = strconv.AppendUint(dst, uint64(d.opts.maxAttempts), 10)
	}
	if d.opts.backoff != 0 {
		dst = protocol.AppendMember(dst, protocol.MemberBackoffMS)
		dst = strconv.AppendInt(dst, d.opts.backoff.Milliseconds(), 10)
	}
	if d.opts.maxBackoff != 0 {
		dst = protocol.AppendMember(dst, protocol.MemberMaxBackoffMS)
		dst = strconv.AppendInt(dst, d.opts.maxBackoff.Milliseconds(), 10)
	}
	if d.timeout != 0 {
		dst = protocol.AppendMember(dst, protocol.MemberTimeoutMS)
		dst = strconv.AppendInt(dst, d.timeout.Milliseconds(), 10)
	}
	dst = protocol.AppendMember(dst, protocol.MemberCreatedMS)
	dst = strconv.AppendInt(dst, d.born/int64(time.Millisecond), 10)
	dst = protocol.AppendMember(dst, protocol.MemberFinishedMS)
	dst = strconv.AppendInt(dst, d.ended/int64(time.Millisecond), 10)
	return append(dst, '}')
}
