package node

import (
	"time"
)

// Credit window sizing (docs/protocol.md, "Credit that sizes itself").
//
// The window is how many tasks the node lets the broker have on their way to it or waiting in
// it: held (queued and running) plus credit granted and not used. A window of Concurrency keeps
// every worker busy only if a new task arrives the instant a worker frees; in fact the next
// task arrives one round trip (node -> broker -> node) after the credit for it leaves, and a
// worker runs rtt/svc tasks in that time. So the window covers one round trip at the node's
// current service rate, with a gain for the credit that is sent in batches:
//
//	window = Concurrency + max(1, ceil(windowGain * Concurrency * rtt / svc))
//
// clamped to [Concurrency, Concurrency+Prefetch] (Prefetch is the upper bound). svc is a moving
// average of how long one task keeps a worker (a sample counting as at most svcJump times it); rtt is the smallest of the last rttSamples
// round trips of broker.credit sent as a request (the broker answers it at once), probed at
// most every rttProbeEvery while the node grants credit. Slow tasks make the window shrink to
// Concurrency + 1: the node holds one task beyond its slots, and the rest stay at the broker
// for whichever node frees first. Until both are measured the window is 2 x Concurrency (capped).
const (
	// windowGain covers the round trip four times over: credit leaves in batches (about half the
	// window at a time), and the round trip measured is the fastest one seen, a lone probe's,
	// where under load a grant waits behind the results it travels with and the hand-outs come
	// back behind a busy broker's other work (docs/perf.md, "CPU per task, second round"). Slow
	// tasks are not affected: their window stays one task beyond the slots.
	windowGain = 4
	// svcShift sets the moving average of the service time: each task moves it by 1/8.
	svcShift = 3
	// svcJump bounds one sample: it counts as at most svcJump times the average, so one task
	// that was descheduled or met a GC pause (a millisecond against 100 ns of add) moves the
	// average by less than 2x instead of shrinking a window of thousands to a handful for
	// the time the average takes to come back; tasks that really turned slow still show
	// within about 20 samples (every task is timed then).
	svcJump = 8
	// rttSamples is how many round-trip samples the minimum is taken over.
	rttSamples = 8
	// rttProbeEvery is the shortest time between two round-trip probes.
	rttProbeEvery = 50 * time.Millisecond
)

// probePrefix starts the id of a credit grant sent as a round-trip probe ("credit-<n>").
const probePrefix = "credit-"

// window sizes the node's credit. It belongs to the outbox (outbox.mu held for every call).
type window struct {
	conc  int  // Concurrency: the lower bound
	max   int  // Concurrency + Prefetch: the upper bound
	size  int  // the current window
	fixed bool // size stays at max (Config.FixedCredit)

	svc int64 // moving average of a task's service time, ns (0: none measured)

	rtt     [rttSamples]int64 // the last round trips, ns (0: empty slot)
	rttNext int               // the slot the next sample goes to
	rttMin  int64             // the smallest of rtt (0: none)

	probeSeq  uint64    // id of the last probe sent
	probeOpen bool      // a probe is on its way (its answer not seen yet)
	probeAt   time.Time // when the last probe was packed
}

// init sizes the window for conc workers and prefetch tasks beyond them at most; fixed keeps
// it at that bound (Config.FixedCredit).
func (w *window) init(conc, prefetch int, fixed bool) {
	w.conc = conc
	w.max = conc + prefetch
	w.fixed = fixed
	w.size = min(w.max, 2*conc)
	if fixed {
		w.size = w.max
	}
}

// served records the service time of one task.
func (w *window) served(d time.Duration) {
	ns := max(int64(d), 1)
	if w.svc == 0 {
		w.svc = ns
	} else {
		w.svc += (min(ns, svcJump*w.svc) - w.svc) >> svcShift
		if w.svc <= 0 {
			w.svc = 1
		}
	}
	w.resize()
}

// probeDue reports whether the next credit grant should be sent as a probe (a request the
// broker answers), and if so takes its id.
func (w *window) probeDue(now time.Time) (uint64, bool) {
	if w.fixed {
		return 0, false
	}
	if w.probeOpen && now.Sub(w.probeAt) < 10*rttProbeEvery {
		return 0, false // wait for the answer (a lost one is given up after a while)
	}
	if !w.probeAt.IsZero() && now.Sub(w.probeAt) < rttProbeEvery {
		return 0, false
	}
	w.probeSeq++
	w.probeOpen, w.probeAt = true, now
	return w.probeSeq, true
}

// answered records the broker's answer to probe seq, received at now.
func (w *window) answered(seq uint64, now time.Time) {
	if !w.probeOpen || seq != w.probeSeq {
		return // late, or of an earlier connection
	}
	w.probeOpen = false
	w.rtt[w.rttNext] = max(int64(now.Sub(w.probeAt)), 1)
	w.rttNext = (w.rttNext + 1) % rttSamples
	w.rttMin = 0
	for _, r := range w.rtt {
		if r > 0 && (w.rttMin == 0 || r < w.rttMin) {
			w.rttMin = r
		}
	}
	w.resize()
}

// reset forgets an open probe (a new connection: its answer will not come).
func (w *window) reset() { w.probeOpen = false }

func (w *window) resize() {
	if w.fixed || w.svc == 0 || w.rttMin == 0 {
		return
	}
	// windowGain * conc * rtt / svc, rounded up, without overflow for any sane figures: rtt is
	// below a minute (6e10 ns) and conc below 2^20.
	extra := (windowGain*int64(w.conc)*w.rttMin + w.svc - 1) / w.svc
	size := int64(w.conc) + max(extra, 1)
	w.size = int(min(size, int64(w.max)))
}
