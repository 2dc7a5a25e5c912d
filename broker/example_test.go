package broker_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/zerotask/zerotask/broker"
	"github.com/zerotask/zerotask/dispatch"
	"github.com/zerotask/zerotask/zmtp"
)

// ExampleNew binds a broker on free loopback ports (port 0) and prints where it listens.
func ExampleNew() {
	b, err := broker.New(broker.Config{
		Listen: "tcp://127.0.0.1:0",
		Pub:    "tcp://127.0.0.1:0",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Shutdown(context.Background())
	fmt.Println(strings.HasPrefix(b.Addr(), "tcp://127.0.0.1:"), strings.HasPrefix(b.PubAddr(), "tcp://127.0.0.1:"))
	// Output: true true
}

// Example_serve is the README's walkthrough in raw JSON-RPC: a broker, a node serving add, and a
// client whose call add(5, 6) is answered 11 with its own id.
func Example_serve() {
	b, err := broker.New(broker.Config{Listen: "tcp://127.0.0.1:0", Pub: broker.PubDisabled})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- b.Serve(ctx) }()

	// The node: a DEALER that says hello, grants credit, and answers its tasks with a
	// dispatcher (the broker may pack several tasks into one array).
	d := dispatch.New()
	d.MustRegister("add", dispatch.Pure2(func(a, b int) int { return a + b }))
	node := zmtp.NewDealer(zmtp.Options{})
	defer node.Close()
	node.Connect(b.Addr())
	node.SendFrames(ctx, []byte(`{"jsonrpc":"2.0","id":"hello","method":"broker.hello","params":{"role":"node","name":"n1","methods":["add"],"concurrency":1}}`))
	if m, err := node.Recv(ctx); err == nil {
		m.Release() // the hello reply
	}
	node.SendFrames(ctx, []byte(`{"jsonrpc":"2.0","method":"broker.credit","params":[10]}`))
	go func() {
		for {
			m, err := node.Recv(ctx)
			if err != nil {
				return
			}
			reply := d.ServeFrame(ctx, nil, m.Frames[0])
			m.Release()
			node.SendFrames(ctx, reply)
		}
	}()

	// The client: any JSON-RPC 2.0 peer on a DEALER (or REQ) socket.
	client := zmtp.NewDealer(zmtp.Options{})
	defer client.Close()
	client.Connect(b.Addr())
	client.SendFrames(ctx, []byte(`{"jsonrpc":"2.0","id":1,"method":"add","params":[5,6]}`))
	m, err := client.Recv(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(m.Frames[0]))
	m.Release()

	b.Shutdown(ctx)
	fmt.Println(errors.Is(<-served, broker.ErrServerClosed))
	// Output:
	// {"jsonrpc":"2.0","id":1,"result":11}
	// true
}

// Example_submit submits a task, then waits for its record with broker.result: the reply comes
// when a node has finished the task.
func Example_submit() {
	b, _ := broker.New(broker.Config{Listen: "tcp://127.0.0.1:0", Pub: broker.PubDisabled})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go b.Serve(ctx)
	defer b.Shutdown(context.Background())

	client := zmtp.NewDealer(zmtp.Options{})
	defer client.Close()
	client.Connect(b.Addr())
	call := func(req string) string {
		client.SendFrames(ctx, []byte(req))
		m, err := client.Recv(ctx)
		if err != nil {
			return err.Error()
		}
		defer m.Release()
		return string(m.Frames[0])
	}
	reply := call(`{"jsonrpc":"2.0","id":1,"method":"broker.submit","params":{"method":"add","params":[5,6]}}`)
	id := reply[strings.Index(reply, `"id":"`)+6:]
	id = id[:strings.IndexByte(id, '"')]
	fmt.Println(strings.Replace(reply, id, "ID", 1))

	// A node comes, takes the task and answers it.
	node := zmtp.NewDealer(zmtp.Options{})
	defer node.Close()
	node.Connect(b.Addr())
	node.SendFrames(ctx, []byte(`{"jsonrpc":"2.0","method":"broker.hello","params":{"role":"node","name":"n1","methods":["add"]}}`))
	node.SendFrames(ctx, []byte(`{"jsonrpc":"2.0","method":"broker.credit","params":[1]}`))
	go func() {
		m, err := node.Recv(ctx)
		if err != nil {
			return
		}
		task := string(m.Frames[0])
		m.Release()
		key := task[strings.Index(task, `"id":`)+5 : strings.Index(task, `,"method"`)]
		node.SendFrames(ctx, []byte(`{"jsonrpc":"2.0","id":`+key+`,"result":11}`))
	}()

	record := call(`{"jsonrpc":"2.0","id":2,"method":"broker.result","params":{"id":"` + id + `","wait_ms":5000}}`)
	fmt.Println(strings.Replace(record, id, "ID", 1))
	// Output:
	// {"jsonrpc":"2.0","id":1,"result":{"id":"ID","state":"QUEUED"}}
	// {"jsonrpc":"2.0","id":2,"result":{"id":"ID","method":"add","state":"SUCCESS","attempts":1,"result":11,"node":"n1"}}
}

// Example_brokerTask registers a user broker task (broker.new_hotness): it runs in
// the broker process, off the routing loop.
func Example_brokerTask() {
	d := dispatch.New()
	d.MustRegister("broker.new_hotness", dispatch.Pure1(func(s string) string { return "hot " + s }))
	b, _ := broker.New(broker.Config{Listen: "tcp://127.0.0.1:0", Pub: broker.PubDisabled, Dispatcher: d})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go b.Serve(ctx)
	defer b.Shutdown(context.Background())

	client := zmtp.NewReq(zmtp.Options{}) // a REQ socket works too
	defer client.Close()
	client.Connect(b.Addr())
	client.SendFrames(ctx, []byte(`{"jsonrpc":"2.0","id":"x","method":"broker.new_hotness","params":["stuff"]}`))
	m, err := client.Recv(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Release()
	fmt.Println(string(m.Frames[0]))
	// Output: {"jsonrpc":"2.0","id":"x","result":"hot stuff"}
}

// ExampleBroker_Shutdown stops a broker gracefully: Serve returns ErrServerClosed.
func ExampleBroker_Shutdown() {
	b, _ := broker.New(broker.Config{Listen: "tcp://127.0.0.1:0", Pub: broker.PubDisabled})
	served := make(chan error, 1)
	go func() { served <- b.Serve(context.Background()) }()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fmt.Println(b.Shutdown(ctx))
	fmt.Println(<-served)
	// Output:
	// <nil>
	// broker: server closed
}

// ExampleBroker_Stats reads the counters, which is safe at any time.
func ExampleBroker_Stats() {
	b, _ := broker.New(broker.Config{Listen: "tcp://127.0.0.1:0", Pub: broker.PubDisabled})
	defer b.Shutdown(context.Background())
	s := b.Stats()
	fmt.Println(s.Queued, s.Running, s.Nodes, s.Clients)
	// Output: 0 0 0 0
}

// NewEngine drives the broker's routing state without a network: a node says hello and grants
// credit, a client calls add, the node answers, and the client gets its reply, each message
// handed in and out by hand.
func ExampleNewEngine() {
	var sent []string
	h, err := broker.NewEngine(broker.Config{}, func(frames [][]byte) {
		sent = append(sent, fmt.Sprintf("to %s: %s", frames[0], frames[len(frames)-1]))
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	node, client := []byte("N"), []byte("C")
	h.Receive([][]byte{node, []byte(`{"jsonrpc":"2.0","id":"h","method":"broker.hello","params":{"role":"node","name":"n","methods":["add"]}}`)})
	h.Receive([][]byte{node, []byte(`{"jsonrpc":"2.0","method":"broker.credit","params":[1]}`)})
	h.Receive([][]byte{client, []byte(`{"jsonrpc":"2.0","id":7,"method":"add","params":[5,6]}`)})
	h.Receive([][]byte{node, []byte(`{"jsonrpc":"2.0","id":"00000000.67108864","result":11}`)})
	for _, s := range sent[1:] { // after the hello reply
		fmt.Println(s)
	}
	fmt.Println(h.Stats().Succeeded)
	// Output:
	// to N: {"jsonrpc":"2.0","id":"00000000.67108864","method":"add","params":[5,6],"timeout_ms":1800000,"attempt":1}
	// to C: {"jsonrpc":"2.0","id":7,"result":11}
	// 1
}
