package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/zerotask/zerotask/bench"
)

func runBench(ctx context.Context, io *stdio, args []string) error {
	fs := newFlagSet("bench", "", "Measure ZeroTask end to end over tcp loopback: (1) sequential round trips (latency\n"+
		"p50/p90/p99), (2) pipelined calls with results (tasks/s), (3) fire-and-forget notifications\n"+
		"(tasks/s as completed by the nodes). Without --broker it starts a broker and --nodes nodes in\n"+
		"this process; with --broker it drives an external broker and the nodes connected to it.\n"+
		"Prints a table, or JSON with --json; a progress bar on stderr when stderr is a terminal.").
		withLogLevel(slog.LevelWarn)
	brokerEP := fs.String("broker", "", "external broker ROUTER endpoint (default: start a broker and nodes in this process)")
	nodes := fs.Int("nodes", bench.DefaultNodes, "in-process nodes to start (without --broker)")
	nodeConc := fs.Int("node-concurrency", 0, "each in-process node's concurrency (0 = the number of CPUs)")
	conc := fs.Int("concurrency", bench.DefaultConcurrency, "calls in flight in the pipelined phase")
	dur := fs.Duration("duration", bench.DefaultDuration, "how long each phase runs (0 = bounded by --tasks only)")
	tasks := fs.Int64("tasks", 0, "tasks per phase at most (0 = bounded by --duration only)")
	method := fs.String("method", bench.DefaultMethod, "task method every phase calls")
	params := fs.String("params", "", "raw JSON params of each task (default: [5,6] for add and subtract, [\"x\"] for echo, [1] for sleep)")
	phases := fs.String("phases", strings.Join([]string{bench.PhaseSync, bench.PhaseAsync, bench.PhaseNotify}, ","), "phases to run, in order")
	timeout := fs.Duration("timeout", bench.DefaultTimeout, "how long replies may take past --duration before they count as errors")
	warmup := fs.Int("warmup", 1_000, "sequential calls before measuring (0 = none)")
	asJSON := fs.Bool("json", false, "print the report as JSON instead of a table")
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
	case *nodes <= 0 && *brokerEP == "":
		return usagef("--nodes must be positive, got %d", *nodes)
	case *conc <= 0:
		return usagef("--concurrency must be positive, got %d", *conc)
	case *nodeConc < 0 || *warmup < 0:
		return usagef("--node-concurrency and --warmup must not be negative")
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
	log := fs.logger(io.err)
	cfg := bench.Config{
		EnvConfig: bench.EnvConfig{Broker: *brokerEP, Nodes: *nodes, NodeConcurrency: *nodeConc, Logger: log},
		Load: bench.Load{Method: *method, Params: rawParams, Tasks: *tasks, Duration: *dur,
			Concurrency: *conc, Timeout: *timeout},
		Phases: ph,
		Warmup: warm,
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("bench: --cpuprofile: %w", err)
		}
		defer f.Close()
		cfg.CPUProfile = f
	}
	if *memProfile != "" {
		f, err := os.Create(*memProfile)
		if err != nil {
			return fmt.Errorf("bench: --memprofile: %w", err)
		}
		defer f.Close()
		cfg.MemProfile = f
	}
	if io.errFile != nil && bench.IsTerminal(io.errFile) {
		cfg.Progress = bench.NewProgress(io.errFile)
	}
	if !*asJSON {
		where := "in-process broker"
		if *brokerEP != "" {
			where = *brokerEP
		}
		fmt.Fprintf(io.err, "zerotask bench: %s, phases %s, %v each, GOMAXPROCS=%d ...\n",
			where, strings.Join(ph, ","), phaseBudget(*dur, *tasks), runtime.GOMAXPROCS(0))
	}
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
