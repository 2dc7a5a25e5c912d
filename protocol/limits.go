package protocol

import "time"

// Bounds of the task options (docs/reliability.md). The broker answers a request past one with
// invalid params; the client refuses it before sending.
const (
	MaxPriority    = 9              // MaxPriority is the highest priority: 0 (the default) to 9, higher first.
	MaxQueueName   = 128            // MaxQueueName bounds a queue name, in bytes.
	MaxKeyLen      = 256            // MaxKeyLen bounds an idempotency key, in bytes.
	MaxMetaLen     = 4096           // MaxMetaLen bounds a task's meta object (MemberMeta), in bytes as written.
	MaxAttemptsCap = 100            // MaxAttemptsCap bounds max_attempts and the broker's MaxAttempts.
	MaxTimeout     = 24 * time.Hour // MaxTimeout bounds timeout_ms (a longer one is cut to it).
	MaxWait        = time.Hour      // MaxWait bounds wait_ms of broker.result (a longer one is cut to it).
)

// DefaultQueue is the queue a task goes to when it names none, and the one a node serves when
// its hello names none.
const DefaultQueue = "default"

// Default endpoints.
const (
	// DefaultEndpoint is the broker's ROUTER endpoint: clients and nodes connect there.
	DefaultEndpoint = "tcp://127.0.0.1:5555"
	// DefaultPubEndpoint is the broker's PUB endpoint: nodes and monitors subscribe there.
	DefaultPubEndpoint = "tcp://127.0.0.1:5556"
	// NoEndpoint as a PUB (or SUB) endpoint disables that socket.
	NoEndpoint = "none"
)

// Default limits, shared by the roles (each one's configuration documents its own).
const (
	DefaultHeartbeatInterval    = time.Second             // DefaultHeartbeatInterval: a ZMTP PING after that much silence; 3 silent intervals end a connection.
	DefaultMaxMsgSize           = 1 << 20                 // DefaultMaxMsgSize bounds a frame and a message, in bytes.
	DefaultMaxBatch             = 1024                    // DefaultMaxBatch bounds the members of a batch, and of a message the roles pack.
	DefaultMaxInFlightPerClient = 10_000                  // DefaultMaxInFlightPerClient bounds the requests of one client awaiting a reply.
	DefaultMaxInFlightBytes     = 4 << 20                 // DefaultMaxInFlightBytes bounds the bytes of one client's task calls awaiting a reply (docs/limits.md).
	DefaultMaxQueued            = 1_000_000               // DefaultMaxQueued bounds the tasks waiting in a broker's queues (queued and delayed).
	DefaultMaxMethodLen         = 1024                    // DefaultMaxMethodLen bounds a method name, in bytes as written.
	DefaultMaxMethods           = 65_536                  // DefaultMaxMethods bounds the distinct method names with a queue.
	DefaultMaxAttempts          = 10                      // DefaultMaxAttempts is how many times a task is handed to a node at most.
	DefaultRetryBackoff         = time.Second             // DefaultRetryBackoff is the first retry delay, doubled per attempt.
	DefaultMaxRetryBackoff      = time.Minute             // DefaultMaxRetryBackoff is the longest retry delay.
	DefaultMaxDelay             = 30 * 24 * time.Hour     // DefaultMaxDelay bounds delay_ms and eta_ms (from now).
	DefaultMaxWaiting           = 100_000                 // DefaultMaxWaiting bounds the broker.result calls waiting at once.
	DefaultClientShare          = 5                       // DefaultClientShare is the percentage of MaxMethods and of MaxWaiting one client (identity, or CURVE key) may hold.
	DefaultBrokerTaskQueue      = 1024                    // DefaultBrokerTaskQueue bounds the user broker tasks waiting for a worker.
	DefaultResultTTL            = time.Hour               // DefaultResultTTL is how long a finished task's record is kept.
	DefaultMaxResults           = 1_000_000               // DefaultMaxResults bounds the finished records a broker keeps.
	DefaultMemoryBudget         = 1 << 30                 // DefaultMemoryBudget is the broker's memory budget in bytes (docs/limits.md): it sizes MaxTaskBytes and MaxResultBytes.
	DefaultMaxTaskBytes         = DefaultMemoryBudget / 2 // DefaultMaxTaskBytes bounds the memory of the live tasks (queued, scheduled or at a node), params included.
	DefaultMaxResultBytes       = DefaultMemoryBudget / 4 // DefaultMaxResultBytes bounds the memory of the finished records.
	DefaultMaxBacklog           = 64 << 20                // DefaultMaxBacklog bounds, in bytes, what a broker keeps for a peer that does not read.
	DefaultMaxBacklogTotal      = 256 << 20               // DefaultMaxBacklogTotal bounds, in bytes, what a broker keeps for all the peers that do not read, together (docs/limits.md).
	DefaultSendHWM              = 100_000                 // DefaultSendHWM bounds the messages queued in the ROUTER for one peer.
	DefaultMaxConns             = 1024                    // DefaultMaxConns bounds the connections on the broker's sockets.
	DefaultMaxConnsPerAddr      = 256                     // DefaultMaxConnsPerAddr bounds the connections from one source IP address on each of the broker's sockets.
	DefaultMaxNodeName          = 256                     // DefaultMaxNodeName bounds a node's name in its hello, in bytes.
	DefaultMaxNodeLists         = 64 << 10                // DefaultMaxNodeLists bounds a node's method and queue names in its hello, in bytes together.
	DefaultTaskTimeout          = 30 * time.Minute        // DefaultTaskTimeout is the run time a task without a deadline is given at its node.
	DefaultProgressTimeout      = 30 * time.Second        // DefaultProgressTimeout is how long a node may hold tasks it has not started without any answer or running notice.
	DefaultArchiveMax           = 100_000                 // DefaultArchiveMax bounds the tasks the dead-letter archive keeps.
	DefaultArchiveMaxBytes      = 128 << 20               // DefaultArchiveMaxBytes bounds the memory of the dead-letter archive, params and errors included.
	DefaultArchiveTTL           = 7 * 24 * time.Hour      // DefaultArchiveTTL is how long an archived task is kept.
	DefaultListLimit            = 100                     // DefaultListLimit is the page size of broker.list when the call names none.
	MaxListLimit                = 1000                    // MaxListLimit bounds the page size of broker.list.
	DefaultListScan             = 50_000                  // DefaultListScan bounds the entries one broker.list page looks at (a page with a filter that matches few tasks may come back short, with a cursor).
	DefaultListTime             = 2 * time.Millisecond    // DefaultListTime bounds the time one broker.list or broker.requeue call takes on the routing loop (a page cut short has a cursor).
	DefaultMaxStoreBytes        = 64 << 20                // DefaultMaxStoreBytes bounds the bytes of accepted tasks a durable broker has sent to the store and not seen acknowledged (docs/limits.md).
	DefaultMaxNodeBytes         = 1 << 20                 // DefaultMaxNodeBytes bounds the bytes of params a broker hands one node that it has not answered (docs/limits.md).
	DefaultPrefetch             = 16384                   // DefaultPrefetch bounds the tasks a node holds beyond its concurrency; its credit window sizes itself within (docs/protocol.md): a node running add at 1.5 million tasks/s needs ~16k in flight to stay busy across a 2 ms round trip.
)

// MaxProgressSize bounds the JSON value of one progress report (dispatch.Progress), in bytes:
// a node drops a larger one (ProgressRaw returns an error) and the broker ignores it.
const MaxProgressSize = 1024
