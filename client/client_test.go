package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/zmtp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const waitLong = 10 * time.Second

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// dial connects a client to f for the test's duration.
func dial(t testing.TB, f *fakeBroker, opts ...Option) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	c, err := Dial(ctx, f.Addr, append([]Option{WithLogger(quiet), WithHeartbeat(time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestCall(t *testing.T) {
	f := newFakeBroker(t)
	c := dial(t, f)
	ctx := testutil.Context(t, waitLong)
	var sum int
	if err := c.Call(ctx, "add", &sum, 5, 6); err != nil {
		t.Fatal(err)
	}
	if sum != 11 {
		t.Errorf("add(5, 6) = %d", sum)
	}
	var f64 float64
	if err := c.Call(ctx, "add", &f64, 1.5, 2); err != nil || f64 != 3.5 {
		t.Errorf("add(1.5, 2) = %v, %v", f64, err)
	}
	var s string
	if err := c.Call(ctx, "echo", &s, "héllo \"x\""); err != nil || s != "héllo \"x\"" {
		t.Errorf("echo = %q, %v", s, err)
	}
	var raw json.RawMessage
	if err := c.Call(ctx, "echo", &raw, map[string]int{"a": 1}); err != nil || string(raw) != `{"a":1}` {
		t.Errorf("echo raw = %s, %v", raw, err)
	}
	var named map[string]int
	if err := c.Call(ctx, "echo", &named, Named(map[string]int{"b": 2})); err != nil || named["b"] != 2 {
		t.Errorf("echo named = %v, %v", named, err)
	}
	if err := c.Call(ctx, "echo", nil); err != nil {
		t.Errorf("echo without args or result: %v", err)
	}
	var wrong string
	if err := c.Call(ctx, "add", &wrong, 1, 2); err == nil {
		t.Errorf("decoding a number into a string did not fail")
	}
	out, err := c.CallRaw(ctx, []byte("x="), "add", []byte("[40,2]"))
	if err != nil || string(out) != "x=42" {
		t.Errorf("CallRaw = %q, %v", out, err)
	}
	f.snapshot(func(f *fakeBroker) {
		if f.hellos != 1 {
			t.Errorf("hellos %d", f.hellos)
		}
	})
	f.CheckClean()
}

func TestRemoteErrors(t *testing.T) {
	f := newFakeBroker(t)
	c := dial(t, f)
	ctx := testutil.Context(t, waitLong)
	cases := []struct {
		method string
		code   int
		msg    string
		data   string
		is     error
	}{
		{"fail", -32099, "boom", `{"why":"asked to"}`, nil},
		{"nosuch", -32601, "Method not found", "", codec.ErrMethodNotFound},
		{"add", -32602, "Invalid params", "", codec.ErrInvalidParams},
	}
	for _, tc := range cases {
		t.Run(tc.method, func(t *testing.T) {
			err := c.Call(ctx, tc.method, nil, "x")
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not a *client.Error", err, err)
			}
			if e.Code != tc.code || e.Message != tc.msg || string(e.Data) != tc.data {
				t.Errorf("got code %d message %q data %s", e.Code, e.Message, e.Data)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("errors.Is(%v, %v) is false", err, tc.is)
			}
			for _, local := range []error{ErrClosed, ErrConnectionLost, context.Canceled, context.DeadlineExceeded} {
				if errors.Is(err, local) {
					t.Errorf("remote error matches local %v", local)
				}
			}
		})
	}
}

func TestCallContextCancel(t *testing.T) {
	f := newFakeBroker(t)
	c := dial(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	ret := make(chan error, 1)
	go func() { ret <- c.Call(ctx, "hang", nil) }()
	f.waitFor(waitLong, "the hanging call", func(f *fakeBroker) bool { return len(f.hung) == 1 })
	cancel()
	select {
	case err := <-ret:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled call returned %v", err)
		}
	case <-time.After(waitLong):
		t.Fatal("cancelled call did not return")
	}
	// The late reply is dropped; the client keeps working.
	f.release("1")
	var sum int
	if err := c.Call(testutil.Context(t, waitLong), "add", &sum, 1, 2); err != nil || sum != 3 {
		t.Fatalf("call after a cancelled one: %d, %v", sum, err)
	}
	c.out.mu.Lock()
	n := c.out.pending.len()
	c.out.mu.Unlock()
	if n != 0 {
		t.Errorf("%d calls still pending", n)
	}
	if int(c.slots.used.Load()) != 0 {
		t.Errorf("%d in-flight slots still taken", int(c.slots.used.Load()))
	}
	// A context that is already done fails at once.
	done, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if err := c.Call(done, "hang", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("call with a done context: %v", err)
	}
}

// TestLoneCallGoesAlone: a call made while nothing else is queued leaves at once, as a bare
// object (no batch).
func TestLoneCallGoesAlone(t *testing.T) {
	f := newFakeBroker(t)
	c := dial(t, f)
	ctx := testutil.Context(t, waitLong)
	for range 5 {
		if err := c.Call(ctx, "add", nil, 1, 1); err != nil {
			t.Fatal(err)
		}
	}
	f.snapshot(func(f *fakeBroker) {
		if f.msgs != 6 || f.bare != 6 { // the hello and 5 calls
			t.Errorf("%d messages, %d bare, want 6 and 6", f.msgs, f.bare)
		}
	})
}

// TestBatchesCoalesce: requests queued while a send is under way leave as one batch.
func TestBatchesCoalesce(t *testing.T) {
	f := newFakeBroker(t)
	c := dial(t, f)
	ctx := testutil.Context(t, waitLong)

	// Deterministic: hold the sender, queue 50 calls from 50 goroutines, let go. The hold waits
	// for a sender at work (the connection's hello) to finish: its end would clear the hold.
	testutil.Eventually(t, waitLong, func() bool {
		c.out.mu.Lock()
		defer c.out.mu.Unlock()
		if c.out.snd.Sending() {
			return false
		}
		c.out.snd.Hold(true)
		return true
	}, "no sender at work")
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var sum int
			if err := c.Call(ctx, "add", &sum, i, 1); err != nil || sum != i+1 {
				errs <- fmt.Errorf("add(%d, 1) = %d, %v", i, sum, err)
			}
		}()
	}
	testutil.Eventually(t, waitLong, func() bool {
		c.out.mu.Lock()
		defer c.out.mu.Unlock()
		return c.out.pending.len() == 50
	}, "50 calls queued")
	var before int
	f.snapshot(func(f *fakeBroker) { before = f.msgs })
	c.out.mu.Lock()
	c.out.snd.Hold(false)
	c.out.mu.Unlock()
	c.out.flush(false)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	f.snapshot(func(f *fakeBroker) {
		if got := f.msgs - before; got != 1 || f.maxMembers != 50 {
			t.Errorf("50 queued calls left in %d messages (largest %d members), want 1 of 50", got, f.maxMembers)
		}
	})

	// Under real concurrency: fewer messages than calls.
	f.snapshot(func(f *fakeBroker) { before = f.msgs })
	const goroutines, each = 64, 50
	var calls atomic.Int64
	var wg2 sync.WaitGroup
	for range goroutines {
		wg2.Add(1)
		go func() {
			defer wg2.Done()
			for range each {
				if err := c.Call(ctx, "add", nil, 1, 2); err != nil {
					t.Error(err)
					return
				}
				calls.Add(1)
			}
		}()
	}
	wg2.Wait()
	f.snapshot(func(f *fakeBroker) {
		msgs := f.msgs - before
		t.Logf("%d concurrent calls in %d messages", calls.Load(), msgs)
		if int64(msgs) >= calls.Load() {
			t.Errorf("%d calls took %d messages: no coalescing", calls.Load(), msgs)
		}
	})
	f.CheckClean()
}

// TestMaxBatch: a batch never holds more requests than the broker's max_batch.
func TestMaxBatch(t *testing.T) {
	f := newFakeBroker(t)
	f.maxBatch = 7
	c := dial(t, f)
	inputs := make([]any, 100)
	for i := range inputs {
		inputs[i] = []int{i, i}
	}
	got, err := Map[int](testutil.Context(t, waitLong), c, "add", inputs)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if v != 2*i {
			t.Fatalf("result %d = %d", i, v)
		}
	}
	f.snapshot(func(f *fakeBroker) {
		if f.maxMembers > 7 {
			t.Errorf("a message had %d members, max_batch 7", f.maxMembers)
		}
	})
	f.CheckClean()
}

func TestNotify(t *testing.T) {
	f := newFakeBroker(t)
	c := dial(t, f)
	ctx := testutil.Context(t, waitLong)
	if err := c.Notify(ctx, "add", 1, 2); err != nil {
		t.Fatal(err)
	}
	f.waitFor(waitLong, "notification", func(f *fakeBroker) bool { return len(f.notified) == 1 && f.notified[0] == "add" })
	c.out.mu.Lock()
	n := c.out.pending.len()
	c.out.mu.Unlock()
	if n != 0 {
		t.Errorf("a notification left %d calls pending", n)
	}
}

func TestMaxInFlight(t *testing.T) {
	f := newFakeBroker(t)
	c := dial(t, f, WithMaxInFlight(2))
	ctx := testutil.Context(t, waitLong)
	ret := make(chan error, 2)
	for range 2 {
		go func() { ret <- c.Call(ctx, "hang", nil) }()
	}
	f.waitFor(waitLong, "two hanging calls", func(f *fakeBroker) bool { return len(f.hung) == 2 })
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := c.Call(short, "add", nil, 1, 2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("third call past WithMaxInFlight(2): %v, want DeadlineExceeded", err)
	}
	third := make(chan error, 1)
	go func() { third <- c.Call(ctx, "add", nil, 1, 2) }()
	f.release("true")
	for range 2 {
		if err := <-ret; err != nil {
			t.Fatal(err)
		}
	}
	if err := <-third; err != nil {
		t.Fatalf("call after slots freed: %v", err)
	}
}

func TestClose(t *testing.T) {
	f := newFakeBroker(t)
	c := dial(t, f)
	ctx := testutil.Context(t, waitLong)
	ret := make(chan error, 1)
	go func() { ret <- c.Call(ctx, "hang", nil) }()
	f.waitFor(waitLong, "hanging call", func(f *fakeBroker) bool { return len(f.hung) == 1 })
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-ret; !errors.Is(err, ErrClosed) {
		t.Errorf("pending call after Close: %v, want ErrClosed", err)
	}
	if err := c.Call(ctx, "add", nil, 1, 2); !errors.Is(err, ErrClosed) {
		t.Errorf("call after Close: %v, want ErrClosed", err)
	}
	if _, err := c.Submit(ctx, "add", []any{1, 2}); !errors.Is(err, ErrClosed) {
		t.Errorf("Submit after Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestDialNoBroker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	c, err := Dial(ctx, testutil.FreeEndpoint(t), WithLogger(quiet))
	if err == nil {
		c.Close()
		t.Fatal("Dial without a broker succeeded")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Dial error %v, want DeadlineExceeded", err)
	}
	bad := []Option{WithMaxInFlight(0), WithMaxMsgSize(10), WithMaxBatch(0), WithPollWait(0)}
	for _, o := range bad {
		if _, err := Dial(context.Background(), "tcp://127.0.0.1:1", o); err == nil {
			t.Errorf("Dial accepted a bad option")
		}
	}
}

func TestDialRefused(t *testing.T) {
	f := newFakeBroker(t)
	f.Mu.Lock()
	f.refuse = true
	f.Mu.Unlock()
	ctx := testutil.Context(t, waitLong)
	c, err := Dial(ctx, f.Addr, WithLogger(quiet))
	if err == nil {
		c.Close()
		t.Fatal("Dial succeeded with a refused hello")
	}
	if !errors.Is(err, codec.ErrInvalidParams) || ctx.Err() != nil {
		t.Errorf("Dial error %v, want the broker's -32602 at once", err)
	}
}

// TestPlain: WithPlain authenticates; wrong credentials never get a hello through.
func TestPlain(t *testing.T) {
	s := newEchoServer(t, zmtp.PlainServer(func(user, pass string, _ net.Addr) bool {
		return user == "alice" && pass == "secret"
	}))
	ctx := testutil.Context(t, waitLong)
	c, err := Dial(ctx, s.Addr, WithLogger(quiet), WithPlain("alice", "secret"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.CallRaw(ctx, nil, "echo", []byte("[1]"))
	c.Close()
	if err != nil || string(out) != "[1]" {
		t.Fatalf("call over PLAIN: %s, %v", out, err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if c, err := Dial(short, s.Addr, WithLogger(quiet), WithPlain("alice", "wrong")); err == nil {
		c.Close()
		t.Fatal("Dial with wrong credentials succeeded")
	}
}

// TestTooLarge: a request that cannot fit in one message fails locally.
func TestTooLarge(t *testing.T) {
	f := newFakeBroker(t)
	c := dial(t, f, WithMaxMsgSize(1024))
	ctx := testutil.Context(t, waitLong)
	big := make([]byte, 2000)
	for i := range big {
		big[i] = 'x'
	}
	if err := c.Call(ctx, "echo", nil, string(big)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized call: %v, want ErrTooLarge", err)
	}
	// Requests that together pass the limit are split into several messages.
	inputs := make([]any, 40)
	for i := range inputs {
		inputs[i] = string(big[:100])
	}
	if _, err := Map[string](ctx, c, "echo", inputs); err != nil {
		t.Fatal(err)
	}
	f.CheckClean()
}

// TestBrokerRestart: calls out when the broker dies fail with ErrConnectionLost at once; later
// calls work on the restarted broker without a new client.
func TestBrokerRestart(t *testing.T) {
	f := newFakeBroker(t)
	c := dial(t, f)
	ctx := testutil.Context(t, waitLong)
	ret := make(chan error, 1)
	go func() { ret <- c.Call(ctx, "hang", nil) }()
	f.waitFor(waitLong, "hanging call", func(f *fakeBroker) bool { return len(f.hung) == 1 })
	addr := f.Addr
	f.Close()
	select {
	case err := <-ret:
		if !errors.Is(err, ErrConnectionLost) {
			t.Fatalf("call out when the broker died: %v, want ErrConnectionLost", err)
		}
	case <-time.After(waitLong):
		t.Fatal("call out when the broker died did not fail")
	}
	// A call made while the broker is away waits for it.
	later := make(chan error, 1)
	go func() {
		var sum int
		err := c.Call(ctx, "add", &sum, 2, 3)
		if err == nil && sum != 5 {
			err = fmt.Errorf("sum %d", sum)
		}
		later <- err
	}()
	f2 := newFakeBroker(t, addr)
	if err := <-later; err != nil {
		t.Fatalf("call made during the outage: %v", err)
	}
	var sum int
	if err := c.Call(ctx, "add", &sum, 5, 6); err != nil || sum != 11 {
		t.Fatalf("call after restart: %d, %v", sum, err)
	}
	f2.snapshot(func(f *fakeBroker) {
		if f.hellos != 1 {
			t.Errorf("restarted broker saw %d hellos", f.hellos)
		}
	})
	f2.CheckClean()
}

func TestMapOrder(t *testing.T) {
	f := newFakeBroker(t)
	c := dial(t, f)
	ctx := testutil.Context(t, waitLong)
	// sleep answers after its argument: later inputs finish first.
	inputs := make([]any, 50)
	for i := range inputs {
		inputs[i] = 50 - i
	}
	got, err := Map[int](ctx, c, "sleep", inputs, MapConcurrency(50))
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if v != 50-i {
			t.Fatalf("result %d = %d, want %d", i, v, 50-i)
		}
	}
	// 10,000 inputs through a concurrency of 100.
	inputs = make([]any, 10000)
	for i := range inputs {
		inputs[i] = []int{i, 1}
	}
	sums, err := Map[int](ctx, c, "add", inputs, MapConcurrency(100))
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range sums {
		if v != i+1 {
			t.Fatalf("sum %d = %d", i, v)
		}
	}
	if none, err := Map[int](ctx, c, "add", []int(nil)); err != nil || len(none) != 0 {
		t.Errorf("Map over nothing: %v %v", none, err)
	}
	f.CheckClean()
}

func TestMapError(t *testing.T) {
	f := newFakeBroker(t)
	c := dial(t, f)
	ctx := testutil.Context(t, waitLong)
	inputs := []any{[]int{1, 2}, []int{3, 4}, "not numbers", []int{5, 6}}
	_, err := Map[int](ctx, c, "add", inputs)
	var me *MapError
	if !errors.As(err, &me) || me.Index != 2 || !errors.Is(err, codec.ErrInvalidParams) {
		t.Fatalf("Map error %v, want a *MapError for input 2 with -32602", err)
	}
	// Cancelled while calls hang: returns ctx.Err() and frees its slots.
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := Map[int](short, c, "hang", []any{1, 2, 3}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Map over hanging calls: %v", err)
	}
	if int(c.slots.used.Load()) != 0 {
		t.Errorf("%d slots still taken after Map returned", int(c.slots.used.Load()))
	}
	f.release("1")
}

// TestMapConcurrency: Map never has more than MapConcurrency inputs in flight.
func TestMapConcurrency(t *testing.T) {
	f := newFakeBroker(t)
	c := dial(t, f)
	ctx := testutil.Context(t, waitLong)
	inputs := make([]any, 10)
	for i := range inputs {
		inputs[i] = i
	}
	ret := make(chan error, 1)
	go func() {
		_, err := Map[int](ctx, c, "hang", inputs, MapConcurrency(3))
		ret <- err
	}()
	answered := 0
	for answered < len(inputs) {
		want := min(3, len(inputs)-answered)
		f.waitFor(waitLong, "the next hanging inputs", func(f *fakeBroker) bool { return len(f.hung) == want })
		f.release("1")
		answered += want
	}
	if err := <-ret; err != nil {
		t.Fatal(err)
	}
	f.snapshot(func(f *fakeBroker) {
		if f.maxHung != 3 {
			t.Errorf("at most %d inputs in flight, want 3", f.maxHung)
		}
	})
}

func TestInputParams(t *testing.T) {
	cases := []struct {
		in   any
		want string
	}{
		{7, "[7]"},
		{"x", `["x"]`},
		{[]int{5, 6}, "[5,6]"},
		{[]any{1, "a"}, `[1,"a"]`},
		{map[string]int{"a": 1}, `{"a":1}`},
		{struct {
			A int `json:"a"`
		}{2}, `{"a":2}`},
		{json.RawMessage(`[1,2]`), "[1,2]"},
		{json.RawMessage(`3`), "[3]"},
		{nil, "[null]"},
		{Named(map[string]int{"b": 1}), `{"b":1}`},
	}
	for _, tc := range cases {
		got, err := inputParams(tc.in)
		if err != nil || string(got) != tc.want {
			t.Errorf("inputParams(%#v) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
	}
	if _, err := inputParams(make(chan int)); err == nil {
		t.Errorf("inputParams(chan) did not fail")
	}
	if _, err := encodeArgs(nil, []any{Named(5)}); err == nil {
		t.Errorf("Named(5) did not fail")
	}
}
