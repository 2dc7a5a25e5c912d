package broker

import (
	"sort"
	"strconv"

	"github.com/zerotask/zerotask/codec"
)

// AppendSnapshot appends one JSON object describing the broker as it is now, for a dashboard:
//
//	{"time_ms":..,"stats":{broker.stats},"nodes":[broker.nodes entries, each with "seen_ms"],
//	 "queues":[{"method","queue","depth","oldest_ms","succeeded","failed","retried","revoked",
//	 "expired","done","done_sum_ms"}]}
//
// "seen_ms" is the unix time of a node's last answer or running notice (or of the hand-out
// that found it idle); "done" and "done_sum_ms" are the count and the summed end-to-end time
// of the queue's finished tasks, from which a reader takes rates and mean latencies by
// difference. Queues are sorted by method and queue. It holds the routing lock while it
// copies, like a scrape of WriteMetrics, and is meant to be called about once a second.
func (b *Broker) AppendSnapshot(dst []byte) []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.c
	now := c.now()
	dst = append(dst, `{"time_ms":`...)
	dst = strconv.AppendInt(dst, now/1e6, 10)
	dst = append(dst, `,"stats":`...)
	dst = c.appendStats(dst)
	dst = append(dst, `,"nodes":[`...)
	first := true
	for _, p := range c.peers {
		if !p.alive || !p.node {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = c.appendNodeEntry(dst, p)
		dst = dst[:len(dst)-1] // reopen the entry for its time
		dst = append(dst, `,"seen_ms":`...)
		dst = strconv.AppendInt(dst, p.progress/1e6, 10)
		dst = append(dst, '}')
	}
	dst = append(dst, `],"queues":`...)
	dst, _ = c.appendQueues(dst, now, -1)
	return append(dst, '}')
}

// appendQueues appends the broker.queues array: one object per queue (see AppendSnapshot),
// sorted by method and queue. With limit >= 0 it stops before the array would pass limit
// bytes and reports false.
func (c *core) appendQueues(dst []byte, now int64, limit int) ([]byte, bool) {
	start := len(dst)
	dst = append(dst, '[')
	live := make(map[*qstats]*queue, len(c.queues))
	for _, q := range c.queues {
		if q != nil {
			live[q.st] = q
		}
	}
	rows := make([]*qstats, 0, len(c.qstats)+1)
	for _, st := range c.qstats {
		rows = append(rows, st)
	}
	if c.otherStats != nil {
		rows = append(rows, c.otherStats)
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].method != rows[j].method {
			return rows[i].method < rows[j].method
		}
		return rows[i].queue < rows[j].queue
	})
	for i, st := range rows {
		mark := len(dst)
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"method":`...)
		dst = codec.AppendString(dst, st.method)
		dst = append(dst, `,"queue":`...)
		dst = codec.AppendString(dst, st.queue)
		depth, oldest := 0, int64(0)
		if q := live[st]; q != nil && st != c.otherStats {
			depth = q.live
			if at := c.oldest(q); at != 0 {
				oldest = max(now-at, 0) / 1e6
			}
		}
		dst = append(dst, `,"depth":`...)
		dst = strconv.AppendInt(dst, int64(depth), 10)
		dst = append(dst, `,"oldest_ms":`...)
		dst = strconv.AppendInt(dst, oldest, 10)
		for o := 0; o < nOutcomes; o++ {
			dst = append(dst, `,"`...)
			dst = append(dst, outcomeNames[o]...)
			dst = append(dst, `":`...)
			dst = strconv.AppendUint(dst, st.out[o], 10)
		}
		var n uint64
		for _, k := range st.total.Counts {
			n += k
		}
		dst = append(dst, `,"done":`...)
		dst = strconv.AppendUint(dst, n, 10)
		dst = append(dst, `,"done_sum_ms":`...)
		dst = strconv.AppendInt(dst, st.total.SumNS/1e6, 10)
		dst = append(dst, '}')
		if limit >= 0 && len(dst)-start+1 > limit {
			return append(dst[:mark], ']'), false
		}
	}
	return append(dst, ']'), true
}
