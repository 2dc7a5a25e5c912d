package dispatch

// This file holds the small JSON scanner that splits raw params into one raw value per argument
// without decoding them, and the strict scalar parsers of the typed fast path. Nothing here
// allocates: it returns sub-slices of its input.

import (
	"errors"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/zerotask/zerotask/internal/rawjson"
)

// maxParamDepth bounds the nesting of arrays and objects inside params that the scanner will
// walk (its recursion depth). It matches encoding/json's own bound. Inside ServeFrame the frame
// limits (codec.Limits.MaxDepth) usually stop deep nesting long before this.
const maxParamDepth = 10000

// errSyntax and errDepth are the scanner's two failures; the callers turn them into -32602
// messages that say where.
var (
	errSyntax = errors.New("dispatch: invalid JSON")
	errDepth  = errors.New("dispatch: JSON nested too deeply")
)

// skipValue validates the JSON value starting at b[i] (no leading space) and returns the index
// just past it. depth counts the containers already open around it.
func skipValue(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return i, errSyntax
	}
	switch c := b[i]; {
	case c == '"':
		return skipString(b, i)
	case c == '{' || c == '[':
		return skipContainer(b, i, depth+1)
	case c == 't':
		return skipLiteral(b, i, "true")
	case c == 'f':
		return skipLiteral(b, i, "false")
	case c == 'n':
		return skipLiteral(b, i, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		return skipNumber(b, i)
	}
	return i, errSyntax
}

// skipLiteral checks that lit sits at b[i].
func skipLiteral(b []byte, i int, lit string) (int, error) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, errSyntax
	}
	return i + len(lit), nil
}

// skipString validates the JSON string starting at b[i] == '"' and returns the index past its
// closing quote. It checks escapes and UTF-8 validity as encoding/json does.
func skipString(b []byte, i int) (int, error) {
	i++
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			return i + 1, nil
		case c == '\\':
			if i+1 >= len(b) {
				return i, errSyntax
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if len(b)-i < 6 || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return i, errSyntax
				}
				i += 6
			default:
				return i, errSyntax
			}
		case c < 0x20:
			return i, errSyntax
		case c < utf8.RuneSelf:
			i++
		default:
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n == 1 {
				return i, errSyntax
			}
			i += n
		}
	}
	return i, errSyntax
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// skipNumber validates the JSON number at b[i] and returns the index past it.
func skipNumber(b []byte, i int) (int, error) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return i, errSyntax
	}
	if i < len(b) && b[i] == '.' {
		i++
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == start {
			return i, errSyntax
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == start {
			return i, errSyntax
		}
	}
	return i, nil
}

// skipContainer validates the array or object at b[i] and returns the index past it.
func skipContainer(b []byte, i, depth int) (int, error) {
	if depth > maxParamDepth {
		return i, errDepth
	}
	if b[i] == '[' {
		it := elemIter{b: b, i: i + 1, depth: depth}
		for it.next() {
		}
		return it.i, it.err
	}
	it := fieldIter{b: b, i: i + 1, depth: depth}
	for it.next() {
	}
	return it.i, it.err
}

// elemIter walks the elements of a JSON array whose '[' has been consumed. Each call to next
// validates one element and leaves it in val (a sub-slice of b).
type elemIter struct {
	b     []byte
	i     int
	depth int
	n     int // elements seen so far
	val   []byte
	err   error
	done  bool
}

func (it *elemIter) next() bool {
	if it.done || it.err != nil {
		return false
	}
	i := rawjson.SkipSpace(it.b, it.i)
	if it.n == 0 {
		if i < len(it.b) && it.b[i] == ']' {
			it.i, it.done = i+1, true
			return false
		}
	} else {
		if i >= len(it.b) {
			it.i, it.err = i, errSyntax
			return false
		}
		if it.b[i] == ']' {
			it.i, it.done = i+1, true
			return false
		}
		if it.b[i] != ',' {
			it.i, it.err = i, errSyntax
			return false
		}
		i = rawjson.SkipSpace(it.b, i+1)
	}
	end, err := skipValue(it.b, i, it.depth)
	if err != nil {
		it.i, it.err = end, err
		return false
	}
	it.val = it.b[i:end]
	it.i = end
	it.n++
	return true
}

// fieldIter walks the members of a JSON object whose '{' has been consumed. Each call to next
// validates one member and leaves its raw key (quotes included) in key and its value in val.
type fieldIter struct {
	b     []byte
	i     int
	depth int
	n     int
	key   []byte
	val   []byte
	err   error
	done  bool
}

func (it *fieldIter) next() bool {
	if it.done || it.err != nil {
		return false
	}
	i := rawjson.SkipSpace(it.b, it.i)
	if i < len(it.b) && it.b[i] == '}' && it.n == 0 {
		it.i, it.done = i+1, true
		return false
	}
	if it.n > 0 {
		if i < len(it.b) && it.b[i] == '}' {
			it.i, it.done = i+1, true
			return false
		}
		if i >= len(it.b) || it.b[i] != ',' {
			it.i, it.err = i, errSyntax
			return false
		}
		i = rawjson.SkipSpace(it.b, i+1)
	}
	if i >= len(it.b) || it.b[i] != '"' {
		it.i, it.err = i, errSyntax
		return false
	}
	kend, err := skipString(it.b, i)
	if err != nil {
		it.i, it.err = kend, err
		return false
	}
	key := it.b[i:kend]
	i = rawjson.SkipSpace(it.b, kend)
	if i >= len(it.b) || it.b[i] != ':' {
		it.i, it.err = i, errSyntax
		return false
	}
	i = rawjson.SkipSpace(it.b, i+1)
	end, err := skipValue(it.b, i, it.depth)
	if err != nil {
		it.i, it.err = end, err
		return false
	}
	it.key, it.val, it.i = key, it.b[i:end], end
	it.n++
	return true
}

// jsonKind names the kind of the JSON value v for error messages ("string", "number 5.5", ...).
// Numbers carry their literal (shortened) because "expected int, got number" alone does not say
// whether the value was fractional or too large.
func jsonKind(v []byte) string {
	if len(v) == 0 {
		return "nothing"
	}
	switch c := v[0]; {
	case c == '"':
		return "string"
	case c == '{':
		return "object"
	case c == '[':
		return "array"
	case c == 't' || c == 'f':
		return "bool"
	case c == 'n':
		return "null"
	case c == '-' || (c >= '0' && c <= '9'):
		if len(v) > 32 {
			return "number " + string(v[:32]) + "..."
		}
		return "number " + string(v)
	}
	return "invalid JSON"
}

// parseInt parses the JSON integer v (no fraction, no exponent) into an int of the given bit
// size. It accepts exactly what encoding/json accepts for Go integer types.
func parseInt(v []byte, bits int) (int64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	neg := v[0] == '-'
	d := v
	if neg {
		d = v[1:]
	}
	if len(d) == 0 || len(d) > 1 && d[0] == '0' {
		return 0, false
	}
	var u uint64
	for _, c := range d {
		if c < '0' || c > '9' {
			return 0, false
		}
		if u > (math.MaxUint64-9)/10 {
			return 0, false
		}
		u = u*10 + uint64(c-'0')
	}
	limit := uint64(1) << (bits - 1)
	if neg {
		if u > limit {
			return 0, false
		}
		return -int64(u), true // u == 1<<63 wraps to MinInt64, which is right
	}
	if u >= limit {
		return 0, false
	}
	return int64(u), true
}

// parseUint parses the JSON non-negative integer v into a uint of the given bit size.
func parseUint(v []byte, bits int) (uint64, bool) {
	if len(v) == 0 || len(v) > 1 && v[0] == '0' {
		return 0, false
	}
	var u uint64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		if u > (math.MaxUint64-uint64(c-'0'))/10 {
			return 0, false
		}
		u = u*10 + uint64(c-'0')
	}
	if bits < 64 && u >= uint64(1)<<bits {
		return 0, false
	}
	return u, true
}

// parseFloat parses the JSON number v. strconv gets a string converted from a short slice:
// the compiler keeps such a conversion on the stack, and strconv clones its input into any
// error it returns, so the conversion does not escape.
func parseFloat(v []byte, bits int) (float64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	if c := v[0]; c != '-' && (c < '0' || c > '9') {
		return 0, false
	}
	if end, err := skipNumber(v, 0); err != nil || end != len(v) {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(v), bits)
	if err != nil {
		return 0, false
	}
	return f, true
}

// appendFloat appends f as encoding/json does: the shortest representation, 'f' format unless
// the exponent is very small or very large. NaN and infinities have no JSON form.
func appendFloat(dst []byte, f float64, bits int) ([]byte, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return dst, false
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	n := len(dst)
	dst = strconv.AppendFloat(dst, f, format, -1, bits)
	if format == 'e' {
		// clean up e-09 to e-9, as encoding/json does
		if m := len(dst) - n; m >= 4 && dst[len(dst)-4] == 'e' && dst[len(dst)-3] == '-' && dst[len(dst)-2] == '0' {
			dst[len(dst)-2] = dst[len(dst)-1]
			dst = dst[:len(dst)-1]
		}
	}
	return dst, true
}
