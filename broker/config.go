package broker

import (
	"errors"
	"log/slog"
	"time"

	"github.com/zerotask/zerotask/dispatch"
	"github.com/zerotask/zerotask/protocol"
	"github.com/zerotask/zerotask/store"
	"github.com/zerotask/zerotask/zmtp"
)

// Default endpoints and limits. Every Config field whose zero value means "default" takes the
// value here; those the other roles share come from package protocol.
const (
	DefaultListen               = protocol.DefaultEndpoint             // DefaultListen is the default of Config.Listen.
	DefaultPub                  = protocol.DefaultPubEndpoint          // DefaultPub is the default of Config.Pub.
	DefaultHeartbeatInterval    = protocol.DefaultHeartbeatInterval    // DefaultHeartbeatInterval is the default of Config.HeartbeatInterval.
	DefaultResultTTL            = protocol.DefaultResultTTL            // DefaultResultTTL is the default of Config.ResultTTL.
	DefaultMaxResults           = protocol.DefaultMaxResults           // DefaultMaxResults is the default of Config.MaxResults.
	DefaultMaxResultBytes       = protocol.DefaultMaxResultBytes       // DefaultMaxResultBytes is the default of Config.MaxResultBytes.
	DefaultMemoryBudget         = protocol.DefaultMemoryBudget         // DefaultMemoryBudget is the default of Config.MemoryBudget.
	DefaultMaxQueued            = protocol.DefaultMaxQueued            // DefaultMaxQueued is the default of Config.MaxQueued.
	DefaultMaxInFlightPerClient = protocol.DefaultMaxInFlightPerClient // DefaultMaxInFlightPerClient is the default of Config.MaxInFlightPerClient.
	DefaultMaxInFlightBytes     = protocol.DefaultMaxInFlightBytes     // DefaultMaxInFlightBytes is the default of Config.MaxInFlightBytes.
	DefaultMaxStoreBytes        = protocol.DefaultMaxStoreBytes        // DefaultMaxStoreBytes is the default of Config.MaxStoreBytes.
	DefaultMaxBatch             = protocol.DefaultMaxBatch             // DefaultMaxBatch is the default of Config.MaxBatch.
	DefaultMaxMsgSize           = protocol.DefaultMaxMsgSize           // DefaultMaxMsgSize is the default of Config.MaxMsgSize.
	DefaultMaxMethods           = protocol.DefaultMaxMethods           // DefaultMaxMethods is the default of Config.MaxMethods.
	DefaultMaxWorkflowSteps     = protocol.DefaultMaxWorkflowSteps     // DefaultMaxWorkflowSteps is the default of Config.MaxWorkflowSteps.
	DefaultMaxWorkflowDepth     = protocol.DefaultMaxWorkflowDepth     // DefaultMaxWorkflowDepth is the default of Config.MaxWorkflowDepth.
	DefaultMaxWorkflows         = protocol.DefaultMaxWorkflows         // DefaultMaxWorkflows is the default of Config.MaxWorkflows.
	DefaultSendHWM              = protocol.DefaultSendHWM              // DefaultSendHWM is the default of Config.SendHWM.
	DefaultMaxConns             = protocol.DefaultMaxConns             // DefaultMaxConns is the default of Config.MaxConns.
	DefaultMaxConnsPerAddr      = protocol.DefaultMaxConnsPerAddr      // DefaultMaxConnsPerAddr is the default of Config.MaxConnsPerAddr.
	DefaultBrokerTaskWorkers    = 4                                    // DefaultBrokerTaskWorkers is the default of Config.BrokerTaskWorkers.
	DefaultBrokerTaskQueue      = protocol.DefaultBrokerTaskQueue      // DefaultBrokerTaskQueue is the default of Config.BrokerTaskQueue.
	DefaultTick                 = 5 * time.Millisecond                 // DefaultTick is the default of Config.Tick.
	DefaultMaxMethodLen         = protocol.DefaultMaxMethodLen         // DefaultMaxMethodLen is the default of Config.MaxMethodLen.
	DefaultMaxAttempts          = protocol.DefaultMaxAttempts          // DefaultMaxAttempts is the default of Config.MaxAttempts.
	DefaultRetryBackoff         = protocol.DefaultRetryBackoff         // DefaultRetryBackoff is the default of Config.RetryBackoff.
	DefaultMaxRetryBackoff      = protocol.DefaultMaxRetryBackoff      // DefaultMaxRetryBackoff is the default of Config.MaxRetryBackoff.
	DefaultMaxDelay             = protocol.DefaultMaxDelay             // DefaultMaxDelay is the default of Config.MaxDelay.
	DefaultMaxWaiting           = protocol.DefaultMaxWaiting           // DefaultMaxWaiting is the default of Config.MaxWaiting.
	DefaultClientShare          = protocol.DefaultClientShare          // DefaultClientShare is the default of Config.ClientShare.
	DefaultMaxBacklog           = protocol.DefaultMaxBacklog           // DefaultMaxBacklog is the default of Config.MaxBacklog.
	DefaultMaxBacklogTotal      = protocol.DefaultMaxBacklogTotal      // DefaultMaxBacklogTotal is the default of Config.MaxBacklogTotal.
	DefaultMaxNodeBytes         = protocol.DefaultMaxNodeBytes         // DefaultMaxNodeBytes is the default of Config.MaxNodeBytes.
	DefaultResultGrace          = 5 * time.Second                      // DefaultResultGrace is the default of Config.ResultGrace.
	DefaultStoreTimeout         = 5 * time.Second                      // DefaultStoreTimeout is the default of Config.StoreTimeout.
	DefaultTaskTimeout          = protocol.DefaultTaskTimeout          // DefaultTaskTimeout is the default of Config.TaskTimeout.
	DefaultProgressTimeout      = protocol.DefaultProgressTimeout      // DefaultProgressTimeout is the default of Config.ProgressTimeout.
	DefaultMaxNodeName          = protocol.DefaultMaxNodeName          // DefaultMaxNodeName is the default of Config.MaxNodeName.
	DefaultMaxNodeLists         = protocol.DefaultMaxNodeLists         // DefaultMaxNodeLists is the default of Config.MaxNodeLists.
	DefaultArchiveMax           = protocol.DefaultArchiveMax           // DefaultArchiveMax is the default of Config.ArchiveMax.
	DefaultArchiveMaxBytes      = protocol.DefaultArchiveMaxBytes      // DefaultArchiveMaxBytes is the default of Config.ArchiveMaxBytes.
	DefaultArchiveTTL           = protocol.DefaultArchiveTTL           // DefaultArchiveTTL is the default of Config.ArchiveTTL.
)

// Bounds of the task options (docs/reliability.md); past one a request is answered with
// invalid params. They are package protocol's.
const (
	MaxPriority    = protocol.MaxPriority    // MaxPriority is the highest priority: 0 (the default) to 9, higher first.
	MaxQueueName   = protocol.MaxQueueName   // MaxQueueName bounds a queue name, in bytes.
	MaxKeyLen      = protocol.MaxKeyLen      // MaxKeyLen bounds an idempotency key, in bytes.
	MaxAttemptsCap = protocol.MaxAttemptsCap // MaxAttemptsCap bounds max_attempts and Config.MaxAttempts.
	// DefaultQueue is the name of the queue a task goes to when it names none, and the one a
	// node serves when its hello names none.
	DefaultQueue = protocol.DefaultQueue
)

// PubDisabled as Config.Pub disables the PUB socket.
const PubDisabled = protocol.NoEndpoint

// Error codes the broker answers with (package protocol has them all).
const (
	CodeQueueFull       = protocol.CodeQueueFull       // CodeQueueFull: a queue limit is reached; nothing was queued.
	CodeTooManyInFlight = protocol.CodeTooManyInFlight // CodeTooManyInFlight: the client has MaxInFlightPerClient requests pending.
	CodeShuttingDown    = protocol.CodeShuttingDown    // CodeShuttingDown: the broker is shutting down.
	CodeRevoked         = protocol.CodeRevoked         // CodeRevoked: the task was revoked.
	CodeExpired         = protocol.CodeExpired         // CodeExpired: the task's deadline passed before it ran.
	CodeNodeLost        = protocol.CodeNodeLost        // CodeNodeLost: the task's node was lost and it has no attempt left.
	// CodeDeadline is what a node answers when a task's deadline or time limit ended while it
	// ran; the broker records the task as FAILURE with that error.
	CodeDeadline = protocol.CodeDeadline
	// CodeNoCredit, with protocol.NoCreditData, is what a node answers a task that arrived
	// beyond the credit it granted: the task did not run, so it goes back to the front of its
	// queue with no attempt counted. The same code without that data is an ordinary error of
	// the task's handler.
	CodeNoCredit = protocol.CodeNoCredit
	// CodeBadAnswer: the node that held the task answered it with something that is not a
	// valid JSON-RPC response (the message names the node and what is wrong); the task fails.
	CodeBadAnswer = protocol.CodeBadAnswer
)

// The error objects the broker answers with. They are shared values: never modify them.
var (
	errQueueFull       = protocol.ErrQueueFull
	errTooManyMethods  = protocol.ErrTooManyMethods
	errTooManyInFlight = protocol.ErrTooManyInFlight
	errShuttingDown    = protocol.ErrShuttingDown
	errRevoked         = protocol.ErrRevoked
	errExpired         = protocol.ErrExpired
	errBrokerBusy      = protocol.ErrBrokerBusy
	errTooManyWaits    = protocol.ErrTooManyWaits
	errMethodShare     = protocol.ErrMethodShare
	errWaitShare       = protocol.ErrWaitShare
	errTaskBytes       = protocol.ErrTaskBytes
	errInFlightBytes   = protocol.ErrInFlightBytes
	errStoreBytes      = protocol.ErrStoreBytes
	errNodeLost        = protocol.ErrNodeLost
	errMethodTooLong   = protocol.ErrMethodTooLong
	errNotNode         = protocol.ErrNotNode
	errNotNodeKey      = protocol.ErrNotNodeKey
	errNotClientKey    = protocol.ErrNotClientKey
	errNotAdminKey     = protocol.ErrNotAdminKey
	errLeaseLost       = protocol.ErrLeaseLost
	errReplyTooLarge   = protocol.ErrReplyTooLarge
	errBatchTooLarge   = protocol.ErrBatchReplyTooLarge
)

// Sentinel errors.
var (
	// ErrServerClosed is returned by Serve after Shutdown (and, wrapped with the context's
	// error, when Serve's context ends).
	ErrServerClosed = errors.New("broker: server closed")
	// ErrServing is returned by a second call to Serve.
	ErrServing = errors.New("broker: already serving")
	// ErrConfig reports an invalid Config value.
	ErrConfig = errors.New("broker: invalid config")
)

// Config configures a Broker. The zero value works: every zero field takes the default given
// beside it.
type Config struct {
	// Listen is the ROUTER endpoint clients and nodes connect to. Default
	// "tcp://127.0.0.1:5555". Port 0 picks a free port (see Broker.Addr).
	Listen string
	// Pub is the PUB endpoint for notifications. Default "tcp://127.0.0.1:5556"; "none"
	// disables it.
	Pub string
	// Security is the ZMTP security mechanism of the ROUTER and the PUB socket, typically
	// zmtp.CurveServer with the broker's key pair and the keys allowed to connect. Default
	// (nil): NULL, no authentication and no encryption.
	Security zmtp.Mechanism
	// Authorize gives the connections that authenticated with a CURVE key their name and
	// roles (see Role): a key without RoleNode cannot say hello as a node (refused with
	// CodeForbidden, and its connection closed), one without RoleClient cannot call or submit
	// tasks. Default (nil): every connection may do everything.
	Authorize Authorizer
	// AuthorizeUser does for connections that authenticated with PLAIN (Security is
	// zmtp.PlainServer) what Authorize does for CURVE keys, from their username
	// (PlainUsers.Authorize is the built-in one). Default (nil): every connection may do
	// everything, named by its username.
	AuthorizeUser UserAuthorizer
	// Insecure lets the broker bind a non-loopback address (Listen or Pub) without a
	// Security mechanism: anyone who reaches it can submit tasks, or act as a node and read
	// every task. Default false: New refuses (protected mode), wrapping ErrUnprotected.
	Insecure bool
	// Dispatcher serves user broker tasks: handlers registered under a broker.* name (only
	// those names are used from it; built-in broker.* methods win). Default dispatch.Default.
	Dispatcher *dispatch.Dispatcher
	// HeartbeatInterval is the ZMTP heartbeat interval on the ROUTER and the PUB: a PING after
	// that much silence, and a peer silent for 3 intervals is dead (a node's tasks go back to
	// their queues). A ZMTP 3.0 peer has no PING to answer: it must send something within 3
	// intervals to stay connected. Default 1s.
	HeartbeatInterval time.Duration
	// ResultTTL is how long the record of a finished submitted task is kept. Default 1h.
	ResultTTL time.Duration
	// MaxResults bounds the finished records kept; past it the oldest are forgotten. Default
	// 1,000,000.
	MaxResults int
	// MaxResultBytes bounds the memory the finished records take (their raw JSON results and
	// errors plus 128 bytes each); past it the oldest are forgotten. Default MemoryBudget/4 (256 MiB). (With
	// Config.Store the store keeps the results for ResultTTL as well; these bounds are the
	// broker's own copy.)
	MaxResultBytes int64
	// ArchiveMax bounds the tasks the dead-letter archive keeps (submitted tasks that ended
	// FAILURE, EXPIRED or REVOKED, with their params, options and every attempt's error; see
	// archive.go); past it the oldest go. Default 100,000; negative: no archive.
	ArchiveMax int
	// ArchiveMaxBytes bounds the memory of the archive (params, errors and a fixed cost per
	// task); past it the oldest go. Default 128 MiB.
	ArchiveMaxBytes int64
	// ArchiveTTL is how long an archived task is kept, independent of ResultTTL. Default 7 days.
	ArchiveTTL time.Duration
	// MemoryBudget is the memory, in bytes, the broker's tasks and results may take: it gives
	// MaxTaskBytes (half of it) and MaxResultBytes (a quarter) their defaults; the rest is
	// room for what peers have in flight (docs/limits.md). Default 1 GiB.
	MemoryBudget int64
	// MaxTaskBytes bounds the memory of the live tasks (queued, scheduled, or at a node): their
	// params and ids as held, plus a fixed cost per task. Past it a new task is refused with
	// protocol.ErrTaskBytes (CodeQueueFull, data {"budget":"task_bytes"}). Default
	// MemoryBudget/2.
	MaxTaskBytes int64
	// MaxQueued bounds the tasks waiting in all queues together; past it a new task is refused with
	// CodeQueueFull at once (nothing accepted is ever dropped). Default 1,000,000; at most 60M.
	MaxQueued int
	// MaxInFlightPerClient bounds the requests of one client awaiting a reply (task calls,
	// broker.result waits, broker tasks); past it CodeTooManyInFlight. Default 10,000.
	MaxInFlightPerClient int
	// MaxInFlightBytes bounds the bytes of one client's task calls awaiting a reply (their
	// params and ids as held, plus the fixed cost per task of MaxTaskBytes), so that a client
	// that calls without reading cannot take MaxTaskBytes, nor queue more work ahead of other
	// clients' tasks at a node than that: past it a call is refused with
	// protocol.ErrInFlightBytes (CodeTooManyInFlight, data {"budget":"client_inflight_bytes"});
	// one call always fits when the client has none in flight. Default 4 MiB (MaxInFlightPerClient
	// calls of up to 128 bytes of id and params; 63 of 60 KB).
	MaxInFlightBytes int64
	// MaxNodeBytes bounds the bytes of params handed to one node and not answered yet, whatever
	// its credit: a node that holds this much gets no further task until an answer makes room
	// (one task always goes to a node that holds none). It bounds what travels ahead of any
	// task on a node's connection, both ways (the hand-outs before it, and the answers of the
	// tasks the node took first), so that one client's big tasks cannot hold up others' small
	// ones at a shared node for longer than that many bytes take (handout.go). Default 1 MiB.
	MaxNodeBytes int64
	// MaxStoreBytes bounds, in durable mode, the bytes of accepted tasks sent to the store and
	// not yet acknowledged by it (params plus 256 per task): while the store is slow or silent,
	// a new task past it is refused with protocol.ErrStoreBytes (CodeQueueFull, data
	// {"budget":"store_bytes"}) instead of piling up in memory, and accepted again as the
	// writes are answered. One task always fits when none is being written. Default 64 MiB.
	MaxStoreBytes int64
	// MaxBatch bounds the members of a batch (a longer one is answered with -32600) and the
	// tasks or replies the broker packs into one message. Default 1,024.
	MaxBatch int
	// MaxMsgSize bounds every frame and message received (zmtp closes a connection that sends
	// more). Default 1 MiB.
	MaxMsgSize int64
	// MaxMethods bounds the distinct method names with a queue (a name is forgotten when it has no
	// task and no node); past it a task for a new name is refused with CodeQueueFull. Default
	// 65,536.
	MaxMethods int
	// MaxWorkflowSteps bounds the task steps of one workflow graph (docs/workflows.md); a
	// larger graph is refused with -32602. Default 100,000.
	MaxWorkflowSteps int
	// MaxWorkflowDepth bounds how deep a graph's chains, groups and chords nest (the root is
	// depth 1; a chord counts two: its group and its callback are one level below it); a
	// deeper graph is refused with -32602. Default 32.
	MaxWorkflowDepth int
	// MaxWorkflows bounds the graphs kept, running and finished (a finished one is kept for
	// ResultTTL, or until room is needed); past it a graph is refused with CodeQueueFull.
	// Default 10,000.
	MaxWorkflows int
	// SendHWM bounds the messages queued in the ROUTER for one peer; past it the broker keeps
	// that peer's messages itself (bounded by its credit or in-flight limit) and retries every
	// tick, never blocking the other peers. Default 100,000.
	SendHWM int
	// MaxConns bounds the connections on the ROUTER (and on the PUB). Default 1,024.
	MaxConns int
	// MaxConnsPerAddr bounds the connections from one source IP address on the ROUTER (and on
	// the PUB), so that one host cannot take every slot of MaxConns; past it, that address's
	// new connections are closed at once. Default 256; -1 removes the bound (MaxConns alone).
	// Every peer on loopback, or behind one NAT or proxy, shares one address.
	MaxConnsPerAddr int
	// BrokerTaskWorkers bounds the user broker tasks running at once (each on a goroutine of its
	// own, off the routing loop). Default 4.
	BrokerTaskWorkers int
	// BrokerTaskQueue bounds the user broker tasks waiting for a worker; past it CodeQueueFull.
	// Default 1,024.
	BrokerTaskQueue int
	// Tick is the period of the PUB batches and of the timers (result waits and TTLs, retries
	// of blocked peers, delayed tasks). Default 5ms.
	Tick time.Duration
	// MaxMethodLen bounds a method name (and a queue name built on it), in bytes as written;
	// a longer one is answered -32600 and queues nothing. Default 1,024.
	MaxMethodLen int
	// MaxAttempts is how many times a task is handed to a node at most, unless the task says
	// otherwise (max_attempts): a retryable failure or the loss of its node runs it again while
	// attempts are left; then it fails (its last error, or CodeNodeLost for a lost node). Default
	// 10, at most 100.
	MaxAttempts int
	// RetryBackoff and MaxRetryBackoff shape the delay before a retryable failure runs again,
	// unless the task says otherwise (backoff_ms, max_backoff_ms): RetryBackoff doubled per
	// attempt, at most MaxRetryBackoff, the upper half of it jittered. A task given back by a
	// lost node runs again at once. Defaults 1s and 1min.
	RetryBackoff    time.Duration
	MaxRetryBackoff time.Duration
	// MaxDelay bounds delay_ms and eta_ms (from now): -32602 past it. Default 30 days.
	MaxDelay time.Duration
	// MaxWaiting bounds the broker.result calls waiting at once, over all clients; past it a
	// new wait is refused with CodeQueueFull. Default 100,000.
	MaxWaiting int
	// ClientShare is the percentage of MaxMethods and of MaxWaiting one client may hold (a
	// client: its CURVE key when it has one, else its connection), so that one client cannot
	// fill a table the others need: past its share a new method is refused with
	// protocol.ErrMethodShare, a new wait with protocol.ErrWaitShare (CodeQueueFull, data
	// naming the budget), and a node's hello that cannot register its methods fails. Default
	// 5 (20 clients fill a table); 100 gives one client the whole table.
	ClientShare int
	// MaxNodeName bounds a node's name in its hello, in bytes as written; a longer one is
	// answered -32602 and the node is not registered. Default 256.
	MaxNodeName int
	// MaxNodeLists bounds the bytes of the method and queue names a node's hello lists,
	// together (they land in every broker.nodes reply); past it the hello is answered -32602.
	// Default 64 KiB.
	MaxNodeLists int
	// MaxBacklog bounds, in bytes, the messages the broker keeps for one peer whose send queue
	// is full (a peer that does not read): past it further replies to that peer are dropped and
	// counted (Stats.Unsent); one message always fits an empty backlog. Default 64 MiB.
	MaxBacklog int64
	// MaxBacklogTotal bounds the bytes of those messages for all peers together, so that many
	// peers that do not read cannot hold MaxBacklog each: past it a reply to a peer that
	// already has a backlog is dropped and counted the same way (a peer's first message still
	// fits, so the total may pass it by one message per peer). Default 256 MiB.
	MaxBacklogTotal int64
	// ResultGrace is how long Shutdown keeps the broker answering broker.status and
	// broker.result after the running tasks finished, while results stored during the shutdown
	// have not been read (bounded by Shutdown's context too). Default 5s.
	ResultGrace time.Duration
	// Logger receives the broker's logs. Default slog.Default().
	Logger *slog.Logger
	// Store makes the broker durable (see "Durable mode" in the package doc): every accepted
	// task is written to it before the broker acknowledges it (a submit's answer, a call's
	// result), finished tasks' results are put there for ResultTTL and the tasks acked, and
	// a restart under the same StoreOwner gets back what the last run held. With a Redis
	// store, results and tasks outlive the broker and several brokers can share them. Default
	// nil: everything in the broker's memory (the embedded default: nothing to install). The
	// broker does not close it.
	Store store.Store
	// StoreOwner names this broker in the store: the tasks it accepts are held under this id,
	// and a broker starting with it takes back (store.Register) what an earlier run left. It
	// must be stable across restarts of one broker and distinct between brokers sharing a
	// store. Default "broker:<hostname>:<ROUTER endpoint>".
	StoreOwner string
	// TaskTimeout is the run time a task without a deadline of its own (timeout_ms) is given
	// when it is handed to a node: it travels as the task's timeout_ms, the node ends the
	// handler's context then (CodeDeadline), and a node that has not answered 3 heartbeat intervals
	// later loses the task (CodeDeadline), so no task is RUNNING forever. It bounds the run, not the
	// wait in a queue. Default 30 minutes; negative: none (a task without a deadline is held
	// until its node answers or is lost).
	TaskTimeout time.Duration
	// ProgressTimeout bounds how long a node may hold tasks it has not reported running while
	// it shows no progress at all (no answer, no broker.running notice): past it the node loses
	// those tasks (not the ones it reported running), which go back to the front of their
	// queues with no attempt counted; the node is sent a broker.revoke for them, and the event
	// is logged and counted (Stats.Reclaimed). Default 30s; negative: never.
	ProgressTimeout time.Duration
	// StoreTakeover lets a broker start under a StoreOwner that a live broker is using (its
	// lease is being renewed): New waits until that broker stops renewing (up to 10 minutes),
	// then takes the owner id's tasks over. Without it New fails (store.ErrOwnerLive), as two
	// live brokers with one owner id would keep each other's lease alive. An earlier run
	// that is gone (killed) is taken over without it, once New has seen its lease stand
	// still for 2.5 s.
	StoreTakeover bool
	// StoreTimeout bounds each store call (a write of a batch, a read, a claim). Default 5s.
	StoreTimeout time.Duration

	// Limits are the hand-out limits set at start (docs/workflows.md; broker.limit.set changes
	// them at run time). MaxLimits bounds how many exist at once. Default 10,000.
	Limits    []protocol.Limit
	MaxLimits int
	// Schedules are the periodic tasks set at start (broker.schedule.set adds more; in durable
	// mode those the store keeps are loaded too). MaxSchedules bounds how many exist at once.
	// Default 10,000.
	Schedules    []protocol.Schedule
	MaxSchedules int
	// Clock is the clock of schedules and limits; nil means time.Now. Tests set a fake one.
	Clock func() time.Time

	epoch string
}

// maxQueuedCap is the hard bound on MaxQueued: the task slab addresses 64M slots.
const maxQueuedCap = 60_000_000

// orDefault sets a zero or negative *v to def: the zero value of a Config field asks for its
// default.
func orDefault[T ~int | ~int64](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

func (c Config) withDefaults() (Config, error) {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Pub == "" {
		c.Pub = DefaultPub
	}
	if c.Dispatcher == nil {
		c.Dispatcher = dispatch.Default
	}
	orDefault(&c.HeartbeatInterval, DefaultHeartbeatInterval)
	orDefault(&c.ResultTTL, DefaultResultTTL)
	orDefault(&c.MaxResults, DefaultMaxResults)
	if c.ArchiveMax == 0 {
		c.ArchiveMax = DefaultArchiveMax
	}
	orDefault(&c.ArchiveMaxBytes, DefaultArchiveMaxBytes)
	orDefault(&c.ArchiveTTL, DefaultArchiveTTL)
	orDefault(&c.MemoryBudget, DefaultMemoryBudget)
	orDefault(&c.MaxTaskBytes, c.MemoryBudget/2)
	orDefault(&c.MaxResultBytes, c.MemoryBudget/4)
	orDefault(&c.MaxQueued, DefaultMaxQueued)
	if c.MaxQueued > maxQueuedCap {
		return c, errors.Join(ErrConfig, errors.New("MaxQueued is above 60,000,000"))
	}
	orDefault(&c.MaxInFlightPerClient, DefaultMaxInFlightPerClient)
	orDefault(&c.MaxBatch, DefaultMaxBatch)
	if c.MaxMsgSize == 0 {
		c.MaxMsgSize = DefaultMaxMsgSize
	}
	if c.MaxMsgSize < 0 {
		return c, errors.Join(ErrConfig, errors.New("MaxMsgSize must not be negative"))
	}
	orDefault(&c.MaxMethods, DefaultMaxMethods)
	orDefault(&c.MaxWorkflowSteps, DefaultMaxWorkflowSteps)
	orDefault(&c.MaxWorkflowDepth, DefaultMaxWorkflowDepth)
	orDefault(&c.MaxWorkflows, DefaultMaxWorkflows)
	orDefault(&c.SendHWM, DefaultSendHWM)
	orDefault(&c.MaxConns, DefaultMaxConns)
	if c.MaxConnsPerAddr == 0 {
		c.MaxConnsPerAddr = DefaultMaxConnsPerAddr
	} else if c.MaxConnsPerAddr < 0 {
		c.MaxConnsPerAddr = -1
	}
	orDefault(&c.BrokerTaskWorkers, DefaultBrokerTaskWorkers)
	orDefault(&c.BrokerTaskQueue, DefaultBrokerTaskQueue)
	orDefault(&c.Tick, DefaultTick)
	orDefault(&c.MaxMethodLen, DefaultMaxMethodLen)
	orDefault(&c.MaxAttempts, DefaultMaxAttempts)
	if c.MaxAttempts > MaxAttemptsCap {
		return c, errors.Join(ErrConfig, errors.New("MaxAttempts is above 100"))
	}
	orDefault(&c.RetryBackoff, DefaultRetryBackoff)
	orDefault(&c.MaxRetryBackoff, DefaultMaxRetryBackoff)
	if c.MaxRetryBackoff < c.RetryBackoff {
		return c, errors.Join(ErrConfig, errors.New("MaxRetryBackoff is below RetryBackoff"))
	}
	orDefault(&c.MaxDelay, DefaultMaxDelay)
	orDefault(&c.MaxWaiting, DefaultMaxWaiting)
	orDefault(&c.ClientShare, DefaultClientShare)
	if c.ClientShare > 100 {
		return c, errors.Join(ErrConfig, errors.New("ClientShare is a percentage: at most 100"))
	}
	orDefault(&c.MaxInFlightBytes, DefaultMaxInFlightBytes)
	orDefault(&c.MaxNodeBytes, DefaultMaxNodeBytes)
	orDefault(&c.MaxStoreBytes, DefaultMaxStoreBytes)
	orDefault(&c.MaxNodeName, DefaultMaxNodeName)
	orDefault(&c.MaxNodeLists, DefaultMaxNodeLists)
	orDefault(&c.MaxBacklog, DefaultMaxBacklog)
	orDefault(&c.MaxBacklogTotal, DefaultMaxBacklogTotal)
	orDefault(&c.ResultGrace, DefaultResultGrace)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.TaskTimeout == 0 {
		c.TaskTimeout = DefaultTaskTimeout
	}
	if c.TaskTimeout > 0 && c.TaskTimeout < time.Millisecond {
		return c, errors.Join(ErrConfig, errors.New("TaskTimeout is below 1ms"))
	}
	if c.ProgressTimeout == 0 {
		c.ProgressTimeout = DefaultProgressTimeout
	}
	orDefault(&c.StoreTimeout, DefaultStoreTimeout)
	orDefault(&c.MaxLimits, protocol.DefaultLimits)
	orDefault(&c.MaxSchedules, protocol.DefaultSchedules)
	return c, nil
}

// Stats are the broker's counters, readable at any time with Broker.Stats.
type Stats struct {
	Queued    int    // tasks waiting in queues
	Running   int    // tasks held by nodes (sent, started or not)
	Accepted  uint64 // tasks accepted (calls, notifications and submits)
	Submitted uint64 // tasks accepted through broker.submit
	Succeeded uint64 // tasks answered with a result
	Failed    uint64 // tasks answered with an error
	Retried   uint64 // tasks given back to their queue by a lost node
	Revoked   uint64 // tasks revoked
	Expired   uint64 // tasks expired before they ran
	Scheduled int    // tasks held back until a time (delay, eta, retry backoff)
	Duplicate uint64 // submits answered with the task of the same idempotency key
	Unsent    uint64 // replies dropped for a peer past MaxBacklog
	TooLarge  uint64 // replies and results replaced with -32603: past their receiver's message size
	Dropped   uint64 // queued calls dropped because their client disconnected
	Stale     uint64 // node responses ignored (not the task's current holder or attempt)
	Rejected  uint64 // requests refused at a limit (CodeQueueFull, CodeTooManyInFlight, CodeShuttingDown)
	BadFrames uint64 // frames or batch members answered with -32700 or -32600
	// HandedBack counts tasks that came back from a node unstarted (refused for credit,
	// handed back by a stopping node, or taken from a node that showed no progress): queued
	// again at the front, no attempt counted.
	HandedBack  uint64
	BadAnswers  uint64 // invalid answers to a task a node held: the task failed with CodeBadAnswer
	Violations  uint64 // node connections closed for a protocol violation (an answer naming no task, not JSON)
	Reclaimed   uint64 // times a node that showed no progress lost the tasks it had not started
	Forbidden   uint64 // requests refused because the connection's key lacks the role (CodeForbidden)
	Nodes       int    // connected nodes (said hello as a node)
	Clients     int    // other connected peers that sent something
	Results     int    // finished records kept
	Waiting     int    // broker.result calls waiting
	Methods     int    // method names with a queue
	Storing     int    // tasks accepted and being written to the store (durable mode)
	Stored      uint64 // tasks written to the store (durable mode)
	StoreErrors uint64 // task writes the store refused (durable mode; each task was refused)
	Claimed     uint64 // tasks taken from the store's queues: another run's or another broker's
	// HandshakeFailures counts the connections to the ROUTER and the PUB refused at their
	// handshake: an unknown CURVE key or PLAIN user, a wrong password, a peer without the
	// broker's mechanism (a NULL peer of a CURVE broker), a bad greeting, or a handshake past
	// its deadline. Such a peer never sends the broker a message.
	HandshakeFailures uint64
}
