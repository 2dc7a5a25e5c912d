package zmtp

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/testutil"
)

// TestRecvBatch: RecvBatch returns what Recv would, in order, several at a time, never more
// than the slice holds; it waits for the first message and honours its context and Close.
func TestRecvBatch(t *testing.T) {
	const total = 500
	pairs := []struct {
		name     string
		bound    SocketType
		conn     SocketType
		recvSide func(bound, conn *Socket) (sender, receiver *Socket)
		wantID   bool // the receiver is a ROUTER: Frames[0] is the sender's identity
	}{
		{"ROUTER receives", Router, Dealer, func(b, c *Socket) (*Socket, *Socket) { return c, b }, true},
		{"DEALER receives", Router, Dealer, nil, false},
		{"SUB receives", Pub, Sub, func(b, c *Socket) (*Socket, *Socket) { return b, c }, false},
	}
	for _, tr := range transports {
		for _, pc := range pairs {
			for _, size := range []int{1, 7, 64} {
				t.Run(fmt.Sprintf("%s/%s/batch=%d", tr, pc.name, size), func(t *testing.T) {
					b := newBound(t, pc.bound, Options{}, tr)
					c := newConnected(t, pc.conn, Options{Identity: []byte("peer")}, b.LastEndpoint())
					var sender, receiver *Socket
					var pre [][]byte
					switch {
					case pc.recvSide != nil:
						sender, receiver = pc.recvSide(b, c)
					default: // the ROUTER sends to the DEALER: address it first
						sender, receiver = b, c
						pre = [][]byte{[]byte("peer")}
						waitPeers(t, b, 1)
					}
					if pc.bound == Pub {
						_ = c.Subscribe(nil)
						waitSubscribed(t, b, 1)
					}
					waitPeers(t, sender, 1)
					ctx, cancel := context.WithTimeout(context.Background(), ioWait)
					defer cancel()
					go func() {
						for i := range total {
							frames := append(append([][]byte{}, pre...), []byte(fmt.Sprint(i)))
							if err := sender.SendFrames(ctx, frames...); err != nil {
								return
							}
						}
					}()
					batch := make([]*Msg, size)
					next, calls := 0, 0
					for next < total {
						n, err := receiver.RecvBatch(ctx, batch)
						if err != nil {
							t.Fatalf("RecvBatch after %d messages: %v", next, err)
						}
						if n < 1 || n > size {
							t.Fatalf("RecvBatch returned %d messages into %d slots", n, size)
						}
						calls++
						for _, m := range batch[:n] {
							body := m.Frames[len(m.Frames)-1]
							if string(body) != fmt.Sprint(next) || pc.wantID != (len(m.Frames) == 2) || pc.wantID && string(m.Frames[0]) != "peer" {
								t.Fatalf("message %d: %s", next, show(m.Frames))
							}
							m.Release()
							next++
						}
					}
					if size == 1 && calls != total {
						t.Fatalf("%d calls with one slot for %d messages", calls, total)
					}
				})
			}
		}
	}
}

// TestRecvBatchEdges: the socket types it refuses, an empty slice, a context that ends, and
// Close while it waits.
func TestRecvBatchEdges(t *testing.T) {
	for _, typ := range []SocketType{Req, Rep, Pub} {
		s := NewSocket(typ, Options{})
		if _, err := s.RecvBatch(context.Background(), make([]*Msg, 4)); !errors.Is(err, ErrNotSupported) {
			t.Errorf("%v RecvBatch: %v, want ErrNotSupported", typ, err)
		}
		s.Close()
	}
	r := newBound(t, Router, Options{}, "tcp")
	if n, err := r.RecvBatch(context.Background(), nil); n != 0 || err != nil {
		t.Fatalf("RecvBatch(nil) = %d, %v; want 0, nil", n, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if n, err := r.RecvBatch(ctx, make([]*Msg, 4)); n != 0 || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("RecvBatch on an idle socket: %d, %v; want the deadline", n, err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := r.RecvBatch(context.Background(), make([]*Msg, 4))
		done <- err
	}()
	r.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("RecvBatch across Close: %v, want ErrClosed", err)
		}
	case <-time.After(wait):
		t.Fatal("RecvBatch still waiting after Close")
	}
}

// TestRecvFairBetweenPeers: a peer that fills a ROUTER's receive queue with large messages
// delays another peer's message by at most one of its own, and its messages keep their
// order; the queue holds the flood within its bound in bytes (plus the other peer's one).
func TestRecvFairBetweenPeers(t *testing.T) {
	const maxBytes = 1 << 20
	r := newBound(t, Router, Options{RecvHWMBytes: maxBytes}, "tcp")
	flood := newConnected(t, Dealer, Options{Identity: []byte("flood"), SendHWM: 1000}, r.LastEndpoint())
	good := newConnected(t, Dealer, Options{Identity: []byte("good")}, r.LastEndpoint())
	waitPeers(t, r, 2)
	ctx, cancel := context.WithTimeout(context.Background(), ioWait)
	defer cancel()
	big := make([]byte, 64<<10)
	const floodN = 100 // 6.4 MiB: the queue holds 1 MiB of it, the rest waits in the kernel and the sender
	go func() {
		for i := range floodN {
			big[0] = byte(i)
			if err := flood.SendFrames(ctx, big); err != nil {
				return
			}
		}
	}()
	queuedBytes := func() (int, int) {
		r.q.mu.Lock()
		defer r.q.mu.Unlock()
		return r.q.n, r.q.bytes
	}
	testutil.Eventually(t, ioWait, func() bool { _, b := queuedBytes(); return b >= maxBytes }, "the flood did not fill the queue")
	send(t, good, []byte("hello"))
	testutil.Eventually(t, ioWait, func() bool {
		r.q.mu.Lock()
		defer r.q.mu.Unlock()
		for _, l := range r.q.active[r.q.ahead:] {
			if string(l.owner.id) == "good" {
				return true
			}
		}
		return false
	}, "the good peer's message was not queued past the full queue")
	n, b := queuedBytes()
	if b > maxBytes+len(big)+len("good")+len("hello") {
		t.Errorf("queue holds %d messages, %d bytes; bound %d plus one message", n, b, maxBytes)
	}
	next := 0
	for i := 0; ; i++ {
		fr := recv(t, r)
		if string(fr[0]) == "good" {
			if i > 1 {
				t.Fatalf("the good peer's message came after %d of the flood's", i)
			}
			break
		}
		if int(fr[1][0]) != next {
			t.Fatalf("flood message %d came as number %d", fr[1][0], next)
		}
		next++
	}
	for ; next < floodN; next++ {
		if fr := recv(t, r); string(fr[0]) != "flood" || int(fr[1][0]) != next {
			t.Fatalf("flood message %d: got %q #%d", next, fr[0], fr[1][0])
		}
	}
}
