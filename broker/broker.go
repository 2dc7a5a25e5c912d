package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zerotask/zerotask/protocol"
	"github.com/zerotask/zerotask/zmtp"
)

// Broker binds a ROUTER (clients and nodes) and a PUB (notifications), queues tasks, hands them
// to nodes by credit and routes results back. Create it with New, run it with Serve, stop it
// with Shutdown.
type Broker struct {
	cfg    Config
	router *zmtp.Socket
	pub    *zmtp.Socket // nil when disabled

	// mu guards the routing state c (lock order: mu, then zmtp's own locks inside TrySend and
	// Recv; never the reverse).
	mu sync.Mutex
	c  *core

	// User broker tasks (guarded by mu).
	jobActive int
	jobQ      []*job
	jobWG     sync.WaitGroup
	jobCtx    context.Context
	jobCancel context.CancelFunc

	// gate opens when Serve starts routing (or the sockets close without it): the ROUTER's
	// readers, which run the routing (receive), wait for it. routing (guarded by mu) is true
	// while Serve routes: messages read before are held at the gate, after are dropped.
	gate     chan struct{}
	gateOnce sync.Once
	routing  bool

	serving   atomic.Bool
	shutdown  atomic.Bool
	cancel    context.CancelFunc // ends Serve (guarded by mu)
	stopped   bool               // Shutdown asked Serve to end (guarded by mu)
	idleSince time.Time          // when a shutdown found nothing running any more (guarded by mu)
	drained   chan struct{}      // closed by the ticker once Shutdown's drain is complete
	done      chan struct{}      // closed when Serve has returned
	sent      atomic.Uint64      // messages accepted by the ROUTER's TrySend (for the linger)
	closeMu   sync.Once

	// dur is durable mode's goroutines (Config.Store), nil without a store.
	dur *durLoops
	pw  *pauseWriter // durable mode: writes pauses to the store (durable_pause.go)
}

// socketOptions are the zmtp options the ROUTER and the PUB socket share. Subscribers are held
// to the ROUTER's liveness rule: a SUB answers PINGs, and a dead or silent one (a ZMTP 3.0 SUB
// sends nothing after subscribing) does not keep its connection slot.
func (cfg *Config) socketOptions() zmtp.Options {
	return zmtp.Options{
		SendHWM:           cfg.SendHWM,
		MaxMsgSize:        cfg.MaxMsgSize,
		MaxConns:          cfg.MaxConns,
		MaxConnsPerAddr:   max(cfg.MaxConnsPerAddr, 0),
		HeartbeatInterval: cfg.HeartbeatInterval,
		HeartbeatTimeout:  3 * cfg.HeartbeatInterval,
		Security:          cfg.Security,
		Logger:            cfg.Logger,
	}
}

// New validates cfg, binds the ROUTER and the PUB at once (so port 0 works and Addr is known)
// and returns the broker, ready to Serve.
func New(cfg Config) (*Broker, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := cfg.protected(); err != nil {
		return nil, err
	}
	var e [4]byte
	if _, err := rand.Read(e[:]); err != nil {
		return nil, fmt.Errorf("broker: epoch: %w", err)
	}
	cfg.epoch = hex.EncodeToString(e[:])
	b := &Broker{
		cfg:     cfg,
		gate:    make(chan struct{}),
		drained: make(chan struct{}),
		done:    make(chan struct{}),
	}
	b.jobCtx, b.jobCancel = context.WithCancel(context.Background())
	ropts := cfg.socketOptions()
	// A peer's disconnection arrives in the receive stream after its last message: a node's
	// last results are handled before its tasks are given back.
	ropts.RouterNotify = zmtp.NotifyDisconnect
	// Identities of the ROUTER's own making: no peer can claim a node's identity to lock it
	// out or to be sent its replies, authenticated or not.
	ropts.RouterAssignIdentities = true
	// Each connection's reader routes what it reads (receive), under mu: a request crosses
	// the broker on the goroutine that read it and leaves by a direct write when its peer's
	// connection is idle, with no hand-off between goroutines.
	ropts.Handler = b.receive
	b.router = zmtp.NewRouter(ropts)
	if err := b.router.Bind(cfg.Listen); err != nil {
		b.router.Close()
		b.jobCancel()
		return nil, fmt.Errorf("broker: bind %s: %w", cfg.Listen, err)
	}
	var pub sender
	if cfg.Pub != PubDisabled {
		b.pub = zmtp.NewPub(cfg.socketOptions())
		if err := b.pub.Bind(cfg.Pub); err != nil {
			b.router.Close()
			b.pub.Close()
			b.jobCancel()
			return nil, fmt.Errorf("broker: bind %s: %w", cfg.Pub, err)
		}
		pub = b.pub
	}
	b.c = newCore(&b.cfg, countingSender{b.router, &b.sent}, pub)
	if err := b.c.initLimits(); err != nil {
		b.closeSockets()
		return nil, err
	}
	b.c.jobs = b.startJob
	b.c.handshakes = func() uint64 {
		n := b.router.Stats().HandshakeFailures
		if b.pub != nil {
			n += b.pub.Stats().HandshakeFailures
		}
		return n
	}
	b.c.closePeer = func(ident []byte) {
		// Off the lock: closing a connection is a syscall.
		id := append([]byte(nil), ident...)
		go b.router.ClosePeer(id, errViolationClose)
	}
	b.c.closeAfterReply = func(ident []byte) {
		// The refusal was handed to the ROUTER just now and ClosePeer discards what is not
		// written yet: the close waits a moment so the peer reads why (the peer is marked
		// dropped meanwhile, so nothing more it sends is handled).
		id := append([]byte(nil), ident...)
		time.AfterFunc(replyGrace, func() { b.router.ClosePeer(id, errForbiddenClose) })
	}
	if err := b.c.checkSchedules(); err != nil {
		b.closeSockets()
		return nil, err
	}
	if cfg.Store != nil {
		if err := b.openDurable(); err != nil {
			b.closeSockets()
			return nil, err
		}
	}
	b.c.initSchedules()
	return b, nil
}

// errForbiddenClose is why the broker closes the connection of a key that tried to act as a
// node without the role.
var errForbiddenClose = errors.New("broker: a key without the node role said hello as a node")

// replyGrace is how long a connection closed for a refusal stays open for the refusal to be
// written.
const replyGrace = 200 * time.Millisecond

// errViolationClose is why the broker closes a node's connection for a protocol violation.
var errViolationClose = errors.New("broker: protocol violation")

// countingSender counts the messages the ROUTER accepted, so Shutdown can wait until zmtp
// has written them (zmtp does not linger on Close).
type countingSender struct {
	s *zmtp.Socket
	n *atomic.Uint64
}

func (s countingSender) TrySend(m *zmtp.Msg) error {
	err := s.s.TrySend(m)
	if err == nil {
		s.n.Add(1)
	}
	return err
}

// Addr returns the resolved ROUTER endpoint, e.g. "tcp://127.0.0.1:40123".
func (b *Broker) Addr() string { return b.router.LastEndpoint() }

// PubAddr returns the resolved PUB endpoint, or "" when the PUB is disabled.
func (b *Broker) PubAddr() string {
	if b.pub == nil {
		return ""
	}
	return b.pub.LastEndpoint()
}

// Config returns the broker's configuration with its defaults filled in (StoreOwner included).
func (b *Broker) Config() Config { return b.cfg }

// ID returns the broker's epoch: 8 hex digits, the prefix of its public task ids.
func (b *Broker) ID() string { return b.cfg.epoch }

// Stats returns the broker's counters. It may be called at any time, from any goroutine.
func (b *Broker) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.c.stats()
}

// openGate lets the ROUTER's readers in (once).
func (b *Broker) openGate() { b.gateOnce.Do(func() { close(b.gate) }) }

// receive routes a batch of messages one ROUTER connection has read (the socket's Handler, on
// that connection's reader goroutine): handled under one hold of mu, then the pending arrays
// flushed, so a burst leaves in as few messages as possible and a lone call leaves at once.
// Connections route concurrently, one batch at a time each, taking turns at mu.
func (b *Broker) receive(msgs []*zmtp.Msg) {
	<-b.gate
	b.mu.Lock()
	if !b.routing {
		b.mu.Unlock()
		for _, m := range msgs {
			m.Release()
		}
		return
	}
	b.c.clock = b.c.now()
	for i, m := range msgs {
		if i == 0 {
			b.c.msgClock = b.c.clock
		} else {
			b.c.msgClock = b.c.now()
		}
		if m.Notification() == zmtp.NotifyDisconnect {
			b.c.peerGone(m.Frames[0])
		} else {
			b.c.handle(m)
		}
		m.Release()
	}
	b.c.flush()
	b.c.msgClock = 0
	b.mu.Unlock()
}

// Serve routes messages until ctx ends or Shutdown completes, then closes the sockets. It
// returns ErrServerClosed after Shutdown, and ErrServerClosed wrapping ctx's error when ctx
// ended (errors.Is matches both).
func (b *Broker) Serve(ctx context.Context) error {
	if !b.serving.CompareAndSwap(false, true) {
		return ErrServing
	}
	defer close(b.done)
	if b.shutdown.Load() {
		b.closeSockets()
		return ErrServerClosed
	}
	sctx, cancel := context.WithCancel(ctx)
	b.mu.Lock()
	b.cancel = cancel
	if b.stopped {
		cancel()
	}
	b.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		b.tickLoop(sctx)
	}()
	if b.c.dur != nil {
		b.startDurable()
	}
	if st := b.c.scheduleStore(); st != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			scheduleSyncer{b: b, st: st}.run(sctx)
		}()
	}
	b.mu.Lock()
	b.routing = true
	b.mu.Unlock()
	b.openGate()
	<-sctx.Done()
	b.mu.Lock()
	b.routing = false
	b.mu.Unlock()
	cancel()
	wg.Wait()
	b.jobCancel()
	b.jobWG.Wait()
	b.closeDurable()
	b.closeSockets()
	if b.shutdown.Load() {
		return ErrServerClosed
	}
	return fmt.Errorf("%w: %w", ErrServerClosed, ctx.Err())
}

// tickLoop runs the timers and the PUB batches every Tick.
func (b *Broker) tickLoop(ctx context.Context) {
	t := time.NewTicker(b.cfg.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		b.mu.Lock()
		b.c.clock = b.c.now()
		b.c.tick(b.c.clock)
		if b.c.closing && b.c.running == 0 && b.jobActive == 0 && b.c.storing() == 0 {
			// Drained (no task at a node, no broker task, no task being written to the
			// store). The results stored during the shutdown stay readable until they are
			// read or ResultGrace has passed; then the waits still open are answered.
			if b.idleSince.IsZero() {
				b.idleSince = time.Now()
			}
			if b.c.unread <= 0 || time.Since(b.idleSince) >= b.cfg.ResultGrace {
				select {
				case <-b.drained:
				default:
					b.c.store.wakeAll()
					b.c.flush()
					close(b.drained)
				}
			}
		}
		b.mu.Unlock()
	}
}

// startJob runs a user broker task on a worker, or queues it (mu held). It reports false when
// the queue is full.
func (b *Broker) startJob(j *job) bool {
	if b.jobActive < b.cfg.BrokerTaskWorkers {
		b.jobActive++
		b.jobWG.Add(1)
		go b.runJobs(j)
		return true
	}
	if len(b.jobQ) >= b.cfg.BrokerTaskQueue {
		return false
	}
	b.jobQ = append(b.jobQ, j)
	return true
}

// runJobs runs j, then the queued jobs, until none is left.
func (b *Broker) runJobs(j *job) {
	defer b.jobWG.Done()
	for j != nil {
		res, err := j.call(b.jobCtx, b.cfg.Dispatcher)
		b.mu.Lock()
		b.c.jobDone(j, res, err)
		b.c.flush()
		j = nil
		if len(b.jobQ) > 0 {
			j = b.jobQ[0]
			b.jobQ[0] = nil
			b.jobQ = b.jobQ[1:]
		} else {
			b.jobActive--
		}
		b.mu.Unlock()
	}
}

// Shutdown stops the broker gracefully: new tasks are refused with CodeShuttingDown (queued and
// delayed ones too: their callers get CodeShuttingDown), nodes and clients are told
// (broker.shutdown on the PUB control topic, and to every connected DEALER peer on the ROUTER), the
// tasks running at nodes and the broker tasks may finish until ctx ends, and broker.status and
// broker.result keep answering: once nothing runs, the results stored during the shutdown stay
// readable until they are read or Config.ResultGrace has passed. Then the sockets close and Serve
// returns ErrServerClosed. It returns ctx's error when ctx ended before the drain was complete (the
// remaining callers then get CodeShuttingDown).
func (b *Broker) Shutdown(ctx context.Context) error {
	b.shutdown.Store(true)
	b.mu.Lock()
	b.c.beginClose()
	b.mu.Unlock()
	if !b.serving.Load() {
		b.closeSockets()
		return nil
	}
	var err error
	select {
	case <-b.drained:
	case <-b.done:
	case <-ctx.Done():
		err = ctx.Err()
		b.mu.Lock()
		b.c.abortRunning()
		b.c.store.wakeAll()
		b.c.flush()
		b.mu.Unlock()
	}
	b.linger(ctx)
	b.mu.Lock()
	b.stopped = true
	cancel := b.cancel
	b.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	select {
	case <-b.done:
	case <-ctx.Done():
		if err == nil {
			err = ctx.Err()
		}
	}
	return err
}

// maxLinger bounds how long Shutdown waits for zmtp to write the last replies.
const maxLinger = time.Second

// linger waits (at most maxLinger, or until ctx ends) until the ROUTER has written the
// messages handed to it, since zmtp drops unwritten messages on Close.
func (b *Broker) linger(ctx context.Context) {
	deadline := time.Now().Add(maxLinger)
	for b.router.Stats().MsgsOut < b.sent.Load() && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(time.Millisecond) // bounded wait for the writer goroutines, not synchronization
	}
}

func (b *Broker) closeSockets() {
	b.closeMu.Do(func() {
		b.openGate() // readers held there see routing off and drop what they read
		b.jobCancel()
		b.router.Close()
		if b.pub != nil {
			b.pub.Close()
		}
	})
}

// beginClose starts a graceful shutdown (mu held): refuse new tasks, answer the queued ones
// with CodeShuttingDown, wake the result waiters, and publish broker.shutdown.
func (c *core) beginClose() {
	if c.closing {
		return
	}
	c.closing = true
	c.unparkAll() // tasks waiting for their group go back to their queues, drained below
	for _, q := range c.queues {
		if q == nil {
			continue
		}
		for q.live > 0 {
			slot, t := c.popQueued(q)
			if t == nil {
				break
			}
			if c.staysStored(t) {
				c.release(slot, t) // kept in the store for the next run
				continue
			}
			c.end(slot, t, errShuttingDown, stFailure)
		}
	}
	c.drainScheduled(func(slot uint32, t *task) {
		if c.staysStored(t) {
			c.release(slot, t)
			return
		}
		c.end(slot, t, errShuttingDown, stFailure)
	})
	// The waits on live tasks stay: the running tasks finish and answer them.
	c.publish()
	c.publishShutdown()
	c.flush()
	for _, p := range c.peers {
		if p.alive && !p.delim { // a REQ peer must get nothing it did not ask for
			c.send(p, false, shutdownNotice)
		}
	}
}

// shutdownNotice is the broker.shutdown notification, on the ROUTER and the PUB control topic.
var shutdownNotice = protocol.AppendShutdown(nil)

// abortRunning ends the tasks still held by nodes when Shutdown's context ends (mu held).
func (c *core) abortRunning() {
	c.eachHeld(func(p *peer, slot uint32, t *task) {
		if t.state == stRevoked {
			c.unlinkHeld(p, slot, t)
			c.freeTask(slot, t)
		} else if c.staysStored(t) {
			c.unlinkHeld(p, slot, t)
			c.release(slot, t) // the store gives it back when Serve ends
		} else {
			c.end(slot, t, errShuttingDown, stFailure)
		}
	})
	c.flush()
}

// drainScheduled empties the schedule, counting each task still scheduled out and passing it
// to f (mu held).
func (c *core) drainScheduled(f func(slot uint32, t *task)) {
	for len(c.sched) > 0 {
		e := c.sched.pop()
		if slot, t := c.scheduledAt(e.key); t != nil {
			c.unschedule(t)
			f(slot, t)
		}
	}
}

// eachHeld passes every task a live node holds to f, which may unlink or end it (mu held).
func (c *core) eachHeld(f func(p *peer, slot uint32, t *task)) {
	for _, p := range c.peers {
		if !p.alive || !p.node {
			continue
		}
		for slot := p.hhead; slot != noRef; {
			t := c.tasks.at(slot)
			next := t.nnext
			f(p, slot, t)
			slot = next
		}
	}
}
