package main

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/testutil"
)

var listening = regexp.MustCompile(`broker listening on (tcp://\S+) \(PUB (tcp://\S+)\), node serving add, echo, sleep, subtract`)

// TestUpAndClientCommands runs `zerotask up` in this process, drives it with call, submit,
// status and result, then stops it by ending its context (what SIGINT/SIGTERM do): exit 0.
func TestUpAndClientCommands(t *testing.T) {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var upOut, upErr testutil.Buffer
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, []string{"up", "--listen", "tcp://127.0.0.1:0", "--pub", "tcp://127.0.0.1:0",
			"--concurrency", "2", "--log-level", "error"}, &stdio{out: &upOut, err: &upErr})
	}()
	var m []string
	testutil.Eventually(t, 10*time.Second, func() bool {
		m = listening.FindStringSubmatch(upOut.String())
		return m != nil
	}, "zerotask up never said where it listens: stdout %q, stderr %q", upOut.String(), upErr.String())
	router := m[1]
	// The line comes once the broker is bound; the node's hello may still be on its way, and
	// call refuses a method no node serves yet.
	testutil.Eventually(t, 10*time.Second, func() bool {
		code, out, _ := runArgs(t, "nodes", "--broker", router)
		return code == exitOK && strings.Contains(out, `"add"`)
	}, "the node of zerotask up never showed in zerotask nodes")

	tests := []struct {
		name string
		args []string
		code int
		out  string // exact stdout, unless empty
	}{
		{"add", []string{"call", "--broker", router, "add", "5", "6"}, exitOK, "11\n"},
		{"add by name", []string{"call", "--broker", router, "--params", `{"a":5,"b":6}`, "add"}, exitOK, "11\n"},
		{"subtract negative", []string{"call", "--broker", router, "subtract", "5", "-3"}, exitOK, "8\n"},
		{"echo a bare word", []string{"call", "--broker", router, "echo", "hello"}, exitOK, "\"hello\"\n"},
		{"echo an object", []string{"call", "--broker", router, "echo", `{"k": [1, 2]}`}, exitOK, "{\"k\":[1,2]}\n"},
		{"broker.ping", []string{"call", "--broker", router, "broker.ping"}, exitOK, "\"pong\"\n"},
		{"unknown broker method", []string{"call", "--broker", router, "broker.nope"}, exitFailure, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runArgs(t, tc.args...)
			if code != tc.code || (tc.out != "" && out != tc.out) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d, stdout %q", code, out, errOut, tc.code, tc.out)
			}
			if tc.code == exitFailure && (out != "" || !strings.Contains(errOut, `"code":-32601`)) {
				t.Fatalf("a JSON-RPC error must go to stderr as its object: stdout %q, stderr %q", out, errOut)
			}
		})
	}

	code, out, errOut := runArgs(t, "submit", "--broker", router, "sleep", "20")
	if code != exitOK {
		t.Fatalf("submit: exit %d, stderr %q", code, errOut)
	}
	id := strings.TrimSpace(out)
	code, out, errOut = runArgs(t, "result", "--broker", router, "--wait", "10s", id)
	var rec struct {
		ID, State string
		Result    json.RawMessage
	}
	if code != exitOK || json.Unmarshal([]byte(out), &rec) != nil || rec.ID != id || rec.State != "SUCCESS" || string(rec.Result) != "20" {
		t.Fatalf("result: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, _ = runArgs(t, "status", "--broker", router, id)
	if code != exitOK || !strings.Contains(out, `"state":"SUCCESS"`) {
		t.Fatalf("status: exit %d, stdout %q", code, out)
	}
	code, out, _ = runArgs(t, "status", "--broker", router, "no-such-task")
	if code != exitUnknown || !strings.Contains(out, `"state":"UNKNOWN"`) {
		t.Fatalf("status of an unknown id: exit %d, stdout %q; want exit %d", code, out, exitUnknown)
	}

	// On a terminal: tables, unless --json.
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"status", id, "--broker", router}, []string{"ID", "STATE", id, "SUCCESS", "sleep", "20"}},
		{[]string{"nodes", "--broker", router}, []string{"NAME", "CONCURRENCY", "add,echo,sleep,subtract,sum", "1 node(s)"}},
		{[]string{"stats", "--broker", router}, []string{"accepted", "nodes"}},
		{[]string{"nodes", "--broker", router, "--json"}, []string{`[{"id":`}},
	} {
		code, out, errOut := runTTY(t, tc.args...)
		if code != exitOK || !strings.HasSuffix(out, "\n") {
			t.Fatalf("%v on a terminal: exit %d, stdout %q, stderr %q", tc.args, code, out, errOut)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v on a terminal: output lacks %q:\n%s", tc.args, w, out)
			}
		}
	}

	stop() // what SIGINT does
	select {
	case code := <-exited:
		if code != exitOK {
			t.Fatalf("zerotask up exited %d after its context ended, want 0; stderr %q", code, upErr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("zerotask up did not stop 20s after its context ended")
	}
}

// TestBenchCommand runs a short in-process benchmark through the command line, by task count.
func TestBenchCommand(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"json", []string{"--json", "--phases", "sync,notify"}, []string{`"name": "sync"`, `"name": "notify"`, `"p50_us"`, `"tasks_per_sec"`, `"tasks": 300`}},
		{"table", []string{"--phases", "async", "--concurrency", "8"}, []string{"phase", "async", "300", "tasks/s", "p99"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"bench", "--in-process", "--tasks", "300", "--duration", "0", "--warmup", "10", "--log-level", "error"}, tc.args...)
			code, out, errOut := runArgs(t, args...)
			if code != exitOK {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
	code, _, errOut := runArgs(t, "bench", "--phases", "sync,warp", "--tasks", "10")
	if code != exitUsage || !strings.Contains(errOut, `unknown phase "warp"`) {
		t.Fatalf("unknown phase: exit %d, stderr %q", code, errOut)
	}
}
