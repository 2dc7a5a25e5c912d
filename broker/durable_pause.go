package broker

import (
	"context"
	"sync"
)

// Durable pause: in durable mode a pause (broker.pause, broker.resume) is also written to the
// store, and a starting broker reads the paused queues from it before it serves, so a paused
// queue stays paused across a restart (and a broker started later on the same store starts
// with it paused). Brokers already running on the store learn of another's pause when they
// restart.

// pauseStore is a store that keeps the paused queue names (store.Redis).
type pauseStore interface {
	SetPaused(ctx context.Context, queue string, paused bool) error
	Paused(ctx context.Context) ([]string, error)
}

// pauseWriter writes pauses to the store, one at a time, each writing the queue's state as
// it is when its turn comes (so the store ends with the last state whatever the order of the
// goroutines); shutdown waits for the writes under way.
type pauseWriter struct {
	b  *Broker
	st pauseStore
	mu sync.Mutex // one write at a time
	wg sync.WaitGroup
}

// loadPaused reads the paused queues from the store at New (durable mode).
func (b *Broker) loadPaused() error {
	ps, ok := b.cfg.Store.(pauseStore)
	if !ok {
		return nil
	}
	ctx, cancel := b.storeCtx()
	defer cancel()
	names, err := ps.Paused(ctx)
	if err != nil {
		return err
	}
	b.pw = &pauseWriter{b: b, st: ps}
	b.c.persistPause = b.pw.write
	if len(names) > 0 {
		b.c.paused = make(map[string]bool, len(names))
		for _, n := range names {
			b.c.paused[n] = true
		}
		b.cfg.Logger.Info("broker: queues paused in the store stay paused", "queues", names)
	}
	return nil
}

// write records the state of queue name in the store (mu held: it starts a goroutine).
func (w *pauseWriter) write(name string) {
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		w.mu.Lock()
		defer w.mu.Unlock()
		w.b.mu.Lock()
		paused := w.b.c.paused[name]
		w.b.mu.Unlock()
		ctx, cancel := w.b.storeCtx()
		defer cancel()
		if err := w.st.SetPaused(ctx, name, paused); err != nil {
			w.b.cfg.Logger.Warn("broker: store: the pause of a queue was not written: a restart forgets it", "queue", name, "paused", paused, "err", err)
		}
	}()
}

// shutdown waits for the writes under way.
func (w *pauseWriter) shutdown() {
	if w != nil {
		w.wg.Wait()
	}
}
