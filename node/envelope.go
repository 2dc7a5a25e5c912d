package node

import (
	"bytes"

	"github.com/zerotask/zerotask/internal/rawjson"
	"github.com/zerotask/zerotask/protocol"
)

// ZeroTask's extensions travel as top-level members of a task's JSON-RPC object, beside
// jsonrpc, id, method and params (docs/protocol.md): other JSON-RPC peers ignore them. The node
// reads "timeout_ms" (the milliseconds left until the task's deadline when the broker handed it
// out), and "task", "attempt", "queue" and "meta" (what dispatch.TaskInfoFrom tells a
// handler); a task without extensions costs a few short byte searches.

var (
	timeoutKey = []byte(`"` + protocol.MemberTimeoutMS + `"`)
	taskKey    = []byte(`"` + protocol.MemberTask + `"`)
	attemptKey = []byte(`"` + protocol.MemberAttempt + `"`)
	queueKey   = []byte(`"` + protocol.MemberQueue + `"`)
	metaKey    = []byte(`"` + protocol.MemberMeta + `"`)
)

// envelopeUint returns the unsigned integer value of the top-level member key (quoted, e.g.
// `"timeout_ms"`) of the JSON object obj, looked up outside params (a sub-slice of obj, or nil).
// ok is false when the member is absent or not an unsigned integer. obj has been validated by
// codec already.
func envelopeUint(obj, params, key []byte) (uint64, bool) {
	return rawjson.ParseUint(envelopeValue(obj, params, key))
}

// envelopeString returns the contents of the top-level string member key of obj (see
// envelopeUint); ok is false when it is absent, not a string, or has escapes.
func envelopeString(obj, params, key []byte) ([]byte, bool) {
	v := envelopeValue(obj, params, key)
	if v == nil {
		return nil, false
	}
	return rawjson.Unquote(v)
}

// envelopeValue returns the raw value of the top-level member key of obj, looked up outside
// params; nil when absent.
func envelopeValue(obj, params, key []byte) []byte {
	head, tail := obj, []byte(nil)
	if len(params) > 0 {
		// params shares obj's backing array: its offset follows from the capacities.
		if off := cap(obj) - cap(params); off >= 0 && off+len(params) <= len(obj) {
			head, tail = obj[:off], obj[off+len(params):]
		}
	}
	if !bytes.Contains(head, key) && !bytes.Contains(tail, key) {
		return nil
	}
	// The last one wins, as in codec; params are stepped over, not read again.
	name, v := key[1:len(key)-1], []byte(nil)
	var o rawjson.Object
	o.Reset(obj)
	o.Known(params)
	for o.Next() {
		if bytes.Equal(o.Name(), name) {
			v = o.Value()
		}
	}
	return v
}
