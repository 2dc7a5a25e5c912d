package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/zerotask/zerotask/bench"
	"github.com/zerotask/zerotask/broker"
	"github.com/zerotask/zerotask/client"
	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/dispatch"
	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/node"
	"github.com/zerotask/zerotask/protocol"
)

// TestWalkthroughInProcess is the seed walkthrough as a library: a broker, a node serving add,
// a client calling add(5, 6).
func TestWalkthroughInProcess(t *testing.T) {
	s := startSystem(t, node.Config{Concurrency: 2})
	ctx := testutil.Context(t, 10*time.Second)
	var sum int
	if err := s.c.Call(ctx, "add", &sum, 5, 6); err != nil {
		t.Fatalf("Call(add, 5, 6): %v", err)
	}
	if sum != 11 {
		t.Fatalf("add(5, 6) = %d, want 11", sum)
	}
	raw, err := s.c.CallRaw(ctx, nil, "add", []byte(`{"a":5,"b":6}`))
	if err != nil || string(raw) != "11" {
		t.Fatalf("CallRaw(add, {a:5,b:6}) = %s, %v; want 11", raw, err)
	}
}

// TestWalkthroughBinary is the README walkthrough through the real binary: `zerotask broker`
// and `zerotask node` as child processes, then `zerotask call add 5 6` prints 11.
func TestWalkthroughBinary(t *testing.T) {
	brokerProc, router, pub := startBinaryBroker(t)
	nodeProc := startBinaryNode(t, router, pub, "--concurrency", "2")
	code, out, errOut := zerotask(t, 30*time.Second, "call", "--broker", router, "--timeout", "20s", "add", "5", "6")
	if code != 0 || out != "11\n" {
		t.Fatalf("zerotask call add 5 6: exit %d, stdout %q, stderr %q; want exit 0 and \"11\\n\"", code, out, errOut)
	}

	// submit, status, result: the async half of the walkthrough.
	code, out, errOut = zerotask(t, 30*time.Second, "submit", "--broker", router, "sleep", "50")
	if code != 0 {
		t.Fatalf("zerotask submit: exit %d, stderr %q", code, errOut)
	}
	id := strings.TrimSpace(out)
	if id == "" || strings.ContainsAny(id, " \n") {
		t.Fatalf("zerotask submit printed %q, want one task id", out)
	}
	code, out, errOut = zerotask(t, 30*time.Second, "status", "--broker", router, id)
	if code != 0 {
		t.Fatalf("zerotask status: exit %d, stderr %q", code, errOut)
	}
	var rec struct {
		ID     string          `json:"id"`
		State  string          `json:"state"`
		Method string          `json:"method"`
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal([]byte(out), &rec); err != nil || rec.ID != id || rec.Method != "sleep" {
		t.Fatalf("zerotask status printed %q (%v), want the record of %s", out, err, id)
	}
	switch rec.State {
	case "QUEUED", "RUNNING", "SUCCESS":
	default:
		t.Fatalf("state %q, want QUEUED, RUNNING or SUCCESS", rec.State)
	}
	code, out, errOut = zerotask(t, 30*time.Second, "result", "--broker", router, "--wait", "10s", id)
	if code != 0 {
		t.Fatalf("zerotask result: exit %d, stderr %q", code, errOut)
	}
	if err := json.Unmarshal([]byte(out), &rec); err != nil || rec.State != "SUCCESS" || string(rec.Result) != "50" {
		t.Fatalf("zerotask result printed %q (%v), want state SUCCESS and result 50", out, err)
	}

	// SIGTERM stops both gracefully: exit status 0.
	for _, d := range []*daemon{nodeProc, brokerProc} {
		stopDaemon(t, d)
	}
}

// stopDaemon sends SIGTERM to a zerotask daemon and expects it to exit 0 within 20 s.
func stopDaemon(t *testing.T, d *daemon) {
	t.Helper()
	if err := d.cmd.Process.Signal(sigterm); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.exited:
		if d.err != nil {
			t.Fatalf("zerotask %s after SIGTERM: %v, want exit 0\nstderr:\n%s", d.cmd.Args[1], d.err, d.Stderr())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("zerotask %s still running 20s after SIGTERM\nstderr:\n%s", d.cmd.Args[1], d.Stderr())
	}
}

// TestBinaryCallErrors checks that a JSON-RPC error goes to stderr as its error object with exit
// status 1, and nothing to stdout.
func TestBinaryCallErrors(t *testing.T) {
	_, router, pub := startBinaryBroker(t)
	startBinaryNode(t, router, pub, "--concurrency", "1")
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"unknown broker method", []string{"broker.no_such_method"}, codec.CodeMethodNotFound},
		{"reserved rpc method", []string{"rpc.discover"}, codec.CodeMethodNotFound},
		{"invalid params for add", []string{"add", "5", "x"}, codec.CodeInvalidParams},
		{"invalid params for broker.status", []string{"--params", `{"id":5}`, "broker.status"}, codec.CodeInvalidParams},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"call", "--broker", router, "--timeout", "20s"}, tc.args...)
			code, out, errOut := zerotask(t, 30*time.Second, args...)
			if code != 1 || out != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 1 and no stdout", code, out, errOut)
			}
			var e struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal([]byte(errOut), &e); err != nil || e.Code != tc.code || e.Message == "" {
				t.Fatalf("stderr %q (%v), want a JSON-RPC error object with code %d", errOut, err, tc.code)
			}
		})
	}
	// No node serves the method: said at once, nothing sent (exit 4); with --wait-for-node the
	// call waits, and its timeout says why nothing came.
	for _, tc := range []struct {
		args []string
		hint string
	}{
		{[]string{"nosuch"}, `no node serves "nosuch" from queue "default": not sent`},
		{[]string{"nosuch", "--wait-for-node"}, `no node serves "nosuch": the task waits in its queue`},
		{[]string{"sleep", "5000"}, `1 node(s) serve "sleep"`},
	} {
		args := append([]string{"call", "--broker", router, "--timeout", "500ms"}, tc.args...)
		code, _, errOut := zerotask(t, 30*time.Second, args...)
		// The task's deadline is the call's: it may end in the broker just before the call's
		// own timeout, answered as a JSON-RPC error (exit 1) instead of the timeout's hint
		// (exit 4): CodeExpired for a task still queued (no node took it), CodeDeadline for
		// one running. The error object is a line of its own (a notice may come before it).
		ended := false
		for _, line := range strings.Split(errOut, "\n") {
			for _, c := range []int{protocol.CodeExpired, protocol.CodeDeadline} {
				ended = ended || strings.HasPrefix(line, fmt.Sprintf(`{"code":%d,`, c))
			}
		}
		if !(code == 4 && strings.Contains(errOut, tc.hint) || code == 1 && ended) {
			t.Errorf("zerotask %s: exit %d, stderr %q; want exit 4 and the hint %q, or exit 1 and the deadline's error", strings.Join(args, " "), code, errOut, tc.hint)
		}
	}
	// Local failures are not JSON: nothing listens on this endpoint (exit 4).
	code, out, errOut := zerotask(t, 30*time.Second, "call", "--broker", testutil.FreeEndpoint(t), "--timeout", "300ms", "add", "1", "2")
	if code != 4 || out != "" || !strings.HasPrefix(errOut, "zerotask call: ") {
		t.Fatalf("call to a dead endpoint: exit %d, stdout %q, stderr %q; want exit 4 and a zerotask call: message", code, out, errOut)
	}
}

// TestBinaryUp runs `zerotask up` (a broker and a node in one process), calls it and stops it
// with SIGTERM: it must exit 0.
func TestBinaryUp(t *testing.T) {
	d, m := startDaemon(t, brokerLine, "up", "--listen", "tcp://127.0.0.1:0", "--pub", "tcp://127.0.0.1:0", "--concurrency", "2", "--log-level", "warn")
	code, out, errOut := zerotask(t, 30*time.Second, "call", "--broker", m[1], "--timeout", "20s", "subtract", "10", "4")
	if code != 0 || out != "6\n" {
		t.Fatalf("zerotask call subtract 10 4 against up: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	stopDaemon(t, d)
}

// TestHandleStates follows a sleep task through its handle: QUEUED while no node serves it,
// RUNNING once a node took it, SUCCESS when it is done.
func TestHandleStates(t *testing.T) {
	b, _ := startBroker(t, broker.Config{})
	c := dial(t, b.Addr())
	ctx := testutil.Context(t, 20*time.Second)
	h, err := c.Submit(ctx, "sleep", []any{500})
	if err != nil {
		t.Fatalf("Submit(sleep, 500): %v", err)
	}
	if h.ID() == "" {
		t.Fatal("handle has no id")
	}
	var seen []client.State
	observe := func() client.State {
		st, err := h.Status(ctx)
		if err != nil {
			t.Fatalf("Status: %v", err)
		}
		if len(seen) == 0 || seen[len(seen)-1] != st {
			seen = append(seen, st)
		}
		return st
	}
	if st := observe(); st != client.State("QUEUED") {
		t.Fatalf("state with no node = %s, want QUEUED", st)
	}
	startNode(t, b, node.Config{Concurrency: 1})
	testutil.Eventually(t, 10*time.Second, func() bool { return observe() != "QUEUED" }, "task never left QUEUED")
	testutil.Eventually(t, 10*time.Second, func() bool { return observe() == "SUCCESS" }, "task never reached SUCCESS (seen %v)", seen)
	want := []client.State{"QUEUED", "RUNNING", "SUCCESS"}
	if len(seen) != len(want) || seen[0] != want[0] || seen[1] != want[1] || seen[2] != want[2] {
		t.Fatalf("states seen %v, want %v", seen, want)
	}
	var ms int
	if err := h.Wait(ctx, &ms); err != nil || ms != 500 {
		t.Fatalf("Wait = %d, %v; want 500, nil", ms, err)
	}
	select {
	case <-h.Done():
	default:
		t.Fatal("Done not closed after Wait")
	}
	raw, done, rerr := h.TryResult()
	if !done || rerr != nil || string(raw) != "500" {
		t.Fatalf("TryResult() = %s, %v, %v; want 500, true, nil", raw, done, rerr)
	}
	info, err := c.Status(ctx, h.ID())
	if err != nil || info.State != "SUCCESS" || info.Method != "sleep" || info.Attempts != 1 || string(info.Result) != "500" {
		t.Fatalf("Status(%s) = %+v, %v", h.ID(), info, err)
	}
}

// TestUserBrokerTask registers broker.new_hotness on the broker's dispatcher: a client calls it
// like any task, no node involved.
func TestUserBrokerTask(t *testing.T) {
	d := dispatch.New()
	if err := d.Register("broker.new_hotness", dispatch.Pure1(func(name string) string { return "hot: " + name })); err != nil {
		t.Fatal(err)
	}
	b, _ := startBroker(t, broker.Config{Dispatcher: d})
	c := dial(t, b.Addr())
	ctx := testutil.Context(t, 10*time.Second)
	var got string
	if err := c.Call(ctx, "broker.new_hotness", &got, "zerotask"); err != nil {
		t.Fatalf("Call(broker.new_hotness): %v", err)
	}
	if got != "hot: zerotask" {
		t.Fatalf("broker.new_hotness = %q, want %q", got, "hot: zerotask")
	}
	// Built-ins still answer, and the user cannot have replaced them.
	var pong string
	if err := c.Call(ctx, "broker.ping", &pong); err != nil || pong != "pong" {
		t.Fatalf("broker.ping = %q, %v", pong, err)
	}
	err := c.Call(ctx, "broker.not_registered", nil)
	var rpcErr *codec.Error
	if !errors.As(err, &rpcErr) || rpcErr.Code != codec.CodeMethodNotFound {
		t.Fatalf("unknown broker method: %v, want a -32601 error", err)
	}
}

// TestBinaryBenchJSON runs `zerotask bench --json` briefly and checks the figures it prints.
func TestBinaryBenchJSON(t *testing.T) {
	code, out, errOut := zerotask(t, 90*time.Second, "bench", "--json", "--duration", "300ms", "--warmup", "100", "--nodes", "1")
	if code != 0 {
		t.Fatalf("zerotask bench: exit %d\nstderr:\n%s", code, errOut)
	}
	if strings.Contains(errOut, "\r") {
		t.Errorf("a progress bar was drawn on a stderr that is not a terminal: %q", errOut)
	}
	var rep struct {
		Topology string `json:"topology"`
		Broker   string `json:"broker"`
		Procs    []struct {
			Role       string `json:"role"`
			PID        int    `json:"pid"`
			PeakRSSKiB int64  `json:"peak_rss_kib"`
		} `json:"procs"`
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
		} `json:"phases"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("stdout is not the JSON report: %v\n%s", err, out)
	}
	// With no topology flag the bench runs what users deploy: the broker and the node as child
	// processes, each reported with its peak RSS.
	if rep.Topology != bench.TopologyProcesses || !strings.HasPrefix(rep.Broker, "tcp://") ||
		rep.GOMAXPROCS < 1 || rep.CPU == "" || len(rep.Phases) != 3 {
		t.Fatalf("report %+v", rep)
	}
	roles := map[string]bool{}
	for _, p := range rep.Procs {
		if p.PID <= 0 || p.PeakRSSKiB <= 0 {
			t.Errorf("process %+v: want a pid and a peak RSS", p)
		}
		roles[p.Role] = true
	}
	if !roles["broker"] || !roles["node"] {
		t.Errorf("processes %+v: want a broker and a node", rep.Procs)
	}
	for i, name := range []string{"sync", "async", "notify"} {
		p := rep.Phases[i]
		if p.Name != name || p.Tasks <= 0 || p.TasksPerSec <= 0 || p.Errors != 0 {
			t.Errorf("phase %d = %+v, want %s with tasks, tasks/s and no errors", i, p, name)
		}
		if name != "notify" && !(p.P50 > 0 && p.P50 <= p.P90 && p.P90 <= p.P99) {
			t.Errorf("phase %s percentiles p50 %v p90 %v p99 %v, want 0 < p50 <= p90 <= p99", name, p.P50, p.P90, p.P99)
		}
	}
}

// TestBinaryHelp checks -h on every subcommand of the built binary.
func TestBinaryHelp(t *testing.T) {
	for _, cmd := range []string{"broker", "node", "up", "call", "submit", "status", "result", "bench", "version"} {
		code, out, errOut := zerotask(t, 10*time.Second, cmd, "-h")
		if code != 0 || !regexp.MustCompile(`^usage: zerotask `+cmd).MatchString(out) {
			t.Errorf("zerotask %s -h: exit %d, stdout %q, stderr %q", cmd, code, out, errOut)
		}
	}
}
