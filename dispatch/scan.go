package dispatch

// This file holds the params scanner: it splits raw params into one raw value per argument
// without decoding them, on codec's JSON walker (codec.SkipValue, the one that validates), and
// the strict scalar parsers of the typed fast path. Nothing here allocates: it returns
// sub-slices of its input.

import (
	"errors"
	"math"
	"strconv"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/internal/rawjson"
)

// maxParamDepth bounds the nesting of arrays and objects inside params: codec's walker tracks
// open containers in a fixed stack of this many. Inside ServeFrame the frame limits
// (codec.Limits.MaxDepth) usually stop deep nesting long before this.
const maxParamDepth = codec.HardMaxDepth

// errSyntax and errDepth are the scanner's two failures; the callers turn them into -32602
// messages that say where.
var (
	errSyntax = errors.New("dispatch: invalid JSON")
	errDepth  = errors.New("dispatch: JSON nested too deeply")
)

// skipValue validates the JSON value starting at b[i] (no leading space) and returns the index
// just past it.
func skipValue(b []byte, i int) (int, error) {
	end, err := codec.SkipValue(b, i)
	switch {
	case err == nil:
		return end, nil
	case errors.Is(err, codec.ErrTooDeep):
		return end, errDepth
	}
	return end, errSyntax
}

// memberIter walks the elements of a JSON array or the members of a JSON object whose opening
// bracket has been consumed (close is ']' or '}'). Each call to next validates one element or
// member and leaves its value in val (a sub-slice of b) and, in an object, its raw key (quotes
// included) in key.
type memberIter struct {
	b     []byte
	i     int
	close byte
	n     int // elements or members seen so far
	key   []byte
	val   []byte
	err   error
	done  bool
}

// elemIter walks the array b from index i (just past its '[').
func elemIter(b []byte, i int) memberIter { return memberIter{b: b, i: i, close: ']'} }

// fieldIter walks the object b from index i (just past its '{').
func fieldIter(b []byte, i int) memberIter { return memberIter{b: b, i: i, close: '}'} }

func (it *memberIter) next() bool {
	if it.done || it.err != nil {
		return false
	}
	i := codec.SkipSpace(it.b, it.i)
	if i < len(it.b) && it.b[i] == it.close {
		it.i, it.done = i+1, true
		return false
	}
	if it.n > 0 {
		if i >= len(it.b) || it.b[i] != ',' {
			it.i, it.err = i, errSyntax
			return false
		}
		i = codec.SkipSpace(it.b, i+1)
	}
	if it.close == '}' {
		kend, _, err := codec.SkipString(it.b, i)
		if err != nil {
			it.i, it.err = kend, errSyntax
			return false
		}
		it.key = it.b[i:kend]
		i = codec.SkipSpace(it.b, kend)
		if i >= len(it.b) || it.b[i] != ':' {
			it.i, it.err = i, errSyntax
			return false
		}
		i = codec.SkipSpace(it.b, i+1)
	}
	end, err := skipValue(it.b, i)
	if err != nil {
		it.i, it.err = end, err
		return false
	}
	it.val, it.i = it.b[i:end], end
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
	u, ok := rawjson.ParseDigits(d)
	if !ok {
		return 0, false
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
	u, ok := rawjson.ParseDigits(v)
	if !ok {
		return 0, false
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
	if end, err := codec.SkipValue(v, 0); err != nil || end != len(v) {
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
