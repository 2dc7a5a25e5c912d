package broker

import (
	"context"
	"errors"
	"github.com/zerotask/zerotask/store"
	"time"
)

func (f *finisher) start() { f.durLoop.startKicked(f.b.c.dur.fkick, f.flush) }

// finisher is the goroutine that writes what finished: results, then acks (a task is never
// acked before its result is stored), give-backs and running marks, retrying while the store
// fails. Its shutdown writes what is left, one try per call.
type finisher struct {
	durLoop
	b *Broker

	results  []store.Result
	ids      []string
	requeues []string
	deads    []store.Dead
	starts   []string
	stops    []string
	buf      []byte
	logged   errLog
}

// flush writes the results and acks gathered so far: results first, then acks (a task is
// never acked before its result is stored), each retried with a growing pause while the store
// fails, until it works or the broker stops (last: one try each).
func (f *finisher) flush(quit <-chan struct{}, last bool) {
	b := f.b
	d := b.c.dur
	b.mu.Lock()
	f.results, f.ids, f.requeues, f.starts, f.stops, f.buf = b.c.takeFinished(f.results[:0], f.ids[:0], f.requeues[:0], f.starts[:0], f.stops[:0], f.buf)
	f.deads = append(f.deads[:0], d.deads...)
	d.deads = emptied(d.deads)
	// The run these belong to, read with them: lostLease drops what an old run left under the
	// same lock before it starts a new one, so no ack of the old run's tasks goes out under
	// the new run (which could forget a task given back to a queue, unrun).
	owner := d.owner()
	b.mu.Unlock()
	try := func(what string, n int, op func(ctx context.Context) error) bool {
		pause := 10 * time.Millisecond
		for {
			ctx, cancel := context.WithTimeout(context.Background(), b.cfg.StoreTimeout)
			err := op(ctx)
			cancel()
			if err == nil {
				return true
			}
			f.logged.log(b, "broker: store: "+what+" failed; retrying", err, n)
			if errors.Is(err, store.ErrFenced) {
				// The tasks are no longer this broker's: nothing to retry.
				b.lostLease(owner)
				return false
			}
			if last || errors.Is(err, store.ErrClosed) {
				return false
			}
			select {
			case <-quit:
				last = true
			case <-time.After(pause): // retry backoff while the store is down
			}
			pause = min(2*pause, time.Second)
		}
	}
	ok := true
	if len(f.results) > 0 {
		ok = try("writing results", len(f.results), func(ctx context.Context) error {
			return d.st.Put(ctx, b.cfg.ResultTTL, f.results...)
		})
	}
	if ok && len(f.deads) > 0 {
		// Before the acks, as the results; a task is acked even when its archiving failed
		// (run again, it would fail again, maybe with effects).
		try("archiving failed tasks", len(f.deads), func(ctx context.Context) error {
			return b.c.darch.Archive(ctx, b.c.dlim, f.deads...)
		})
	}
	if ok && len(f.ids) > 0 {
		// Not acked when the results could not be written: the tasks run again after a
		// recovery rather than being lost.
		try("acking finished tasks", len(f.ids), func(ctx context.Context) error {
			return d.st.Ack(ctx, owner, f.ids...)
		})
	}
	if len(f.requeues) > 0 {
		try("giving back tasks", len(f.requeues), func(ctx context.Context) error {
			return d.st.Requeue(ctx, owner, f.requeues...)
		})
	}
	// After the acks: a mark for a task acked meanwhile is ignored by the store.
	mark := func(ids []string, running bool) {
		if len(ids) > 0 {
			try("marking running tasks", len(ids), func(ctx context.Context) error {
				return d.st.SetRunning(ctx, owner, running, ids...)
			})
		}
	}
	mark(f.starts, true)
	mark(f.stops, false)
	clear(f.results)
	clear(f.deads)
	clear(f.ids)
	clear(f.requeues)
	clear(f.starts)
	clear(f.stops)
}
