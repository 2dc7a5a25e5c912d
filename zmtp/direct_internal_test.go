package zmtp

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/testutil"
)

// TestDirectWriteOrder: many goroutines send to one peer at once, each its own numbered
// sequence, in both directions (DEALER to ROUTER and ROUTER to DEALER), with sizes from empty to
// most of a write chunk. Messages leave by direct writes when the connection is idle and through
// the writer otherwise (a receiver that starts late lets the queues fill): every message
// arrives intact and each sender's sequence in order, over TCP, IPC and CURVE. A direct write
// cut short mid-message is TestDirectWriteHandOver's.
func TestDirectWriteOrder(t *testing.T) {
	sk, ck := testCurveKeys(t)
	cases := []struct {
		name, transport string
		bo, co          Options
	}{
		{"tcp", "tcp", Options{}, Options{}},
		{"ipc", "ipc", Options{}, Options{}},
		{"curve", "tcp", Options{Security: CurveServer(sk, CurveAllow(ck.Public))}, Options{Security: CurveClient(sk.Public, ck)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.co.Identity = []byte("peer")
			r, d := benchPair(t, tc.transport, Router, Dealer, tc.bo, tc.co)
			const senders, each = 8, 400
			before := directHandoffs.Load()
			ctx := testutil.Context(t, 60*wait)
			var wg sync.WaitGroup
			errs := make(chan error, 4)
			for _, dir := range []struct {
				from, to *Socket
				pre      []byte
			}{{d, r, nil}, {r, d, []byte("peer")}} {
				var sent atomic.Int64
				start := make(chan struct{})
				for g := range senders {
					wg.Add(1)
					go func() {
						defer wg.Done()
						var head [5]byte
						body := make([]byte, wchunkSize-64)
						for i := range each {
							head[0] = byte(g)
							binary.BigEndian.PutUint32(head[1:], uint32(i))
							n := (i*977 + g*131) % len(body)
							for k := range n {
								body[k] = byte(i + k)
							}
							frames := [][]byte{head[:], body[:n]}
							if dir.pre != nil {
								frames = append([][]byte{dir.pre}, frames...)
							}
							if err := dir.from.SendFrames(ctx, frames...); err != nil {
								errs <- fmt.Errorf("send %d/%d: %w", g, i, err)
								return
							}
							if sent.Add(1) == senders*each/4 {
								close(start)
							}
						}
					}()
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs <- receiveInOrder(ctx, dir.to, start, senders, each)
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			t.Logf("direct writes handed to the writer: %d", directHandoffs.Load()-before)
		})
	}
}

// receiveInOrder receives senders x each messages once start is closed and checks each
// sender's sequence and each body.
func receiveInOrder(ctx context.Context, s *Socket, start <-chan struct{}, senders, each int) error {
	select {
	case <-start:
	case <-ctx.Done():
		return ctx.Err()
	}
	next := make([]int, senders)
	for range senders * each {
		m, err := s.Recv(ctx)
		if err != nil {
			return fmt.Errorf("%v recv: %w", s.Type(), err)
		}
		f := m.Frames
		if s.Type() == Router {
			f = f[1:]
		}
		if len(f) != 2 || len(f[0]) != 5 {
			m.Release()
			return fmt.Errorf("%v: malformed message %q", s.Type(), show(m.Frames))
		}
		g, i := int(f[0][0]), int(binary.BigEndian.Uint32(f[0][1:]))
		if g >= senders || i != next[g] {
			m.Release()
			return fmt.Errorf("%v: sender %d sent %d, want %d: out of order", s.Type(), g, i, next[g])
		}
		next[g]++
		for k, b := range f[1] {
			if b != byte(i+k) {
				m.Release()
				return fmt.Errorf("%v: sender %d message %d: byte %d corrupt", s.Type(), g, i, k)
			}
		}
		m.Release()
	}
	return nil
}

// TestHandler: with Options.Handler, a ROUTER's messages come through the handler on the
// connections' readers, each connection's in order, the disconnect notification after the
// connection's last message; Recv and RecvBatch refuse; a PUB refuses the option.
func TestHandler(t *testing.T) {
	type got struct {
		id    string
		body  []byte
		notif Notify
	}
	ch := make(chan got, 4096)
	r := newBound(t, Router, Options{RouterNotify: NotifyDisconnect, Handler: func(ms []*Msg) {
		if len(ms) > 64 {
			t.Errorf("a batch of %d messages, more than 64", len(ms))
		}
		for _, m := range ms {
			g := got{id: string(m.Frames[0]), notif: m.Notification()}
			if g.notif == 0 {
				g.body = append([]byte(nil), m.Frames[len(m.Frames)-1]...)
			}
			ch <- g
			m.Release()
		}
	}}, "tcp")
	if _, err := r.Recv(context.Background()); err != ErrNotSupported {
		t.Fatalf("Recv with a Handler: %v, want ErrNotSupported", err)
	}
	if _, err := r.RecvBatch(context.Background(), make([]*Msg, 1)); err != ErrNotSupported {
		t.Fatalf("RecvBatch with a Handler: %v, want ErrNotSupported", err)
	}
	const peers, each = 3, 500
	ds := make([]*Socket, peers)
	for i := range ds {
		ds[i] = newConnected(t, Dealer, Options{Identity: []byte{'d', byte('0' + i)}}, r.LastEndpoint())
	}
	waitPeers(t, r, peers)
	var wg sync.WaitGroup
	for i, d := range ds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b [4]byte
			for k := range each {
				binary.BigEndian.PutUint32(b[:], uint32(k))
				if err := d.SendFrames(testutil.Context(t, ioWait), b[:]); err != nil {
					t.Errorf("dealer %d send: %v", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	next := map[string]int{}
	gone := map[string]bool{}
	deadline := testutil.Context(t, 12*wait)
	for n := 0; len(gone) < peers; n++ {
		if n == peers*each {
			for _, d := range ds { // every message is in: the disconnects come next
				d.Close()
			}
		}
		var g got
		select {
		case g = <-ch:
		case <-deadline.Done():
			t.Fatalf("handler got %v and disconnects %v before the deadline", next, gone)
		}
		if g.notif == NotifyDisconnect {
			if next[g.id] != each {
				t.Fatalf("peer %q: disconnect after %d of %d messages", g.id, next[g.id], each)
			}
			gone[g.id] = true
			continue
		}
		if k := int(binary.BigEndian.Uint32(g.body)); k != next[g.id] {
			t.Fatalf("peer %q: message %d, want %d", g.id, k, next[g.id])
		}
		next[g.id]++
	}
	p := NewSocket(Pub, Options{Handler: func([]*Msg) {}})
	defer p.Close()
	if err := p.Bind("tcp://127.0.0.1:0"); err == nil {
		t.Fatal("a PUB with a Handler bound; want ErrBadOption")
	}
}

// TestDirectWriteHandOver: a direct write that the socket takes only part of (its buffers full:
// the peer is not reading yet) hands the rest to the writer mid-message; then concurrent
// senders' messages, direct or through the writer, all arrive whole, each sender's in order.
func TestDirectWriteHandOver(t *testing.T) {
	// A Unix socket: its send buffer takes a write in pieces (TCP takes a whole write or
	// nothing), so the hand-over happens mid-message.
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "s.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	nc, err := net.Dial("unix", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	defer peer.Close()
	_ = nc.(*net.UnixConn).SetWriteBuffer(4 << 10) // pieces of about 4 KiB, two at most in flight
	_ = peer.(*net.UnixConn).SetReadBuffer(16 << 10)
	s := NewSocket(Dealer, Options{})
	defer s.Close()
	c := newConn(s, nc, "test")
	c.minor = 1
	go c.writeLoop()
	defer func() {
		c.shutdown(nil)
		<-c.writerDone
	}()
	const senders, each, size = 4, 200, 12000
	ctx := testutil.Context(t, 12*wait)
	sent := make([]int, senders)
	send := func(g int, body []byte) error {
		i := sent[g]
		body[0] = byte(g)
		binary.BigEndian.PutUint32(body[1:], uint32(i))
		c.reads.Add(1) // as if a reply had come in: the conversation that allows direct writes
		if err := s.sendTo(ctx, c, nil, [][]byte{body}, true); err != nil {
			return fmt.Errorf("sender %d: %w", g, err)
		}
		sent[g]++
		return nil
	}
	// Phase 1: one message at a time onto an idle connection (direct writes) until one is cut
	// short by the full buffers and handed over.
	before := directCuts.Load()
	body0 := make([]byte, size)
	for directCuts.Load() == before {
		testutil.Eventually(t, wait, func() bool {
			c.wmu.Lock()
			defer c.wmu.Unlock()
			return !c.writing
		}, "the writer stays busy with the reader not reading")
		if sent[0] == each {
			t.Fatalf("%d messages written directly without filling the socket's buffers", each)
		}
		if err := send(0, body0); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("cut short and handed over after %d direct writes", sent[0])
	// Phase 2: everyone at once, with the reader draining.
	errs := make(chan error, senders+1)
	for g := range senders {
		go func() {
			body := body0
			if g > 0 {
				body = make([]byte, size)
			}
			for sent[g] < each {
				if err := send(g, body); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	go func() {
		fr := newFrameReader(peer, -1)
		defer fr.release()
		next := make([]int, senders)
		for range senders * each {
			m := AcquireMsg()
			if _, err := fr.readMsg(m); err != nil {
				errs <- fmt.Errorf("read: %w", err)
				return
			}
			m.setFrames()
			f := m.Frames[0]
			g, i := int(f[0]), int(binary.BigEndian.Uint32(f[1:]))
			if len(f) != size || g >= senders || i != next[g] {
				errs <- fmt.Errorf("message of %d bytes from sender %d numbered %d, want %d bytes numbered %d", len(f), g, i, size, next[g])
				return
			}
			next[g]++
			m.Release()
		}
		errs <- nil
	}()
	for range senders + 1 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestHandlerBackpressure: while the handler has not returned, its connection reads nothing
// more: the peer's sends back up until its queue is full; once the handler returns,
// everything sent arrives.
func TestHandlerBackpressure(t *testing.T) {
	release := make(chan struct{})
	var got atomic.Int64
	r := newBound(t, Router, Options{Handler: func(ms []*Msg) {
		<-release
		got.Add(int64(len(ms)))
		releaseAll(ms)
	}}, "tcp")
	d := newConnected(t, Dealer, Options{SendHWM: 10}, r.LastEndpoint())
	waitPeers(t, d, 1)
	body := make([]byte, 64<<10)
	sent := 0
	m := &Msg{Frames: [][]byte{body}}
	// Full means: the queue takes nothing and the writer wrote nothing since the last look
	// (the socket buffers are full too).
	var lastOut uint64
	wasFull := false
	testutil.Eventually(t, 12*wait, func() bool {
		refused := false
		for i := 0; i < 1000 && !refused; i++ {
			switch err := d.TrySend(m); err {
			case nil:
				sent++
			case ErrQueueFull:
				refused = true
			default:
				t.Fatalf("TrySend: %v", err)
			}
		}
		out := d.Stats().MsgsOut
		full := refused && wasFull && out == lastOut
		wasFull, lastOut = refused, out
		return full
	}, "the DEALER kept sending: the ROUTER kept reading behind a blocked handler")
	t.Logf("%d messages of 64 KiB sent before the queue was full", sent)
	close(release)
	testutil.Eventually(t, 12*wait, func() bool { return got.Load() == int64(sent) }, "received %d of %d", got.Load(), sent)
}

// TestSendAtHWMOnce: ROUTER senders that keep meeting a full peer queue (SendHWM 1) each send
// every message exactly once: a message queued by the re-check after registering to wait is
// not queued again.
func TestSendAtHWMOnce(t *testing.T) {
	r, d := benchPair(t, "tcp", Router, Dealer, Options{SendHWM: 1}, Options{Identity: []byte("peer")})
	const senders, each = 4, 500
	ctx := testutil.Context(t, 12*wait)
	errs := make(chan error, senders+1)
	for g := range senders {
		go func() {
			var head [5]byte
			for i := range each {
				head[0] = byte(g)
				binary.BigEndian.PutUint32(head[1:], uint32(i))
				if err := r.SendFrames(ctx, []byte("peer"), head[:]); err != nil {
					errs <- fmt.Errorf("send %d/%d: %w", g, i, err)
					return
				}
			}
			errs <- nil
		}()
	}
	go func() {
		next := make([]int, senders)
		for range senders * each {
			m, err := d.Recv(ctx)
			if err != nil {
				errs <- err
				return
			}
			f := m.Frames[0]
			g, i := int(f[0]), int(binary.BigEndian.Uint32(f[1:]))
			m.Release()
			if g >= senders || i != next[g] {
				errs <- fmt.Errorf("sender %d: message %d, want %d", g, i, next[g])
				return
			}
			next[g]++
		}
		if m, ok := tryRecv(d, 50*time.Millisecond); ok {
			errs <- fmt.Errorf("one message too many: %q", show(m))
			return
		}
		errs <- nil
	}()
	for range senders + 1 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
