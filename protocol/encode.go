package protocol

import (
	"encoding/json"
	"strconv"

	"github.com/zerotask/zerotask/codec"
)

// The fixed parts of the control messages. Method names need no escaping, so they are written
// as they are.
const (
	notice        = `{"jsonrpc":"2.0","method":"`
	creditHead    = notice + MethodCredit + `","params":[`
	runningHead   = notice + MethodRunning + `","params":[`
	revokeHead    = notice + MethodRevoke + `","params":{"` + ParamIDs + `":[`
	stateHead     = notice + MethodState + `","params":`
	tasksHead     = notice + MethodTasks + `","params":{"method":`
	byeNotice     = notice + MethodBye + `"}`
	shutdownNote  = notice + MethodShutdown + `"}`
	helloReqHead  = notice + MethodHelloRequired + `","params":{"broker":"`
	clientHello   = `{"role":"` + RoleClient + `","unordered":true}`
	nodeHelloHead = `{"role":"` + RoleNode + `","name":`
)

// AppendMember appends `,"name":`, the start of one more member of an object being written.
func AppendMember(dst []byte, name string) []byte {
	dst = append(dst, `,"`...)
	dst = append(dst, name...)
	return append(dst, `":`...)
}

// AppendClientHello appends a client's broker.hello request with id (raw JSON): it reads
// replies unordered, and receives messages of at most maxMsgSize bytes (0: not said, the
// broker's own limit).
func AppendClientHello(dst, id []byte, maxMsgSize int64) []byte {
	if maxMsgSize <= 0 {
		return codec.AppendRequest(dst, id, MethodHello, []byte(clientHello))
	}
	var pb [len(clientHello) + 40]byte
	params := append(pb[:0], clientHello[:len(clientHello)-1]...)
	params = append(params, `,"max_msg_size":`...)
	params = strconv.AppendInt(params, maxMsgSize, 10)
	params = append(params, '}')
	return codec.AppendRequest(dst, id, MethodHello, params)
}

// NodeHello is what a node's broker.hello says: its name, the methods it serves (in each of
// its queues), how many it runs at once and how many more it may hold, its queues (none:
// DefaultQueue) and the largest message it receives (0: not said, the broker's own limit).
type NodeHello struct {
	Name        string
	Methods     []string
	Concurrency int
	Prefetch    int
	Queues      []string
	MaxMsgSize  int64
}

// AppendNodeHello appends a node's broker.hello request with id (raw JSON). Methods a node
// cannot serve (broker.* and the reserved rpc.* names) are left out.
func AppendNodeHello(dst, id []byte, h *NodeHello) []byte {
	dst = append(dst, notice+MethodHello+`","params":`+nodeHelloHead...)
	dst = codec.AppendString(dst, h.Name)
	dst = append(dst, `,"methods":[`...)
	k := 0
	for _, m := range h.Methods {
		if IsBrokerMethod(m) || codec.IsReservedName(m) {
			continue
		}
		if k > 0 {
			dst = append(dst, ',')
		}
		dst = codec.AppendString(dst, m)
		k++
	}
	dst = append(dst, `],"concurrency":`...)
	dst = strconv.AppendInt(dst, int64(h.Concurrency), 10)
	dst = append(dst, `,"prefetch":`...)
	dst = strconv.AppendInt(dst, int64(h.Prefetch), 10)
	if len(h.Queues) > 0 {
		dst = append(dst, `,"queues":[`...)
		for i, q := range h.Queues {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = codec.AppendString(dst, q)
		}
		dst = append(dst, ']')
	}
	if h.MaxMsgSize > 0 {
		dst = append(dst, `,"max_msg_size":`...)
		dst = strconv.AppendInt(dst, h.MaxMsgSize, 10)
	}
	dst = append(dst, `},"id":`...)
	dst = append(dst, id...)
	return append(dst, '}')
}

// AppendHelloReply appends the result of the broker's answer to a hello: its epoch (the prefix
// of its task ids), its heartbeat interval, and its batch and message size limits, which the
// peer's messages must not exceed.
func AppendHelloReply(dst []byte, epoch string, heartbeatMS int64, maxBatch, maxMsgSize int) []byte {
	dst = append(dst, `{"broker":`...)
	dst = codec.AppendString(dst, epoch)
	dst = append(dst, `,"heartbeat_ms":`...)
	dst = strconv.AppendInt(dst, heartbeatMS, 10)
	dst = append(dst, `,"max_batch":`...)
	dst = strconv.AppendInt(dst, int64(maxBatch), 10)
	dst = append(dst, `,"max_msg_size":`...)
	dst = strconv.AppendInt(dst, int64(maxMsgSize), 10)
	return append(dst, '}')
}

// AppendCredit appends a node's broker.credit granting n more tasks: a notification, or with
// id (raw JSON; nil for none) a request, whose answer tells the node the round trip.
func AppendCredit(dst, id []byte, n int) []byte {
	dst = append(dst, creditHead...)
	dst = strconv.AppendInt(dst, int64(n), 10)
	if id == nil {
		return append(dst, "]}"...)
	}
	dst = append(dst, `],"id":`...)
	dst = append(dst, id...)
	return append(dst, '}')
}

// AppendRunningOpen appends the start of a node's broker.running notification: the ids of the
// tasks that started follow, raw JSON separated by commas, then AppendRunningClose. A node
// that reports many tasks splits them over several notices this way, each under its message
// size limit.
func AppendRunningOpen(dst []byte) []byte { return append(dst, runningHead...) }

// AppendRunningClose ends a notification begun with AppendRunningOpen.
func AppendRunningClose(dst []byte) []byte { return append(dst, "]}"...) }

// AppendRunning appends a node's broker.running notification for the task ids (raw JSON).
func AppendRunning(dst []byte, ids [][]byte) []byte {
	return AppendRunningClose(appendIDs(AppendRunningOpen(dst), ids))
}

// AppendBye appends a node's broker.bye notification: it leaves, and the broker queues again
// what it still holds.
func AppendBye(dst []byte) []byte { return append(dst, byeNotice...) }

// AppendShutdown appends the broker's broker.shutdown notification.
func AppendShutdown(dst []byte) []byte { return append(dst, shutdownNote...) }

// AppendHelloRequired appends the broker's broker.hello_required notification: broker run epoch
// does not know the connection as a node, which must say hello again.
func AppendHelloRequired(dst []byte, epoch string) []byte {
	dst = append(dst, helloReqHead...)
	dst = append(dst, epoch...)
	return append(dst, `"}}`...)
}

// AppendRevokeOpen appends the start of the broker's broker.revoke notification telling nodes
// to stop tasks: the tasks' hand-out ids follow (the ids the tasks carry to their nodes, raw
// JSON separated by commas), then AppendRevokeClose.
func AppendRevokeOpen(dst []byte) []byte { return append(dst, revokeHead...) }

// AppendRevokeClose ends a notification begun with AppendRevokeOpen.
func AppendRevokeClose(dst []byte) []byte { return append(dst, "]}}"...) }

// AppendRevoke appends the broker's broker.revoke notification for the tasks with these
// hand-out ids (raw JSON).
func AppendRevoke(dst []byte, ids [][]byte) []byte {
	return AppendRevokeClose(appendIDs(AppendRevokeOpen(dst), ids))
}

// appendIDs appends the raw JSON ids separated by commas: the body of a running or revoke list.
func appendIDs(dst []byte, ids [][]byte) []byte {
	for i, id := range ids {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, id...)
	}
	return dst
}

// TaskOverhead is the most bytes AppendTask writes besides the id, the method and the params.
const TaskOverhead = len(TaskHead) + len(TaskMethod) + len(TaskParams) + len(`,"`+MemberTimeoutMS+`":`) + 19 + len("}")

// How AppendTask writes a task, piece by piece: the head before the hand-out id, then the
// method's member, then the params' (a node may read a hand-out written so by comparing these).
const (
	TaskHead   = `{"jsonrpc":"2.0","id":`
	TaskMethod = `,"method":`
	TaskParams = `,"params":`
)

// AppendTask appends a task as the broker hands it to a node: a request with the task's
// hand-out id (raw JSON; the node answers with it, and knows nothing else of it), method (a
// JSON string, quotes included), params (raw JSON; nil or empty leaves the member out) and,
// when timeoutMS > 0, the milliseconds left before its deadline.
func AppendTask(dst, id, method, params []byte, timeoutMS int64) []byte {
	var w TaskWriter
	return w.Append(dst, id, method, params, timeoutMS)
}

// TaskWriter is AppendTask for a writer of many tasks: it remembers the last timeout it wrote
// out in digits, since the tasks handed out together mostly carry the same milliseconds left
// (formatting them was a few percent of a broker's CPU per task). The zero value is ready; one
// goroutine uses it at a time.
type TaskWriter struct {
	ms     int64
	n      int
	digits [20]byte
}

// Append is AppendTask.
func (w *TaskWriter) Append(dst, id, method, params []byte, timeoutMS int64) []byte {
	dst = append(dst, TaskHead...)
	dst = append(dst, id...)
	dst = append(dst, TaskMethod...)
	dst = append(dst, method...)
	if len(params) > 0 {
		dst = append(dst, TaskParams...)
		dst = append(dst, params...)
	}
	if timeoutMS > 0 {
		if w.n == 0 || w.ms != timeoutMS {
			w.ms, w.n = timeoutMS, len(strconv.AppendInt(w.digits[:0], timeoutMS, 10))
		}
		dst = append(dst, `,"`+MemberTimeoutMS+`":`...) // one append of a constant
		dst = append(dst, w.digits[:w.n]...)
	}
	return append(dst, '}')
}

// TaskInfoMaxID bounds the public task id AppendTaskInfo writes, quotes included: a broker
// epoch, a dash and a 64-bit sequence number fit (longer ids are left out).
const TaskInfoMaxID = 32

// TaskInfoOverhead is the most bytes AppendTaskInfo writes besides the queue member (see
// AppendQueueMember).
const TaskInfoOverhead = len(`,"`+MemberTask+`":`) + TaskInfoMaxID + len(`,"`+MemberAttempt+`":`) + 3

// AppendQueueMember appends `,"queue":"<queue>"`, or nothing for DefaultQueue or "": the
// queue member of a task hand-out (see AppendTaskInfo).
func AppendQueueMember(dst []byte, queue string) []byte {
	if queue == "" || queue == DefaultQueue {
		return dst
	}
	dst = AppendMember(dst, MemberQueue)
	return codec.AppendString(dst, queue)
}

// AppendTaskInfo appends what a node tells a handler of its task, before the closing brace of
// the task request dst ends with (see AppendTask): "task" (publicID, a JSON string, quotes
// included; nil for a call, which has none), "attempt" (from 1) and queue (queueMember, from
// AppendQueueMember).
func AppendTaskInfo(dst, publicID []byte, attempt int, queueMember []byte) []byte {
	if len(dst) == 0 || dst[len(dst)-1] != '}' {
		return dst
	}
	dst = dst[:len(dst)-1]
	if len(publicID) > 0 && len(publicID) <= TaskInfoMaxID {
		dst = append(dst, `,"`+MemberTask+`":`...)
		dst = append(dst, publicID...)
	}
	if attempt > 0 {
		dst = append(dst, `,"`+MemberAttempt+`":`...)
		if attempt < 10 {
			dst = append(dst, byte('0'+attempt)) // almost always 1
		} else {
			dst = strconv.AppendInt(dst, int64(min(attempt, 999)), 10)
		}
	}
	dst = append(dst, queueMember...)
	return append(dst, '}')
}

// MetaOverhead is the most bytes AppendTaskMeta writes besides the meta object itself.
const MetaOverhead = len(`,"` + MemberMeta + `":`)

// AppendTaskMeta appends the task's meta object (raw JSON, written as it came; nothing when
// empty) before the closing brace of the task request dst ends with, after AppendTaskInfo.
func AppendTaskMeta(dst []byte, meta string) []byte {
	if len(meta) == 0 || len(dst) == 0 || dst[len(dst)-1] != '}' {
		return dst
	}
	dst = AppendMember(dst[:len(dst)-1], MemberMeta)
	dst = append(dst, meta...)
	return append(dst, '}')
}

// AppendRetry appends the members that mark a node's error response as retryable, before the
// response's closing brace: "retry":true and, when afterMS > 0, the delay the handler chose.
// dst must end with a response object, whose closing brace is moved after the members.
func AppendRetry(dst []byte, afterMS int64) []byte {
	if len(dst) == 0 || dst[len(dst)-1] != '}' {
		return dst
	}
	dst = AppendMember(dst[:len(dst)-1], MemberRetry)
	dst = append(dst, "true"...)
	if afterMS > 0 {
		dst = AppendMember(dst, MemberRetryAfterMS)
		dst = strconv.AppendInt(dst, afterMS, 10)
	}
	return append(dst, '}')
}

// AppendStateRecord appends the short record of a task, {"id":ID,"state":STATE}: id is its
// public id (a JSON string, quotes included), state one of the State constants.
func AppendStateRecord(dst, id []byte, state string) []byte {
	dst = append(dst, `{"id":`...)
	dst = append(dst, id...)
	dst = append(dst, `,"state":"`...)
	dst = append(dst, state...)
	return append(dst, `"}`...)
}

// AppendStateNotice appends the broker's broker.state notification: the task with public id
// (a JSON string) is now in state.
func AppendStateNotice(dst, id []byte, state string) []byte {
	dst = append(dst, stateHead...)
	dst = AppendStateRecord(dst, id, state)
	return append(dst, '}')
}

// AppendTaskStateNotice appends the broker's broker.state notification with the task's
// method and queue: {"id":ID,"state":STATE,"method":METHOD} plus queueMember (from
// AppendQueueMember: nothing for DefaultQueue). method is a JSON string, quotes included.
func AppendTaskStateNotice(dst, id []byte, state string, method, queueMember []byte) []byte {
	dst = append(dst, stateHead...)
	dst = AppendStateRecord(dst, id, state)
	dst = dst[:len(dst)-1] // reopen the record
	dst = AppendMember(dst, MemberMethod)
	dst = append(dst, method...)
	dst = append(dst, queueMember...)
	return append(dst, '}', '}')
}

// AppendTaskProgressNotice appends the broker.state notice of a running task's progress:
// AppendTaskStateNotice's members plus "progress":PROGRESS (raw JSON).
func AppendTaskProgressNotice(dst, id []byte, state string, method, queueMember, progress []byte) []byte {
	dst = AppendTaskStateNotice(dst, id, state, method, queueMember)
	dst = dst[:len(dst)-2] // reopen the params
	dst = AppendMember(dst, MemberProgress)
	dst = append(dst, progress...)
	return append(dst, '}', '}')
}

// AppendProgress appends the node's broker.progress notice for the task of hand-out id id.
func AppendProgress(dst, id, progress []byte) []byte {
	dst = append(dst, notice+MethodProgress+`","params":{"`+ParamID+`":`...)
	dst = append(dst, id...)
	dst = AppendMember(dst, MemberProgress)
	dst = append(dst, progress...)
	return append(dst, '}', '}')
}

// AppendTasksNotice appends the broker's broker.tasks notification: queued tasks of method (a
// JSON string) wait in queue ("" for DefaultQueue, which is left out).
func AppendTasksNotice(dst, method []byte, queue string, queued int) []byte {
	dst = append(dst, tasksHead...)
	dst = append(dst, method...)
	if queue != "" {
		dst = AppendMember(dst, MemberQueue)
		dst = codec.AppendString(dst, queue)
	}
	dst = append(dst, `,"queued":`...)
	dst = strconv.AppendInt(dst, int64(queued), 10)
	return append(dst, "}}"...)
}

// NoticeParams decodes the params of the notifications in a published message's body: one
// notification, or a batch of them (the broker batches its state notices per tick). A body
// that is neither decodes to nothing, with the error.
func NoticeParams[T any](body []byte) ([]T, error) {
	if len(body) > 0 && body[0] != '[' {
		batch := make([]byte, 0, len(body)+2)
		body = append(append(append(batch, '['), body...), ']')
	}
	var notes []struct {
		Params T `json:"params"`
	}
	if err := json.Unmarshal(body, &notes); err != nil {
		return nil, err
	}
	params := make([]T, len(notes))
	for i := range notes {
		params[i] = notes[i].Params
	}
	return params, nil
}
