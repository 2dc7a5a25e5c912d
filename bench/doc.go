// Package bench is ZeroTask's load generator: the code behind `zerotask bench` and the
// end-to-end benchmarks (`go test -bench . ./bench`).
//
// An Env is a client connected to a broker: either a broker and nodes started in this process
// over tcp loopback (port 0, the default), or an external broker (EnvConfig.Broker) whose nodes
// run elsewhere. Three phases measure it:
//
//   - sync: sequential CallRaw round trips, one in flight: latency percentiles (p50, p90, p99).
//   - async: Concurrency goroutines each issuing CallRaw back to back, so that Concurrency calls
//     are in flight (the client packs them into few messages): tasks/s with results, and the
//     latency under that load.
//   - notify: fire-and-forget notifications, counted as the nodes complete them (the nodes'
//     Stats in-process, the broker's broker.stats counters for an external broker): tasks/s.
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
