package zmtp

import (
	"net"
	"sync"
)

// wchunkSize is the size of the chunks that hold a connection's pending output.
const wchunkSize = 16 << 10

// maxFreeChunks is how many written chunks a connection keeps for its next messages; more go
// back to the shared pool.
const maxFreeChunks = 4

// wchunk is one chunk of pending output. Chunks are pooled by pointer (a Put of a pointer
// allocates nothing) and shared by every connection of the process.
type wchunk = [wchunkSize]byte

var wchunkPool = sync.Pool{New: func() any { return new(wchunk) }}

// wqueue is a connection's pending output: encoded messages and commands in a list of
// fixed-size chunks, filled in order (every chunk but the last is full; a frame may span
// chunks). The connection's wmu guards it.
//
// Why chunks and not one growing []byte: appending to a queue that fills toward its HWM never
// copies what is already queued (with one buffer, a PUB whose subscriber falls behind spends most
// of its time in growslice, copying and clearing a buffer of up to HWM x message size); the memory
// of a burst goes back to the shared pool once it is written, so a quiet connection keeps at most
// maxFreeChunks chunks; and the writer hands the whole list to one writev.
//
// Why a per-connection free list before the sync.Pool: senders take chunks on their goroutine
// and the writer gives them back on its own. A sync.Pool keeps the first object Put on a P
// private to that P, where a Get on another P never finds it: one message at a time would
// allocate a chunk per message.
type wqueue struct {
	chunks [][]byte // len = bytes used; cap = wchunkSize
	n      int      // bytes queued
	free   [maxFreeChunks]*wchunk
	nfree  int
	// cz, on a CURVE connection, encrypts every frame and command (curve_codec.go).
	cz *curveCipher
}

// newChunk returns an empty chunk: a written one kept by this connection, or one from the pool.
func (q *wqueue) newChunk() []byte {
	if q.nfree > 0 {
		q.nfree--
		c := q.free[q.nfree]
		q.free[q.nfree] = nil
		return c[:0]
	}
	return wchunkPool.Get().(*wchunk)[:0]
}

// recycle takes back written chunks (kept up to maxFreeChunks, the rest to the pool) and
// returns chunks emptied, its storage kept.
func (q *wqueue) recycle(chunks [][]byte) [][]byte {
	for i, c := range chunks {
		p := (*wchunk)(c[:wchunkSize])
		if q.nfree < maxFreeChunks {
			q.free[q.nfree] = p
			q.nfree++
		} else {
			wchunkPool.Put(p)
		}
		chunks[i] = nil
	}
	return chunks[:0]
}

// drop returns every chunk (queued or free) to the pool: the connection is gone.
func (q *wqueue) drop() {
	for i, c := range q.chunks {
		wchunkPool.Put((*wchunk)(c[:wchunkSize]))
		q.chunks[i] = nil
	}
	q.chunks, q.n = q.chunks[:0], 0
	for i := range q.nfree {
		wchunkPool.Put(q.free[i])
		q.free[i] = nil
	}
	q.nfree = 0
}

// write appends p, spilling into new chunks as needed. It copies p; it allocates only when the
// pool is empty (a new chunk) or the chunk list grows past its longest length so far.
func (q *wqueue) write(p []byte) {
	q.n += len(p)
	for len(p) > 0 {
		k := len(q.chunks) - 1
		if k < 0 || len(q.chunks[k]) == wchunkSize {
			q.chunks = append(q.chunks, q.newChunk())
			k++
		}
		c := q.chunks[k]
		n := copy(c[len(c):wchunkSize], p)
		q.chunks[k] = c[:len(c)+n]
		p = p[n:]
	}
}

// writeFrameHeader appends a frame's flags and size.
func (q *wqueue) writeFrameHeader(flags byte, size int) {
	var h [9]byte
	q.write(appendFrameHeader(h[:0], flags, size))
}

// writeFrames encodes the frames of pre then of frames as one message (MORE on every frame but
// the last). The caller guarantees at least one frame overall.
func (q *wqueue) writeFrames(pre, frames [][]byte) {
	if q.cz != nil {
		q.cz.writeFrames(q, pre, frames)
		return
	}
	for i := range len(pre) + len(frames) {
		f, fl := nthFrame(pre, frames, i, flagMore)
		q.writeFrameHeader(fl, len(f))
		q.write(f)
	}
}

// nthFrame returns frame i of the message made of pre then frames, and its flags: more on
// every frame but the last.
func nthFrame(pre, frames [][]byte, i int, more byte) ([]byte, byte) {
	var fl byte
	if i < len(pre)+len(frames)-1 {
		fl = more
	}
	if i < len(pre) {
		return pre[i], fl
	}
	return frames[i-len(pre)], fl
}

// writeCommand encodes a command frame: name-size, name, then the data parts.
func (q *wqueue) writeCommand(name string, data ...[]byte) {
	if q.cz != nil {
		q.cz.writeCommand(q, name, data)
		return
	}
	size := 1 + len(name)
	for _, d := range data {
		size += len(d)
	}
	q.writeFrameHeader(flagCommand, size)
	var h [1 + 255]byte
	h[0] = byte(len(name))
	q.write(h[:1+copy(h[1:], name)])
	for _, d := range data {
		q.write(d)
	}
}

// framesSize returns the encoded size of a message made of pre then frames.
func framesSize(pre, frames [][]byte) int {
	n := 0
	for _, f := range pre {
		n += frameHeaderSize(len(f)) + len(f)
	}
	for _, f := range frames {
		n += frameHeaderSize(len(f)) + len(f)
	}
	return n
}

// frameHeaderSize is the size of a frame header for a body of size bytes.
func frameHeaderSize(size int) int {
	if size > maxShortFrame {
		return 9
	}
	return 2
}

// swap moves the queued chunks into dst (which must be empty) and empties q, giving q dst's
// storage: O(1), so the writer holds the lock for no longer than a few assignments.
func (q *wqueue) swap(dst [][]byte) [][]byte {
	out := q.chunks
	q.chunks, q.n = dst[:0], 0
	return out
}

// vecWriter writes lists of chunks, with one syscall when the connection supports vectored
// writes (writev through net.Buffers: TCP and Unix sockets). It belongs to the writer
// goroutine. net.Buffers.WriteTo consumes the slice it is called on (its start moves), so the
// writer keeps the backing array apart (base) and WriteTo works on iov, a field so that
// taking its address allocates nothing.
type vecWriter struct {
	iov  net.Buffers
	base [][]byte
}

func (w *vecWriter) write(nc net.Conn, chunks [][]byte) (int64, error) {
	if len(chunks) == 1 {
		n, err := nc.Write(chunks[0])
		return int64(n), err
	}
	w.base = append(w.base[:0], chunks...)
	w.iov = w.base
	n, err := w.iov.WriteTo(nc)
	clear(w.base) // no references to pooled chunks beyond their write
	w.iov = nil
	return n, err
}
