package bench_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"time"

	"github.com/zerotask/zerotask/bench"
)

// ExampleRun measures an in-process broker and node for a few hundred tasks per phase and prints
// the report as a table (figures vary, so this example is compiled but its output not checked).
func ExampleRun() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := bench.Run(ctx, bench.Config{
		EnvConfig: bench.EnvConfig{Nodes: 1},
		Load:      bench.Load{Method: "add", Tasks: 500, Concurrency: 16},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = rep.WriteTable(os.Stdout)
}

// ExampleNewEnv drives an Env phase by phase.
func ExampleNewEnv() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env, err := bench.NewEnv(ctx, bench.EnvConfig{Nodes: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer env.Close()
	res, err := env.Sync(ctx, bench.Load{Tasks: 100})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Name, res.Tasks, res.Errors)
	// Output: sync 100 0
}

// ExampleHistogram records latencies and reads percentiles.
func ExampleHistogram() {
	var h bench.Histogram
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	fmt.Println(h.Count(), h.Min(), h.Max())
	fmt.Println(h.Quantile(0.5).Round(10*time.Microsecond), h.Quantile(0.99).Round(10*time.Microsecond))
	// Output:
	// 1000 1µs 1ms
	// 500µs 990µs
}

// ExampleConfig_inFlight runs the pipelined phase at two in-flight levels, through client.Map
// (the default pipeline), and writes the allocation profile of the run.
func ExampleConfig_inFlight() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var prof bytes.Buffer
	rep, err := bench.Run(ctx, bench.Config{
		EnvConfig:  bench.EnvConfig{Nodes: 1, NodePrefetch: 256},
		Load:       bench.Load{Method: "add", Tasks: 200, Pipeline: bench.PipelineMap},
		Phases:     []string{bench.PhaseAsync},
		InFlight:   []int{16, 64},
		MemProfile: &prof,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("node prefetch", rep.NodePrefetch)
	for _, p := range rep.Phases {
		fmt.Println(p.Name, p.Concurrency, p.Pipeline, p.Tasks, p.Errors)
	}
	fmt.Println("profile written:", prof.Len() > 0)
	// Output:
	// node prefetch 256
	// async 16 map 200 0
	// async 64 map 200 0
	// profile written: true
}
