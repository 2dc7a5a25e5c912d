package protocol

import "strings"

// MethodPrefix starts the name of every method the broker serves itself (built in, or a user
// broker task registered on the broker's dispatcher). Such a method is never queued for a node.
const MethodPrefix = "broker."

// The broker's built-in methods (docs/protocol.md).
const (
	MethodHello   = "broker.hello"   // MethodHello: a peer says it is a client or a node (request).
	MethodCredit  = "broker.credit"  // MethodCredit: a node grants more tasks (notification or request).
	MethodRunning = "broker.running" // MethodRunning: a node started these tasks (notification or request).
	MethodBye     = "broker.bye"     // MethodBye: a node leaves; what it holds goes back to the queues.
	MethodSubmit  = "broker.submit"  // MethodSubmit: queue a task, answered at once with its id.
	MethodStatus  = "broker.status"  // MethodStatus: a submitted task's record now.
	MethodResult  = "broker.result"  // MethodResult: a submitted task's record once it is finished (or after wait_ms).
	MethodRevoke  = "broker.revoke"  // MethodRevoke: revoke a task (request), or tell nodes to stop tasks (notification).
	MethodStats   = "broker.stats"   // MethodStats: the broker's counters.
	MethodNodes   = "broker.nodes"   // MethodNodes: the connected nodes.
	MethodPing    = "broker.ping"    // MethodPing: answered "pong".
	MethodPause   = "broker.pause"   // MethodPause: stop handing out a queue's tasks; it keeps accepting.
	MethodResume  = "broker.resume"  // MethodResume: hand out a paused queue's tasks again.
	MethodPurge   = "broker.purge"   // MethodPurge: drop the queued tasks of a queue or a method; answers how many.
	MethodList    = "broker.list"    // MethodList: one page of the tasks in a state, queue or method (live, finished or archived).
	MethodRequeue = "broker.requeue" // MethodRequeue: run archived tasks (FAILURE, EXPIRED, REVOKED) again with their params and options.
	MethodQueues  = "broker.queues"  // MethodQueues: every queue's depth, oldest age and outcome counts.
	// MethodProgress: a node reports a running task's progress (notification:
	// {"id":HANDOUT-ID,"progress":JSON}); the broker keeps the last one in the task's record
	// and publishes it on the state stream.
	MethodProgress = "broker.progress"
)

// The notifications the broker sends (on the ROUTER or on the PUB socket).
const (
	MethodShutdown = "broker.shutdown" // MethodShutdown: the broker is stopping.
	MethodState    = "broker.state"    // MethodState: a submitted task changed state (PUB topic TopicState).
	MethodTasks    = "broker.tasks"    // MethodTasks: tasks wait for a method (PUB topic TopicTasksPrefix+method).
	// MethodHelloRequired: the broker does not know this connection as a node (it restarted,
	// or it lost the node) and got what only a node sends (credit, a running notice, bye, an
	// answer): the node must say hello again. Params {"broker":"<broker id>"}.
	MethodHelloRequired = "broker.hello_required"
)

// IsBrokerMethod reports whether method names a method the broker serves itself (MethodPrefix).
func IsBrokerMethod(method string) bool { return strings.HasPrefix(method, MethodPrefix) }

// The PUB topics.
const (
	TopicState   = "state"   // TopicState carries MethodState notifications, batched per tick.
	TopicControl = "control" // TopicControl carries MethodRevoke and MethodShutdown notifications.
	// TopicTasksPrefix followed by a method name is the topic of that method's MethodTasks
	// notifications.
	TopicTasksPrefix = "tasks."
)

// The extension members of a task (docs/protocol.md): top-level members of a task call's
// object beside jsonrpc, id, method and params, or members of broker.submit's params. Other
// JSON-RPC servers ignore them.
const (
	MemberTimeoutMS    = "timeout_ms"     // MemberTimeoutMS: the task's deadline, in milliseconds from now.
	MemberDelayMS      = "delay_ms"       // MemberDelayMS: hold the task back that long before it is queued.
	MemberETAMS        = "eta_ms"         // MemberETAMS: hold the task back until that unix time in milliseconds.
	MemberPriority     = "priority"       // MemberPriority: 0 to MaxPriority within its queue, higher first.
	MemberQueue        = "queue"          // MemberQueue: the queue the task goes to (DefaultQueue when absent).
	MemberMaxAttempts  = "max_attempts"   // MemberMaxAttempts: hand-outs at most, 1 to MaxAttemptsCap.
	MemberBackoffMS    = "backoff_ms"     // MemberBackoffMS: the first retry delay, doubled per attempt.
	MemberMaxBackoffMS = "max_backoff_ms" // MemberMaxBackoffMS: the longest retry delay.
	MemberKey          = "key"            // MemberKey: an idempotency key (broker.submit only).
	MemberMethod       = "method"         // MemberMethod: a task's method, in a broker.state notice.
	MemberProgress     = "progress"       // MemberProgress: a running task's last progress report (raw JSON), in its record and broker.state notices.

	// MemberMeta: the task's metadata, a JSON object of at most MaxMetaLen bytes (a W3C
	// traceparent, user fields) that the broker carries byte for byte to the handler
	// (dispatch.TaskInfo.Meta) and into the task's record; it never reads inside it.
	MemberMeta = "meta"
)

// The extension members of a task as the broker hands it to a node, beside timeout_ms and
// queue (a queue other than DefaultQueue): what the node tells a handler of its task
// (dispatch.TaskInfoFrom).
const (
	MemberTask    = "task"    // MemberTask: the task's public id (submitted tasks; a call has none).
	MemberAttempt = "attempt" // MemberAttempt: this hand-out's attempt number, from 1.
)

// The extension members of a node's error response for a task that may run again.
const (
	MemberRetry        = "retry"          // MemberRetry: true when the failure is retryable.
	MemberRetryAfterMS = "retry_after_ms" // MemberRetryAfterMS: the delay the handler chose before the retry.
)

// The params of broker.status, broker.result and broker.revoke, and of broker.hello.
const (
	ParamID     = "id"      // ParamID: a task's public id, in the task requests.
	ParamIDs    = "ids"     // ParamIDs: task keys, in broker.running and broker.revoke notifications.
	ParamWaitMS = "wait_ms" // ParamWaitMS: how long broker.result may wait for the task to finish.
	ParamCredit = "credit"  // ParamCredit: the tasks granted by broker.credit.
)

// The params of broker.pause, broker.resume and broker.purge.
const (
	ParamQueue  = "queue"  // ParamQueue: a queue's name (DefaultQueue for the default one).
	ParamMethod = "method" // ParamMethod: a method's name.
)

// The members of the answers of broker.pause, broker.resume and broker.purge.
const (
	MemberPaused = "paused" // MemberPaused: whether the queue is paused now.
	MemberPurged = "purged" // MemberPurged: how many queued tasks were dropped.
)

// The params of broker.list and broker.requeue (beside ParamQueue and ParamMethod), and of
// broker.purge for the archive.
const (
	ParamState    = "state"    // ParamState: list or requeue only the tasks in this state.
	ParamOrder    = "order"    // ParamOrder: OrderOldest (the default) or OrderNewest.
	ParamLimit    = "limit"    // ParamLimit: the most tasks in one page (DefaultListLimit, at most MaxListLimit).
	ParamCursor   = "cursor"   // ParamCursor: where the page starts: the cursor of the page before.
	ParamArchived = "archived" // ParamArchived: broker.purge deletes archived tasks instead of queued ones.
)

// The orders of broker.list.
const (
	OrderOldest = "oldest" // OrderOldest lists the oldest tasks first (the default).
	OrderNewest = "newest" // OrderNewest lists the newest tasks first.
)

// The members of the answers of broker.list and broker.requeue, and of an archived task's record.
const (
	MemberTasks      = "tasks"       // MemberTasks: the page of task records.
	MemberCursor     = "cursor"      // MemberCursor: the cursor of the next page; absent when the listing is done.
	MemberRequeued   = "requeued"    // MemberRequeued: how many archived tasks run again.
	MemberParams     = "params"      // MemberParams: an archived task's raw params.
	MemberErrors     = "errors"      // MemberErrors: an archived task's attempts that failed: [{"attempt","error","node","at_ms"}].
	MemberError      = "error"       // MemberError: a failed attempt's JSON-RPC error object.
	MemberNode       = "node"        // MemberNode: the node an attempt ran on.
	MemberAtMS       = "at_ms"       // MemberAtMS: when an attempt failed, unix milliseconds.
	MemberCreatedMS  = "created_ms"  // MemberCreatedMS: when an archived task was accepted, unix milliseconds.
	MemberFinishedMS = "finished_ms" // MemberFinishedMS: when an archived task ended, unix milliseconds.
	MemberArchived   = "archived"    // MemberArchived: true in the record of a task read from the archive.
)

// The roles a broker.hello names.
const (
	RoleClient = "client" // RoleClient: a peer that sends tasks.
	RoleNode   = "node"   // RoleNode: a peer that runs tasks.
)

// The states of a task, as its records and MethodState notifications name them.
const (
	StateUnknown = "UNKNOWN" // StateUnknown: never seen, forgotten after its result TTL, or lost.
	StateQueued  = "QUEUED"  // StateQueued: waiting in a queue (or delayed, or at a node not yet started).
	StateRunning = "RUNNING" // StateRunning: its node reported it started.
	StateSuccess = "SUCCESS" // StateSuccess: finished with a result.
	StateFailure = "FAILURE" // StateFailure: finished with an error.
	StateRetry   = "RETRY"   // StateRetry: queued again after a retryable failure or the loss of its node.
	StateRevoked = "REVOKED" // StateRevoked: revoked before it finished.
	StateExpired = "EXPIRED" // StateExpired: its deadline passed before it ran.
)

// ValidName reports whether a method or queue name is free of control characters (U+0000 to
// U+001F and U+007F, escaped or not): the broker refuses other names before they become keys
// (a named queue's key joins the method and the queue name with a NUL, so a NUL inside a
// method name could name another queue).
func ValidName[T ~string | ~[]byte](name T) bool {
	for i := 0; i < len(name); i++ {
		if b := name[i]; b < 0x20 || b == 0x7f {
			return false
		}
	}
	return true
}
