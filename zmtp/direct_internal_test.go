package zmtp

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/zerotask/zerotask/internal/testutil"
)

// TestDirectWriteOrder: many goroutines send to one peer at once, each its own numbered
// sequence, in both directions (DEALER to ROUTER and ROUTER to DEALER), with sizes from empty to
// most of a write chunk. Messages leave by direct writes when the connection is idle and through
// the writer otherwise, and a receiver that starts late fills the socket buffers so that direct
// writes are cut short and handed over: every message arrives intact and each sender's
// sequence in order, over TCP, IPC and CURVE.
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
