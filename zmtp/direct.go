//go:build unix

package zmtp

import (
	"net"
	"syscall"
)

// directWriter makes one non-blocking write on a connection's socket, on the calling
// goroutine: what a sender uses to write a message itself when the connection is idle (see
// conn). It never waits for the socket to be writable: a full send buffer writes less, and
// the writer goroutine, which may block, writes the rest.
//
// fn is bound once (a closure made per write would allocate): the arguments and results of a
// write pass through the struct, which belongs to whoever owns the connection's output.
type directWriter struct {
	ok  bool
	rc  syscall.RawConn
	fn  func(fd uintptr) bool
	buf []byte
	n   int
}

// init enables direct writes on a socket that exposes its descriptor (TCP, Unix); other
// connections (net.Pipe in tests, wrappers) always go through the writer.
func (d *directWriter) init(nc net.Conn) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	d.rc, d.ok = rc, true
	d.fn = func(fd uintptr) bool {
		n, err := syscall.Write(int(fd), d.buf)
		if err == nil && n > 0 {
			d.n = n
		}
		return true // one attempt: EAGAIN, EINTR and errors leave the rest to the writer
	}
}

// write writes what the socket takes of b at once and returns how many bytes that was.
func (d *directWriter) write(b []byte) int {
	d.buf, d.n = b, 0
	if err := d.rc.Write(d.fn); err != nil {
		d.n = 0 // closed: the writer finds out
	}
	d.buf = nil
	return d.n
}
