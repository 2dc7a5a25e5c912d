package node

import (
	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/protocol"
)

// A busy node reads batches of task hand-outs all written the same way by protocol.AppendTask
// and AppendTaskInfo. Walked by codec's general scanner, member by member, they were a third
// of the node's CPU for add. fastBatch reads such a batch by comparing the fixed pieces and
// checking the few values in between, and takes nothing that is not exactly of that form
// (escapes, spaces, nested params, members it does not expect, anything past a limit): the
// whole message then goes to codec as before. So whatever it takes, codec would take too,
// with the same headers (FuzzFastBatch holds it to that).

const (
	fastHead   = protocol.TaskHead + `"` // a hand-out id is a string
	fastMethod = `"` + protocol.TaskMethod + `"`
	fastParams = `"` + protocol.TaskParams
)

// fastDepth is the nesting a batch fastBatch takes reaches: the array, a task, its params.
const fastDepth = 3

// fastBatch fills r.fast with the headers of body's elements when body (starting with '[') is
// a batch of task hand-outs of the form the broker writes, within r.lim; it reports false,
// r.fast then meaning nothing, for any other message.
func (r *reader) fastBatch(body []byte) bool {
	lim := r.lim.Effective()
	if len(body) > lim.MaxFrame || lim.MaxDepth < fastDepth || len(body) < 2 || body[0] != '[' || body[len(body)-1] != ']' {
		return false
	}
	r.fast = r.fast[:0]
	i := 1
	for {
		if len(r.fast) == lim.MaxBatch {
			return false
		}
		r.fast = append(r.fast, codec.Header{})
		end, ok := fastTask(body, i, &r.fast[len(r.fast)-1])
		if !ok {
			return false
		}
		switch {
		case end == len(body)-1: // the closing ']'
			return true
		case body[end] == ',':
			i = end + 1
		default:
			return false
		}
	}
}

// fastTask reads the hand-out at b[i:] into h and returns the index past its closing brace.
func fastTask(b []byte, i int, h *codec.Header) (int, bool) {
	if !hasAt(b, i, fastHead) {
		return i, false
	}
	idStart := i + len(fastHead) - 1
	j, ok := plainString(b, idStart)
	if !ok || !hasAt(b, j-1, fastMethod) {
		return i, false
	}
	h.ID = b[idStart:j]
	mStart := j - 1 + len(fastMethod)
	if j, ok = plainString(b, mStart-1); !ok || j-mStart < 2 {
		return i, false // an empty name is left to codec
	}
	h.Method = b[mStart : j-1]
	if hasAt(b, j-1, fastParams) {
		pStart := j - 1 + len(fastParams)
		if j, ok = flatArray(b, pStart); !ok {
			return i, false
		}
		h.Params = b[pStart:j]
	}
	// The extension members, up to the closing brace: the ones a broker writes, in its order.
	extStart := j + 1
	for _, m := range fastExt {
		if !hasAt(b, j, m.name) {
			continue
		}
		v := j + len(m.name)
		if m.str {
			j, ok = plainString(b, v)
		} else {
			j, ok = digits(b, v)
		}
		if !ok {
			return i, false
		}
	}
	if j >= len(b) || b[j] != '}' {
		return i, false
	}
	if j > extStart {
		h.Ext = b[extStart:j]
	}
	h.Kind = codec.KindRequest
	return j + 1, true
}

// fastExt: the extension members AppendTask and AppendTaskInfo write, in their order, each
// with the comma before it; str for a string value (without escapes), digits otherwise.
var fastExt = [...]struct {
	name string
	str  bool
}{
	{"," + compactTimeout, false},
	{"," + compactTask, true},
	{"," + compactAttempt, false},
	{`,"` + protocol.MemberQueue + `":`, true},
}

func hasAt(b []byte, i int, s string) bool {
	return i >= 0 && len(b)-i >= len(s) && string(b[i:i+len(s)]) == s
}

// plainString checks the string whose quote is at b[i], of printable ASCII without escapes,
// and returns the index past its closing quote.
func plainString(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '"' {
		return i, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return j + 1, true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return j, false
		}
	}
	return len(b), false
}

// digits checks a run of decimal digits at b[i] (an unsigned integer without a leading zero)
// and returns the index past it.
func digits(b []byte, i int) (int, bool) {
	j := i
	for j < len(b) && '0' <= b[j] && b[j] <= '9' {
		j++
	}
	if j == i || (b[i] == '0' && j-i > 1) {
		return j, false
	}
	return j, true
}

// flatArray checks params of the form a task's arguments mostly take, an array of numbers and
// plain strings without spaces ([5,6], ["x",2]), at b[i], and returns the index past it.
func flatArray(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '[' {
		return i, false
	}
	j := i + 1
	if j < len(b) && b[j] == ']' {
		return j + 1, true
	}
	for {
		var ok bool
		if j < len(b) && b[j] == '"' {
			j, ok = plainString(b, j)
		} else {
			k := j
			for k < len(b) && b[k] != ',' && b[k] != ']' {
				k++
			}
			ok = validNumber(b[j:k])
			j = k
		}
		if !ok || j >= len(b) {
			return j, false
		}
		switch b[j] {
		case ']':
			return j + 1, true
		case ',':
			j++
		default:
			return j, false
		}
	}
}
