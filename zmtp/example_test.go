package zmtp_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/zerotask/zerotask/zmtp"
)

// A DEALER talks to a ROUTER: the ROUTER sees the DEALER's identity first and answers with it.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	router := zmtp.NewRouter(zmtp.Options{})
	defer router.Close()
	if err := router.Bind("tcp://127.0.0.1:0"); err != nil {
		panic(err)
	}
	dealer := zmtp.NewDealer(zmtp.Options{Identity: []byte("client-1")})
	defer dealer.Close()
	if err := dealer.Connect(router.LastEndpoint()); err != nil {
		panic(err)
	}

	_ = dealer.SendFrames(ctx, []byte("ping"))
	req, _ := router.Recv(ctx)
	fmt.Printf("router got %q from %q\n", req.Frames[1], req.Frames[0])
	_ = router.SendFrames(ctx, req.Frames[0], []byte("pong"))
	req.Release()

	rep, _ := dealer.Recv(ctx)
	fmt.Printf("dealer got %q\n", rep.Frames[0])
	rep.Release()
	// Output:
	// router got "ping" from "client-1"
	// dealer got "pong"
}

// REQ and REP alternate strictly; REP answers the peer whose request it received last.
func ExampleNewReq() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rep := zmtp.NewRep(zmtp.Options{})
	defer rep.Close()
	_ = rep.Bind("tcp://127.0.0.1:0")
	req := zmtp.NewReq(zmtp.Options{})
	defer req.Close()
	_ = req.Connect(rep.LastEndpoint())

	_ = req.SendFrames(ctx, []byte("2+2"))
	q, _ := rep.Recv(ctx)
	fmt.Printf("rep got %q\n", q.Frames[0])
	q.Release()
	_ = rep.SendFrames(ctx, []byte("4"))
	a, _ := req.Recv(ctx)
	fmt.Printf("req got %q\n", a.Frames[0])
	a.Release()
	// Output:
	// rep got "2+2"
	// req got "4"
}

// A SUB receives what matches its subscriptions; the PUB filters before sending.
func ExampleSocket_Subscribe() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pub := zmtp.NewPub(zmtp.Options{})
	defer pub.Close()
	_ = pub.Bind("tcp://127.0.0.1:0")
	sub := zmtp.NewSub(zmtp.Options{})
	defer sub.Close()
	_ = sub.Connect(pub.LastEndpoint())
	_ = sub.Subscribe([]byte("tasks."))

	// A subscription takes a moment to reach the publisher: publish until one arrives.
	for {
		_ = pub.SendFrames(ctx, []byte("other"), []byte("not for us"))
		_ = pub.SendFrames(ctx, []byte("tasks.add"), []byte("3 queued"))
		wait, stop := context.WithTimeout(ctx, 20*time.Millisecond)
		m, err := sub.Recv(wait)
		stop()
		if err == nil {
			fmt.Printf("%s: %s\n", m.Frames[0], m.Frames[1])
			m.Release()
			return
		}
	}
	// Output:
	// tasks.add: 3 queued
}

// PLAIN checks a username and password at the server; bad credentials fail the handshake.
func ExamplePlainServer() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	auth := zmtp.PlainCredentials(map[string]string{"node": "s3cret"})
	server := zmtp.NewRouter(zmtp.Options{Security: zmtp.PlainServer(auth)})
	defer server.Close()
	_ = server.Bind("tcp://127.0.0.1:0")

	client := zmtp.NewDealer(zmtp.Options{Security: zmtp.PlainClient("node", "s3cret")})
	defer client.Close()
	_ = client.Connect(server.LastEndpoint())
	_ = client.SendFrames(ctx, []byte("hello"))
	m, _ := server.Recv(ctx)
	fmt.Printf("%s\n", m.Frames[1])
	m.Release()
	// Output:
	// hello
}

// PlainServer's auth may look at the peer address too.
func ExamplePlainClient() {
	auth := func(user, pass string, peer net.Addr) bool {
		return user == "admin" && pass == "secret" && peer != nil
	}
	_ = zmtp.NewRouter(zmtp.Options{Security: zmtp.PlainServer(auth)}).Close()
	_ = zmtp.NewDealer(zmtp.Options{Security: zmtp.PlainClient("admin", "secret")}).Close()
	fmt.Println(zmtp.PlainClient("admin", "secret").Name())
	// Output:
	// PLAIN
}

// A ROUTER never drops a message for an unknown peer silently.
func ExampleSocket_Send() {
	router := zmtp.NewRouter(zmtp.Options{})
	defer router.Close()
	m := zmtp.AcquireMsg()
	defer m.Release()
	m.AddFrame([]byte("nobody"))
	m.AddFrame([]byte("payload"))
	err := router.Send(context.Background(), m)
	fmt.Println(errors.Is(err, zmtp.ErrUnknownPeer))
	// Output:
	// true
}

// TrySend never waits: with no peer it fails at once.
func ExampleSocket_TrySend() {
	dealer := zmtp.NewDealer(zmtp.Options{})
	defer dealer.Close()
	m := zmtp.AcquireMsg()
	defer m.Release()
	m.AddFrame([]byte("x"))
	fmt.Println(errors.Is(dealer.TrySend(m), zmtp.ErrNoPeer))
	// Output:
	// true
}

// Recv waits until the context ends.
func ExampleSocket_Recv() {
	dealer := zmtp.NewDealer(zmtp.Options{})
	defer dealer.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err := dealer.Recv(ctx)
	fmt.Println(errors.Is(err, context.DeadlineExceeded))
	// Output:
	// true
}

// AcquireMsg and Release pair up: the message's buffer goes back to a pool.
func ExampleAcquireMsg() {
	m := zmtp.AcquireMsg()
	m.AddFrame([]byte("header"))
	m.AddFrame([]byte("body"))
	fmt.Println(len(m.Frames), m.Size())
	m.Release()
	// Output:
	// 2 10
}

// Stats are readable at any time; Monitor reports connection events.
func ExampleSocket_Stats() {
	events := make(chan zmtp.EventType, 16)
	router := zmtp.NewRouter(zmtp.Options{Monitor: func(e zmtp.Event) {
		select {
		case events <- e.Type:
		default: // a monitor must not block
		}
	}})
	defer router.Close()
	_ = router.Bind("tcp://127.0.0.1:0")
	fmt.Println(<-events, router.Stats().Peers)
	// Output:
	// listening 0
}

// Bind accepts tcp (port 0 picks a free port) and ipc endpoints; LastEndpoint tells the port.
func ExampleSocket_Bind() {
	s := zmtp.NewRouter(zmtp.Options{})
	defer s.Close()
	if err := s.Bind("tcp://127.0.0.1:0"); err != nil {
		panic(err)
	}
	fmt.Println(s.Addr().Network())
	// Output:
	// tcp
}

// Connect returns at once; the socket dials, and redials with backoff, in the background.
func ExampleSocket_Connect() {
	d := zmtp.NewDealer(zmtp.Options{ReconnectInterval: 50 * time.Millisecond})
	defer d.Close()
	fmt.Println(d.Connect("tcp://127.0.0.1:1"), d.Stats().Peers)
	// Output:
	// <nil> 0
}

// SocketType names are those on the wire.
func ExampleSocketType_String() {
	fmt.Println(zmtp.Router, zmtp.Dealer, zmtp.Pub, zmtp.Sub, zmtp.Req, zmtp.Rep)
	// Output:
	// ROUTER DEALER PUB SUB REQ REP
}

// NewSocket is the general constructor behind NewRouter, NewDealer and the others.
func ExampleNewSocket() {
	s := zmtp.NewSocket(zmtp.Dealer, zmtp.Options{SendHWM: 10000, MaxMsgSize: 4 << 20})
	defer s.Close()
	fmt.Println(s.Type())
	// Output:
	// DEALER
}

// RecvBatch takes every message already queued (up to the slice's length) in one call: a
// receive loop that handles bursts pays one queue lock per burst instead of one per message.
func ExampleSocket_RecvBatch() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	router := zmtp.NewRouter(zmtp.Options{})
	defer router.Close()
	_ = router.Bind("tcp://127.0.0.1:0")
	dealer := zmtp.NewDealer(zmtp.Options{Identity: []byte("d")})
	defer dealer.Close()
	_ = dealer.Connect(router.LastEndpoint())

	for _, task := range []string{"a", "b", "c"} {
		_ = dealer.SendFrames(ctx, []byte(task))
	}
	var batch [16]*zmtp.Msg
	for got := 0; got < 3; {
		n, err := router.RecvBatch(ctx, batch[:])
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, m := range batch[:n] {
			fmt.Printf("%s from %s\n", m.Frames[1], m.Frames[0])
			m.Release()
		}
		got += n
	}
	// Output:
	// a from d
	// b from d
	// c from d
}

// With RouterNotify, a ROUTER's receive loop learns of a peer's departure in order: the
// notification [identity, ""] comes after the peer's last message.
func ExampleMsg_Notification() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	router := zmtp.NewRouter(zmtp.Options{RouterNotify: zmtp.NotifyConnect | zmtp.NotifyDisconnect})
	defer router.Close()
	_ = router.Bind("tcp://127.0.0.1:0")
	dealer := zmtp.NewDealer(zmtp.Options{Identity: []byte("worker-1")})
	_ = dealer.Connect(router.LastEndpoint())
	_ = dealer.SendFrames(ctx, []byte("last words"))

	for {
		m, err := router.Recv(ctx)
		if err != nil {
			return
		}
		switch m.Notification() {
		case zmtp.NotifyConnect:
			fmt.Printf("%s connected\n", m.Frames[0])
		case zmtp.NotifyDisconnect:
			fmt.Printf("%s left\n", m.Frames[0])
			m.Release()
			return
		default:
			fmt.Printf("%s says %q\n", m.Frames[0], m.Frames[1])
			dealer.Close() // leaves right after its message was received
		}
		m.Release()
	}
	// Output:
	// worker-1 connected
	// worker-1 says "last words"
	// worker-1 left
}
