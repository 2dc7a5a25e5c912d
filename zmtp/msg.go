package zmtp

import "sync"

// Msg is a multipart message. Frames hold its parts; for a ROUTER's Recv, Frames[0] is the
// sending peer's routing identity.
//
// Messages returned by Recv live in a pooled backing buffer: the caller owns the message and
// calls Release once done, after which its frames must not be used. Send copies the frames
// before it returns and does not take ownership: the caller may reuse or Release the message
// at once.
type Msg struct {
	// Frames are the message's parts, in order.
	Frames [][]byte

	buf  []byte  // backing storage of received frames
	offs []int   // frame end offsets into buf while a message is read
	from *conn   // the connection it came from (REQ/REP routing); nil for user messages
	home *Socket // the socket whose free list it returns to on Release; nil: msgPool
	note Notify  // ROUTER notification (Options.RouterNotify); 0 for a peer's message
}

// Notification reports whether the message is a ROUTER's connection notification
// (Options.RouterNotify), and which: NotifyConnect or NotifyDisconnect. It is 0 for a message
// a peer sent, even one with the same frames ([identity, ""]).
func (m *Msg) Notification() Notify { return m.note }

// maxPooledBuf is the largest backing buffer kept when a message goes back to the pool; larger
// ones (a rare big message) are left to the GC instead of pinning memory in the pool.
const maxPooledBuf = 256 << 10

// maxPooledFrames is the largest frame list (and offset list) kept when a message goes back
// to the pool or a socket's free list: a message of many frames (up to MaxFrames, or any
// number without the bound) leaves its lists to the GC.
const maxPooledFrames = 32

var msgPool = sync.Pool{New: func() any { return &Msg{buf: make([]byte, 0, 512)} }}

// AcquireMsg returns an empty message from the pool. Release it when done.
func AcquireMsg() *Msg {
	return msgPool.Get().(*Msg)
}

// Release returns the message to the pool. The message and its frames must not be used after.
func (m *Msg) Release() {
	if m == nil {
		return
	}
	if cap(m.Frames) > maxPooledFrames {
		m.Frames = nil
	} else {
		clear(m.Frames) // drop references to caller memory
		m.Frames = m.Frames[:0]
	}
	if cap(m.offs) > maxPooledFrames {
		m.offs = nil
	} else {
		m.offs = m.offs[:0]
	}
	m.from = nil
	m.note = 0
	if cap(m.buf) > maxPooledBuf {
		m.buf = make([]byte, 0, 512)
	}
	m.buf = m.buf[:0]
	if h := m.home; h != nil && h.putFree(m) {
		return
	}
	m.home = nil
	msgPool.Put(m)
}

// AddFrame appends a copy of b as the message's last frame, stored in the message's pooled
// buffer. (Appending to Frames directly works too; Send copies either way.) When the buffer
// grows, earlier frames keep pointing at the old storage, which stays valid.
func (m *Msg) AddFrame(b []byte) {
	start := len(m.buf)
	m.buf = append(m.buf, b...)
	m.Frames = append(m.Frames, m.buf[start:len(m.buf):len(m.buf)])
}

// Size returns the sum of the frame lengths.
func (m *Msg) Size() int {
	n := 0
	for _, f := range m.Frames {
		n += len(f)
	}
	return n
}

// reset empties the message, keeping its storage.
func (m *Msg) reset() {
	clear(m.Frames)
	m.Frames = m.Frames[:0]
	m.offs = m.offs[:0]
	m.buf = m.buf[:0]
}

// endFrame records the end of a frame read into buf (see frameReader.readMsg).
func (m *Msg) endFrame() { m.offs = append(m.offs, len(m.buf)) }

// setFrames builds Frames from the recorded offsets once a message is complete: done once at
// the end, because buf may move while the message grows.
func (m *Msg) setFrames() {
	start := 0
	for _, end := range m.offs {
		m.Frames = append(m.Frames, m.buf[start:end:end])
		start = end
	}
	m.offs = m.offs[:0]
}
