package e2e

import (
	"bytes"
	"context"
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
	// The subscription starts at some point: keep submitting a success and a failure until
	// the pipeline has ended.
	lines := feedUntilExit(ctx, t, cmd, "the pipeline", func(i int) {
		if _, e := c.Submit(ctx, "add", []any{i, 1}); e != nil {
			t.Fatal(e)
		}
		if _, e := c.Submit(ctx, "add", []any{"x", i}); e != nil {
			t.Fatal(e)
		}
	})
	if len(lines) != 1 {
		t.Fatalf("printed %d lines, want 1: %q", len(lines), lines)
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
	lines := feedUntilExit(ctx, t, cmd, "events --count 2", func(i int) {
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
	})
	if len(lines) != 2 {
		t.Fatalf("printed %d lines, want 2: %q", len(lines), lines)
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

// feedUntilExit starts cmd and calls load(0), load(1), ... paced 10 ms apart until cmd exits
// (a subscription starts at some point: what is published before is not seen), then returns
// the lines cmd printed. It fails the test when cmd fails or ctx ends first.
func feedUntilExit(ctx context.Context, t *testing.T, cmd *exec.Cmd, what string, load func(i int)) []string {
	t.Helper()
	cmd.WaitDelay = 5 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for i := 0; ; i++ {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%s: %v, stderr %q", what, err, errb.String())
			}
			return strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
		case <-ctx.Done():
			t.Fatalf("%s did not end: stdout %q, stderr %q", what, out.String(), errb.String())
		default:
		}
		load(i)
		time.Sleep(10 * time.Millisecond) // pace the load, not a synchronisation
	}
}
