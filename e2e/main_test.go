package e2e

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/zerotask/zerotask/broker"
	"github.com/zerotask/zerotask/client"
	"github.com/zerotask/zerotask/dispatch"
	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/node"
)

// zerotaskBin is the binary built by TestMain from ./cmd/zerotask.
var zerotaskBin string

func TestMain(m *testing.M) {
	if name := os.Getenv(attackEnv); name != "" { // a child of TestAttackTable
		os.Exit(runAttack(name))
	}
	if router := os.Getenv(goodClientEnv); router != "" { // the good client of TestAttackTable
		os.Exit(runGoodClient(router))
	}
	dir, err := os.MkdirTemp("", "zerotask-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: temp dir:", err)
		os.Exit(1)
	}
	zerotaskBin = filepath.Join(dir, "zerotask")
	if runtime.GOOS == "windows" {
		zerotaskBin += ".exe"
	}
	build := exec.Command("go", "build", "-o", zerotaskBin, "github.com/zerotask/zerotask/cmd/zerotask")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build ./cmd/zerotask: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	testutil.VerifyTestMain(m, 5*time.Second, func() { os.RemoveAll(dir) })
}

// testLogger sends the roles' logs to the test log at warn level and above (debug with -v and
// ZEROTASK_DEBUG=1), so that a failure shows what the broker and nodes saw.
func testLogger(t testing.TB) *slog.Logger {
	lvl := slog.LevelWarn
	if os.Getenv("ZEROTASK_DEBUG") != "" {
		lvl = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: lvl}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// startBroker starts a broker on 127.0.0.1 (port 0 unless cfg says otherwise) and shuts it down
// when the test ends. stop shuts it down earlier; it is safe to call twice.
func startBroker(t testing.TB, cfg broker.Config) (b *broker.Broker, stop func()) {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "tcp://127.0.0.1:0"
	}
	if cfg.Pub == "" {
		cfg.Pub = "tcp://127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t).With("role", "broker")
	}
	b, err := broker.New(cfg)
	if err != nil {
		t.Fatalf("broker.New: %v", err)
	}
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- b.Serve(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		if err := b.Shutdown(sctx); err != nil && !errors.Is(err, broker.ErrServerClosed) {
			t.Errorf("broker.Shutdown: %v", err)
		}
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, broker.ErrServerClosed) && !errors.Is(err, context.Canceled) {
				t.Errorf("broker.Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("broker.Serve did not return 10s after Shutdown")
		}
	}
	t.Cleanup(stop)
	return b, stop
}

// builtins returns a dispatcher serving node.Builtins (add, subtract, echo, sleep).
func builtins(t testing.TB) *dispatch.Dispatcher {
	t.Helper()
	d := dispatch.New()
	if err := node.Builtins(d); err != nil {
		t.Fatalf("node.Builtins: %v", err)
	}
	return d
}

// startNode starts a node for broker b (its ROUTER and PUB endpoints unless cfg says otherwise)
// serving node.Builtins unless cfg has a dispatcher, and stops it when the test ends.
func startNode(t testing.TB, b *broker.Broker, cfg node.Config) (n *node.Node, stop func()) {
	t.Helper()
	if cfg.Broker == "" {
		cfg.Broker = b.Addr()
	}
	if cfg.Sub == "" {
		cfg.Sub = b.PubAddr()
	}
	if cfg.Dispatcher == nil {
		cfg.Dispatcher = builtins(t)
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t).With("role", "node", "name", cfg.Name)
	}
	if cfg.GracePeriod == 0 {
		cfg.GracePeriod = 5 * time.Second
	}
	n, err := node.New(cfg)
	if err != nil {
		t.Fatalf("node.New: %v", err)
	}
	stop = testutil.Go(t, "node.Serve", 15*time.Second, n.Serve)
	return n, stop
}

// waitConnected waits until the node has said hello to a broker.
func waitConnected(t testing.TB, n *node.Node) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, func() bool { return n.Stats().Connected }, "node never connected")
}

// dial connects a client to endpoint and closes it when the test ends.
func dial(t testing.TB, endpoint string, opts ...client.Option) *client.Client {
	t.Helper()
	opts = append([]client.Option{client.WithLogger(testLogger(t).With("role", "client"))}, opts...)
	c, err := client.Dial(testutil.Context(t, 10*time.Second), endpoint, opts...)
	if err != nil {
		t.Fatalf("client.Dial(%s): %v", endpoint, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// system is a broker with one connected node and a client: the seed walkthrough's setup.
type system struct {
	b *broker.Broker
	n *node.Node
	c *client.Client
}

func startSystem(t testing.TB, ncfg node.Config) system {
	t.Helper()
	b, _ := startBroker(t, broker.Config{})
	n, _ := startNode(t, b, ncfg)
	waitConnected(t, n)
	return system{b: b, n: n, c: dial(t, b.Addr())}
}
