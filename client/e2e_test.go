package client_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/zerotask/zerotask/broker"
	"github.com/zerotask/zerotask/client"
	"github.com/zerotask/zerotask/dispatch"
	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/node"
)

const waitLong = 20 * time.Second

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// cluster is a real broker and node on loopback for end-to-end tests.
type cluster struct {
	b    *broker.Broker
	n    *node.Node
	addr string
}

// startCluster runs a broker on free ports and one node with the builtins (concurrency and
// prefetch as given) until the test ends.
func startCluster(t testing.TB, concurrency, prefetch int) *cluster {
	t.Helper()
	b, err := broker.New(broker.Config{Listen: "tcp://127.0.0.1:0", Pub: "tcp://127.0.0.1:0", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- b.Serve(ctx) }()
	d := dispatch.New()
	if err := node.Builtins(d); err != nil {
		t.Fatal(err)
	}
	n, err := node.New(node.Config{Broker: b.Addr(), Sub: b.PubAddr(), Dispatcher: d,
		Concurrency: concurrency, Prefetch: prefetch, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	nctx, ncancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- n.Serve(nctx) }()
	t.Cleanup(func() {
		ncancel()
		<-ran
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = b.Shutdown(sctx)
		cancel()
		<-served
	})
	testutil.Eventually(t, waitLong, func() bool { return n.Stats().Connected && b.Stats().Nodes == 1 }, "node connected")
	return &cluster{b: b, n: n, addr: b.Addr()}
}

func dialCluster(t testing.TB, cl *cluster, opts ...client.Option) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	c, err := client.Dial(ctx, cl.addr, append([]client.Option{client.WithLogger(quiet)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestEndToEndAdd: client.add(5, 6) is 11 through a real broker and node.
func TestEndToEndAdd(t *testing.T) {
	cl := startCluster(t, 2, 0)
	c := dialCluster(t, cl)
	ctx := testutil.Context(t, waitLong)
	var sum int
	if err := c.Call(ctx, "add", &sum, 5, 6); err != nil || sum != 11 {
		t.Fatalf("add(5, 6) = %d, %v", sum, err)
	}
	var f float64
	if err := c.Call(ctx, "add", &f, 1.5, 2); err != nil || f != 3.5 {
		t.Fatalf("add(1.5, 2) = %v, %v", f, err)
	}
	out, err := c.CallRaw(ctx, nil, "echo", []byte(`[{"raw":[1,2]}]`))
	if err != nil || string(out) != `{"raw":[1,2]}` {
		t.Fatalf("echo raw = %s, %v", out, err)
	}
	// No node serves "nosuch": the call waits in its queue until its deadline. The broker
	// knows that deadline too (timeout_ms), so either the caller's context ends first or the
	// broker's -32005 for the expired task comes first.
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	err = c.Call(short, "nosuch", nil)
	cancel()
	var e *client.Error
	local := errors.Is(err, context.DeadlineExceeded) && !errors.As(err, &e)
	if !local && !errors.Is(err, client.ErrExpired) {
		t.Fatalf("call nobody serves: %v, want the context's deadline or -32005", err)
	}
}

// TestEndToEndStates: QUEUED -> RUNNING -> SUCCESS through a real broker and node.
func TestEndToEndStates(t *testing.T) {
	cl := startCluster(t, 1, 0)
	c := dialCluster(t, cl)
	ctx := testutil.Context(t, waitLong)
	// A first sleep occupies the only worker (and its prefetch slot), so the second waits.
	first, err := c.Submit(ctx, "sleep", []any{300})
	if err != nil {
		t.Fatal(err)
	}
	block, err := c.Submit(ctx, "sleep", []any{300})
	if err != nil {
		t.Fatal(err)
	}
	h, err := c.Submit(ctx, "sleep", []any{200})
	if err != nil {
		t.Fatal(err)
	}
	var states []client.State
	testutil.Eventually(t, waitLong, func() bool {
		s, err := h.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(states) == 0 || states[len(states)-1] != s {
			states = append(states, s)
		}
		return s.Done()
	}, "done")
	want := []client.State{client.StateQueued, client.StateRunning, client.StateSuccess}
	if !slices.Equal(states, want) {
		t.Errorf("states %v, want %v", states, want)
	}
	for _, x := range []*client.Handle{first, block, h} {
		var ms int
		if err := x.Wait(ctx, &ms); err != nil || ms == 0 {
			t.Errorf("Wait = %d, %v", ms, err)
		}
	}
}

// TestEndToEndMap100k: Map over 100,000 inputs, results in input order.
func TestEndToEndMap100k(t *testing.T) {
	cl := startCluster(t, 2, 512)
	c := dialCluster(t, cl)
	ctx := testutil.Context(t, 90*time.Second) // generous: the race detector slows this one down a lot
	const n = 100000
	inputs := make([]any, n)
	for i := range inputs {
		inputs[i] = []int{i, i}
	}
	start := time.Now()
	got, err := client.Map[int](ctx, c, "add", inputs)
	if err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	t.Logf("Map over %d inputs: %v (%.0f tasks/s)", n, el, n/el.Seconds())
	if len(got) != n {
		t.Fatalf("%d results", len(got))
	}
	for i, v := range got {
		if v != 2*i {
			t.Fatalf("result %d = %d, want %d", i, v, 2*i)
		}
	}
}

// TestEndToEndConcurrentCalls: many goroutines on one client, each result to its caller.
func TestEndToEndConcurrentCalls(t *testing.T) {
	cl := startCluster(t, 2, 64)
	c := dialCluster(t, cl)
	ctx := testutil.Context(t, waitLong)
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				var sum int
				if err := c.Call(ctx, "add", &sum, g, i); err != nil || sum != g+i {
					t.Errorf("add(%d, %d) = %d, %v", g, i, sum, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkEndToEndCall is the sequential round trip client -> broker -> node -> broker ->
// client over loopback, with p50/p99.
func BenchmarkEndToEndCall(b *testing.B) {
	cl := startCluster(b, 1, 1)
	c := dialCluster(b, cl)
	ctx := context.Background()
	params := []byte(`[5,6]`)
	dst := make([]byte, 0, 64)
	for range 100 {
		dst, _ = c.CallRaw(ctx, dst[:0], "add", params)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		var err error
		dst, err = c.CallRaw(ctx, dst[:0], "add", params)
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	if string(dst) != "11" {
		b.Fatalf("add = %s", dst)
	}
	reportLatency(b, lat)
}

// BenchmarkEndToEndParallel is many goroutines calling at once through broker and node.
func BenchmarkEndToEndParallel(b *testing.B) {
	cl := startCluster(b, 2, 1024)
	c := dialCluster(b, cl)
	ctx := context.Background()
	params := []byte(`[5,6]`)
	var mu sync.Mutex
	var all []time.Duration
	b.SetParallelism(64)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		dst := make([]byte, 0, 64)
		lat := make([]time.Duration, 0, 1024)
		for pb.Next() {
			t0 := time.Now()
			var err error
			if dst, err = c.CallRaw(ctx, dst[:0], "add", params); err != nil {
				b.Error(err)
				return
			}
			lat = append(lat, time.Since(t0))
		}
		mu.Lock()
		all = append(all, lat...)
		mu.Unlock()
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
	reportLatency(b, all)
}

// BenchmarkEndToEndMap pipelines with Map (1,000 in flight) through broker and node.
func BenchmarkEndToEndMap(b *testing.B) {
	cl := startCluster(b, 2, 1024)
	c := dialCluster(b, cl)
	ctx := context.Background()
	const n = 10000
	inputs := make([]any, n)
	for i := range inputs {
		inputs[i] = []int{i, 1}
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if _, err := client.Map[int](ctx, c, "add", inputs); err != nil {
			b.Fatal(err)
		}
	}
	el := time.Since(start)
	b.ReportMetric(float64(n*b.N)/el.Seconds(), "tasks/s")
	b.ReportMetric(float64(el.Nanoseconds())/float64(n*b.N)/1e3, "us/task")
}

func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-us")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-us")
}
