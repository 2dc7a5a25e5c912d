// Package batch packs JSON-RPC members into bounded messages, for every role, and sends them: a Packer holds
// one JSON array under construction ('[' then members separated by ','), bounded by a member
// count and a byte size that it checks before a member joins; the broker packs tasks, replies
// and notices with it. A Builder adds a queue of closed frames for the client and the node:
// it is closed into a frame when it reaches MaxBatch members or would pass MaxBytes, and a new
// one starts. A frame of one member leaves as a bare object, several as a batch. Each frame
// carries the sender's bookkeeping M (the call ids in it, the credit it grants), summed over its
// members with M.Add. A Sender is the one send loop of the client and the node: it hands a
// Builder's frames to a DEALER, one sender at a time.
//
// Packers and Builders are not safe for concurrent use (their owner's mutex guards them) and,
// once their buffers are warm, allocate nothing: sent frames come back through Recycle.
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

// Builder builds frames on a Packer (Cur, MaxBatch and MaxBytes are the Packer's): between
// Begin and End the caller appends one member to Cur (and may rewrite what it appended since
// Begin). Closed frames wait in a queue until Next takes them.
type Builder[M Meta[M]] struct {
	Packer

	meta   M // what Cur's members recorded
	frames []Frame[M]
	free   [][]byte
	last   int // the length of the last frame closed: what a new buffer is sized for
}

// Begin starts a member of Cur and returns its offset.
func (b *Builder[M]) Begin() int {
	if b.Cur == nil {
		b.Cur = b.buf()
	}
	return b.Packer.Begin()
}

// End counts the member that started at start, recording m for it. Its size is known only
// now: when it has no room after the members before it (Packer.Room), those are closed into a
// frame without it and it starts the next one, so that m is recorded with the message that
// carries it; Cur is closed at MaxBatch members. A single member must stay within MaxMember.
func (b *Builder[M]) End(start int, m M) {
	if b.n > 0 && (b.n >= b.MaxBatch || !roomAfter(start-1, len(b.Cur)-start, b.MaxBytes)) {
		member := b.Cur[start:]
		next := append(b.buf(), '[')
		next = append(next, member...)
		b.Cur = b.Cur[:start-1] // without the ',' before the member
		b.Close()
		b.Cur = next
	}
	b.n++
	b.meta = b.meta.Add(m)
	if b.Full() {
		b.Close()
	}
}

// Close moves Cur, when it has members, to the end of the queue.
func (b *Builder[M]) Close() {
	single := b.n == 1
	msg := b.Take(false)
	if msg == nil {
		return
	}
	if single {
		// The frame owns its buffer from its start (Recycle keeps it): move the member down.
		msg = b.Cur[:copy(b.Cur[:len(msg)], msg)]
	}
	b.frames = append(b.frames, Frame[M]{B: msg, Meta: b.meta})
	b.last = len(msg)
	var zero M
	b.Cur, b.meta = nil, zero
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
	// Sized for a message like the last one (a little more): while frames queue faster than
	// they are sent, none is recycled, and each new one grown from a small buffer was copied
	// four or five times on its way to tens of KB (a sixth of a client's CPU for Notify).
	return make([]byte, 0, min(max(minBuf, b.last+b.last/8), maxKeptBuf))
}

// minBuf is the smallest buffer a new message starts with.
const minBuf = 4096
