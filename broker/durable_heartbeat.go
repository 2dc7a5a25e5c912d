package broker

import (
	"errors"
	"time"

	"github.com/zerotask/zerotask/store"
)

// renewInterval is how often the heartbeat renews the broker's lease in the store (a third of
// the lease when that is shorter).
const renewInterval = time.Second

// leaser is a store that says how long its leases last (store.Redis).
type leaser interface{ Lease() time.Duration }

// lease returns the store's lease (store.DefaultLease when it does not say).
func (b *Broker) lease() time.Duration {
	if l, ok := b.cfg.Store.(leaser); ok && l.Lease() > 0 {
		return l.Lease()
	}
	return store.DefaultLease
}

// heartbeat is the goroutine that renews the broker's lease (its owner id's) every
// renewInterval, so that its tasks are not given to other brokers while it lives.
type heartbeat struct {
	durLoop
	b      *Broker
	logged errLog
}

func (h *heartbeat) start() { h.durLoop.startTicking(min(renewInterval, h.b.lease()/3), h.renew) }

func (h *heartbeat) renew() {
	b := h.b
	d := b.c.dur
	ctx, cancel := b.storeCtx()
	defer cancel()
	owner := d.owner()
	sent := d.mono()
	if err := d.st.Renew(ctx, owner); err != nil {
		h.logged.log(b, "broker: store: renewing the broker's lease failed", err, 0)
		if errors.Is(err, store.ErrFenced) {
			b.lostLease(owner)
		}
		return
	}
	b.mu.Lock()
	b.c.leaseConfirmed(sent, b.lease())
	b.c.flush()
	b.mu.Unlock()
}
