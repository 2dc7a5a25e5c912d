package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/zerotask/zerotask/broker"
	"github.com/zerotask/zerotask/dispatch"
	"github.com/zerotask/zerotask/node"
)

// brokerFlags are the flags of `zerotask broker` (and of the broker inside `zerotask up`).
type brokerFlags struct {
	listen, pub                   *string
	heartbeat, resultTTL, grace   *time.Duration
	maxResults, maxQueued, maxInF *int
	maxBatch, maxAttempts         *int
	retryBackoff, maxRetryBackoff *time.Duration
}

func addBrokerFlags(fs *flagSet) *brokerFlags {
	return &brokerFlags{
		listen:          fs.String("listen", defaultBroker, "ROUTER endpoint to bind (clients and nodes connect here); port 0 picks a free port"),
		pub:             fs.String("pub", defaultPub, `PUB endpoint to bind (wake-ups and task states for nodes and monitors); "none" disables it`),
		heartbeat:       fs.Duration("heartbeat", time.Second, "heartbeat interval; a peer silent for 3 intervals is dead and a dead node's tasks are queued again"),
		resultTTL:       fs.Duration("result-ttl", time.Hour, "how long finished results are kept for status/result"),
		maxResults:      fs.Int("max-results", 1_000_000, "finished results kept at most (the oldest are forgotten first)"),
		maxQueued:       fs.Int("max-queued", 1_000_000, "queued tasks at most, in all queues (past it: error -32001)"),
		maxInF:          fs.Int("max-inflight", 10_000, "in-flight requests per client at most (past it: error -32002)"),
		maxBatch:        fs.Int("max-batch", 1_024, "JSON-RPC batch length at most (past it: error -32600)"),
		grace:           fs.Duration("grace", 10*time.Second, "on SIGINT/SIGTERM, how long to wait for in-flight work before closing anyway"),
		maxAttempts:     fs.Int("max-attempts", 10, "times a task is handed to a node at most, unless the task says otherwise (node loss and retryable errors count)"),
		retryBackoff:    fs.Duration("retry-backoff", time.Second, "delay before the first retry of a retryable failure, doubled per attempt"),
		maxRetryBackoff: fs.Duration("max-retry-backoff", time.Minute, "the longest delay between retries"),
	}
}

func (f *brokerFlags) config(log *slog.Logger) (broker.Config, error) {
	for name, v := range map[string]int{"max-results": *f.maxResults, "max-queued": *f.maxQueued, "max-inflight": *f.maxInF, "max-batch": *f.maxBatch, "max-attempts": *f.maxAttempts} {
		if v <= 0 {
			return broker.Config{}, usagef("--%s must be positive, got %d", name, v)
		}
	}
	for name, v := range map[string]time.Duration{"heartbeat": *f.heartbeat, "result-ttl": *f.resultTTL, "retry-backoff": *f.retryBackoff, "max-retry-backoff": *f.maxRetryBackoff} {
		if v <= 0 {
			return broker.Config{}, usagef("--%s must be positive, got %v", name, v)
		}
	}
	return broker.Config{
		Listen:               *f.listen,
		Pub:                  *f.pub,
		HeartbeatInterval:    *f.heartbeat,
		ResultTTL:            *f.resultTTL,
		MaxResults:           *f.maxResults,
		MaxQueued:            *f.maxQueued,
		MaxInFlightPerClient: *f.maxInF,
		MaxBatch:             *f.maxBatch,
		MaxAttempts:          *f.maxAttempts,
		RetryBackoff:         *f.retryBackoff,
		MaxRetryBackoff:      *f.maxRetryBackoff,
		Logger:               log,
	}, nil
}

// nodeFlags are the flags of `zerotask node` (and of the node inside `zerotask up`).
type nodeFlags struct {
	broker, sub, name, queues   *string
	concurrency, prefetch       *int
	grace, heartbeat, timeLimit *time.Duration
}

func addNodeFlags(fs *flagSet, standalone bool) *nodeFlags {
	f := &nodeFlags{
		name:        fs.String("name", "", "node name shown by broker.nodes (default hostname-pid)"),
		concurrency: fs.Int("concurrency", 0, "tasks run at once at most (0 = the number of CPUs)"),
		prefetch:    fs.Int("prefetch", 0, "tasks held beyond --concurrency, waiting for a free slot (0 = as many as --concurrency)"),
		grace:       fs.Duration("node-grace", 30*time.Second, "on SIGINT/SIGTERM, how long running tasks may take to finish"),
		queues:      fs.String("queues", "", "comma-separated broker queues to take tasks from (default: the default queue)"),
		timeLimit:   fs.Duration("time-limit", 0, "the longest one task may run before its context ends (0 = no limit)"),
	}
	if standalone {
		f.broker = brokerFlag(fs)
		f.sub = fs.String("sub", defaultPub, `broker PUB endpoint to subscribe to (wake-ups, revokes); "none" disables it`)
		f.heartbeat = fs.Duration("heartbeat", time.Second, "heartbeat interval; the broker is presumed dead after 3 silent intervals")
	}
	return f
}

func (f *nodeFlags) config(log *slog.Logger, d *dispatch.Dispatcher) (node.Config, error) {
	if *f.concurrency < 0 || *f.prefetch < 0 {
		return node.Config{}, usagef("--concurrency and --prefetch must not be negative")
	}
	if *f.grace <= 0 {
		return node.Config{}, usagef("--node-grace must be positive, got %v", *f.grace)
	}
	if *f.timeLimit < 0 {
		return node.Config{}, usagef("--time-limit must not be negative, got %v", *f.timeLimit)
	}
	var queues []string
	for _, q := range strings.Split(*f.queues, ",") {
		if q = strings.TrimSpace(q); q != "" {
			queues = append(queues, q)
		}
	}
	cfg := node.Config{
		Dispatcher:  d,
		Name:        *f.name,
		Concurrency: *f.concurrency,
		Prefetch:    *f.prefetch,
		GracePeriod: *f.grace,
		Queues:      queues,
		TimeLimit:   *f.timeLimit,
		Logger:      log,
	}
	if f.broker != nil {
		cfg.Broker, cfg.Sub, cfg.HeartbeatInterval = *f.broker, *f.sub, *f.heartbeat
		if cfg.HeartbeatInterval <= 0 {
			return node.Config{}, usagef("--heartbeat must be positive, got %v", cfg.HeartbeatInterval)
		}
	}
	return cfg, nil
}

// builtins returns a fresh dispatcher serving node.Builtins (add, subtract, echo, sleep).
func builtins() (*dispatch.Dispatcher, error) {
	d := dispatch.New()
	if err := node.Builtins(d); err != nil {
		return nil, fmt.Errorf("register the built-in tasks: %w", err)
	}
	return d, useDrill(d) // the end-to-end drills' task log (drill.go); nothing unless asked for
}

func runBroker(ctx context.Context, io *stdio, args []string) error {
	fs := newFlagSet("broker", "", "Run a broker: bind a ROUTER socket for clients and nodes and a PUB socket for\n"+
		"wake-ups and task states, queue tasks and hand them out by credit. Stops gracefully on\nSIGINT/SIGTERM.").
		withLogLevel(slog.LevelInfo)
	bf := addBrokerFlags(fs)
	if err := parse(fs, io, args, 0, 0); err != nil {
		return err
	}
	log := fs.logger(io.err)
	cfg, err := bf.config(log)
	if err != nil {
		return err
	}
	b, err := broker.New(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(io.out, "broker listening on %s (PUB %s)\n", b.Addr(), pubAddr(b))
	return serveBroker(ctx, b, *bf.grace, log)
}

func pubAddr(b *broker.Broker) string {
	if a := b.PubAddr(); a != "" {
		return a
	}
	return "none"
}

// serveBroker runs b until ctx ends, then shuts it down within grace. Serve gets a context of
// its own so that the signal starts a graceful Shutdown instead of cutting Serve short.
func serveBroker(ctx context.Context, b *broker.Broker, grace time.Duration, log *slog.Logger) error {
	serveCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- b.Serve(serveCtx) }()
	select {
	case err := <-done: // Serve ended on its own: a failure
		return serveErr(err)
	case <-ctx.Done():
	}
	log.Info("shutting down the broker", "grace", grace)
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer scancel()
	shutErr := b.Shutdown(sctx)
	cancel() // Serve must return now, even if Shutdown timed out
	if err := serveErr(<-done); err != nil {
		return err
	}
	if shutErr != nil && !errors.Is(shutErr, broker.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", shutErr)
	}
	return nil
}

// serveErr maps the normal ends of Serve to nil.
func serveErr(err error) error {
	if err == nil || errors.Is(err, broker.ErrServerClosed) || errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func runNode(ctx context.Context, io *stdio, args []string) error {
	fs := newFlagSet("node", "", "Run a node: connect to a broker (it need not be up yet) and serve the built-in\n"+
		"tasks add, subtract, echo and sleep. On SIGINT/SIGTERM it stops taking tasks, lets the running\nones finish within --node-grace, reports them and exits.").
		withLogLevel(slog.LevelInfo)
	nf := addNodeFlags(fs, true)
	if err := parse(fs, io, args, 0, 0); err != nil {
		return err
	}
	log := fs.logger(io.err)
	d, err := builtins()
	if err != nil {
		return err
	}
	cfg, err := nf.config(log, d)
	if err != nil {
		return err
	}
	n, err := node.New(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(io.out, "node serving %s for %s\n", strings.Join(d.Methods(), ", "), cfg.Broker)
	return n.Run(ctx)
}

func runUp(ctx context.Context, io *stdio, args []string) error {
	fs := newFlagSet("up", "", "Run a broker and a node in one process: the quickest way to try ZeroTask.\n"+
		"The node serves add, subtract, echo and sleep. Stops gracefully on SIGINT/SIGTERM.").
		withLogLevel(slog.LevelInfo)
	bf := addBrokerFlags(fs)
	nf := addNodeFlags(fs, false)
	if err := parse(fs, io, args, 0, 0); err != nil {
		return err
	}
	log := fs.logger(io.err)
	bcfg, err := bf.config(log.With("role", "broker"))
	if err != nil {
		return err
	}
	d, err := builtins()
	if err != nil {
		return err
	}
	ncfg, err := nf.config(log.With("role", "node"), d)
	if err != nil {
		return err
	}
	b, err := broker.New(bcfg)
	if err != nil {
		return err
	}
	ncfg.Broker, ncfg.Sub, ncfg.HeartbeatInterval = b.Addr(), b.PubAddr(), bcfg.HeartbeatInterval
	if ncfg.Sub == "" {
		ncfg.Sub = "none"
	}
	n, err := node.New(ncfg)
	if err != nil {
		_ = b.Shutdown(context.WithoutCancel(ctx))
		return err
	}
	fmt.Fprintf(io.out, "broker listening on %s (PUB %s), node serving %s\n", b.Addr(), pubAddr(b), strings.Join(d.Methods(), ", "))

	// The node stops first (it finishes its running tasks and says bye), then the broker. If
	// either ends on its own (a failure), the other is stopped too.
	nodeCtx, stopNode := context.WithCancel(context.WithoutCancel(ctx))
	defer stopNode()
	nodeDone := make(chan error, 1)
	go func() { nodeDone <- n.Run(nodeCtx) }()
	brokerCtx, stopBroker := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBroker()
	brokerDone := make(chan error, 1)
	go func() { brokerDone <- serveBroker(brokerCtx, b, *bf.grace, log) }()

	var nodeErr, brokerErr error
	select {
	case <-ctx.Done():
		stopNode()
		nodeErr = <-nodeDone
		stopBroker()
		brokerErr = <-brokerDone
	case nodeErr = <-nodeDone:
		stopBroker()
		brokerErr = <-brokerDone
	case brokerErr = <-brokerDone:
		stopNode()
		nodeErr = <-nodeDone
	}
	if nodeErr != nil {
		nodeErr = fmt.Errorf("node: %w", nodeErr)
	}
	return errors.Join(brokerErr, nodeErr)
}
