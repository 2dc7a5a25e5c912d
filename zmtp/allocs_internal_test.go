package zmtp

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/testutil"
)

// assertNoAllocs runs f under testing.AllocsPerRun and fails if it allocates. Under the race
// detector (which allocates on its own) only the run itself is checked. settle, when not nil,
// runs between the warm-up and the measure: it waits until the peer has received what the
// warm-up sent, so that the receiving side's pooled messages are all in circulation before
// counting (AllocsPerRun counts every goroutine, the peer's reader included).
func assertNoAllocs(t *testing.T, name string, f func(), settle func()) {
	t.Helper()
	for range 2000 { // warm up pools and buffers
		f()
	}
	if settle != nil {
		settle()
	}
	allocs := testing.AllocsPerRun(5000, f)
	if raceEnabled {
		t.Logf("%s: %v allocs/op under -race (not asserted)", name, allocs)
		return
	}
	if allocs != 0 {
		t.Errorf("%s: %v allocs/op, want 0", name, allocs)
	}
}

// TestAllocsSend: Send, SendFrames and TrySend allocate nothing in steady state, for DEALER,
// ROUTER and PUB (matching a topic past 1,000 adversarial subscriptions included).
func TestAllocsSend(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// drain receives and releases everything s gets, counting it.
	drain := func(s *Socket) *atomic.Uint64 {
		var n atomic.Uint64
		go func() {
			for {
				m, err := s.Recv(ctx)
				if err != nil {
					return
				}
				n.Add(1)
				m.Release()
			}
		}()
		return &n
	}
	// settled waits until got counts every message from's writer has written so far, and the
	// writer has nothing left (nothing queued or in flight to its peer).
	settled := func(from *Socket, got *atomic.Uint64) func() {
		return func() {
			testutil.Eventually(t, 10*time.Second, func() bool {
				out := from.Stats().MsgsOut
				return got.Load() >= out && queued(from) == 0
			}, "receiver did not catch up with the warm-up")
		}
	}
	payload := make([]byte, 64)
	m := AcquireMsg()
	defer m.Release()
	m.Frames = append(m.Frames, payload)

	r, d := benchPair(t, "tcp", Router, Dealer, Options{}, Options{Identity: []byte("d")})
	atR := drain(r)
	atD := drain(d)
	assertNoAllocs(t, "DEALER SendFrames", func() { _ = d.SendFrames(ctx, payload) }, settled(d, atR))
	assertNoAllocs(t, "DEALER Send", func() { _ = d.Send(ctx, m) }, settled(d, atR))
	assertNoAllocs(t, "DEALER TrySend", func() { _ = d.TrySend(m) }, settled(d, atR))
	id := []byte("d")
	rm := AcquireMsg()
	defer rm.Release()
	rm.Frames = append(rm.Frames, id, payload)
	assertNoAllocs(t, "ROUTER SendFrames", func() { _ = r.SendFrames(ctx, id, payload) }, settled(r, atD))
	assertNoAllocs(t, "ROUTER Send", func() { _ = r.Send(ctx, rm) }, settled(r, atD))
	assertNoAllocs(t, "ROUTER TrySend", func() { _ = r.TrySend(rm) }, settled(r, atD))

	pub, sub := benchPair(t, "tcp", Pub, Sub, Options{}, Options{})
	_ = sub.Subscribe(nil)
	waitSubscribed(t, pub, 1)
	atSub := drain(sub)
	assertNoAllocs(t, "PUB SendFrames", func() { _ = pub.SendFrames(ctx, payload) }, settled(pub, atSub))
	base, topics, _ := flatCostSetup(t)
	adversaries(t, pub, 1000, base)
	assertNoAllocs(t, "PUB SendFrames past 1,000 adversarial subscriptions",
		func() { _ = pub.SendFrames(ctx, topics[0], payload) }, settled(pub, atSub))
}

// queued returns the bytes queued for writing on s's connections.
func queued(s *Socket) int {
	n := 0
	for _, c := range *s.peers.Load() {
		c.wmu.Lock()
		n += c.wq.n
		if c.writing {
			n++ // a write is in flight: its messages may not be counted in MsgsOut yet
		}
		c.wmu.Unlock()
	}
	return n
}

// TestAllocsRecv: Recv + Release allocate nothing in steady state (the connection's reader
// included, since AllocsPerRun counts every goroutine).
func TestAllocsRecv(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, d := benchPair(t, "tcp", Router, Dealer, Options{}, Options{Identity: []byte("d")})
	payload := make([]byte, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for d.SendFrames(ctx, payload) == nil {
		}
	}()
	assertNoAllocs(t, "ROUTER Recv+Release", func() {
		m, err := r.Recv(ctx)
		if err == nil {
			m.Release()
		}
	}, nil)
	var batch [16]*Msg
	assertNoAllocs(t, "ROUTER RecvBatch+Release", func() {
		n, err := r.RecvBatch(ctx, batch[:])
		if err == nil {
			releaseAll(batch[:n])
		}
	}, nil)
	cancel()
	<-done
}
