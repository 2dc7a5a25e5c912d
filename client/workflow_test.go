package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerotask/zerotask/broker"
	"github.com/zerotask/zerotask/client"
	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/dispatch"
	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/node"
)

// flowHandlers are the test tasks of the workflow tests besides the node's builtins.
type flowHandlers struct {
	started   atomic.Int64 // block handlers started
	cancelled atomic.Int64 // block handlers that saw their context end
}

var errBoom = codec.NewError(-32000, "boom", nil)

func (fh *flowHandlers) register(t testing.TB, d *dispatch.Dispatcher) {
	t.Helper()
	if err := node.Builtins(d); err != nil {
		t.Fatal(err)
	}
	// fail always fails with errBoom.
	d.MustRegister("fail", dispatch.HandlerFunc(func(context.Context, []byte, []byte) ([]byte, error) {
		return nil, errBoom
	}))
	// push: [i] gives [i]; [i, list] gives list with i appended (the order a chain ran in).
	d.MustRegister("push", dispatch.HandlerFunc(func(_ context.Context, dst, params []byte) ([]byte, error) {
		var p []json.RawMessage
		var i int
		var list []int
		if json.Unmarshal(params, &p) != nil || len(p) < 1 || len(p) > 2 || json.Unmarshal(p[0], &i) != nil ||
			(len(p) == 2 && json.Unmarshal(p[1], &list) != nil) {
			return dst, codec.NewError(codec.CodeInvalidParams, "push: [i] or [i, list]", nil)
		}
		b, err := json.Marshal(append(list, i))
		return append(dst, b...), err
	}))
	// block runs until its context ends.
	d.MustRegister("block", dispatch.HandlerFunc(func(ctx context.Context, dst, _ []byte) ([]byte, error) {
		fh.started.Add(1)
		<-ctx.Done()
		fh.cancelled.Add(1)
		return dst, ctx.Err()
	}))
}

// startFlowCluster runs a broker (cfg on loopback) and one node with the builtins and the
// workflow test tasks until the test ends.
func startFlowCluster(t testing.TB, cfg broker.Config, ncfg node.Config) (*cluster, *flowHandlers) {
	t.Helper()
	cfg.Listen, cfg.Pub, cfg.Logger = "tcp://127.0.0.1:0", "tcp://127.0.0.1:0", quiet
	b, err := broker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- b.Serve(ctx) }()
	fh := &flowHandlers{}
	d := dispatch.New()
	fh.register(t, d)
	ncfg.Broker, ncfg.Sub, ncfg.Dispatcher, ncfg.Logger = b.Addr(), b.PubAddr(), d, quiet
	n, err := node.New(ncfg)
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
	return &cluster{b: b, n: n, addr: b.Addr()}, fh
}

func add(a ...any) *client.Flow { return client.Task("add", a) }

// sameJSON reports whether a and b are the same JSON value.
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}

// TestWorkflowShapes: every shape, nested up to three levels, gives the documented result.
func TestWorkflowShapes(t *testing.T) {
	cl, _ := startFlowCluster(t, broker.Config{}, node.Config{Concurrency: 4})
	c := dialCluster(t, cl)
	ctx := testutil.Context(t, waitLong)
	for _, tc := range []struct {
		name string
		g    *client.Flow
		want string
	}{
		{"task", add(1, 2), `3`},
		{"chain", client.Chain(add(1, 2), add(10), add(100)), `113`},
		{"chain passes to a step without params", client.Chain(add(1, 2), client.Task("echo", nil)), `3`},
		{"group", client.Group(add(1, 2), add(3, 4), add(5, 6)), `[3,7,11]`},
		{"group of one", client.Group(add(1, 2)), `[3]`},
		{"chord", client.Chord([]*client.Flow{add(1, 2), add(3, 4)}, client.Task("sum", nil)), `10`},
		{"chord callback with params", client.Chord([]*client.Flow{add(1, 2)}, client.Task("echo", []any{"x"})), `["x",[3]]`},
		{"chain into group: every member gets the result", client.Chain(add(1, 2), client.Group(add(10), add(20))), `[13,23]`},
		{"group of chains", client.Group(client.Chain(add(1, 1), add(1)), client.Chain(add(2, 2), add(2))), `[3,6]`},
		{"3 levels: group of chain of group, and chord of chains", client.Group(
			client.Chain(add(1, 2), client.Group(add(1), client.Task("echo", nil))),
			client.Chord([]*client.Flow{client.Chain(add(1, 1), add(1)), add(5, 5)}, client.Task("sum", nil)),
		), `[[4,3],13]`},
		{"3 levels: chord of chords", client.Chord([]*client.Flow{
			client.Chord([]*client.Flow{add(1, 2), add(3, 4)}, client.Task("sum", nil)),
			client.Chord([]*client.Flow{add(5, 6)}, client.Task("sum", nil)),
		}, client.Task("sum", nil)), `21`},
		{"3 levels: chain of chord of groups", client.Chain(
			client.Chord([]*client.Flow{client.Group(add(1, 1), add(2, 2)), client.Group(add(3, 3))}, client.Task("echo", nil)),
			client.Task("echo", []any{"end"}),
		), `["end",[[2,4],[6]]]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := c.SubmitWorkflow(ctx, tc.g)
			if err != nil {
				t.Fatal(err)
			}
			var got json.RawMessage
			if err := h.Wait(ctx, &got); err != nil {
				t.Fatalf("Wait: %v", err)
			}
			if !sameJSON(t, got, []byte(tc.want)) {
				t.Fatalf("result %s, want %s", got, tc.want)
			}
			wi, err := c.WorkflowStatus(ctx, h.ID())
			if err != nil {
				t.Fatal(err)
			}
			if wi.State != client.StateSuccess || wi.Method != "workflow" || len(wi.Steps) == 0 || wi.Counts[client.StateSuccess] != len(wi.Steps) {
				t.Fatalf("record %+v", wi)
			}
			for _, s := range wi.Steps {
				ti, err := c.Status(ctx, s.ID)
				if err != nil || ti.State != client.StateSuccess || ti.Method != s.Method {
					t.Fatalf("step %+v: its own record %+v, %v", s, ti, err)
				}
			}
		})
	}
}

// TestWorkflowFailurePolicies: each shape with a failing step, under both policies.
func TestWorkflowFailurePolicies(t *testing.T) {
	cl, _ := startFlowCluster(t, broker.Config{}, node.Config{Concurrency: 4})
	c := dialCluster(t, cl)
	ctx := testutil.Context(t, waitLong)
	boom := client.Task("fail", nil)
	inPlace := `{"error":{"code":-32000,"message":"boom"}}`
	for _, tc := range []struct {
		name      string
		g         *client.Flow
		continue_ bool
		want      string         // the result; "" when the graph fails with errBoom
		steps     []client.State // the steps' final states, in graph order
	}{
		{"chain, fail fast", client.Chain(add(1, 2), boom, add(1)), false, "",
			[]client.State{client.StateSuccess, client.StateFailure, client.StateRevoked}},
		{"chain, continue: a chain fails all the same", client.Chain(add(1, 2), boom, add(1)), true, "",
			[]client.State{client.StateSuccess, client.StateFailure, client.StateRevoked}},
		{"group, fail fast", client.Group(boom, client.Task("block", nil)), false, "",
			[]client.State{client.StateFailure, client.StateRevoked}},
		{"group, continue: the error in place", client.Group(add(1, 2), boom), true, `[3,` + inPlace + `]`,
			[]client.State{client.StateSuccess, client.StateFailure}},
		{"chord, fail fast: no callback", client.Chord([]*client.Flow{add(1, 2), boom}, client.Task("echo", nil)), false, "",
			[]client.State{client.StateSuccess, client.StateFailure, client.StateRevoked}},
		{"chord, continue: callback with the error in place", client.Chord([]*client.Flow{add(1, 2), boom}, client.Task("echo", nil)), true,
			`[3,` + inPlace + `]`, []client.State{client.StateSuccess, client.StateFailure, client.StateSuccess}},
		{"chord, failing callback", client.Chord([]*client.Flow{add(1, 2)}, boom), true, "",
			[]client.State{client.StateSuccess, client.StateFailure}},
		{"3 levels, continue: a failed chain in place in a chord", client.Chord([]*client.Flow{
			client.Group(client.Chain(boom, add(1)), add(1, 1)), add(2, 2)}, client.Task("echo", nil)), true,
			`[[` + inPlace + `,2],4]`, []client.State{client.StateFailure, client.StateRevoked, client.StateSuccess, client.StateSuccess, client.StateSuccess}},
		{"3 levels, fail fast", client.Chord([]*client.Flow{
			client.Group(client.Chain(boom, add(1)), add(1, 1)), add(2, 2)}, client.Task("echo", nil)), false,
			"", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []client.SubmitOption
			if tc.continue_ {
				opts = append(opts, client.ContinueOnError())
			}
			h, err := c.SubmitWorkflow(ctx, tc.g, opts...)
			if err != nil {
				t.Fatal(err)
			}
			var got json.RawMessage
			err = h.Wait(ctx, &got)
			if tc.want == "" {
				if !errors.Is(err, errBoom) {
					t.Fatalf("Wait: %s, %v; want the step's error", got, err)
				}
			} else if err != nil || !sameJSON(t, got, []byte(tc.want)) {
				t.Fatalf("Wait: %s, %v; want %s", got, err, tc.want)
			}
			if tc.steps == nil {
				return
			}
			var wi client.WorkflowInfo
			testutil.Eventually(t, waitLong, func() bool {
				wi, err = c.WorkflowStatus(ctx, h.ID())
				if err != nil || len(wi.Steps) != len(tc.steps) {
					return false
				}
				for i, s := range wi.Steps {
					if s.State != tc.steps[i] {
						return false
					}
				}
				return true
			}, "step states %+v, want %v", &wi, tc.steps)
		})
	}
}

// TestWorkflowChain1000InOrder: a chain of 1,000 steps runs them in order.
func TestWorkflowChain1000InOrder(t *testing.T) {
	cl, _ := startFlowCluster(t, broker.Config{}, node.Config{Concurrency: 4})
	c := dialCluster(t, cl)
	ctx := testutil.Context(t, waitLong)
	const n = 1000
	steps := make([]*client.Flow, n)
	for i := range steps {
		steps[i] = client.Task("push", []any{i})
	}
	h, err := c.SubmitWorkflow(ctx, client.Chain(steps...))
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	if err := h.Wait(ctx, &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("%d steps ran, want %d", len(got), n)
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("step %d ran at place %d: %v", v, i, got[:i+1])
		}
	}
}

// TestMapReduce10k: a chord of 10,000 add members with a summing callback gives the sum.
func TestMapReduce10k(t *testing.T) {
	cl, _ := startFlowCluster(t, broker.Config{}, node.Config{Concurrency: 4})
	c := dialCluster(t, cl)
	ctx := testutil.Context(t, waitLong)
	const n = 10_000
	inputs := make([][2]int, n)
	want := 0
	for i := range inputs {
		inputs[i] = [2]int{i, 1}
		want += i + 1
	}
	got, err := client.MapReduce[int](ctx, c, "add", inputs, "sum")
	if err != nil || got != want {
		t.Fatalf("MapReduce = %d, %v; want %d", got, err, want)
	}
}

// TestWorkflowRevokeCascades: revoking a graph of 1,000 queued and 10 running members ends
// every step REVOKED and the running handlers see their context cancelled.
func TestWorkflowRevokeCascades(t *testing.T) {
	cl, fh := startFlowCluster(t, broker.Config{}, node.Config{Concurrency: 10, Prefetch: -1})
	c := dialCluster(t, cl)
	ctx := testutil.Context(t, waitLong)
	members := make([]*client.Flow, 1010)
	for i := range members {
		members[i] = client.Task("block", nil)
	}
	h, err := c.SubmitWorkflow(ctx, client.Chord(members, client.Task("sum", nil)))
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, waitLong, func() bool { return fh.started.Load() == 10 }, "10 handlers running")
	wi, err := c.WorkflowStatus(ctx, h.ID())
	if err != nil || wi.Counts[client.StateRunning]+wi.Counts[client.StateQueued] != 1010 || wi.Counts[client.StatePending] != 1 {
		t.Fatalf("before the revoke: %+v, %v", wi.Counts, err)
	}
	ti, err := c.Revoke(ctx, h.ID())
	if err != nil || ti.State != client.StateRevoked {
		t.Fatalf("Revoke: %+v, %v", ti, err)
	}
	if err := h.Wait(ctx, nil); !errors.Is(err, client.ErrRevoked) {
		t.Fatalf("Wait: %v, want ErrRevoked", err)
	}
	testutil.Eventually(t, waitLong, func() bool { return fh.cancelled.Load() == 10 }, "10 handlers cancelled (%d)", fh.cancelled.Load())
	wi, err = c.WorkflowStatus(ctx, h.ID())
	if err != nil || wi.Counts[client.StateRevoked] != 1011 || len(wi.Steps) != 1011 {
		t.Fatalf("after the revoke: %+v, %v", wi.Counts, err)
	}
	if fh.started.Load() != 10 {
		t.Fatalf("%d handlers started, want 10: a revoked step ran", fh.started.Load())
	}
}

// TestWorkflowKey: a second submit with the graph's key gets the first graph's id.
func TestWorkflowKey(t *testing.T) {
	cl, _ := startFlowCluster(t, broker.Config{}, node.Config{Concurrency: 2})
	c := dialCluster(t, cl)
	ctx := testutil.Context(t, waitLong)
	g := client.Chain(client.Task("push", []any{1}), client.Task("push", []any{2}))
	h1, err := c.SubmitWorkflow(ctx, g, client.Key("k1"))
	if err != nil {
		t.Fatal(err)
	}
	h2, err := c.SubmitWorkflow(ctx, g, client.Key("k1"))
	if err != nil || h2.ID() != h1.ID() {
		t.Fatalf("second submit: %v, %v; want id %s", h2, err, h1.ID())
	}
	if err := h1.Wait(ctx, nil); err != nil {
		t.Fatal(err)
	}
	h3, err := c.SubmitWorkflow(ctx, g, client.Key("k1"))
	if err != nil || h3.ID() != h1.ID() {
		t.Fatalf("submit after the end: %v, %v; want id %s", h3, err, h1.ID())
	}
	if st := cl.b.Stats(); st.Submitted != 3 {
		t.Fatalf("submitted %d (the graph and its 2 steps), want 3", st.Submitted)
	}
}

// BenchmarkMapReduce10k runs a 10,000-member chord of add with a summing callback and
// client.Map over the same inputs in the same run, and reports the chord's rate as a share of
// Map's (the acceptance bound is 0.5).
func BenchmarkMapReduce10k(b *testing.B) {
	cl, _ := startFlowCluster(b, broker.Config{}, node.Config{Concurrency: 2, Prefetch: 1024})
	c := dialCluster(b, cl)
	ctx := context.Background()
	const n = 10_000
	inputs := make([][2]int, n)
	want := 0
	for i := range inputs {
		inputs[i] = [2]int{i, 1}
		want += i + 1
	}
	var tMap, tChord time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		out, err := client.Map[int](ctx, c, "add", inputs)
		tMap += time.Since(start)
		if err != nil || len(out) != n {
			b.Fatal(err)
		}
		start = time.Now()
		sum, err := client.MapReduce[int](ctx, c, "add", inputs, "sum")
		tChord += time.Since(start)
		if err != nil || sum != want {
			b.Fatalf("sum %d, %v; want %d", sum, err, want)
		}
	}
	b.ReportMetric(float64(n*b.N)/tMap.Seconds(), "map-tasks/s")
	b.ReportMetric(float64(n*b.N)/tChord.Seconds(), "chord-tasks/s")
	b.ReportMetric(tMap.Seconds()/tChord.Seconds(), "chord/map")
}
