package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/zerotask/zerotask/broker"
	"github.com/zerotask/zerotask/client"
	"github.com/zerotask/zerotask/dispatch"
	"github.com/zerotask/zerotask/node"
	"github.com/zerotask/zerotask/protocol"
	"github.com/zerotask/zerotask/store"
	"github.com/zerotask/zerotask/zmtp"
)

// Defaults of EnvConfig.
const (
	DefaultNodes      = 1 // on a small machine one node (of NumCPU workers) beats several
	DefaultStartupMax = 10 * time.Second
)

// EnvConfig configures NewEnv. The zero value starts a broker and DefaultNodes nodes in this
// process; with Binary set they are child processes instead.
type EnvConfig struct {
	// Broker is the ROUTER endpoint of an external broker; "" starts one on tcp://127.0.0.1
	// port 0 (with its PUB on port 0 too): in this process, or as a child process with Binary.
	Broker string
	// Binary is the zerotask executable to start the broker and the nodes from, as child
	// processes (`zerotask broker` and `zerotask node` with their default flags, on loopback):
	// the topology users deploy. "" runs them in this process. Ignored with Broker.
	Binary string
	// BrokerArgs and NodeArgs are extra flags for the child processes (with Binary).
	BrokerArgs []string
	NodeArgs   []string
	// Nodes is how many nodes to start (default DefaultNodes; ignored with Broker).
	Nodes int
	// Store is the in-process broker's store URL (store.Open): "" or "memory://" for none (the
	// broker's own memory), "redis://host:port/db" for a durable broker on Redis (every task
	// is written to Redis before it is acknowledged). Ignored with Broker.
	Store string
	// NodeConcurrency is each node's concurrency (default: the node's, runtime.NumCPU()).
	NodeConcurrency int
	// NodePrefetch is each node's Prefetch, the bound of its credit beyond its concurrency
	// (0 or negative: the node's default, node.DefaultPrefetch; the node sizes its credit
	// within it).
	NodePrefetch int
	// NodeFixedCredit keeps each node's credit at concurrency + prefetch instead of letting it
	// size itself (node.Config.FixedCredit, `zerotask node --fixed-credit`).
	NodeFixedCredit bool
	// Curve puts CURVE on every connection (client, nodes, the broker's ROUTER and PUB), with
	// keys made for the run and only the run's node and client keys allowed. Not with Broker.
	Curve bool
	// ClientOptions are more options of the bench's client: with Broker, the security the
	// external broker asks for (client.WithCurve, client.WithPlain).
	ClientOptions []client.Option
	// ClientArgs are the flags that give the client processes of Config.Clients the same
	// security (`--curve-server KEY --curve-secret FILE`, `--plain-user NAME`).
	ClientArgs []string
	// Dispatcher serves the in-process nodes' tasks (default: a fresh one with node.Builtins).
	Dispatcher *dispatch.Dispatcher
	// StartupTimeout bounds the wait for the in-process nodes to connect (default 10s).
	StartupTimeout time.Duration
	// Logger receives the broker's, nodes' and client's logs (default: discarded).
	Logger *slog.Logger
}

// Env is a client connected to a broker that nodes serve: the system under load.
type Env struct {
	// Client is connected to the broker; the phases share it.
	Client *client.Client
	// Broker is the in-process broker, nil for an external one.
	Broker *broker.Broker
	// Nodes are the in-process nodes (none for an external broker).
	Nodes []*node.Node
	// Endpoint is the broker's resolved ROUTER endpoint.
	Endpoint string
	// NodeConcurrency is the nodes' concurrency (0: the node's default, or an external broker).
	NodeConcurrency int
	// NodePrefetch is the nodes' Prefetch (0: the node's default, or an external broker).
	NodePrefetch int
	// Topology is TopologyInProcess, TopologyProcesses or TopologyExternal.
	Topology string

	children  []*child // the broker and node processes (TopologyProcesses), broker first
	curve     *curveSetup
	wantNodes int // node processes started

	store      store.Store        // the in-process broker's store, nil for memory
	stopNodes  context.CancelFunc // ends the nodes' Run (they stop gracefully)
	stopBroker context.CancelFunc // ends the broker's Serve (after Shutdown, as a backstop)
	nodesWG    sync.WaitGroup
	brokerWG   sync.WaitGroup
	mu         sync.Mutex // guards errs
	errs       []error    // what the broker's Serve and the nodes' Run returned
}

// NewEnv starts what cfg asks for and connects the client. For an in-process broker it returns
// once every node has connected to it, or fails after cfg.StartupTimeout.
func NewEnv(ctx context.Context, cfg EnvConfig) (_ *Env, err error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	nodesCtx, stopNodes := context.WithCancel(context.WithoutCancel(ctx))
	brokerCtx, stopBroker := context.WithCancel(context.WithoutCancel(ctx))
	e := &Env{stopNodes: stopNodes, stopBroker: stopBroker, Endpoint: cfg.Broker}
	defer func() {
		if err != nil {
			_ = e.Close()
		}
	}()
	if cfg.Curve {
		if cfg.Broker != "" {
			return e, errors.New("bench: Curve needs a broker the bench starts")
		}
		if e.curve, err = newCurveSetup(); err != nil {
			return e, err
		}
	}
	switch {
	case cfg.Broker != "":
		e.Topology = TopologyExternal
	case cfg.Binary != "":
		e.Topology = TopologyProcesses
		if err := e.startProcesses(ctx, cfg); err != nil {
			return e, err
		}
	default:
		e.Topology = TopologyInProcess
		if err := e.startInProcess(ctx, brokerCtx, nodesCtx, cfg, log); err != nil {
			return e, err
		}
	}
	copts := []client.Option{client.WithLogger(log.With("role", "client"))}
	if e.curve != nil {
		copts = append(copts, client.WithCurve(e.curve.broker.Public, e.curve.client))
	}
	copts = append(copts, cfg.ClientOptions...)
	e.Client, err = client.Dial(ctx, e.Endpoint, copts...)
	if err != nil {
		return e, fmt.Errorf("bench: connect to %s: %w", e.Endpoint, err)
	}
	if e.Topology == TopologyProcesses {
		wait := cfg.StartupTimeout
		if wait <= 0 {
			wait = DefaultStartupMax
		}
		if err := e.waitProcessNodes(ctx, e.wantNodes, wait); err != nil {
			return e, err
		}
	}
	return e, nil
}

func (e *Env) startInProcess(ctx, brokerCtx, nodesCtx context.Context, cfg EnvConfig, log *slog.Logger) error {
	nodes := cfg.Nodes
	if nodes <= 0 {
		nodes = DefaultNodes
	}
	conc := max(cfg.NodeConcurrency, 0) // 0: the node's default
	prefetch := max(cfg.NodePrefetch, 0)
	e.NodeConcurrency, e.NodePrefetch = conc, prefetch
	d := cfg.Dispatcher
	if d == nil {
		d = dispatch.New()
		if err := node.Builtins(d); err != nil {
			return fmt.Errorf("bench: built-in tasks: %w", err)
		}
	}
	bcfg := broker.Config{
		Listen: "tcp://127.0.0.1:0",
		Pub:    "tcp://127.0.0.1:0",
		Logger: log.With("role", "broker"),
	}
	var nodeSec zmtp.Mechanism
	if e.curve != nil {
		bcfg.Security = e.curve.server()
		nodeSec = zmtp.CurveClient(e.curve.broker.Public, e.curve.node)
	}
	if cfg.Store != "" && cfg.Store != "memory://" {
		st, err := store.OpenOptions(cfg.Store, store.Options{Logger: log.With("role", "store")})
		if err != nil {
			return fmt.Errorf("bench: open the store: %w", err)
		}
		e.store = st
		bcfg.Store = st
		bcfg.StoreOwner = fmt.Sprintf("bench-%d-%d", os.Getpid(), time.Now().UnixNano())
	}
	b, err := broker.New(bcfg)
	if err != nil {
		return fmt.Errorf("bench: start the broker: %w", err)
	}
	e.Broker, e.Endpoint = b, b.Addr()
	e.goRun(&e.brokerWG, func() error { return b.Serve(brokerCtx) })
	for i := range nodes {
		n, err := node.New(node.Config{
			Broker:      b.Addr(),
			Sub:         b.PubAddr(),
			Dispatcher:  d,
			Name:        fmt.Sprintf("bench-node-%d", i+1),
			Concurrency: conc,
			Prefetch:    prefetch,
			FixedCredit: cfg.NodeFixedCredit,
			Security:    nodeSec,
			Logger:      log.With("role", "node", "node", i+1),
		})
		if err != nil {
			return fmt.Errorf("bench: start node %d: %w", i+1, err)
		}
		e.Nodes = append(e.Nodes, n)
		e.goRun(&e.nodesWG, func() error { return n.Serve(nodesCtx) })
	}
	wait := cfg.StartupTimeout
	if wait <= 0 {
		wait = DefaultStartupMax
	}
	return e.waitNodes(ctx, nodes, wait)
}

// waitNodes polls until the broker counts n nodes (and each node says it is connected).
func (e *Env) waitNodes(ctx context.Context, n int, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		ready := e.Broker.Stats().Nodes >= n
		for _, nd := range e.Nodes {
			ready = ready && nd.Stats().Connected
		}
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("bench: %d node(s) not connected to the broker after %v: %w", n, wait, ctx.Err())
		case <-t.C:
		}
	}
}

func (e *Env) goRun(wg *sync.WaitGroup, f func() error) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := f(); err != nil && !errors.Is(err, broker.ErrServerClosed) && !errors.Is(err, context.Canceled) {
			e.mu.Lock()
			e.errs = append(e.errs, err)
			e.mu.Unlock()
		}
	}()
}

// Completed returns how many tasks the nodes have finished so far, successfully or not: the sum
// of the in-process nodes' Stats, or the broker's broker.stats counters (child processes or an
// external broker). Phases take its
// difference, so only its growth matters.
func (e *Env) Completed(ctx context.Context) (done, failed int64, err error) {
	done, failed, _, err = e.progress(ctx)
	return done, failed, err
}

// progress is Completed and, from a broker's broker.stats, the tasks it holds unfinished
// (queued and running, everyone's); -1 when that is not known (in-process nodes).
func (e *Env) progress(ctx context.Context) (done, failed, outstanding int64, err error) {
	if e.Broker != nil {
		for _, n := range e.Nodes {
			st := n.Stats()
			done += int64(st.Done)
			failed += int64(st.Failed)
		}
		return done, failed, -1, nil
	}
	raw, err := e.Client.CallRaw(ctx, nil, protocol.MethodStats, nil)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("bench: broker.stats: %w", err)
	}
	if done, failed, err = parseStats(raw); err != nil {
		return 0, 0, 0, err
	}
	return done, failed, parseOutstanding(raw), nil
}

// parseOutstanding takes the tasks a broker holds unfinished (queued plus running) out of a
// broker.stats answer; -1 when it has neither counter.
func parseOutstanding(raw []byte) int64 {
	var st struct{ Queued, Running *int64 }
	if json.Unmarshal(raw, &st) != nil || st.Queued == nil && st.Running == nil {
		return -1
	}
	var n int64
	for _, p := range []*int64{st.Queued, st.Running} {
		if p != nil {
			n += *p
		}
	}
	return n
}

// parseStats takes the finished-task counters out of a broker.stats answer. It accepts the
// names the broker may use (succeeded or done; failed).
func parseStats(raw []byte) (done, failed int64, err error) {
	var st map[string]json.RawMessage
	if err := json.Unmarshal(raw, &st); err != nil {
		return 0, 0, fmt.Errorf("bench: broker.stats answer %.100s: %w", raw, err)
	}
	num := func(keys ...string) (int64, bool) {
		for _, k := range keys {
			if v, ok := st[k]; ok {
				var n int64
				if json.Unmarshal(v, &n) == nil {
					return n, true
				}
			}
		}
		return 0, false
	}
	done, okDone := num("succeeded", "done", "completed")
	failed, _ = num("failed")
	if !okDone {
		return 0, 0, fmt.Errorf("bench: broker.stats answer has no succeeded/done counter: %.200s", raw)
	}
	return done, failed, nil
}

// Close closes the client, stops the nodes (gracefully: they finish their tasks and leave with
// a bye), then the broker, waits for all of them, and returns what they reported.
func (e *Env) Close() error {
	defer e.curve.remove()
	var errs []error
	if e.Client != nil {
		if err := e.Client.Close(); err != nil && !errors.Is(err, client.ErrClosed) {
			errs = append(errs, err)
		}
	}
	e.stopNodes()
	e.nodesWG.Wait()
	if e.Broker != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := e.Broker.Shutdown(sctx); err != nil && !errors.Is(err, broker.ErrServerClosed) {
			errs = append(errs, err)
		}
		cancel()
	}
	e.stopBroker()
	e.brokerWG.Wait()
	if err := e.stopChildren(); err != nil {
		errs = append(errs, err)
	}
	if e.store != nil {
		e.store.Close()
	}
	e.mu.Lock()
	errs = append(errs, e.errs...)
	e.mu.Unlock()
	return errors.Join(errs...)
}
