package broker

import (
	"github.com/zerotask/zerotask/store"
	"time"
)

// claimInterval is how often the claimer looks for idle queues to claim store tasks for.
const claimInterval = 20 * time.Millisecond

// claimer is the goroutine that claims tasks from the store's queues for the queues whose
// nodes here have credit and nothing queued (idleQueues), every claimInterval, backing off per
// queue while the store has nothing for it. A claim in flight at shutdown is finished and its
// tasks taken in (they are the broker's in the store, whatever happens next).
type claimer struct {
	durLoop
	b *Broker

	claims []claim
	got    []store.Task
	logged errLog
}

func (c *claimer) start() { c.durLoop.start(c.run) }

func (c *claimer) run(quit <-chan struct{}) {
	t := time.NewTicker(claimInterval)
	defer t.Stop()
	for {
		select {
		case <-quit:
			return
		case <-t.C:
		}
		c.claimIdle()
	}
}

// claimIdle claims tasks for every idle queue.
func (c *claimer) claimIdle() {
	b := c.b
	d := b.c.dur
	b.mu.Lock()
	c.claims = b.c.idleQueues(c.claims[:0])
	b.mu.Unlock()
	for _, cl := range c.claims {
		ctx, cancel := b.storeCtx()
		var err error
		c.got, err = d.st.Claim(ctx, cl.queue, d.owner, cl.n, c.got[:0])
		cancel()
		if err != nil {
			c.logged.log(b, "broker: store: claiming tasks failed", err, cl.n)
		}
		b.mu.Lock()
		if len(c.got) > 0 {
			b.c.claimed(c.got)
			b.c.flush()
		}
		b.c.claimDone(cl, len(c.got))
		b.mu.Unlock()
		clear(c.got)
	}
}
