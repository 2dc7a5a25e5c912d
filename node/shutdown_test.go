package node_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/zerotask/zerotask/dispatch"
	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/node"
)

// TestShutdown: Node has a Broker's lifecycle. Shutdown before Serve makes Serve return
// ErrServerClosed at once; Shutdown of a serving node whose context ends while a task still
// runs cancels that task's context, returns the context's error, and Serve returns
// ErrServerClosed.
func TestShutdown(t *testing.T) {
	b := startBroker(t)

	idle, err := node.New(node.Config{Broker: b.Addr(), Sub: "none", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := idle.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown before Serve: %v", err)
	}
	if err := idle.Serve(context.Background()); !errors.Is(err, node.ErrServerClosed) {
		t.Fatalf("Serve after Shutdown: %v, want ErrServerClosed", err)
	}

	d := dispatch.New()
	started := make(chan struct{}, 1)
	ended := make(chan error, 1)
	d.MustRegister("block", dispatch.Proc0(func(ctx context.Context) error {
		started <- struct{}{}
		<-ctx.Done()
		ended <- ctx.Err()
		return ctx.Err()
	}))
	n, err := node.New(node.Config{Broker: b.Addr(), Sub: b.PubAddr(), Dispatcher: d, GracePeriod: time.Hour, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- n.Serve(context.Background()) }()
	testutil.Eventually(t, waitLong, func() bool { return n.Stats().Connected }, "node connected")
	c := dial(t, b)
	ctx := testutil.Context(t, waitLong)
	if _, err := c.Submit(ctx, "block", nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatal("task never started")
	}
	sctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := n.Shutdown(sctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown with a running task past its context: %v, want DeadlineExceeded", err)
	}
	select {
	case err := <-ended:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("running task's context ended with %v, want Canceled", err)
		}
	default:
		t.Error("the running task's context did not end with Shutdown's")
	}
	select {
	case err := <-served:
		if !errors.Is(err, node.ErrServerClosed) || errors.Is(err, context.Canceled) {
			t.Errorf("Serve after Shutdown: %v, want ErrServerClosed alone", err)
		}
	case <-time.After(waitLong):
		t.Fatal("Serve did not return after Shutdown")
	}
}
