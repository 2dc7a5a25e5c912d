package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"

	"github.com/zerotask/zerotask/broker"
	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/dispatch"
	"github.com/zerotask/zerotask/internal/procs"
	"github.com/zerotask/zerotask/node"
	"github.com/zerotask/zerotask/protocol"
	"github.com/zerotask/zerotask/store"
	"github.com/zerotask/zerotask/zmtp"
)

// brokerFlags are the flags of `zerotask broker` (and of the broker inside `zerotask up`).
type brokerFlags struct {
	listen, pub                   *string
	heartbeat, resultTTL, grace   *time.Duration
	maxResults, maxQueued, maxInF *int
	maxBatch, maxAttempts         *int
	maxNodeName, maxNodeLists     *int
	maxMsgSize                    *int64
	retryBackoff, maxRetryBackoff *time.Duration
	store, owner                  *string
	takeover                      *bool
	maxResultBytes, maxInFBytes   *int64
	maxNodeBytes                  *int64
	maxStoreBytes                 *int64
	memoryBudget, maxTaskBytes    *int64
	maxConnsPerAddr               *int
	maxMethods, maxWaiting        *int
	clientShare                   *int
	sec                           *brokerSecFlags
	taskTimeout, progressTimeout  *time.Duration
	archiveMax                    *int
	archiveBytes                  *int64
	archiveTTL                    *time.Duration
	plan                          *planFlags
}

func addBrokerFlags(fs *flagSet) *brokerFlags {
	return &brokerFlags{
		listen:          fs.String("listen", defaultBroker, "ROUTER endpoint to bind (clients and nodes connect here); port 0 picks a free port"),
		pub:             fs.String("pub", defaultPub, `PUB endpoint to bind (wake-ups and task states for nodes and monitors); "none" disables it`),
		heartbeat:       fs.Duration("heartbeat", protocol.DefaultHeartbeatInterval, "heartbeat interval; a peer silent for 3 intervals is dead and a dead node's tasks are queued again"),
		resultTTL:       fs.Duration("result-ttl", protocol.DefaultResultTTL, "how long finished results are kept for status/result"),
		maxResults:      fs.Int("max-results", protocol.DefaultMaxResults, "finished results kept at most (the oldest are forgotten first)"),
		archiveMax:      fs.Int("archive-max", protocol.DefaultArchiveMax, "tasks kept at most in the archive of final failures (FAILURE, EXPIRED, REVOKED: zerotask ls, requeue); the oldest go first; -1: no archive"),
		archiveBytes:    fs.Int64("archive-bytes", protocol.DefaultArchiveMaxBytes, "bytes the archive keeps at most (params, errors, 256 per task); the oldest go first"),
		archiveTTL:      fs.Duration("archive-ttl", protocol.DefaultArchiveTTL, "how long an archived task is kept"),
		maxResultBytes:  fs.Int64("max-result-bytes", 0, "bytes of finished results kept in memory at most (raw JSON plus 128 per result; the oldest are forgotten first); 0: a quarter of --memory-budget"),
		memoryBudget:    fs.Int64("memory-budget", protocol.DefaultMemoryBudget, "bytes of memory for tasks and results: sizes --max-task-bytes (half) and --max-result-bytes (a quarter) unless they are given (docs/limits.md)"),
		maxTaskBytes:    fs.Int64("max-task-bytes", 0, "bytes of live tasks (queued, scheduled or at a node; params plus 256 per task) at most (past it: error "+strconv.Itoa(protocol.CodeQueueFull)+"); 0: half of --memory-budget"),
		maxQueued:       fs.Int("max-queued", protocol.DefaultMaxQueued, "queued tasks at most, in all queues (past it: error "+strconv.Itoa(protocol.CodeQueueFull)+")"),
		maxInF:          fs.Int("max-inflight", protocol.DefaultMaxInFlightPerClient, "in-flight requests per client at most (past it: error "+strconv.Itoa(protocol.CodeTooManyInFlight)+")"),
		maxInFBytes:     fs.Int64("max-inflight-bytes", protocol.DefaultMaxInFlightBytes, "bytes of one client's task calls awaiting a reply at most (params plus 256 per call; past it: error "+strconv.Itoa(protocol.CodeTooManyInFlight)+")"),
		maxNodeBytes:    fs.Int64("max-node-bytes", protocol.DefaultMaxNodeBytes, "bytes of params handed to one node and not answered at most, whatever its credit (one task always goes to a node that holds none; docs/limits.md)"),
		maxStoreBytes:   fs.Int64("max-store-bytes", protocol.DefaultMaxStoreBytes, "durable mode: bytes of accepted tasks sent to Redis and not yet acknowledged at most (params plus 256 per task; past it: error "+strconv.Itoa(protocol.CodeQueueFull)+" until writes are answered; docs/limits.md)"),
		maxBatch:        fs.Int("max-batch", protocol.DefaultMaxBatch, "JSON-RPC batch length at most (past it: error "+strconv.Itoa(codec.CodeInvalidRequest)+")"),
		maxMsgSize:      fs.Int64("max-msg-size", protocol.DefaultMaxMsgSize, "bytes per message at most, received and sent (a peer's hello may announce less; tasks whose message to a node would pass it: error "+strconv.Itoa(codec.CodeInvalidRequest)+")"),
		maxNodeName:     fs.Int("max-node-name", protocol.DefaultMaxNodeName, "bytes of a node's name at most (past it the hello gets error "+strconv.Itoa(codec.CodeInvalidParams)+")"),
		maxNodeLists:    fs.Int("max-node-lists", protocol.DefaultMaxNodeLists, "bytes of a node's method and queue names at most, together (past it the hello gets error "+strconv.Itoa(codec.CodeInvalidParams)+")"),
		maxConnsPerAddr: fs.Int("max-conns-per-addr", protocol.DefaultMaxConnsPerAddr, "connections from one source IP address at most, on the ROUTER and on the PUB each (-1: no bound but the total); loopback peers share one address"),
		maxMethods:      fs.Int("max-methods", protocol.DefaultMaxMethods, "distinct method names with a queue at most (past it: error "+strconv.Itoa(protocol.CodeQueueFull)+")"),
		maxWaiting:      fs.Int("max-waiting", protocol.DefaultMaxWaiting, protocol.MethodResult+" calls waiting at once at most (past it: error "+strconv.Itoa(protocol.CodeQueueFull)+")"),
		clientShare:     fs.Int("client-share", protocol.DefaultClientShare, "percent of --max-methods and of --max-waiting one client (connection, or CURVE key) may hold (past it: error "+strconv.Itoa(protocol.CodeQueueFull)+"); 1 to 100"),
		grace:           fs.Duration("grace", 10*time.Second, "on SIGINT/SIGTERM, how long to wait for in-flight work before closing anyway"),
		taskTimeout:     fs.Duration("task-timeout", protocol.DefaultTaskTimeout, "run time given to a task without a deadline of its own; a node that has not answered 3 heartbeats later loses it ("+strconv.Itoa(protocol.CodeDeadline)+"); -1ns: none"),
		progressTimeout: fs.Duration("progress-timeout", protocol.DefaultProgressTimeout, "a node holding tasks with no answer and no running notice for this long loses the tasks it has not started (they run elsewhere, no attempt counted); -1ns: never"),
		maxAttempts:     fs.Int("max-attempts", protocol.DefaultMaxAttempts, "times a task is handed to a node at most, unless the task says otherwise (node loss and retryable errors count)"),
		retryBackoff:    fs.Duration("retry-backoff", protocol.DefaultRetryBackoff, "delay before the first retry of a retryable failure, doubled per attempt"),
		maxRetryBackoff: fs.Duration("max-retry-backoff", protocol.DefaultMaxRetryBackoff, "the longest delay between retries"),
		store: fs.String("store", "memory://", "where results and queued tasks live: memory:// (in this process) or redis://host:port/db "+
			"(durable: every accepted task is written there before it is acknowledged, results outlive the broker and "+
			"brokers sharing one Redis read each other's results; Redis must run with maxmemory-policy noeviction)"),
		owner: fs.String("owner", "", "this broker's id in a Redis store: a restart with the same id takes back the tasks it held "+
			"(default broker:<hostname>:<listen endpoint>; give each broker sharing a store its own)"),
		sec:  addBrokerSecFlags(fs),
		plan: addPlanFlags(fs),
		takeover: fs.Bool("takeover", false, "with --store redis://...: if another broker's lease on --owner is live, wait for it to end and take its tasks over "+
			"(without it the broker refuses to start: one owner id, one broker)"),
	}
}

// config builds the broker's Config; with --store redis://... it opens the store, which the
// caller closes (closeStore) once the broker has stopped.
func (f *brokerFlags) config(log *slog.Logger) (cfg broker.Config, closeStore func(), err error) {
	closeStore = func() {}
	cfg, err = f.baseConfig(log)
	if err != nil {
		return cfg, closeStore, err
	}
	if err := f.sec.apply(&cfg, log); err != nil {
		return cfg, closeStore, err
	}
	if err := f.plan.apply(&cfg); err != nil {
		return cfg, closeStore, err
	}
	switch u := strings.TrimSpace(*f.store); {
	case u == "" || u == "memory://" || u == "memory:" || u == "memory":
		if *f.owner != "" || *f.takeover {
			return cfg, closeStore, usagef("--owner and --takeover need --store redis://...")
		}
	case strings.HasPrefix(u, "redis://"):
		st, err := store.OpenOptions(u, store.Options{Logger: log})
		if err != nil {
			return cfg, closeStore, fmt.Errorf("--store: %w", err)
		}
		cfg.Store, cfg.StoreOwner, cfg.StoreTakeover = st, *f.owner, *f.takeover
		closeStore = func() { st.Close() }
	default:
		return cfg, closeStore, usagef("--store %q: want memory:// or redis://host:port/db", u)
	}
	return cfg, closeStore, nil
}

func (f *brokerFlags) baseConfig(log *slog.Logger) (broker.Config, error) {
	for name, v := range map[string]int{"max-results": *f.maxResults, "max-queued": *f.maxQueued, "max-inflight": *f.maxInF, "max-batch": *f.maxBatch, "max-attempts": *f.maxAttempts, "max-node-name": *f.maxNodeName, "max-node-lists": *f.maxNodeLists, "max-methods": *f.maxMethods, "max-waiting": *f.maxWaiting, "client-share": *f.clientShare} {
		if v <= 0 {
			return broker.Config{}, usagef("--%s must be positive, got %d", name, v)
		}
	}
	if *f.maxConnsPerAddr == 0 || *f.maxConnsPerAddr < -1 {
		return broker.Config{}, usagef("--max-conns-per-addr must be positive or -1, got %d", *f.maxConnsPerAddr)
	}
	if *f.clientShare > 100 {
		return broker.Config{}, usagef("--client-share is a percentage: at most 100, got %d", *f.clientShare)
	}
	if *f.maxMsgSize < 256 {
		return broker.Config{}, usagef("--max-msg-size must be at least 256, got %d", *f.maxMsgSize)
	}
	for name, v := range map[string]int64{"max-result-bytes": *f.maxResultBytes, "max-task-bytes": *f.maxTaskBytes} {
		if v < 0 {
			return broker.Config{}, usagef("--%s must not be negative, got %d", name, v)
		}
	}
	if *f.archiveMax == 0 || *f.archiveMax < -1 {
		return broker.Config{}, usagef("--archive-max must be positive or -1, got %d", *f.archiveMax)
	}
	if *f.archiveBytes <= 0 || *f.archiveTTL <= 0 {
		return broker.Config{}, usagef("--archive-bytes and --archive-ttl must be positive")
	}
	if *f.maxInFBytes <= 0 {
		return broker.Config{}, usagef("--max-inflight-bytes must be positive, got %d", *f.maxInFBytes)
	}
	if *f.maxNodeBytes <= 0 {
		return broker.Config{}, usagef("--max-node-bytes must be positive, got %d", *f.maxNodeBytes)
	}
	if *f.maxStoreBytes <= 0 {
		return broker.Config{}, usagef("--max-store-bytes must be positive, got %d", *f.maxStoreBytes)
	}
	if *f.memoryBudget <= 0 {
		return broker.Config{}, usagef("--memory-budget must be positive, got %d", *f.memoryBudget)
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
		MaxResultBytes:       *f.maxResultBytes,
		ArchiveMax:           *f.archiveMax,
		ArchiveMaxBytes:      *f.archiveBytes,
		ArchiveTTL:           *f.archiveTTL,
		MemoryBudget:         *f.memoryBudget,
		MaxTaskBytes:         *f.maxTaskBytes,
		MaxQueued:            *f.maxQueued,
		MaxInFlightPerClient: *f.maxInF,
		MaxInFlightBytes:     *f.maxInFBytes,
		MaxNodeBytes:         *f.maxNodeBytes,
		MaxStoreBytes:        *f.maxStoreBytes,
		MaxBatch:             *f.maxBatch,
		MaxMsgSize:           *f.maxMsgSize,
		MaxConnsPerAddr:      *f.maxConnsPerAddr,
		MaxNodeName:          *f.maxNodeName,
		MaxNodeLists:         *f.maxNodeLists,
		MaxMethods:           *f.maxMethods,
		MaxWaiting:           *f.maxWaiting,
		ClientShare:          *f.clientShare,
		MaxAttempts:          *f.maxAttempts,
		RetryBackoff:         *f.retryBackoff,
		MaxRetryBackoff:      *f.maxRetryBackoff,
		TaskTimeout:          *f.taskTimeout,
		ProgressTimeout:      *f.progressTimeout,
		Logger:               log,
	}, nil
}

// nodeFlags are the flags of `zerotask node` (and of the node inside `zerotask up`).
type nodeFlags struct {
	broker, sub, name, queues   *string
	concurrency, prefetch       *int
	fixedCredit                 *bool
	grace, heartbeat, timeLimit *time.Duration
	sec                         *peerSecFlags // standalone only
}

func addNodeFlags(fs *flagSet, standalone bool) *nodeFlags {
	f := &nodeFlags{
		name:        fs.String("name", "", "node name shown by broker.nodes (default hostname-pid)"),
		concurrency: fs.Int("concurrency", 0, "tasks run at once at most (0 = the number of CPUs)"),
		prefetch:    fs.Int("prefetch", 0, fmt.Sprintf("tasks held beyond --concurrency at most, waiting for a free slot; within that bound the node sizes its credit to its service rate and round trip to the broker (0 = %d)", node.DefaultPrefetch)),
		fixedCredit: fs.Bool("fixed-credit", false, "always let the broker have --concurrency + --prefetch tasks, instead of sizing the credit to the service rate and round trip"),
		grace:       fs.Duration("node-grace", node.DefaultGracePeriod, "on SIGINT/SIGTERM, how long running tasks may take to finish"),
		queues:      fs.String("queues", "", "comma-separated broker queues to take tasks from (default: the default queue)"),
		timeLimit:   fs.Duration("time-limit", 0, "the longest one task may run before its context ends (0 = no limit)"),
	}
	if standalone {
		f.broker = brokerFlag(fs)
		f.sub = fs.String("sub", defaultPub, `broker PUB endpoint to subscribe to (wake-ups, revokes); "none" disables it`)
		f.heartbeat = fs.Duration("heartbeat", protocol.DefaultHeartbeatInterval, "heartbeat interval; the broker is presumed dead after 3 silent intervals")
		f.sec = addPeerSecFlags(fs)
	}
	return f
}

// config is the node's configuration from its flags, serving the built-in tasks; metrics says
// whether it keeps the counters --http serves.
func (f *nodeFlags) config(log *slog.Logger, metrics bool) (node.Config, error) {
	d, err := builtins()
	if err != nil {
		return node.Config{}, err
	}
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
		FixedCredit: *f.fixedCredit,
		GracePeriod: *f.grace,
		Queues:      queues,
		TimeLimit:   *f.timeLimit,
		Logger:      log,
		Metrics:     metrics,
	}
	sec, err := f.sec.mechanism()
	if err != nil {
		return node.Config{}, err
	}
	cfg.Security = sec
	if f.broker != nil {
		cfg.Broker, cfg.Sub, cfg.HeartbeatInterval = *f.broker, *f.sub, *f.heartbeat
		if cfg.HeartbeatInterval <= 0 {
			return node.Config{}, usagef("--heartbeat must be positive, got %v", cfg.HeartbeatInterval)
		}
	}
	return cfg, nil
}

// builtins returns a fresh dispatcher serving node.Builtins (add, subtract, echo, sleep, sum).
func builtins() (*dispatch.Dispatcher, error) {
	d := dispatch.New()
	if err := node.Builtins(d); err != nil {
		return nil, fmt.Errorf("register the built-in tasks: %w", err)
	}
	return d, useDrill(d) // the end-to-end drills' task log (drill.go); nothing unless asked for
}

// servingFlags are the flags every serving command (broker, node, up) has besides its own.
type servingFlags struct {
	http       *httpFlags
	cpuProfile *string
	pinIdle    *bool
}

func addServingFlags(fs *flagSet) *servingFlags {
	return &servingFlags{http: addHTTPFlags(fs), cpuProfile: addCPUProfileFlag(fs), pinIdle: addPinIdleFlag(fs)}
}

// addPinIdleFlag adds --pin-idle to a command that runs the adaptive GOMAXPROCS
// (internal/procs): whether a lightly loaded process also keeps to one CPU.
func addPinIdleFlag(fs *flagSet) *bool {
	return fs.Bool("pin-idle", true, "while the process is lightly loaded and the machine has idle CPU, keep its threads to one CPU, the one every ZeroTask process on the machine picks, so that a call's hops between them do not wake another CPU (given back as soon as the process or the CPU is busy; docs/operations.md)")
}

// parse parses the flags of a serving command (no arguments), checks its --http, starts its
// --cpuprofile and the adaptive GOMAXPROCS (internal/procs); stop ends both.
func (sf *servingFlags) parse(fs *flagSet, io *stdio, args []string) (log *slog.Logger, stop func(), err error) {
	if err := parse(fs, io, args, 0, 0); err != nil {
		return nil, nil, err
	}
	if err := sf.http.check(); err != nil {
		return nil, nil, err
	}
	stopProf, err := startCPUProfile(*sf.cpuProfile)
	if err != nil {
		return nil, nil, err
	}
	log = fs.logger(io.err)
	// One P while the process is mostly idle, the default as soon as it is busy (package
	// procs says why); nothing when GOMAXPROCS is set.
	stopProcs := procs.Start(context.Background(), procs.Policy{NoPin: !*sf.pinIdle}, log)
	return log, func() { stopProcs(); stopProf() }, nil
}

func runBroker(ctx context.Context, io *stdio, args []string) error {
	fs := newFlagSet("broker", "", "Run a broker: bind a ROUTER socket for clients and nodes and a PUB socket for\n"+
		"wake-ups and task states, queue tasks and hand them out by credit. Stops gracefully on\nSIGINT/SIGTERM.").
		withLogLevel(slog.LevelInfo)
	bf := addBrokerFlags(fs)
	sf := addServingFlags(fs)
	hf := sf.http
	log, stopProf, err := sf.parse(fs, io, args)
	if err != nil {
		return err
	}
	defer stopProf()
	cfg, closeStore, err := bf.config(log)
	if err != nil {
		return err
	}
	defer closeStore()
	setMemoryLimit(cfg.MemoryBudget)
	gcCtx, stopGC := context.WithCancel(ctx)
	gcDone := make(chan struct{})
	go func() {
		defer close(gcDone)
		returnGarbage(gcCtx, garbageCheck)
	}()
	defer func() { stopGC(); <-gcDone }()
	b, err := broker.New(cfg)
	if err != nil {
		return err
	}
	bf.sec.watchReload(ctx, b, log)
	fmt.Fprintf(io.out, "broker listening on %s (PUB %s)%s\n", b.Addr(), pubAddr(b), bf.storeNote(b.Config()))
	if *hf.addr != "" {
		if hf.dashboard, err = startDashboard(ctx, b, bf.sec, log); err != nil {
			_ = b.Shutdown(context.WithoutCancel(ctx))
			return err
		}
	}
	if err := serveHTTP(ctx, io, hf, log, b.WriteMetrics); err != nil {
		_ = b.Shutdown(context.WithoutCancel(ctx))
		return err
	}
	return serveBroker(ctx, b, *bf.grace, log)
}

// storeNote says where a durable broker keeps its tasks ("" for memory), password redacted.
func (f *brokerFlags) storeNote(cfg broker.Config) string {
	if cfg.Store == nil {
		return ""
	}
	s := *f.store
	if u, err := url.Parse(s); err == nil {
		s = u.Redacted()
	}
	return ", store " + s + " as " + cfg.StoreOwner
}

func pubAddr(b *broker.Broker) string {
	if a := b.PubAddr(); a != "" {
		return a
	}
	return protocol.NoEndpoint
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
		"tasks add, subtract, echo, sleep and sum. On SIGINT/SIGTERM it stops taking tasks, lets the running\nones finish within --node-grace, reports them and exits.").
		withLogLevel(slog.LevelInfo)
	nf := addNodeFlags(fs, true)
	sf := addServingFlags(fs)
	hf := sf.http
	log, stopProf, err := sf.parse(fs, io, args)
	if err != nil {
		return err
	}
	defer stopProf()
	cfg, err := nf.config(log, *hf.addr != "")
	if err != nil {
		return err
	}
	cfgs, err := perBroker(cfg, fs.set("sub"))
	if err != nil {
		return err
	}
	nodes := make([]*node.Node, len(cfgs))
	for i, c := range cfgs {
		if nodes[i], err = node.New(c); err != nil {
			return err
		}
	}
	fmt.Fprintf(io.out, "node serving %s for %s\n", strings.Join(cfg.Dispatcher.Methods(), ", "), cfg.Broker)
	if err := serveHTTP(ctx, io, hf, log, func(w outWriter) error { return node.WriteMetrics(w, nodes...) }); err != nil {
		return err
	}
	if len(nodes) == 1 {
		return nodeServed(nodes[0].Serve(ctx))
	}
	// One node per broker (a DEALER sends round robin, so a node's results must go back on
	// the connection its tasks came from): they share the tasks' code, each has its own
	// workers and credit. If one ends on its own (a failure), the others stop too.
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	errc := make(chan error, len(nodes))
	for _, n := range nodes {
		go func() {
			err := nodeServed(n.Serve(rctx))
			stop()
			errc <- err
		}()
	}
	var errs []error
	for range nodes {
		if err := <-errc; err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// perBroker splits a node's --broker list (comma-separated) into one Config per broker; --sub
// is then a list of the same length, or "none" (the default with several brokers: revokes
// reach a node on its broker connection anyway).
func perBroker(cfg node.Config, subSet bool) ([]node.Config, error) {
	var brokers []string
	for _, b := range strings.Split(cfg.Broker, ",") {
		if b = strings.TrimSpace(b); b == "" {
			return nil, usagef("--broker %q has an empty endpoint", cfg.Broker)
		}
		brokers = append(brokers, b)
	}
	if len(brokers) == 1 {
		cfg.Broker = brokers[0]
		return []node.Config{cfg}, nil
	}
	subs := make([]string, len(brokers))
	switch {
	case !subSet || strings.TrimSpace(cfg.Sub) == protocol.NoEndpoint:
		for i := range subs {
			subs[i] = protocol.NoEndpoint
		}
	default:
		s := strings.Split(cfg.Sub, ",")
		if len(s) != len(brokers) {
			return nil, usagef("--sub needs one endpoint per --broker (%d), or none; got %q", len(brokers), cfg.Sub)
		}
		for i := range s {
			subs[i] = strings.TrimSpace(s[i])
		}
	}
	out := make([]node.Config, len(brokers))
	for i := range brokers {
		c := cfg
		c.Broker, c.Sub = brokers[i], subs[i]
		out[i] = c
	}
	return out, nil
}

func runUp(ctx context.Context, io *stdio, args []string) error {
	fs := newFlagSet("up", "", "Run a broker and a node in one process: the quickest way to try ZeroTask.\n"+
		"The node serves add, subtract, echo, sleep and sum. Stops gracefully on SIGINT/SIGTERM.").
		withLogLevel(slog.LevelInfo)
	bf := addBrokerFlags(fs)
	nf := addNodeFlags(fs, false)
	sf := addServingFlags(fs)
	hf := sf.http
	log, stopProf, err := sf.parse(fs, io, args)
	if err != nil {
		return err
	}
	defer stopProf()
	bcfg, closeStore, err := bf.config(log.With("role", "broker"))
	if err != nil {
		return err
	}
	defer closeStore()
	ncfg, err := nf.config(log.With("role", "node"), *hf.addr != "")
	if err != nil {
		return err
	}
	if bf.sec.plain != nil {
		ncfg.Security = bf.sec.plain.self() // the broker's own PLAIN user, which may do everything
	} else if *bf.sec.secret != "" {
		// The in-process node speaks CURVE with the broker's own key pair, which the broker
		// always allows.
		kp, err := zmtp.LoadCurveSecret(*bf.sec.secret)
		if err != nil {
			return fmt.Errorf("--curve-secret: %w", err)
		}
		ncfg.Security = zmtp.CurveClient(kp.Public, kp)
	}
	b, err := broker.New(bcfg)
	if err != nil {
		return err
	}
	bf.sec.watchReload(ctx, b, log.With("role", "broker"))
	ncfg.Broker, ncfg.Sub, ncfg.HeartbeatInterval = b.Addr(), b.PubAddr(), bcfg.HeartbeatInterval
	if ncfg.Sub == "" {
		ncfg.Sub = protocol.NoEndpoint
	}
	n, err := node.New(ncfg)
	if err != nil {
		_ = b.Shutdown(context.WithoutCancel(ctx))
		return err
	}
	fmt.Fprintf(io.out, "broker listening on %s (PUB %s)%s, node serving %s\n", b.Addr(), pubAddr(b), bf.storeNote(b.Config()), strings.Join(ncfg.Dispatcher.Methods(), ", "))
	if *hf.addr != "" {
		if hf.dashboard, err = startDashboard(ctx, b, bf.sec, log.With("role", "dashboard")); err != nil {
			_ = b.Shutdown(context.WithoutCancel(ctx))
			return err
		}
	}
	err = serveHTTP(ctx, io, hf, log, func(w outWriter) error {
		if err := b.WriteMetrics(w); err != nil {
			return err
		}
		return n.WriteMetrics(w)
	})
	if err != nil {
		_ = b.Shutdown(context.WithoutCancel(ctx))
		return err
	}

	// The node stops first (it finishes its running tasks and says bye), then the broker. If
	// either ends on its own (a failure), the other is stopped too.
	nodeCtx, stopNode := context.WithCancel(context.WithoutCancel(ctx))
	defer stopNode()
	nodeDone := make(chan error, 1)
	go func() { nodeDone <- nodeServed(n.Serve(nodeCtx)) }()
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

// setMemoryLimit gives the Go runtime the broker's memory budget as its soft memory limit
// (unless GOMEMLIMIT says otherwise): with tasks and results taking up to three quarters of
// the budget, the collector then runs before garbage takes the heap past it, instead of
// letting the heap reach twice what is live.
func setMemoryLimit(budget int64) {
	if os.Getenv("GOMEMLIMIT") == "" && budget > 0 {
		debug.SetMemoryLimit(budget)
	}
}

// garbageCheck is how often returnGarbage looks at the heap.
const garbageCheck = 2 * time.Second

// returnGarbage runs a collection and gives the freed memory back to the system when no
// collection ran during the last interval and the heap holds more than 64 MiB: after a burst
// (a flood that was refused, a client that left with its replies) the broker allocates little,
// so the runtime would otherwise keep that garbage, and the process's memory, until its
// two-minute forced collection. The live heap the runtime reports dates from its last
// collection, so the garbage a peer leaves behind when it goes shows only once one runs:
// instead of guessing, the forced collections are paced by their cost, at most 2% of one CPU
// (the next waits 50 times the CPU time the last one took): a broker holding 100 MB collects
// every few seconds while idle, one holding its whole budget every half minute or so.
func returnGarbage(ctx context.Context, every time.Duration) {
	s := []metrics.Sample{
		{Name: "/gc/cycles/total:gc-cycles"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/cpu/classes/gc/total:cpu-seconds"},
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var cycles uint64
	var next time.Time // no forced collection before
	for {
		var now time.Time
		select {
		case <-ctx.Done():
			return
		case now = <-t.C:
		}
		metrics.Read(s)
		n, objects, cpu := s[0].Value.Uint64(), s[1].Value.Uint64(), s[2].Value.Float64()
		if n != cycles || objects <= 64<<20 || now.Before(next) {
			cycles = n // the runtime collects by itself, or there is little to collect
			continue
		}
		debug.FreeOSMemory()
		metrics.Read(s)
		cycles = s[0].Value.Uint64()
		cost := time.Duration((s[2].Value.Float64() - cpu) * 50 * float64(time.Second))
		next = time.Now().Add(cost)
	}
}

// nodeServed is a node's Serve error with a graceful stop (node.ErrServerClosed) as nil.
func nodeServed(err error) error {
	if errors.Is(err, node.ErrServerClosed) {
		return nil
	}
	return err
}
