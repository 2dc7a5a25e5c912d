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
	if len(ext) == 0 || e.readCompact(ext) {
		return
	}
	*e = envelope{}
	e.readWalk(ext, params)
}

// readWalk is read's general path: a walk over the members.
func (e *envelope) readWalk(ext, params []byte) {
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

// The members a ZeroTask broker writes after a hand-out's params, in its order (see
// protocol.AppendTask and AppendTaskInfo).
const (
	compactTimeout = `"` + protocol.MemberTimeoutMS + `":`
	compactTask    = `"` + protocol.MemberTask + `":`
	compactAttempt = `"` + protocol.MemberAttempt + `":`
)

// readCompact reads ext when it is exactly what a ZeroTask broker writes for most tasks:
// "timeout_ms":<digits>, "task":"<no escapes>" and "attempt":<digits>, each optional, in that
// order, separated by bare commas, and nothing else. It reports false (e half filled) for
// anything else, which read then walks in full. ext has been validated by codec, so a digit
// run or a string ended by a comma or by ext's end is the whole value: the values are the
// bytes the walk would give. Per task this spares the walk's member-by-member scan, which
// was a tenth of a node's CPU for add. Each name is compared with a constant of its own
// length, which the compiler turns into a few word loads (a variable one would cost a call).
func (e *envelope) readCompact(ext []byte) bool {
	rest := ext
	var ok bool
	if len(rest) >= len(compactTimeout) && string(rest[:len(compactTimeout)]) == compactTimeout {
		if e.timeoutMS, rest, ok = compactValue(rest[len(compactTimeout):], false); !ok {
			return false
		}
		if len(rest) == 0 {
			return true
		}
		rest = rest[1:] // the comma
	}
	if len(rest) >= len(compactTask) && string(rest[:len(compactTask)]) == compactTask {
		if e.task, rest, ok = compactValue(rest[len(compactTask):], true); !ok {
			return false
		}
		if len(rest) == 0 {
			return true
		}
		rest = rest[1:]
	}
	if len(rest) >= len(compactAttempt) && string(rest[:len(compactAttempt)]) == compactAttempt {
		if e.attempt, rest, ok = compactValue(rest[len(compactAttempt):], false); !ok {
			return false
		}
	}
	return len(rest) == 0
}

// compactValue reads the value at the start of b: digits, or a string without escapes when
// str. It returns the value and what follows it (empty, or starting with the comma that ends
// it), or false when b does not start so.
func compactValue(b []byte, str bool) ([]byte, []byte, bool) {
	i := 0
	if str {
		if len(b) == 0 || b[0] != '"' {
			return nil, b, false
		}
		for i = 1; i < len(b) && b[i] != '"'; i++ {
			if b[i] == '\\' {
				return nil, b, false
			}
		}
		if i >= len(b) {
			return nil, b, false
		}
		i++
	} else {
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == 0 {
			return nil, b, false
		}
	}
	if i < len(b) && b[i] != ',' {
		return nil, b, false
	}
	return b[:i], b[i:], true
}
