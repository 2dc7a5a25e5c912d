package client_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/zerotask/zerotask/broker"
	"github.com/zerotask/zerotask/client"
	"github.com/zerotask/zerotask/dispatch"
	"github.com/zerotask/zerotask/node"
)

// walkthrough starts what the examples talk to: a broker on free loopback ports and a node
// serving the builtins (add, subtract, echo, sleep, sum). It returns the broker's address and a
// function that stops both.
func walkthrough() (addr string, stop func()) {
	b, err := broker.New(broker.Config{Listen: "tcp://127.0.0.1:0", Pub: "tcp://127.0.0.1:0", Logger: quiet})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- b.Serve(ctx) }()
	d := dispatch.New()
	if err := node.Builtins(d); err != nil {
		panic(err)
	}
	n, err := node.New(node.Config{Broker: b.Addr(), Sub: b.PubAddr(), Dispatcher: d, Logger: quiet})
	if err != nil {
		panic(err)
	}
	ran := make(chan error, 1)
	go func() { ran <- n.Serve(ctx) }()
	return b.Addr(), func() {
		cancel()
		<-ran
		<-served
	}
}

// ExampleDial connects to a broker and calls add: the seed's client.add(5, 6).
func ExampleDial() {
	addr, stop := walkthrough()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := client.Dial(ctx, addr) // "" would mean tcp://127.0.0.1:5555
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	var sum int
	if err := c.Call(ctx, "add", &sum, 5, 6); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(sum)
	// Output: 11
}

// ExampleDial_severalBrokers connects one client to two brokers that share one Redis store:
// the client's DEALER connects to both, its calls spread over them, and it keeps working
// through one while the other is away. (Not run: it needs the two brokers.)
func ExampleDial_severalBrokers() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "tcp://10.0.0.1:5555, tcp://10.0.0.2:5555")
	if err != nil {
		fmt.Println(err) // a bad list fails at once; with no broker answering, when ctx ends
		return
	}
	defer c.Close()

	var sum int
	for {
		err = c.Call(ctx, "add", &sum, 5, 6)
		if !errors.Is(err, client.ErrConnectionLost) {
			break
		}
		// A connection dropped while the call was out, on either broker: it may or may not
		// have run. add can run twice, so try again (on the connections still up).
	}
	fmt.Println(sum, err)

	// A submitted task survives a lost connection: its handle asks again, through any broker.
	h, err := c.Submit(ctx, "add", []any{1, 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	err = h.Wait(ctx, &sum)
	fmt.Println(sum, err)
}

// ExampleClient_Call shows typed calls, named params and a remote error.
func ExampleClient_Call() {
	addr, stop := walkthrough()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, addr, client.WithLogger(quiet))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	var f float64
	_ = c.Call(ctx, "add", &f, 1.5, 2)
	var diff int
	_ = c.Call(ctx, "subtract", &diff, client.Named(map[string]int{"a": 42, "b": 23}))
	fmt.Println(f, diff)

	err = c.Call(ctx, "add", nil, "five", 6)
	var e *client.Error
	if errors.As(err, &e) {
		fmt.Println("remote error", e.Code)
	}
	// Output:
	// 3.5 19
	// remote error -32602
}

// ExampleClient_CallRaw is the fast path: raw JSON params in, raw JSON result appended to a
// buffer the caller reuses.
func ExampleClient_CallRaw() {
	addr, stop := walkthrough()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, addr, client.WithLogger(quiet))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	buf := make([]byte, 0, 64)
	buf, err = c.CallRaw(ctx, buf[:0], "echo", []byte(`[{"answer":42}]`))
	fmt.Println(string(buf), err)
	// Output: {"answer":42} <nil>
}

// ExampleClient_Submit submits a task and waits for it through its handle.
func ExampleClient_Submit() {
	addr, stop := walkthrough()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, addr, client.WithLogger(quiet))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	h, err := c.Submit(ctx, "sleep", []any{100})
	if err != nil {
		fmt.Println(err)
		return
	}
	done := make(chan struct{})
	h.OnDone(func(h *client.Handle) {
		fmt.Println("hook:", h.Info().State)
		close(done)
	})
	var ms int
	if err := h.Wait(ctx, &ms); err != nil {
		fmt.Println(err)
		return
	}
	<-done
	state, _ := h.Status(ctx)
	fmt.Println("slept", ms, state)
	// Output:
	// hook: SUCCESS
	// slept 100 SUCCESS
}

// ExampleMap fans add out over many inputs; results come back in input order.
func ExampleMap() {
	addr, stop := walkthrough()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, addr, client.WithLogger(quiet))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	inputs := make([][2]int, 10) // each input is the params of one call: [i, i]
	for i := range inputs {
		inputs[i] = [2]int{i, i}
	}
	sums, err := client.Map[int](ctx, c, "add", inputs, client.MapConcurrency(4))
	fmt.Println(sums, err)
	// Output: [0 2 4 6 8 10 12 14 16 18] <nil>
}

// ExampleClient_CallWith calls a task with options: they come after the params, and Key,
// which applies to Submit only, would not compile here.
func ExampleClient_CallWith() {
	ctx, c, stop := exampleClient() // a broker and a node in this process, a client of them
	defer stop()

	var sum int
	err := c.CallWith(ctx, "add", &sum, []any{5, 6}, client.Priority(9), client.Timeout(5*time.Second))
	fmt.Println(sum, err)
	// Output: 11 <nil>
}

// ExampleHandle_TryResult looks at a handle without waiting: not done right after the submit,
// done once Wait has returned.
func ExampleHandle_TryResult() {
	ctx, c, stop := exampleClient() // a broker and a node in this process, a client of them
	defer stop()

	h, err := c.Submit(ctx, "sleep", []any{100})
	if err != nil {
		fmt.Println(err)
		return
	}
	_, done, _ := h.TryResult()
	fmt.Println("done:", done)
	_ = h.Wait(ctx, nil)
	raw, done, err := h.TryResult()
	fmt.Println("done:", done, string(raw), err)
	// Output:
	// done: false
	// done: true 100 <nil>
}

// ExampleClient_Wait waits on a task by id, for at most a given time: the record then says
// whether it is finished.
func ExampleClient_Wait() {
	ctx, c, stop := exampleClient() // a broker and a node in this process, a client of them
	defer stop()

	h, err := c.Submit(ctx, "sleep", []any{2000})
	if err != nil {
		fmt.Println(err)
		return
	}
	ti, err := c.Wait(ctx, h.ID(), 50*time.Millisecond)
	fmt.Println(ti.State.Done(), err)
	if _, err := c.Revoke(ctx, h.ID()); err != nil {
		fmt.Println(err)
		return
	}
	ti, err = c.Wait(ctx, h.ID(), 5*time.Second)
	fmt.Println(ti.State, err)
	// Output:
	// false <nil>
	// REVOKED <nil>
}

// dialExample connects to addr for an example.
// exampleClient starts the walkthrough's broker and node, and dials a client of them under a
// 10-second context; stop closes it all.
func exampleClient() (context.Context, *client.Client, func()) {
	addr, stop := walkthrough()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	c := dialExample(ctx, addr)
	return ctx, c, func() { c.Close(); cancel(); stop() }
}

func dialExample(ctx context.Context, addr string) *client.Client {
	c, err := client.Dial(ctx, addr, client.WithLogger(quiet))
	if err != nil {
		panic(err)
	}
	return c
}

// ExampleKey submits the same report twice with one idempotency key: one task, one run.
func ExampleKey() {
	ctx, c, stop := exampleClient() // a broker and a node in this process, a client of them
	defer stop()

	first, err := c.Submit(ctx, "echo", []any{"report"}, client.Key("report-2026-11"))
	if err != nil {
		fmt.Println(err)
		return
	}
	again, err := c.Submit(ctx, "echo", []any{"report"}, client.Key("report-2026-11"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(first.ID() == again.ID())
	// Output: true
}

// ExampleDelay holds a task in the broker before it runs: it is never handed to a node early.
func ExampleDelay() {
	ctx, c, stop := exampleClient() // a broker and a node in this process, a client of them
	defer stop()

	start := time.Now()
	h, err := c.Submit(ctx, "add", []any{5, 6}, client.Delay(300*time.Millisecond))
	if err != nil {
		fmt.Println(err)
		return
	}
	state, _ := h.Status(ctx)
	var sum int
	err = h.Wait(ctx, &sum)
	fmt.Println(state, sum, err, time.Since(start) >= 300*time.Millisecond)
	// Output: QUEUED 11 <nil> true
}

// ExampleTimeout gives a task a deadline: the node ends its handler's context then. A Call's
// context deadline does the same by itself.
func ExampleTimeout() {
	ctx, c, stop := exampleClient() // a broker and a node in this process, a client of them
	defer stop()

	err := c.CallWith(ctx, "sleep", nil, []any{5000}, client.Timeout(100*time.Millisecond))
	fmt.Println(errors.Is(err, client.ErrDeadline), err)
	// Output: true jsonrpc: task deadline exceeded (code -32011)
}

// ExamplePriority passes options of one task (priority, attempts, backoff) to CallWith, after
// its params.
func ExamplePriority() {
	ctx, c, stop := exampleClient() // a broker and a node in this process, a client of them
	defer stop()

	var sum int
	err := c.CallWith(ctx, "add", &sum, []any{5, 6}, client.Priority(9), client.MaxAttempts(3),
		client.Backoff(100*time.Millisecond, 5*time.Second))
	fmt.Println(sum, err)
	// Output: 11 <nil>
}

// ExampleQueue: a task in a named queue runs only on nodes that serve that queue; none does
// here, so the call waits and expires.
func ExampleQueue() {
	ctx, c, stop := exampleClient() // a broker and a node in this process, a client of them
	defer stop()

	err := c.CallWith(ctx, "add", nil, []any{5, 6}, client.Queue("reports"), client.Timeout(100*time.Millisecond))
	fmt.Println(errors.Is(err, client.ErrExpired))
	// Output: true
}

// ExampleMaxAttempts shows an option refused locally: nothing is sent.
func ExampleMaxAttempts() {
	ctx, c, stop := exampleClient() // a broker and a node in this process, a client of them
	defer stop()

	_, err := c.Submit(ctx, "add", []any{5, 6}, client.MaxAttempts(1000))
	fmt.Println(errors.Is(err, client.ErrBadOption))
	// Output: true
}

// ExampleETA holds a task until a time of the broker's clock.
func ExampleETA() {
	ctx, c, stop := exampleClient() // a broker and a node in this process, a client of them
	defer stop()

	h, err := c.Submit(ctx, "echo", []any{"hi"}, client.ETA(time.Now().Add(200*time.Millisecond)))
	if err != nil {
		fmt.Println(err)
		return
	}
	var s string
	fmt.Println(h.Wait(ctx, &s), s)
	// Output: <nil> hi
}
