package batch

// Packer packs members (JSON-RPC objects) into one message under construction, Cur: '[' then
// members separated by ','. It is the one place that knows how a packed message is bounded:
// at most MaxBatch members and at most MaxBytes bytes once closed. A member that would pass
// either bound does not join: the caller asks Room first and sends (Take) what is packed so
// far, so a message is closed before a member would pass the bound, never after.
//
// A lone member leaves as a bare object unless the receiver wants an array (Take's array
// argument); MaxMember is therefore MaxBytes-2, the size of the largest member that travels
// alone in either form. A larger member cannot be packed at all: the caller refuses it (or
// replaces it with a small error) before it is built.
//
// The zero Packer has no room for anything: set MaxBatch and MaxBytes first. A Packer is not
// safe for concurrent use and, once Cur has grown, allocates nothing.
type Packer struct {
	Cur      []byte
	MaxBatch int // members per message
	MaxBytes int // bytes per message, '[' and ']' included

	n int // members in Cur
}

// MaxMember returns the largest member that fits in a message of its own: MaxBytes-2, room
// for the brackets of a one-member array.
func (p *Packer) MaxMember() int { return p.MaxBytes - 2 }

// Room reports whether a member of size bytes can join Cur without passing MaxBatch or
// MaxBytes. An empty Cur has room for any member up to MaxMember.
func (p *Packer) Room(size int) bool {
	if p.n == 0 {
		return size <= p.MaxMember()
	}
	return p.n < p.MaxBatch && roomAfter(len(p.Cur), size, p.MaxBytes)
}

// roomAfter reports whether a member of size bytes fits after prev bytes of an open array:
// a ',' before it and the closing ']' after it.
func roomAfter(prev, size, maxBytes int) bool { return prev+1+size+1 <= maxBytes }

// Begin starts a member of Cur and returns its offset.
func (p *Packer) Begin() int {
	if p.n == 0 {
		p.Cur = append(p.Cur[:0], '[')
	} else {
		p.Cur = append(p.Cur, ',')
	}
	return len(p.Cur)
}

// End counts the member appended since Begin.
func (p *Packer) End() { p.n++ }

// Append packs one whole member (Begin, append, End). The caller has asked Room.
func (p *Packer) Append(member []byte) {
	p.Begin()
	p.Cur = append(p.Cur, member...)
	p.n++
}

// Cancel drops the member that Begin started at start.
func (p *Packer) Cancel(start int) {
	if p.n == 0 {
		p.Cur = p.Cur[:0]
	} else {
		p.Cur = p.Cur[:start-1]
	}
}

// Members returns the number of members in Cur.
func (p *Packer) Members() int { return p.n }

// Bytes returns the size of Cur.
func (p *Packer) Bytes() int { return len(p.Cur) }

// Full reports whether Cur holds MaxBatch members.
func (p *Packer) Full() bool { return p.n >= p.MaxBatch }

// Take closes Cur and returns the message, nil when Cur has no member: a lone member bare
// (array false) or as an array of one (array true), several as an array. The message is a
// view of Cur, valid until the next Begin; the Packer starts empty again.
func (p *Packer) Take(array bool) []byte {
	var msg []byte
	switch {
	case p.n == 0:
		return nil
	case p.n == 1 && !array:
		msg = p.Cur[1:]
	default:
		p.Cur = append(p.Cur, ']')
		msg = p.Cur
	}
	p.Cur, p.n = p.Cur[:0], 0
	return msg
}

// Shrink drops Cur's buffer when it grew past keep bytes (a burst's buffer goes back to the
// garbage collector instead of staying with an idle peer).
func (p *Packer) Shrink(keep int) {
	if cap(p.Cur) > keep {
		p.Cur = nil
	}
}
