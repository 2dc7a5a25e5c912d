package broker

// Small JSON helpers of the broker's own: the routing path never decodes a task's params or
// result, but it reads a few broker.* params (credit counts, running ids, named members) and
// the task numbers that nodes echo as ids. Everything here works on raw bytes already validated
// by codec.Scan and allocates nothing: results are sub-slices of the input.

import (
	"errors"
	"strconv"
	"unicode/utf8"
)

// errJSON reports malformed JSON in broker.* params (answered with -32602).
var errJSON = errors.New("broker: malformed JSON")

// maxSkipDepth bounds the nesting skipValue walks (its recursion depth).
const maxSkipDepth = 128

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// trimSpace returns b without leading and trailing JSON whitespace.
func trimSpace(b []byte) []byte {
	i := skipSpace(b, 0)
	j := len(b)
	for j > i && isSpace(b[j-1]) {
		j--
	}
	return b[i:j]
}

// skipValue returns the index just past the JSON value starting at b[i] (no leading space).
func skipValue(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return 0, errJSON
	}
	if depth > maxSkipDepth {
		return 0, errJSON
	}
	switch c := b[i]; {
	case c == '"':
		return skipString(b, i)
	case c == '{' || c == '[':
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == closer {
			return i + 1, nil
		}
		for {
			var err error
			if c == '{' {
				if i >= len(b) || b[i] != '"' {
					return 0, errJSON
				}
				if i, err = skipString(b, i); err != nil {
					return 0, err
				}
				i = skipSpace(b, i)
				if i >= len(b) || b[i] != ':' {
					return 0, errJSON
				}
				i = skipSpace(b, i+1)
			}
			if i, err = skipValue(b, i, depth+1); err != nil {
				return 0, err
			}
			i = skipSpace(b, i)
			if i >= len(b) {
				return 0, errJSON
			}
			if b[i] == closer {
				return i + 1, nil
			}
			if b[i] != ',' {
				return 0, errJSON
			}
			i = skipSpace(b, i+1)
		}
	default:
		// number, true, false, null: a run of literal characters.
		j := i
		for j < len(b) {
			c := b[j]
			if c == ',' || c == ']' || c == '}' || isSpace(c) {
				break
			}
			j++
		}
		if j == i {
			return 0, errJSON
		}
		return j, nil
	}
}

// skipString returns the index just past the JSON string starting at b[i] == '"'.
func skipString(b []byte, i int) (int, error) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, errJSON
}

// arrayIter walks the elements of a JSON array without allocating.
type arrayIter struct {
	b   []byte
	i   int
	err error
	cur []byte
}

// reset starts a walk over the array b (leading/trailing space allowed). It reports false when
// b is not an array.
func (it *arrayIter) reset(b []byte) bool {
	b = trimSpace(b)
	*it = arrayIter{b: b}
	if len(b) < 2 || b[0] != '[' || b[len(b)-1] != ']' {
		it.err = errJSON
		return false
	}
	it.i = skipSpace(b, 1)
	if it.b[it.i] == ']' {
		it.i = len(b)
	}
	return true
}

// next advances to the next element, reporting false at the end or on error.
func (it *arrayIter) next() bool {
	if it.err != nil || it.i >= len(it.b) {
		return false
	}
	end, err := skipValue(it.b, it.i, 1)
	if err != nil {
		it.err = err
		return false
	}
	it.cur = it.b[it.i:end]
	j := skipSpace(it.b, end)
	switch {
	case j < len(it.b) && it.b[j] == ',':
		it.i = skipSpace(it.b, j+1)
	case j == len(it.b)-1 && it.b[j] == ']':
		it.i = len(it.b)
	default:
		it.err = errJSON
		return false
	}
	return true
}

// member returns the raw value of the top-level member key of the JSON object obj, or nil
// when obj is not an object or has no such member (the last one wins on duplicates, as in
// codec). key is compared with the member name as written, without unescaping.
func member(obj []byte, key string) []byte {
	obj = trimSpace(obj)
	if len(obj) < 2 || obj[0] != '{' {
		return nil
	}
	var found []byte
	i := skipSpace(obj, 1)
	if i < len(obj) && obj[i] == '}' {
		return nil
	}
	for i < len(obj) {
		if obj[i] != '"' {
			return nil
		}
		end, err := skipString(obj, i)
		if err != nil {
			return nil
		}
		name := obj[i+1 : end-1]
		i = skipSpace(obj, end)
		if i >= len(obj) || obj[i] != ':' {
			return nil
		}
		i = skipSpace(obj, i+1)
		vend, err := skipValue(obj, i, 1)
		if err != nil {
			return nil
		}
		if string(name) == key {
			found = obj[i:vend]
		}
		i = skipSpace(obj, vend)
		if i >= len(obj) || obj[i] == '}' {
			break
		}
		if obj[i] != ',' {
			return nil
		}
		i = skipSpace(obj, i+1)
	}
	return found
}

// param returns the raw value of a broker.* parameter given by name (params as an object) or
// by position (params as an array). It returns nil when absent.
func param(params []byte, name string, pos int) []byte {
	params = trimSpace(params)
	if len(params) == 0 {
		return nil
	}
	switch params[0] {
	case '{':
		return member(params, name)
	case '[':
		var it arrayIter
		if !it.reset(params) {
			return nil
		}
		for k := 0; it.next(); k++ {
			if k == pos {
				return it.cur
			}
		}
	}
	return nil
}

// parseUint parses a JSON number that is a non-negative integer (no fraction, no exponent,
// no sign), as task numbers and credit counts are. It allocates nothing.
func parseUint(b []byte) (uint64, bool) {
	return parseDigits(trimSpace(b))
}

// parseDigits parses a non-empty run of decimal digits without a leading zero.
func parseDigits(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (1<<64-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	if len(b) > 1 && b[0] == '0' {
		return 0, false
	}
	return n, true
}

// parseInt parses a JSON integer that may be negative (credit counts are clamped by callers).
func parseInt(b []byte) (int64, bool) {
	b = trimSpace(b)
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	u, ok := parseDigits(b)
	if !ok || u > 1<<62 {
		return 0, false
	}
	if neg {
		return -int64(u), true
	}
	return int64(u), true
}

// unquote returns the contents of a JSON string without escapes, reporting false for anything
// else (a string with escapes, a non-string). It allocates nothing.
func unquote(b []byte) ([]byte, bool) {
	b = trimSpace(b)
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

// appendUint appends n in decimal.
func appendUint(dst []byte, n uint64) []byte { return strconv.AppendUint(dst, n, 10) }

// isTrue reports whether b is the JSON literal true.
func isTrue(b []byte) bool { return string(trimSpace(b)) == "true" }
