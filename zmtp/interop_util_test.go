package zmtp_test

// Helpers shared by the interop, hostile-peer and cross-library benchmark tests: sockets that
// close themselves when the test ends, an event recorder for Options.Monitor, the libzmq peer
// (testdata/peers/zpeer.py through pyzmq) and go-zeromq/zmq4 wrappers with deadlines.

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"

	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/zmtp"
)

// loopback is the endpoint every bound socket in these tests uses: port 0 picks a free port.
const loopback = "tcp://127.0.0.1:0"

// pyPeer is the path of the libzmq peer driver, relative to the package directory.
const pyPeer = "testdata/peers/zpeer.py"

// newSocket returns a socket of type typ that is closed when the test ends.
func newSocket(t testing.TB, typ zmtp.SocketType, o zmtp.Options) *zmtp.Socket {
	t.Helper()
	s := zmtp.NewSocket(typ, o)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// bindSocket returns a socket bound to a free loopback port, and its endpoint.
func bindSocket(t testing.TB, typ zmtp.SocketType, o zmtp.Options) (*zmtp.Socket, string) {
	t.Helper()
	s := newSocket(t, typ, o)
	if err := s.Bind(loopback); err != nil {
		t.Fatalf("bind %v: %v", typ, err)
	}
	ep := s.LastEndpoint()
	if !strings.HasPrefix(ep, "tcp://127.0.0.1:") || strings.HasSuffix(ep, ":0") {
		t.Fatalf("LastEndpoint after Bind(%q) = %q, want the resolved tcp://127.0.0.1:PORT", loopback, ep)
	}
	return s, ep
}

// connectSocket returns a socket connected to ep.
func connectSocket(t testing.TB, typ zmtp.SocketType, o zmtp.Options, ep string) *zmtp.Socket {
	t.Helper()
	s := newSocket(t, typ, o)
	if err := s.Connect(ep); err != nil {
		t.Fatalf("connect %v to %s: %v", typ, ep, err)
	}
	return s
}

// waitPeers waits until s has n ready peers.
func waitPeers(t testing.TB, s *zmtp.Socket, n int, timeout time.Duration) {
	t.Helper()
	testutil.Eventually(t, timeout, func() bool { return s.Stats().Peers == n },
		"want %d ready peers, have %d", n, s.Stats().Peers)
}

// recvMsg receives one message within timeout and returns a copy of its frames (the Msg is
// released).
func recvMsg(t testing.TB, s *zmtp.Socket, timeout time.Duration) [][]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	m, err := s.Recv(ctx)
	if err != nil {
		t.Fatalf("Recv: %v", err)
	}
	frames := copyFrames(m.Frames)
	m.Release()
	return frames
}

func copyFrames(in [][]byte) [][]byte {
	out := make([][]byte, len(in))
	for i, f := range in {
		out[i] = append([]byte{}, f...)
	}
	return out
}

// sendFrames sends one message within timeout.
func sendFrames(t testing.TB, s *zmtp.Socket, timeout time.Duration, frames ...[]byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := s.SendFrames(ctx, frames...); err != nil {
		t.Fatalf("SendFrames: %v", err)
	}
}

func framesEqual(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// show prints frames for failure messages, long ones shortened.
func show(frames [][]byte) string {
	parts := make([]string, len(frames))
	for i, f := range frames {
		if len(f) > 24 {
			parts[i] = fmt.Sprintf("%q...(%d bytes)", f[:16], len(f))
		} else {
			parts[i] = fmt.Sprintf("%q", f)
		}
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// interopMsgs are the messages every interop case carries both ways: text, empty frames in a
// multipart, the short/long frame-size boundary and a frame larger than 64 KiB.
func interopMsgs() [][][]byte {
	return [][][]byte{
		{[]byte("hello")},
		{[]byte("a"), {}, []byte("c")},
		{bytes.Repeat([]byte{0xAB}, 255)},
		{bytes.Repeat([]byte{0xCD}, 256), []byte("tail")},
		{bytes.Repeat([]byte{0xEF}, 70000)},
	}
}

// recorder collects Options.Monitor events.
type recorder struct {
	mu     sync.Mutex
	events []zmtp.Event
}

// Monitor is the function to put in Options.Monitor.
func (r *recorder) Monitor(e zmtp.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

// count returns how many events of type typ arrived so far.
func (r *recorder) count(typ zmtp.EventType) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Type == typ {
			n++
		}
	}
	return n
}

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, e := range r.events {
		fmt.Fprintf(&b, "%v(%s %v) ", e.Type, e.Remote, e.Err)
	}
	return b.String()
}

// --- the libzmq peer -----------------------------------------------------------------------

// py is one libzmq peer process.
type py struct {
	t    testing.TB
	proc *testutil.Proc
	port int
}

// startPy starts the libzmq peer driver with args (see testdata/peers/zpeer.py) and waits for
// its READY line. The process is killed by PID when the test ends.
func startPy(t testing.TB, args ...string) *py {
	t.Helper()
	python := testutil.PythonZMQ(t)
	p, v := testutil.StartProc(t, 10*time.Second, python, append([]string{"-u", pyPeer}, args...)...)
	port, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("zpeer READY %q: %v", v, err)
	}
	return &py{t: t, proc: p, port: port}
}

// endpoint returns the peer's bound endpoint.
func (p *py) endpoint() string { return fmt.Sprintf("tcp://127.0.0.1:%d", p.port) }

func encodeFrames(frames [][]byte) string {
	parts := make([]string, len(frames))
	for i, f := range frames {
		if len(f) == 0 {
			parts[i] = "-"
		} else {
			parts[i] = hex.EncodeToString(f)
		}
	}
	return strings.Join(parts, " ")
}

// send makes the peer send one message.
func (p *py) send(frames ...[]byte) {
	p.t.Helper()
	if err := p.proc.Send("SEND %s", encodeFrames(frames)); err != nil {
		p.t.Fatalf("zpeer SEND: %v\nstderr:\n%s", err, p.proc.Stderr())
	}
}

// recv returns the next message the peer printed, within timeout.
func (p *py) recv(timeout time.Duration) [][]byte {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	line, err := p.proc.Expect(ctx, "MSG ")
	if err != nil {
		p.t.Fatalf("zpeer: no message within %v: %v\nlines: %q\nstderr:\n%s", timeout, err, p.proc.Lines(), p.proc.Stderr())
	}
	frames, err := decodeMsgLine(line)
	if err != nil {
		p.t.Fatalf("zpeer: %v", err)
	}
	return frames
}

// event waits for the monitor event name ("EVENT HANDSHAKE_SUCCEEDED ...").
func (p *py) event(name string, timeout time.Duration) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if _, err := p.proc.Expect(ctx, "EVENT "+name); err != nil {
		p.t.Fatalf("zpeer: no %s event within %v: %v\nlines: %q\nstderr:\n%s", name, timeout, err, p.proc.Lines(), p.proc.Stderr())
	}
}

func decodeMsgLine(line string) ([][]byte, error) {
	w := strings.Fields(strings.TrimPrefix(line, "MSG "))
	if len(w) == 0 {
		return nil, fmt.Errorf("bad MSG line %q", line)
	}
	n, err := strconv.Atoi(w[0])
	if err != nil || n != len(w)-1 {
		return nil, fmt.Errorf("bad MSG line %q", line)
	}
	frames := make([][]byte, n)
	for i, s := range w[1:] {
		if s == "-" {
			frames[i] = []byte{}
			continue
		}
		if frames[i], err = hex.DecodeString(s); err != nil {
			return nil, fmt.Errorf("bad MSG frame %q: %w", s, err)
		}
	}
	return frames, nil
}

// --- go-zeromq/zmq4 ------------------------------------------------------------------------

// newZ returns a zmq4 socket that is closed when the test ends (zmq4's Recv has no deadline,
// so closing is what ends a pending one).
func newZ(t testing.TB, mk func(context.Context, ...zmq4.Option) zmq4.Socket, opts ...zmq4.Option) zmq4.Socket {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := mk(ctx, opts...)
	t.Cleanup(func() {
		_ = s.Close()
		cancel()
	})
	return s
}

// zRecv receives from a zmq4 socket within timeout. On timeout the pending Recv stays blocked
// until the socket is closed by the test's cleanup.
func zRecv(t testing.TB, s zmq4.Socket, timeout time.Duration) [][]byte {
	t.Helper()
	type res struct {
		m   zmq4.Msg
		err error
	}
	ch := make(chan res, 1)
	go func() {
		m, err := s.Recv()
		ch <- res{m, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("zmq4 Recv: %v", r.err)
		}
		return r.m.Frames
	case <-time.After(timeout):
		t.Fatalf("zmq4 Recv: nothing within %v", timeout)
		return nil
	}
}

// zEndpoint returns a zmq4 listener's endpoint.
func zEndpoint(t testing.TB, s zmq4.Socket) string {
	t.Helper()
	a := s.Addr()
	if a == nil {
		t.Fatal("zmq4 socket has no listener address")
	}
	return "tcp://" + a.String()
}

// errIsTimeout reports a context deadline.
func errIsTimeout(err error) bool { return errors.Is(err, context.DeadlineExceeded) }
