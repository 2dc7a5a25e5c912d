package node

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/dispatch"
	"github.com/zerotask/zerotask/internal/rawjson"
	"github.com/zerotask/zerotask/protocol"
)

// MaxSleep bounds the builtin sleep task: longer sleeps are invalid params.
const MaxSleep = 24 * time.Hour

// Builtins registers the node's builtin tasks on d (dispatch.Default when d is nil):
//
//   - add, subtract: params [a, b] or {"a": a, "b": b}; two integers give an integer (5+6 is
//     11, not 11.0), anything else a float64 (1.5+2 is 3.5); an integer result that would
//     overflow int64 is computed in float64.
//   - echo: returns its argument as it came, byte for byte: the element of a one-element array
//     (["hi"] gives "hi"), otherwise the params themselves (an object, a longer array), null
//     without params.
//   - sleep: params [ms] or {"ms": ms}, 0 <= ms <= MaxSleep in milliseconds (a fraction is
//     allowed); sleeps that long and returns ms as given, or returns early with the context's
//     error when the task is cancelled (revoke, deadline, stop). An optional second param,
//     [ms, tag] or {"ms": ms, "tag": tag}, any JSON value, is ignored: it tells sleeps apart
//     (the reliability drills count how often each one ran).
//   - sum: params [[n, ...]] (one array of numbers) or [n, ...]: their sum, an integer when
//     every one is an integer and the sum fits int64 (0 for none). A workflow chord's
//     reducer: the group's results array comes as its one param (docs/workflows.md).
//
// They are raw handlers (no reflection, no allocation for add, subtract and echo). Builtins
// fails, registering nothing, if d already has one of these names.
func Builtins(d *dispatch.Dispatcher) error {
	if d == nil {
		d = dispatch.Default
	}
	hs := []struct {
		name string
		h    dispatch.Handler
	}{
		{"add", arith{sub: false}},
		{"subtract", arith{sub: true}},
		{"echo", freeFunc(echo)},
		{"sleep", dispatch.HandlerFunc(sleep)},
		{"sum", freeFunc(sum)},
	}
	for _, h := range hs {
		if _, ok := d.Lookup([]byte(h.name)); ok {
			return fmt.Errorf("node: builtin %q: %w", h.name, dispatch.ErrDuplicate)
		}
	}
	for _, h := range hs {
		if err := d.Register(h.name, h.h); err != nil {
			return fmt.Errorf("node: builtin %q: %w", h.name, err)
		}
	}
	return nil
}

// Errors of the builtins, built once so the error paths of hot tasks allocate nothing.
var (
	errArithParams = codec.NewError(codec.CodeInvalidParams,
		`Invalid params: expected two numbers, [a, b] or {"a": a, "b": b}`, nil)
	errArithRange  = codec.NewError(protocol.CodeHandlerError, "result is not a finite number", nil)
	errSleepParams = codec.NewError(codec.CodeInvalidParams,
		`Invalid params: expected [ms], [ms, tag], {"ms": ms} or {"ms": ms, "tag": tag} with 0 <= ms <= 86400000`, nil)
)

// arith is add (sub false) and subtract (sub true).
type arith struct{ sub bool }

// ContextFree: arith never reads its context (dispatch.ContextFree).
func (arith) ContextFree() {}

// freeFunc is a builtin that never reads its context (dispatch.ContextFree).
type freeFunc func(ctx context.Context, dst, params []byte) ([]byte, error)

// ServeRPC calls f(ctx, dst, params).
func (f freeFunc) ServeRPC(ctx context.Context, dst, params []byte) ([]byte, error) {
	return f(ctx, dst, params)
}

// ContextFree marks f as not reading its context.
func (freeFunc) ContextFree() {}

// ServeRPC computes a+b or a-b.
func (h arith) ServeRPC(_ context.Context, dst, params []byte) ([]byte, error) {
	var raw [2][]byte
	if !args(params, &raw, "a", "b") {
		return dst, errArithParams
	}
	x, xok := parseNumber(raw[0])
	y, yok := parseNumber(raw[1])
	if !xok || !yok {
		return dst, errArithParams
	}
	if x.isInt && y.isInt {
		a, b := x.i, y.i
		if h.sub {
			if s := a - b; (a >= 0) == (b >= 0) || (s >= 0) == (a >= 0) {
				return strconv.AppendInt(dst, s, 10), nil
			}
		} else {
			if s := a + b; (a >= 0) != (b >= 0) || (s >= 0) == (a >= 0) {
				return strconv.AppendInt(dst, s, 10), nil
			}
		}
		// Overflow: fall through to float64.
	}
	var f float64
	if h.sub {
		f = x.float() - y.float()
	} else {
		f = x.float() + y.float()
	}
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return dst, errArithRange
	}
	return appendFloat(dst, f), nil
}

// echo returns its argument byte for byte.
func echo(_ context.Context, dst, params []byte) ([]byte, error) {
	p := rawjson.TrimSpace(params)
	if len(p) == 0 {
		return append(dst, "null"...), nil
	}
	var a rawjson.Array
	if a.Reset(p) && a.Next() {
		if v := a.Value(); !a.Next() && !a.Malformed() {
			return append(dst, v...), nil // [x] echoes x
		}
	}
	return append(dst, p...), nil
}

// errSumParams: sum's params are not numbers.
var errSumParams = codec.NewError(codec.CodeInvalidParams, "Invalid params: expected [[n, ...]] or [n, ...] with numbers", nil)

// sum adds the numbers of its params' array (or of its one array param).
func sum(_ context.Context, dst, params []byte) ([]byte, error) {
	var a rawjson.Array
	list := rawjson.TrimSpace(params)
	if a.Reset(list) && a.Next() {
		if v := rawjson.TrimSpace(a.Value()); len(v) > 0 && v[0] == '[' && !a.Next() && !a.Malformed() {
			list = v
		}
	}
	var i int64
	var f float64
	isInt := true
	for a.Reset(list); a.Next(); {
		n, ok := parseNumber(rawjson.TrimSpace(a.Value()))
		if !ok {
			return dst, errSumParams
		}
		if isInt && n.isInt {
			if s := i + n.i; (i >= 0) != (n.i >= 0) || (s >= 0) == (i >= 0) {
				i = s
				continue
			}
		}
		if isInt {
			isInt, f = false, float64(i)
		}
		f += n.float()
	}
	if a.Malformed() && len(list) > 0 {
		return dst, errSumParams
	}
	if isInt {
		return strconv.AppendInt(dst, i, 10), nil
	}
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return dst, errArithRange
	}
	return appendFloat(dst, f), nil
}

// sleep sleeps for params' milliseconds, honouring ctx.
func sleep(ctx context.Context, dst, params []byte) ([]byte, error) {
	var raw [2][]byte
	if !args(params, &raw, "ms") && !args(params, &raw, "ms", "tag") {
		return dst, errSleepParams
	}
	v, ok := parseNumber(raw[0])
	ms := v.float()
	if !ok || ms < 0 || ms > float64(MaxSleep/time.Millisecond) {
		return dst, errSleepParams
	}
	if d := time.Duration(ms * float64(time.Millisecond)); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return dst, ctx.Err()
		}
	}
	return append(dst, raw[0]...), nil
}

// number is a parsed JSON number: an int64 when it is written as an integer that fits.
type number struct {
	isInt bool
	i     int64
	f     float64
}

func (n number) float() float64 {
	if n.isInt {
		return float64(n.i)
	}
	return n.f
}

// parseNumber parses one JSON number (RFC 8259 grammar exactly: no '+', no leading zeros, no
// "Inf"). It allocates nothing.
func parseNumber(b []byte) (number, bool) {
	if i, ok := smallInt(b); ok {
		return number{isInt: true, i: i}, true
	}
	if !validNumber(b) {
		return number{}, false
	}
	integer := true
	for _, c := range b {
		if c == '.' || c == 'e' || c == 'E' {
			integer = false
			break
		}
	}
	if integer {
		if i, ok := parseInt64(b); ok {
			return number{isInt: true, i: i}, true
		}
	}
	f, err := strconv.ParseFloat(string(b), 64) // no allocation: the string does not escape
	if err != nil && !math.IsInf(f, 0) {
		return number{}, false
	}
	if math.IsInf(f, 0) {
		return number{}, false
	}
	return number{f: f}, true
}

// smallInt parses an integer of at most 18 digits, optionally negative, in one pass: what
// arithmetic is mostly given. It reports false for anything else, valid or not (parseNumber's
// general path judges it then).
func smallInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 18 || (b[0] == '0' && len(b) > 1) {
		return 0, false
	}
	var u int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		u = u*10 + int64(c-'0')
	}
	if neg {
		u = -u
	}
	return u, true
}

// parseInt64 parses an optionally negative run of digits, reporting false on overflow.
func parseInt64(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && b[0] == '-' {
		neg, b = true, b[1:]
	}
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var u uint64
	for _, c := range b {
		u = u*10 + uint64(c-'0')
	}
	if neg {
		if u > 1<<63 {
			return 0, false
		}
		return -int64(u), true
	}
	if u > math.MaxInt64 {
		return 0, false
	}
	return int64(u), true
}

// validNumber reports whether b is exactly one JSON number.
func validNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
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
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return false
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return false
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	return i == len(b)
}

// appendFloat writes f as encoding/json does: plain notation for 1e-6 <= |f| < 1e21, exponent
// notation (e-7, not e-07) outside, shortest digits that read back as f.
func appendFloat(dst []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

// numberPair reads params written as most callers write two numbers, [x,y] without spaces,
// and returns x and y (any run of the bytes a JSON number has: parseNumber checks them). It
// reports false for anything else, which args then walks in full; for add it spares the
// array walk, half of add's own CPU.
func numberPair(p []byte) (x, y []byte, ok bool) {
	if len(p) < 5 || p[0] != '[' || p[len(p)-1] != ']' {
		return nil, nil, false
	}
	comma := 0
	for i := 1; i < len(p)-1; i++ {
		switch c := p[i]; {
		case '0' <= c && c <= '9', c == '-', c == '+', c == '.', c == 'e', c == 'E':
		case c == ',' && comma == 0:
			comma = i
		default:
			return nil, nil, false
		}
	}
	if comma < 2 || comma > len(p)-3 {
		return nil, nil, false
	}
	return p[1:comma], p[comma+1 : len(p)-1], true
}

// args splits params into the raw values of len(names) (at most len(out)) arguments, given
// positionally ([x, y]) or by name ({"a": x, "b": y}, each name exactly once, nothing else). It
// reports false for anything else. It does not validate the values themselves beyond skipping
// them, and allocates nothing.
func args(params []byte, out *[2][]byte, names ...string) bool {
	p := rawjson.TrimSpace(params)
	if len(p) < 2 || len(names) > len(out) {
		return false
	}
	switch p[0] {
	case '[':
		if len(names) == 2 {
			if x, y, ok := numberPair(p); ok {
				out[0], out[1] = x, y
				return true
			}
		}
		var a rawjson.Array
		k := 0
		for a.Reset(p); a.Next(); k++ {
			if k == len(names) {
				return false
			}
			out[k] = a.Value()
		}
		return !a.Malformed() && k == len(names)
	case '{':
		var seen [2]bool
		var o rawjson.Object
		for o.Reset(p); o.Next(); {
			slot := -1
			for j, name := range names {
				if string(o.Name()) == name {
					slot = j
				}
			}
			if slot < 0 || seen[slot] {
				return false
			}
			out[slot], seen[slot] = o.Value(), true
		}
		if o.Malformed() {
			return false
		}
		for j := range names {
			if !seen[j] {
				return false
			}
		}
		return true
	}
	return false
}
