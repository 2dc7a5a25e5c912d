package codec

import "github.com/valyala/bytebufferpool"

// Buffer is a pooled byte buffer: bytebufferpool.ByteBuffer, whose B field is the bytes. Append
// to B directly (b.B = codec.AppendResult(b.B, id, result)) or use its Write methods.
//
// Ownership: the caller owns a Buffer from Acquire until Release. After Release it must not
// touch the Buffer or any slice of B it kept, because the next Acquire hands the same memory to
// someone else; a frame handed to a socket must be written (or copied) before the Release.
type Buffer = bytebufferpool.ByteBuffer

// pool is codec's own pool, so that its size calibration follows JSON-RPC frames only.
var pool bytebufferpool.Pool

// Acquire returns an empty Buffer from the pool. Give it back with Release.
func Acquire() *Buffer { return pool.Get() }

// Release returns b to the pool; b must not be used afterwards. Release(nil) does nothing.
// Buffers much larger than the usual size are dropped rather than kept.
func Release(b *Buffer) {
	if b != nil {
		pool.Put(b)
	}
}
