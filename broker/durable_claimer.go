package broker

import (
	"errors"
	"strconv"
	"time"

	"github.com/zerotask/zerotask/protocol"
	"github.com/zerotask/zerotask/store"
)

// claimInterval is how often the claimer looks for idle queues to claim store tasks for.
const claimInterval = 20 * time.Millisecond

// claimer is the goroutine that claims tasks from the store's queues for the queues whose
// nodes here have credit and nothing queued (idleQueues), every claimInterval, backing off per
// queue while the store has nothing for it. A claim in flight at shutdown is finished and its
// tasks taken in (they are the broker's in the store, whatever happens next). A claim that
// fails (a timeout: it may have run in Redis) is sent again with the same token before any
// other, until Redis answers it: the store replies the tasks it took then, so none is left
// held by this broker without its knowing.
type claimer struct {
	durLoop
	b *Broker

	claims []claim
	retry  []claim // the claims that failed, to send again as they were
	got    []store.Task
	seq    uint64 // numbers this broker's claims: their tokens
	logged errLog
	ticks  int      // claimIdle calls, for the polls of away workflow steps
	away   []string // the away steps being polled
}

// awayPollEvery is how many claimIdle calls pass between two reads of the results of away
// workflow steps (workflow_durable.go): about half a second.
const awayPollEvery = 25

func (c *claimer) start() {
	c.durLoop.startTicking(claimInterval, func() {
		c.claimIdle()
		c.pollAway()
	})
}

// pollAway reads, every awayPollEvery calls, the results of workflow steps that are in the
// store and not here (another broker may run them).
func (c *claimer) pollAway() {
	if c.ticks++; c.ticks%awayPollEvery != 0 {
		return
	}
	b := c.b
	b.mu.Lock()
	c.away = b.c.awayIDs(c.away[:0])
	b.mu.Unlock()
	if len(c.away) > 0 {
		b.pollAway(c.away)
	}
	clear(c.away)
}

// claimIdle sends the claims that failed, or else claims tasks for every idle queue.
func (c *claimer) claimIdle() {
	b := c.b
	d := b.c.dur
	owner := d.owner()
	if len(c.retry) > 0 {
		c.claims = append(c.claims[:0], c.retry...)
		c.retry = c.retry[:0]
	} else {
		b.mu.Lock()
		c.claims = b.c.idleQueues(c.claims[:0])
		b.mu.Unlock()
		for i := range c.claims {
			c.seq++
			c.claims[i].token = owner + "/" + strconv.FormatUint(c.seq, 10)
		}
	}
	for _, cl := range c.claims {
		ctx, cancel := b.storeCtx()
		var err error
		c.got, err = d.st.Claim(ctx, cl.queue, owner, cl.token, cl.n, c.got[:0])
		cancel()
		if cl.queue == protocol.WorkflowQueue && err == nil {
			// Graphs: their steps' results are read first, off the routing loop.
			stored := b.fetchFlowSteps(c.got)
			b.mu.Lock()
			if !b.c.dur.stale(owner) {
				b.c.resumeFlows(c.got, stored)
			}
			b.c.flush()
			b.c.claimDone(cl, len(c.got))
			b.mu.Unlock()
			clear(c.got)
			continue
		}
		if err != nil {
			c.logged.log(b, "broker: store: claiming tasks failed", err, cl.n)
			switch {
			case errors.Is(err, store.ErrFenced):
				b.lostLease(owner)
				return
			case !errors.Is(err, store.ErrClosed):
				c.retry = append(c.retry, cl)
			}
		}
		b.mu.Lock()
		switch {
		case len(c.got) == 0:
		case b.c.dur.stale(owner):
			// Taken before the run was fenced, given back to the queue by the fence: not
			// this broker's (the next claim may take them again, under the new run).
			clear(c.got)
			c.got = c.got[:0]
		default:
			b.c.claimed(c.got)
			b.c.flush()
		}
		b.c.claimDone(cl, len(c.got))
		b.mu.Unlock()
		clear(c.got)
	}
}
