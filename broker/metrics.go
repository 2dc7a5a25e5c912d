package broker

import (
	"bufio"
	"io"
	"runtime/metrics"
	"sort"

	"github.com/zerotask/zerotask/internal/promtext"
	"github.com/zerotask/zerotask/protocol"
)

// Metrics. The routing state counts in place, under the lock it already holds: an outcome is
// one increment of a field of the task's queue's stats, a duration one bucket increment, and
// the clock is read once per batch of received messages (core.clock), so the routing path
// stays at zero allocations and adds no atomic or map lookup per task. WriteMetrics renders
// the Prometheus text format from those counters on a scrape (names in package protocol,
// docs/operations.md).

// Outcomes of a task, the index of qstats.out.
const (
	outSucceeded = iota
	outFailed
	outRetried
	outRevoked
	outExpired
	nOutcomes
)

var outcomeNames = [nOutcomes]string{
	outSucceeded: protocol.OutcomeSucceeded,
	outFailed:    protocol.OutcomeFailed,
	outRetried:   protocol.OutcomeRetried,
	outRevoked:   protocol.OutcomeRevoked,
	outExpired:   protocol.OutcomeExpired,
}

// qstats are the counters of one queue (method and named queue). They outlive the queue (a
// queue is forgotten when idle; a counter must never go down), bounded by statsMax entries:
// past it, new queues share one entry labelled protocol.MetricOtherMethod.
type qstats struct {
	method, queue string
	out           [nOutcomes]uint64
	queued        promtext.Hist // time in the queue before each hand-out
	running       promtext.Hist // hand-out to answer
	total         promtext.Hist // acceptance to the end, finished tasks
}

// statsMax bounds the qstats entries: twice MaxMethods, so queues that come and go keep their
// own series for a while.
func (c *core) statsMax() int { return 2 * c.cfg.MaxMethods }

// statsFor returns the stats entry of a queue being created (not on the per-task path).
func (c *core) statsFor(q *queue) *qstats {
	if s, ok := c.qstats[q.name]; ok {
		return s
	}
	if len(c.qstats) >= c.statsMax() {
		if c.otherStats == nil {
			c.otherStats = &qstats{method: protocol.MetricOtherMethod}
		}
		return c.otherStats
	}
	s := &qstats{method: q.method, queue: q.qname}
	if s.queue == "" {
		s.queue = DefaultQueue
	}
	c.qstats[q.name] = s
	return s
}

// count adds outcome o of task t.
func (c *core) count(t *task, o int) { c.queues[t.q].st.out[o]++ }

// observeHandout records the time t waited in its queue; its running time starts.
func (c *core) observeHandout(q *queue, t *task) {
	q.st.queued.Observe(c.clock - t.since)
	t.since = c.clock
}

// observeRun records the time t was held by its node (it leaves it: answered, lost, given
// back).
func (c *core) observeRun(t *task) { c.queues[t.q].st.running.Observe(c.clock - t.since) }

// observeEnd records the end-to-end time of t.
func (c *core) observeEnd(t *task) { c.queues[t.q].st.total.Observe(c.clock - t.born) }

// oldest returns the time the oldest live task of q entered it (0: none), walking at most
// oldestWalk entries of each priority's ring (stale entries of removed tasks are skipped).
func (c *core) oldest(q *queue) int64 {
	var at int64
	look := func(r *ring) {
		for i := 0; i < r.n && i < oldestWalk; i++ {
			k := r.buf[(r.head+i)&(len(r.buf)-1)]
			if t := c.queuedIn(k, q); t != nil {
				if at == 0 || t.since < at {
					at = t.since
				}
				return
			}
		}
	}
	q.ring.each(look)
	if q.hi != nil {
		for i := range q.hi {
			look(&q.hi[i])
		}
	}
	return at
}

// oldestWalk bounds the ring entries a scrape looks at per priority to find a live task.
const oldestWalk = 1024

// WriteMetrics writes the broker's metrics in the Prometheus text format (version 0.0.4).
func (b *Broker) WriteMetrics(w io.Writer) error {
	bw := bufio.NewWriter(w)
	b.mu.Lock()
	now := b.c.now()
	s := b.c.stats()
	type qrow struct {
		st        qstats
		depth     int
		oldestAge float64
		hasQueue  bool
	}
	rows := make([]qrow, 0, len(b.c.qstats)+1)
	live := make(map[*qstats]*queue, len(b.c.queues))
	for _, q := range b.c.queues {
		if q != nil {
			live[q.st] = q
		}
	}
	add := func(st *qstats) {
		r := qrow{st: *st}
		if q := live[st]; q != nil && st != b.c.otherStats {
			r.hasQueue = true
			r.depth = q.live
			if at := b.c.oldest(q); at != 0 {
				r.oldestAge = float64(max(now-at, 0)) / 1e9
			}
		}
		rows = append(rows, r)
	}
	for _, st := range b.c.qstats {
		add(st)
	}
	if b.c.otherStats != nil {
		add(b.c.otherStats)
	}
	durable := b.c.dur != nil
	b.mu.Unlock()
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].st.method != rows[j].st.method {
			return rows[i].st.method < rows[j].st.method
		}
		return rows[i].st.queue < rows[j].st.queue
	})

	var pb promtext.Buf
	head, sample := pb.Head, pb.Sample
	flush := func() error {
		_, err := bw.Write(pb.B)
		pb.B = pb.B[:0]
		return err
	}
	ql := func(r *qrow) []byte {
		return promtext.Labels(nil, protocol.LabelMethod, r.st.method, protocol.LabelQueue, r.st.queue)
	}

	head(protocol.MetricTasks, "Tasks that reached an outcome, by method, queue and outcome.", "counter")
	for i := range rows {
		for o := 0; o < nOutcomes; o++ {
			l := promtext.Labels(ql(&rows[i]), protocol.LabelOutcome, outcomeNames[o])
			sample(protocol.MetricTasks, l, float64(rows[i].st.out[o]))
		}
	}
	head(protocol.MetricTasksRefused, "Requests refused at a limit (queue full, too many in flight, shutting down); the method of a refused task is not always known.", "counter")
	sample(protocol.MetricTasksRefused, nil, float64(s.Rejected))
	head(protocol.MetricTasksAccepted, "Tasks accepted (calls, notifications and submits).", "counter")
	sample(protocol.MetricTasksAccepted, nil, float64(s.Accepted))
	head(protocol.MetricQueued, "Tasks waiting in a queue, by method and queue.", "gauge")
	for i := range rows {
		if rows[i].hasQueue {
			sample(protocol.MetricQueued, ql(&rows[i]), float64(rows[i].depth))
		}
	}
	head(protocol.MetricOldestAge, "Age of the oldest task waiting in a queue (0 when empty), by method and queue.", "gauge")
	for i := range rows {
		if rows[i].hasQueue {
			sample(protocol.MetricOldestAge, ql(&rows[i]), rows[i].oldestAge)
		}
	}
	head(protocol.MetricScheduled, "Tasks held back until a time (delay, eta, retry backoff).", "gauge")
	sample(protocol.MetricScheduled, nil, float64(s.Scheduled))
	head(protocol.MetricRunning, "Tasks held by nodes (sent, started or not).", "gauge")
	sample(protocol.MetricRunning, nil, float64(s.Running))
	head(protocol.MetricNodes, "Connected nodes.", "gauge")
	sample(protocol.MetricNodes, nil, float64(s.Nodes))
	head(protocol.MetricClients, "Connected peers other than nodes.", "gauge")
	sample(protocol.MetricClients, nil, float64(s.Clients))
	head(protocol.MetricHeapBytes, "Bytes of the process's heap held by objects, live or not yet swept (what the memory budget bounds).", "gauge")
	sample(protocol.MetricHeapBytes, nil, float64(heapObjectBytes()))
	if err := flush(); err != nil {
		return err
	}
	hists := []struct {
		name, help string
		get        func(*qstats) *promtext.Hist
	}{
		{protocol.MetricQueuedSeconds, "Time a task waited in its queue before a hand-out, by method.", func(s *qstats) *promtext.Hist { return &s.queued }},
		{protocol.MetricRunningSeconds, "Time from a hand-out to the node's answer, by method.", func(s *qstats) *promtext.Hist { return &s.running }},
		{protocol.MetricTotalSeconds, "Time from acceptance to the end of a finished task, by method.", func(s *qstats) *promtext.Hist { return &s.total }},
	}
	for _, hd := range hists {
		head(hd.name, hd.help, "histogram")
		for i := range rows {
			pb.Hist(hd.name, ql(&rows[i]), hd.get(&rows[i].st))
		}
		if err := flush(); err != nil {
			return err
		}
	}
	if durable {
		head(protocol.MetricStoreWrites, "Tasks written to the store (durable mode).", "counter")
		sample(protocol.MetricStoreWrites, nil, float64(s.Stored))
		head(protocol.MetricStoreErrors, "Task writes the store refused (durable mode); each such task was refused as queue full.", "counter")
		sample(protocol.MetricStoreErrors, nil, float64(s.StoreErrors))
		head(protocol.MetricStoreClaimed, "Tasks taken from the store's queues (durable mode).", "counter")
		sample(protocol.MetricStoreClaimed, nil, float64(s.Claimed))
	}
	if err := flush(); err != nil {
		return err
	}
	return bw.Flush()
}

// heapObjectBytes reads the heap held by objects (runtime/metrics), without forcing a
// collection.
func heapObjectBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
