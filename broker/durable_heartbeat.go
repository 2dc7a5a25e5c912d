package broker

import (
	"errors"
	"time"

	"github.com/zerotask/zerotask/store"
)

// renewInterval is how often the heartbeat renews the broker's lease in the store.
const renewInterval = time.Second

// heartbeat is the goroutine that renews the broker's lease (its owner id's) every
// renewInterval, so that its tasks are not given to other brokers while it lives.
type heartbeat struct {
	durLoop
	b      *Broker
	logged errLog
}

func (h *heartbeat) start() { h.durLoop.start(h.run) }

func (h *heartbeat) run(quit <-chan struct{}) {
	t := time.NewTicker(renewInterval)
	defer t.Stop()
	for {
		select {
		case <-quit:
			return
		case <-t.C:
		}
		h.renew()
	}
}

func (h *heartbeat) renew() {
	b := h.b
	d := b.c.dur
	ctx, cancel := b.storeCtx()
	defer cancel()
	owner := d.owner()
	if err := d.st.Renew(ctx, owner); err != nil {
		h.logged.log(b, "broker: store: renewing the broker's lease failed", err, 0)
		if errors.Is(err, store.ErrFenced) {
			b.lostLease(owner)
		}
	}
}
