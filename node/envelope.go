package node

import "bytes"

// ZeroTask's extensions travel as top-level members of a task's JSON-RPC object, beside
// jsonrpc, id, method and params (docs/protocol.md): other JSON-RPC peers ignore them. The node
// reads "timeout_ms" (the milliseconds left until the task's deadline when the broker handed it
// out); a task without extensions costs one short byte search.

var timeoutKey = []byte(`"timeout_ms"`)

// envelopeUint returns the unsigned integer value of the top-level member key (quoted, e.g.
// `"timeout_ms"`) of the JSON object obj, looked up outside params (a sub-slice of obj, or nil).
// ok is false when the member is absent or not an unsigned integer. obj has been validated by
// codec already.
func envelopeUint(obj, params, key []byte) (uint64, bool) {
	head, tail := obj, []byte(nil)
	if len(params) > 0 {
		// params shares obj's backing array: its offset follows from the capacities.
		if off := cap(obj) - cap(params); off >= 0 && off+len(params) <= len(obj) {
			head, tail = obj[:off], obj[off+len(params):]
		}
	}
	if !bytes.Contains(head, key) && !bytes.Contains(tail, key) {
		return 0, false
	}
	v := topMember(obj, key)
	if len(v) == 0 || len(v) > 19 {
		return 0, false
	}
	var n uint64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

// topMember returns the raw value of the top-level member key (quoted) of obj, or nil.
func topMember(obj, key []byte) []byte {
	p := trimWS(obj)
	if len(p) < 2 || p[0] != '{' {
		return nil
	}
	i := skipWS(p, 1)
	for i < len(p) && p[i] == '"' {
		kend := skipString(p, i)
		if kend < 0 {
			return nil
		}
		k := p[i:kend]
		i = skipWS(p, kend)
		if i >= len(p) || p[i] != ':' {
			return nil
		}
		i = skipWS(p, i+1)
		end := skipValue(p, i)
		if end < 0 {
			return nil
		}
		if bytes.Equal(k, key) {
			return p[i:end]
		}
		i = skipWS(p, end)
		if i >= len(p) || p[i] != ',' {
			return nil
		}
		i = skipWS(p, i+1)
	}
	return nil
}
