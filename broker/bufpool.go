package broker

import "math/bits"

// bufPool hands out byte buffers by power-of-two size class from free lists owned by the
// routing state (b.mu held, so no sync.Pool and no atomic per task). A task's client id and
// params are copied once into such a buffer: they must outlive the received zmtp.Msg, which is
// released as soon as it has been handled.
//
// Idle buffers are bounded per class by bytes (maxIdleBytes), so the memory of a burst of a
// million queued tasks goes back to the GC once the burst is drained.
type bufPool struct {
	free [numClasses][][]byte
}

const (
	minClassBits = 4  // 16 bytes
	maxClassBits = 21 // 2 MiB: a frame at the 1 MiB default limit plus envelopes
	numClasses   = maxClassBits - minClassBits + 1
	// maxIdleBytes bounds the idle bytes kept per size class.
	maxIdleBytes = 4 << 20
)

// class returns the size class able to hold n bytes, or -1 when n is larger than every class.
func class(n int) int {
	if n <= 1<<minClassBits {
		return 0
	}
	c := bits.Len(uint(n-1)) - minClassBits
	if c >= numClasses {
		return -1
	}
	return c
}

// poolCap returns the capacity of the buffer get(n) returns.
func poolCap(n int) int {
	if c := class(n); c >= 0 {
		return 1 << (c + minClassBits)
	}
	return n
}

// get returns an empty buffer with capacity for at least n bytes.
func (p *bufPool) get(n int) []byte {
	c := class(n)
	if c < 0 {
		return make([]byte, 0, n)
	}
	fl := p.free[c]
	if k := len(fl); k > 0 {
		b := fl[k-1]
		fl[k-1] = nil
		p.free[c] = fl[:k-1]
		return b
	}
	return make([]byte, 0, 1<<(c+minClassBits))
}

// put returns b to its class (b must come from get, or have a power-of-two capacity); it is
// dropped when the class already holds maxIdleBytes.
func (p *bufPool) put(b []byte) {
	if cap(b) < 1<<minClassBits {
		return
	}
	c := class(cap(b))
	if c < 0 || cap(b) != 1<<(c+minClassBits) {
		return
	}
	if (len(p.free[c])+1)<<(c+minClassBits) > maxIdleBytes && len(p.free[c]) > 0 {
		return
	}
	p.free[c] = append(p.free[c], b[:0])
}
