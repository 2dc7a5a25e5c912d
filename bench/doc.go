// Package bench is ZeroTask's load generator: the code behind `zerotask bench` and the
// end-to-end benchmarks (`go test -bench . ./bench`).
//
// An Env is a client connected to a broker that nodes serve, in one of three topologies: the
// broker and nodes as child processes of the same zerotask binary with their default flags
// (EnvConfig.Binary; what `zerotask bench` does by default, and what users deploy), all of them
// in this process (the zero EnvConfig: `zerotask bench --in-process`), or an external broker
// whose nodes run elsewhere (EnvConfig.Broker). Three phases measure it:
//
//   - sync: sequential CallRaw round trips, one in flight: latency percentiles (p50, p90, p99).
//   - async: Concurrency calls in flight with results, kept there as Load.Pipeline says:
//     client.Map from Senders goroutines (PipelineMap, the default: requests leave in batches
//     as results come back, as a Go program running many tasks would; Map times no single
//     task, so the latency is that of a probe call every millisecond under that load), or
//     Concurrency goroutines each issuing CallRaw back to back (PipelineCalls: each call timed).
//     Config.InFlight runs it at several levels, one result each.
//   - notify: fire-and-forget notifications, counted as the nodes complete them (the nodes'
//     Stats in-process, the broker's broker.stats counters for an external broker): tasks/s.
//
// Every phase records the CPU time (user + system) each role used, from /proc for the child
// processes and this one, and the report gives it per task and as tasks/s per core of each
// role; the report also gives each process's peak RSS (VmHWM). Child processes are stopped by
// PID (SIGTERM, then SIGKILL after 10 s) when the Env closes, and on Linux die with the bench.
//
// Config.CPUProfile and MemProfile take pprof profiles of the measured phases (the whole
// process: client, broker and nodes when they run in-process). BenchmarkQueuedMemory (in the
// tests) measures the broker's memory per queued task with a million queued; docs/perf.md has
// the figures and how to repeat them.
//
// Each phase is bounded by a task count, a duration, or both (whichever comes first), and by
// Timeout past its duration for calls whose reply never comes. Latencies go to a Histogram
// (log-linear buckets, about 1.6% precision, constant memory, no allocation per sample): one per
// goroutine, merged at the end, so that measuring adds no shared counter to the path measured.
//
// Ownership: Run and the Env methods own the goroutines they start and stop them before they
// return; an Env owns its client, broker and nodes, and Close stops them all. Figures depend on
// the machine: a Report carries GOMAXPROCS, the CPU model and the Go version beside them.
package bench
