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
// serving the builtins (add, subtract, echo, sleep). It returns the broker's address and a
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
	go func() { ran <- n.Run(ctx) }()
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

	h, err := c.Submit(ctx, "sleep", 100)
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

	inputs := make([]any, 10)
	for i := range inputs {
		inputs[i] = []int{i, i}
	}
	sums, err := client.Map[int](ctx, c, "add", inputs, client.MapConcurrency(4))
	fmt.Println(sums, err)
	// Output: [0 2 4 6 8 10 12 14 16 18] <nil>
}
