// Package node is ZeroTask's worker: it connects to a broker, pulls tasks with credit, runs them
// on a dispatcher and reports their results.
//
// A Node connects a DEALER to the broker's ROUTER and a SUB to its PUB (it binds nothing), says
// `broker.hello` with the methods of its dispatcher, and grants credit: the broker never sends
// more tasks than the credit granted. At most Concurrency handlers run at once, and tasks beyond
// them wait in the node for a free slot, so that a worker that finishes finds its next task
// already there.
//
// # Credit
//
// The node sizes its credit by itself. Its window (tasks held plus credit granted and unused) is
//
//	Concurrency + max(1, ceil(4 * Concurrency * rtt / svc))
//
// bounded by Concurrency + Prefetch (Prefetch defaults to DefaultPrefetch): enough tasks
// to cover one round trip to the broker at the node's service rate, four times over. svc is a moving
// average of how long a task keeps a worker (one sample counts as at most 8 times it); rtt is the smallest of the last 8 round trips of a
// credit grant sent as a request (`broker.credit` with an id, which the broker answers at once),
// probed at most every 50 ms while the node grants credit. Small tasks get a deep pipe (the
// window of add over loopback is in the thousands), slow tasks about one task beyond the
// workers, so a node does not hoard tasks another idle node could run. Until both figures are
// known the window is 2 x Concurrency. Config.FixedCredit keeps it at Concurrency + Prefetch.
// docs/protocol.md gives the algorithm for nodes written in other languages.
//
// # How a task flows
//
// A reader goroutine receives the broker's messages, scans them with codec (a batch of
// hand-outs in exactly the form the broker writes is read by comparing its fixed pieces, and
// anything else goes through codec; params are never decoded by the node itself), copies each
// task once into a pooled task record and queues it.
// A fixed pool of Concurrency worker goroutines takes tasks from that queue (the tasks of one
// broker message spread over all workers), runs each through Dispatcher.Call with the raw params,
// and appends the JSON-RPC response to a shared outgoing buffer. When a worker has nothing more
// ready (the queue is empty), when a batch is full, or when enough credit is owed to the broker,
// the worker sends whatever has accumulated, results of other workers included, as one message
// together with the new credit. So results coalesce under load, and a lone result leaves at
// once, from the worker's own goroutine, without a hand-off. Only when the socket cannot take
// the message at once (broker down, send queue full) does a background flusher take over and
// wait.
//
// A task that is still running about a millisecond after it started is reported with
// `broker.running` (ids packed together); a task that finishes before that is never reported as
// running: its result says it all.
//
// The path of a raw handler (dispatch.Handler) allocates one object per task in steady state:
// the task's context (below).
//
// # Handler contexts
//
// Each task runs with a context of its own, as a net/http request does, and it ends when the
// handler returns: a goroutine the handler leaves behind sees Done (context.Canceled), and
// nothing another task does reaches it. dispatch.TaskInfoFrom reads from it (or from any
// context derived from it) the task's public id (submitted tasks; the same for every attempt,
// for a handler's own idempotency), its attempt number, its queue and its deadline. It
// implements AfterFunc, so context.WithTimeout, WithCancel and context.AfterFunc inside a
// handler start no goroutine to watch it. It carries the values of Serve's context but not its
// cancellation (a node that stops finishes its running tasks), and it
// is cancelled when the task is revoked (`broker.revoke` on the PUB control topic, or sent to
// the node on its DEALER, which does not depend on the lossy PUB), or when the grace period of
// a stop runs out. It has a deadline when the task has one: the caller's deadline (the task's
// "timeout_ms", the milliseconds left when the broker handed it out) or the method's time limit
// (dispatch.TimeLimit, else Config.TimeLimit), whichever ends first; the context then ends with
// context.DeadlineExceeded and a handler that fails is answered with CodeDeadline. A task whose
// deadline passed while it waited in the node for a worker is not run: it is answered with
// CodeExpired. The deadline timer is the worker's own, re-armed per task: no allocation.
//
// A handler that says it never reads its context (dispatch.ContextFree, as the builtins add,
// subtract, echo and sum do; not when middleware wraps it, nor with Config.Metrics) runs
// without one: no per-task context, deadline timer or worker lock, since nothing could reach
// it. It is still not run when its deadline passed while it waited (CodeExpired), but a revoke
// or a deadline cannot stop it once it runs, and a fast one is not listed for running notices.
// When such a task arrives alone in its message while the node is idle (no task waiting, every
// worker waiting), the goroutine that read it from the connection runs it and writes its
// result, without waking a worker: it takes an idle worker's slot meanwhile, so at most
// Concurrency handlers still run at once, and a stop waits for it as for a worker. A message
// of several tasks, a task arriving while a worker is busy, and the next 64 messages after such
// a run took 20 us or more go to the workers: a context-free handler should be short, since
// its connection reads nothing while it runs on the reader.
//
// # Retries
//
// The node never runs a task twice by itself: the broker decides (docs/reliability.md). A
// failure the handler marked with dispatch.Retry or dispatch.RetryAfter, or any failure of a
// method registered with dispatch.RetryOnError (but not ErrSkipRetry, invalid params, deadlines or
// revokes), is answered with the extension members "retry":true and, when the handler chose
// the delay, "retry_after_ms"; the broker runs the task again while it has attempts left.
//
// # Queues
//
// Config.Queues names the broker queues the node takes tasks from (default: the default queue);
// it goes in every hello, with the methods of the dispatcher.
//
// # Connection loss, restart and stop
//
// The DEALER reconnects by itself; on every new connection the node says hello again and grants
// fresh credit (its window minus the tasks it still holds). Results that could not be sent while
// the broker was away are sent after the new hello: the broker ignores answers for tasks it did
// not give to this connection.
//
// When Serve's context ends, or Shutdown is called, the node stops gracefully: it grants no
// more credit, drops the tasks it received but did not start (the final `broker.bye` makes the
// broker put them back in their queues), lets running handlers finish for up to GracePeriod
// (or until Shutdown's context ends) and then cancels their contexts, sends the remaining
// results, says `broker.bye`, closes its sockets and returns ErrServerClosed. Results of
// handlers cancelled by the grace period are not reported: the bye hands those tasks back too.
//
// # Limits
//
//   - Concurrency (default runtime.NumCPU()) handlers at once, Prefetch (default DefaultPrefetch) tasks
//     waiting at most: the credit the node grants never exceeds their sum (and stays within the
//     window, see Credit).
//   - A task that arrives without credit while the node is full is answered at once with error
//     CodeNoCredit; a well-behaved broker never triggers it.
//   - Outgoing messages hold at most the broker's max_batch members (from its hello reply,
//     default 1024) and at most MaxMsgSize bytes (default 1 MiB), or the broker's
//     max_msg_size when smaller; a single result larger than that is replaced by a -32603
//     error. The hello announces MaxMsgSize: a broker whose own limit is larger refuses the
//     node, since it could send tasks the node would not take.
//   - GracePeriod (default 30s) bounds how long a stop waits for running handlers; the final
//     results and the bye then get up to 5 seconds to leave (no wait at all when the node has no
//     connection at that point: the broker has already put its tasks back).
package node
