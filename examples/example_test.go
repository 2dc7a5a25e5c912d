// Package examples shows ZeroTask used as a library: a broker, a node and a client in one
// process. Each example is complete and runs as a test (`go test ./examples/`); the walkthrough
// directory holds the same as a program (`go run ./examples/walkthrough`).
package examples_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/zerotask/zerotask/broker"
	"github.com/zerotask/zerotask/client"
	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/dispatch"
	"github.com/zerotask/zerotask/node"
)

var quiet = slog.New(slog.DiscardHandler)

// cluster starts a broker (with brokerTasks for its broker.* methods, may be nil) and a node
// serving nodeTasks on free loopback ports, and returns a connected client and a function that
// stops everything.
func cluster(ctx context.Context, brokerTasks, nodeTasks *dispatch.Dispatcher) (*client.Client, func(), error) {
	b, err := broker.New(broker.Config{Listen: "tcp://127.0.0.1:0", Pub: "tcp://127.0.0.1:0", Dispatcher: brokerTasks, Logger: quiet})
	if err != nil {
		return nil, nil, err
	}
	bctx, stopB := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- b.Serve(bctx) }()
	n, err := node.New(node.Config{Broker: b.Addr(), Sub: b.PubAddr(), Dispatcher: nodeTasks, Concurrency: 2, Logger: quiet})
	if err != nil {
		stopB()
		<-served
		return nil, nil, err
	}
	nctx, stopN := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- n.Serve(nctx) }()
	c, err := client.Dial(ctx, b.Addr(), client.WithLogger(quiet))
	stop := func() {
		if c != nil {
			c.Close()
		}
		stopN()
		<-ran
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = b.Shutdown(sctx)
		stopB()
		<-served
	}
	if err != nil {
		c = nil
		stop()
		return nil, nil, err
	}
	return c, stop, nil
}

// A task is a Go function registered under a name; Call runs it on a node and waits.
func Example_call() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tasks := dispatch.New()
	tasks.MustRegister("add", dispatch.Pure2(func(a, b int) int { return a + b }))
	c, stop, err := cluster(ctx, nil, tasks)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()

	var sum int
	if err := c.Call(ctx, "add", &sum, 5, 6); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(sum)
	// Output: 11
}

// Submit queues a task and returns a handle at once; Wait blocks until the task is done.
func Example_submit() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tasks := dispatch.New()
	if err := node.Builtins(tasks); err != nil { // add, subtract, echo, sleep
		fmt.Println(err)
		return
	}
	c, stop, err := cluster(ctx, nil, tasks)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()

	h, err := c.Submit(ctx, "sleep", []any{50})
	if err != nil {
		fmt.Println(err)
		return
	}
	var ms int
	if err := h.Wait(ctx, &ms); err != nil {
		fmt.Println(err)
		return
	}
	info, err := c.Status(ctx, h.ID())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ms, info.State)
	// Output: 50 SUCCESS
}

// Map fans a task out over many inputs and returns the results in input order.
func Example_map() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tasks := dispatch.New()
	tasks.MustRegister("square", dispatch.Pure1(func(x int) int { return x * x }))
	c, stop, err := cluster(ctx, nil, tasks)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()

	inputs := []int{1, 2, 3, 4, 5}
	squares, err := client.Map[int](ctx, c, "square", inputs)
	fmt.Println(squares, err)
	// Output: [1 4 9 16 25] <nil>
}

// A task's error comes back as a JSON-RPC error object, found with errors.As.
func Example_errors() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tasks := dispatch.New()
	tasks.MustRegister("divide", dispatch.Try2(func(a, b int) (int, error) {
		if b == 0 {
			return 0, dispatch.Errorf(-32010, nil, "division by zero")
		}
		return a / b, nil
	}))
	c, stop, err := cluster(ctx, nil, tasks)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()

	err = c.Call(ctx, "divide", nil, 1, 0)
	var rpcErr *codec.Error
	if errors.As(err, &rpcErr) {
		fmt.Println(rpcErr.Code, rpcErr.Message)
	}
	// Output: -32010 division by zero
}

// Users add their own broker tasks under broker.*: they run in the broker itself.
func Example_brokerTask() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	brokerTasks := dispatch.New()
	brokerTasks.MustRegister("broker.new_hotness", dispatch.Pure0(func() string { return "so hot" }))
	c, stop, err := cluster(ctx, brokerTasks, dispatch.New())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()

	var s string
	err = c.Call(ctx, "broker.new_hotness", &s)
	fmt.Println(s, err)
	// Output: so hot <nil>
}
