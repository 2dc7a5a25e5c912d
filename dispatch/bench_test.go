package dispatch

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"strconv"
	"testing"
)

// The baseline: what net/rpc-style dispatch costs, with encoding/json for the frame and the
// params, and reflect.Value.Call for the function, resolved through a map of reflect.Values.
type stdRequest struct {
	JSONRPC string          `json:"jsonrpc"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
	ID      json.RawMessage `json:"id"`
}

type stdResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  any             `json:"result"`
}

type stdMethod struct {
	fn   reflect.Value
	args []reflect.Type
}

type stdServer map[string]stdMethod

func newStdServer(name string, fn any) stdServer {
	v := reflect.ValueOf(fn)
	args := make([]reflect.Type, v.Type().NumIn())
	for i := range args {
		args[i] = v.Type().In(i)
	}
	return stdServer{name: {fn: v, args: args}}
}

func (s stdServer) serve(frame []byte) ([]byte, error) {
	var req stdRequest
	if err := json.Unmarshal(frame, &req); err != nil {
		return nil, err
	}
	m := s[req.Method]
	var raw []json.RawMessage
	if err := json.Unmarshal(req.Params, &raw); err != nil {
		return nil, err
	}
	args := make([]reflect.Value, len(m.args))
	for i, t := range m.args {
		v := reflect.New(t)
		if err := json.Unmarshal(raw[i], v.Interface()); err != nil {
			return nil, err
		}
		args[i] = v.Elem()
	}
	out := m.fn.Call(args)
	return json.Marshal(stdResponse{JSONRPC: "2.0", ID: req.ID, Result: out[0].Interface()})
}

// reportCPU starts measuring the process's CPU time; the returned func reports it per op as
// cpu-ns/op (see processCPU).
func reportCPU(b *testing.B) func() {
	start := processCPU()
	return func() {
		if used := processCPU() - start; used > 0 && b.N > 0 {
			b.ReportMetric(float64(used.Nanoseconds())/float64(b.N), "cpu-ns/op")
		}
	}
}

// BenchmarkAdd measures add(a, b int) int from a raw request frame to a raw response frame.
func BenchmarkAdd(b *testing.B) {
	raw, typed := addDispatchers(b)
	std := newStdServer("add", func(a, b int) int { return a + b })
	ctx := context.Background()
	check := func(b *testing.B, out []byte) {
		if !bytes.Equal(out, []byte(addReply)) {
			b.Fatalf("reply %s", out)
		}
	}
	b.Run("raw", func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b)()
		b.SetBytes(int64(len(addFrame)))
		dst := make([]byte, 0, 256)
		for b.Loop() {
			dst = raw.ServeFrame(ctx, dst[:0], addFrame)
		}
		check(b, dst)
	})
	b.Run("typed", func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b)()
		b.SetBytes(int64(len(addFrame)))
		dst := make([]byte, 0, 256)
		for b.Loop() {
			dst = typed.ServeFrame(ctx, dst[:0], addFrame)
		}
		check(b, dst)
	})
	b.Run("typed-named", func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b)()
		b.SetBytes(int64(len(addNamedFrame)))
		dst := make([]byte, 0, 256)
		for b.Loop() {
			dst = typed.ServeFrame(ctx, dst[:0], addNamedFrame)
		}
		check(b, dst)
	})
	b.Run("encoding-json-reflect", func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b)()
		b.SetBytes(int64(len(addFrame)))
		var out []byte
		for b.Loop() {
			var err error
			if out, err = std.serve(addFrame); err != nil {
				b.Fatal(err)
			}
		}
		if !jsonEqual(b, string(out), addReply) {
			b.Fatalf("reply %s", out)
		}
	})
}

// BenchmarkAddParallel is BenchmarkAdd/typed from every P at once: the table is read without
// locks, so it should scale with the cores.
func BenchmarkAddParallel(b *testing.B) {
	_, typed := addDispatchers(b)
	b.ReportAllocs()
	defer reportCPU(b)()
	b.SetBytes(int64(len(addFrame)))
	b.RunParallel(func(pb *testing.PB) {
		dst := make([]byte, 0, 256)
		for pb.Next() {
			dst = typed.ServeFrame(context.Background(), dst[:0], addFrame)
		}
	})
}

// BenchmarkBatch measures batches of typed add requests, by batch length.
func BenchmarkBatch(b *testing.B) {
	_, typed := addDispatchers(b)
	for _, n := range []int{1, 16, 256} {
		frame := []byte{'['}
		for i := 0; i < n; i++ {
			if i > 0 {
				frame = append(frame, ',')
			}
			frame = append(frame, `{"jsonrpc":"2.0","method":"add","params":[`...)
			frame = strconv.AppendInt(frame, int64(i), 10)
			frame = append(frame, `,1],"id":`...)
			frame = strconv.AppendInt(frame, int64(i), 10)
			frame = append(frame, '}')
		}
		frame = append(frame, ']')
		b.Run("size="+strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			defer reportCPU(b)()
			b.SetBytes(int64(len(frame)))
			dst := make([]byte, 0, 64*n)
			for b.Loop() {
				dst = typed.ServeFrame(context.Background(), dst[:0], frame)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/call")
		})
	}
}

// BenchmarkCall measures Call alone (no frame): lookup, params, handler, result.
func BenchmarkCall(b *testing.B) {
	_, typed := addDispatchers(b)
	method, params := []byte("add"), []byte("[5,6]")
	b.ReportAllocs()
	defer reportCPU(b)()
	dst := make([]byte, 0, 64)
	for b.Loop() {
		dst, _ = typed.Call(context.Background(), dst[:0], method, params)
	}
}

// BenchmarkLookup measures the table lookup by raw method bytes.
func BenchmarkLookup(b *testing.B) {
	d := New()
	for i := 0; i < 100; i++ {
		d.MustRegister("method."+strconv.Itoa(i), Pure0(func() int { return 0 }))
	}
	method := []byte("method.42")
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := d.Lookup(method); !ok {
			b.Fatal("missed")
		}
	}
}
