package client

import (
	"context"
	"sync"
	"sync/atomic"
)

// inflight bounds the calls in flight (WithMaxInFlight). Taking and giving back a slot is one
// atomic operation each; a waiter, when there is one, sleeps on wake. Every call takes and
// gives back a slot, and a channel used as a semaphore cost two channel operations (with their
// lock) per call, a tenth of the client's CPU with results.
type inflight struct {
	used    atomic.Int64
	max     int64
	waiting atomic.Int64  // callers in acquire's slow path
	wake    chan struct{} // capacity 1: a slot was given back while someone waited
}

func (s *inflight) init(max int) {
	s.max = int64(max)
	s.wake = make(chan struct{}, 1)
}

// tryAcquire takes a slot if one is free now.
func (s *inflight) tryAcquire() bool {
	for {
		n := s.used.Load()
		if n >= s.max {
			return false
		}
		if s.used.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release gives a slot back and wakes a waiter, if any. A waiter counts itself before it
// looks at the slots, and release gives the slot back before it looks at the waiters, so one
// of the two sees the other: no wake-up is lost.
func (s *inflight) release() {
	s.used.Add(-1)
	if s.waiting.Load() > 0 {
		s.signal()
	}
}

func (s *inflight) signal() {
	select {
	case s.wake <- struct{}{}:
	default: // a wake-up is pending already
	}
}

// acquire takes a slot, waiting until one frees, ctx ends (its error) or life ends
// (ErrClosed).
func (s *inflight) acquire(ctx, life context.Context) error {
	if s.tryAcquire() {
		return nil
	}
	s.waiting.Add(1)
	defer func() {
		// Several slots given back while one wake-up was pending leave a waiter asleep with a
		// slot free: whoever leaves passes the wake-up on.
		if s.waiting.Add(-1) > 0 && s.used.Load() < s.max {
			s.signal()
		}
	}()
	for {
		if s.tryAcquire() {
			return nil
		}
		select {
		case <-s.wake:
		case <-ctx.Done():
			return ctx.Err()
		case <-life.Done():
			return ErrClosed
		}
	}
}

// doneQueue collects the finished calls of one Map: the reader appends each under a lock and
// wakes the Map when the queue turns non-empty; the Map takes all of them at once. A channel
// of calls cost a send and a receive, each with the channel's lock, per call.
type doneQueue struct {
	mu    sync.Mutex
	calls []*call
	ready chan struct{} // capacity 1
}

func newDoneQueue(n int) *doneQueue {
	return &doneQueue{calls: make([]*call, 0, n), ready: make(chan struct{}, 1)}
}

func (q *doneQueue) push(cl *call) {
	q.mu.Lock()
	q.calls = append(q.calls, cl)
	first := len(q.calls) == 1
	q.mu.Unlock()
	if first {
		select {
		case q.ready <- struct{}{}:
		default:
		}
	}
}

// take swaps the finished calls out for spare (emptied) and returns them.
func (q *doneQueue) take(spare []*call) []*call {
	q.mu.Lock()
	got := q.calls
	q.calls = spare[:0]
	q.mu.Unlock()
	return got
}
