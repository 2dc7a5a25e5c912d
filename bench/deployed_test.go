package bench

import (
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// buildZerotask builds cmd/zerotask into a temporary directory for the benchmark's child
// processes.
func buildZerotask(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "zerotask")
	out, err := exec.Command("go", "build", "-o", bin, "../cmd/zerotask").CombinedOutput()
	if err != nil {
		b.Fatalf("go build ./cmd/zerotask: %v\n%s", err, out)
	}
	return bin
}

var zbenchLat = regexp.MustCompile(`p50_ns=(\d+) p99_ns=(\d+)`)

// libzmqEcho runs libzmq's REQ/REP round trip (bench/zmtp/zbench.c, 64 B, 5,000 round trips;
// each end on its own thread with its own context) and returns its p50 and p99, or false when
// gcc or libzmq3-dev is missing.
func libzmqEcho(b *testing.B) (p50, p99 time.Duration, ok bool) {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "zbench")
	if out, err := exec.Command("gcc", "-O2", "-o", bin, "zmtp/zbench.c", "-lzmq", "-lpthread").CombinedOutput(); err != nil {
		b.Logf("libzmq baseline not built (gcc and libzmq3-dev needed): %v\n%s", err, out)
		return 0, 0, false
	}
	out, err := exec.Command(bin, "lat", "req-rep", "64", "5000").Output()
	if err != nil {
		b.Fatalf("zbench: %v", err)
	}
	m := zbenchLat.FindSubmatch(out)
	if m == nil {
		b.Fatalf("zbench printed %q", out)
	}
	a, _ := strconv.ParseInt(string(m[1]), 10, 64)
	c, _ := strconv.ParseInt(string(m[2]), 10, 64)
	return time.Duration(a), time.Duration(c), true
}

// BenchmarkDeployed measures the topology users deploy: `zerotask broker` and one `zerotask
// node` as separate processes with every flag at its default, this process the client, over
// tcp loopback, method add. sync is one call in flight (p50/p99 beside libzmq's REQ/REP p50
// measured in the same run, before and after: ratio_p50 and ratio_p99 are ours over libzmq's
// p50, lower is better); async keeps 4,096 calls in flight through client.Map; notify is
// fire-and-forget counted at the broker. ns/op is the cost per task at throughput, for the
// client alone.
func BenchmarkDeployed(b *testing.B) {
	bin := buildZerotask(b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	env, err := NewEnv(ctx, EnvConfig{Binary: bin})
	cancel()
	if err != nil {
		b.Fatalf("NewEnv: %v", err)
	}
	b.Cleanup(func() {
		if err := env.Close(); err != nil {
			b.Errorf("Env.Close: %v", err)
		}
	})
	params := DefaultParams("add")
	if _, err := env.Sync(context.Background(), Load{Method: "add", Params: params, Tasks: 1000}); err != nil {
		b.Fatal(err)
	}
	b.Run("sync", func(b *testing.B) {
		zp50a, _, haveZMQ := libzmqEcho(b)
		var h Histogram
		var dst []byte
		ctx := context.Background()
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
		b.StopTimer()
		b.ReportMetric(float64(h.Count())/el.Seconds(), "tasks/s")
		b.ReportMetric(float64(h.Quantile(0.5))/1e3, "p50_us")
		b.ReportMetric(float64(h.Quantile(0.99))/1e3, "p99_us")
		if haveZMQ {
			zp50b, _, _ := libzmqEcho(b)
			zp50 := min(zp50a, zp50b) // libzmq at its best of the two
			b.ReportMetric(float64(zp50)/1e3, "libzmq_p50_us")
			b.ReportMetric(float64(h.Quantile(0.5))/float64(zp50), "ratio_p50")
			b.ReportMetric(float64(h.Quantile(0.99))/float64(zp50), "ratio_p99")
		}
	})
	b.Run("async/inflight=4096", func(b *testing.B) {
		res, err := env.Async(context.Background(), Load{Method: "add", Params: params, Tasks: int64(b.N), Concurrency: 4096})
		if err != nil {
			b.Fatal(err)
		}
		if res.Errors > 0 || res.Tasks != int64(b.N) {
			b.Fatalf("%d tasks, %d errors, want %d tasks", res.Tasks, res.Errors, b.N)
		}
		b.ReportMetric(res.TasksPerSec(), "tasks/s")
	})
	b.Run("notify", func(b *testing.B) {
		res, err := env.Notify(context.Background(), Load{Method: "add", Params: params, Tasks: int64(b.N)})
		if err != nil {
			b.Fatal(err)
		}
		if res.Errors > 0 || res.Tasks != int64(b.N) {
			b.Fatalf("%d tasks, %d errors, want %d tasks", res.Tasks, res.Errors, b.N)
		}
		b.ReportMetric(res.TasksPerSec(), "tasks/s")
	})
	for _, ps := range env.Procs() {
		b.Logf("%s pid %d peak RSS %.1f MiB", ps.Role, ps.PID, float64(ps.PeakRSS)/(1<<20))
	}
}
