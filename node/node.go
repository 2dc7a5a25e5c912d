package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zerotask/zerotask/dispatch"
	"github.com/zerotask/zerotask/internal/brokerlink"
	"github.com/zerotask/zerotask/protocol"
	"github.com/zerotask/zerotask/zmtp"
)

// Defaults for the zero values of Config (package protocol's).
const (
	DefaultBroker            = protocol.DefaultEndpoint
	DefaultSub               = protocol.DefaultPubEndpoint
	DefaultGracePeriod       = 30 * time.Second
	DefaultHeartbeatInterval = protocol.DefaultHeartbeatInterval
	DefaultMaxMsgSize        = protocol.DefaultMaxMsgSize
	// DefaultPrefetch is Config.Prefetch's default: the most tasks a node holds beyond its
	// concurrency, an upper bound for its credit window (package protocol's).
	DefaultPrefetch = protocol.DefaultPrefetch
	// DefaultMaxBatch is the number of members per outgoing message until the broker's hello
	// reply says otherwise (its max_batch).
	DefaultMaxBatch = protocol.DefaultMaxBatch
)

// CodeNoCredit is the JSON-RPC error code a node answers a task with when the broker sent it
// without credit while the node already holds Concurrency + Prefetch tasks. A broker that
// honours credit never sees it.
const CodeNoCredit = protocol.CodeNoCredit

// Codes of the errors a node answers with for a task that did not run to its end on its own
// (docs/reliability.md). The broker answers CodeExpired too, for tasks still queued at their
// deadline.
const (
	// CodeExpired: the task's deadline passed while it waited in the node for a free worker;
	// it was not run (the broker records it as EXPIRED).
	CodeExpired = protocol.CodeExpired
	// CodeDeadline: the handler's context ended at the task's deadline (the caller's timeout)
	// or at the method's time limit while it ran, and the handler failed.
	CodeDeadline = protocol.CodeDeadline
)

// maxQueues bounds Config.Queues; each name is bounded by protocol.MaxQueueName.
const maxQueues = 64

// runningDelay is how long a task runs before the node reports it with broker.running: tasks
// that finish sooner are never reported as running (their result is), so a stream of small tasks
// costs no running notices at all.
const runningDelay = time.Millisecond

// stopSendTimeout bounds how long a stopping node waits to send its last results and its bye
// once its handlers have returned.
const stopSendTimeout = 5 * time.Second

// Errors returned by New, Serve and Shutdown (the same shape as package broker's).
var (
	// ErrConfig reports an invalid Config value; the message names it.
	ErrConfig = errors.New("node: invalid config")
	// ErrServing is returned by a second call to Serve: a Node serves once.
	ErrServing = errors.New("node: already serving")
	// ErrServerClosed is returned by Serve after Shutdown (and, wrapping the context's error,
	// when Serve's context ends).
	ErrServerClosed = errors.New("node: server closed")
)

// Config configures a Node. The zero value works: every zero field takes the default written
// beside it.
type Config struct {
	// Broker is the broker's ROUTER endpoint. Default "tcp://127.0.0.1:5555".
	Broker string
	// Sub is the broker's PUB endpoint, for revokes. Default "tcp://127.0.0.1:5556"; "none"
	// disables it (revokes then do not reach the node).
	Sub string
	// Security is the ZMTP security mechanism of the connections to the broker (DEALER and
	// SUB), typically zmtp.CurveClient with the broker's public key and the node's key pair.
	// Default (nil): NULL.
	Security zmtp.Mechanism
	// Dispatcher runs the tasks. Default dispatch.Default. Its methods (except broker.* and
	// rpc.* names) are announced in every hello; methods registered later are announced at the
	// next reconnection.
	Dispatcher *dispatch.Dispatcher
	// Name is how the node shows in broker.nodes and task records. Default "hostname-pid".
	Name string
	// Concurrency is the number of worker goroutines, hence the most handlers running at once.
	// Default runtime.NumCPU().
	Concurrency int
	// Prefetch bounds the credit granted beyond Concurrency: tasks that wait in the node for a
	// free worker. Within it the node sizes its credit by itself to cover one round trip to the
	// broker at its measured service rate (the package doc, "Credit"): small tasks get a deep
	// pipe, slow ones about one task beyond Concurrency, so no node hoards work another could
	// run. Default DefaultPrefetch; negative means 0 (never more than Concurrency).
	Prefetch int
	// FixedCredit turns the sizing off: the node always lets the broker have Concurrency +
	// Prefetch tasks (held plus credit), as with a hand-tuned window. Default false.
	FixedCredit bool
	// GracePeriod bounds how long a stopping node waits for its running handlers before it
	// cancels their contexts. Default 30s.
	GracePeriod time.Duration
	// HeartbeatInterval is the ZMTP heartbeat interval on the node's connections; a broker
	// silent for 3 intervals is taken as dead and the node reconnects. Default 1s.
	HeartbeatInterval time.Duration
	// MaxMsgSize bounds every message the node sends and receives, in bytes. Default 1 MiB
	// (the broker's default frame limit). The node announces it in its hello; a broker whose
	// own MaxMsgSize is larger refuses the node (docs/protocol.md, "Message sizes").
	MaxMsgSize int64
	// Queues names the broker queues the node takes tasks from (see docs/reliability.md).
	// Default: the default queue only ("default"). A node serves its dispatcher's methods in
	// each of these queues.
	Queues []string
	// TimeLimit bounds every run of a method registered without a dispatch.TimeLimit of its
	// own: the handler's context ends after that long and the task fails with CodeDeadline.
	// Default 0: no limit (the call's deadline, when it has one, still applies).
	TimeLimit time.Duration
	// Metrics times every handler and counts tasks per method for WriteMetrics (two clock
	// reads per task). Default false: WriteMetrics shows only the running handlers.
	Metrics bool
	// Logger receives the node's events. Default slog.Default().
	Logger *slog.Logger
}

// Stats are a node's counters, readable at any time.
type Stats struct {
	Running    int    // handlers running now
	MaxRunning int    // the most handlers that ever ran at once (never above Concurrency)
	Queued     int    // tasks received and waiting for a worker
	Credit     int    // credit granted to the broker and not yet used by a task
	Held       int    // tasks received and not finished (queued and running), read with Credit in one snapshot
	MaxHeld    int    // the most tasks ever held at once (never above Concurrency + Prefetch)
	Window     int    // the credit window now: tasks held plus credit the node lets the broker have
	ServiceNS  int64  // the moving average of a task's service time, ns (0: none yet)
	RoundTrip  int64  // the round trip to the broker the window is sized with, ns (0: none yet)
	Received   uint64 // tasks received
	Done       uint64 // tasks whose handler succeeded
	Failed     uint64 // tasks whose handler returned an error (revoked ones included)
	Revoked    uint64 // running or queued tasks hit by a broker.revoke
	NoCredit   uint64 // tasks refused with CodeNoCredit
	Hellos     uint64 // hellos sent (one per connection)
	Connected  bool   // whether the node is connected to a broker and has said hello
}

// Node is a ZeroTask worker. Create it with New, run it with Serve, stop it with Shutdown (or by
// ending Serve's context), as a Broker.
type Node struct {
	cfg      Config
	d        *dispatch.Dispatcher
	log      *slog.Logger
	capacity int    // Concurrency + Prefetch: the most tasks held plus credit outstanding
	identity []byte // fixed random routing identity of this process's DEALER

	q       taskQueue
	workers []*worker
	// inl runs the tasks the reader runs itself (runInline), one at a time; inline counts
	// those running, for the stop to wait for.
	inl    *worker
	inline sync.WaitGroup
	out    outbox

	running    atomic.Int64
	maxRunning atomic.Int64
	received   atomic.Uint64
	done       atomic.Uint64
	failed     atomic.Uint64
	revoked    atomic.Uint64
	noCredit   atomic.Uint64
	hellos     atomic.Uint64
	inlined    atomic.Uint64 // tasks run on the reader (runInline)

	started  atomic.Bool
	shutOnce sync.Once
	shut     chan struct{} // closed by Shutdown: stop
	hurry    chan struct{} // closed when Shutdown's context ends: cancel the running tasks
	hurried  sync.Once
	stopped  chan struct{} // closed when Serve has stopped (or would not start)
	dealer   *zmtp.Socket
	sub      *zmtp.Socket
}

// New checks cfg, fills in its defaults and returns a Node ready to Serve.
func New(cfg Config) (*Node, error) {
	if cfg.Broker == "" {
		cfg.Broker = DefaultBroker
	}
	if cfg.Sub == "" {
		cfg.Sub = DefaultSub
	}
	if cfg.Dispatcher == nil {
		cfg.Dispatcher = dispatch.Default
	}
	if cfg.Name == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "node"
		}
		cfg.Name = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if cfg.Prefetch == 0 {
		cfg.Prefetch = DefaultPrefetch
	} else if cfg.Prefetch < 0 {
		cfg.Prefetch = 0
	}
	if err := errors.Join(
		orDefault("Concurrency", &cfg.Concurrency, runtime.NumCPU()),
		orDefault("GracePeriod", &cfg.GracePeriod, DefaultGracePeriod),
		orDefault("HeartbeatInterval", &cfg.HeartbeatInterval, DefaultHeartbeatInterval),
		orDefault("MaxMsgSize", &cfg.MaxMsgSize, DefaultMaxMsgSize),
	); err != nil {
		return nil, err
	}
	if cfg.MaxMsgSize < 256 {
		return nil, fmt.Errorf("%w: MaxMsgSize %d < 256", ErrConfig, cfg.MaxMsgSize)
	}
	if cfg.TimeLimit < 0 {
		return nil, fmt.Errorf("%w: TimeLimit %v < 0", ErrConfig, cfg.TimeLimit)
	}
	if len(cfg.Queues) > maxQueues {
		return nil, fmt.Errorf("%w: %d Queues > %d", ErrConfig, len(cfg.Queues), maxQueues)
	}
	seen := make(map[string]bool, len(cfg.Queues))
	for _, q := range cfg.Queues {
		if q == "" || len(q) > protocol.MaxQueueName || seen[q] {
			return nil, fmt.Errorf("%w: queue name %q (empty, repeated, or longer than %d bytes)", ErrConfig, q, protocol.MaxQueueName)
		}
		seen[q] = true
	}
	cfg.Queues = append([]string(nil), cfg.Queues...)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	n := &Node{
		shut:     make(chan struct{}),
		hurry:    make(chan struct{}),
		stopped:  make(chan struct{}),
		cfg:      cfg,
		d:        cfg.Dispatcher,
		log:      cfg.Logger.With("node", cfg.Name),
		capacity: cfg.Concurrency + cfg.Prefetch,
		identity: newIdentity(),
	}
	n.q.init()
	n.q.workers = cfg.Concurrency
	n.out.init(n)
	n.workers = make([]*worker, cfg.Concurrency)
	for i := range n.workers {
		n.workers[i] = newWorker(n)
	}
	n.inl = newWorker(n)
	n.inl.timeAll = true
	return n, nil
}

// newIdentity returns a random routing identity, printable, that cannot start with a zero byte
// (ZMTP reserves those for identities a ROUTER generates).
func newIdentity() []byte {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return []byte("node-" + hex.EncodeToString(b[:]))
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	s := Stats{
		Running:    int(n.running.Load()),
		MaxRunning: int(n.maxRunning.Load()),
		Queued:     n.q.len(),
		Received:   n.received.Load(),
		Done:       n.done.Load(),
		Failed:     n.failed.Load(),
		Revoked:    n.revoked.Load(),
		NoCredit:   n.noCredit.Load(),
		Hellos:     n.hellos.Load(),
	}
	n.out.mu.Lock()
	s.Credit = n.out.outstanding
	s.Held = n.out.held
	s.MaxHeld = n.out.maxHeld
	s.Window = n.out.win.size
	s.ServiceNS = n.out.win.svc
	s.RoundTrip = n.out.win.rttMin
	s.Connected = n.out.ready
	n.out.mu.Unlock()
	return s
}

// Serve connects to the broker and serves tasks until ctx ends or Shutdown is called, then
// stops gracefully (see the package doc: running tasks may finish for up to
// Config.GracePeriod). It returns ErrServerClosed after Shutdown, and ErrServerClosed wrapping
// ctx's error when ctx ended (errors.Is matches both), as a Broker's Serve does; another error
// only when the sockets cannot be set up. A Node serves once: a second call returns
// ErrServing.
func (n *Node) Serve(ctx context.Context) (err error) {
	if !n.started.CompareAndSwap(false, true) {
		return ErrServing
	}
	defer close(n.stopped)
	select {
	case <-n.shut:
		return ErrServerClosed
	default:
	}
	// Handlers get the values of ctx but not its cancellation: a stopping node lets its
	// running tasks finish.
	base := context.WithoutCancel(ctx)
	for _, w := range n.workers {
		w.base = base
	}
	n.inl.base = base
	// life ends the node's own goroutines (readers, flusher) once the stop is complete.
	life, endLife := context.WithCancel(base)
	defer endLife()

	n.dealer = zmtp.NewSocket(zmtp.Dealer, zmtp.Options{
		Identity:          n.identity,
		HeartbeatInterval: n.cfg.HeartbeatInterval,
		MaxMsgSize:        n.cfg.MaxMsgSize,
		Security:          n.cfg.Security,
		Logger:            n.log,
		Monitor:           brokerlink.Monitor(n.log, "node", n.out.onConnect, n.out.onDisconnect),
		Handler:           n.receiveHandler(),
	})
	if err := n.dealer.Connect(n.cfg.Broker); err != nil {
		n.dealer.Close()
		return fmt.Errorf("node: connect %s: %w", n.cfg.Broker, err)
	}
	n.out.sock = n.dealer
	if n.cfg.Sub != protocol.NoEndpoint {
		n.sub = zmtp.NewSocket(zmtp.Sub, zmtp.Options{
			HeartbeatInterval: n.cfg.HeartbeatInterval,
			MaxMsgSize:        n.cfg.MaxMsgSize,
			Security:          n.cfg.Security,
			Logger:            n.log,
		})
		if err := n.sub.Subscribe([]byte("control")); err != nil {
			n.sub.Close()
			n.dealer.Close()
			return fmt.Errorf("node: subscribe: %w", err)
		}
		if err := n.sub.Connect(n.cfg.Sub); err != nil {
			n.sub.Close()
			n.dealer.Close()
			return fmt.Errorf("node: connect %s: %w", n.cfg.Sub, err)
		}
	}

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); n.out.loop(life) }()
	if n.sub != nil {
		wg.Add(1)
		go func() { defer wg.Done(); n.subLoop(life) }()
	}
	var workers sync.WaitGroup
	workers.Add(len(n.workers))
	for _, w := range n.workers {
		go func() { defer workers.Done(); w.loop() }()
	}
	workersDone := make(chan struct{})
	go func() { workers.Wait(); n.inline.Wait(); close(workersDone) }()

	select {
	case <-ctx.Done():
		err = fmt.Errorf("%w: %w", ErrServerClosed, ctx.Err())
	case <-n.shut:
		err = ErrServerClosed
	}
	n.log.Info("node: stopping", "running", n.running.Load(), "grace", n.cfg.GracePeriod)

	// 1. No more credit; tasks not started are dropped (the bye hands them back).
	n.out.stop()
	n.q.close(n)

	// 2. Let running handlers finish, for up to the grace period.
	grace := time.NewTimer(n.cfg.GracePeriod)
	select {
	case <-workersDone:
	case <-grace.C:
		n.hurryUp()
	case <-n.hurry:
	}
	select {
	case <-workersDone:
	default:
		n.log.Warn("node: grace period over, cancelling running tasks", "running", n.running.Load())
		n.out.abandonResults()
		for _, w := range n.workers {
			w.cancelRunning()
		}
		<-workersDone
	}
	grace.Stop()

	// 3. Send what is left and say bye, bounded.
	sendCtx, cancelSend := context.WithTimeout(life, stopSendTimeout)
	if !n.out.finish(sendCtx) {
		n.log.Warn("node: last results and bye not delivered (no connection to the broker, or it did not take them in time)")
	}
	cancelSend()

	// 4. Close: the readers' Recv return ErrClosed, the flusher sees life end.
	endLife()
	n.dealer.Close()
	if n.sub != nil {
		n.sub.Close()
	}
	wg.Wait()
	n.log.Info("node: stopped", "done", n.done.Load(), "failed", n.failed.Load())
	return err
}

// Shutdown stops the node gracefully, as the end of Serve's context does: no more credit, the
// tasks not started are handed back with the bye, and the running tasks may finish until ctx
// ends or Config.GracePeriod has passed, whichever comes first (then their contexts are
// cancelled). It returns once Serve has stopped, or ctx's error when ctx ended first. Serve
// then returns ErrServerClosed; a Node shut down before Serve never serves.
func (n *Node) Shutdown(ctx context.Context) error {
	n.shutOnce.Do(func() { close(n.shut) })
	if !n.started.Load() {
		return nil
	}
	select {
	case <-n.stopped:
		return nil
	case <-ctx.Done():
		n.hurryUp()
		<-n.stopped
		return ctx.Err()
	}
}

// hurryUp ends the grace period of a stop: the running tasks' contexts are cancelled.
func (n *Node) hurryUp() { n.hurried.Do(func() { close(n.hurry) }) }

// queueName returns the node's own string for the queue named q (one of Config.Queues), so a
// task's queue costs no allocation; a name the node does not serve (a broker's mistake) is
// copied.
func (n *Node) queueName(q []byte) string {
	for _, name := range n.cfg.Queues {
		if name == string(q) {
			return name
		}
	}
	if string(q) == protocol.DefaultQueue {
		return protocol.DefaultQueue
	}
	return string(q)
}

// orDefault checks a Config field that zero sets to its default: a negative v is an error
// naming the field, zero becomes def.
func orDefault[T ~int | ~int64](name string, v *T, def T) error {
	if *v < 0 {
		return fmt.Errorf("%w: %s %v < 0", ErrConfig, name, *v)
	}
	if *v == 0 {
		*v = def
	}
	return nil
}
