package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zerotask/zerotask/dispatch"
	"github.com/zerotask/zerotask/internal/testutil"
)

// TestNewConfig: defaults, "none" for the PUB, bad values, and a bind failure.
func TestNewConfig(t *testing.T) {
	b, err := New(Config{Listen: "tcp://127.0.0.1:0", Pub: PubDisabled})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.Addr(), "tcp://127.0.0.1:") || b.PubAddr() != "" || len(b.ID()) != 8 {
		t.Fatalf("addr %q pub %q id %q", b.Addr(), b.PubAddr(), b.ID())
	}
	cfg := b.cfg
	if cfg.MaxQueued != DefaultMaxQueued || cfg.MaxBatch != DefaultMaxBatch || cfg.ResultTTL != time.Hour ||
		cfg.HeartbeatInterval != time.Second || cfg.Dispatcher != dispatch.Default || cfg.MaxInFlightPerClient != 10_000 {
		t.Fatalf("defaults %+v", cfg)
	}
	if err := b.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown before Serve: %v", err)
	}
	if err := b.Serve(context.Background()); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
	for _, bad := range []Config{
		{Listen: "tcp://127.0.0.1:0", Pub: PubDisabled, MaxQueued: maxQueuedCap + 1},
		{Listen: "tcp://127.0.0.1:0", Pub: PubDisabled, MaxMsgSize: -1},
		{Listen: "nope://x", Pub: PubDisabled},
		{Listen: "tcp://127.0.0.1:0", Pub: "nope://x"},
	} {
		if b, err := New(bad); err == nil {
			b.Shutdown(context.Background())
			t.Fatalf("New(%+v) succeeded", bad)
		}
	}
}

// TestServeContext: Serve returns when its context ends, with an error matching both
// ErrServerClosed and the context's error; a second Serve is refused.
func TestServeContext(t *testing.T) {
	b, err := New(Config{Listen: "tcp://127.0.0.1:0", Pub: "tcp://127.0.0.1:0", Dispatcher: dispatch.New()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- b.Serve(ctx) }()
	c := dealer(t, b)
	if got := c.call(`{"jsonrpc":"2.0","id":1,"method":"broker.ping"}`); !strings.Contains(got, "pong") {
		t.Fatalf("ping %s", got)
	}
	if err := b.Serve(ctx); !errors.Is(err, ErrServing) {
		t.Fatalf("second Serve: %v", err)
	}
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrServerClosed) || !errors.Is(err, context.Canceled) {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("Serve did not return")
	}
}

// TestShutdown: new tasks are refused with -32003, queued ones answered -32003, nodes and
// clients told on the control topic, running tasks finish, then Serve returns
// ErrServerClosed.
func TestShutdown(t *testing.T) {
	b, err := New(Config{Listen: "tcp://127.0.0.1:0", Pub: "tcp://127.0.0.1:0", Dispatcher: dispatch.New()})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- b.Serve(context.Background()) }()
	sub := subscribe(t, b, "control")
	n := newNode(t, b, "n", "work")
	n.credit(1)
	c := dealer(t, b)
	c.send(`{"jsonrpc":"2.0","id":"running","method":"work"}`)
	c.send(`{"jsonrpc":"2.0","id":"queued","method":"work"}`)
	ts := n.collect(1)
	testutil.Eventually(t, wait, func() bool { return b.Stats().Queued == 1 && b.pub.Stats().Peers == 1 }, "one queued, SUB connected")

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		shut <- b.Shutdown(ctx)
	}()
	if r := decodeResp(t, c.recv()); string(r.ID) != `"queued"` || r.Error == nil || r.Error.Code != CodeShuttingDown {
		t.Fatalf("queued call: %+v", r)
	}
	// Clients and nodes are told on the ROUTER too.
	if got := c.recv(); got != string(shutdownNotice) {
		t.Fatalf("notice to the client %s", got)
	}
	if got := n.recv(); got != string(shutdownNotice) {
		t.Fatalf("notice to the node %s", got)
	}
	sub.until(func(topic, body string) bool { return topic == "control" && strings.Contains(body, "broker.shutdown") })
	if code := errCode(t, c.call(`{"jsonrpc":"2.0","id":"new","method":"work"}`)); code != CodeShuttingDown {
		t.Fatalf("new call: code %d", code)
	}
	if code := errCode(t, c.call(`{"jsonrpc":"2.0","id":"s","method":"broker.submit","params":{"method":"work"}}`)); code != CodeShuttingDown {
		t.Fatalf("submit: code %d", code)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v while a task runs", err)
	default:
	}
	n.result(ts[0].ID, `"done"`)
	if got := c.recv(); got != `{"jsonrpc":"2.0","id":"running","result":"done"}` {
		t.Fatalf("running call: %s", got)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-errc; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
}

// TestShutdownDeadline: when Shutdown's context ends first, the calls still running are
// answered -32003 and Shutdown returns the context's error.
func TestShutdownDeadline(t *testing.T) {
	b, err := New(Config{Listen: "tcp://127.0.0.1:0", Pub: PubDisabled, Dispatcher: dispatch.New()})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- b.Serve(context.Background()) }()
	n := newNode(t, b, "n", "work")
	n.credit(1)
	c := dealer(t, b)
	c.send(`{"jsonrpc":"2.0","id":1,"method":"work"}`)
	n.collect(1)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := b.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-errc; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
}

// TestPubTopics: tasks.<method> when tasks wait, state changes of submitted tasks, batched
// per tick, seen by a SUB.
func TestPubTopics(t *testing.T) {
	b := startBroker(t, Config{})
	sub := subscribe(t, b, "state", "tasks.")
	testutil.Eventually(t, wait, func() bool { return b.pub.Stats().Peers == 1 }, "SUB connected")
	c := dealer(t, b)
	// The subscription reaches the PUB shortly after the connection: probe until seen.
	probe := time.Now().Add(wait)
	for {
		submit(t, c, "probe", "[]")
		if _, _, ok := sub.next(50 * time.Millisecond); ok {
			break
		}
		if time.Now().After(probe) {
			t.Fatal("no PUB message")
		}
	}
	id := submit(t, c, "work", "[1]")
	topic, body := sub.until(func(topic, body string) bool { return topic == "tasks.work" })
	if body != `{"jsonrpc":"2.0","method":"broker.tasks","params":{"method":"work","queued":1}}` {
		t.Fatalf("%s: %s", topic, body)
	}
	// The stream names tasks by their id without its tag: a subscriber cannot act on them.
	stateOf := func(state string) string {
		return fmt.Sprintf(`{"jsonrpc":"2.0","method":"broker.state","params":{"id":%q,"state":%q,"method":"work"}}`, taskName(id), state)
	}
	n := newNode(t, b, "n", "work")
	n.credit(1)
	ts := n.collect(1)
	n.send(fmt.Sprintf(`{"jsonrpc":"2.0","method":"broker.running","params":[%s]}`, ts[0].ID))
	sub.until(func(topic, body string) bool { return topic == "state" && strings.Contains(body, stateOf("RUNNING")) })
	n.result(ts[0].ID, "1")
	sub.until(func(topic, body string) bool { return topic == "state" && strings.Contains(body, stateOf("SUCCESS")) })
	// Several changes in one tick travel in one array.
	var ids []string
	for i := 0; i < 3; i++ {
		ids = append(ids, submit(t, c, "later", "[]"))
	}
	_, body = sub.until(func(topic, body string) bool { return topic == "state" && strings.Contains(body, taskName(ids[2])) })
	if !strings.HasPrefix(body, "[") {
		t.Fatalf("state body %s", body)
	}
}
