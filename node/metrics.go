package node

import (
	"bufio"
	"errors"
	"io"
	"sort"
	"time"

	"github.com/zerotask/zerotask/dispatch"
	"github.com/zerotask/zerotask/internal/promtext"
	"github.com/zerotask/zerotask/protocol"
)

// Metrics (Config.Metrics). Each worker counts its own tasks in place, under the mutex it
// already takes after every task, so workers never share a counter; WriteMetrics merges them
// on a scrape. Every handler is timed only when metrics are on (two clock reads per task).

// methodStats are one method's counters in one worker.
type methodStats struct {
	succeeded, failed, panics uint64
	handler                   promtext.Hist
}

// maxMethodStats bounds the methods a worker keeps counters for; past it, the methods share
// one entry labelled protocol.MetricOtherMethod (a broker may send methods the node does not
// serve, each answered with an error).
const maxMethodStats = 1024

// observe counts a finished task of method (w.mu held).
func (w *worker) observe(method []byte, d time.Duration, err error) {
	s := w.ms[string(method)]
	if s == nil {
		if len(w.ms) >= maxMethodStats {
			method = []byte(protocol.MetricOtherMethod)
			s = w.ms[protocol.MetricOtherMethod]
		}
		if s == nil {
			if w.ms == nil {
				w.ms = make(map[string]*methodStats)
			}
			s = new(methodStats)
			w.ms[string(method)] = s
		}
	}
	s.handler.Observe(int64(d))
	if err == nil {
		s.succeeded++
		return
	}
	s.failed++
	if errors.Is(err, dispatch.ErrPanicked) {
		s.panics++
	}
}

// WriteMetrics writes the node's metrics in the Prometheus text format (version 0.0.4). The
// per-method series are there only with Config.Metrics.
func (n *Node) WriteMetrics(w io.Writer) error { return WriteMetrics(w, n) }

// WriteMetrics writes the metrics of several nodes of one process (one per broker) as one
// node's: their counters summed.
func WriteMetrics(w io.Writer, nodes ...*Node) error {
	all := make(map[string]*methodStats)
	running := 0
	for _, n := range nodes {
		running += n.Stats().Running
		for _, wk := range n.workers {
			wk.mu.Lock()
			for m, s := range wk.ms {
				a := all[m]
				if a == nil {
					a = new(methodStats)
					all[m] = a
				}
				a.succeeded += s.succeeded
				a.failed += s.failed
				a.panics += s.panics
				for i := range s.handler.Counts {
					a.handler.Counts[i] += s.handler.Counts[i]
				}
				a.handler.SumNS += s.handler.SumNS
			}
			wk.mu.Unlock()
		}
	}
	methods := make([]string, 0, len(all))
	for m := range all {
		methods = append(methods, m)
	}
	sort.Strings(methods)

	var b promtext.Buf
	b.Head(protocol.MetricNodeRunning, "Handlers running now.", "gauge")
	b.Sample(protocol.MetricNodeRunning, nil, float64(running))
	b.Head(protocol.MetricNodeTasks, "Tasks whose handler returned, by method and outcome (succeeded, failed).", "counter")
	for _, m := range methods {
		l := promtext.Labels(nil, protocol.LabelMethod, m)
		b.Sample(protocol.MetricNodeTasks, promtext.Labels(l, protocol.LabelOutcome, protocol.OutcomeSucceeded), float64(all[m].succeeded))
		b.Sample(protocol.MetricNodeTasks, promtext.Labels(l, protocol.LabelOutcome, protocol.OutcomeFailed), float64(all[m].failed))
	}
	b.Head(protocol.MetricNodePanics, "Handlers that panicked, by method.", "counter")
	for _, m := range methods {
		b.Sample(protocol.MetricNodePanics, promtext.Labels(nil, protocol.LabelMethod, m), float64(all[m].panics))
	}
	b.Head(protocol.MetricNodeHandlerSeconds, "Time a handler ran, by method.", "histogram")
	for _, m := range methods {
		b.Hist(protocol.MetricNodeHandlerSeconds, promtext.Labels(nil, protocol.LabelMethod, m), &all[m].handler)
	}
	bw := bufio.NewWriter(w)
	if _, err := bw.Write(b.B); err != nil {
		return err
	}
	return bw.Flush()
}
