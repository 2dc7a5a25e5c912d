package broker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/zerotask/zerotask/store"
)

// The goroutines of durable mode (see durable.go), one type per loop, each with its own file
// and the same start/shutdown shape (durLoop):
//
//   - holder (durable_holder.go): writes accepted tasks (Hold) and settles their submits;
//   - claimer (durable_claimer.go): claims store tasks for queues with idle nodes;
//   - heartbeat (durable_heartbeat.go): renews the broker's lease;
//   - finisher (durable_finisher.go): writes results, then acks, give-backs and running marks;
//   - lookups (durable_lookups.go): answer status and result requests from the store, one
//     goroutine each, bounded by MaxWaiting.
//
// Each store call is made without Broker.mu and bounded by Config.StoreTimeout. A call in
// flight when its loop is told to stop is finished, not cancelled: its outcome (tasks
// claimed, a hold written) must reach the routing state, whatever the stop.

// durLoop is the start/shutdown shape of a durable-mode goroutine: run gets quit, closed by
// shutdown, which then waits for run to return.
type durLoop struct {
	quit   chan struct{}
	exited chan struct{}
}

func (l *durLoop) start(run func(quit <-chan struct{})) {
	l.quit = make(chan struct{})
	l.exited = make(chan struct{})
	go func() {
		defer close(l.exited)
		run(l.quit)
	}()
}

// startTicking starts a loop that calls f every interval until it stops.
func (l *durLoop) startTicking(every time.Duration, f func()) {
	l.start(func(quit <-chan struct{}) {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
			}
			f()
		}
	})
}

// startKicked starts a loop that calls work(quit, false) on each kick, and work(quit, true)
// once when it stops.
func (l *durLoop) startKicked(kick <-chan struct{}, work func(quit <-chan struct{}, last bool)) {
	l.start(func(quit <-chan struct{}) {
		for {
			select {
			case <-quit:
				work(quit, true)
				return
			case <-kick:
				work(quit, false)
			}
		}
	})
}

// shutdown stops the loop and waits for it (a loop never started is a no-op).
func (l *durLoop) shutdown() {
	if l.quit == nil {
		return
	}
	close(l.quit)
	<-l.exited
}

// storeCtx bounds one store call by Config.StoreTimeout.
func (b *Broker) storeCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), b.cfg.StoreTimeout)
}

// policyChecker is a store that can check its server's eviction policy (store.Redis).
type policyChecker interface {
	CheckMaxmemoryPolicy(ctx context.Context) error
}

// openDurable prepares durable mode at New: the eviction policy check and the recovery of what
// an earlier run under the same owner held.
func (b *Broker) openDurable() error {
	cfg := &b.cfg
	if cfg.StoreOwner == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "localhost"
		}
		cfg.StoreOwner = "broker:" + host + ":" + b.Addr()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*cfg.StoreTimeout)
	defer cancel()
	if pc, ok := cfg.Store.(policyChecker); ok {
		if err := pc.CheckMaxmemoryPolicy(ctx); err != nil {
			return fmt.Errorf("broker: store: %w", err)
		}
	}
	b.c.dur = newDurable(cfg.Store, cfg.StoreOwner, cfg.Logger)
	if err := b.register(cfg.StoreTakeover); err != nil {
		return err
	}
	b.dur = &durLoops{
		holder:    holder{b: b},
		claimer:   claimer{b: b},
		heartbeat: heartbeat{b: b},
		finisher:  finisher{b: b},
		lookups:   lookups{b: b},
	}
	b.c.ask = b.dur.lookups.start
	if as, ok := cfg.Store.(archiveStore); ok && b.c.arch.enabled() {
		// The archive lives in the store, shared by the brokers on it; none in memory.
		b.c.darch = as
		b.c.dlim = store.ArchiveLimits{Max: cfg.ArchiveMax, MaxBytes: cfg.ArchiveMaxBytes, TTL: cfg.ArchiveTTL}
		b.c.arch.max = -1
	}
	if err := b.loadPaused(); err != nil {
		return fmt.Errorf("broker: store: read the paused queues: %w", err)
	}
	return nil
}

// A starting broker that finds its owner id's lease live probes it: it looks again after
// livenessProbe (renewals come every renewInterval, and every hold and claim renews too); a
// lease whose end has moved on by more than probeSlack is renewed by a live broker, one whose
// end stands still belongs to a run that is gone (a kill -9), whose tasks are taken back at
// once. takeoverMax bounds how long StoreTakeover waits for a live broker to stop.
const (
	livenessProbe = 5 * renewInterval / 2
	probeSlack    = renewInterval / 2
	takeoverMax   = 10 * time.Minute
)

// register starts a run of the broker's owner id in the store (store.Register), which gives
// back what an earlier run held. An earlier run whose lease is still live is probed (see
// livenessProbe): a dead one is taken over at once; a live one (another broker with this
// owner id: two would keep each other's lease alive) makes New fail, unless takeover: then
// the broker waits until that one stops renewing (up to takeoverMax).
func (b *Broker) register(takeover bool) error {
	d := b.c.dur
	deadline := time.Now().Add(takeoverMax)
	force := false
	var seenEnd time.Time // the live lease's end when last seen
	for {
		sent := d.mono()
		ctx, cancel := b.storeCtx()
		run, n, err := d.st.Register(ctx, d.name, force)
		cancel()
		var live *store.OwnerLiveError
		switch {
		case err == nil:
			d.run.Store(&run)
			d.leaseUntil = sent + int64(b.lease())*3/4
			if n > 0 {
				b.cfg.Logger.Info("broker: tasks of an earlier run are back in the store's queues", "owner", d.name, "tasks", n)
			}
			return nil
		case errors.As(err, &live):
			end := time.Now().Add(live.Left)
			switch {
			case seenEnd.IsZero():
			case !end.After(seenEnd.Add(probeSlack)):
				force = true // not renewed since: its broker is gone
				continue
			case !takeover || time.Now().After(deadline):
				return fmt.Errorf("broker: store: owner id %q is in use by a live broker (its lease is being renewed; Config.StoreTakeover, zerotask broker --takeover, waits for it to stop): %w", d.name, err)
			}
			seenEnd = end
			time.Sleep(livenessProbe) // the probe itself: the time between two looks
		default:
			return fmt.Errorf("broker: store: register owner id %q: %w", d.name, err)
		}
	}
}

// lostLease is called by a loop whose write was fenced: the store gave the tasks of run away
// (its lease ran out, on Redis's clock, while this broker could not renew it). The broker
// forgets every task it had from the store, so that it hands none of them out again (another
// broker runs them now; answers from its nodes for them are stale), and starts a new run to
// go on (its writes under the old run are refused).
func (b *Broker) lostLease(run string) {
	d := b.c.dur
	d.fenceMu.Lock()
	defer d.fenceMu.Unlock()
	if d.owner() != run {
		return // handled already
	}
	b.mu.Lock()
	n := b.c.dropStored(run)
	b.c.flush()
	b.mu.Unlock()
	b.cfg.Logger.Error("broker: store: this broker lost its lease: its tasks were given to other brokers; it forgot them and starts a new run", "run", run, "tasks", n)
	ctx, cancel := b.storeCtx()
	defer cancel()
	sent := d.mono()
	next, _, err := d.st.Register(ctx, d.name, false)
	if err != nil {
		b.cfg.Logger.Error("broker: store: starting a new run failed; writes are refused until one starts", "err", err)
		return
	}
	d.run.Store(&next)
	b.mu.Lock()
	b.c.leaseConfirmed(sent, b.lease())
	b.c.flush()
	b.mu.Unlock()
}

// durLoops are the goroutines of durable mode.
type durLoops struct {
	holder    holder
	claimer   claimer
	heartbeat heartbeat
	finisher  finisher
	lookups   lookups
}

// startDurable starts durable mode's goroutines when Serve starts.
func (b *Broker) startDurable() {
	d := b.dur
	d.lookups.init()
	d.finisher.start()
	d.holder.start()
	d.claimer.start()
	d.heartbeat.start()
}

// closeDurable ends durable mode when Serve ends: the last results and acks are written, then
// everything the broker still holds in the store goes back to its queues (Recover) for the
// next run or another broker.
func (b *Broker) closeDurable() {
	if b.c.dur == nil {
		return
	}
	d := b.dur
	b.pw.shutdown()
	d.claimer.shutdown()
	d.holder.shutdown()
	d.lookups.shutdown()
	d.finisher.shutdown()
	d.heartbeat.shutdown()
	ctx, cancel := b.storeCtx()
	defer cancel()
	n, err := b.c.dur.st.Recover(ctx, b.c.dur.owner())
	if err != nil {
		b.cfg.Logger.Warn("broker: store: giving back the tasks still held failed: they come back when the lease runs out or at the next start", "err", err)
		return
	}
	if n > 0 {
		b.cfg.Logger.Info("broker: tasks still held went back to the store's queues", "tasks", n)
	}
}

// errLog logs a failing store at most once a second, with the count of what was hit.
type errLog struct {
	last atomic.Int64
}

func (e *errLog) log(b *Broker, msg string, err error, n int) {
	now := time.Now().UnixNano()
	if last := e.last.Load(); now-last < int64(time.Second) {
		return
	}
	e.last.Store(now)
	b.cfg.Logger.Error(msg, "err", err, "tasks", n)
}
