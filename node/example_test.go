package node_test

import (
	"context"
	"fmt"
	"time"

	"github.com/zerotask/zerotask/broker"
	"github.com/zerotask/zerotask/client"
	"github.com/zerotask/zerotask/dispatch"
	"github.com/zerotask/zerotask/node"
)

// ExampleNew runs a node that serves a user task and the builtins against a broker, calls it
// through a client, then stops the node gracefully with Shutdown.
func ExampleNew() {
	b, err := broker.New(broker.Config{Listen: "tcp://127.0.0.1:0", Pub: "tcp://127.0.0.1:0", Logger: quiet})
	if err != nil {
		fmt.Println(err)
		return
	}
	bctx, stopBroker := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- b.Serve(bctx) }()
	defer func() { stopBroker(); <-served }()

	// The tasks: the builtins plus one of our own.
	d := dispatch.New()
	if err := node.Builtins(d); err != nil {
		fmt.Println(err)
		return
	}
	d.MustRegister("greet", dispatch.Pure1(func(name string) string { return "hello, " + name }))

	n, err := node.New(node.Config{
		Broker:      b.Addr(),
		Sub:         b.PubAddr(),
		Dispatcher:  d,
		Concurrency: 4,
		GracePeriod: 10 * time.Second,
		Logger:      quiet,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ran := make(chan error, 1)
	go func() { ran <- n.Serve(context.Background()) }()

	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(cctx, b.Addr(), client.WithLogger(quiet))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	var greeting string
	var sum int
	_ = c.Call(cctx, "greet", &greeting, "world")
	_ = c.Call(cctx, "add", &sum, 5, 6)
	fmt.Println(greeting, sum)

	// A binary calls Shutdown on SIGINT/SIGTERM: running tasks may finish until its context ends.
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	fmt.Println("Shutdown:", n.Shutdown(sctx))
	fmt.Println("Serve returned", <-ran, "after", n.Stats().Done, "tasks")
	// Output:
	// hello, world 11
	// Shutdown: <nil>
	// Serve returned node: server closed after 2 tasks
}

// ExampleBuiltins shows what the builtin tasks answer, called straight on the dispatcher.
func ExampleBuiltins() {
	d := dispatch.New()
	if err := node.Builtins(d); err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	for _, c := range []struct{ method, params string }{
		{"add", `[5,6]`},
		{"add", `{"a":1.5,"b":2}`},
		{"subtract", `[42,23]`},
		{"echo", `["raw \"bytes\" kept"]`},
		{"sleep", `[10]`},
	} {
		out, err := d.Call(ctx, nil, []byte(c.method), []byte(c.params))
		fmt.Println(c.method, c.params, "->", string(out), err)
	}
	// Output:
	// add [5,6] -> 11 <nil>
	// add {"a":1.5,"b":2} -> 3.5 <nil>
	// subtract [42,23] -> 19 <nil>
	// echo ["raw \"bytes\" kept"] -> "raw \"bytes\" kept" <nil>
	// sleep [10] -> 10 <nil>
}

// ExampleNode_Stats reads a node's counters.
func ExampleNode_Stats() {
	n, err := node.New(node.Config{Concurrency: 2, Prefetch: 3})
	if err != nil {
		fmt.Println(err)
		return
	}
	s := n.Stats()
	fmt.Println(s.Running, s.Credit, s.Connected)
	// Output: 0 0 false
}
