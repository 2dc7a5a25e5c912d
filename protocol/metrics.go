package protocol

// The metrics of `zerotask broker --http` and `zerotask node --http` on MetricsPath, in the
// Prometheus text format (docs/operations.md describes each one).
const (
	MetricsPath = "/metrics" // MetricsPath: the HTTP path of the metrics.

	// The broker's.
	MetricTasks          = "zerotask_tasks_total"              // by method, queue and outcome
	MetricTasksRefused   = "zerotask_tasks_refused_total"      // refused at a limit
	MetricTasksAccepted  = "zerotask_tasks_accepted_total"     // accepted
	MetricQueued         = "zerotask_queued_tasks"             // by method and queue
	MetricOldestAge      = "zerotask_queue_oldest_age_seconds" // by method and queue
	MetricScheduled      = "zerotask_scheduled_tasks"          // held back until a time
	MetricRunning        = "zerotask_running_tasks"            // held by nodes
	MetricNodes          = "zerotask_nodes"                    // connected nodes
	MetricClients        = "zerotask_clients"                  // connected other peers
	MetricHeapBytes      = "zerotask_heap_bytes"               // the process's heap objects (runtime/metrics)
	MetricQueuedSeconds  = "zerotask_task_queued_seconds"      // histogram by method and queue
	MetricRunningSeconds = "zerotask_task_running_seconds"     // histogram by method and queue
	MetricTotalSeconds   = "zerotask_task_end_to_end_seconds"  // histogram by method and queue
	MetricStoreWrites    = "zerotask_store_writes_total"       // durable mode
	MetricStoreErrors    = "zerotask_store_errors_total"       // durable mode
	MetricStoreClaimed   = "zerotask_store_claimed_total"      // durable mode

	// The node's.
	MetricNodeRunning        = "zerotask_node_running_tasks"   // handlers running
	MetricNodeHandlerSeconds = "zerotask_node_handler_seconds" // histogram by method
	MetricNodeTasks          = "zerotask_node_tasks_total"     // by method and outcome (succeeded, failed)
	MetricNodePanics         = "zerotask_node_panics_total"    // handler panics, by method

	// Labels.
	LabelMethod  = "method"
	LabelQueue   = "queue"
	LabelOutcome = "outcome"

	// MetricOtherMethod labels the series shared by the queues past the bound on kept series.
	MetricOtherMethod = "_other"
)

// The outcomes of MetricTasks.
const (
	OutcomeSucceeded = "succeeded"
	OutcomeFailed    = "failed"
	OutcomeRetried   = "retried"
	OutcomeRevoked   = "revoked"
	OutcomeExpired   = "expired"
)

// MetricBuckets are the upper bounds (seconds) of every duration histogram's buckets.
var MetricBuckets = [...]float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300}
