package bench

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"
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

// BenchmarkEndToEnd measures add(5, 6) through an in-process broker and nodes over tcp
// loopback: sync is one call in flight (ns/op is the round trip), async keeps many in flight
// (ns/op is the cost per task at throughput). allocs/op counts the whole process: client,
// broker and nodes.
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
	for _, conc := range []int{16, 256} {
		b.Run("async/inflight="+itoa(conc), func(b *testing.B) {
			b.ReportAllocs()
			b.ResetTimer()
			res, err := env.Async(context.Background(), Load{Method: "add", Params: params, Tasks: int64(b.N), Concurrency: conc})
			if err != nil {
				b.Fatal(err)
			}
			if res.Errors > 0 || res.Tasks != int64(b.N) {
				b.Fatalf("%d tasks, %d errors, want %d tasks", res.Tasks, res.Errors, b.N)
			}
			b.ReportMetric(res.TasksPerSec(), "tasks/s")
			b.ReportMetric(float64(res.Latency.P50)/1e3, "p50_us")
			b.ReportMetric(float64(res.Latency.P99)/1e3, "p99_us")
		})
	}
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
		name string
		load Load
	}{
		{"by count", Load{Tasks: 500, Concurrency: 8}},
		{"by duration", Load{Duration: 200 * time.Millisecond, Concurrency: 8}},
		{"echo", Load{Method: "echo", Tasks: 200, Concurrency: 4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := Run(ctx, Config{EnvConfig: EnvConfig{Nodes: 2, NodeConcurrency: 2}, Load: tc.load, Warmup: 10})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if rep.Broker != "in-process" || rep.Nodes != 2 || rep.NodeConcurrency != 2 || len(rep.Phases) != 3 {
				t.Fatalf("report %+v", rep)
			}
			for _, p := range rep.Phases {
				if p.Tasks <= 0 || p.Errors != 0 || p.Elapsed <= 0 || p.TasksPerSec() <= 0 {
					t.Errorf("phase %s: %d tasks, %d errors, %v elapsed", p.Name, p.Tasks, p.Errors, p.Elapsed)
				}
				if tc.load.Tasks > 0 && p.Tasks != tc.load.Tasks {
					t.Errorf("phase %s ran %d tasks, want exactly %d", p.Name, p.Tasks, tc.load.Tasks)
				}
				if p.Name != PhaseNotify && (p.Hist.Count() != uint64(p.Tasks) || p.Latency.P50 <= 0 || p.Latency.P50 > p.Latency.P99) {
					t.Errorf("phase %s latency %+v over %d samples", p.Name, p.Latency, p.Hist.Count())
				}
			}
		})
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
