package broker

import (
	"math/bits"
	"slices"
	"strconv"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/internal/rawjson"
	"github.com/zerotask/zerotask/protocol"
)

// broker.list and broker.requeue (docs/protocol.md, "Listing and requeueing"). A page is read
// from three sources, each in its own order and each with a stable position for the cursor:
//
//   - the live submitted tasks (QUEUED, RUNNING, RETRY), in submit order: liveIndex, a sorted
//     bitmap of their sequence numbers, so a page starts at its cursor in O(log n) and never
//     walks the tasks before it;
//   - the finished records of the result store (SUCCESS), in completion order;
//   - the archive (FAILURE, EXPIRED, REVOKED), in archive order.
//
// A page looks at no more than protocol.DefaultListScan entries and takes no more than
// protocol.DefaultListTime (the clock is read every 256 entries), so a filter that matches few
// of a million tasks answers a short page (with a cursor to go on) instead of holding the
// routing loop: a page is bounded work whatever the broker holds.

// liveIndex is the set of the sequence numbers of the live submitted tasks, as a sorted list of
// bitmap chunks of 1024 numbers each. Sequence numbers are handed out in order, so adding one
// touches the last chunk; a chunk that empties is removed (a copy of the chunk pointers: a
// million live tasks take about a thousand chunks).
type liveIndex struct {
	chunks []*lixChunk
	spare  *lixChunk
	n      int
}

const (
	lixBits  = 10
	lixMask  = 1<<lixBits - 1
	lixWords = 1 << lixBits / 64
)

type lixChunk struct {
	base uint64 // seq >> lixBits of its numbers
	n    int
	w    [lixWords]uint64
}

// search returns the index of the first chunk whose base is >= base.
func (x *liveIndex) search(base uint64) int {
	i, _ := slices.BinarySearchFunc(x.chunks, base, func(ch *lixChunk, b uint64) int {
		switch {
		case ch.base < b:
			return -1
		case ch.base > b:
			return 1
		}
		return 0
	})
	return i
}

func (x *liveIndex) add(seq uint64) {
	base := seq >> lixBits
	var ch *lixChunk
	if n := len(x.chunks); n > 0 && x.chunks[n-1].base == base {
		ch = x.chunks[n-1]
	} else if i := x.search(base); i < n && x.chunks[i].base == base {
		ch = x.chunks[i]
	} else {
		if ch = x.spare; ch != nil {
			x.spare = nil
		} else {
			ch = new(lixChunk)
		}
		ch.base = base
		x.chunks = slices.Insert(x.chunks, i, ch)
	}
	b := seq & lixMask
	if m := uint64(1) << (b & 63); ch.w[b>>6]&m == 0 {
		ch.w[b>>6] |= m
		ch.n++
		x.n++
	}
}

func (x *liveIndex) remove(seq uint64) {
	base := seq >> lixBits
	i := x.search(base)
	if i == len(x.chunks) || x.chunks[i].base != base {
		return
	}
	ch := x.chunks[i]
	b := seq & lixMask
	m := uint64(1) << (b & 63)
	if ch.w[b>>6]&m == 0 {
		return
	}
	ch.w[b>>6] &^= m
	ch.n--
	x.n--
	if ch.n == 0 {
		x.chunks = slices.Delete(x.chunks, i, i+1)
		*ch = lixChunk{}
		x.spare = ch
	}
}

// next returns the smallest number >= from in the set.
func (x *liveIndex) next(from uint64) (uint64, bool) {
	fb := from >> lixBits
	for i := x.search(fb); i < len(x.chunks); i++ {
		ch := x.chunks[i]
		start := uint64(0)
		if ch.base == fb {
			start = from & lixMask
		}
		for w := start >> 6; w < lixWords; w++ {
			m := ch.w[w]
			if w == start>>6 {
				m &= ^uint64(0) << (start & 63)
			}
			if m != 0 {
				return ch.base<<lixBits | w<<6 | uint64(bits.TrailingZeros64(m)), true
			}
		}
	}
	return 0, false
}

// prev returns the largest number <= from in the set.
func (x *liveIndex) prev(from uint64) (uint64, bool) {
	fb := from >> lixBits
	for i := x.search(fb+1) - 1; i >= 0; i-- {
		ch := x.chunks[i]
		end := uint64(lixMask)
		if ch.base == fb {
			end = from & lixMask
		}
		for w := int(end >> 6); w >= 0; w-- {
			m := ch.w[w]
			if uint64(w) == end>>6 {
				sh := 63 - end&63
				m = m << sh >> sh
			}
			if m != 0 {
				return ch.base<<lixBits | uint64(w)<<6 | uint64(63-bits.LeadingZeros64(m)), true
			}
		}
	}
	return 0, false
}

// submitted makes seq a live submitted task in slot.
func (c *core) submitted(seq uint64, slot uint32) {
	c.subm[seq] = slot
	c.lix.add(seq)
}

// unsubmit forgets live submitted task seq.
func (c *core) unsubmit(seq uint64) {
	delete(c.subm, seq)
	c.lix.remove(seq)
}

// The sources of a listing, in the order a listing without a state walks them.
const (
	srcLive = iota
	srcDone
	srcArchive
	srcEnd
)

var srcNames = [srcEnd]byte{srcLive: 'l', srcDone: 'd', srcArchive: 'a'}

// filter is what broker.list and broker.requeue select: a state (stUnknown for any), a queue
// and a method.
type filter struct {
	state        state
	queue        string
	method       string
	hasQ, hasM   bool
	newest       bool
	src, lastSrc int    // the sources to walk
	pos          uint64 // where in src the walk starts
	started      bool   // pos is set (a cursor was given)
	until        int64  // unix ns: the walk stops then (checked every 256 entries)
	looked       int
}

// matches reports whether a task of method in named queue qname ("" for the default one) in
// state st is selected.
func (f *filter) matches(st state, method, qname string) bool {
	if f.state != stUnknown && st != f.state && !(f.state == stQueued && st == stStoring) {
		return false
	}
	if f.hasM && method != f.method {
		return false
	}
	if f.hasQ {
		if qname == "" {
			qname = DefaultQueue
		}
		if qname != f.queue {
			return false
		}
	}
	return true
}

// stateByName returns the state a wire name names.
func stateByName(name string) (state, bool) {
	for s, n := range stateNames[:stStoring] {
		if n == name && state(s) != stUnknown {
			return state(s), true
		}
	}
	return stUnknown, false
}

// readFilter reads the state, queue, method, order and cursor params (object params only),
// answering -32602 when one is malformed.
func (c *core) readFilter(tg target, h *codec.Header, f *filter) bool {
	var ok, bad bool
	if f.queue, f.hasQ, bad = c.nameParam(tg, h, protocol.ParamQueue, -1); bad {
		return false
	}
	if f.method, f.hasM, bad = c.nameParam(tg, h, protocol.ParamMethod, -1); bad {
		return false
	}
	if raw := rawjson.Param(h.Params, protocol.ParamState, -1); raw != nil {
		var name string
		if codec.Unmarshal(raw, &name) == nil {
			f.state, ok = stateByName(name)
		}
		if !ok {
			c.badParams(tg, h.ID, "state must be one of QUEUED, RUNNING, RETRY, SUCCESS, FAILURE, REVOKED, EXPIRED")
			return false
		}
	}
	if raw := rawjson.Param(h.Params, protocol.ParamOrder, -1); raw != nil {
		var o string
		if codec.Unmarshal(raw, &o) != nil || o != protocol.OrderOldest && o != protocol.OrderNewest {
			c.badParams(tg, h.ID, "order must be "+strconv.Quote(protocol.OrderOldest)+" or "+strconv.Quote(protocol.OrderNewest))
			return false
		}
		f.newest = o == protocol.OrderNewest
	}
	f.src, f.lastSrc = srcLive, srcArchive
	switch f.state {
	case stQueued, stRunning, stRetry:
		f.lastSrc = srcLive
	case stSuccess:
		f.src, f.lastSrc = srcDone, srcDone
	case stFailure, stExpired, stRevoked:
		f.src = srcArchive
		if !c.archOn() {
			f.src, f.lastSrc = srcDone, srcDone
		}
	}
	if !c.archOn() && f.lastSrc == srcArchive {
		f.lastSrc = srcDone
	}
	if raw := rawjson.Param(h.Params, protocol.ParamCursor, -1); raw != nil {
		var cur string
		if codec.Unmarshal(raw, &cur) != nil || !f.parseCursor(cur) {
			c.badParams(tg, h.ID, "cursor must be the cursor of an earlier page")
			return false
		}
	}
	return true
}

// parseCursor reads a cursor: a source letter and a position.
func (f *filter) parseCursor(cur string) bool {
	if len(cur) < 2 {
		return false
	}
	src := slices.Index(srcNames[:], cur[0])
	pos, err := strconv.ParseUint(cur[1:], 10, 64)
	if src < f.src || src > f.lastSrc || err != nil {
		return false
	}
	f.src, f.pos, f.started = src, pos, true
	return true
}

// walk calls fn with each selected task from f's position on, in f's order, until fn returns
// false, scan entries were looked at, or the sources end. It returns the cursor of the first
// entry not handed to fn (or handed to fn and refused), "" when the sources ended. fn gets the
// task's sequence number and, for an archived task, its entry.
func (c *core) walk(f *filter, scan int, fn func(seq uint64, d *dead) bool) string {
	f.until = c.now() + int64(protocol.DefaultListTime)
	for ; f.src <= f.lastSrc; f.src, f.started = f.src+1, false {
		switch f.src {
		case srcLive:
			if !f.started {
				f.pos = 1
				if f.newest {
					f.pos = 1<<53 - 1
				}
			}
			for {
				var seq uint64
				var ok bool
				if f.newest {
					seq, ok = c.lix.prev(f.pos)
				} else {
					seq, ok = c.lix.next(f.pos)
				}
				if !ok {
					break
				}
				if scan--; scan < 0 || c.late(f) {
					return cursorAt(srcLive, seq)
				}
				f.pos = seq
				t := c.tasks.at(c.subm[seq])
				q := c.queues[t.q]
				if f.matches(t.state, q.method, q.qname) && !fn(seq, nil) {
					return cursorAt(srcLive, seq)
				}
				if f.newest {
					if seq <= 1 {
						break
					}
					f.pos = seq - 1
				} else {
					f.pos = seq + 1
				}
			}
		case srcDone:
			s := c.store
			r := &s.order
			if done := c.walkRing(f, r, s.popped, &scan, func(pos uint64) bool {
				seq := r.at(int(pos - s.popped))
				rec, ok := s.recs[seq]
				if !ok || (c.archOn() && rec.state != stSuccess) || !f.matches(rec.state, rec.method, rec.queue) {
					return true
				}
				return fn(seq, nil)
			}); !done {
				return cursorAt(srcDone, f.pos)
			}
		case srcArchive:
			a := c.arch
			if done := c.walkRing(f, &a.order, a.popped, &scan, func(pos uint64) bool {
				d, _ := a.at(pos)
				if d == nil || !f.matches(d.state, d.method, d.queue) {
					return true
				}
				return fn(d.seq, d)
			}); !done {
				return cursorAt(srcArchive, f.pos)
			}
		}
	}
	return ""
}

// walkRing walks the positions of a FIFO ring whose front entry is at position popped, from
// f.pos in f's order, calling at for each until it returns false (more false) or the scan
// budget runs out; it reports whether the ring ended. f.pos is left at the entry not done.
func (c *core) walkRing(f *filter, r *ring, popped uint64, scan *int, at func(pos uint64) bool) bool {
	end := popped + uint64(r.len()) // one past the newest
	if !f.started {
		f.pos = popped
		if f.newest {
			f.pos = end - 1
		}
	}
	if f.pos < popped {
		if f.newest {
			return true
		}
		f.pos = popped
	}
	if f.pos >= end {
		if !f.newest {
			return true
		}
		f.pos = end - 1
	}
	for r.len() > 0 {
		if *scan--; *scan < 0 || c.late(f) {
			return false
		}
		if !at(f.pos) {
			return false
		}
		if f.newest {
			if f.pos == popped {
				return true
			}
			f.pos--
		} else {
			if f.pos+1 == end {
				return true
			}
			f.pos++
		}
	}
	return true
}

// late reports whether a walk ran out of its time (the clock is read every 256 entries).
func (c *core) late(f *filter) bool {
	f.looked++
	return f.looked&255 == 0 && c.now() > f.until
}

func cursorAt(src int, pos uint64) string {
	return string(srcNames[src]) + strconv.FormatUint(pos, 10)
}

// bList answers one page: {"tasks":[records...],"cursor":C} (no cursor once the sources
// end). Params (an object): state, queue, method, order, limit, cursor.
func (c *core) bList(p *peer, tg target, h *codec.Header) {
	var f filter
	if !c.readFilter(tg, h, &f) {
		return
	}
	limit := protocol.DefaultListLimit
	if raw := rawjson.Param(h.Params, protocol.ParamLimit, -1); raw != nil {
		n, ok := rawjson.ParseUint(raw)
		if !ok || n == 0 || n > protocol.MaxListLimit {
			c.badParams(tg, h.ID, "limit must be 1 to "+strconv.Itoa(protocol.MaxListLimit))
			return
		}
		limit = int(n)
	}
	// The page stops before the reply would pass what the client reads in one message; the
	// room keeps space for the cursor.
	pg := page{limit: limit, room: c.replyRoom(p, tg, h.ID) - 64}
	if c.darch != nil && f.lastSrc == srcArchive {
		c.listDurable(p, tg, h, &f, &pg)
		return
	}
	pg.dst = append(c.valbuf[:0], pageHead...)
	cur := c.walk(&f, protocol.DefaultListScan, func(seq uint64, d *dead) bool { return c.pageAdd(&pg, seq, d) })
	c.valbuf = pg.end(cur)
	c.ok(tg, h.ID, c.valbuf)
}

const pageHead = `{"` + protocol.MemberTasks + `":[`

// page is a broker.list answer being built: pageHead, then n records, up to limit records and
// room bytes.
type page struct {
	dst         []byte
	n           int
	limit, room int
}

// pageAdd adds the record of task seq (archived entry d, if not nil) to pg, or reports false
// when pg is full.
func (c *core) pageAdd(pg *page, seq uint64, d *dead) bool {
	if pg.n == pg.limit {
		return false
	}
	mark := len(pg.dst)
	if pg.n > 0 {
		pg.dst = append(pg.dst, ',')
	}
	if d != nil {
		pg.dst = c.appendDead(pg.dst, d)
	} else {
		pg.dst = c.appendRecordSeq(pg.dst, seq, nil)
	}
	if len(pg.dst)+2 > pg.room {
		pg.dst = pg.dst[:mark]
		if pg.n == 0 {
			// One record larger than a message: it is skipped, said in its place.
			pg.dst = append(pg.dst, `{"id":`...)
			pg.dst = c.appendPublicID(pg.dst, seq)
			pg.dst = append(pg.dst, `,"too_large":true}`...)
			pg.n++
			return true
		}
		return false
	}
	pg.n++
	return true
}

// addRaw adds a record as it is to pg, or reports false when pg is full (a record larger than
// a message on its own is said in its place, with its id).
func (pg *page) addRaw(rec []byte, id string) bool {
	if pg.n == pg.limit || pg.n > 0 && len(pg.dst)+1+len(rec)+2 > pg.room {
		return false
	}
	if pg.n > 0 {
		pg.dst = append(pg.dst, ',')
	}
	if len(pg.dst)+len(rec)+2 > pg.room {
		pg.dst = append(pg.dst, `{"id":`...)
		pg.dst = codec.AppendString(pg.dst, id)
		pg.dst = append(pg.dst, `,"too_large":true}`...)
	} else {
		pg.dst = append(pg.dst, rec...)
	}
	pg.n++
	return true
}

// end closes pg with cursor cur ("" for none) and returns it.
func (pg *page) end(cur string) []byte {
	dst := append(pg.dst, ']')
	if cur != "" {
		dst = protocol.AppendMember(dst, protocol.MemberCursor)
		dst = codec.AppendString(dst, cur)
	}
	return append(dst, '}')
}

// bRequeue runs archived tasks again, each under its own id with its params and options, as a
// new attempt (their attempt count starts over; the archive forgets them until they end again).
// Params (an object): "id" or "ids" for given tasks, or a filter (state, queue, method;
// at least one) with an optional cursor: a filter requeues at most MaxListLimit tasks per call
// and answers a cursor while more may match. Answers {"requeued":N[,"cursor":C]}.
func (c *core) bRequeue(p *peer, tg target, h *codec.Header) {
	if c.darch != nil {
		c.requeueDurable(p, tg, h)
		return
	}
	if c.dur != nil {
		// Its archive is in memory only when its store keeps none (or it is off), and a task
		// runs again only through the store.
		c.badParams(tg, h.ID, "requeue needs the archive in the store (the store keeps none, or Config.ArchiveMax < 0)")
		return
	}
	n := 0
	var refused *codec.Error
	one := func(d *dead) bool {
		if e := c.requeue(p, d); e != nil {
			refused = e
			return false
		}
		n++
		return true
	}
	cur := ""
	if raw := rawjson.Param(h.Params, protocol.ParamID, -1); raw != nil || rawjson.Param(h.Params, protocol.ParamIDs, -1) != nil {
		var ids []string
		if raw != nil {
			var id string
			if codec.Unmarshal(raw, &id) != nil {
				c.badParams(tg, h.ID, "id must be a task id string")
				return
			}
			ids = []string{id}
		} else if codec.Unmarshal(rawjson.Param(h.Params, protocol.ParamIDs, -1), &ids) != nil || len(ids) > protocol.MaxListLimit {
			c.badParams(tg, h.ID, "ids must be an array of at most "+strconv.Itoa(protocol.MaxListLimit)+" task id strings")
			return
		}
		for _, id := range ids {
			seq, ok := c.arch.aliases[id]
			if !ok {
				if seq, ok = c.parsePublicID(codec.AppendString(c.scratch2[:0], id)); !ok {
					continue
				}
			}
			if d, ok := c.arch.get(seq); ok && !one(d) {
				break
			}
		}
	} else {
		var f filter
		if !c.readRequeueFilter(tg, h, &f) {
			return
		}
		f.src = srcArchive
		if f.lastSrc != srcArchive {
			c.badParams(tg, h.ID, "the archive is off (Config.ArchiveMax < 0)")
			return
		}
		cur = c.walk(&f, protocol.DefaultListScan, func(_ uint64, d *dead) bool {
			return n < protocol.MaxListLimit && one(d)
		})
	}
	if refused != nil && n == 0 {
		c.fail(tg, h.ID, refused)
		return
	}
	dst := append(c.valbuf[:0], `{"`+protocol.MemberRequeued+`":`...)
	dst = strconv.AppendInt(dst, int64(n), 10)
	if cur != "" {
		dst = protocol.AppendMember(dst, protocol.MemberCursor)
		dst = codec.AppendString(dst, cur)
	}
	c.valbuf = append(dst, '}')
	c.ok(tg, h.ID, c.valbuf)
}

// requeue makes archived task d live again under its sequence number, or returns why not (the
// limits of a new task).
func (c *core) requeue(p *peer, d *dead) *codec.Error {
	var qname []byte
	if d.queue != "" {
		qname = []byte(d.queue)
	}
	q, qerr := c.queueFor([]byte(d.method), qname, p.share)
	switch {
	case c.closing:
		return errShuttingDown
	case q == nil:
		return qerr
	case c.queued+c.scheduled+c.storing() >= c.cfg.MaxQueued:
		c.maybeDropQueue(q)
		return errQueueFull
	case c.taskBytes+taskCost(poolCap(max(len(d.params), 1))) > c.cfg.MaxTaskBytes:
		c.maybeDropQueue(q)
		return errTaskBytes
	}
	slot, t, ok := c.newTask(q, nil, d.params)
	if !ok {
		c.maybeDropQueue(q)
		return errQueueFull
	}
	c.setDeadline(t, d.timeout)
	t.prio = d.prio
	if o := d.opts; o != (taskOpts{}) || d.owner != "" {
		o.owner = d.owner
		c.opts[slot] = o
		t.flags |= fOpts
	}
	t.seq = d.seq
	t.flags |= fSubmitted
	c.submitted(t.seq, slot)
	c.arch.remove(d.seq)
	c.cnt.accepted++
	c.stateChanged(t)
	c.start(slot, t, q, 0)
	return nil
}

// readRequeueFilter reads the filter of a broker.requeue that names no ids into f and checks
// that it selects archived tasks; on false it has answered the error.
func (c *core) readRequeueFilter(tg target, h *codec.Header, f *filter) bool {
	if !c.readFilter(tg, h, f) {
		return false
	}
	if f.state == stUnknown && !f.hasQ && !f.hasM {
		c.badParams(tg, h.ID, "requeue needs id, ids, or a filter (state, queue, method)")
		return false
	}
	if f.state != stUnknown && f.state != stFailure && f.state != stExpired && f.state != stRevoked {
		c.badParams(tg, h.ID, "only FAILURE, EXPIRED and REVOKED tasks are requeued")
		return false
	}
	return true
}
