package node

import (
	"github.com/zerotask/zerotask/internal/rawjson"
	"github.com/zerotask/zerotask/protocol"
)

// ZeroTask's extensions travel as top-level members of a task's JSON-RPC object, beside
// jsonrpc, id, method and params (docs/protocol.md): other JSON-RPC peers ignore them. The node
// reads "timeout_ms" (the milliseconds left until the task's deadline when the broker handed it
// out), and "task", "attempt", "queue" and "meta" (what dispatch.TaskInfoFrom tells a
// handler), in one walk over the object's members that steps over params without reading them
// again.

// envelope holds the raw values of the extension members a node reads (nil when absent).
type envelope struct {
	timeoutMS, attempt, queue, task, meta []byte
}

// read fills e from the top-level members of the JSON object obj, outside params (a sub-slice
// of obj, or nil). The last of repeated members wins, as in codec. obj has been validated by
// codec already.
func (e *envelope) read(obj, params []byte) {
	*e = envelope{}
	var o rawjson.Object
	if !o.Reset(obj) {
		return
	}
	o.Known(params)
	for o.Next() {
		switch string(o.Name()) {
		case protocol.MemberTimeoutMS:
			e.timeoutMS = o.Value()
		case protocol.MemberAttempt:
			e.attempt = o.Value()
		case protocol.MemberQueue:
			e.queue = o.Value()
		case protocol.MemberTask:
			e.task = o.Value()
		case protocol.MemberMeta:
			e.meta = o.Value()
		}
	}
}

// envelopeUint returns the unsigned integer v (a raw member value); ok is false when v is absent or
// not an unsigned integer.
func envelopeUint(v []byte) (uint64, bool) { return rawjson.ParseUint(v) }

// envelopeString returns the contents of the string v (a raw member value); ok is false when
// v is absent, not a string, or has escapes.
func envelopeString(v []byte) ([]byte, bool) {
	if v == nil {
		return nil, false
	}
	return rawjson.Unquote(v)
}
