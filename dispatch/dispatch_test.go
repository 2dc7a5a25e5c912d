package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/internal/testutil"
)

func rawAdd(ctx context.Context, dst, params []byte) ([]byte, error) {
	var a, b int
	it := elemIter(params, 1)
	for n := 0; it.next(); n++ {
		v, ok := parseInt(it.val, 64)
		if !ok {
			return dst, invalidParams("not an int")
		}
		if n == 0 {
			a = int(v)
		} else {
			b = int(v)
		}
	}
	return strconv.AppendInt(dst, int64(a+b), 10), nil
}

type handlerStruct struct{}

func (handlerStruct) ServeRPC(ctx context.Context, dst, params []byte) ([]byte, error) {
	return append(dst, `"struct"`...), nil
}

func TestRegisterAccepts(t *testing.T) {
	d := New()
	accepted := map[string]Handler{
		"handler":     handlerStruct{},
		"handlerfunc": HandlerFunc(rawAdd),
		"Func0":       Func0(func(context.Context) (int, error) { return 0, nil }),
		"Proc0":       Proc0(func(context.Context) error { return nil }),
		"Try2":        Try2(func(a, b int) (int, error) { return a + b, nil }),
		"Pure4":       Pure4(func(a, b, c, d int) int { return a + b + c + d }),
		"Proc3":       Proc3(func(ctx context.Context, a, b, c string) error { return nil }),
	}
	for name, h := range accepted {
		if err := d.Register(name, h); err != nil {
			t.Errorf("Register(%s): %v", name, err)
		}
	}
	want := []string{"Func0", "Proc0", "Proc3", "Pure4", "Try2", "handler", "handlerfunc"}
	if got := d.Methods(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Methods() = %v, want %v", got, want)
	}
	if got, err := call(t, d, "Proc0", ""); err != nil || got != "null" {
		t.Errorf("Proc0: %s %v", got, err)
	}
	if got, err := call(t, d, "handlerfunc", "[2,3]"); err != nil || got != "5" {
		t.Errorf("handlerfunc: %s %v", got, err)
	}
	if got, err := call(t, d, "handler", ""); err != nil || got != `"struct"` {
		t.Errorf("handler: %s %v", got, err)
	}
}

func TestRegisterErrors(t *testing.T) {
	d := New()
	d.MustRegister("taken", Pure0(func() int { return 1 }))
	var nilHandlerFunc HandlerFunc
	var nilPure func(a, b int) int
	var nilCtxErr func(context.Context) error
	tests := []struct {
		name   string
		method string
		h      Handler
		opts   []Option
		is     error
		substr string
	}{
		{"empty name", "", Pure0(func() int { return 1 }), nil, ErrEmptyName, ""},
		{"reserved name", "rpc.discover", Pure0(func() int { return 1 }), nil, ErrReservedName, "rpc.discover"},
		{"reserved name exact prefix", "rpc.", Pure0(func() int { return 1 }), nil, ErrReservedName, ""},
		{"duplicate", "taken", Pure0(func() int { return 2 }), nil, ErrDuplicate, `"taken"`},
		{"nil", "m", nil, nil, ErrNilHandler, ""},
		{"nil HandlerFunc", "m", nilHandlerFunc, nil, ErrNilHandler, ""},
		{"nil adapted func", "m", Pure2(nilPure), nil, ErrNilHandler, ""},
		{"nil Proc0 func", "m", Proc0(nilCtxErr), nil, ErrNilHandler, ""},
		{"ctx as typed param", "m", Pure1(func(ctx context.Context) int { return 0 }), nil, ErrUnsupported, "context.Context"},
		{"chan param", "m", Pure1(func(c chan int) int { return 0 }), nil, ErrUnsupported, "chan int"},
		{"func result", "m", Pure0(func() func() { return nil }), nil, ErrUnsupported, "result type"},
		{"names count", "m", Pure2(func(a, b int) int { return 0 }), []Option{Names("a")}, ErrBadOption, "1 names for a function of 2 params"},
		{"names empty", "m", Pure2(func(a, b int) int { return 0 }), []Option{Names("a", "")}, ErrBadOption, "name 2 is empty"},
		{"names repeated", "m", Pure2(func(a, b int) int { return 0 }), []Option{Names("a", "a")}, ErrBadOption, `"a" given twice`},
		{"names on raw", "m", HandlerFunc(rawAdd), []Option{Names("a", "b")}, ErrBadOption, "typed adapters only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := d.Register(tt.method, tt.h, tt.opts...)
			if !errors.Is(err, tt.is) {
				t.Fatalf("Register: got %v, want %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.substr) {
				t.Fatalf("Register: %q does not say %q", err, tt.substr)
			}
		})
	}
	// A nil Handler, whatever its dynamic type.
	if err := d.Register("x", nil); !errors.Is(err, ErrNilHandler) {
		t.Errorf("Register(nil): %v", err)
	}
	if err := d.Register("x", HandlerFunc(nil)); !errors.Is(err, ErrNilHandler) {
		t.Errorf("Register(HandlerFunc(nil)): %v", err)
	}
	if err := d.Register("x", nilHandlerFunc); !errors.Is(err, ErrNilHandler) {
		t.Errorf("Register(nil HandlerFunc): %v", err)
	}
	if err := d.Register("x", Pure2(nilPure)); !errors.Is(err, ErrNilHandler) {
		t.Errorf("Register(Pure2(nil)): %v", err)
	}
	if err := d.Register("rpc.x", HandlerFunc(rawAdd)); !errors.Is(err, ErrReservedName) {
		t.Errorf("Register(rpc.x): %v", err)
	}
	// Nothing but "taken" got in.
	if got := d.Methods(); len(got) != 1 || got[0] != "taken" {
		t.Fatalf("Methods() = %v", got)
	}
	// MustRegister panics with the same error.
	func() {
		defer func() {
			if r := recover(); r == nil || !errors.Is(r.(error), ErrDuplicate) {
				t.Fatalf("MustRegister(dup) recovered %v", r)
			}
		}()
		d.MustRegister("taken", Pure0(func() int { return 1 }))
	}()
}

func TestZeroDispatcher(t *testing.T) {
	var d Dispatcher
	if _, ok := d.Lookup([]byte("x")); ok {
		t.Fatal("Lookup on empty dispatcher found something")
	}
	if got := d.Methods(); len(got) != 0 {
		t.Fatalf("Methods() = %v", got)
	}
	_, err := d.Call(context.Background(), nil, []byte("x"), nil)
	if err != codec.ErrMethodNotFound {
		t.Fatalf("Call unknown: %v", err)
	}
	d.Use(func(name string, next Handler) Handler { return next })
	if err := d.Register("x", HandlerFunc(rawAdd)); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Lookup([]byte("x")); !ok {
		t.Fatal("Lookup missed x")
	}
}

func TestCallUnknownMethod(t *testing.T) {
	d := typedDispatcher(t, &procRecorder{})
	for _, m := range []string{"", "nope", "ADD", "add ", "rpc.add"} {
		_, err := call(t, d, m, "[1,2]")
		if err == nil || err.Code != codec.CodeMethodNotFound {
			t.Errorf("Call(%q): %v, want -32601", m, err)
		}
	}
}

// badError panics when asked for its message.
type badError struct{}

func (badError) Error() string { panic("inner") }

type secret struct{ key string }

func (s secret) String() string { return "redacted" }

func TestPanics(t *testing.T) {
	d := New()
	var logs testutil.Buffer
	d.SetLogger(slog.New(slog.NewTextHandler(&logs, nil)))
	d.MustRegister("add", Pure2(func(a, b int) int { return a + b }))
	proc := func(f func()) Handler { return Proc0(func(context.Context) error { f(); return nil }) }
	tests := []struct {
		name  string
		h     Handler
		want  string
		inLog string
	}{
		{"string", proc(func() { panic("boom") }), "internal error: boom", "boom"},
		{"error", proc(func() { panic(errors.New("bad state")) }), "internal error: bad state", "bad state"},
		{"int", proc(func() { panic(42) }), "internal error: 42", "42"},
		{"stringer", proc(func() { panic(secret{"k"}) }), "internal error: redacted", "redacted"},
		{"nil", proc(func() { panic(nil) }), "internal error: panic called with nil argument", "panic called with nil"},
		{"runtime", proc(func() {
			var m map[string]int
			//lint:ignore SA5000 the test wants the runtime's nil-map panic
			m["x"] = 1
		}), "internal error: assignment to entry in nil map", "assignment to entry in nil map"},
		{"long", proc(func() { panic(strings.Repeat("x", 1000)) }), "internal error: " + strings.Repeat("x", maxPanicMessage) + "...", "xxxx"},
		{"at the bound", proc(func() { panic(strings.Repeat("y", maxPanicMessage)) }), "internal error: " + strings.Repeat("y", maxPanicMessage), "yyyy"},
		{"one past the bound", proc(func() { panic(strings.Repeat("z", maxPanicMessage+1)) }), "internal error: " + strings.Repeat("z", maxPanicMessage) + "...", "zzzz"},
		{"panicking Error method", proc(func() { panic(badError{}) }), "internal error: %!v(PANIC=Error method: inner)", "PANIC"},
		{"typed", Pure1(func(s string) int { panic("typed " + s) }), "internal error: typed ", "typed"},
		{"raw", HandlerFunc(func(ctx context.Context, dst, params []byte) ([]byte, error) {
			_ = append(dst, "half written"...) // into dst's array: must not reach the caller
			panic("raw")
		}), "internal error: raw", "raw"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := "panic." + strings.ReplaceAll(tt.name, " ", "_")
			if err := d.Register(name, tt.h); err != nil {
				t.Fatal(err)
			}
			params := ""
			if tt.name == "typed" {
				params = `[""]`
			}
			_, err := call(t, d, name, params) // call checks dst is untouched
			if err == nil || err.Code != codec.CodeInternalError || err.Message != tt.want {
				t.Fatalf("got %v, want -32603 %q", err, tt.want)
			}
			log := logs.String()
			if !strings.Contains(log, "handler panicked") || !strings.Contains(log, "method="+name) ||
				!strings.Contains(log, tt.inLog) || !strings.Contains(log, "dispatch_test.go") {
				t.Fatalf("log lacks the panic, the method or the stack:\n%s", log)
			}
			// The dispatcher keeps serving.
			if got, err := call(t, d, "add", "[1,2]"); err != nil || got != "3" {
				t.Fatalf("after panic: %s %v", got, err)
			}
		})
	}
}

func TestHandlerErrors(t *testing.T) {
	d := New()
	errSentinel := errors.New("disk full")
	tests := []struct {
		name     string
		err      error
		code     int
		message  string
		data     string
		isTarget error
	}{
		{"plain", errSentinel, -32000, "disk full", "", errSentinel},
		{"wrapped plain", fmt.Errorf("save: %w", errSentinel), -32000, "save: disk full", "", errSentinel},
		{"codec sentinel", codec.ErrInvalidParams, -32602, "Invalid params", "", codec.ErrInvalidParams},
		{"Errorf", Errorf(-32050, nil, "quota %s", "exceeded"), -32050, "quota exceeded", "", nil},
		{"Errorf data", Errorf(1001, map[string]any{"retry": true}, "busy"), 1001, "busy", `{"retry":true}`, nil},
		{"Errorf raw data", Errorf(1002, []byte(` [1, 2] `), "raw"), 1002, "raw", `[1, 2]`, nil},
		{"Errorf bad raw data", Errorf(1003, []byte(`not json`), "raw"), 1003, "raw", `"not json"`, nil},
		{"Errorf empty raw data", Errorf(1003, []byte{}, "raw"), 1003, "raw", `""`, nil},
		{"Errorf unencodable data", Errorf(1004, make(chan int), "chan"), 1004, "chan", "", nil},
		{"wrapped Errorf", fmt.Errorf("ctx: %w", Errorf(1006, "d", "inner")), 1006, "inner", `"d"`, nil},
		{"context", context.Canceled, -32000, "context canceled", "", context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.err
			name := "err." + tt.name
			d.MustRegister(name, HandlerFunc(func(ctx context.Context, dst, params []byte) ([]byte, error) {
				return append(dst, "partial"...), e
			}))
			out, err := d.Call(context.Background(), []byte("x"), []byte(name), nil)
			if string(out) != "x" {
				t.Fatalf("dst after error: %q", out)
			}
			var ce *codec.Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v carries no *codec.Error", err)
			}
			if ce.Code != tt.code || ce.Message != tt.message || string(ce.Data) != tt.data {
				t.Fatalf("got %d %q %s, want %d %q %s", ce.Code, ce.Message, ce.Data, tt.code, tt.message, tt.data)
			}
			if tt.isTarget != nil && !errors.Is(err, tt.isTarget) {
				t.Fatalf("errors.Is(%v, %v) is false", err, tt.isTarget)
			}
		})
	}
}

func TestEmptyResultIsNull(t *testing.T) {
	d := New()
	d.MustRegister("empty", HandlerFunc(func(ctx context.Context, dst, params []byte) ([]byte, error) {
		return dst, nil
	}))
	if got, err := call(t, d, "empty", ""); err != nil || got != "null" {
		t.Fatalf("got %s %v", got, err)
	}
}

func TestMiddlewareOrder(t *testing.T) {
	d := New()
	var mu sync.Mutex
	var trace []string
	record := func(s string) {
		mu.Lock()
		trace = append(trace, s)
		mu.Unlock()
	}
	built := map[string]int{}
	mw := func(tag string) Middleware {
		return func(name string, next Handler) Handler {
			built[tag+":"+name]++ // build time: under the dispatcher's write lock, no race
			return HandlerFunc(func(ctx context.Context, dst, params []byte) ([]byte, error) {
				record(tag + ">" + name)
				out, err := next.ServeRPC(ctx, dst, params)
				record(tag + "<")
				return out, err
			})
		}
	}
	d.Use(mw("a"), mw("b"))
	d.MustRegister("m", Pure0(func() int { record("m"); return 1 }))
	d.Use(mw("c"), nil, func(string, Handler) Handler { return nil }) // nil middleware and nil results are ignored
	d.MustRegister("n", Pure0(func() int { record("n"); return 2 }))

	for _, tc := range []struct{ method, want string }{
		{"m", "a>m b>m c>m m c< b< a<"},
		{"n", "a>n b>n c>n n c< b< a<"},
	} {
		trace = nil
		if got, err := call(t, d, tc.method, ""); err != nil {
			t.Fatalf("%s: %s %v", tc.method, got, err)
		}
		if got := strings.Join(trace, " "); got != tc.want {
			t.Fatalf("%s ran %q, want %q", tc.method, got, tc.want)
		}
	}
	// Lookup returns the wrapped handler.
	h, _ := d.Lookup([]byte("m"))
	trace = nil
	if _, err := h.ServeRPC(context.Background(), nil, nil); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(trace, " "); got != "a>m b>m c>m m c< b< a<" {
		t.Fatalf("Lookup handler ran %q", got)
	}
	// Each middleware was built once per method per table build: a, b for m at registration
	// and again when Use added c; c once for m and once for n.
	if built["a:m"] != 2 || built["c:m"] != 1 || built["a:n"] != 1 || built["c:n"] != 1 {
		t.Fatalf("middleware built %v", built)
	}
}

func TestMiddlewarePanicAndErrors(t *testing.T) {
	d := New()
	d.SetLogger(slog.New(slog.NewTextHandler(&testutil.Buffer{}, nil)))
	d.Use(func(name string, next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, dst, params []byte) ([]byte, error) {
			if string(params) == `["mw-panic"]` {
				panic("middleware")
			}
			if string(params) == `["mw-error"]` {
				return dst, errors.New("denied")
			}
			return next.ServeRPC(ctx, dst, params)
		})
	})
	d.MustRegister("echo", Pure1(func(s string) string { return s }))
	if _, err := call(t, d, "echo", `["mw-panic"]`); err == nil || err.Code != codec.CodeInternalError {
		t.Fatalf("middleware panic: %v", err)
	}
	if _, err := call(t, d, "echo", `["mw-error"]`); err == nil || err.Code != -32000 || err.Message != "denied" {
		t.Fatalf("middleware error: %v", err)
	}
	if got, err := call(t, d, "echo", `["ok"]`); err != nil || got != `"ok"` {
		t.Fatalf("echo: %s %v", got, err)
	}
}

// TestConcurrentRegistration calls methods from many goroutines while another goroutine keeps
// registering methods and middleware. Run it under -race.
func TestConcurrentRegistration(t *testing.T) {
	d := New()
	d.MustRegister("add", Pure2(func(a, b int) int { return a + b }))
	const (
		callers = 8
		calls   = 500
		methods = 100
	)
	var wg sync.WaitGroup
	errs := make(chan error, callers+1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < methods; i++ {
			v := i
			if err := d.Register("m"+strconv.Itoa(i), Pure0(func() int { return v })); err != nil {
				errs <- err
				return
			}
			if i%25 == 0 {
				d.Use(func(name string, next Handler) Handler { return next })
			}
		}
	}()
	for g := 0; g < callers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			buf := make([]byte, 0, 64)
			for i := 0; i < calls; i++ {
				out, err := d.Call(context.Background(), buf[:0], []byte("add"), []byte("[2,3]"))
				if err != nil || string(out) != "5" {
					errs <- fmt.Errorf("add: %s %v", out, err)
					return
				}
				m := "m" + strconv.Itoa((g*calls+i)%methods)
				out, err = d.Call(context.Background(), buf[:0], []byte(m), nil)
				switch {
				case err == nil && string(out) != m[1:]:
					errs <- fmt.Errorf("%s returned %s", m, out)
					return
				case err != nil && !errors.Is(err, codec.ErrMethodNotFound):
					errs <- fmt.Errorf("%s: %v", m, err)
					return
				}
				_ = d.Methods()
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := len(d.Methods()); got != methods+1 {
		t.Fatalf("%d methods registered, want %d", got, methods+1)
	}
}

// defaultSeq makes the names TestDefaultDispatcher registers unique under -count.
var defaultSeq atomic.Int64

func TestDefaultDispatcher(t *testing.T) {
	name := "test.default." + strconv.FormatInt(defaultSeq.Add(1), 10)
	if err := Register(name, Pure2(func(a, b int) int { return a * b })); err != nil {
		t.Fatal(err)
	}
	MustRegister(name+".must", Pure0(func() string { return "must" }))
	if err := Register(name+".handle", handlerStruct{}); err != nil {
		t.Fatal(err)
	}
	if err := Register(name+".func", HandlerFunc(rawAdd)); err != nil {
		t.Fatal(err)
	}
	if err := Register(name, Pure0(func() int { return 0 })); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("duplicate on Default: %v", err)
	}
	for _, tc := range []struct{ method, params, want string }{
		{name, "[3,4]", "12"},
		{name + ".must", "", `"must"`},
		{name + ".handle", "", `"struct"`},
		{name + ".func", "[3,4]", "7"},
	} {
		if got, err := call(t, Default, tc.method, tc.params); err != nil || got != tc.want {
			t.Fatalf("%s: %s %v, want %s", tc.method, got, err, tc.want)
		}
	}
}

// freeHandler reads no context (ContextFree).
type freeHandler struct{}

func (freeHandler) ServeRPC(_ context.Context, dst, _ []byte) ([]byte, error) {
	return append(dst, "1"...), nil
}

func (freeHandler) ContextFree() {}

// TestContextFree: Lookup's handler is ContextFree only while no middleware wraps it (a
// middleware may read ctx), and CallHandler runs it as Call does.
func TestContextFree(t *testing.T) {
	var d Dispatcher
	d.MustRegister("free", freeHandler{})
	d.MustRegister("boom", HandlerFunc(func(context.Context, []byte, []byte) ([]byte, error) { panic("boom") }))
	h, ok := d.Lookup([]byte("free"))
	if _, free := h.(ContextFree); !ok || !free {
		t.Fatalf("Lookup(free) = %T, %v: want a ContextFree handler", h, ok)
	}
	if out, err := d.CallHandler(context.Background(), h, []byte("x"), []byte("free"), nil); err != nil || string(out) != "x1" {
		t.Errorf("CallHandler = %q, %v; want x1", out, err)
	}
	b, _ := d.Lookup([]byte("boom"))
	if out, err := d.CallHandler(context.Background(), b, []byte("x"), []byte("boom"), nil); string(out) != "x" || codec.AsError(err).Code != codec.CodeInternalError {
		t.Errorf("CallHandler(panic) = %q, %v; want x and -32603", out, err)
	}
	d.Use(func(_ string, next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, dst, p []byte) ([]byte, error) { return next.ServeRPC(ctx, dst, p) })
	})
	if h, _ := d.Lookup([]byte("free")); h != nil {
		if _, free := h.(ContextFree); free {
			t.Error("a handler wrapped by middleware is still ContextFree")
		}
	}
}

// TestLookupCached: a LookupCache answers as Lookup does, through every change of the table
// (a method registered, middleware added), for names not found and names too long to keep.
func TestLookupCached(t *testing.T) {
	answer := func(v string) Handler {
		return HandlerFunc(func(_ context.Context, dst, _ []byte) ([]byte, error) { return append(dst, v...), nil })
	}
	d := New()
	if err := d.Register("a", answer("1")); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", maxCachedName+1)
	var c LookupCache
	steps := []struct {
		name   string
		before func()
		method string
		want   string // the handler's answer; "" for not found
	}{
		{"first lookup", nil, "a", "1"},
		{"same name, cached", nil, "a", "1"},
		{"not found", nil, "b", ""},
		{"not found, cached", nil, "b", ""},
		{"registered since", func() { _ = d.Register("b", answer("2")) }, "b", "2"},
		{"back to the first", nil, "a", "1"},
		{"middleware added", func() {
			d.Use(func(_ string, h Handler) Handler {
				return HandlerFunc(func(ctx context.Context, dst, p []byte) ([]byte, error) {
					dst, err := h.ServeRPC(ctx, dst, p)
					return append(dst, '!'), err
				})
			})
		}, "a", "1!"},
		{"a name too long to keep", nil, long, ""},
		{"after it", nil, "b", "2!"},
	}
	for _, s := range steps {
		if s.before != nil {
			s.before()
		}
		h, found := d.LookupCached(&c, []byte(s.method))
		wantH, wantFound := d.Lookup([]byte(s.method))
		if found != wantFound || found != (s.want != "") {
			t.Fatalf("%s: found %v, Lookup %v, want %v", s.name, found, wantFound, s.want != "")
		}
		if !found {
			continue
		}
		got, _ := h.ServeRPC(context.Background(), nil, nil)
		viaLookup, _ := wantH.ServeRPC(context.Background(), nil, nil)
		if string(got) != s.want || string(viaLookup) != s.want {
			t.Fatalf("%s: answered %q (Lookup's %q), want %q", s.name, got, viaLookup, s.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { d.LookupCached(&c, []byte("a")) }); n != 0 {
		t.Errorf("LookupCached allocates %v times", n)
	}
}
