//go:build unix

package zmtp

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// Raw syscalls on the hot path. A connection's reads, and a sender's direct writes, are
// non-blocking read(2) and write(2) made through the socket's RawConn with syscall.RawSyscall,
// not through net.Conn (whose syscall.Read and syscall.Write enter the runtime's syscall state).
// Why: when every P of the process has been idle (a lone request in flight, the process
// waiting for the next), the runtime's sysmon thread sleeps until a goroutine enters a
// syscall, and the first syscall wakes it (runtime.entersyscallWakeSysmon: a futex wake on
// the caller's path, then sysmon's own nanosleeps and futex wait on a second thread). With a
// sequential call that is every message in every process: measured with `perf record -e
// syscalls:sys_enter_futex -g`, 81% of the broker's futex calls during a run of sequential
// calls were this wake-up and sysmon's sleep after it. The descriptor is non-blocking (the
// netpoller's), so a raw read or write returns at once: when it would block, the read waits
// for readability through the netpoller (RawConn.Read), and the write leaves the rest to the
// connection's writer; no call can hold the P for longer than copying the bytes.

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
	rc := rawConnOf(nc)
	if rc == nil {
		return
	}
	d.rc, d.ok = rc, true
	d.fn = func(fd uintptr) bool {
		for {
			n, e := rawRW(syscall.SYS_WRITE, fd, d.buf)
			if e == syscall.EINTR {
				continue
			}
			if e == 0 && n > 0 {
				d.n = n
			}
			return true // one attempt: EAGAIN and errors leave the rest to the writer
		}
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

// rawReader reads a connection's socket with raw non-blocking read(2) calls, waiting for
// readability through the netpoller (RawConn.Read honours the read deadline the heartbeat
// sets on the net.Conn). Owned by the connection's reader goroutine.
//
// A message that arrives alone still costs two reads, the second one's EAGAIN: skipping it
// after a short read (which empties the receive queue) and waiting at once was tried and hangs
// under a flood, because RawConn.Read clears the descriptor's readiness before it calls fn, so
// bytes that arrived since the short read would wait for the next edge.
type rawReader struct {
	nc  net.Conn
	rc  syscall.RawConn
	fn  func(fd uintptr) bool
	buf []byte
	n   int
	err syscall.Errno
}

// newRawReader returns a raw reader of nc's socket, or nil where nc has no descriptor.
func newRawReader(nc net.Conn) io.Reader {
	rc := rawConnOf(nc)
	if rc == nil {
		return nil
	}
	r := &rawReader{nc: nc, rc: rc}
	r.fn = func(fd uintptr) bool {
		for {
			n, e := rawRW(syscall.SYS_READ, fd, r.buf)
			switch e {
			case 0:
				r.n, r.err = n, 0
				return true
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false // wait for readability
			default:
				r.n, r.err = 0, e
				return true
			}
		}
	}
	return r
}

// Read reads at least one byte into p, as net.Conn's Read does: io.EOF when the peer closed,
// and errors as a *net.OpError, the deadline's and the close's from the netpoller, a read(2)
// error as an *os.SyscallError in it.
func (r *rawReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.buf = p
	err := r.rc.Read(r.fn)
	r.buf = nil
	switch {
	case err != nil:
		return 0, err
	case r.err != 0:
		return 0, &net.OpError{Op: "read", Net: r.nc.LocalAddr().Network(), Source: r.nc.LocalAddr(),
			Addr: r.nc.RemoteAddr(), Err: os.NewSyscallError("read", r.err)}
	case r.n == 0:
		return 0, io.EOF
	}
	return r.n, nil
}

// rawRW makes one read(2) or write(2) of b on fd without entering the runtime's syscall state.
func rawRW(trap, fd uintptr, b []byte) (int, syscall.Errno) {
	if len(b) == 0 {
		return 0, 0
	}
	n, _, e := syscall.RawSyscall(trap, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	return int(n), e
}

// rawConnOf returns nc's RawConn, or nil when it has none (net.Pipe, wrappers).
func rawConnOf(nc net.Conn) syscall.RawConn {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}
