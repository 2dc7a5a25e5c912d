// Package protocol is ZeroTask's wire contract, written once: the broker.* method names, the
// extension members a task carries beside the JSON-RPC ones, the PUB topics, the task states,
// the error codes with their sentinel errors, the bounds of the task options, the default
// endpoints and limits, and the encoders of every control message the roles exchange (hello,
// credit, running, bye, revoke, shutdown, a task handed to a node, a state record).
//
// docs/protocol.md describes the same contract for implementations in other languages; the
// broker, the node, the client and the command line take every name, code, bound and default
// from here, so that none of them can drift from the others.
//
// # Layering
//
// protocol imports only codec and the standard library; every role may import it. codec keeps
// the codes the JSON-RPC 2.0 specification defines (parse error, invalid request, method not
// found, invalid params, internal error); every code ZeroTask assigns in the specification's
// server-error range lives here.
//
// # Ownership
//
// The encoders are append-style: AppendX(dst, ...) appends one message to dst and returns the
// extended slice, allocating nothing when dst has room. Arguments are read, never kept. Raw
// JSON arguments (an id, a method name already quoted, params) are written as they are: the
// caller passes valid JSON. The sentinel errors are shared values: never modify them.
//
// # Limits
//
// The bounds of the task options (MaxPriority, MaxQueueName, MaxKeyLen, MaxAttemptsCap,
// MaxTimeout, MaxWait) are the broker's: a request past one is answered with invalid params,
// and the client refuses it before sending. The Default constants are the zero-value defaults
// of the broker's, the node's and the client's configurations and of the command line's flags.
package protocol
