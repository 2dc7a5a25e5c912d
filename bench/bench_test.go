package bench

import (
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerotask/zerotask/protocol"
)

// startEnv starts an in-process broker and nodes for a benchmark or test and closes them at
// the end.
func startEnv(tb testing.TB, nodes int) *Env {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	env, err := NewEnv(ctx, EnvConfig{Nodes: nodes})
	if err != nil {
		tb.Fatalf("NewEnv: %v", err)
	}
	tb.Cleanup(func() {
		if err := env.Close(); err != nil {
			tb.Errorf("Env.Close: %v", err)
		}
	})
	return env
}

// BenchmarkEndToEnd measures add(5, 6) through an in-process broker and node (default flags)
// over tcp loopback: sync is one call in flight (ns/op is the round trip);
// async keeps inflight calls in flight, through client.Map from GOMAXPROCS goroutines
// (pipeline=map) or one CallRaw goroutine per call (pipeline=calls), and ns/op is the cost per
// task at throughput; notify is fire-and-forget, counted as the node completes. allocs/op
// counts the whole process: client, broker and node.
func BenchmarkEndToEnd(b *testing.B) {
	env := startEnv(b, 1)
	params := DefaultParams("add")
	b.Run("sync", func(b *testing.B) {
		var h Histogram
		var dst []byte
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for b.Loop() {
			t0 := time.Now()
			var err error
			if dst, err = env.Client.CallRaw(ctx, dst[:0], "add", params); err != nil {
				b.Fatal(err)
			}
			h.Record(time.Since(t0))
		}
		el := time.Since(start)
		b.ReportMetric(float64(h.Count())/el.Seconds(), "tasks/s")
		b.ReportMetric(float64(h.Quantile(0.5))/1e3, "p50_us")
		b.ReportMetric(float64(h.Quantile(0.99))/1e3, "p99_us")
	})
	for _, pipeline := range []string{PipelineMap, PipelineCalls} {
		for _, conc := range []int{16, 256, 4096} {
			if pipeline == PipelineCalls && conc > 256 {
				continue // a goroutine per call: past a few hundred the scheduler is what is measured
			}
			b.Run("async/pipeline="+pipeline+"/inflight="+itoa(conc), func(b *testing.B) {
				b.ReportAllocs()
				b.ResetTimer()
				res, err := env.Async(context.Background(), Load{Method: "add", Params: params, Tasks: int64(b.N), Concurrency: conc, Pipeline: pipeline})
				if err != nil {
					b.Fatal(err)
				}
				if res.Errors > 0 || res.Tasks != int64(b.N) {
					b.Fatalf("%d tasks, %d errors, want %d tasks", res.Tasks, res.Errors, b.N)
				}
				b.ReportMetric(res.TasksPerSec(), "tasks/s")
				if res.Hist != nil {
					b.ReportMetric(float64(res.Latency.P50)/1e3, "p50_us")
					b.ReportMetric(float64(res.Latency.P99)/1e3, "p99_us")
				}
			})
		}
	}
	b.Run("notify", func(b *testing.B) {
		b.ReportAllocs()
		b.ResetTimer()
		res, err := env.Notify(context.Background(), Load{Method: "add", Params: params, Tasks: int64(b.N)})
		if err != nil {
			b.Fatal(err)
		}
		if res.Errors > 0 || res.Tasks != int64(b.N) {
			b.Fatalf("%d tasks, %d errors, want %d tasks", res.Tasks, res.Errors, b.N)
		}
		b.ReportMetric(res.TasksPerSec(), "tasks/s")
	})
}

// BenchmarkEcho measures sequential round trips of echo with a string argument of each size:
// the payload crosses client, broker and node twice (request and result), raw.
func BenchmarkEcho(b *testing.B) {
	env := startEnv(b, 1)
	for _, size := range []int{64, 1024, 16 << 10} {
		b.Run("size="+itoa(size), func(b *testing.B) {
			params := make([]byte, 0, size+4)
			params = append(params, `["`...)
			for range size {
				params = append(params, 'x')
			}
			params = append(params, `"]`...)
			var dst []byte
			ctx := context.Background()
			b.SetBytes(int64(2 * size))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if dst, err = env.Client.CallRaw(ctx, dst[:0], "echo", params); err != nil {
					b.Fatal(err)
				}
				if len(dst) != size+2 {
					b.Fatalf("echo returned %d bytes, want %d", len(dst), size+2)
				}
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestRunPhases(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tests := []struct {
		name     string
		load     Load
		inFlight []int
	}{
		{"by count", Load{Tasks: 500, Concurrency: 8}, nil},
		{"by duration", Load{Duration: 200 * time.Millisecond, Concurrency: 8}, nil},
		{"echo", Load{Method: "echo", Tasks: 200, Concurrency: 4}, nil},
		{"calls by count", Load{Tasks: 500, Concurrency: 8, Pipeline: PipelineCalls}, nil},
		{"map, one sender, count not a multiple of the chunk", Load{Tasks: 333, Concurrency: 5, Senders: 1}, nil},
		{"map, more senders than in flight", Load{Tasks: 300, Concurrency: 2, Senders: 8}, nil},
		{"in-flight levels", Load{Tasks: 400, Concurrency: 1}, []int{1, 16, 300}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := Run(ctx, Config{EnvConfig: EnvConfig{Nodes: 2, NodeConcurrency: 2}, Load: tc.load, InFlight: tc.inFlight, Warmup: 10})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			levels := max(1, len(tc.inFlight))
			if rep.Broker != "in-process" || rep.Nodes != 2 || rep.NodeConcurrency != 2 || rep.NodePrefetch != 0 || rep.Topology != TopologyInProcess || len(rep.Phases) != 2+levels {
				t.Fatalf("report %+v", rep)
			}
			async := 0
			for _, p := range rep.Phases {
				if p.Tasks <= 0 || p.Errors != 0 || p.Elapsed <= 0 || p.TasksPerSec() <= 0 {
					t.Errorf("phase %s: %d tasks, %d errors, %v elapsed", p.Name, p.Tasks, p.Errors, p.Elapsed)
				}
				if tc.load.Tasks > 0 && p.Tasks != tc.load.Tasks {
					t.Errorf("phase %s ran %d tasks, want exactly %d", p.Name, p.Tasks, tc.load.Tasks)
				}
				timed := p.Name == PhaseSync || p.Name == PhaseAsync && tc.load.Pipeline == PipelineCalls
				if timed && (p.Hist.Count() != uint64(p.Tasks) || p.Latency.P50 <= 0 || p.Latency.P50 > p.Latency.P99) {
					t.Errorf("phase %s latency %+v over %d samples", p.Name, p.Latency, p.Hist.Count())
				}
				if p.Name != PhaseAsync {
					continue
				}
				want := tc.load.Concurrency
				if tc.inFlight != nil {
					want = tc.inFlight[async]
				}
				async++
				if p.Concurrency != want {
					t.Errorf("async row %d: in flight %d, want %d", async, p.Concurrency, want)
				}
				switch tc.load.Pipeline {
				case "", PipelineMap:
					senders := tc.load.Senders
					if senders == 0 {
						senders = runtime.GOMAXPROCS(0)
					}
					if p.Pipeline != PipelineMap || p.Senders != min(senders, want) {
						t.Errorf("async (map): pipeline %q, %d senders", p.Pipeline, p.Senders)
					}
					// The probe times at least one call, however short the phase.
					if p.Hist == nil || p.Hist.Count() == 0 || p.Latency.P50 <= 0 || p.Latency.P50 > p.Latency.P99 {
						t.Errorf("async (map): probe latency %+v", p.Latency)
					}
				case PipelineCalls:
					if p.Pipeline != PipelineCalls {
						t.Errorf("async (calls): pipeline %q", p.Pipeline)
					}
				}
			}
			if async != levels {
				t.Errorf("%d async rows, want %d", async, levels)
			}
		})
	}
}

// TestBudgetTake: a count-bounded budget hands out exactly its tasks, whatever the chunk sizes
// and however many goroutines claim at once; a time-bounded one hands out nothing past its
// deadline.
func TestBudgetTake(t *testing.T) {
	tests := []struct {
		tasks   int64
		chunk   int
		workers int
	}{
		{1000, 1, 4}, {1000, 7, 4}, {1000, 1000, 2}, {1000, 4096, 3}, {5, 64, 8},
	}
	for _, tc := range tests {
		b := newBudget(Load{Tasks: tc.tasks}, time.Now())
		var got atomic.Int64
		var wg sync.WaitGroup
		for range tc.workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					n := b.take(time.Now(), tc.chunk)
					if n < 0 || n > tc.chunk {
						t.Errorf("take(%d) = %d", tc.chunk, n)
						return
					}
					if n == 0 {
						return
					}
					got.Add(int64(n))
				}
			}()
		}
		wg.Wait()
		if got.Load() != tc.tasks {
			t.Errorf("tasks %d, chunk %d, %d workers: handed out %d", tc.tasks, tc.chunk, tc.workers, got.Load())
		}
	}
	start := time.Now()
	b := newBudget(Load{Duration: time.Second}, start)
	if n := b.take(start, 10); n != 10 {
		t.Errorf("before the deadline: take(10) = %d", n)
	}
	if n := b.take(start.Add(time.Second), 10); n != 0 {
		t.Errorf("at the deadline: take(10) = %d", n)
	}
}

func TestRunUnknownPipeline(t *testing.T) {
	env := startEnv(t, 1)
	_, err := env.Async(context.Background(), Load{Tasks: 1, Pipeline: "warp"})
	if !errors.Is(err, ErrUnknownPipeline) {
		t.Fatalf("Async with pipeline warp: %v, want ErrUnknownPipeline", err)
	}
}

func TestRunUnknownPhase(t *testing.T) {
	_, err := Run(context.Background(), Config{Phases: []string{"sync", "warp"}})
	if err == nil || !errors.Is(err, ErrUnknownPhase) {
		t.Fatalf("Run with phase warp: %v, want ErrUnknownPhase", err)
	}
}

func TestParseStats(t *testing.T) {
	tests := []struct {
		in           string
		done, failed int64
		wantErr      bool
	}{
		{`{"queued":3,"succeeded":10,"failed":2}`, 10, 2, false},
		{`{"done":7}`, 7, 0, false},
		{`{"queued":1}`, 0, 0, true},
		{`[1]`, 0, 0, true},
	}
	for _, tc := range tests {
		d, f, err := parseStats([]byte(tc.in))
		if (err != nil) != tc.wantErr || d != tc.done || f != tc.failed {
			t.Errorf("parseStats(%s) = %d, %d, %v", tc.in, d, f, err)
		}
	}
}

// TestRunExternalBroker drives a broker started elsewhere (here: another Env) through its
// endpoint, and refuses a method no node of it serves.
func TestRunExternalBroker(t *testing.T) {
	ext := startEnv(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := Run(ctx, Config{EnvConfig: EnvConfig{Broker: ext.Endpoint}, Load: Load{Tasks: 300, Concurrency: 4}, Warmup: 10})
	if err != nil {
		t.Fatalf("Run against %s: %v", ext.Endpoint, err)
	}
	if rep.Broker != ext.Endpoint || rep.Nodes != 0 || len(rep.Phases) != 3 {
		t.Fatalf("report %+v", rep)
	}
	for _, p := range rep.Phases {
		if p.Tasks != 300 || p.Errors != 0 {
			t.Errorf("phase %s: %d tasks, %d errors; want 300, 0", p.Name, p.Tasks, p.Errors)
		}
	}
	_, err = Run(ctx, Config{EnvConfig: EnvConfig{Broker: ext.Endpoint}, Load: Load{Method: "no_such_task", Tasks: 1}})
	if !errors.Is(err, ErrNotServed) {
		t.Fatalf("Run with an unserved method: %v, want ErrNotServed", err)
	}
}

func TestParseOutstanding(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{`{"queued":3,"running":4,"succeeded":10}`, 7},
		{`{"queued":3}`, 3},
		{`{"running":2}`, 2},
		{`{"succeeded":10}`, -1},
		{`[1]`, -1},
	}
	for _, tc := range tests {
		if got := parseOutstanding([]byte(tc.in)); got != tc.want {
			t.Errorf("parseOutstanding(%s) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

// TestNotifyShared: client processes that share a broker's notify window (NotifyShare) keep
// the tasks it holds unfinished within NotifyAhead together, where each counting its own
// sends against everyone's completions lets the total grow past it (two clients: at least
// twice NotifyAhead, plus every completion); none of them is refused; and a client that finds
// itself alone with a share of 2 (the others finished or not started) still ends its phase.
// The node runs sleep 1 ms tasks, so that the window, not the senders, bounds what is held.
func TestNotifyShared(t *testing.T) {
	ext := startEnv(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const ahead = 5000
	load := Load{Method: "sleep", Duration: time.Second, NotifyAhead: ahead, NotifyShare: 2, Senders: 2}
	clients := make([]*Env, 2)
	for i := range clients {
		env, err := NewEnv(ctx, EnvConfig{Broker: ext.Endpoint})
		if err != nil {
			t.Fatal(err)
		}
		defer env.Close()
		clients[i] = env
	}
	stats := func() (outstanding, rejected int64) {
		raw, err := ext.Client.CallRaw(ctx, nil, protocol.MethodStats, nil)
		if err != nil {
			t.Error(err)
			return 0, 0
		}
		var st struct{ Rejected int64 }
		_ = json.Unmarshal(raw, &st)
		return parseOutstanding(raw), st.Rejected
	}

	var most atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			if n, _ := stats(); n > most.Load() {
				most.Store(n)
			}
		}
	}()
	var wg sync.WaitGroup
	res := make([]PhaseResult, len(clients))
	errs := make([]error, len(clients))
	for i, env := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i], errs[i] = env.Notify(ctx, load)
		}()
	}
	wg.Wait()
	close(stop)
	<-sampled
	for i := range clients {
		if errs[i] != nil || res[i].Errors != 0 || res[i].Tasks == 0 {
			t.Fatalf("client %d: %+v, %v", i+1, res[i], errs[i])
		}
	}
	if _, rejected := stats(); rejected != 0 {
		t.Errorf("%d notifications refused", rejected)
	}
	if m := most.Load(); m > ahead*8/5 {
		t.Errorf("the broker held %d tasks unfinished at once, window %d", m, ahead)
	}
	t.Logf("most held at once %d (window %d); completed %d and %d", most.Load(), ahead, res[0].Tasks, res[1].Tasks)

	// Alone, with a share of 2: the phase ends (a share that assumed the others still send
	// would wait for completions that never come).
	start := time.Now()
	r, err := clients[0].Notify(ctx, Load{Method: "sleep", Duration: 300 * time.Millisecond, NotifyAhead: 500, NotifyShare: 2})
	if err != nil || r.Errors != 0 || r.Tasks == 0 {
		t.Fatalf("alone: %+v, %v", r, err)
	}
	if el := time.Since(start); el > 20*time.Second {
		t.Errorf("alone: the phase took %v", el)
	}
}
