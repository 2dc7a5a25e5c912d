package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestSummarize(t *testing.T) {
	ms := func(n ...int) []time.Duration {
		out := make([]time.Duration, len(n))
		for i, v := range n {
			out[i] = time.Duration(v) * time.Millisecond
		}
		return out
	}
	tests := []struct {
		name               string
		lat                []time.Duration
		elapsed            time.Duration
		tasks              int64
		rate, p50, p99, mx float64
	}{
		{"empty", nil, time.Second, 0, 0, 0, 0, 0},
		{"one", ms(5), time.Second, 1, 1, 5000, 5000, 5000},
		{"unsorted", ms(4, 1, 3, 2), 2 * time.Second, 4, 2, 2000, 4000, 4000},
		{"hundred", ms(seq(100)...), 10 * time.Second, 100, 10, 50000, 99000, 100000},
		{"no time", ms(1), 0, 1, 0, 1000, 1000, 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := summarize("m", tt.lat, tt.elapsed)
			if l.Tasks != tt.tasks || l.TasksPerS != tt.rate || l.P50us != tt.p50 || l.P99us != tt.p99 || l.MaxUs != tt.mx {
				t.Errorf("summarize = tasks %d rate %v p50 %v p99 %v max %v; want %d %v %v %v %v",
					l.Tasks, l.TasksPerS, l.P50us, l.P99us, l.MaxUs, tt.tasks, tt.rate, tt.p50, tt.p99, tt.mx)
			}
		})
	}
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

func TestAdd(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"[5,6]", 11, false},
		{"[-3,3]", 0, false},
		{`{"a":1}`, 0, true},
		{"", 0, true},
	}
	for _, tt := range tests {
		got, err := add([]byte(tt.in))
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("add(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// TestRun runs every phase, small, against a redis-server of its own on a free loopback port.
func TestRun(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server not installed")
		}
		t.Skip("redis-server not installed (apt-get install redis-server)")
	}
	addr := startRedis(t, bin)
	c := config{
		redis: addr, queue: "test", concurrency: 4, modes: "sync,with_results,fire_and_forget",
		syncN: 3, resultsN: 200, notifyN: 500, duration: 3 * time.Second, syncDuration: 3 * time.Second,
		inflight: 8, enqueuers: 2, poll: time.Millisecond, checkEvery: 10 * time.Millisecond,
		retention: time.Minute, drainTimeout: 20 * time.Second,
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, c, slog.New(slog.NewTextHandler(io.Discard, nil)), &out); err != nil {
		t.Fatalf("run: %v", err)
	}
	want := map[string]int64{"sync": 3, "with_results": 200, "fire_and_forget": 500}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("bad line %q: %v", sc.Text(), err)
		}
		n, ok := want[l.Mode]
		if !ok {
			t.Fatalf("unexpected mode in %q", sc.Text())
		}
		delete(want, l.Mode)
		if l.System != "asynq" || l.Tasks != n || l.Errors != 0 || l.TasksPerS <= 0 {
			t.Errorf("%s: %+v; want %d tasks, no errors", l.Mode, l, n)
		}
		if l.Mode != "fire_and_forget" && (l.P50us <= 0 || l.P99us < l.P50us || l.ResultsVia == "") {
			t.Errorf("%s: latency or results_via missing: %+v", l.Mode, l)
		}
	}
	if len(want) != 0 {
		t.Errorf("modes missing from output: %v\n%s", want, out.String())
	}
}

// startRedis starts redis-server on a free 127.0.0.1 port, without persistence, and stops it
// when the test ends.
func startRedis(t *testing.T, bin string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server did not listen on %s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
