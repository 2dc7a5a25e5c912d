package zmtp

import (
	"context"
	"testing"
)

// assertNoAllocs runs f under testing.AllocsPerRun and fails if it allocates. Under the race
// detector (which allocates on its own) only the run itself is checked.
func assertNoAllocs(t *testing.T, name string, f func()) {
	t.Helper()
	for range 2000 { // warm up pools and buffers
		f()
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
// ROUTER and PUB.
func TestAllocsSend(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	drain := func(s *Socket) {
		go func() {
			for {
				m, err := s.Recv(ctx)
				if err != nil {
					return
				}
				m.Release()
			}
		}()
	}
	payload := make([]byte, 64)
	m := AcquireMsg()
	defer m.Release()
	m.Frames = append(m.Frames, payload)

	r, d := benchPair(t, "tcp", Router, Dealer, Options{}, Options{Identity: []byte("d")})
	drain(r)
	drain(d)
	assertNoAllocs(t, "DEALER SendFrames", func() { _ = d.SendFrames(ctx, payload) })
	assertNoAllocs(t, "DEALER Send", func() { _ = d.Send(ctx, m) })
	assertNoAllocs(t, "DEALER TrySend", func() { _ = d.TrySend(m) })
	id := []byte("d")
	rm := AcquireMsg()
	defer rm.Release()
	rm.Frames = append(rm.Frames, id, payload)
	assertNoAllocs(t, "ROUTER SendFrames", func() { _ = r.SendFrames(ctx, id, payload) })
	assertNoAllocs(t, "ROUTER Send", func() { _ = r.Send(ctx, rm) })
	assertNoAllocs(t, "ROUTER TrySend", func() { _ = r.TrySend(rm) })

	pub, sub := benchPair(t, "tcp", Pub, Sub, Options{}, Options{})
	_ = sub.Subscribe(nil)
	waitSubscribed(t, pub, 1)
	drain(sub)
	assertNoAllocs(t, "PUB SendFrames", func() { _ = pub.SendFrames(ctx, payload) })
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
	})
	cancel()
	<-done
}
