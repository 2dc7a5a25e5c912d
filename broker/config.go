package broker

import (
	"errors"
	"log/slog"
	"time"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/dispatch"
)

// Default endpoints and limits. Every Config field whose zero value means "default" takes the
// value here.
const (
	DefaultListen               = "tcp://127.0.0.1:5555" // DefaultListen is the default of Config.Listen.
	DefaultPub                  = "tcp://127.0.0.1:5556" // DefaultPub is the default of Config.Pub.
	DefaultHeartbeatInterval    = time.Second            // DefaultHeartbeatInterval is the default of Config.HeartbeatInterval.
	DefaultResultTTL            = time.Hour              // DefaultResultTTL is the default of Config.ResultTTL.
	DefaultMaxResults           = 1_000_000              // DefaultMaxResults is the default of Config.MaxResults.
	DefaultMaxQueued            = 1_000_000              // DefaultMaxQueued is the default of Config.MaxQueued.
	DefaultMaxInFlightPerClient = 10_000                 // DefaultMaxInFlightPerClient is the default of Config.MaxInFlightPerClient.
	DefaultMaxBatch             = 1024                   // DefaultMaxBatch is the default of Config.MaxBatch.
	DefaultMaxMsgSize           = 1 << 20                // DefaultMaxMsgSize is the default of Config.MaxMsgSize.
	DefaultMaxMethods           = 65_536                 // DefaultMaxMethods is the default of Config.MaxMethods.
	DefaultSendHWM              = 100_000                // DefaultSendHWM is the default of Config.SendHWM.
	DefaultMaxConns             = 1024                   // DefaultMaxConns is the default of Config.MaxConns.
	DefaultBrokerTaskWorkers    = 4                      // DefaultBrokerTaskWorkers is the default of Config.BrokerTaskWorkers.
	DefaultBrokerTaskQueue      = 1024                   // DefaultBrokerTaskQueue is the default of Config.BrokerTaskQueue.
	DefaultTick                 = 5 * time.Millisecond   // DefaultTick is the default of Config.Tick.
)

// PubDisabled as Config.Pub disables the PUB socket.
const PubDisabled = "none"

// Error codes the broker answers with (protocol.md, server-error range).
const (
	CodeQueueFull       = -32001 // CodeQueueFull: a queue limit is reached; nothing was queued.
	CodeTooManyInFlight = -32002 // CodeTooManyInFlight: the client has MaxInFlightPerClient requests pending.
	CodeShuttingDown    = -32003 // CodeShuttingDown: the broker is shutting down.
	CodeRevoked         = -32004 // CodeRevoked: the task was revoked.
	CodeExpired         = -32005 // CodeExpired: the task's deadline passed before it ran.
	CodeNodeLost        = -32006 // CodeNodeLost: the node was lost and no attempts are left (reserved: no limit yet).
)

// The error objects the broker answers with. They are shared values: never modify them.
var (
	errQueueFull       = codec.NewError(CodeQueueFull, "queue full", nil)
	errTooManyMethods  = codec.NewError(CodeQueueFull, "queue full: too many methods", nil)
	errTooManyInFlight = codec.NewError(CodeTooManyInFlight, "too many in-flight requests", nil)
	errShuttingDown    = codec.NewError(CodeShuttingDown, "broker shutting down", nil)
	errRevoked         = codec.NewError(CodeRevoked, "task revoked", nil)
	errExpired         = codec.NewError(CodeExpired, "task expired", nil)
	errBrokerBusy      = codec.NewError(CodeQueueFull, "queue full: broker tasks", nil)
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
	// Dispatcher serves user broker tasks: handlers registered under a "broker." name (only
	// those names are used from it; built-in broker.* methods win). Default dispatch.Default.
	Dispatcher *dispatch.Dispatcher
	// HeartbeatInterval is the ZMTP heartbeat interval on the ROUTER: a PING after that much
	// silence, and a peer silent for 3 intervals is dead (a node's tasks go back to their
	// queues). Default 1s.
	HeartbeatInterval time.Duration
	// ResultTTL is how long the record of a finished submitted task is kept. Default 1h.
	ResultTTL time.Duration
	// MaxResults bounds the finished records kept; past it the oldest are forgotten. Default
	// 1,000,000.
	MaxResults int
	// MaxQueued bounds the tasks waiting in all queues together; past it a new task is refused
	// with -32001 at once (nothing accepted is ever dropped). Default 1,000,000; at most 60M.
	MaxQueued int
	// MaxInFlightPerClient bounds the requests of one client awaiting a reply (task calls,
	// broker.result waits, broker tasks); past it -32002. Default 10,000.
	MaxInFlightPerClient int
	// MaxBatch bounds the members of a batch (a longer one is answered with -32600) and the
	// tasks or replies the broker packs into one message. Default 1,024.
	MaxBatch int
	// MaxMsgSize bounds every frame and message received (zmtp closes a connection that sends
	// more). Default 1 MiB.
	MaxMsgSize int64
	// MaxMethods bounds the distinct method names with a queue (a name is forgotten when it has
	// no task and no node); past it a task for a new name is refused with -32001. Default 65,536.
	MaxMethods int
	// SendHWM bounds the messages queued in the ROUTER for one peer; past it the broker keeps
	// that peer's messages itself (bounded by its credit or in-flight limit) and retries every
	// tick, never blocking the other peers. Default 100,000.
	SendHWM int
	// MaxConns bounds the connections on the ROUTER (and on the PUB). Default 1,024.
	MaxConns int
	// BrokerTaskWorkers bounds the user broker tasks running at once (each on a goroutine of its
	// own, off the routing loop). Default 4.
	BrokerTaskWorkers int
	// BrokerTaskQueue bounds the user broker tasks waiting for a worker; past it -32001.
	// Default 1,024.
	BrokerTaskQueue int
	// Tick is the period of the PUB batches and of the timers (result waits and TTLs, retries
	// of blocked peers). Default 5ms.
	Tick time.Duration
	// Logger receives the broker's logs. Default slog.Default().
	Logger *slog.Logger

	epoch string
}

// maxQueuedCap is the hard bound on MaxQueued: the task slab addresses 64M slots.
const maxQueuedCap = 60_000_000

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
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.ResultTTL <= 0 {
		c.ResultTTL = DefaultResultTTL
	}
	if c.MaxResults <= 0 {
		c.MaxResults = DefaultMaxResults
	}
	if c.MaxQueued <= 0 {
		c.MaxQueued = DefaultMaxQueued
	}
	if c.MaxQueued > maxQueuedCap {
		return c, errors.Join(ErrConfig, errors.New("MaxQueued is above 60,000,000"))
	}
	if c.MaxInFlightPerClient <= 0 {
		c.MaxInFlightPerClient = DefaultMaxInFlightPerClient
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.MaxMsgSize == 0 {
		c.MaxMsgSize = DefaultMaxMsgSize
	}
	if c.MaxMsgSize < 0 {
		return c, errors.Join(ErrConfig, errors.New("MaxMsgSize must not be negative"))
	}
	if c.MaxMethods <= 0 {
		c.MaxMethods = DefaultMaxMethods
	}
	if c.SendHWM <= 0 {
		c.SendHWM = DefaultSendHWM
	}
	if c.MaxConns <= 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.BrokerTaskWorkers <= 0 {
		c.BrokerTaskWorkers = DefaultBrokerTaskWorkers
	}
	if c.BrokerTaskQueue <= 0 {
		c.BrokerTaskQueue = DefaultBrokerTaskQueue
	}
	if c.Tick <= 0 {
		c.Tick = DefaultTick
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
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
	Dropped   uint64 // queued calls dropped because their client disconnected
	Stale     uint64 // node responses ignored (not the task's current holder or attempt)
	Rejected  uint64 // requests refused at a limit (-32001, -32002, -32003)
	BadFrames uint64 // frames or batch members answered with -32700 or -32600
	Nodes     int    // connected nodes (said hello as a node)
	Clients   int    // other connected peers that sent something
	Results   int    // finished records kept
	Waiting   int    // broker.result calls waiting
	Methods   int    // method names with a queue
}
