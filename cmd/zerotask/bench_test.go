package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zerotask/zerotask/bench"
	"github.com/zerotask/zerotask/internal/testutil"
)

// TestBenchFlags: the pipelining, prefetch and in-flight-level flags reach the report, and the
// profile flags write profiles.
func TestBenchFlags(t *testing.T) {
	dir := t.TempDir()
	cpu, mem := filepath.Join(dir, "cpu.prof"), filepath.Join(dir, "mem.prof")
	base := []string{"bench", "--in-process", "--json", "--tasks", "200", "--duration", "0", "--warmup", "10", "--log-level", "error"}
	tests := []struct {
		name      string
		args      []string
		inFlight  []int
		pipeline  string
		senders   int // -1: not checked
		prefetch  int
		wantFiles []string
	}{
		{"levels with map", []string{"--phases", "async", "--concurrency", "4,64", "--senders", "2"}, []int{4, 64}, "map", 2, 0, nil},
		{"calls", []string{"--phases", "async", "--concurrency", "8", "--pipeline", "calls", "--prefetch", "16"}, []int{8}, "calls", 0, 16, nil},
		{"node default prefetch", []string{"--phases", "async", "--concurrency", "3", "--senders", "1", "--prefetch", "0"}, []int{3}, "map", 1, 0, nil},
		{"profiles", []string{"--phases", "sync,async", "--cpuprofile", cpu, "--memprofile", mem}, []int{bench.DefaultConcurrency}, "map", -1, 0, []string{cpu, mem}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runArgs(t, append(base, tc.args...)...)
			if code != exitOK {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			var rep struct {
				NodePrefetch int `json:"node_prefetch"`
				Phases       []struct {
					Name        string `json:"name"`
					Tasks       int64  `json:"tasks"`
					Concurrency int    `json:"concurrency"`
					Pipeline    string `json:"pipeline"`
					Senders     int    `json:"senders"`
				} `json:"phases"`
			}
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, out)
			}
			// 0 on the command line is the node's own default (node.DefaultPrefetch).
			if tc.prefetch != 0 && rep.NodePrefetch != tc.prefetch || tc.prefetch == 0 && rep.NodePrefetch != 0 {
				t.Errorf("node_prefetch %d, want %d", rep.NodePrefetch, tc.prefetch)
			}
			var levels []int
			for _, p := range rep.Phases {
				if p.Name != "async" {
					continue
				}
				levels = append(levels, p.Concurrency)
				if p.Tasks != 200 || p.Pipeline != tc.pipeline || tc.senders >= 0 && p.Senders != min(tc.senders, p.Concurrency) {
					t.Errorf("async row %+v: want 200 tasks, pipeline %s, %d senders", p, tc.pipeline, tc.senders)
				}
			}
			if !slices.Equal(levels, tc.inFlight) {
				t.Errorf("async levels %v, want %v", levels, tc.inFlight)
			}
			for _, f := range tc.wantFiles {
				if st, err := os.Stat(f); err != nil || st.Size() == 0 {
					t.Errorf("profile %s: %v (size %d)", f, err, sizeOf(st))
				}
			}
		})
	}
}

func sizeOf(st os.FileInfo) int64 {
	if st == nil {
		return -1
	}
	return st.Size()
}

// TestBenchFlagErrors: bad values of the new flags are usage errors.
func TestBenchFlagErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--concurrency", "128,0"}, "--concurrency must be positive"},
		{[]string{"--concurrency", "12,x"}, "not a list of integers"},
		{[]string{"--pipeline", "warp"}, `unknown --pipeline "warp"`},
		{[]string{"--prefetch", "-1"}, "must not be negative"},
		{[]string{"--senders", "-2"}, "must not be negative"},
		{[]string{"--in-process", "--broker", "tcp://127.0.0.1:1"}, "exclude each other"},
		{[]string{"--curve-server", "x"}, "are for an existing broker"},
		{[]string{"--curve", "--broker", "tcp://127.0.0.1:1"}, "takes --curve-server"},
		{[]string{"--clients", "0"}, "--clients must be positive"},
		{[]string{"--clients", "2", "--in-process"}, "--clients needs separate processes"},
		{[]string{"--tasks", "1", "--cpuprofile", "/nonexistent-dir/cpu.prof"}, "--cpuprofile"},
	}
	for _, tc := range tests {
		code, _, errOut := runArgs(t, append([]string{"bench"}, tc.args...)...)
		if code == exitOK || !strings.Contains(errOut, tc.want) {
			t.Errorf("bench %v: exit %d, stderr %q; want a failure saying %q", tc.args, code, errOut, tc.want)
		}
	}
}

// benchJSON is the part of `zerotask bench --json` the topology tests read.
type benchJSON struct {
	Topology string `json:"topology"`
	Broker   string `json:"broker"`
	Nodes    int    `json:"nodes"`
	Clients  int    `json:"clients"`
	Procs    []struct {
		Role       string `json:"role"`
		PID        int    `json:"pid"`
		PeakRSSKiB int64  `json:"peak_rss_kib"`
	} `json:"procs"`
	Phases []struct {
		Name         string             `json:"name"`
		Tasks        int64              `json:"tasks"`
		Concurrency  int                `json:"concurrency"`
		CPUPerTaskUs map[string]float64 `json:"cpu_per_task_us"`
	} `json:"phases"`
}

// TestBenchProcesses: by default the bench starts the broker and --nodes nodes as child
// processes of this binary, reports them (roles, PIDs, peak RSS) and the CPU per task of each
// role, and stops them when it is done; --broker then measures a deployment started by hand
// (the same binary's broker and node, real processes).
func TestBenchProcesses(t *testing.T) {
	t.Setenv(asBinary, "1") // the children are this test binary running main
	run := func(t *testing.T, args ...string) benchJSON {
		t.Helper()
		args = append([]string{"bench", "--json", "--tasks", "300", "--duration", "0", "--warmup", "10",
			"--timeout", "20s", "--concurrency", "16", "--log-level", "error"}, args...)
		code, out, errOut := runArgs(t, args...)
		if code != exitOK {
			t.Fatalf("bench %v: exit %d, stderr %q", args, code, errOut)
		}
		var rep benchJSON
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("output is not JSON: %v\n%s", err, out)
		}
		return rep
	}

	t.Run("default: separate processes", func(t *testing.T) {
		rep := run(t, "--nodes", "2")
		if rep.Topology != "processes" || rep.Nodes != 2 || len(rep.Phases) != 3 {
			t.Fatalf("report %+v: want topology processes, 2 nodes, 3 phases", rep)
		}
		roles := map[string]int{}
		for _, p := range rep.Procs {
			roles[p.Role]++
			if p.PeakRSSKiB <= 0 {
				t.Errorf("process %+v: no peak RSS", p)
			}
			if p.Role != "client" {
				if p.PID == os.Getpid() {
					t.Errorf("%s runs in the bench's own process", p.Role)
				}
				// Stopped when the bench returned: the PID is gone (or reaped; signal 0 fails).
				if proc, err := os.FindProcess(p.PID); err == nil && proc.Signal(syscall.Signal(0)) == nil {
					t.Errorf("%s (pid %d) still runs after the bench returned", p.Role, p.PID)
				}
			}
		}
		if roles["broker"] != 1 || roles["node"] != 2 || roles["client"] != 1 {
			t.Fatalf("processes %+v: want one broker, two nodes, one client", rep.Procs)
		}
		for _, ph := range rep.Phases {
			if ph.Tasks != 300 {
				t.Errorf("phase %s: %d tasks, want 300", ph.Name, ph.Tasks)
			}
			// CPU time is counted in 10 ms ticks: over 300 tasks every role shows at least one
			// tick in some phase, checked below; here only the roles reported.
			for role := range ph.CPUPerTaskUs {
				if role != "broker" && role != "node" && role != "client" {
					t.Errorf("phase %s: CPU of role %q", ph.Name, role)
				}
			}
		}
	})

	t.Run("--clients 2", func(t *testing.T) {
		rep := run(t, "--clients", "2", "--phases", "sync,async")
		if rep.Topology != "processes" || rep.Clients != 2 || len(rep.Phases) != 2 {
			t.Fatalf("report %+v: want 2 client processes over separate processes", rep)
		}
		for _, ph := range rep.Phases {
			if ph.Tasks != 600 || ph.Concurrency != map[string]int{"sync": 2, "async": 32}[ph.Name] {
				t.Errorf("phase %+v: want 600 tasks (300 per client) and the in-flight of both", ph)
			}
		}
		for _, p := range rep.Procs {
			if p.Role == "client" {
				t.Errorf("the orchestrating process is reported as a client: %+v", rep.Procs)
			}
		}
	})

	t.Run("--in-process", func(t *testing.T) {
		rep := run(t, "--in-process", "--phases", "sync")
		if rep.Topology != "in-process" || rep.Broker != "in-process" || len(rep.Procs) != 1 || rep.Procs[0].Role != "all" || rep.Procs[0].PID != os.Getpid() {
			t.Fatalf("report %+v: want one process running everything", rep)
		}
	})

	t.Run("--broker: an existing deployment", func(t *testing.T) {
		bin, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		ctx := testutil.Context(t, 30*time.Second)
		broker := startChildProc(t, ctx, bin, "broker", "--listen", "tcp://127.0.0.1:0", "--pub", "tcp://127.0.0.1:0", "--log-level", "warn")
		m := broker.expect(t, listeningAlone)
		startChildProc(t, ctx, bin, "node", "--broker", m[1], "--sub", m[2], "--log-level", "warn").expect(t, regexp.MustCompile(`^node serving `))
		testutil.Eventually(t, 10*time.Second, func() bool {
			_, out, _ := runArgs(t, "call", "--broker", m[1], "broker.nodes")
			return strings.Contains(out, `"add"`)
		}, "the node never connected to the broker")
		rep := run(t, "--broker", m[1], "--phases", "async,notify")
		if rep.Topology != "external" || rep.Broker != m[1] || len(rep.Phases) != 2 {
			t.Fatalf("report %+v: want the external broker %s measured", rep, m[1])
		}
		if len(rep.Procs) != 1 || rep.Procs[0].Role != "client" {
			t.Fatalf("processes %+v: only the client is known", rep.Procs)
		}
	})
}

var listeningAlone = regexp.MustCompile(`^broker listening on (tcp://\S+) \(PUB (tcp://\S+)\)`)

// childProc is a zerotask process a test started; it is stopped by PID when the test ends.
type childProc struct {
	cmd   *exec.Cmd
	lines chan string
}

func startChildProc(t *testing.T, ctx context.Context, bin string, args ...string) *childProc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var errOut testutil.Buffer
	cmd.Stderr = &errOut
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &childProc{cmd: cmd, lines: make(chan string, 64)}
	exited := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case c.lines <- sc.Text():
			default:
			}
		}
		close(c.lines)
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("%s did not stop within 10s of SIGTERM; stderr %q", args[0], errOut.String())
		}
	})
	go func() { <-ctx.Done(); _ = cmd.Process.Kill() }()
	return c
}

// expect waits (10 s at most) for a stdout line matching re and returns its submatches.
func (c *childProc) expect(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				t.Fatalf("%v exited before printing %v", c.cmd.Args, re)
			}
			if m := re.FindStringSubmatch(line); m != nil {
				return m
			}
		case <-deadline:
			t.Fatalf("%v printed no line matching %v within 10s", c.cmd.Args, re)
		}
	}
}
