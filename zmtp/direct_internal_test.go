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
