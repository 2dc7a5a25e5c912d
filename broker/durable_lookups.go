package broker

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/internal/rawjson"
	"github.com/zerotask/zerotask/protocol"
	"github.com/zerotask/zerotask/store"
	"sync"
)

// lookups answers broker.status and broker.result for tasks this broker does not know from
// the store, one goroutine per lookup (their number bounded by MaxWaiting through
// core.startLookup), with a context of their own that shutdown cancels before it waits.
type lookups struct {
	b      *Broker
	wg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc
}

func (l *lookups) init() { l.ctx, l.cancel = context.WithCancel(context.Background()) }

// start answers lk from the store on a goroutine of its own (mu held).
func (l *lookups) start(lk *lookup) {
	b := l.b
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		var v []byte
		var e *codec.Error
		if lk.run != nil {
			ctx, cancel := context.WithTimeout(l.ctx, storeJobTimeouts*b.cfg.StoreTimeout)
			v, e = lk.run(ctx)
			cancel()
		} else {
			v, e = b.runLookup(l.ctx, lk)
		}
		b.mu.Lock()
		if lk.after != nil {
			lk.after()
		}
		if e != nil {
			b.c.dur.lookups--
			if lk.tg.client != noRef {
				b.c.scratch = codec.AppendError(b.c.scratch[:0], lk.reqID, e)
				b.c.deliverAsync(lk.tg, b.c.scratch)
			}
		} else {
			b.c.lookupDone(lk, v)
		}
		b.c.flush()
		b.mu.Unlock()
	}()
}

// shutdown ends the lookups still running (their waits) and waits for them.
func (l *lookups) shutdown() {
	if l.cancel == nil {
		return
	}
	l.cancel()
	l.wg.Wait()
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
func (b *Broker) runLookup(ctx context.Context, l *lookup) ([]byte, *codec.Error) {
	st := b.c.dur.st
	ctx, cancel := context.WithTimeout(ctx, b.cfg.StoreTimeout+l.wait)
	defer cancel()
	var r store.Result
	found, err := st.Get(ctx, l.id, &r)
	if err == nil && !found {
		var where store.Where
		where, _, err = st.Locate(ctx, l.id)
		switch {
		case err != nil:
		case where == store.WhereNone:
			// Finished between the two reads, or unknown (or its result is gone and it is
			// archived: the archive outlives the result TTL).
			if found, err = st.Get(ctx, l.id, &r); err == nil && !found {
				return b.archivedRecord(ctx, l), nil
			}
		case l.wait > 0:
			wctx, wcancel := context.WithTimeout(ctx, l.wait)
			err = st.Wait(wctx, l.id, &r)
			wcancel()
			if err == nil {
				found = true
			} else if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				// Not finished within the wait: where it is now. Gone from the store without
				// a result (acked without one, as an undone write) it is UNKNOWN, unless its
				// result landed just after the wait.
				if where, _, err = st.Locate(ctx, l.id); err == nil && where != store.WhereNone {
					return appendStateRecord(nil, l.id, storedState(where)), nil
				}
				if err == nil {
					if found, err = st.Get(ctx, l.id, &r); err == nil && !found {
						return appendStateRecord(nil, l.id, protocol.StateUnknown), nil
					}
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
	if l.user != "" && r.Submitter != "" && r.Submitter != l.user {
		return appendStateRecord(nil, l.id, protocol.StateUnknown), nil // another's task (auth.go)
	}
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

// archivedRecord answers task l.id from the store's archive (its record there), or UNKNOWN.
func (b *Broker) archivedRecord(ctx context.Context, l *lookup) []byte {
	if as := b.c.darch; as != nil {
		var d store.Dead
		found, err := as.GetDead(ctx, l.id, &d)
		if err != nil {
			b.cfg.Logger.Warn("broker: store: reading an archived task failed", "id", l.id, "err", err)
		}
		if found && json.Valid(d.Record) {
			// Another's task reads as UNKNOWN to a user without the admin role (auth.go).
			var sub string
			raw := rawjson.Param(d.Record, "submitter", -1)
			if l.user == "" || raw == nil || codec.Unmarshal(raw, &sub) == nil && sub == l.user {
				return d.Record
			}
		}
	}
	return appendStateRecord(nil, l.id, protocol.StateUnknown)
}
