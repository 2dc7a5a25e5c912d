package zmtp

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
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
