package node_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/zerotask/zerotask/broker"
	"github.com/zerotask/zerotask/client"
	"github.com/zerotask/zerotask/dispatch"
	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/node"
)

const waitLong = 10 * time.Second

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// startBroker runs a real broker on free loopback ports until the test ends.
func startBroker(t testing.TB) *broker.Broker {
	t.Helper()
	b, err := broker.New(broker.Config{
		Listen:            "tcp://127.0.0.1:0",
		Pub:               "tcp://127.0.0.1:0",
		HeartbeatInterval: time.Second,
		Logger:            quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- b.Serve(ctx) }()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = b.Shutdown(sctx)
		cancel()
		<-served
	})
	return b
}

// startNode runs a node with the builtins (plus extra handlers) against b until stop or the
// end of the test.
func startNode(t testing.TB, b *broker.Broker, cfg node.Config) (n *node.Node, stop func()) {
	t.Helper()
	if cfg.Dispatcher == nil {
		cfg.Dispatcher = dispatch.New()
		if err := node.Builtins(cfg.Dispatcher); err != nil {
			t.Fatal(err)
		}
	}
	cfg.Broker, cfg.Sub, cfg.Logger = b.Addr(), b.PubAddr(), quiet
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = time.Second
	}
	n, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	stop = testutil.Go(t, "node Serve", waitLong, n.Serve)
	testutil.Eventually(t, waitLong, func() bool { return n.Stats().Connected && b.Stats().Nodes >= 1 },
		"node connected to the broker")
	return n, stop
}

func dial(t testing.TB, b *broker.Broker) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	c, err := client.Dial(ctx, b.Addr(), client.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestEndToEndAdd is the README's walkthrough: a broker, a node, client.add(5, 6) prints 11.
func TestEndToEndAdd(t *testing.T) {
	b := startBroker(t)
	startNode(t, b, node.Config{Concurrency: 2})
	c := dial(t, b)
	ctx := testutil.Context(t, waitLong)
	cases := []struct {
		method string
		args   []any
		want   any
	}{
		{"add", []any{5, 6}, 11.0},
		{"add", []any{1.5, 2}, 3.5},
		{"subtract", []any{42, 23}, 19.0},
		{"echo", []any{"hello"}, "hello"},
		{"sleep", []any{10}, 10.0},
	}
	for _, tc := range cases {
		var got any
		if err := c.Call(ctx, tc.method, &got, tc.args...); err != nil || got != tc.want {
			t.Errorf("%s%v = %v, %v; want %v", tc.method, tc.args, got, err, tc.want)
		}
	}
	var sum int
	if err := c.Call(ctx, "add", &sum, client.Named(map[string]int{"a": 5, "b": 6})); err != nil || sum != 11 {
		t.Errorf("add named = %d, %v", sum, err)
	}
	err := c.Call(ctx, "add", nil, "x", 1)
	if !isCode(err, -32602) {
		t.Errorf("add(x, 1): %v, want -32602", err)
	}
}

func isCode(err error, code int) bool {
	var e *client.Error
	return errors.As(err, &e) && e.Code == code
}

// TestEndToEndStates: a submitted sleep goes QUEUED -> RUNNING -> SUCCESS.
func TestEndToEndStates(t *testing.T) {
	b := startBroker(t)
	c := dial(t, b)
	ctx := testutil.Context(t, waitLong)
	// Submitted before any node serves sleep: it waits QUEUED.
	h, err := c.Submit(ctx, "sleep", []any{400})
	if err != nil {
		t.Fatal(err)
	}
	if s, err := h.Status(ctx); err != nil || s != client.StateQueued {
		t.Fatalf("state before any node: %v, %v", s, err)
	}
	startNode(t, b, node.Config{Concurrency: 1, Name: "n-states"})
	testutil.Eventually(t, waitLong, func() bool {
		s, err := h.Status(ctx)
		return err == nil && s == client.StateRunning
	}, "RUNNING")
	var ms int
	if err := h.Wait(ctx, &ms); err != nil || ms != 400 {
		t.Fatalf("Wait = %d, %v", ms, err)
	}
	if s, _ := h.Status(ctx); s != client.StateSuccess {
		t.Errorf("final state %s", s)
	}
	if info := h.Info(); info.Node != "n-states" || info.Attempts != 1 {
		t.Errorf("record %+v", info)
	}
}

// TestEndToEndGracefulStop: a stopping node finishes its running task (its result reaches the
// caller), and the tasks it held but had not started are handed back by its bye and run on
// another node.
func TestEndToEndGracefulStop(t *testing.T) {
	b := startBroker(t)
	n1, stop1 := startNode(t, b, node.Config{Concurrency: 1, Prefetch: 3, FixedCredit: true, Name: "first"})
	c := dial(t, b)
	ctx := testutil.Context(t, waitLong)
	hs := make([]*client.Handle, 4)
	for i := range hs {
		h, err := c.Submit(ctx, "sleep", []any{300})
		if err != nil {
			t.Fatal(err)
		}
		hs[i] = h
	}
	testutil.Eventually(t, waitLong, func() bool { return b.Stats().Running == 4 }, "all four at the first node")
	// The broker counts a task running once it is handed out; the node's worker may not have
	// started it yet, and a task not started when the node stops is handed back, not run.
	testutil.Eventually(t, waitLong, func() bool { return n1.Stats().Running == 1 }, "the first task started: %+v", n1.Stats())
	stopped := make(chan struct{})
	go func() { stop1(); close(stopped) }()
	<-stopped
	if err := hs[0].Wait(ctx, nil); err != nil {
		var states []string
		for _, h := range hs {
			st, serr := h.Status(context.Background())
			states = append(states, fmt.Sprintf("%s %v %v %+v", h.ID(), st, serr, h.Info()))
		}
		t.Fatalf("the running task: %v; tasks: %q; broker %+v", err, states, b.Stats())
	}
	if info := hs[0].Info(); info.Node != "first" {
		t.Errorf("first task ran on %q", info.Node)
	}
	testutil.Eventually(t, waitLong, func() bool { return b.Stats().Queued == 3 }, "three handed back: %+v", b.Stats())
	startNode(t, b, node.Config{Concurrency: 3, Name: "second"})
	for _, h := range hs[1:] {
		if err := h.Wait(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if info := h.Info(); info.Node != "second" {
			t.Errorf("handed-back task ran on %q", info.Node)
		}
	}
}

// TestEndToEndRevoke: revoking a running submitted task cancels its handler on the node.
func TestEndToEndRevoke(t *testing.T) {
	b := startBroker(t)
	n, _ := startNode(t, b, node.Config{Concurrency: 1})
	c := dial(t, b)
	ctx := testutil.Context(t, waitLong)
	h, err := c.Submit(ctx, "sleep", []any{60000})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, waitLong, func() bool { return n.Stats().Running == 1 }, "running")
	if ti, err := c.Revoke(ctx, h.ID()); err != nil || ti.State != client.StateRevoked {
		t.Fatalf("Revoke = %+v, %v", ti, err)
	}
	testutil.Eventually(t, waitLong, func() bool { return n.Stats().Running == 0 && n.Stats().Revoked == 1 },
		"handler cancelled: %+v", n.Stats())
	if err := h.Wait(ctx, nil); !isCode(err, -32004) {
		t.Errorf("Wait on a revoked task: %v", err)
	}
	// The node keeps serving.
	var sum int
	if err := c.Call(ctx, "add", &sum, 5, 6); err != nil || sum != 11 {
		t.Errorf("add after revoke = %d, %v", sum, err)
	}
}

// TestEndToEndBrokerRestart: the node says hello to the restarted broker and serves again.
func TestEndToEndBrokerRestart(t *testing.T) {
	b, err := broker.New(broker.Config{Listen: "tcp://127.0.0.1:0", Pub: "tcp://127.0.0.1:0", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- b.Serve(ctx) }()
	n, _ := startNode(t, b, node.Config{Concurrency: 1})
	addr, pub := b.Addr(), b.PubAddr()
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = b.Shutdown(sctx)
	scancel()
	cancel()
	<-served
	testutil.Eventually(t, waitLong, func() bool { return !n.Stats().Connected }, "node saw the broker go")

	var b2 *broker.Broker
	testutil.Eventually(t, waitLong, func() bool {
		b2, err = broker.New(broker.Config{Listen: addr, Pub: pub, Logger: quiet})
		return err == nil
	}, "rebind %s: %v", addr, err)
	ctx2, cancel2 := context.WithCancel(context.Background())
	served2 := make(chan error, 1)
	go func() { served2 <- b2.Serve(ctx2) }()
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = b2.Shutdown(sctx)
		scancel()
		cancel2()
		<-served2
	}()
	testutil.Eventually(t, waitLong, func() bool { return b2.Stats().Nodes == 1 && n.Stats().Connected }, "node back")
	c := dial(t, b2)
	var sum int
	if err := c.Call(testutil.Context(t, waitLong), "add", &sum, 5, 6); err != nil || sum != 11 {
		t.Fatalf("add after broker restart = %d, %v", sum, err)
	}
}
