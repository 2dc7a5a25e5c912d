package client

// pendingCalls holds the calls waiting for their replies, keyed by JSON-RPC id. A client hands
// out ids in sequence, so the calls in flight at one time fall in distinct slots of a ring
// indexed by the id's low bits, as long as the ring has room for twice as many calls as are in
// flight (it grows to keep that, up to pendingMaxRing). A call whose slot an older call still
// holds (one that waits far longer than those around it) goes to an overflow map. Putting and
// taking a call then cost an index and a compare instead of a hash map's probe, which under a
// pipelined load was a fifth of the client's CPU.
//
// The zero pendingCalls is empty and ready. It is not safe for concurrent use (the outbox's
// mutex guards it).
type pendingCalls struct {
	ring []*call          // len 0 or a power of two
	over map[uint64]*call // calls whose ring slot was taken; nil while none
	n    int
}

// Bounds of the ring: it starts at pendingMinRing slots once a call is put and doubles while
// the calls pending pass half of it, up to pendingMaxRing (256 KiB of pointers); past that the
// overflow map takes the rest.
const (
	pendingMinRing = 64
	pendingMaxRing = 1 << 15
)

// len returns the number of pending calls.
func (p *pendingCalls) len() int { return p.n }

// put adds cl under cl.id, which must not be pending already.
func (p *pendingCalls) put(cl *call) {
	if 2*(p.n+1) > len(p.ring) && len(p.ring) < pendingMaxRing {
		p.grow()
	}
	p.n++
	if s := &p.ring[cl.id&uint64(len(p.ring)-1)]; *s == nil {
		*s = cl
		return
	}
	if p.over == nil {
		p.over = make(map[uint64]*call)
	}
	p.over[cl.id] = cl
}

// get returns the call pending under id, or nil.
func (p *pendingCalls) get(id uint64) *call {
	if len(p.ring) > 0 {
		if cl := p.ring[id&uint64(len(p.ring)-1)]; cl != nil && cl.id == id {
			return cl
		}
	}
	return p.over[id]
}

// take removes and returns the call pending under id, or nil.
func (p *pendingCalls) take(id uint64) *call {
	if len(p.ring) > 0 {
		if s := &p.ring[id&uint64(len(p.ring)-1)]; *s != nil && (*s).id == id {
			cl := *s
			*s = nil
			p.n--
			return cl
		}
	}
	if cl, ok := p.over[id]; ok {
		delete(p.over, id)
		p.n--
		return cl
	}
	return nil
}

// removeIf removes the pending calls for which drop reports true and appends them to dst.
func (p *pendingCalls) removeIf(dst []*call, drop func(*call) bool) []*call {
	for i, cl := range p.ring {
		if cl != nil && drop(cl) {
			p.ring[i] = nil
			p.n--
			dst = append(dst, cl)
		}
	}
	for id, cl := range p.over {
		if drop(cl) {
			delete(p.over, id)
			p.n--
			dst = append(dst, cl)
		}
	}
	return dst
}

// grow doubles the ring (or makes the first one) and places every call again.
func (p *pendingCalls) grow() {
	old, over := p.ring, p.over
	p.ring = make([]*call, max(pendingMinRing, 2*len(old)))
	p.over, p.n = nil, 0
	for _, cl := range old {
		if cl != nil {
			p.put(cl)
		}
	}
	for _, cl := range over {
		p.put(cl)
	}
}
