package zmtp

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/testutil"
)

const (
	wait   = 5 * time.Second // bound for anything that should happen promptly
	ioWait = 5 * time.Second
)

// transports is the table every transport-agnostic test runs over.
var transports = []string{"tcp", "ipc"}

// endpointFor returns a fresh endpoint on the transport: tcp port 0 or an ipc path in a
// temporary directory.
func endpointFor(t testing.TB, transport string) string {
	if transport == "ipc" {
		return "ipc://" + filepath.Join(t.TempDir(), "z.sock")
	}
	return "tcp://127.0.0.1:0"
}

// newBound returns a socket bound on the transport, closed when the test ends.
func newBound(t testing.TB, typ SocketType, o Options, transport string) *Socket {
	t.Helper()
	s := NewSocket(typ, o)
	t.Cleanup(func() { s.Close() })
	if err := s.Bind(endpointFor(t, transport)); err != nil {
		t.Fatalf("bind: %v", err)
	}
	return s
}

// newConnected returns a socket connected to ep, closed when the test ends.
func newConnected(t testing.TB, typ SocketType, o Options, ep string) *Socket {
	t.Helper()
	s := NewSocket(typ, o)
	t.Cleanup(func() { s.Close() })
	if err := s.Connect(ep); err != nil {
		t.Fatalf("connect: %v", err)
	}
	return s
}

// waitPeers waits until s has n ready peers.
func waitPeers(t testing.TB, s *Socket, n int) {
	t.Helper()
	testutil.Eventually(t, wait, func() bool { return s.Stats().Peers == n }, "%v: want %d peers, have %d", s.Type(), n, s.Stats().Peers)
}

// recv receives one message and returns a copy of its frames.
func recv(t testing.TB, s *Socket) [][]byte {
	t.Helper()
	m, err := s.Recv(testutil.Context(t, ioWait))
	if err != nil {
		t.Fatalf("%v Recv: %v", s.Type(), err)
	}
	defer m.Release()
	return cloneFrames(m.Frames)
}

// tryRecv receives with a short timeout.
func tryRecv(s *Socket, d time.Duration) ([][]byte, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	m, err := s.Recv(ctx)
	if err != nil {
		return nil, false
	}
	defer m.Release()
	return cloneFrames(m.Frames), true
}

func send(t testing.TB, s *Socket, frames ...[]byte) {
	t.Helper()
	if err := s.SendFrames(testutil.Context(t, ioWait), frames...); err != nil {
		t.Fatalf("%v Send: %v", s.Type(), err)
	}
}

func cloneFrames(in [][]byte) [][]byte {
	out := make([][]byte, len(in))
	for i, f := range in {
		out[i] = append([]byte{}, f...)
	}
	return out
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

func show(fs [][]byte) string {
	var parts []string
	for _, f := range fs {
		if len(f) > 24 {
			parts = append(parts, fmt.Sprintf("%q...(%d)", f[:24], len(f)))
		} else {
			parts = append(parts, fmt.Sprintf("%q", f))
		}
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// rawPeer is a hand-driven ZMTP peer over a raw connection, for tests of what our sockets do
// with peers that misbehave.
type rawPeer struct {
	t  testing.TB
	nc net.Conn
	fr *frameReader
}

func dialRaw(t testing.TB, ep string) *rawPeer {
	t.Helper()
	e, err := parseEndpoint(ep)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := net.DialTimeout(e.network, e.addr, wait)
	if err != nil {
		t.Fatalf("raw dial: %v", err)
	}
	t.Cleanup(func() { nc.Close() })
	fr := newFrameReader(nc, -1)
	t.Cleanup(fr.release)
	return &rawPeer{t: t, nc: nc, fr: fr}
}

func (p *rawPeer) write(b []byte) error {
	_ = p.nc.SetWriteDeadline(time.Now().Add(wait))
	_, err := p.nc.Write(b)
	return err
}

// greeting returns a NULL greeting of version 3.minor.
func rawGreeting(minor byte) []byte {
	g := appendGreeting(nil, "NULL", false)
	g[11] = minor
	return g
}

// handshake completes a NULL handshake as a peer of type typ with identity id, speaking ZMTP
// 3.minor, and returns our socket's READY metadata.
func (p *rawPeer) handshake(typ string, id string, minor byte) {
	p.t.Helper()
	out := rawGreeting(minor)
	md := appendProperty(nil, "Socket-Type", []byte(typ))
	if id != "" {
		md = appendProperty(md, "Identity", []byte(id))
	}
	out = appendCommand(out, "READY", md)
	if err := p.write(out); err != nil {
		p.t.Fatalf("raw handshake write: %v", err)
	}
	_ = p.nc.SetReadDeadline(time.Now().Add(wait))
	var g [greetingSize]byte
	if err := p.fr.readFull(g[:]); err != nil {
		p.t.Fatalf("raw handshake: read greeting: %v", err)
	}
	m := AcquireMsg()
	defer m.Release()
	if kind, err := p.fr.readMsg(m); err != nil || kind != kindCommand {
		p.t.Fatalf("raw handshake: read READY: kind %v err %v", kind, err)
	}
	if name, _, _ := splitCommand(m.Frames[0]); string(name) != "READY" {
		p.t.Fatalf("raw handshake: got command %q", name)
	}
}

// readMsg reads the next message or command within d.
func (p *rawPeer) readMsg(d time.Duration) ([][]byte, msgKind, error) {
	_ = p.nc.SetReadDeadline(time.Now().Add(d))
	m := AcquireMsg()
	defer m.Release()
	kind, err := p.fr.readMsg(m)
	if err != nil {
		return nil, 0, err
	}
	return cloneFrames(m.Frames), kind, nil
}

// waitClosed waits until the peer closes the connection (read returns EOF or a reset) and
// reports how long that took; it fails the test if the connection stays open past d.
func (p *rawPeer) waitClosed(d time.Duration) time.Duration {
	p.t.Helper()
	start := time.Now()
	_ = p.nc.SetReadDeadline(start.Add(d))
	buf := make([]byte, 4096)
	for {
		_, err := p.nc.Read(buf)
		if err == nil {
			continue
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			p.t.Fatalf("connection still open after %v", d)
		}
		return time.Since(start)
	}
}

// frameBytes encodes one frame.
func frameBytes(flags byte, body []byte) []byte {
	return append(appendFrameHeader(nil, flags, len(body)), body...)
}

// longHeader encodes a frame header announcing size with the LONG form.
func longHeader(flags byte, size uint64) []byte {
	b := []byte{flags | flagLong}
	return binary.BigEndian.AppendUint64(b, size)
}

var _ = io.EOF

// runtimeMem samples the total bytes allocated so far.
type runtimeMem struct{ total uint64 }

func (m *runtimeMem) read() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.total = ms.TotalAlloc
}
