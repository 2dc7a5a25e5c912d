// Package bench is ZeroTask's load generator: the code behind `zerotask bench` and the
// end-to-end benchmarks (`go test -bench . ./bench`).
//
// An Env is a client connected to a broker: either a broker and nodes started in this process
// over tcp loopback (port 0, the default), or an external broker (EnvConfig.Broker) whose nodes
// run elsewhere. In-process nodes grant a large prefetch (EnvConfig.NodePrefetch, default
// DefaultNodePrefetch = 4096): with the node's own default (its concurrency) the broker waits
// for credit every few tasks and the figures measure that wait. Three phases measure it:
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
