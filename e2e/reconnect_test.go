package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/zerotask/zerotask/broker"
	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/node"
)

// callAdd calls add(5, 6) with a short deadline and returns the error (nil means 11 came back).
func callAdd(t testing.TB, call func(ctx context.Context, result *int) error, d time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var sum int
	if err := call(ctx, &sum); err != nil {
		return err
	}
	if sum != 11 {
		t.Fatalf("add(5, 6) = %d, want 11", sum)
	}
	return nil
}

// TestClientSurvivesBrokerRestart closes the broker under a connected client: calls fail; a new
// broker on the same endpoint comes up: the same client works again, without being rebuilt.
func TestClientSurvivesBrokerRestart(t *testing.T) {
	hb := 100 * time.Millisecond
	b1, stop1 := startBroker(t, broker.Config{HeartbeatInterval: hb})
	router, pub := b1.Addr(), b1.PubAddr()
	n, _ := startNode(t, b1, node.Config{Concurrency: 2, HeartbeatInterval: hb})
	waitConnected(t, n)
	c := dial(t, router)
	add := func(ctx context.Context, sum *int) error { return c.Call(ctx, "add", sum, 5, 6) }
	if err := callAdd(t, add, 10*time.Second); err != nil {
		t.Fatalf("before the restart: %v", err)
	}

	stop1()
	if err := callAdd(t, add, 300*time.Millisecond); err == nil {
		t.Fatal("a call succeeded while no broker was up")
	}

	// The same endpoints again (the ports were just freed by the first broker).
	startBroker(t, broker.Config{Listen: router, Pub: pub, HeartbeatInterval: hb})
	var last error
	ok := testutil.Poll(20*time.Second, func() bool {
		last = callAdd(t, add, 500*time.Millisecond)
		return last == nil
	})
	if !ok {
		t.Fatalf("the client never worked again after the broker restarted: last error %v", last)
	}
}

// TestNodeStartsBeforeBroker starts a node pointing at an endpoint where nothing listens yet,
// then the broker there: the node connects by itself and serves.
func TestNodeStartsBeforeBroker(t *testing.T) {
	router, pub := testutil.FreeEndpoint(t), testutil.FreeEndpoint(t)
	n, _ := startNode(t, nil, node.Config{Broker: router, Sub: pub, Concurrency: 2})
	if n.Stats().Connected {
		t.Fatal("node connected with no broker up")
	}
	b, _ := startBroker(t, broker.Config{Listen: router, Pub: pub})
	waitConnected(t, n)
	c := dial(t, b.Addr())
	if err := callAdd(t, func(ctx context.Context, sum *int) error { return c.Call(ctx, "add", sum, 5, 6) }, 10*time.Second); err != nil {
		t.Fatalf("add through a node that started first: %v", err)
	}
}
