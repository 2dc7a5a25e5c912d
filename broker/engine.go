package broker

import (
	"context"
	"time"

	"github.com/zerotask/zerotask/zmtp"
)

// Engine is the broker's routing state without sockets: messages go in as a ROUTER receives
// them (the peer's routing identity first, then an optional empty delimiter frame, then the
// body), and every message the broker sends comes out through the function given to
// NewEngine, in the same shape. It is what a Broker runs, minus the network, the PUB socket
// and the goroutines: it exists for fuzzing (the cross-layer targets in package fuzz) and for
// tests that drive the broker message by message.
//
// An Engine is not safe for concurrent use. User broker.* tasks run synchronously, at the end
// of the Receive call that queued them.
type Engine struct {
	c    *core
	cfg  Config
	jobs []*job
	out  engineSender
}

// NewEngine validates cfg (Listen and Pub are not used) and returns an Engine whose sent
// messages go to out. The frames passed to out are valid only during the call.
func NewEngine(cfg Config, out func(frames [][]byte)) (*Engine, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	cfg.epoch = "00000000"
	h := &Engine{cfg: cfg, out: engineSender{out}}
	h.c = newCore(&h.cfg, h.out, nil)
	if err := h.c.initLimits(); err != nil {
		return nil, err
	}
	if err := h.c.checkSchedules(); err != nil {
		return nil, err
	}
	h.c.initSchedules()
	h.c.jobs = func(j *job) bool {
		if len(h.jobs) >= h.cfg.BrokerTaskQueue {
			return false
		}
		h.jobs = append(h.jobs, j)
		return true
	}
	return h, nil
}

// engineSender hands the ROUTER's messages to the Engine's function.
type engineSender struct{ f func([][]byte) }

func (s engineSender) TrySend(m *zmtp.Msg) error {
	if s.f != nil {
		s.f(m.Frames)
	}
	return nil
}

// Receive routes one message (identity first), runs the broker tasks it queued, and flushes
// what the broker has to send, as the routing loop does when nothing more is received.
func (h *Engine) Receive(frames [][]byte) {
	var m zmtp.Msg
	m.Frames = frames
	h.c.handle(&m)
	h.runJobs()
	h.c.flush()
}

// runJobs runs the user broker tasks queued by the last message.
func (h *Engine) runJobs() {
	for len(h.jobs) > 0 {
		j := h.jobs[0]
		h.jobs[0] = nil
		h.jobs = h.jobs[1:]
		res, err := j.call(context.Background(), h.cfg.Dispatcher)
		h.c.jobDone(j, res, err)
	}
	h.jobs = h.jobs[:0]
}

// Disconnect applies the loss of the peer with this identity, as a ZMTP disconnect does (a
// node's tasks go back to their queues).
func (h *Engine) Disconnect(identity []byte) {
	h.c.peerGone(identity)
	h.c.flush()
}

// Tick runs the timers as of now: result TTLs and waits, delayed tasks, deadlines, blocked
// peers.
func (h *Engine) Tick(now time.Time) {
	h.c.tick(now.UnixNano())
}

// Stats returns the counters, as Broker.Stats does.
func (h *Engine) Stats() Stats { return h.c.stats() }
