package dispatch

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/zerotask/zerotask/codec"
)

// specDispatcher registers the methods of the examples in section 7 of the JSON-RPC 2.0
// specification. notes records the notifications it received.
func specDispatcher(t testing.TB, notes *noteLog) *Dispatcher {
	d := New()
	d.SetLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(d.Register("subtract", Pure2(func(minuend, subtrahend int) int { return minuend - subtrahend }),
		Names("minuend", "subtrahend")))
	// sum and update take any number of params: raw handlers.
	sum := func(ctx context.Context, dst, params []byte) ([]byte, error) {
		var xs []int
		if err := codec.Unmarshal(params, &xs); err != nil {
			return dst, Errorf(codec.CodeInvalidParams, nil, "sum wants numbers")
		}
		s := 0
		for _, x := range xs {
			s += x
		}
		return appendResult(dst, kindInt, s)
	}
	must(d.Register("sum", HandlerFunc(sum)))
	must(d.Register("notify_sum", HandlerFunc(func(ctx context.Context, dst, params []byte) ([]byte, error) {
		notes.add("notify_sum" + string(params))
		return sum(ctx, dst, params)
	})))
	must(d.Register("update", HandlerFunc(func(ctx context.Context, dst, params []byte) ([]byte, error) {
		notes.add("update" + string(params))
		return dst, nil
	})))
	must(d.Register("notify_hello", Proc1(func(ctx context.Context, n int) error {
		notes.add("notify_hello" + string(rune('0'+n)))
		return nil
	})))
	must(d.Register("get_data", Pure0(func() []any { return []any{"hello", 5} })))
	must(d.Register("fail", Proc0(func(ctx context.Context) error {
		return Errorf(-32050, map[string]string{"why": "because"}, "it failed")
	})))
	must(d.Register("boom", Pure0(func() int { panic("kaboom") })))
	return d
}

type noteLog struct {
	mu    sync.Mutex
	notes []string
}

func (n *noteLog) add(s string) {
	n.mu.Lock()
	n.notes = append(n.notes, s)
	n.mu.Unlock()
}

func (n *noteLog) take() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := n.notes
	n.notes = nil
	return out
}

// jsonEqual compares two JSON texts as values (member order does not matter).
func jsonEqual(t testing.TB, got, want string) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("reply is not JSON: %v: %s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad expectation %s: %v", want, err)
	}
	return reflect.DeepEqual(g, w)
}

// TestServeFrameSpec runs the examples of section 7 of the specification through a real
// dispatcher. Batch replies come in request order, which the specification allows.
func TestServeFrameSpec(t *testing.T) {
	notes := &noteLog{}
	d := specDispatcher(t, notes)
	tests := []struct {
		name, frame, want string // want "" means no reply at all
		notes             []string
	}{
		{"positional 1", `{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}`,
			`{"jsonrpc": "2.0", "result": 19, "id": 1}`, nil},
		{"positional 2", `{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}`,
			`{"jsonrpc": "2.0", "result": -19, "id": 2}`, nil},
		{"named 1", `{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}`,
			`{"jsonrpc": "2.0", "result": 19, "id": 3}`, nil},
		{"named 2", `{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 42, "subtrahend": 23}, "id": 4}`,
			`{"jsonrpc": "2.0", "result": 19, "id": 4}`, nil},
		{"notification update", `{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}`, "",
			[]string{"update[1,2,3,4,5]"}},
		{"notification foobar", `{"jsonrpc": "2.0", "method": "foobar"}`, "", nil},
		{"non-existent method", `{"jsonrpc": "2.0", "method": "foobar", "id": "1"}`,
			`{"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "1"}`, nil},
		{"invalid JSON", `{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]`,
			`{"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null}`, nil},
		{"invalid request object", `{"jsonrpc": "2.0", "method": 1, "params": "bar"}`,
			`{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}`, nil},
		{"batch invalid JSON", `[
  {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
  {"jsonrpc": "2.0", "method"
]`, `{"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null}`, nil},
		{"empty array", `[]`,
			`{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}`, nil},
		{"invalid batch but not empty", `[1]`,
			`[{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}]`, nil},
		{"invalid batch", `[1,2,3]`, `[
  {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null},
  {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null},
  {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}
]`, nil},
		{"batch", `[
  {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
  {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
  {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
  {"foo": "boo"},
  {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
  {"jsonrpc": "2.0", "method": "get_data", "id": "9"}
]`, `[
  {"jsonrpc": "2.0", "result": 7, "id": "1"},
  {"jsonrpc": "2.0", "result": 19, "id": "2"},
  {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null},
  {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "5"},
  {"jsonrpc": "2.0", "result": ["hello", 5], "id": "9"}
]`, []string{"notify_hello7"}},
		{"batch all notifications", `[
  {"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},
  {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}
]`, "", []string{"notify_sum[1,2,4]", "notify_hello7"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("prefix")
			out := d.ServeFrame(context.Background(), prefix, []byte(tt.frame))
			if !bytes.HasPrefix(out, []byte("prefix")) {
				t.Fatalf("dst clobbered: %q", out)
			}
			got := string(out[len(prefix):])
			if tt.want == "" {
				if got != "" {
					t.Fatalf("want no reply, got %s", got)
				}
			} else if !jsonEqual(t, got, tt.want) {
				t.Fatalf("reply\n got %s\nwant %s", got, tt.want)
			}
			if n := notes.take(); !reflect.DeepEqual(n, tt.notes) {
				t.Fatalf("notifications run: %q, want %q", n, tt.notes)
			}
		})
	}
}

func TestServeFrameMore(t *testing.T) {
	notes := &noteLog{}
	d := specDispatcher(t, notes)
	long := strings.Repeat("x", 300)
	if err := d.Register(long, Pure0(func() string { return "long" })); err != nil {
		t.Fatal(err)
	}
	escapedLong := strings.Repeat(`\u0078`, 300) // long, escaped: does not fit the scratch buffer
	tests := []struct {
		name, frame, want string
	}{
		{"escaped method", `{"jsonrpc":"2.0","method":"sub\u0074ract","params":[3,1],"id":1}`,
			`{"jsonrpc":"2.0","result":2,"id":1}`},
		{"long escaped method", `{"jsonrpc":"2.0","method":"` + escapedLong + `","id":1}`,
			`{"jsonrpc":"2.0","result":"long","id":1}`},
		{"id null", `{"jsonrpc":"2.0","method":"subtract","params":[3,1],"id":null}`,
			`{"jsonrpc":"2.0","result":2,"id":null}`},
		{"id kept raw", `{"jsonrpc":"2.0","method":"subtract","params":[3,1],"id":1.50e1}`,
			`{"jsonrpc":"2.0","result":2,"id":15}`},
		{"invalid params", `{"jsonrpc":"2.0","method":"subtract","params":[3,"x"],"id":7}`,
			`{"jsonrpc":"2.0","error":{"code":-32602,"message":"param 2 (subtrahend): expected int, got string"},"id":7}`},
		{"missing named param", `{"jsonrpc":"2.0","method":"subtract","params":{"minuend":3},"id":7}`,
			`{"jsonrpc":"2.0","error":{"code":-32602,"message":"missing param 2 (subtrahend)"},"id":7}`},
		{"handler error with data", `{"jsonrpc":"2.0","method":"fail","id":"f"}`,
			`{"jsonrpc":"2.0","error":{"code":-32050,"message":"it failed","data":{"why":"because"}},"id":"f"}`},
		{"panic", `{"jsonrpc":"2.0","method":"boom","id":2}`,
			`{"jsonrpc":"2.0","error":{"code":-32603,"message":"internal error: kaboom"},"id":2}`},
		{"reserved method", `{"jsonrpc":"2.0","method":"rpc.discover","id":3}`,
			`{"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found"},"id":3}`},
		{"failing notification", `{"jsonrpc":"2.0","method":"boom"}`, ``},
		{"bad params notification", `{"jsonrpc":"2.0","method":"subtract","params":[1]}`, ``},
		{"response object", `{"jsonrpc":"2.0","result":1,"id":1}`, ``},
		{"error response object", `{"jsonrpc":"2.0","error":{"code":1,"message":"x"},"id":1}`, ``},
		{"batch of responses", `[{"jsonrpc":"2.0","result":1,"id":1}]`, ``},
		{"batch mixed", `[{"jsonrpc":"2.0","method":"boom","id":1},{"jsonrpc":"2.0","result":1,"id":1},{"jsonrpc":"2.0","method":"subtract","params":[5,2],"id":2}]`,
			`[{"jsonrpc":"2.0","error":{"code":-32603,"message":"internal error: kaboom"},"id":1},{"jsonrpc":"2.0","result":3,"id":2}]`},
		{"params not structured", `{"jsonrpc":"2.0","method":"subtract","params":5,"id":1}`,
			`{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":null}`},
		{"whitespace only", ` `, `{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null}`},
		{"scalar", `5`, `{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":null}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(d.ServeFrame(context.Background(), nil, []byte(tt.frame)))
			if tt.want == "" {
				if got != "" {
					t.Fatalf("want no reply, got %s", got)
				}
				return
			}
			if !jsonEqual(t, got, tt.want) {
				t.Fatalf("reply\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

// TestServeFrameFormat holds the in-place response writing to codec's own encoding.
func TestServeFrameFormat(t *testing.T) {
	d := specDispatcher(t, &noteLog{})
	for _, id := range []string{`1`, `"abc"`, `null`, `-1.5e3`} {
		frame := `{"jsonrpc":"2.0","method":"subtract","params":[5,3],"id":` + id + `}`
		got := d.ServeFrame(context.Background(), nil, []byte(frame))
		want := codec.AppendResult(nil, []byte(id), []byte("2"))
		if !bytes.Equal(got, want) {
			t.Fatalf("id %s: got %s, want %s", id, got, want)
		}
	}
}

// TestServeFrameLimits checks each limit at its bound and one past it.
func TestServeFrameLimits(t *testing.T) {
	d := specDispatcher(t, &noteLog{})
	ctx := context.Background()
	req := `{"jsonrpc":"2.0","method":"subtract","params":[2,1],"id":1}`

	if got := d.Limits(); got != (codec.Limits{}) {
		t.Fatalf("default Limits() = %+v", got)
	}
	// MaxFrame
	d.SetLimits(codec.Limits{MaxFrame: len(req)})
	if got := string(d.ServeFrame(ctx, nil, []byte(req))); !jsonEqual(t, got, `{"jsonrpc":"2.0","result":1,"id":1}`) {
		t.Fatalf("frame at the bound: %s", got)
	}
	got := string(d.ServeFrame(ctx, nil, []byte(req+" ")))
	if !jsonEqual(t, got, `{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request: frame too large"},"id":null}`) {
		t.Fatalf("frame past the bound: %s", got)
	}
	// MaxBatch
	d.SetLimits(codec.Limits{MaxBatch: 2})
	if got := string(d.ServeFrame(ctx, nil, []byte("["+req+","+req+"]"))); strings.Count(got, `"result":1`) != 2 {
		t.Fatalf("batch at the bound: %s", got)
	}
	got = string(d.ServeFrame(ctx, nil, []byte("["+req+","+req+","+req+"]")))
	if !jsonEqual(t, got, `{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request: batch too large"},"id":null}`) {
		t.Fatalf("batch past the bound: %s", got)
	}
	// MaxDepth: the request object is depth 1, its params array 2, [[1]] 3.
	d.SetLimits(codec.Limits{MaxDepth: 3})
	if err := d.Register("depth", Pure1(func(v []int) int { return len(v) })); err != nil {
		t.Fatal(err)
	}
	deep := func(params string) string {
		return `{"jsonrpc":"2.0","method":"depth","params":` + params + `,"id":1}`
	}
	if got := string(d.ServeFrame(ctx, nil, []byte(deep(`[[1]]`)))); !jsonEqual(t, got, `{"jsonrpc":"2.0","result":1,"id":1}`) {
		t.Fatalf("depth at the bound: %s", got)
	}
	got = string(d.ServeFrame(ctx, nil, []byte(deep(`[[[1]]]`))))
	if !jsonEqual(t, got, `{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request: nesting too deep"},"id":null}`) {
		t.Fatalf("depth past the bound: %s", got)
	}
	if d.Limits().MaxDepth != 3 {
		t.Fatalf("Limits() = %+v", d.Limits())
	}
}

// FuzzServeFrame: any frame gives no panic and either no reply or a valid JSON-RPC reply (one
// response object, or a non-empty array of them), each with exactly one of result and error.
func FuzzServeFrame(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","method":"subtract","params":[42,23],"id":1}`,
		`{"jsonrpc":"2.0","method":"subtract","params":{"subtrahend":23,"minuend":42},"id":3}`,
		`{"jsonrpc":"2.0","method":"update","params":[1,2,3,4,5]}`,
		`{"jsonrpc":"2.0","method":"foobar","id":"1"}`,
		`{"jsonrpc":"2.0","method":"foobar, "params":"bar","baz]`,
		`[]`, `[1,2,3]`, `[{"jsonrpc":"2.0","method":"sum","params":[1,2,4],"id":"1"},{"foo":"boo"}]`,
		`{"jsonrpc":"2.0","method":"get_data","id":"9"}`,
		`{"jsonrpc":"2.0","method":"boom","id":2}`,
		`{"jsonrpc":"2.0","method":"fail","id":null}`,
		`{"jsonrpc":"2.0","method":"sub\u0074ract","params":[1,2],"id":1}`,
		`{"jsonrpc":"2.0","result":1,"id":1}`,
	} {
		f.Add([]byte(s))
	}
	d := specDispatcher(f, &noteLog{})
	f.Fuzz(func(t *testing.T, frame []byte) {
		out := d.ServeFrame(context.Background(), nil, frame)
		if len(out) == 0 {
			return
		}
		var v any
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatalf("frame %q: reply is not JSON: %v: %s", frame, err, out)
		}
		var replies []any
		switch r := v.(type) {
		case map[string]any:
			replies = []any{r}
		case []any:
			if len(r) == 0 {
				t.Fatalf("frame %q: empty batch reply", frame)
			}
			replies = r
		default:
			t.Fatalf("frame %q: reply %s", frame, out)
		}
		for _, r := range replies {
			m, ok := r.(map[string]any)
			if !ok || m["jsonrpc"] != "2.0" {
				t.Fatalf("frame %q: bad response %s", frame, out)
			}
			_, hasID := m["id"]
			_, hasResult := m["result"]
			e, hasError := m["error"]
			if !hasID || hasResult == hasError {
				t.Fatalf("frame %q: bad response %s", frame, out)
			}
			if hasError {
				em, ok := e.(map[string]any)
				if _, isNum := em["code"].(float64); !ok || !isNum {
					t.Fatalf("frame %q: bad error object %s", frame, out)
				}
				if _, isStr := em["message"].(string); !isStr {
					t.Fatalf("frame %q: bad error object %s", frame, out)
				}
			}
		}
	})
}
