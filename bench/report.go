package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/zerotask/zerotask/internal/procs"
)

// Phase names, in the order Run runs them.
const (
	PhaseSync   = "sync"   // sequential Call round trips: one in flight
	PhaseAsync  = "async"  // pipelined calls with results: Concurrency in flight
	PhaseNotify = "notify" // fire-and-forget notifications, counted as the nodes complete them
)

// PhaseResult is what one phase measured.
type PhaseResult struct {
	// Name is PhaseSync, PhaseAsync or PhaseNotify.
	Name string
	// Tasks counts the tasks completed successfully (for notify: as counted by the broker or the
	// nodes).
	Tasks int64
	// Errors counts failed calls (a JSON-RPC error or a local failure such as a timeout).
	Errors int64
	// Elapsed is the wall time from the first send to the last completion.
	Elapsed time.Duration
	// Concurrency is how many calls were in flight at most (1 for sync).
	Concurrency int
	// Pipeline is how the async phase kept its calls in flight (PipelineMap or PipelineCalls;
	// "" for the other phases), Senders how many goroutines sent (PipelineMap).
	Pipeline string
	Senders  int
	// Latency holds the per-call round-trip percentiles (zero for notify: nothing comes back).
	Latency Latency
	// Hist is the latency histogram behind Latency (nil for notify).
	Hist *Histogram
	// CPU is the CPU time (user + system) each role's processes used during the phase: broker,
	// node (all node processes) and client (this process) when the broker and nodes are child
	// processes; all (this process) in-process; client alone for an external broker.
	CPU []RoleCPU
}

// CPUPerTask returns the CPU time role used per task completed in the phase (0 when unknown).
func (p PhaseResult) CPUPerTask(role string) time.Duration {
	for _, c := range p.CPU {
		if c.Role == role && p.Tasks > 0 {
			return c.CPU / time.Duration(p.Tasks)
		}
	}
	return 0
}

// TasksPerCore returns the tasks/s one core of role would carry at the phase's cost per task:
// "1 core of broker per N tasks/s" (0 when unknown).
func (p PhaseResult) TasksPerCore(role string) float64 {
	if d := p.CPUPerTask(role); d > 0 {
		return float64(time.Second) / float64(d)
	}
	return 0
}

// TasksPerSec returns Tasks / Elapsed (0 when nothing elapsed).
func (p PhaseResult) TasksPerSec() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Tasks) / p.Elapsed.Seconds()
}

// Report is a whole benchmark run: where it ran and what each phase measured.
type Report struct {
	// Topology is TopologyProcesses, TopologyInProcess or TopologyExternal.
	Topology string
	// Broker is "in-process" or the broker's endpoint.
	Broker string
	// Clients is how many client processes ran the phases at once (0 or 1: this process).
	// Their reports are merged: tasks summed (notify: the highest client's count of the
	// broker's completions, since every client counts them all), latencies the worst client's.
	Clients int
	// RunCPU is the broker's and nodes' CPU over all the phases, when the phases ran in
	// client processes of their own (Clients > 1) and could not be told apart.
	RunCPU []RoleCPU
	// Procs are the processes measured, with their peak memory (none known of an external
	// broker's).
	Procs []Proc
	// Nodes, NodeConcurrency and NodePrefetch describe the nodes the bench started (0 when the
	// broker is external; 0 concurrency or prefetch: the node's default).
	Nodes           int
	NodeConcurrency int
	NodePrefetch    int
	// Method is the task method every phase calls, Params its raw JSON params.
	Method string
	Params string
	// Host facts, for comparing figures: GOMAXPROCS, the CPU count, model, Go version, OS/arch.
	// GOMAXPROCS is the Ps under load; AdaptiveProcs says the processes ran the adaptive
	// policy of the zerotask binary (one P while mostly idle: internal/procs), which is on
	// unless GOMAXPROCS is set in the environment.
	GOMAXPROCS    int
	AdaptiveProcs bool
	NumCPU        int
	CPU           string
	GoVersion     string
	OS            string
	Arch          string
	// Phases holds one result per phase run, in order.
	Phases []PhaseResult
}

// NewReport returns a Report with the host facts filled in.
func NewReport() *Report {
	return &Report{
		GOMAXPROCS:    procs.Max(),
		AdaptiveProcs: procs.Running(),
		NumCPU:        runtime.NumCPU(),
		CPU:           CPUModel(),
		GoVersion:     runtime.Version(),
		OS:            runtime.GOOS,
		Arch:          runtime.GOARCH,
	}
}

// Phase returns the result of the named phase and whether it ran.
func (r *Report) Phase(name string) (PhaseResult, bool) {
	for _, p := range r.Phases {
		if p.Name == name {
			return p, true
		}
	}
	return PhaseResult{}, false
}

// CPUModel returns the CPU model name from /proc/cpuinfo ("model name", or "Hardware"/"cpu
// model" on some ARM and MIPS kernels), or GOARCH where there is no such file.
func CPUModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "model name", "Hardware", "cpu model":
			if v = strings.TrimSpace(v); v != "" {
				return v
			}
		}
	}
	return runtime.GOARCH
}

// jsonPhase and jsonReport are the --json shape: flat, snake_case, durations in microseconds
// (floats), so that `jq .phases[0].p50_us` reads naturally.
type jsonPhase struct {
	Name        string  `json:"name"`
	Tasks       int64   `json:"tasks"`
	Errors      int64   `json:"errors"`
	ElapsedS    float64 `json:"elapsed_s"`
	TasksPerSec float64 `json:"tasks_per_sec"`
	Concurrency int     `json:"concurrency"`
	Pipeline    string  `json:"pipeline,omitempty"`
	Senders     int     `json:"senders,omitempty"`
	P50us       float64 `json:"p50_us"`
	P90us       float64 `json:"p90_us"`
	P99us       float64 `json:"p99_us"`
	P999us      float64 `json:"p999_us"`
	MaxUs       float64 `json:"max_us"`
	MeanUs      float64 `json:"mean_us"`
	// CPU per task (microseconds) and tasks/s per core, by role.
	CPUPerTaskUs map[string]float64 `json:"cpu_per_task_us,omitempty"`
	TasksPerCore map[string]float64 `json:"tasks_per_core,omitempty"`
}

type jsonProc struct {
	Role       string `json:"role"`
	PID        int    `json:"pid"`
	PeakRSSKiB int64  `json:"peak_rss_kib"`
}

type jsonReport struct {
	Topology        string             `json:"topology"`
	Broker          string             `json:"broker"`
	Procs           []jsonProc         `json:"procs,omitempty"`
	Clients         int                `json:"clients,omitempty"`
	RunCPUs         map[string]float64 `json:"run_cpu_s,omitempty"`
	Nodes           int                `json:"nodes"`
	NodeConcurrency int                `json:"node_concurrency"`
	NodePrefetch    int                `json:"node_prefetch"`
	Method          string             `json:"method"`
	Params          string             `json:"params"`
	GOMAXPROCS      int                `json:"gomaxprocs"`
	AdaptiveProcs   bool               `json:"adaptive_procs,omitempty"`
	NumCPU          int                `json:"num_cpu"`
	CPU             string             `json:"cpu"`
	GoVersion       string             `json:"go_version"`
	OS              string             `json:"os"`
	Arch            string             `json:"arch"`
	Phases          []jsonPhase        `json:"phases"`
}

func us(d time.Duration) float64 { return math.Round(float64(d)/1e1) / 1e2 } // 0.01 µs resolution

// WriteJSON writes the report as one indented JSON object followed by a newline.
func (r *Report) WriteJSON(w io.Writer) error {
	out := jsonReport{
		Topology: r.Topology, Broker: r.Broker, Nodes: r.Nodes, NodeConcurrency: r.NodeConcurrency, NodePrefetch: r.NodePrefetch,
		Method: r.Method, Params: r.Params,
		GOMAXPROCS: r.GOMAXPROCS, AdaptiveProcs: r.AdaptiveProcs, NumCPU: r.NumCPU, CPU: r.CPU, GoVersion: r.GoVersion,
		OS: r.OS, Arch: r.Arch, Phases: make([]jsonPhase, 0, len(r.Phases)),
	}
	for _, p := range r.Procs {
		out.Procs = append(out.Procs, jsonProc{Role: p.Role, PID: p.PID, PeakRSSKiB: p.PeakRSS >> 10})
	}
	out.Clients = r.Clients
	for _, c := range r.RunCPU {
		if out.RunCPUs == nil {
			out.RunCPUs = map[string]float64{}
		}
		out.RunCPUs[c.Role] = math.Round(c.CPU.Seconds()*1000) / 1000
	}
	for _, p := range r.Phases {
		var cpu, perCore map[string]float64
		for _, c := range p.CPU {
			if d := p.CPUPerTask(c.Role); d > 0 {
				if cpu == nil {
					cpu, perCore = map[string]float64{}, map[string]float64{}
				}
				cpu[c.Role] = math.Round(float64(d)/10) / 100
				perCore[c.Role] = math.Round(p.TasksPerCore(c.Role))
			}
		}
		out.Phases = append(out.Phases, jsonPhase{
			CPUPerTaskUs: cpu, TasksPerCore: perCore,
			Name: p.Name, Tasks: p.Tasks, Errors: p.Errors,
			ElapsedS:    math.Round(p.Elapsed.Seconds()*1e6) / 1e6,
			TasksPerSec: math.Round(p.TasksPerSec()*10) / 10,
			Concurrency: p.Concurrency, Pipeline: p.Pipeline, Senders: p.Senders,
			P50us: us(p.Latency.P50), P90us: us(p.Latency.P90), P99us: us(p.Latency.P99),
			P999us: us(p.Latency.P999), MaxUs: us(p.Latency.Max), MeanUs: us(p.Latency.Mean),
		})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// WriteTable writes the report as a human-readable table, one row per phase.
func (r *Report) WriteTable(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "zerotask bench: %s, method %s %s\n", r.Where(), r.Method, r.Params)
	adaptive := ""
	if r.AdaptiveProcs {
		adaptive = " (1 while mostly idle)"
	}
	fmt.Fprintf(bw, "host: %s, GOMAXPROCS=%d%s, %d CPUs, %s, %s/%s\n\n",
		r.CPU, r.GOMAXPROCS, adaptive, r.NumCPU, r.GoVersion, r.OS, r.Arch)
	tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase \tin flight\ttasks\terrors\telapsed\ttasks/s\tp50\tp90\tp99\tmax\t")
	for _, p := range r.Phases {
		lat := [4]string{"-", "-", "-", "-"}
		if p.Hist != nil && p.Hist.Count() > 0 || p.Hist == nil && p.Latency.P50 > 0 {
			lat = [4]string{fmtDur(p.Latency.P50), fmtDur(p.Latency.P90), fmtDur(p.Latency.P99), fmtDur(p.Latency.Max)}
		}
		fmt.Fprintf(tw, "%-6s\t%d\t%s\t%s\t%.2fs\t%s\t%s\t%s\t%s\t%s\t\n",
			p.Name, p.Concurrency, fmtInt(p.Tasks), fmtInt(p.Errors), p.Elapsed.Seconds(),
			fmtInt(int64(math.Round(p.TasksPerSec()))), lat[0], lat[1], lat[2], lat[3])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := r.writeCost(bw); err != nil {
		return err
	}
	for _, p := range r.Phases {
		if p.Name == PhaseAsync && p.Pipeline != "" {
			switch p.Pipeline {
			case PipelineMap:
				fmt.Fprintf(bw, "\nasync: client.Map from %d goroutine(s), in flight shared among them; latency: a probe call every %v under that load\n", p.Senders, DefaultProbeEvery)
			case PipelineCalls:
				fmt.Fprintf(bw, "\nasync: one goroutine per call in flight, each CallRaw timed\n")
			}
			break
		}
	}
	return bw.Flush()
}

// fmtInt formats n with thousands separators: 1234567 -> "1,234,567".
func fmtInt(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// fmtDur formats a latency with three significant digits in the most readable unit.
func fmtDur(d time.Duration) string {
	switch {
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d)
	case d < time.Millisecond:
		return strconv.FormatFloat(float64(d)/1e3, 'f', digits(float64(d)/1e3), 64) + "µs"
	case d < time.Second:
		return strconv.FormatFloat(float64(d)/1e6, 'f', digits(float64(d)/1e6), 64) + "ms"
	default:
		return strconv.FormatFloat(d.Seconds(), 'f', digits(d.Seconds()), 64) + "s"
	}
}

// digits returns how many decimals give three significant digits for v in [1, 1000).
func digits(v float64) int {
	switch {
	case v >= 100:
		return 0
	case v >= 10:
		return 1
	default:
		return 2
	}
}

// Where describes the topology measured, for the report's first line.
func (r *Report) Where() string {
	knob := func(what string, v int) string {
		if v == 0 {
			return what + " default"
		}
		return fmt.Sprintf("%s %d", what, v)
	}
	nodes := fmt.Sprintf("%d node(s), %s, %s", r.Nodes, knob("concurrency", r.NodeConcurrency), knob("prefetch", r.NodePrefetch))
	clients := "this client"
	if r.Clients > 1 {
		clients = fmt.Sprintf("%d client processes", r.Clients)
	}
	switch r.Topology {
	case TopologyProcesses:
		return fmt.Sprintf("separate processes (broker, %s, %s) at %s", nodes, clients, r.Broker)
	case TopologyInProcess:
		return fmt.Sprintf("one process (in-process broker, %s, client)", nodes)
	}
	return fmt.Sprintf("external broker %s, %s", r.Broker, clients)
}

// writeCost writes the CPU time per task of each role and each process's peak memory.
func (r *Report) writeCost(w io.Writer) error {
	cost := false
	for _, p := range r.Phases {
		cost = cost || len(p.CPU) > 0
	}
	if cost {
		fmt.Fprintf(w, "\nCPU per task (user + system, each role's processes; tasks/s one core of it carries):\n")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "phase \tin flight\trole \tCPU/task\ttasks/s per core\t")
		for _, p := range r.Phases {
			for _, c := range p.CPU {
				d := p.CPUPerTask(c.Role)
				if d <= 0 {
					continue
				}
				fmt.Fprintf(tw, "%-6s\t%d\t%-6s\t%s\t%s\t\n", p.Name, p.Concurrency, c.Role, fmtDur(d), fmtInt(int64(math.Round(p.TasksPerCore(c.Role)))))
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(r.RunCPU) > 0 {
		fmt.Fprintf(w, "\nCPU over all phases (%d client processes):", r.Clients)
		for _, c := range r.RunCPU {
			fmt.Fprintf(w, " %s %.2fs", c.Role, c.CPU.Seconds())
		}
		fmt.Fprintln(w)
	}
	if len(r.Procs) > 0 {
		fmt.Fprintf(w, "\npeak RSS:")
		for i, p := range r.Procs {
			sep := ","
			if i == 0 {
				sep = ""
			}
			fmt.Fprintf(w, "%s %s (pid %d) %.1f MiB", sep, p.Role, p.PID, float64(p.PeakRSS)/(1<<20))
		}
		fmt.Fprintln(w)
	}
	return nil
}
