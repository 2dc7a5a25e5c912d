package dispatch_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/dispatch"
)

// Tasks go into the default dispatcher once, from init.
// A Broker or a Node serves dispatch.Default unless it is handed another Dispatcher.
func init() {
	dispatch.MustRegister("add", dispatch.Pure2(func(a, b int) int { return a + b }))
	dispatch.MustRegister("subtract", dispatch.Pure2(func(minuend, subtrahend int) int { return minuend - subtrahend }),
		dispatch.Names("minuend", "subtrahend"))
	if err := dispatch.Register("echo", echo{}); err != nil {
		panic(err)
	}
	if err := dispatch.Register("len", dispatch.HandlerFunc(func(ctx context.Context, dst, params []byte) ([]byte, error) {
		return strconv.AppendInt(dst, int64(len(params)), 10), nil
	})); err != nil {
		panic(err)
	}
}

// echo is a raw Handler: it answers its params as they came.
type echo struct{}

func (echo) ServeRPC(ctx context.Context, dst, params []byte) ([]byte, error) {
	if params == nil {
		return append(dst, "null"...), nil
	}
	return append(dst, params...), nil
}

// add, served by the default dispatcher from a raw JSON-RPC frame.
func Example() {
	frame := []byte(`{"jsonrpc":"2.0","method":"add","params":[5,6],"id":1}`)
	reply := dispatch.Default.ServeFrame(context.Background(), nil, frame)
	fmt.Println(string(reply))
	// Output: {"jsonrpc":"2.0","id":1,"result":11}
}

func ExampleRegister() {
	// "add" was registered by init above; a name is taken once.
	err := dispatch.Register("add", dispatch.Pure2(func(a, b int) int { return a + b }))
	fmt.Println(errors.Is(err, dispatch.ErrDuplicate))

	// A plain function goes through its adapter (Pure2 here: no context, cannot fail); a
	// function of another shape does not compile.
	err = dispatch.Register("mul", dispatch.Pure2(func(a, b int) int { return a * b }))
	fmt.Println(err)
	out, _ := dispatch.Default.Call(context.Background(), nil, []byte("mul"), []byte(`[6, 7]`))
	fmt.Println(string(out))
	// Output:
	// true
	// <nil>
	// 42
}

func ExampleMustRegister() {
	// init above did: dispatch.MustRegister("subtract", dispatch.Pure2(sub), dispatch.Names("minuend", "subtrahend"))
	ctx := context.Background()
	out, _ := dispatch.Default.Call(ctx, nil, []byte("subtract"), []byte(`[42, 23]`))
	fmt.Println(string(out))
	out, _ = dispatch.Default.Call(ctx, nil, []byte("subtract"), []byte(`{"subtrahend": 23, "minuend": 42}`))
	fmt.Println(string(out))
	// Output:
	// 19
	// 19
}

// A raw Handler: any type with a ServeRPC method.
func ExampleRegister_raw() {
	// init above did: dispatch.Register("echo", echo{})
	out, _ := dispatch.Default.Call(context.Background(), nil, []byte("echo"), []byte(`{"k":[1,2]}`))
	fmt.Println(string(out))
	// Output: {"k":[1,2]}
}

func ExampleHandlerFunc() {
	// init above did: dispatch.Register("len", dispatch.HandlerFunc(...))
	out, _ := dispatch.Default.Call(context.Background(), nil, []byte("len"), []byte(`[1,2,3]`))
	fmt.Println(string(out))
	// Output: 7
}

func ExampleNew() {
	d := dispatch.New()
	d.MustRegister("ping", dispatch.Pure0(func() string { return "pong" }))
	out, _ := d.Call(context.Background(), nil, []byte("ping"), nil)
	fmt.Println(string(out), d.Methods())
	// Output: "pong" [ping]
}

type point struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
}

func ExampleDispatcher_Register() {
	d := dispatch.New()
	// The full shape: context first, (R, error) last.
	d.MustRegister("div", dispatch.Func2(func(ctx context.Context, a, b float64) (float64, error) {
		if b == 0 {
			return 0, dispatch.Errorf(1001, map[string]float64{"a": a}, "division by zero")
		}
		return a / b, nil
	}), dispatch.Names("a", "b"))
	// One struct parameter: a params object decodes into it by its json tags.
	d.MustRegister("norm", dispatch.Pure1(func(p point) float64 { return p.X*p.X + p.Y*p.Y }))

	ctx := context.Background()
	for _, c := range []struct{ method, params string }{
		{"div", `[1, 4]`},
		{"div", `{"a": 1, "b": 0}`},
		{"div", `[1, "x"]`},
		{"norm", `{"x": 3, "y": 4}`},
	} {
		out, err := d.Call(ctx, nil, []byte(c.method), []byte(c.params))
		if err != nil {
			e := codec.AsError(err)
			fmt.Printf("%s %s -> error %d %q data=%s\n", c.method, c.params, e.Code, e.Message, e.Data)
			continue
		}
		fmt.Printf("%s %s -> %s\n", c.method, c.params, out)
	}
	// Output:
	// div [1, 4] -> 0.25
	// div {"a": 1, "b": 0} -> error 1001 "division by zero" data={"a":1}
	// div [1, "x"] -> error -32602 "param 2 (b): expected float64, got string" data=
	// norm {"x": 3, "y": 4} -> 25
}

func ExampleDispatcher_Register_raw() {
	d := dispatch.New()
	// A raw handler gets the params as raw JSON and appends its result as raw JSON: no
	// decoding at all, for handlers that forward or store their params as they are.
	if err := d.Register("echo", echo{}); err != nil {
		fmt.Println(err)
	}
	out, _ := d.Call(context.Background(), nil, []byte("echo"), []byte(`["as", "is"]`))
	fmt.Println(string(out))
	// Output: ["as", "is"]
}

func ExampleDispatcher_Register_handlerFunc() {
	d := dispatch.New()
	err := d.Register("now", dispatch.HandlerFunc(func(ctx context.Context, dst, params []byte) ([]byte, error) {
		return strconv.AppendInt(dst, 1700000000, 10), nil
	}))

	fmt.Println(err)
	err = d.Register("rpc.discover", dispatch.HandlerFunc(func(ctx context.Context, dst, params []byte) ([]byte, error) { return dst, nil }))
	fmt.Println(err)
	// Output:
	// <nil>
	// dispatch: register "rpc.discover": dispatch: method names starting with "rpc." are reserved
}

// metrics counts calls and errors per method. Its middleware looks the counters up once per
// method, when the table is built, so that a call only does atomic adds.
type metrics struct {
	mu      sync.Mutex
	methods map[string]*methodStats
}

type methodStats struct {
	calls, errors atomic.Int64
	nanos         atomic.Int64
}

func (m *metrics) middleware(name string, next dispatch.Handler) dispatch.Handler {
	m.mu.Lock()
	s := m.methods[name]
	if s == nil {
		s = &methodStats{}
		m.methods[name] = s
	}
	m.mu.Unlock()
	return dispatch.HandlerFunc(func(ctx context.Context, dst, params []byte) ([]byte, error) {
		start := time.Now()
		out, err := next.ServeRPC(ctx, dst, params)
		s.nanos.Add(int64(time.Since(start)))
		s.calls.Add(1)
		if err != nil {
			s.errors.Add(1)
		}
		return out, err
	})
}

// logging logs every call that fails.
func logging(log *slog.Logger) dispatch.Middleware {
	return func(name string, next dispatch.Handler) dispatch.Handler {
		log := log.With("method", name) // built once per method
		return dispatch.HandlerFunc(func(ctx context.Context, dst, params []byte) ([]byte, error) {
			out, err := next.ServeRPC(ctx, dst, params)
			if err != nil {
				log.Warn("call failed", "err", codec.AsError(err).Message)
			}
			return out, err
		})
	}
}

func ExampleDispatcher_Use() {
	// A logger without timestamps, so that the output is stable.
	log := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	m := &metrics{methods: map[string]*methodStats{}}

	d := dispatch.New()
	d.Use(logging(log)) // outermost
	d.MustRegister("add", dispatch.Pure2(func(a, b int) int { return a + b }))
	d.Use(m.middleware) // added after registration: it wraps "add" too

	ctx := context.Background()
	for _, params := range []string{`[1,2]`, `[3,4]`, `[5]`} {
		_, _ = d.Call(ctx, nil, []byte("add"), []byte(params))
	}
	names := make([]string, 0, len(m.methods))
	for name := range m.methods {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		s := m.methods[name]
		fmt.Printf("%s: %d calls, %d errors\n", name, s.calls.Load(), s.errors.Load())
	}
	// Output:
	// level=WARN msg="call failed" method=add err="expected 2 params, got 1"
	// add: 3 calls, 1 errors
}

func ExampleDispatcher_Call() {
	d := dispatch.New()
	d.MustRegister("upper", dispatch.Pure1(strings.ToUpper))
	d.MustRegister("crash", dispatch.Pure1(func(s string) int { panic("out of cheese") }))
	d.SetLogger(slog.New(slog.NewTextHandler(discard{}, nil))) // the panic's stack goes here

	ctx := context.Background()
	dst := make([]byte, 0, 64) // reused across calls: no allocation in steady state
	for _, method := range []string{"upper", "crash", "missing"} {
		out, err := d.Call(ctx, dst[:0], []byte(method), []byte(`["hi"]`))
		if err != nil {
			var e *codec.Error
			errors.As(err, &e)
			fmt.Println(method, e.Code, e.Message)
			continue
		}
		fmt.Println(method, string(out))
	}
	// Output:
	// upper "HI"
	// crash -32603 internal error: out of cheese
	// missing -32601 Method not found
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func ExampleDispatcher_ServeFrame() {
	d := dispatch.New()
	d.MustRegister("sum", dispatch.Pure1(func(xs []int) int {
		s := 0
		for _, x := range xs {
			s += x
		}
		return s
	}))
	d.MustRegister("notify_hello", dispatch.Proc1(func(ctx context.Context, n int) error { return nil }))

	ctx := context.Background()
	for _, frame := range []string{
		`{"jsonrpc":"2.0","method":"sum","params":[[1,2,4]],"id":"1"}`,
		`{"jsonrpc":"2.0","method":"notify_hello","params":[7]}`,
		`[{"jsonrpc":"2.0","method":"sum","params":[[1]],"id":1},{"foo":"boo"},{"jsonrpc":"2.0","method":"notify_hello","params":[7]}]`,
		`{"jsonrpc":"2.0","method":"sum","params":[[1]],"id":1`,
	} {
		reply := d.ServeFrame(ctx, nil, []byte(frame))
		fmt.Printf("%q\n", reply)
	}
	// Output:
	// "{\"jsonrpc\":\"2.0\",\"id\":\"1\",\"result\":7}"
	// ""
	// "[{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1},{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32600,\"message\":\"Invalid Request\"}}]"
	// "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,\"message\":\"Parse error\"}}"
}

func ExampleDispatcher_SetLimits() {
	d := dispatch.New()
	d.MustRegister("add", dispatch.Pure2(func(a, b int) int { return a + b }))
	d.SetLimits(codec.Limits{MaxBatch: 2})
	req := `{"jsonrpc":"2.0","method":"add","params":[1,1],"id":1}`
	fmt.Println(string(d.ServeFrame(context.Background(), nil, []byte("["+req+","+req+","+req+"]"))))
	// Output: {"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid Request: batch too large"}}
}

func ExampleDispatcher_Lookup() {
	d := dispatch.New()
	d.MustRegister("add", dispatch.Pure2(func(a, b int) int { return a + b }))
	h, ok := d.Lookup([]byte("add")) // no allocation
	out, err := h.ServeRPC(context.Background(), nil, []byte("[2,3]"))
	fmt.Println(ok, string(out), err)
	_, ok = d.Lookup([]byte("nope"))
	fmt.Println(ok)
	// Output:
	// true 5 <nil>
	// false
}

func ExampleNames() {
	d := dispatch.New()
	d.MustRegister("greet", dispatch.Pure2(func(greeting, name string) string { return greeting + ", " + name }),
		dispatch.Names("greeting", "name"))
	ctx := context.Background()
	for _, params := range []string{`["hello", "world"]`, `{"name": "you", "greeting": "hi"}`, `{"greeting": "hi"}`} {
		out, err := d.Call(ctx, nil, []byte("greet"), []byte(params))
		if err != nil {
			fmt.Println(codec.AsError(err).Message)
			continue
		}
		fmt.Println(string(out))
	}
	// Output:
	// "hello, world"
	// "hi, you"
	// missing param 2 (name)
}

func ExampleErrorf() {
	d := dispatch.New()
	d.MustRegister("withdraw", dispatch.Proc1(func(ctx context.Context, amount int) error {
		if amount > 100 {
			return dispatch.Errorf(402, map[string]int{"balance": 100}, "insufficient funds: %d > %d", amount, 100)
		}
		return nil
	}))
	d.MustRegister("fails", dispatch.Try0(func() (int, error) { return 0, errors.New("disk full") }))

	frames := []string{
		`{"jsonrpc":"2.0","method":"withdraw","params":[500],"id":1}`,
		`{"jsonrpc":"2.0","method":"fails","id":2}`,
	}
	for _, f := range frames {
		fmt.Println(string(d.ServeFrame(context.Background(), nil, []byte(f))))
	}
	// Output:
	// {"jsonrpc":"2.0","id":1,"error":{"code":402,"message":"insufficient funds: 500 > 100","data":{"balance":100}}}
	// {"jsonrpc":"2.0","id":2,"error":{"code":-32000,"message":"disk full"}}
}

func ExampleFunc1() {
	type key struct{}
	d := dispatch.New()
	d.MustRegister("whoami", dispatch.Func1(func(ctx context.Context, prefix string) (string, error) {
		user, _ := ctx.Value(key{}).(string)
		return prefix + user, nil
	}))
	ctx := context.WithValue(context.Background(), key{}, "alice")
	out, _ := d.Call(ctx, nil, []byte("whoami"), []byte(`["user: "]`))
	fmt.Println(string(out))
	// Output: "user: alice"
}

func ExampleTry1() {
	d := dispatch.New()
	d.MustRegister("atoi", dispatch.Try1(strconv.Atoi))
	out, err := d.Call(context.Background(), nil, []byte("atoi"), []byte(`["42"]`))
	fmt.Println(string(out), err)
	_, err = d.Call(context.Background(), nil, []byte("atoi"), []byte(`["x"]`))
	fmt.Println(codec.AsError(err).Code)
	// Output:
	// 42 <nil>
	// -32000
}

func ExamplePure2() {
	d := dispatch.New()
	d.MustRegister("add", dispatch.Pure2(func(a, b int) int { return a + b }))
	out, _ := d.Call(context.Background(), nil, []byte("add"), []byte(`[5, 6]`))
	fmt.Println(string(out))
	// Output: 11
}

func ExampleProc1() {
	d := dispatch.New()
	var got atomic.Int64
	d.MustRegister("record", dispatch.Proc1(func(ctx context.Context, v int64) error {
		got.Store(v)
		return nil
	}))
	// As a notification: it runs, and nothing is answered.
	reply := d.ServeFrame(context.Background(), nil, []byte(`{"jsonrpc":"2.0","method":"record","params":[7]}`))
	fmt.Printf("%q %d\n", reply, got.Load())
	// As a request: the result is null.
	reply = d.ServeFrame(context.Background(), nil, []byte(`{"jsonrpc":"2.0","method":"record","params":[8],"id":1}`))
	fmt.Printf("%s %d\n", reply, got.Load())
	// Output:
	// "" 7
	// {"jsonrpc":"2.0","id":1,"result":null} 8
}

// A handler marks a failure worth another attempt with Retry (or RetryAfter, to choose the
// delay), and a failure no attempt can fix with ErrSkipRetry. The node that runs it tells the
// broker, which runs the task again, after a backoff, while it has attempts left.
func ExampleRetry() {
	errUnavailable := errors.New("upstream unavailable")
	fetch := func(ctx context.Context, url string) (string, error) {
		switch {
		case url == "":
			return "", fmt.Errorf("empty url: %w", dispatch.ErrSkipRetry)
		case strings.HasPrefix(url, "busy:"):
			return "", dispatch.RetryAfter(errUnavailable, 2*time.Second)
		}
		return "", dispatch.Retry(errUnavailable)
	}
	d := dispatch.New()
	d.MustRegister("fetch", dispatch.Func1(fetch))
	for _, url := range []string{"https://example.com", "busy:x", ""} {
		_, err := d.Call(context.Background(), nil, []byte("fetch"), []byte("["+strconv.Quote(url)+"]"))
		after, retry := dispatch.Retryable(err)
		fmt.Printf("%q: retry %v after %v (%v)\n", url, retry, after, errors.Is(err, errUnavailable))
	}
	// Output:
	// "https://example.com": retry true after 0s (true)
	// "busy:x": retry true after 2s (true)
	// "": retry false after 0s (false)
}

// RetryOnError and TimeLimit are registration options: the node that runs the method treats
// every error as retryable (except ErrSkipRetry and invalid params) and cancels a run that takes
// longer than the limit.
func ExampleRetryOnError() {
	d := dispatch.New()
	d.MustRegister("resize", dispatch.Func1(func(ctx context.Context, px int) (int, error) {
		if px <= 0 {
			return 0, fmt.Errorf("size %d: %w", px, dispatch.ErrSkipRetry)
		}
		return 0, errors.New("disk full")
	}), dispatch.RetryOnError(), dispatch.TimeLimit(30*time.Second))
	pol := d.Policy([]byte("resize"))
	fmt.Println("time limit:", pol.TimeLimit)
	for _, params := range []string{"[100]", "[0]", `["x"]`} {
		_, err := d.Call(context.Background(), nil, []byte("resize"), []byte(params))
		_, retry := pol.Retryable(err)
		fmt.Printf("%s: %v, retry %v\n", params, err, retry)
	}
	// Output:
	// time limit: 30s
	// [100]: disk full, retry true
	// [0]: size 0: dispatch: skip retry, retry false
	// ["x"]: jsonrpc: param 1: expected int, got string (code -32602), retry false
}

// TimeLimit bounds each run of a method on the node; Policy reads it back.
func ExampleTimeLimit() {
	d := dispatch.New()
	d.MustRegister("report", dispatch.Func0(func(ctx context.Context) (string, error) { return "ok", nil }),
		dispatch.TimeLimit(time.Minute))
	fmt.Println(d.Policy([]byte("report")).TimeLimit, d.Policy([]byte("unknown")).TimeLimit)
	// Output: 1m0s 0s
}

// RetryAfter lets the handler choose the delay before the next attempt.
func ExampleRetryAfter() {
	err := dispatch.RetryAfter(errors.New("rate limited"), 5*time.Second)
	after, ok := dispatch.Retryable(err)
	fmt.Println(err, after, ok)
	// Output: rate limited 5s true
}

// Retryable tells a retryable error from a final one.
func ExampleRetryable() {
	for _, err := range []error{
		dispatch.Retry(errors.New("timeout")),
		dispatch.Retry(fmt.Errorf("no such user: %w", dispatch.ErrSkipRetry)),
		errors.New("plain"),
	} {
		_, ok := dispatch.Retryable(err)
		fmt.Println(ok)
	}
	// Output:
	// true
	// false
	// false
}

// Policy returns what a method was registered with.
func ExampleDispatcher_Policy() {
	d := dispatch.New()
	d.MustRegister("sync", dispatch.Proc0(func(context.Context) error { return nil }), dispatch.RetryOnError())
	fmt.Printf("%+v\n", d.Policy([]byte("sync")))
	// Output: {TimeLimit:0s RetryOnError:true}
}

// A handler reads its task from its context: the task's id (the same for every attempt of a
// submitted task: a key for the handler's own idempotency), attempt, queue and deadline. A
// node provides it; WithTaskInfo does for a test.
func ExampleTaskInfoFrom() {
	d := dispatch.New()
	d.MustRegister("charge", dispatch.Func1(func(ctx context.Context, order string) (string, error) {
		info, ok := dispatch.TaskInfoFrom(ctx)
		if !ok {
			return "", errors.New("not run as a task")
		}
		return fmt.Sprintf("charge %s once, as %s (attempt %d, queue %s)", order, info.ID, info.Attempt, info.Queue), nil
	}))
	ctx := dispatch.WithTaskInfo(context.Background(), dispatch.TaskInfo{ID: "5f0c2a91-17", Attempt: 2, Queue: "payments"})
	out, err := d.Call(ctx, nil, []byte("charge"), []byte(`["order-9"]`))
	fmt.Println(string(out), err)
	_, err = d.Call(context.Background(), nil, []byte("charge"), []byte(`["order-9"]`))
	fmt.Println(err)
	// Output:
	// "charge order-9 once, as 5f0c2a91-17 (attempt 2, queue payments)" <nil>
	// not run as a task
}
