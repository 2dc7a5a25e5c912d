package dispatch

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/protocol"
)

type point struct {
	X int `json:"x"`
	Y int `json:"y"`
}

// call runs method on d and returns the raw result or the *codec.Error.
func call(t *testing.T, d *Dispatcher, method, params string) (string, *codec.Error) {
	t.Helper()
	var p []byte
	if params != "" {
		p = []byte(params)
	}
	prefix := []byte("prefix:")
	out, err := d.Call(context.Background(), prefix, []byte(method), p)
	if string(out[:len(prefix)]) != "prefix:" {
		t.Fatalf("Call clobbered dst: %q", out)
	}
	if err != nil {
		if len(out) != len(prefix) {
			t.Fatalf("Call failed but appended %q", out[len(prefix):])
		}
		var ce *codec.Error
		if !errors.As(err, &ce) {
			t.Fatalf("Call error %v (%T) carries no *codec.Error", err, err)
		}
		return "", ce
	}
	return string(out[len(prefix):]), nil
}

// procRecorder records the arguments a Proc4 handler saw.
type procRecorder struct {
	mu   sync.Mutex
	args []any
}

func typedDispatcher(t *testing.T, rec *procRecorder) *Dispatcher {
	t.Helper()
	d := New()
	reg := func(name string, h Handler, opts ...Option) {
		t.Helper()
		if err := d.Register(name, h, opts...); err != nil {
			t.Fatalf("register %s: %v", name, err)
		}
	}
	// arity 0
	reg("ping", Pure0(func() string { return "pong" }))
	reg("now", Func0(func(ctx context.Context) (int64, error) { return 1700000000, nil }))
	// arity 1
	upper := func(ctx context.Context, s string) (string, error) { return strings.ToUpper(s), nil }
	reg("upper", Func1(upper))
	reg("upper.named", Func1(upper), Names("s"))
	reg("norm", Pure1(func(p point) int { return p.X*p.X + p.Y*p.Y }))
	reg("normp", Pure1(func(p *point) int { return p.X*p.X + p.Y*p.Y }))
	reg("norm.named", Pure1(func(p point) int { return p.X*p.X + p.Y*p.Y }), Names("p"))
	reg("sum", Pure1(func(xs []int) int {
		s := 0
		for _, x := range xs {
			s += x
		}
		return s
	}))
	// arity 2
	add := func(a, b int) int { return a + b }
	reg("add", Pure2(add))
	reg("add.named", Pure2(add), Names("a", "b"))
	// arity 3
	sum3 := func(a, b, c float64) (float64, error) { return a + b + c, nil }
	reg("sum3", Try3(sum3))
	reg("sum3.named", Try3(sum3), Names("a", "b", "c"))
	// arity 4
	proc := func(ctx context.Context, a int, b string, c bool, d []int) error {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		rec.args = []any{a, b, c, d}
		return nil
	}
	reg("proc4", Proc4(proc))
	reg("proc4.named", Proc4(proc), Names("a", "b", "c", "d"))
	reg("func4", Func4(func(ctx context.Context, a int8, b uint16, c float32, d string) (string, error) {
		return d + ":" + string(rune('0'+a)) + ":" + string(rune('0'+b)), nil
	}), Names("a", "b", "c", "d"))
	return d
}

func TestTypedParams(t *testing.T) {
	rec := &procRecorder{}
	d := typedDispatcher(t, rec)
	tests := []struct {
		name, method, params, want string
	}{
		{"arity0 absent", "ping", "", `"pong"`},
		{"arity0 empty array", "ping", `[]`, `"pong"`},
		{"arity0 empty object", "ping", `{}`, `"pong"`},
		{"arity0 null", "ping", `null`, `"pong"`},
		{"arity0 ctx", "now", ``, `1700000000`},
		{"arity1 positional", "upper", `["ab"]`, `"AB"`},
		{"arity1 escaped string", "upper", `["a\nb\u00e9"]`, `"A\nBÉ"`},
		{"arity1 named", "upper.named", `{"s":"xy"}`, `"XY"`},
		{"arity1 named escaped key", "upper.named", `{"\u0073":"xy"}`, `"XY"`},
		{"arity1 positional still works with names", "upper.named", `["xy"]`, `"XY"`},
		{"struct whole object", "norm", `{"x":3,"y":4}`, `25`},
		{"struct positional", "norm", `[{"x":3,"y":4}]`, `25`},
		{"struct unknown fields ignored", "norm", `{"x":3,"y":4,"z":5}`, `25`},
		{"struct pointer whole object", "normp", `{"x":1,"y":1}`, `2`},
		{"struct named", "norm.named", `{"p":{"x":1,"y":2}}`, `5`},
		{"slice param", "sum", `[[1,2,3]]`, `6`},
		{"arity2 positional", "add", `[5, 6]`, `11`},
		{"arity2 whitespace", "add", " [ 5 ,\n6 ] ", `11`},
		{"arity2 negative", "add", `[-5,-6]`, `-11`},
		{"arity2 named", "add.named", `{"a":5,"b":6}`, `11`},
		{"arity2 named reordered", "add.named", `{"b":6,"a":5}`, `11`},
		{"arity3 positional", "sum3", `[1.5,2,3e2]`, `303.5`},
		{"arity3 named", "sum3.named", `{"c":1,"a":0.25,"b":0.25}`, `1.5`},
		{"arity4 positional", "proc4", `[1,"x",true,[1,2]]`, `null`},
		{"arity4 named", "proc4.named", `{"d":[3],"c":false,"b":"y","a":2}`, `null`},
		{"arity4 small types", "func4", `{"a":1,"b":2,"c":0.5,"d":"z"}`, `"z:1:2"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := call(t, d, tt.method, tt.params)
			if err != nil {
				t.Fatalf("%s(%s): %v", tt.method, tt.params, err)
			}
			if got != tt.want {
				t.Fatalf("%s(%s) = %s, want %s", tt.method, tt.params, got, tt.want)
			}
		})
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if a := rec.args; a[0] != 2 || a[1] != "y" || a[2] != false || len(a[3].([]int)) != 1 {
		t.Fatalf("proc4.named saw %v", a)
	}
}

func TestTypedInvalidParams(t *testing.T) {
	d := typedDispatcher(t, &procRecorder{})
	if err := d.Register("int8", Pure1(func(v int8) int8 { return v })); err != nil {
		t.Fatal(err)
	}
	if err := d.Register("uint", Pure1(func(v uint) uint { return v })); err != nil {
		t.Fatal(err)
	}
	if err := d.Register("bool", Pure1(func(v bool) bool { return v })); err != nil {
		t.Fatal(err)
	}
	if err := d.Register("f64", Pure1(func(v float64) float64 { return v })); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, params, want string
	}{
		{"too few", "add", `[1]`, "expected 2 params, got 1"},
		{"too many", "add", `[1,2,3]`, "expected 2 params, got 3"},
		{"absent", "add", ``, "expected 2 params, got 0"},
		{"null", "add", `null`, "expected 2 params, got 0"},
		{"empty array", "add", `[]`, "expected 2 params, got 0"},
		{"too many named form", "add.named", `[1,2,3]`, "expected 2 params (a, b), got 3"},
		{"one param noun", "upper", `[]`, "expected 1 param, got 0"},
		{"arity0 with params", "ping", `[1]`, "expected 0 params, got 1"},
		{"arity0 with named", "ping", `{"x":1}`, "expected no params, got 1"},
		{"string for int", "add", `[1,"2"]`, "param 2: expected int, got string"},
		{"string for int named", "add.named", `{"a":1,"b":"x"}`, "param 2 (b): expected int, got string"},
		{"fraction for int", "add", `[5.5,1]`, "param 1: expected int, got number 5.5"},
		{"exponent for int", "add", `[1e3,1]`, "param 1: expected int, got number 1e3"},
		{"null for int", "add", `[null,1]`, "param 1: expected int, got null"},
		{"object for int", "add", `[{},1]`, "param 1: expected int, got object"},
		{"array for int", "add", `[1,[]]`, "param 2: expected int, got array"},
		{"bool for int", "add", `[true,1]`, "param 1: expected int, got bool"},
		{"int overflow", "add", `[99999999999999999999,1]`, "param 1: expected int, got number 99999999999999999999"},
		{"int8 overflow", "int8", `[128]`, "param 1: expected int8, got number 128"},
		{"int8 underflow", "int8", `[-129]`, "param 1: expected int8, got number -129"},
		{"negative uint", "uint", `[-1]`, "param 1: expected uint, got number -1"},
		{"string for bool", "bool", `["true"]`, "param 1: expected bool, got string"},
		{"number for string", "upper", `[5]`, "param 1: expected string, got number 5"},
		{"null for string", "upper", `[null]`, "param 1: expected string, got null"},
		{"string for float", "f64", `["1.5"]`, "param 1: expected float64, got string"},
		{"float overflow", "f64", `[1e999]`, "param 1: expected float64, got number 1e999"},
		{"long number shortened", "add", `[1234567890123456789012345678901234567890,1]`,
			"param 1: expected int, got number 12345678901234567890123456789012..."},
		{"missing name", "add.named", `{"a":1}`, "missing param 2 (b)"},
		{"missing all names", "add.named", `{}`, "missing param 1 (a)"},
		{"unknown name", "add.named", `{"a":1,"b":2,"c":3}`, `unknown param "c"`},
		{"case-sensitive name", "add.named", `{"A":1,"b":2}`, `unknown param "A"`},
		{"duplicate name", "add.named", `{"a":1,"a":2,"b":3}`, `duplicate param "a"`},
		{"named without Names", "add", `{"a":1,"b":2}`, "named params are not supported by this method: pass an array of 2"},
		{"params scalar", "add", `5`, "params must be an array or an object, got number 5"},
		{"params string", "add", `"x"`, "params must be an array or an object, got string"},
		{"invalid JSON", "add", `[1,`, "params: invalid JSON at offset 3"},
		{"invalid JSON element", "add", `[1,2x]`, "params: invalid JSON at offset 4"},
		{"trailing garbage", "add", `[1,2]x`, "params: invalid JSON at offset 5"},
		{"invalid JSON named", "add.named", `{"a":1,}`, "params: invalid JSON at offset 7"},
		{"invalid JSON struct", "norm", `{"x":1`, "params: invalid JSON at offset 6"},
		{"struct field type", "norm", `{"x":"a","y":1}`, "param 1: field x: expected int, got string"},
		{"struct wrong kind", "norm", `[5]`, "param 1: expected dispatch.point, got number"},
		{"slice element type", "sum", `[[1,"a"]]`, "param 1: expected int, got string"},
		{"nested too deep", "sum", `[` + strings.Repeat("[", maxParamDepth+1) + strings.Repeat("]", maxParamDepth+1) + `]`,
			"params nested deeper than 1024 levels"},
		{"typed arity 4", "proc4", `[1,"x","true",[]]`, "param 3: expected bool, got string"},
		{"typed arity 4 named slice", "proc4.named", `{"a":1,"b":"x","c":true,"d":{}}`, "param 4 (d): expected []int, got object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := call(t, d, tt.method, tt.params)
			if err == nil {
				t.Fatalf("%s(%s) = %s, want error %q", tt.method, tt.params, got, tt.want)
			}
			if err.Code != codec.CodeInvalidParams || err.Message != tt.want {
				t.Fatalf("%s(%s): got %d %q, want -32602 %q", tt.method, tt.params, err.Code, err.Message, tt.want)
			}
		})
	}
}

type celsius float64

func (c celsius) MarshalJSON() ([]byte, error) { return []byte(`"warm"`), nil }

func TestTypedResults(t *testing.T) {
	d := New()
	results := []struct {
		name string
		h    Handler
		want string
	}{
		{"int8", Pure0(func() int8 { return -128 }), `-128`},
		{"int16", Pure0(func() int16 { return math.MaxInt16 }), `32767`},
		{"int32", Pure0(func() int32 { return math.MinInt32 }), `-2147483648`},
		{"int64", Pure0(func() int64 { return math.MinInt64 }), `-9223372036854775808`},
		{"uint", Pure0(func() uint { return 7 }), `7`},
		{"uint8", Pure0(func() uint8 { return 255 }), `255`},
		{"uint16", Pure0(func() uint16 { return 65535 }), `65535`},
		{"uint32", Pure0(func() uint32 { return math.MaxUint32 }), `4294967295`},
		{"uint64", Pure0(func() uint64 { return math.MaxUint64 }), `18446744073709551615`},
		{"float64", Pure0(func() float64 { return 0.1 }), `0.1`},
		{"float64 big", Pure0(func() float64 { return 1e21 }), `1e+21`},
		{"float64 small", Pure0(func() float64 { return 1e-7 }), `1e-7`},
		{"float64 integral", Pure0(func() float64 { return 3 }), `3`},
		{"float32", Pure0(func() float32 { return 0.1 }), `0.1`},
		{"bool", Pure0(func() bool { return true }), `true`},
		{"bool false", Pure0(func() bool { return false }), `false`},
		{"string escapes", Pure0(func() string { return "a\"b\n<é" }), `"a\"b\n<é"`},
		{"struct", Pure0(func() point { return point{1, 2} }), `{"x":1,"y":2}`},
		{"nil pointer", Pure0(func() *point { return nil }), `null`},
		{"slice", Pure0(func() []string { return []string{"a"} }), `["a"]`},
		{"any", Pure0(func() any { return map[string]int{"k": 1} }), `{"k":1}`},
		{"named type marshaler", Pure0(func() celsius { return 20 }), `"warm"`},
		{"proc", Proc0(func(context.Context) error { return nil }), `null`},
	}
	for _, r := range results {
		if err := d.Register(r.name, r.h); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range results {
		t.Run(r.name, func(t *testing.T) {
			got, err := call(t, d, r.name, "")
			if err != nil {
				t.Fatal(err)
			}
			if got != r.want {
				t.Fatalf("got %s, want %s", got, r.want)
			}
		})
	}

	// Values JSON cannot carry are the server's fault: -32603.
	bad := map[string]Handler{
		"nan":  Pure0(func() float64 { return math.NaN() }),
		"inf":  Pure0(func() float32 { return float32(math.Inf(1)) }),
		"chan": Pure0(func() any { return make(chan int) }),
	}
	for name, h := range bad {
		if err := d.Register(name, h); err != nil {
			t.Fatal(err)
		}
		_, err := call(t, d, name, "")
		if err == nil || err.Code != codec.CodeInternalError || !strings.HasPrefix(err.Message, "internal error: cannot encode result") {
			t.Fatalf("%s: got %v, want -32603 cannot encode result", name, err)
		}
	}
}

func TestTypedContextAndErrors(t *testing.T) {
	type key struct{}
	d := New()
	errBoom := errors.New("boom")
	d.MustRegister("ctx", Func1(func(ctx context.Context, s string) (string, error) {
		v, _ := ctx.Value(key{}).(string)
		return v + s, nil
	}))
	d.MustRegister("try", Try1(func(fail bool) (int, error) {
		if fail {
			return 0, errBoom
		}
		return 1, nil
	}))
	d.MustRegister("proc", Proc1(func(ctx context.Context, fail bool) error {
		if fail {
			return Errorf(7, map[string]int{"n": 1}, "failed %d", 7)
		}
		return nil
	}))
	ctx := context.WithValue(context.Background(), key{}, "v:")
	out, err := d.Call(ctx, nil, []byte("ctx"), []byte(`["x"]`))
	if err != nil || string(out) != `"v:x"` {
		t.Fatalf("ctx: %s %v", out, err)
	}
	if got, err := call(t, d, "try", `[false]`); err != nil || got != "1" {
		t.Fatalf("try: %s %v", got, err)
	}
	_, cerr := d.Call(ctx, nil, []byte("try"), []byte(`[true]`))
	if !errors.Is(cerr, errBoom) {
		t.Fatalf("try error %v does not wrap the handler's error", cerr)
	}
	if ce := codec.AsError(cerr); ce.Code != protocol.CodeHandlerError || ce.Message != "boom" {
		t.Fatalf("try error on the wire: %d %q", ce.Code, ce.Message)
	}
	_, ce := call(t, d, "proc", `[true]`)
	if ce == nil || ce.Code != 7 || ce.Message != "failed 7" || string(ce.Data) != `{"n":1}` {
		t.Fatalf("proc error: %+v", ce)
	}
}
