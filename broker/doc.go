// Package broker is ZeroTask's broker: it binds a ROUTER socket that clients and nodes connect
// to and a PUB socket for notifications, queues the tasks clients call, hands them to nodes by
// credit, and routes each result back to its caller. docs/protocol.md is the contract it
// implements; this page says how.
//
// # What it owns
//
//   - Task calls: any JSON-RPC request whose method is not broker.* or rpc.* is queued per
//     method, handed to a node that serves the method and has credit, and its response goes
//     back with the caller's own id, byte for byte. Notifications are run and never answered.
//     Batches are answered as one array once every member is done, or member by member
//     (packed) for a client that said broker.hello {"unordered":true}. A REQ socket works like
//     a DEALER: the empty delimiter frame is echoed.
//   - Its own methods: broker.hello, credit, running, bye (nodes), submit, status, result
//     (with a wait answered on completion), revoke, stats, nodes, ping. Users add broker tasks
//     by registering broker.<name> handlers on Config.Dispatcher; they run in the broker
//     process on a bounded set of goroutines (Config.BrokerTaskWorkers, BrokerTaskQueue), off
//     the routing loop. Built-ins win over user handlers of the same name.
//   - Credit-based pulling: a node says hello (methods, concurrency) and grants credit; the
//     broker never has more tasks out at a node than the credit it granted, and picks among
//     the nodes of a method round robin per flush: the tasks handed out between two flushes go
//     to one node while it has credit (up to MaxBatch), so a burst leaves as one message to one
//     node, and the next flush starts at the next node. A queue is non-empty only while none of
//     its nodes has credit, so no node hoards while another idles.
//   - Node death (a ZMTP disconnect, including 3 missed heartbeats, or broker.bye): every task the
//     node held goes back to the front of its queue in state RETRY, its attempt counted, and runs
//     elsewhere (while it has attempts left: then it fails with CodeNodeLost); at a bye, a task
//     the node never reported running was handed back unstarted and is not counted (as for a
//     refusal for credit). A late result from the old holder is ignored: the id a node sees names
//     one hand-out of one broker run (see "Task keys" below). Answers.go: an invalid answer to a
//     held task fails it (CodeBadAnswer), one naming no task closes the node's connection; a
//     peer sending node messages without a node hello gets broker.hello_required once.
//     Progress.go: a node silent past Config.ProgressTimeout loses its unstarted tasks, and every
//     hand-out runs under its deadline or Config.TaskTimeout.
//     A disconnect is applied only after the messages the connection sent before it have been
//     handled, so a node that answers and goes away at once has its answers routed, not its
//     tasks retried. A node's arrays (results, running and credit
//     notices) are walked member by member and may hold up to twice MaxBatch members.
//   - Client disconnect: its queued calls are dropped, its pending replies with them; calls
//     already at a node still run (their results are dropped), submitted tasks are not a
//     client's and keep going.
//   - Task states QUEUED, RUNNING, SUCCESS, FAILURE, RETRY, REVOKED, EXPIRED and UNKNOWN; the
//     records of finished submitted tasks kept in memory for Config.ResultTTL, at most
//     Config.MaxResults (and, in durable mode, written to Config.Store as well: see
//     docs/durability.md).
//   - Deadlines (a protocol extension): a call with a top-level "timeout_ms" member, or a
//     broker.submit with that param, expires if it is still queued when the time is up
//     (CodeExpired, state EXPIRED); handed to a node, the task takes the milliseconds left along
//     and the node ends its handler's context then; a node that has not answered 3 heartbeat
//     intervals past the deadline loses the task (CodeDeadline, a late answer is ignored).
//   - Reliability (docs/reliability.md): retries of errors a node marks retryable, with a
//     jittered exponential backoff, while attempts are left (retry.go); delayed tasks
//     (delay_ms, eta_ms) and retry backoffs held in a schedule apart from every queue and node,
//     so a delay never causes a second run (schedule.go); idempotency keys on submit (keys.go);
//     priorities 0-9 within a queue and named queues that nodes choose in their hello (a queue
//     is a method in a named queue); revoke told to the holding node on the ROUTER as well as
//     on the PUB; a shutdown that tells every peer and keeps the results of the tasks still
//     running readable until they are read or ResultGrace passes. The options travel as
//     extension members of a call or params of broker.submit (ext.go), read without
//     allocating; a call without them costs a few byte searches.
//   - Durable mode (Config.Store, docs/durability.md): with a store (Redis), every accepted
//     task is written to it, held under Config.StoreOwner, before the broker acknowledges it
//     (a submit's answer; a call's task before it goes to a node), in one batch per round trip
//     (durable.go: the holder goroutine); a finished task's result is put, then the task acked
//     (the finisher goroutine: an ack never precedes its result); a start under the same
//     owner recovers what an earlier run held, and queues whose nodes idle claim tasks from
//     the store; status and result of tasks this broker does not know are read from the store
//     off the routing loop. Routing itself stays in memory, and none of this runs under the
//     lock but the bookkeeping: the store calls are made by those goroutines.
//   - Workflows (workflow.go, docs/workflows.md): a broker.submit with "workflow" carries a
//     graph of chains, groups and chords, accepted whole or refused whole, with one id whose
//     record lists every step. The graph lives in the routing state: its steps are submitted
//     tasks started as the results they take arrive (a step's end is noted where its record
//     is stored and acted on at the next flush), results pass as raw bytes, and a revoke or
//     a fail-fast failure revokes every step not finished. Bounds: MaxWorkflowSteps,
//     MaxWorkflowDepth, MaxWorkflows. In durable mode (workflow_durable.go) the graph is a
//     task of the store queue protocol.WorkflowQueue and its steps durable tasks with ids
//     derived from the graph's, so a restarted broker resumes it from its steps' results.
//   - PUB notifications, batched per tick (Config.Tick, 5 ms): "tasks.<method>" when tasks
//     wait for a method, "state" for state changes of submitted tasks, "control" for revokes
//     and shutdown. PUB only wakes and informs; credit is the truth.
//
// # Limits
//
// Every limit is a Config field with its default: MaxQueued (queued and delayed tasks, and tasks
// being written to a store; CodeQueueFull at once; nothing already accepted is dropped),
// MaxInFlightPerClient (CodeTooManyInFlight), MaxBatch (-32600), MaxMsgSize (zmtp closes the
// connection), MaxMethodLen (-32600), MaxMethods (CodeQueueFull), MaxResults, MaxResultBytes and
// ResultTTL, MaxWaiting (CodeQueueFull; store lookups count too), StoreTimeout (a store call past
// it fails: CodeQueueFull for the tasks being written), MaxBacklog (replies to a peer that does not
// read are dropped and counted), MaxAttempts, MaxDelay (-32602), SendHWM, MaxConns and
// MaxConnsPerAddr (a connection past them is closed at once; on both sockets, a connection
// silent past zmtp's handshake deadline or for 3 heartbeat intervals is closed, ZMTP 3.0 peers
// included), BrokerTaskWorkers and BrokerTaskQueue (CodeQueueFull), MaxNodeName and
// MaxNodeLists (a node's hello, -32602). During Shutdown new tasks get CodeShuttingDown. The
// error codes are the exported Code* constants.
//
// No message leaves larger than its receiver's limit (its hello's max_msg_size, else
// MaxMsgSize): internal/batch.Packer closes a message before a member would pass it; a task
// whose message to a node could pass MaxMsgSize is refused at submit (-32600); a reply that
// would pass its receiver's limit becomes a -32603 error with its id (Stats.TooLarge), a
// strict batch keeping room for one per member; a submitted task's result that would make
// its record unreadable in one message ends it FAILURE -32603.
//
// # Without a network
//
// Engine is the routing state without sockets, driven message by message: the cross-layer
// fuzz targets (package fuzz) and tests use it.
//
// # How the routing path is built
//
// One routing loop receives from the ROUTER and handles every message under Broker.mu,
// keeping on with whatever is already received (up to 256 messages) before it flushes the
// per-node task arrays and per-client reply arrays: a burst leaves in as few ZMTP messages as
// possible, a lone call leaves at once. Sends use zmtp's TrySend, which never blocks: a peer
// whose queue is full gets its messages kept by the broker and retried every tick, and the
// other peers are not held back. A ticker goroutine takes the same lock for the timers and the
// PUB batches, broker-task workers take it to deliver their replies; nothing under the lock
// does a syscall or waits (TrySend only copies into zmtp's per-peer buffer and may wake its
// writer goroutine). Lock order: Broker.mu, then zmtp's internal locks. A peer's
// disconnection comes through the same receive stream (zmtp's RouterNotify), after the peer's
// last message: a node's last results are handled before its tasks go back to their queues.
//
// Tasks are records in a chunked slab with a free list (88 bytes each; a task's client id and
// params share one buffer from size-classed free lists), queues are rings of 64-bit task keys, and
// every reference is a 32-bit slot: a million queued small tasks take about 115 MB of heap
// (TestQueuedMemory). Params and results are never decoded: each object is scanned once
// (codec.Scan; a client batch is walked once, and acted on only when the whole array proved valid)
// and raw bytes are copied once. The steady-state path from a client's request to a node's task and
// from the node's result to the client's reply allocates nothing (held to it by TestRoutingAllocs).
//
// # Task keys
//
// A task's key is gen<<26 | slot: the task's slot in the slab and a generation that is bumped every
// time the task is handed out, given back or freed, so a key names one hand-out of one task. Keys
// are below 2^53 so that every JSON library reads them exactly. The id a node sees is the hand-out
// id "<broker epoch>.<key>" (handout.go), so an answer to an earlier broker run's task is told
// apart too. The public id of a submitted task is "<broker epoch>-<sequence>-<tag>" (8 hex
// digits, a decimal sequence number, a secret keyed tag: taskid.go) and does not change across
// attempts.
//
// # Ownership
//
// A message received from the ROUTER is released as soon as it has been handled: everything
// that must outlive it (ids, params, results) is copied. Replies and tasks are encoded into
// buffers owned by the routing state and copied by zmtp's TrySend.
package broker
