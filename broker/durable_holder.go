package broker

import (
	"errors"
	"github.com/zerotask/zerotask/protocol"
	"github.com/zerotask/zerotask/store"
)

// holder is the goroutine that writes accepted tasks to the store (one Hold for everything
// accepted meanwhile: a group commit) and then queues them and answers their submits. It runs
// until shutdown, which waits for a write in flight and its answers.
type holder struct {
	durLoop
	b *Broker

	batch   []holdEntry
	tasks   []store.Task
	arena   []byte
	bstates []string
	logged  errLog
}

func (h *holder) start() { h.durLoop.start(h.run) }

func (h *holder) run(quit <-chan struct{}) {
	kick := h.b.c.dur.hkick
	for {
		select {
		case <-quit:
			h.write() // what was accepted up to the stop
			return
		case <-kick:
			h.write()
		}
	}
}

// write writes the tasks accepted since the last write and settles them.
func (h *holder) write() {
	b := h.b
	d := b.c.dur
	b.mu.Lock()
	h.batch, h.tasks, h.arena = b.c.takeHolds(h.batch[:0], h.tasks[:0], h.arena[:0])
	b.c.flush()
	b.mu.Unlock()
	if len(h.tasks) == 0 {
		return
	}
	ctx, cancel := b.storeCtx()
	owner := d.owner()
	err := d.st.Hold(ctx, owner, h.tasks...)
	cancel()
	if err != nil {
		h.logged.log(b, "broker: store: writing accepted tasks failed: they are refused (queue full)", err, len(h.tasks))
		if errors.Is(err, store.ErrFenced) {
			b.lostLease(owner)
		}
	}
	h.bstates = b.boundStates(h.tasks, h.bstates[:0], err)
	b.mu.Lock()
	b.c.holdsWritten(h.batch, h.tasks, h.bstates, err)
	b.c.flush()
	b.mu.Unlock()
	clear(h.tasks)
	clear(h.bstates)
	clear(h.batch)
	if cap(h.arena) > 1<<20 {
		h.arena = nil
	}
}

// boundStates reads, for the tasks a Hold did not store because their idempotency key names
// another task (Bound), that task's state: its result's, or QUEUED while the store holds it,
// or UNKNOWN (a rare path: one read or two per duplicate).
func (b *Broker) boundStates(tasks []store.Task, dst []string, err error) []string {
	if err != nil {
		return dst
	}
	st := b.c.dur.st
	var r store.Result
	for i := range tasks {
		s := ""
		if id := tasks[i].Bound; id != "" {
			s = protocol.StateUnknown
			sctx, cancel := b.storeCtx()
			if found, err := st.Get(sctx, id, &r); err == nil && found {
				s = r.State
			} else if w, _, err := st.Locate(sctx, id); err == nil && w != store.WhereNone {
				s = protocol.StateQueued
			}
			cancel()
		}
		dst = append(dst, s)
	}
	return dst
}
