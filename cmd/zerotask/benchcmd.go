package main

import (
	"context"
	"fmt"
	goio "io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zerotask/zerotask/bench"
	"github.com/zerotask/zerotask/internal/procs"
)

func runBench(ctx context.Context, io *stdio, args []string) error {
	fs := newFlagSet("bench", "", "Measure ZeroTask end to end over tcp loopback: (1) sequential round trips (latency\n"+
		"p50/p90/p99), (2) pipelined calls with results (tasks/s), (3) fire-and-forget notifications\n"+
		"(tasks/s as completed by the nodes). By default it starts a broker and --nodes nodes as\n"+
		"separate processes of this binary, with their default flags (what users deploy), and is\n"+
		"the client itself; --in-process runs them all in this process; --broker drives an existing\n"+
		"broker and the nodes connected to it. Reports the CPU time per task of each role and each\n"+
		"process's peak RSS. Prints a table, or JSON with --json; a progress bar on stderr when\n"+
		"stderr is a terminal.").
		withLogLevel(slog.LevelWarn)
	brokerEP := fs.String("broker", "", "existing broker ROUTER endpoint to measure (default: start a broker and nodes)")
	inProcess := fs.Bool("in-process", false, "run the broker and nodes in this process instead of as separate processes")
	nodes := fs.Int("nodes", bench.DefaultNodes, "nodes to start (without --broker)")
	clients := fs.Int("clients", 1, "client processes running the phases at once (more than 1: started from this binary, their reports merged)")
	fixedCredit := fs.Bool("fixed-credit", false, "start the nodes with --fixed-credit: credit always concurrency + prefetch, not sized by the node (without --broker)")
	storeURL := fs.String("store", "memory://", "the broker's store (without --broker): memory:// or redis://host:port/db (durable: each task written to Redis before it is acknowledged)")
	nodeConc := fs.Int("node-concurrency", 0, "each node's concurrency (0 = the node's default: the number of CPUs; without --broker)")
	conc := intList{bench.DefaultConcurrency}
	fs.Var(&conc, "concurrency", "calls in flight in the pipelined phase; a comma-separated list runs it once per level (the client keeps at most 10,000 in flight)")
	pipeline := fs.String("pipeline", bench.PipelineMap, "how the pipelined phase keeps calls in flight: map (client.Map from --senders goroutines; latency from a probe call every millisecond) or calls (one CallRaw goroutine per call in flight, each call timed)")
	senders := fs.Int("senders", 0, "goroutines sending in the notify phase and calling Map in the pipelined phase (0 = GOMAXPROCS)")
	prefetch := fs.Int("prefetch", 0, "each node's prefetch: the bound of its credit beyond its concurrency (0 = the node's default; without --broker)")
	dur := fs.Duration("duration", bench.DefaultDuration, "how long each phase runs (0 = bounded by --tasks only)")
	tasks := fs.Int64("tasks", 0, "tasks per phase at most (0 = bounded by --duration only)")
	method := fs.String("method", bench.DefaultMethod, "task method every phase calls")
	params := fs.String("params", "", "raw JSON params of each task (default: [5,6] for add and subtract, [\"x\"] for echo, [1] for sleep)")
	phases := fs.String("phases", strings.Join([]string{bench.PhaseSync, bench.PhaseAsync, bench.PhaseNotify}, ","), "phases to run, in order")
	timeout := fs.Duration("timeout", bench.DefaultTimeout, "how long replies may take past --duration before they count as errors")
	notifyShare := fs.Int("notify-share", 1, "client processes running the notify phase against the broker at once, which share its window of notifications ahead of the completions (--clients sets it for the processes it starts)")
	warmup := fs.Int("warmup", 1_000, "sequential calls before measuring (0 = none)")
	pinIdle := addPinIdleFlag(fs)
	asJSON := fs.Bool("json", false, "print the report as JSON instead of a table")
	curve := fs.Bool("curve", false, "CURVE on every connection of the broker and nodes the bench starts (keys made for the run; not with --broker, where --curve-server and --curve-secret give the keys)")
	sec := addPeerSecFlags(fs)
	cpuProfile := fs.String("cpuprofile", "", "write a pprof CPU profile of the measured phases (warm-up excluded) to `file`")
	memProfile := fs.String("memprofile", "", "write a pprof allocation profile (every allocation of the run) to `file`")
	if err := parse(fs, io, args, 0, 0); err != nil {
		return err
	}
	switch {
	case *dur < 0 || *tasks < 0:
		return usagef("--duration and --tasks must not be negative")
	case *dur == 0 && *tasks == 0:
		return usagef("--duration 0 needs --tasks: a phase must end")
	case *brokerEP != "" && fs.set("store"):
		return usagef("--store is for the broker the bench starts: an existing broker has its own")
	case *brokerEP != "" && *curve:
		return usagef("--curve is for the broker the bench starts; an existing CURVE broker takes --curve-server and --curve-secret")
	case *brokerEP == "" && sec.set():
		return usagef("--curve-server and --plain-user are for an existing broker (--broker); --curve secures the broker the bench starts")
	case *clients <= 0:
		return usagef("--clients must be positive, got %d", *clients)
	case *clients > 1 && *curve:
		return usagef("--clients and --curve exclude each other (the client processes would need the keys)")
	case *clients > 1 && *inProcess:
		return usagef("--clients needs separate processes: not with --in-process")
	case *brokerEP != "" && *inProcess:
		return usagef("--in-process and --broker exclude each other")
	case *nodes <= 0 && *brokerEP == "":
		return usagef("--nodes must be positive, got %d", *nodes)
	case len(conc) == 0 || slices.Min(conc) <= 0:
		return usagef("--concurrency must be positive, got %s", conc.String())
	case *notifyShare <= 0:
		return usagef("--notify-share must be positive, got %d", *notifyShare)
	case *nodeConc < 0 || *warmup < 0 || *senders < 0 || *prefetch < 0:
		return usagef("--node-concurrency, --warmup, --senders and --prefetch must not be negative")
	case *pipeline != bench.PipelineMap && *pipeline != bench.PipelineCalls:
		return usagef("unknown --pipeline %q (want %s or %s)", *pipeline, bench.PipelineMap, bench.PipelineCalls)
	}
	var rawParams []byte
	if *params != "" {
		p, err := paramsOf(nil, *params)
		if err != nil {
			return err
		}
		rawParams = p
	}
	var ph []string
	for _, p := range strings.Split(*phases, ",") {
		switch p = strings.TrimSpace(p); p {
		case "":
		case bench.PhaseSync, bench.PhaseAsync, bench.PhaseNotify:
			ph = append(ph, p)
		default:
			return usagef("unknown phase %q in --phases (want %s, %s or %s)", p, bench.PhaseSync, bench.PhaseAsync, bench.PhaseNotify)
		}
	}
	warm := *warmup
	if warm == 0 {
		warm = -1 // bench.Config: negative means none
	}
	copts, err := sec.clientOptions()
	if err != nil {
		return err
	}
	log := fs.logger(io.err)
	cfg := bench.Config{
		EnvConfig: bench.EnvConfig{Broker: *brokerEP, Store: *storeURL, Nodes: *nodes, NodeConcurrency: *nodeConc,
			NodePrefetch: *prefetch, NodeFixedCredit: *fixedCredit, Curve: *curve, Logger: log,
			ClientOptions: copts, ClientArgs: sec.args()},
		Load: bench.Load{Method: *method, Params: rawParams, Tasks: *tasks, Duration: *dur,
			Concurrency: conc[0], Pipeline: *pipeline, Senders: *senders, Timeout: *timeout, NotifyShare: *notifyShare},
		Phases:   ph,
		InFlight: conc,
		Warmup:   warm,
		Clients:  *clients,
	}
	if !*pinIdle {
		// Every process of the run keeps its CPUs, or none of them would share one.
		off := "--pin-idle=false"
		cfg.BrokerArgs = append(cfg.BrokerArgs, off)
		cfg.NodeArgs = append(cfg.NodeArgs, off)
		cfg.ClientArgs = append(cfg.ClientArgs, off)
	}
	if *brokerEP == "" && !*inProcess || *clients > 1 {
		bin, err := os.Executable()
		if err != nil {
			return fmt.Errorf("bench: this binary's path, to start the broker and nodes from: %w (try --in-process)", err)
		}
		cfg.Binary = bin
	}
	for _, p := range []struct {
		flag, path string
		to         *goio.Writer
	}{{"cpuprofile", *cpuProfile, &cfg.CPUProfile}, {"memprofile", *memProfile, &cfg.MemProfile}} {
		if p.path == "" {
			continue
		}
		f, err := os.Create(p.path)
		if err != nil {
			return fmt.Errorf("bench: --%s: %w", p.flag, err)
		}
		defer f.Close()
		*p.to = f
	}
	if io.errFile != nil && bench.IsTerminal(io.errFile) {
		cfg.Progress = bench.NewProgress(io.errFile)
	}
	if !*asJSON {
		where := "broker and " + strconv.Itoa(*nodes) + " node(s) as separate processes"
		if *inProcess {
			where = "broker and " + strconv.Itoa(*nodes) + " node(s) in this process"
		}
		if *storeURL != "memory://" {
			where += ", store " + *storeURL
		}
		if *brokerEP != "" {
			where = "existing broker " + *brokerEP
		}
		fmt.Fprintf(io.err, "zerotask bench: %s, phases %s, %v each, GOMAXPROCS=%d ...\n",
			where, strings.Join(ph, ","), phaseBudget(*dur, *tasks), procs.Max())
	}
	// The client runs the binary's adaptive GOMAXPROCS as the broker and nodes it starts do
	// (internal/procs; off when GOMAXPROCS is set): the report says so.
	stopProcs := procs.Start(context.Background(), procs.Policy{NoPin: !*pinIdle}, log)
	defer stopProcs()
	rep, err := bench.Run(ctx, cfg)
	if rep != nil && len(rep.Phases) > 0 { // interrupted or failed: show what was measured
		var werr error
		if *asJSON {
			werr = rep.WriteJSON(io.out)
		} else {
			werr = rep.WriteTable(io.out)
		}
		if err == nil {
			err = werr
		}
	}
	return err
}

// phaseBudget describes how each phase ends, for the opening line.
func phaseBudget(d time.Duration, tasks int64) string {
	switch {
	case tasks > 0 && d > 0:
		return fmt.Sprintf("%v or %d tasks", d, tasks)
	case tasks > 0:
		return fmt.Sprintf("%d tasks", tasks)
	default:
		return d.String()
	}
}

// intList is a flag holding a comma-separated list of integers ("128,1024").
type intList []int

// String returns the list as given: comma-separated.
func (l *intList) String() string {
	parts := make([]string, len(*l))
	for i, n := range *l {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ",")
}

// Set parses a comma-separated list, replacing the default.
func (l *intList) Set(s string) error {
	var out intList
	for _, p := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil {
			return fmt.Errorf("not a list of integers: %q", s)
		}
		out = append(out, n)
	}
	*l = out
	return nil
}
