package broker

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"time"

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
	ids     []string
	logged  errLog
	// unanswered: a try of the current retry got no answer (it may have landed).
	unanswered bool
}

// start runs write on each kick, and once more at the stop for what was accepted up to it.
func (h *holder) start() {
	h.durLoop.startKicked(h.b.c.dur.hkick, func(quit <-chan struct{}, _ bool) { h.write(quit) })
}

// write writes the tasks accepted since the last write and settles them. A write that got no
// answer (a timeout, a lost connection: it may have landed) is sent again, the same tasks by
// the same ids (a Hold of an id the store holds is a no-op), until Redis answers; meanwhile
// their submits wait. A write Redis refused (an error reply: full under noeviction, a fenced
// run) is undone (the ids acked) before the submits are answered CodeQueueFull, so a refused task
// is not in Redis and never runs. If the broker stops while a write is unanswered, its tasks
// are left to the store (given back if they landed) and their submits get no answer.
func (h *holder) write(quit <-chan struct{}) {
	b := h.b
	d := b.c.dur
	b.mu.Lock()
	h.batch, h.tasks, h.arena = b.c.takeHolds(h.batch[:0], h.tasks[:0], h.arena[:0])
	b.c.flush()
	b.mu.Unlock()
	if len(h.tasks) == 0 {
		return
	}
	owner := d.owner()
	h.unanswered = false
	err := h.retry(quit, "writing accepted tasks", func(ctx context.Context) error { return d.st.Hold(ctx, owner, h.tasks...) })
	uncertain := err != nil && indefinite(err)
	lost := false
	if err != nil && !uncertain {
		h.logged.log(b, "broker: store: writing accepted tasks was refused: they are refused (queue full)", err, len(h.tasks))
		if errors.Is(err, store.ErrFenced) {
			b.lostLease(owner)
			// A try that got no answer may have landed before the run was fenced: its tasks
			// are then in Redis's queues (given back with the run) and run through whichever
			// broker claims them. Neither accepted nor refused: their submits and calls are
			// told the lease was lost.
			lost = h.unanswered
		} else {
			// The refusal is a write: whatever of the batch landed is gone before anyone
			// is told it was refused.
			h.ids = h.ids[:0]
			for i := range h.tasks {
				h.ids = append(h.ids, h.tasks[i].ID)
			}
			aerr := h.retry(quit, "undoing a refused write", func(ctx context.Context) error { return d.st.Ack(ctx, owner, h.ids...) })
			uncertain = aerr != nil && indefinite(aerr)
			clear(h.ids)
		}
	}
	h.bstates = b.boundStates(h.tasks, h.bstates[:0], err)
	b.mu.Lock()
	switch {
	case lost:
		b.c.holdsLost(h.batch)
	case uncertain:
		b.c.holdsUncertain(h.batch)
	default:
		b.c.holdsWritten(owner, h.batch, h.tasks, h.bstates, err)
	}
	b.c.flush()
	b.mu.Unlock()
	clear(h.tasks)
	clear(h.bstates)
	clear(h.batch)
	if cap(h.arena) > 1<<20 {
		h.arena = nil
	}
}

// retry runs op (bounded by StoreTimeout) until it returns anything but an indefinite error
// (10 ms to 1 s apart), or until the broker stops (then one more try).
func (h *holder) retry(quit <-chan struct{}, what string, op func(ctx context.Context) error) error {
	pause := 10 * time.Millisecond
	stopping := false
	for {
		ctx, cancel := h.b.storeCtx()
		err := op(ctx)
		cancel()
		if err == nil || !indefinite(err) || stopping {
			return err
		}
		h.unanswered = true
		h.logged.log(h.b, "broker: store: "+what+" got no answer: sending it again (their submits wait)", err, len(h.tasks))
		select {
		case <-quit:
			stopping = true
		case <-time.After(pause): // retry backoff while Redis does not answer
		}
		pause = min(2*pause, time.Second)
	}
}

// indefinite reports whether a store call that failed may have been applied: no answer came
// (a timeout, a lost connection), as against an answer refusing it.
func indefinite(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
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
