package protocol

import "github.com/zerotask/zerotask/codec"

// The error codes ZeroTask assigns (docs/protocol.md, docs/reliability.md). They lie in the
// server-error range JSON-RPC 2.0 leaves to implementations (CodeServerErrorMin to
// CodeServerErrorMax); codec holds the codes the specification itself defines.
const (
	CodeServerErrorMin = -32099 // CodeServerErrorMin is the lowest code of the server-error range.
	CodeServerErrorMax = -32000 // CodeServerErrorMax is the highest code of the server-error range.

	// CodeHandlerError is the code of a handler's error that carries no code of its own.
	CodeHandlerError = -32000

	CodeQueueFull       = -32001 // CodeQueueFull: a queue limit is reached; nothing was queued.
	CodeTooManyInFlight = -32002 // CodeTooManyInFlight: the client has the broker's maximum of requests pending.
	CodeShuttingDown    = -32003 // CodeShuttingDown: the broker is shutting down.
	CodeRevoked         = -32004 // CodeRevoked: the task was revoked.
	CodeExpired         = -32005 // CodeExpired: the task's deadline passed before it ran.
	CodeNodeLost        = -32006 // CodeNodeLost: the task's node was lost and it has no attempt left.
	// CodeNoCredit, with the data NoCreditData, is what a node answers a task that arrived
	// beyond the credit it granted: the task did not run, so the broker puts it back at the
	// front of its queue with no attempt counted. The same code without that data is an
	// ordinary error of the task's handler.
	CodeNoCredit = -32010
	// CodeDeadline: the task's deadline or time limit ended while it ran (a node's answer, or
	// the broker's when the node never answered).
	CodeDeadline = -32011
	// CodeBadAnswer: the node that held the task answered it with something that is not a
	// valid JSON-RPC response; the broker fails the task with a message naming the node and
	// what is wrong.
	CodeBadAnswer = -32012
	// CodeForbidden: the authenticated key of the connection lacks the role the request
	// needs (a client key saying hello as a node, a node key submitting).
	CodeForbidden = -32013
)

// NoCreditData is the data of a node's CodeNoCredit refusal.
const NoCreditData = `{"no_credit":true}`

// The error objects of the codes above, as sentinels: a remote *codec.Error matches one under
// errors.Is by code, whatever its message. They are shared values: never modify them.
var (
	ErrQueueFull       = codec.NewError(CodeQueueFull, "queue full", nil)
	ErrTooManyInFlight = codec.NewError(CodeTooManyInFlight, "too many in-flight requests", nil)
	ErrShuttingDown    = codec.NewError(CodeShuttingDown, "broker shutting down", nil)
	ErrRevoked         = codec.NewError(CodeRevoked, "task revoked", nil)
	ErrExpired         = codec.NewError(CodeExpired, "task expired", nil)
	ErrNodeLost        = codec.NewError(CodeNodeLost, "node lost and no attempt left", nil)
	ErrDeadline        = codec.NewError(CodeDeadline, "task deadline exceeded", nil)
	ErrNoCredit        = codec.NewError(CodeNoCredit, "node: task sent without credit while the node is full", []byte(NoCreditData))
	ErrForbidden       = codec.NewError(CodeForbidden, "forbidden", nil)
)

// The broker's refusals of CodeForbidden, saying which role was missing.
var (
	ErrNotNodeKey   = codec.NewError(CodeForbidden, "forbidden: this connection's key may not act as a node", nil) // ErrNotNodeKey: a hello as a node from a key without the node role.
	ErrNotClientKey = codec.NewError(CodeForbidden, "forbidden: this connection's key may not submit tasks", nil)  // ErrNotClientKey: a task from a key without the client role.
	ErrNotAdminKey  = codec.NewError(CodeForbidden, "forbidden: this connection's key may not steer queues", nil)  // ErrNotAdminKey: broker.pause, resume or purge from a key without the admin role.
)

// The broker's refusals that share a code with a sentinel above but say which limit was met.
var (
	ErrTooManyMethods = codec.NewError(CodeQueueFull, "queue full: too many methods", nil)                                                                              // ErrTooManyMethods: the broker's MaxMethods.
	ErrBrokerBusy     = codec.NewError(CodeQueueFull, "queue full: broker tasks", nil)                                                                                  // ErrBrokerBusy: the broker's BrokerTaskQueue.
	ErrTooManyWaits   = codec.NewError(CodeQueueFull, "queue full: result waits", nil)                                                                                  // ErrTooManyWaits: the broker's MaxWaiting.
	ErrMethodShare    = codec.NewError(CodeQueueFull, "queue full: this client's share of methods", []byte(`{"budget":"client_methods"}`))                              // ErrMethodShare: the client's ClientShare of MaxMethods.
	ErrWaitShare      = codec.NewError(CodeQueueFull, "queue full: this client's share of result waits", []byte(`{"budget":"client_waits"}`))                           // ErrWaitShare: the client's ClientShare of MaxWaiting.
	ErrTaskBytes      = codec.NewError(CodeQueueFull, "queue full: task bytes", []byte(`{"budget":"task_bytes"}`))                                                      // ErrTaskBytes: the broker's MaxTaskBytes.
	ErrStoreBytes     = codec.NewError(CodeQueueFull, "queue full: bytes not yet written to the store", []byte(`{"budget":"store_bytes"}`))                             // ErrStoreBytes: the broker's MaxStoreBytes (durable mode).
	ErrInFlightBytes  = codec.NewError(CodeTooManyInFlight, "too many in-flight requests: this client's bytes in flight", []byte(`{"budget":"client_inflight_bytes"}`)) // ErrInFlightBytes: the broker's MaxInFlightBytes.
	ErrLeaseLost      = codec.NewError(CodeDeadline, "task deadline exceeded: no answer from its node", nil)                                                            // ErrLeaseLost: a node silent past a task's deadline.
)

// The broker's answers when a message would pass its receiver's size limit (docs/protocol.md,
// "Message sizes").
var (
	// ErrReplyTooLarge replaces a reply (or a submitted task's result) that would pass its
	// receiver's message size.
	ErrReplyTooLarge = codec.NewError(codec.CodeInternalError, "reply too large for the receiver's message size", nil)
	// ErrResultTooLarge is the error a submitted task ends with when its record could not be
	// read in one message.
	ErrResultTooLarge = codec.NewError(codec.CodeInternalError, "result too large for its record: past the message size limit", nil)
	// ErrBatchReplyTooLarge refuses a batch whose replies could not fit one message even as
	// an error per member.
	ErrBatchReplyTooLarge = codec.NewError(codec.CodeInvalidRequest, "Invalid Request: batch too large: its replies could not fit the message size", nil)
)

// TaskTooLargeMessage is the message of -32600 for a task whose message to a node would pass
// the message size limit (its data: {"bytes":<the task's bound>,"max":<the limit>}).
const TaskTooLargeMessage = "Invalid Request: task too large: its message to a node would pass the message size limit"

// The broker's answers to requests it cannot take, in the codes the specification defines.
var (
	// ErrMethodTooLong: a method name longer than the broker's MaxMethodLen.
	ErrMethodTooLong = codec.NewError(codec.CodeInvalidRequest, "Invalid Request: method name too long", nil)
	// ErrBadName: a method name holding a control character (see ValidName).
	ErrBadName = codec.NewError(codec.CodeInvalidRequest, "Invalid Request: method name with a control character", nil)
	// ErrNotNode: a node's method from a peer that did not say hello as a node.
	ErrNotNode = codec.NewError(codec.CodeInvalidParams, "Invalid params: "+MethodHello+" as a node first", nil)
)
