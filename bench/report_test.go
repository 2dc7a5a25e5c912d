package bench

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func sampleReport() *Report {
	r := NewReport()
	r.Topology, r.Broker, r.Nodes, r.NodeConcurrency, r.Method, r.Params = TopologyInProcess, "in-process", 2, 4, "add", "[5,6]"
	var h Histogram
	for i := 1; i <= 100; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	r.Phases = []PhaseResult{
		{Name: PhaseSync, Tasks: 100, Elapsed: 10 * time.Millisecond, Concurrency: 1, Hist: &h, Latency: h.Summary()},
		{Name: PhaseAsync, Tasks: 1_500_000, Errors: 3, Elapsed: 3 * time.Second, Concurrency: 512, Hist: &h, Latency: h.Summary()},
		{Name: PhaseNotify, Tasks: 2_000_000, Elapsed: 2 * time.Second, Concurrency: 1},
	}
	return r
}

func TestWriteJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport().WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Broker     string `json:"broker"`
		GOMAXPROCS int    `json:"gomaxprocs"`
		CPU        string `json:"cpu"`
		Phases     []struct {
			Name        string  `json:"name"`
			Tasks       int64   `json:"tasks"`
			Errors      int64   `json:"errors"`
			TasksPerSec float64 `json:"tasks_per_sec"`
			P50         float64 `json:"p50_us"`
			P90         float64 `json:"p90_us"`
			P99         float64 `json:"p99_us"`
			Max         float64 `json:"max_us"`
		} `json:"phases"`
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, buf.String())
	}
	if got.Broker != "in-process" || got.GOMAXPROCS < 1 || got.CPU == "" || len(got.Phases) != 3 {
		t.Fatalf("unexpected report: %+v", got)
	}
	tests := []struct {
		i        int
		name     string
		tasks    int64
		errors   int64
		rate     float64
		p50, p99 float64 // µs, within the histogram's precision
	}{
		{0, "sync", 100, 0, 10_000, 50, 99},
		{1, "async", 1_500_000, 3, 500_000, 50, 99},
		{2, "notify", 2_000_000, 0, 1_000_000, 0, 0},
	}
	for _, tc := range tests {
		p := got.Phases[tc.i]
		if p.Name != tc.name || p.Tasks != tc.tasks || p.Errors != tc.errors || p.TasksPerSec != tc.rate {
			t.Errorf("phase %d = %+v, want name %s tasks %d errors %d rate %v", tc.i, p, tc.name, tc.tasks, tc.errors, tc.rate)
		}
		if !near(p.P50, tc.p50) || !near(p.P99, tc.p99) {
			t.Errorf("phase %s p50/p99 = %v/%v µs, want about %v/%v", tc.name, p.P50, p.P99, tc.p50, tc.p99)
		}
	}
}

func near(got, want float64) bool {
	if want == 0 {
		return got == 0
	}
	d := (got - want) / want
	return d > -0.02 && d < 0.02
}

func TestWriteTable(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport().WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"one process (in-process broker, 2 node(s), concurrency 4, prefetch default", "method add [5,6]", "GOMAXPROCS=",
		"tasks/s", "p50", "p99", "1,500,000", "500,000", "1,000,000", "sync", "async", "notify"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	last := strings.Fields(lines[len(lines)-1])
	if last[0] != "notify" || strings.Join(last[len(last)-4:], " ") != "- - - -" {
		t.Errorf("notify row should show no latency: %q", last)
	}
}

func TestFormatters(t *testing.T) {
	ints := []struct {
		in   int64
		want string
	}{{0, "0"}, {999, "999"}, {1000, "1,000"}, {123456, "123,456"}, {1234567, "1,234,567"}, {-1234, "-1,234"}}
	for _, tc := range ints {
		if got := fmtInt(tc.in); got != tc.want {
			t.Errorf("fmtInt(%d) = %q, want %q", tc.in, got, tc.want)
		}
	}
	durs := []struct {
		in   time.Duration
		want string
	}{
		{850, "850ns"}, {61_250, "61.2µs"}, {8_120, "8.12µs"}, {123_456, "123µs"},
		{4_560_000, "4.56ms"}, {1_500_000_000, "1.50s"},
	}
	for _, tc := range durs {
		if got := fmtDur(tc.in); got != tc.want {
			t.Errorf("fmtDur(%d) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestPhaseLookupAndRate(t *testing.T) {
	r := sampleReport()
	p, ok := r.Phase(PhaseAsync)
	if !ok || p.TasksPerSec() != 500_000 {
		t.Fatalf("Phase(async) = %+v, %v", p, ok)
	}
	if _, ok := r.Phase("nope"); ok {
		t.Fatal("Phase(nope) found")
	}
	if (PhaseResult{Tasks: 5}).TasksPerSec() != 0 {
		t.Fatal("zero elapsed must give rate 0")
	}
	if CPUModel() == "" {
		t.Fatal("CPUModel is empty")
	}
}

// TestCost: CPU per task and tasks/s per core come from a phase's CPU times; the table and the
// JSON carry them and each process's peak RSS, and the first line names the topology.
func TestCost(t *testing.T) {
	r := sampleReport()
	r.Topology, r.Broker = TopologyProcesses, "tcp://127.0.0.1:5555"
	r.Procs = []Proc{{RoleBroker, 10, 60 << 20}, {RoleNode, 11, 14 << 20}, {RoleClient, 12, 16 << 20}}
	// 1.5M tasks: 3 s of broker CPU is 2 µs per task, 500,000 tasks/s per core.
	r.Phases[1].CPU = []RoleCPU{{RoleBroker, 3 * time.Second}, {RoleNode, 1500 * time.Millisecond}, {RoleClient, 0}}
	p := r.Phases[1]
	for _, tc := range []struct {
		role    string
		perTask time.Duration
		perCore float64
	}{{RoleBroker, 2 * time.Microsecond, 500_000}, {RoleNode, time.Microsecond, 1_000_000}, {RoleClient, 0, 0}, {"nope", 0, 0}} {
		if got := p.CPUPerTask(tc.role); got != tc.perTask {
			t.Errorf("CPUPerTask(%s) = %v, want %v", tc.role, got, tc.perTask)
		}
		if got := p.TasksPerCore(tc.role); got != tc.perCore {
			t.Errorf("TasksPerCore(%s) = %v, want %v", tc.role, got, tc.perCore)
		}
	}
	var buf bytes.Buffer
	if err := r.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"separate processes (broker, 2 node(s), concurrency 4, prefetch default, this client) at tcp://127.0.0.1:5555",
		"CPU/task", "2.00µs", "500,000", "1,000,000", "broker (pid 10) 60.0 MiB", "node (pid 11) 14.0 MiB", "client (pid 12) 16.0 MiB"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, buf.String())
		}
	}
	buf.Reset()
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Topology string `json:"topology"`
		Procs    []struct {
			Role       string `json:"role"`
			PeakRSSKiB int64  `json:"peak_rss_kib"`
		} `json:"procs"`
		Phases []struct {
			CPU     map[string]float64 `json:"cpu_per_task_us"`
			PerCore map[string]float64 `json:"tasks_per_core"`
		} `json:"phases"`
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Topology != TopologyProcesses || len(got.Procs) != 3 || got.Procs[0].PeakRSSKiB != 60<<10 {
		t.Errorf("JSON topology/procs: %+v", got)
	}
	if c := got.Phases[1].CPU; c["broker"] != 2 || c["node"] != 1 || len(c) != 2 || got.Phases[1].PerCore["broker"] != 500_000 {
		t.Errorf("JSON CPU per task %v, per core %v", c, got.Phases[1].PerCore)
	}
	if got.Phases[0].CPU != nil {
		t.Errorf("a phase without CPU figures has %v", got.Phases[0].CPU)
	}
}
