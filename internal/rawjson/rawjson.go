// Package rawjson reads values out of JSON text without decoding it and without allocating:
// every value it returns is a sub-slice of its input. The broker and the node use it on
// messages that codec.Scan has already validated (a task's envelope members, broker.* params,
// the ids nodes echo). It finds where values end with codec's walker (codec.SkipValue, the one
// that validates JSON everywhere), so it never panics, always stops, and walks malformed input
// as malformed.
package rawjson

import (
	"unicode/utf8"

	"github.com/zerotask/zerotask/codec"
)

// IsSpace reports JSON insignificant whitespace.
func IsSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// SkipSpace returns the index of the first non-space byte at or after i.
func SkipSpace(b []byte, i int) int { return codec.SkipSpace(b, i) }

// TrimSpace returns b without leading and trailing JSON whitespace.
func TrimSpace(b []byte) []byte {
	if len(b) > 0 && !IsSpace(b[0]) && !IsSpace(b[len(b)-1]) {
		return b // the usual case, without a call
	}
	i := SkipSpace(b, 0)
	j := len(b)
	for j > i && IsSpace(b[j-1]) {
		j--
	}
	return b[i:j]
}

// SkipString returns the index just past the JSON string that starts at b[i] (a '"'), or -1
// when it is not a valid string (codec.SkipString).
func SkipString(b []byte, i int) int {
	end, _, err := codec.SkipString(b, i)
	if err != nil {
		return -1
	}
	return end
}

// Skip returns the index just past the JSON value that starts at b[i] (no leading space), or
// -1 when no valid value starts there: codec.SkipValue, the one walker, which validates as it
// goes and needs no stack however deep the value nests.
func Skip(b []byte, i int) int {
	end, err := codec.SkipValue(b, i)
	if err != nil {
		return -1
	}
	return end
}

// Object walks the members of a JSON object:
//
//	var o rawjson.Object
//	for o.Reset(obj); o.Next(); {
//		use(o.Name(), o.Value())
//	}
//	if o.Malformed() { ... }
type Object struct {
	cursor
	knownOff    int // offset in b of a value whose extent is known (see Known), or -1
	knownLen    int
	name, value []byte
	members     bool // a member list without braces (ResetMembers)
}

// cursor is where a walk over an object or an array stands.
type cursor struct {
	b         []byte
	i         int
	bad, done bool
}

// enter starts the walk over b (trimmed), which must run from open to close, at its first
// member or element, and reports whether b is such a container.
func (c *cursor) enter(b []byte, open, close byte) bool {
	c.b = b
	if len(b) < 2 || b[0] != open || b[len(b)-1] != close {
		c.bad, c.done = true, true
		return false
	}
	c.i = SkipSpace(b, 1)
	c.done = b[c.i] == close
	return true
}

// Reset starts a walk over obj (surrounding space allowed) and reports whether obj looks like
// an object ('{' to '}').
func (o *Object) Reset(obj []byte) bool {
	*o = Object{knownOff: -1}
	return o.enter(TrimSpace(obj), '{', '}')
}

// ResetMembers starts a walk over members, the members of an object without its braces
// ("a":1,"b":2, as codec.Header.Ext holds them); empty members has none.
func (o *Object) ResetMembers(members []byte) {
	*o = Object{knownOff: -1, members: true}
	o.b = members
	o.i = SkipSpace(members, 0)
	o.done = o.i >= len(members)
}

// Known tells the walk that v, a sub-slice of the object, is a member's value: the walk steps
// over it without reading it again (a task's params, already delimited by codec). v that does
// not lie inside the object is ignored.
func (o *Object) Known(v []byte) {
	if len(v) == 0 || len(o.b) == 0 {
		return
	}
	// v shares the object's backing array: its offset follows from the capacities.
	if off := cap(o.b) - cap(v); off >= 0 && off+len(v) <= len(o.b) {
		o.knownOff, o.knownLen = off, len(v)
	}
}

// Next advances to the next member, reporting false at the end or on malformed input.
func (o *Object) Next() bool {
	if o.done {
		return false
	}
	b, i := o.b, o.i
	if i >= len(b) || b[i] != '"' {
		return o.fail()
	}
	end := SkipString(b, i)
	if end < 0 {
		return o.fail()
	}
	name := b[i+1 : end-1]
	i = SkipSpace(b, end)
	if i >= len(b) || b[i] != ':' {
		return o.fail()
	}
	i = SkipSpace(b, i+1)
	var vend int
	if i == o.knownOff {
		vend = i + o.knownLen
	} else if vend = Skip(b, i); vend < 0 {
		return o.fail()
	}
	o.name, o.value = name, b[i:vend]
	i = SkipSpace(b, vend)
	switch {
	case i < len(b) && b[i] == ',':
		o.i = SkipSpace(b, i+1)
	case i == len(b)-1 && b[i] == '}' && !o.members:
		o.done = true
	case i == len(b) && o.members:
		o.done = true
	default:
		return o.fail()
	}
	return true
}

func (o *Object) fail() bool {
	o.bad, o.done = true, true
	o.name, o.value = nil, nil
	return false
}

// Name returns the current member's name as written, without its quotes and not unescaped.
func (o *Object) Name() []byte { return o.name }

// Value returns the current member's raw value.
func (o *Object) Value() []byte { return o.value }

// Malformed reports whether the walk stopped on something that is not a JSON object.
func (o *Object) Malformed() bool { return o.bad }

// Member returns the raw value of the top-level member key of the JSON object obj, or nil when
// obj is not an object or has no such member. The last one wins on duplicates, as in codec and
// encoding/json; key is compared with the member name as written, without unescaping.
func Member(obj []byte, key string) []byte {
	var found []byte
	var o Object
	for o.Reset(obj); o.Next(); {
		if string(o.Name()) == key {
			found = o.Value()
		}
	}
	if o.Malformed() {
		return nil
	}
	return found
}

// Array walks the elements of a JSON array:
//
//	var a rawjson.Array
//	for a.Reset(b); a.Next(); {
//		use(a.Value())
//	}
type Array struct {
	cursor
	cur []byte
}

// Reset starts a walk over the array b (surrounding space allowed) and reports whether b looks
// like an array ('[' to ']').
func (a *Array) Reset(b []byte) bool {
	*a = Array{}
	return a.enter(TrimSpace(b), '[', ']')
}

// Next advances to the next element, reporting false at the end or on malformed input.
func (a *Array) Next() bool {
	if a.done {
		return false
	}
	end := Skip(a.b, a.i)
	if end < 0 {
		return a.fail()
	}
	a.cur = a.b[a.i:end]
	j := SkipSpace(a.b, end)
	switch {
	case j < len(a.b) && a.b[j] == ',':
		a.i = SkipSpace(a.b, j+1)
	case j == len(a.b)-1 && a.b[j] == ']':
		a.done = true
	default:
		return a.fail()
	}
	return true
}

func (a *Array) fail() bool {
	a.bad, a.done, a.cur = true, true, nil
	return false
}

// Value returns the current element.
func (a *Array) Value() []byte { return a.cur }

// Malformed reports whether the walk stopped on something that is not a JSON array.
func (a *Array) Malformed() bool { return a.bad }

// Param returns the raw value of a parameter given by name (params as an object) or by
// position (params as an array), or nil when it is absent.
func Param(params []byte, name string, pos int) []byte {
	params = TrimSpace(params)
	if len(params) == 0 {
		return nil
	}
	switch params[0] {
	case '{':
		return Member(params, name)
	case '[':
		var a Array
		a.Reset(params)
		for k := 0; a.Next(); k++ {
			if k == pos {
				return a.Value()
			}
		}
	}
	return nil
}

// ParseUint parses a JSON number that is a non-negative integer without fraction, exponent,
// sign or leading zero (task numbers, credit counts), surrounding space allowed.
func ParseUint(b []byte) (uint64, bool) { return ParseDigits(TrimSpace(b)) }

// ParseDigits parses a non-empty run of decimal digits without a leading zero (no space, no
// sign) that fits in a uint64. Nineteen digits always fit: only a twentieth needs the
// overflow check.
func ParseDigits(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 || len(b) > 1 && b[0] == '0' {
		return 0, false
	}
	var n uint64
	for _, c := range b[:min(len(b), 19)] {
		d := c - '0'
		if d > 9 {
			return 0, false
		}
		n = n*10 + uint64(d)
	}
	if len(b) == 20 {
		d := b[19] - '0'
		if d > 9 || n > (1<<64-1-uint64(d))/10 {
			return 0, false
		}
		n = n*10 + uint64(d)
	}
	return n, true
}

// ParseInt parses a JSON integer that may be negative, of magnitude at most 2^62.
func ParseInt(b []byte) (int64, bool) {
	b = TrimSpace(b)
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	u, ok := ParseDigits(b)
	if !ok || u > 1<<62 {
		return 0, false
	}
	if neg {
		return -int64(u), true
	}
	return int64(u), true
}

// Unquote returns the contents of a JSON string that has no escapes, reporting false for
// anything else (a string with escapes, a non-string, invalid UTF-8).
func Unquote(b []byte) ([]byte, bool) {
	b = TrimSpace(b)
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return nil, false
	}
	s := b[1 : len(b)-1]
	for _, c := range s {
		if c == '\\' || c == '"' || c < 0x20 {
			return nil, false
		}
	}
	if !utf8.Valid(s) {
		return nil, false
	}
	return s, true
}

// IsTrue reports whether b is the JSON literal true (surrounding space allowed).
func IsTrue(b []byte) bool { return string(TrimSpace(b)) == "true" }
