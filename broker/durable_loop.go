package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/protocol"
	"github.com/zerotask/zerotask/store"
)

// The goroutines of durable mode (see durable.go): the holder writes accepted tasks and claims
// store tasks for idle queues, the finisher writes results and acks, lookups answer status and
// result requests from the store. Each store call is made without Broker.mu and bounded by
// Config.StoreTimeout.

// policyChecker is a store that can check its server's eviction policy (store.Redis).
type policyChecker interface {
	CheckMaxmemoryPolicy(ctx context.Context) error
}

// openDurable prepares durable mode at New: the eviction policy check and the recovery of what
// an earlier run under the same owner held.
func (b *Broker) openDurable() error {
	cfg := &b.cfg
	if cfg.StoreOwner == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "localhost"
		}
		cfg.StoreOwner = "broker:" + host + ":" + b.Addr()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*cfg.StoreTimeout)
	defer cancel()
	if pc, ok := cfg.Store.(policyChecker); ok {
		if err := pc.CheckMaxmemoryPolicy(ctx); err != nil {
			return fmt.Errorf("broker: store: %w", err)
		}
	}
	n, err := cfg.Store.Recover(ctx, cfg.StoreOwner)
	if err != nil {
		return fmt.Errorf("broker: store: recover the tasks of %q: %w", cfg.StoreOwner, err)
	}
	if n > 0 {
		cfg.Logger.Info("broker: tasks of an earlier run are back in the store's queues", "owner", cfg.StoreOwner, "tasks", n)
	}
	b.c.dur = newDurable(cfg.Store, cfg.StoreOwner, cfg.Logger)
	b.c.ask = b.startLookup
	b.finQuit = make(chan struct{})
	b.finDone = make(chan struct{})
	return nil
}

// claimInterval is how often the holder looks for idle queues to claim store tasks for, and
// renewInterval how often it renews the broker's lease (claims and holds renew it too).
const (
	claimInterval = 20 * time.Millisecond
	renewInterval = time.Second
)

// holdLoop is the holder goroutine: it runs until ctx ends.
func (b *Broker) holdLoop(ctx context.Context) {
	d := b.c.dur
	t := time.NewTicker(claimInterval)
	defer t.Stop()
	var (
		batch   []holdEntry
		tasks   []store.Task
		arena   []byte
		claims  []claim
		got     []store.Task
		bstates []string
		logged  errLog
	)
	lastRenew := time.Now()
	for {
		tick := false
		select {
		case <-ctx.Done():
			return
		case <-d.hkick:
		case <-t.C:
			tick = true
		}
		b.mu.Lock()
		batch, tasks, arena = b.c.takeHolds(batch[:0], tasks[:0], arena[:0])
		if tick {
			claims = b.c.idleQueues(claims[:0])
		}
		b.c.flush()
		b.mu.Unlock()
		if len(tasks) > 0 {
			sctx, cancel := context.WithTimeout(ctx, b.cfg.StoreTimeout)
			err := d.st.Hold(sctx, d.owner, tasks...)
			cancel()
			if err != nil && ctx.Err() == nil {
				logged.log(b, "broker: store: writing accepted tasks failed: they are refused (queue full)", err, len(tasks))
			}
			bstates = b.boundStates(ctx, tasks, bstates[:0], err)
			b.mu.Lock()
			b.c.holdsWritten(batch, tasks, bstates, err)
			b.c.flush()
			b.mu.Unlock()
			clear(tasks)
			clear(bstates)
			clear(batch)
			if cap(arena) > 1<<20 {
				arena = nil
			}
		}
		for _, cl := range claims {
			sctx, cancel := context.WithTimeout(ctx, b.cfg.StoreTimeout)
			var err error
			got, err = d.st.Claim(sctx, cl.queue, d.owner, cl.n, got[:0])
			cancel()
			if err != nil && ctx.Err() == nil {
				logged.log(b, "broker: store: claiming tasks failed", err, cl.n)
			}
			b.mu.Lock()
			if len(got) > 0 {
				b.c.claimed(got)
				b.c.flush()
				lastRenew = time.Now()
			}
			b.c.claimDone(cl, len(got))
			b.mu.Unlock()
			clear(got)
		}
		if tick && time.Since(lastRenew) >= renewInterval {
			sctx, cancel := context.WithTimeout(ctx, b.cfg.StoreTimeout)
			if err := d.st.Renew(sctx, d.owner); err != nil && ctx.Err() == nil {
				logged.log(b, "broker: store: renewing the broker's lease failed", err, 0)
			}
			cancel()
			lastRenew = time.Now()
		}
	}
}

// boundStates reads, for the tasks a Hold did not store because their idempotency key names
// another task (Bound), that task's state: its result's, or QUEUED while the store holds it,
// or UNKNOWN (a rare path: one read or two per duplicate).
func (b *Broker) boundStates(ctx context.Context, tasks []store.Task, dst []string, err error) []string {
	if err != nil {
		return dst
	}
	st := b.c.dur.st
	var r store.Result
	for i := range tasks {
		s := ""
		if id := tasks[i].Bound; id != "" {
			s = protocol.StateUnknown
			sctx, cancel := context.WithTimeout(ctx, b.cfg.StoreTimeout)
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

// finishLoop is the finisher goroutine: it writes results then acks until finQuit is closed,
// then writes what is left (bounded by StoreTimeout per call) and closes finDone.
func (b *Broker) finishLoop() {
	defer close(b.finDone)
	d := b.c.dur
	var f finisher
	for {
		select {
		case <-b.finQuit:
			f.flush(b, true)
			return
		case <-d.fkick:
			f.flush(b, false)
		}
	}
}

// finisher is the finisher goroutine's reusable state.
type finisher struct {
	results  []store.Result
	ids      []string
	requeues []string
	starts   []string
	stops    []string
	buf      []byte
	logged   errLog
}

// flush writes the results and acks gathered so far: results first, then acks (a task is
// never acked before its result is stored), each retried with a growing pause while the store
// fails, until it works or the broker stops (last: one try each).
func (f *finisher) flush(b *Broker, last bool) {
	d := b.c.dur
	b.mu.Lock()
	f.results, f.ids, f.requeues, f.starts, f.stops, f.buf = b.c.takeFinished(f.results[:0], f.ids[:0], f.requeues[:0], f.starts[:0], f.stops[:0], f.buf)
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
			if last || errors.Is(err, store.ErrClosed) {
				return false
			}
			select {
			case <-b.finQuit:
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
	if ok && len(f.ids) > 0 {
		// Not acked when the results could not be written: the tasks run again after a
		// recovery rather than being lost.
		try("acking finished tasks", len(f.ids), func(ctx context.Context) error {
			return d.st.Ack(ctx, f.ids...)
		})
	}
	if len(f.requeues) > 0 {
		try("giving back tasks", len(f.requeues), func(ctx context.Context) error {
			return d.st.Requeue(ctx, f.requeues...)
		})
	}
	// After the acks: a mark for a task acked meanwhile is ignored by the store.
	mark := func(ids []string, running bool) {
		if len(ids) > 0 {
			try("marking running tasks", len(ids), func(ctx context.Context) error {
				return d.st.SetRunning(ctx, d.owner, running, ids...)
			})
		}
	}
	mark(f.starts, true)
	mark(f.stops, false)
	clear(f.results)
	clear(f.ids)
	clear(f.requeues)
	clear(f.starts)
	clear(f.stops)
}

// closeDurable ends durable mode when Serve ends: the last results and acks are written, then
// everything the broker still holds in the store goes back to its queues (Recover) for the
// next run or another broker.
func (b *Broker) closeDurable() {
	if b.c.dur == nil {
		return
	}
	close(b.finQuit)
	<-b.finDone
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.StoreTimeout)
	defer cancel()
	n, err := b.c.dur.st.Recover(ctx, b.c.dur.owner)
	if err != nil {
		b.cfg.Logger.Warn("broker: store: giving back the tasks still held failed: they come back when the lease runs out or at the next start", "err", err)
		return
	}
	if n > 0 {
		b.cfg.Logger.Info("broker: tasks still held went back to the store's queues", "tasks", n)
	}
}

// startLookup answers a lookup from the store on a goroutine of its own (mu held; bounded by
// MaxWaiting through core.startLookup).
func (b *Broker) startLookup(l *lookup) {
	b.jobWG.Add(1)
	go func() {
		defer b.jobWG.Done()
		v, e := b.runLookup(l)
		b.mu.Lock()
		if e != nil {
			b.c.dur.lookups--
			if l.tg.client != noRef {
				b.c.scratch = codec.AppendError(b.c.scratch[:0], l.reqID, e)
				b.c.deliverAsync(l.tg, b.c.scratch)
			}
		} else {
			b.c.lookupDone(l, v)
		}
		b.c.flush()
		b.mu.Unlock()
	}()
}

// storedState is the state a broker reports of a task another broker holds (or that waits in
// the store's queue): RUNNING once that broker's node reported it started, else QUEUED.
func storedState(w store.Where) string {
	if w == store.WhereRunning {
		return protocol.StateRunning
	}
	return protocol.StateQueued
}

var errStoreRead = codec.NewError(codec.CodeInternalError, "Internal error: the store did not answer", nil)

// runLookup reads task l.id from the store: its result, QUEUED while the store holds it
// (RUNNING once the holding broker's node reported it started), waiting up to l.wait for its
// result, or UNKNOWN.
func (b *Broker) runLookup(l *lookup) ([]byte, *codec.Error) {
	st := b.c.dur.st
	ctx, cancel := context.WithTimeout(b.jobCtx, b.cfg.StoreTimeout+l.wait)
	defer cancel()
	var r store.Result
	found, err := st.Get(ctx, l.id, &r)
	if err == nil && !found {
		var where store.Where
		where, _, err = st.Locate(ctx, l.id)
		switch {
		case err != nil:
		case where == store.WhereNone:
			// Finished between the two reads, or unknown.
			if found, err = st.Get(ctx, l.id, &r); err == nil && !found {
				return appendStateRecord(nil, l.id, protocol.StateUnknown), nil
			}
		case l.wait > 0:
			wctx, wcancel := context.WithTimeout(ctx, l.wait)
			err = st.Wait(wctx, l.id, &r)
			wcancel()
			if err == nil {
				found = true
			} else if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				// Still not finished: where it is now.
				if where, _, err = st.Locate(ctx, l.id); err == nil {
					return appendStateRecord(nil, l.id, storedState(where)), nil
				}
			}
		default:
			return appendStateRecord(nil, l.id, storedState(where)), nil
		}
	}
	if err != nil {
		b.cfg.Logger.Warn("broker: store: reading a task failed", "id", l.id, "err", err)
		return nil, errStoreRead
	}
	r.ID = l.id
	if len(r.Result) > 0 && !json.Valid(r.Result) || len(r.Error) > 0 && !json.Valid(r.Error) {
		// Written by a foreign or broken writer: never passed on as JSON it is not.
		b.cfg.Logger.Warn("broker: store: a stored result is not valid JSON", "id", l.id)
		r.Result = nil
		r.Error = codec.AppendErrorObject(r.Error[:0], errStoreCorrupt)
		if r.State == store.StateSuccess {
			r.State = store.StateFailure
		}
	}
	return appendStoredRecord(nil, &r), nil
}

var errStoreCorrupt = codec.NewError(codec.CodeInternalError, "Internal error: the stored record is corrupt", nil)

// errLog logs a failing store at most once a second, with the count of what was hit.
type errLog struct {
	last atomic.Int64
}

func (e *errLog) log(b *Broker, msg string, err error, n int) {
	now := time.Now().UnixNano()
	if last := e.last.Load(); now-last < int64(time.Second) {
		return
	}
	e.last.Store(now)
	b.cfg.Logger.Error(msg, "err", err, "tasks", n)
}
