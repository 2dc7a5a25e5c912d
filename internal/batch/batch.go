// Package batch builds the messages that the client and the node send to the broker. Members
// (JSON-RPC requests or responses) are appended to a JSON array under construction, '[' then
// members separated by ','; it is closed into a queue of frames when it reaches MaxBatch
// members or would pass MaxBytes, and a new one starts. A frame of one member leaves as a bare
// object, several as a batch. Each frame carries the sender's bookkeeping M (the call ids in
// it, the credit it grants), summed over its members with M.Add.
//
// A Builder is not safe for concurrent use (its owner's mutex guards it) and, once its buffers
// are warm, allocates nothing: sent frames come back through Recycle.
package batch

// Meta is what a frame records of its members: Add returns the sum of m and one more member's.
type Meta[M any] interface {
	Add(M) M
}

// Frame is a closed message and what its members recorded.
type Frame[M any] struct {
	B    []byte
	Meta M
}

// Bounds on the spare buffers kept for later messages.
const (
	maxFreeBufs = 8
	maxKeptBuf  = 256 << 10
)

// Builder builds frames. Cur is the message under construction: between Begin and End the
// caller appends one member to it (and may rewrite what it appended since Begin).
type Builder[M Meta[M]] struct {
	Cur      []byte
	MaxBatch int // members per message
	MaxBytes int // bytes per message; a single member must stay within MaxBytes-2

	n      int // members in Cur
	meta   M   // what Cur's members recorded
	frames []Frame[M]
	free   [][]byte
}

// Begin starts a member of Cur and returns its offset.
func (b *Builder[M]) Begin() int {
	if b.Cur == nil {
		b.Cur = b.buf()
	}
	if b.n == 0 {
		b.Cur = append(b.Cur[:0], '[')
	} else {
		b.Cur = append(b.Cur, ',')
	}
	return len(b.Cur)
}

// End counts the member that started at start, recording m for it. A member that pushed Cur
// past MaxBytes moves to a message of its own (the rest of Cur is closed without it), so that
// m is recorded with the message that carries the member; Cur is closed at MaxBatch members.
func (b *Builder[M]) End(start int, m M) {
	b.n++
	if b.n > 1 && len(b.Cur)+1 > b.MaxBytes {
		member := b.Cur[start:]
		next := append(b.buf(), '[')
		next = append(next, member...)
		b.Cur, b.n = b.Cur[:start-1], b.n-1 // without the ',' before the member
		b.Close()
		b.Cur, b.n = next, 1
	}
	b.meta = b.meta.Add(m)
	if b.n >= b.MaxBatch {
		b.Close()
	}
}

// Cancel drops the member that Begin started at start (it will not be sent).
func (b *Builder[M]) Cancel(start int) {
	if b.n == 0 {
		b.Cur = b.Cur[:0]
	} else {
		b.Cur = b.Cur[:start-1]
	}
}

// Members returns the number of members in Cur.
func (b *Builder[M]) Members() int { return b.n }

// Close moves Cur, when it has members, to the end of the queue.
func (b *Builder[M]) Close() {
	if b.n == 0 {
		return
	}
	if b.n == 1 {
		k := copy(b.Cur, b.Cur[1:])
		b.Cur = b.Cur[:k]
	} else {
		b.Cur = append(b.Cur, ']')
	}
	b.frames = append(b.frames, Frame[M]{B: b.Cur, Meta: b.meta})
	var zero M
	b.Cur, b.n, b.meta = nil, 0, zero
}

// Queued returns the closed frames waiting to be sent, oldest first; the caller must not
// keep or change the slice.
func (b *Builder[M]) Queued() []Frame[M] { return b.frames }

// Meta returns what Cur's members recorded so far.
func (b *Builder[M]) Meta() M { return b.meta }

// Next takes the oldest closed frame or, when none is queued, closes Cur and takes it. It
// reports false when there is nothing to send.
func (b *Builder[M]) Next() (Frame[M], bool) {
	if len(b.frames) == 0 {
		if b.n == 0 {
			return Frame[M]{}, false
		}
		b.Close()
	}
	f := b.frames[0]
	k := copy(b.frames, b.frames[1:])
	b.frames[k] = Frame[M]{}
	b.frames = b.frames[:k]
	return f, true
}

// PushFront puts f first in line: a frame Next gave that could not be sent, or one that must
// go ahead of everything queued.
func (b *Builder[M]) PushFront(f Frame[M]) {
	b.frames = append(b.frames, Frame[M]{})
	copy(b.frames[1:], b.frames)
	b.frames[0] = f
}

// Recycle keeps the buffer of a frame that was sent for a later message.
func (b *Builder[M]) Recycle(buf []byte) {
	if cap(buf) <= maxKeptBuf && len(b.free) < maxFreeBufs {
		b.free = append(b.free, buf[:0])
	}
}

// buf returns an empty buffer for a new message.
func (b *Builder[M]) buf() []byte {
	if k := len(b.free); k > 0 {
		buf := b.free[k-1]
		b.free[k-1] = nil
		b.free = b.free[:k-1]
		return buf
	}
	return make([]byte, 0, 4096)
}
