package node

import (
	"github.com/zerotask/zerotask/internal/rawjson"
	"github.com/zerotask/zerotask/protocol"
)

// ZeroTask's extensions travel as top-level members of a task's JSON-RPC object, beside
// jsonrpc, id, method and params (docs/protocol.md): other JSON-RPC peers ignore them. The node
// reads "timeout_ms" (the milliseconds left until the task's deadline when the broker handed it
// out), and "task", "attempt", "queue" and "meta" (what dispatch.TaskInfoFrom tells a
// handler), in one walk over the members codec did not read (codec.Header.Ext): a task without
// extensions costs nothing more.

// envelope holds the raw values of the extension members a node reads (nil when absent).
type envelope struct {
	timeoutMS, attempt, queue, task, meta []byte
}

// read fills e from ext, the members of a task's object that codec did not read
// (codec.Header.Ext), which params lies within when members around it are extensions. The
// last of repeated members wins, as in codec. They have been validated by codec already.
func (e *envelope) read(ext, params []byte) {
	*e = envelope{}
	if len(ext) == 0 {
		return
	}
	var o rawjson.Object
	o.ResetMembers(ext)
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
