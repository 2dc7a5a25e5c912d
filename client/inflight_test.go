package client

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

// TestInflight holds the slot count to its bound under many callers that take and give back
// slots, most through the slow path, and checks that none is left asleep with a slot free
// (every goroutine finishes), and that a waiter leaves when its context or the client ends.
func TestInflight(t *testing.T) {
	for _, tc := range []struct {
		name            string
		max, goroutines int
		rounds          int
	}{
		{"one slot", 1, 8, 2000},
		{"few slots", 3, 16, 1000},
		{"more slots than callers", 64, 8, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s inflight
			s.init(tc.max)
			life := context.Background()
			var held, peak atomic.Int64
			var wg sync.WaitGroup
			for g := 0; g < tc.goroutines; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range tc.rounds {
						if err := s.acquire(context.Background(), life); err != nil {
							t.Error(err)
							return
						}
						n := held.Add(1)
						for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
						}
						held.Add(-1)
						s.release()
					}
				}()
			}
			wg.Wait()
			if p := peak.Load(); p > int64(tc.max) {
				t.Errorf("%d slots held at once, bound %d", p, tc.max)
			}
			if n := s.used.Load(); n != 0 {
				t.Errorf("%d slots still taken", n)
			}
			if n := s.waiting.Load(); n != 0 {
				t.Errorf("%d waiters still counted", n)
			}
		})
	}

	t.Run("waiter leaves", func(t *testing.T) {
		var s inflight
		s.init(1)
		if !s.tryAcquire() || s.tryAcquire() {
			t.Fatal("one slot: the first try takes it, the second finds none")
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := s.acquire(ctx, context.Background()); !errors.Is(err, context.Canceled) {
			t.Errorf("acquire with its context done: %v, want context.Canceled", err)
		}
		life, stop := context.WithCancel(context.Background())
		stop()
		if err := s.acquire(context.Background(), life); !errors.Is(err, ErrClosed) {
			t.Errorf("acquire with the client closed: %v, want ErrClosed", err)
		}
		s.release()
		if err := s.acquire(context.Background(), context.Background()); err != nil {
			t.Errorf("acquire with the slot given back: %v", err)
		}
		if n := s.used.Load(); n != 1 {
			t.Errorf("%d slots taken, want 1", n)
		}
	})
}
