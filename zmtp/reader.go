package zmtp

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// readBufSize is the size of a connection's read buffer. Frames are parsed in place from it and
// each complete message is copied once into a pooled Msg.
const readBufSize = 64 << 10

var readBufPool = sync.Pool{New: func() any { b := make([]byte, readBufSize); return &b }}

// msgKind tells what readMsg read.
type msgKind uint8

const (
	kindData msgKind = iota + 1
	kindCommand
)

// deadliner is the part of net.Conn the reader uses for heartbeat timeouts.
type deadliner interface{ SetReadDeadline(time.Time) error }

// frameReader reads ZMTP frames from a stream through a fixed buffer. It is owned by the
// connection's reader goroutine: nothing in it is locked.
//
// Bounds: a frame or message is checked against max from its header, before any byte of it is
// stored, and a large frame's storage only grows as its bytes arrive, so a peer cannot make
// the reader allocate more than it actually sent (and never past max).
type frameReader struct {
	rd   io.Reader
	bufp *[]byte
	buf  []byte
	r, w int   // unread bytes are buf[r:w]
	max  int64 // max frame and message size; -1: unlimited
	// maxFrames bounds the frames of a data message (0 or -1: unlimited); a ROUTER's
	// identity frame, put there by the caller, is not counted.
	maxFrames int

	// Heartbeat timeout: when timeout > 0, each read waits at most about timeout (the
	// deadline is moved forward at most every timeout/4 to keep the syscall off the hot path).
	dl      deadliner
	timeout time.Duration
	dlSetAt time.Time
	// reads, when set, counts successful reads: the writer's heartbeat ticker samples it to
	// tell whether anything arrived lately.
	reads *atomic.Uint64
	// cz, on a CURVE connection after its handshake, decrypts every frame (curve_codec.go).
	cz *curveCipher
}

func newFrameReader(rd io.Reader, max int64) *frameReader {
	bp := readBufPool.Get().(*[]byte)
	return &frameReader{rd: rd, bufp: bp, buf: *bp, max: max}
}

// release returns the read buffer to its pool; the reader must not be used after.
func (fr *frameReader) release() {
	if fr.bufp != nil {
		readBufPool.Put(fr.bufp)
		fr.bufp, fr.buf = nil, nil
	}
}

// buffered returns the number of unread buffered bytes.

// fill reads more bytes into the buffer, compacting it first when the unread part is not at its
// start. It returns after one successful read.
func (fr *frameReader) fill() error {
	if fr.r > 0 {
		n := copy(fr.buf, fr.buf[fr.r:fr.w])
		fr.r, fr.w = 0, n
	}
	if fr.w == len(fr.buf) {
		return fmt.Errorf("%w: reader buffer full", ErrProtocol) // unreachable: callers need <= len(buf)
	}
	fr.armDeadline()
	for {
		n, err := fr.rd.Read(fr.buf[fr.w:])
		fr.w += n
		if n > 0 {
			fr.noteRead()
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// armDeadline moves the read deadline forward when a heartbeat timeout is set.
func (fr *frameReader) armDeadline() {
	if fr.timeout <= 0 || fr.dl == nil {
		return
	}
	now := time.Now()
	if now.Sub(fr.dlSetAt) > fr.timeout/4 {
		fr.dlSetAt = now
		_ = fr.dl.SetReadDeadline(now.Add(fr.timeout))
	}
}

func (fr *frameReader) noteRead() {
	if fr.reads != nil {
		fr.reads.Add(1)
	}
}

// need makes sure at least n (<= len(buf)) bytes are buffered.
func (fr *frameReader) need(n int) error {
	for fr.w-fr.r < n {
		if err := fr.fill(); err != nil {
			return err
		}
	}
	return nil
}

// readFull reads exactly len(p) bytes (used for the greeting).
func (fr *frameReader) readFull(p []byte) error {
	if err := fr.need(len(p)); err != nil {
		return err
	}
	copy(p, fr.buf[fr.r:])
	fr.r += len(p)
	return nil
}

// header parses the frame header at the buffer's read position, reading as needed.
func (fr *frameReader) header() (flags byte, size uint64, err error) {
	if err = fr.need(1); err != nil {
		return 0, 0, err
	}
	flags = fr.buf[fr.r]
	if flags&^flagsMask != 0 {
		return 0, 0, fmt.Errorf("%w: reserved frame flag bits 0x%02x", ErrProtocol, flags)
	}
	if flags&flagCommand != 0 && flags&flagMore != 0 {
		return 0, 0, fmt.Errorf("%w: command frame with MORE", ErrProtocol)
	}
	if flags&flagLong != 0 {
		if err = fr.need(9); err != nil {
			return 0, 0, err
		}
		size = binary.BigEndian.Uint64(fr.buf[fr.r+1:])
		fr.r += 9
		return flags, size, nil
	}
	if err = fr.need(2); err != nil {
		return 0, 0, err
	}
	size = uint64(fr.buf[fr.r+1])
	fr.r += 2
	return flags, size, nil
}

// readMsg reads one complete message (all its frames) or one command into m, appending to
// whatever m already holds (a ROUTER puts the identity frame first). Frames are copied once
// from the read buffer (or read straight into m for the part of a large frame not buffered).
// io.EOF means the peer closed between messages; any other error ends the connection.
func (fr *frameReader) readMsg(m *Msg) (msgKind, error) {
	if fr.cz != nil {
		return fr.cz.readMsg(fr, m)
	}
	total := uint64(0)
	first := true
	preset := len(m.offs) // frames put there by the caller, not read from the wire
	for {
		flags, size, err := fr.header()
		if err != nil {
			return 0, eofMidMessage(err, first)
		}
		first = false
		if flags&flagCommand != 0 && len(m.offs) != preset {
			return 0, fmt.Errorf("%w: command frame inside a multipart message", ErrProtocol)
		}
		if fr.maxFrames > 0 && len(m.offs)-preset >= fr.maxFrames {
			return 0, fmt.Errorf("%w: %w: more than %d frames", ErrProtocol, ErrTooManyFrames, fr.maxFrames)
		}
		total += size
		if fr.max >= 0 && (size > uint64(fr.max) || total > uint64(fr.max)) {
			return 0, fmt.Errorf("%w: %w: %d bytes announced, limit %d", ErrProtocol, ErrMsgTooLarge, total, fr.max)
		}
		if size > uint64(maxInt) || total > uint64(maxInt) {
			return 0, fmt.Errorf("%w: %w: %d bytes announced", ErrProtocol, ErrMsgTooLarge, total)
		}
		if err := fr.readBody(m, int(size)); err != nil {
			return 0, eofMidMessage(err, false)
		}
		m.endFrame()
		if flags&flagCommand != 0 {
			m.setFrames()
			return kindCommand, nil
		}
		if flags&flagMore == 0 {
			m.setFrames()
			return kindData, nil
		}
	}
}

const maxInt = int(^uint(0) >> 1)

// readBody appends size bytes of frame body to m.buf.
func (fr *frameReader) readBody(m *Msg, size int) error {
	for size > 0 {
		if fr.r == fr.w {
			if size >= len(fr.buf)/2 {
				// Large remainder: read straight into the message, growing it only as bytes
				// arrive (at most doubling what is already there), so memory follows data.
				grow := min(size, max(len(m.buf), 4096))
				m.buf = growLen(m.buf, grow)
				tail := m.buf[len(m.buf)-grow:]
				fr.armDeadline()
				n, err := fr.rd.Read(tail)
				m.buf = m.buf[:len(m.buf)-grow+n]
				size -= n
				if n > 0 {
					fr.noteRead()
					continue
				}
				if err != nil {
					return err
				}
				continue
			}
			if err := fr.fill(); err != nil {
				return err
			}
		}
		n := min(size, fr.w-fr.r)
		m.buf = append(m.buf, fr.buf[fr.r:fr.r+n]...)
		fr.r += n
		size -= n
	}
	return nil
}

// growLen extends b by n bytes (contents of the new part unspecified).
func growLen(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b[:len(b)+n]
	}
	nb := make([]byte, len(b)+n, max(2*cap(b), len(b)+n))
	copy(nb, b)
	return nb
}

// eofMidMessage turns an EOF inside a message into io.ErrUnexpectedEOF.
func eofMidMessage(err error, atStart bool) error {
	if err == io.EOF && !atStart {
		return io.ErrUnexpectedEOF
	}
	return err
}

// completeBuffered reports whether a whole message (or command) is in the buffer, so the
// reader can parse it without blocking in a read. Used to batch deliveries.
func (fr *frameReader) completeBuffered() bool {
	p := fr.r
	for {
		if fr.w-p < 2 {
			return false
		}
		flags := fr.buf[p]
		var size uint64
		if flags&flagLong != 0 {
			if fr.w-p < 9 {
				return false
			}
			size = binary.BigEndian.Uint64(fr.buf[p+1:])
			p += 9
		} else {
			size = uint64(fr.buf[p+1])
			p += 2
		}
		if size > uint64(fr.w-p) {
			return false
		}
		p += int(size)
		if flags&flagMore == 0 || flags&flagCommand != 0 {
			return true
		}
	}
}
