package e2e

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/zerotask/zerotask/client"
	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/protocol"
)

// TestEventsHeadFailure: `zerotask events --state FAILURE | head -n 1` prints the first
// failure as one JSON line, and the pipeline ends by itself once head is done (events stops at
// its next write). Successes run between the failures, and are filtered out.
func TestEventsHeadFailure(t *testing.T) {
	sh := testutil.Binary(t, "sh", "apt-get install -y dash")
	_, router, pub := startBinaryBroker(t)
	startBinaryNode(t, router, pub)
	c := dial(t, router)
	ctx := testutil.Context(t, 60*time.Second)

	cmd := exec.CommandContext(ctx, sh, "-c", `"$0" events --sub "$1" --state FAILURE | head -n 1`, zerotaskBin, pub)
	cmd.WaitDelay = 5 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// The subscription starts at some point: keep submitting a success and a failure until
	// the pipeline has ended (bounded by ctx).
	var err error
loop:
	for i := 0; ; i++ {
		select {
		case err = <-done:
			break loop
		case <-ctx.Done():
			t.Fatalf("the pipeline did not end: stdout %q, stderr %q", out.String(), errb.String())
		default:
		}
		if _, e := c.Submit(ctx, "add", []any{i, 1}); e != nil {
			t.Fatal(e)
		}
		if _, e := c.Submit(ctx, "add", []any{"x", i}); e != nil {
			t.Fatal(e)
		}
		time.Sleep(10 * time.Millisecond) // pace the load, not a synchronisation
	}
	if err != nil {
		t.Fatalf("pipeline: %v, stderr %q", err, errb.String())
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	if len(lines) != 1 {
		t.Fatalf("printed %d lines, want 1: %q", len(lines), out.String())
	}
	var e struct{ Time, ID, State, Method, Queue string }
	if err := json.Unmarshal([]byte(lines[0]), &e); err != nil {
		t.Fatalf("not JSON: %q: %v", lines[0], err)
	}
	if e.State != protocol.StateFailure || e.Method != "add" || e.Queue != protocol.DefaultQueue || e.ID == "" || e.Time == "" {
		t.Errorf("event %+v, want a FAILURE of add in the default queue with an id and a time", e)
	}
}

// TestEventsFilters: --method, --queue and --state select the events printed, --count stops
// the command.
func TestEventsFilters(t *testing.T) {
	_, router, pub := startBinaryBroker(t)
	startBinaryNode(t, router, pub, "--queues", "default,side")
	c := dial(t, router)
	ctx := testutil.Context(t, 60*time.Second)
	cmd := exec.CommandContext(ctx, zerotaskBin, "events", "--sub", pub, "--method", "echo", "--queue", "side", "--state", "SUCCESS,RUNNING", "--count", "2")
	cmd.WaitDelay = 5 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
loop:
	for i := 0; ; i++ {
		select {
		case err = <-done:
			break loop
		case <-ctx.Done():
			t.Fatalf("events did not stop after --count 2: stdout %q, stderr %q", out.String(), errb.String())
		default:
		}
		var s string
		if e := c.Call(ctx, "add", nil, i, 1); e != nil {
			t.Fatal(e)
		}
		if e := c.Call(ctx, "echo", &s, "x"); e != nil { // default queue: filtered out
			t.Fatal(e)
		}
		h, e := c.Submit(ctx, "echo", []any{"side"}, client.Queue("side"))
		if e != nil {
			t.Fatal(e)
		}
		if e := h.Wait(ctx, &s); e != nil {
			t.Fatal(e)
		}
		time.Sleep(10 * time.Millisecond) // pace the load, not a synchronisation
	}
	if err != nil {
		t.Fatalf("events: %v, stderr %q", err, errb.String())
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("printed %d lines, want 2: %q", len(lines), out.String())
	}
	for _, l := range lines {
		var e struct{ State, Method, Queue string }
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		if e.Method != "echo" || e.Queue != "side" || (e.State != protocol.StateSuccess && e.State != protocol.StateRunning) {
			t.Errorf("event %q passed the filters", l)
		}
	}
}
