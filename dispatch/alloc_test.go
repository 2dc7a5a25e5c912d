package dispatch

import (
	"context"
	"strconv"
	"testing"

	"github.com/zerotask/zerotask/internal/rawjson"
)

// addFrames are the requests of the allocation tests and benchmarks.
var (
	addFrame      = []byte(`{"jsonrpc":"2.0","method":"add","params":[5,6],"id":1}`)
	addNamedFrame = []byte(`{"jsonrpc":"2.0","method":"add","params":{"a":5,"b":6},"id":1}`)
	addReply      = `{"jsonrpc":"2.0","id":1,"result":11}`
)

// rawAddHandler is add written against the raw fast path: it walks the params array itself.
func rawAddHandler(ctx context.Context, dst, params []byte) ([]byte, error) {
	var sum int64
	n := 0
	it := elemIter(rawjson.TrimSpace(params), 1)
	for it.next() {
		v, ok := parseInt(it.val, 64)
		if !ok {
			return dst, invalidParams("add: params must be integers")
		}
		sum += v
		n++
	}
	if it.err != nil || n != 2 {
		return dst, invalidParams("add: expected 2 params")
	}
	return strconv.AppendInt(dst, sum, 10), nil
}

// addDispatchers returns a dispatcher with add as a raw handler, and one with the typed add.
func addDispatchers(t testing.TB) (raw, typed *Dispatcher) {
	raw, typed = New(), New()
	if err := raw.Register("add", HandlerFunc(rawAddHandler)); err != nil {
		t.Fatal(err)
	}
	if err := typed.Register("add", Pure2(func(a, b int) int { return a + b }), Names("a", "b")); err != nil {
		t.Fatal(err)
	}
	return raw, typed
}

func TestAllocs(t *testing.T) {
	raw, typed := addDispatchers(t)
	strs := New()
	strs.MustRegister("concat", Pure2(func(a, b string) string { return a + b }))
	strs.MustRegister("scalars", Func4(func(ctx context.Context, a int64, b float64, c bool, d uint8) (float64, error) {
		if c {
			return float64(a) + b + float64(d), nil
		}
		return 0, nil
	}))
	withMW := New()
	withMW.Use(func(name string, next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, dst, params []byte) ([]byte, error) {
			return next.ServeRPC(ctx, dst, params)
		})
	})
	withMW.MustRegister("add", Pure2(func(a, b int) int { return a + b }))

	ctx := context.Background()
	dst := make([]byte, 0, 512)
	var (
		addName, addParams         = []byte("add"), []byte("[5,6]")
		scalarsName, scalarsParams = []byte("scalars"), []byte(`[1,2.5,true,3]`)
		concatName, concatParams   = []byte("concat"), []byte(`["ab","cd"]`)
		unknownFrame               = []byte(`{"jsonrpc":"2.0","method":"nope","id":1}`)
		notification               = []byte(`{"jsonrpc":"2.0","method":"add","params":[1,2]}`)
	)
	batch := []byte(`[` + string(addFrame) + `,` + string(addNamedFrame) + `,{"jsonrpc":"2.0","method":"add","params":[1,2]}]`)
	tests := []struct {
		name string
		max  float64
		run  func()
		want string // expected output of run's last step, checked once
	}{
		{"Lookup", 0, func() { _, _ = typed.Lookup([]byte("add")) }, ""},
		{"Lookup miss", 0, func() { _, _ = typed.Lookup([]byte("nope")) }, ""},
		{"raw add frame to reply", 0, func() { dst = raw.ServeFrame(ctx, dst[:0], addFrame) }, addReply},
		{"typed add frame to reply", 2, func() { dst = typed.ServeFrame(ctx, dst[:0], addFrame) }, addReply},
		{"typed add frame to reply (exact)", 0, func() { dst = typed.ServeFrame(ctx, dst[:0], addFrame) }, addReply},
		{"typed add named params", 0, func() { dst = typed.ServeFrame(ctx, dst[:0], addNamedFrame) }, addReply},
		{"typed add with middleware", 0, func() { dst = withMW.ServeFrame(ctx, dst[:0], addFrame) }, addReply},
		{"typed add Call", 0, func() {
			dst, _ = typed.Call(ctx, dst[:0], addName, addParams)
		}, "11"},
		{"typed scalars Call", 0, func() {
			dst, _ = strs.Call(ctx, dst[:0], scalarsName, scalarsParams)
		}, "6.5"},
		{"typed strings Call (a copy per string param, one for a+b)", 3, func() {
			dst, _ = strs.Call(ctx, dst[:0], concatName, concatParams)
		}, `"abcd"`},
		{"unknown method", 0, func() {
			dst = typed.ServeFrame(ctx, dst[:0], unknownFrame)
		}, `{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"Method not found"}}`},
		{"batch", 0, func() { dst = typed.ServeFrame(ctx, dst[:0], batch) }, "[" + addReply + "," + addReply + "]"},
		{"notification", 0, func() {
			dst = typed.ServeFrame(ctx, dst[:0], notification)
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.run()
			if tt.want != "" && string(dst) != tt.want {
				t.Fatalf("output %s, want %s", dst, tt.want)
			}
			allocs := testing.AllocsPerRun(200, tt.run)
			if raceEnabled {
				t.Skipf("race detector on: %v allocs/op not checked", allocs)
			}
			if allocs > tt.max {
				t.Fatalf("%v allocs/op, want <= %v", allocs, tt.max)
			}
		})
	}
}
