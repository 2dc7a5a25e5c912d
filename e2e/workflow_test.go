package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/zerotask/zerotask/client"
	"github.com/zerotask/zerotask/internal/testutil"
)

// TestDrillDurableWorkflowKill: a `zerotask broker --store redis://...` process runs a chord
// of 10,000 members and is killed with SIGKILL when a few thousand have answered, then
// restarted under the same owner id on the same port. The graph resumes: the callback runs
// once, with all 10,000 results, each its own member's, in member order.
func TestDrillDurableWorkflowKill(t *testing.T) {
	testutil.SkipShort(t, "process drill")
	const members = 10_000
	url, _ := startRedisStore(t)
	router := testutil.FreeEndpoint(t)
	brokerArgs := []string{"broker", "--listen", router, "--pub", "none", "--log-level", "warn",
		"--heartbeat", "500ms", "--store", url, "--owner", "workflow-drill"}
	b1, _ := startDaemon(t, brokerLine, brokerArgs...)
	startBinaryNode(t, router, "none", "--heartbeat", "500ms", "--concurrency", "8", "--name", "n1")
	c := dial(t, router)
	testutil.Eventually(t, 10*time.Second, func() bool { return len(nodesOf(t, c)) == 1 }, "the node connected")

	// Each member sleeps a distinct number of milliseconds, about 2, and answers it as given:
	// its result names it.
	want := make([]string, members)
	flows := make([]*client.Flow, members)
	for i := range flows {
		want[i] = fmt.Sprintf("2.%05d", i)
		flows[i] = client.Task("sleep", []any{json.RawMessage(want[i])})
	}
	ctx := testutil.Context(t, 5*time.Minute)
	h, err := c.SubmitWorkflow(ctx, client.Chord(flows, client.Task("echo", nil)))
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, time.Minute, func() bool { return statsOf(t, c).Succeeded >= 3000 }, "3,000 members done")
	done := statsOf(t, c).Succeeded
	kill9(t, b1)
	b2, _ := startDaemon(t, brokerLine, brokerArgs...)

	var got []json.RawMessage
	if err := h.Wait(ctx, &got); err != nil {
		t.Fatalf("the graph after the restart: %v\nbroker stderr:\n%s", err, b2.Stderr())
	}
	if len(got) != members {
		t.Fatalf("the callback got %d results, want %d", len(got), members)
	}
	for i, r := range got {
		if string(r) != want[i] {
			t.Fatalf("result %d is %s, want %s (its own member's)", i, r, want[i])
		}
	}
	wi, err := c.WorkflowStatus(ctx, h.ID())
	if err != nil || wi.State != client.StateSuccess || wi.Counts[client.StateSuccess] != members+1 {
		t.Fatalf("graph record: %+v, %v", wi.Counts, err)
	}
	cb, err := c.Status(ctx, h.ID()+fmt.Sprintf(".%d", members))
	if err != nil || cb.State != client.StateSuccess || cb.Attempts != 1 || cb.Method != "echo" {
		t.Fatalf("callback record %+v, %v: want SUCCESS after one hand-out", cb, err)
	}
	cs := statsOf(t, c)
	t.Logf("%d members, %d done before the kill; the restarted broker ran %d tasks (%d taken back from the store)",
		members, done, cs.Succeeded, cs.Claimed)
	if cs.Succeeded > members+1-uint64(done)+uint64(8+4096) {
		t.Errorf("the restarted broker ran %d tasks: more than those left and what the node held", cs.Succeeded)
	}
}

// TestWorkflowRevokeProcesses: a chord of 1,010 `sleep 60000` members (and a callback) on a
// `zerotask broker` process, with one `zerotask node` process of concurrency 10 and a prefetch
// of 1: 10 members run (the node's log of starts says which), one waits in the node and 999 in
// the broker's queue. Revoking the graph ends every step REVOKED, and the 10 running sleeps end
// at once in the node process (their handlers' contexts are cancelled: a sleep returns only at
// its end or then); no other member ever starts.
func TestWorkflowRevokeProcesses(t *testing.T) {
	const members, running = 1010, 10
	_, router, pub := startBinaryBroker(t)
	dir := t.TempDir()
	startDrillNode(t, dir, router, pub, "n1", "--concurrency", "10", "--prefetch", "1")
	c := dial(t, router)
	testutil.Eventually(t, 10*time.Second, func() bool { return len(nodesOf(t, c)) == 1 }, "the node connected")
	flows := make([]*client.Flow, members)
	for i := range flows {
		flows[i] = client.Task("sleep", []any{sleepParams(i, 60_000)})
	}
	ctx := testutil.Context(t, time.Minute)
	h, err := c.SubmitWorkflow(ctx, client.Chord(flows, client.Task("sum", nil)))
	if err != nil {
		t.Fatal(err)
	}
	var wi client.WorkflowInfo
	testutil.Eventually(t, 20*time.Second, func() bool {
		wi, err = c.WorkflowStatus(ctx, h.ID())
		return err == nil && len(runs(t, dir)) == running && wi.Counts[client.StateRunning] == running
	}, "%d members running: %+v, %v", running, &wi.Counts, &err)
	if wi.Counts[client.StateQueued]+wi.Counts[client.StateRunning] != members || wi.Counts[client.StatePending] != 1 {
		t.Fatalf("before the revoke: %+v, want %d queued or running and the callback pending", wi.Counts, members)
	}
	before := wi.Counts
	revoked := time.Now()
	if ti, err := c.Revoke(ctx, h.ID()); err != nil || ti.State != client.StateRevoked {
		t.Fatalf("Revoke: %+v, %v", ti, err)
	}
	if err := h.Wait(ctx, nil); !errors.Is(err, client.ErrRevoked) {
		t.Fatalf("Wait: %v, want ErrRevoked", err)
	}
	testutil.Eventually(t, 10*time.Second, func() bool {
		return nodesOf(t, c)["n1"].Running == 0 && statsOf(t, c).Running == 0
	}, "the running sleeps ended in the node process")
	ended := time.Since(revoked)
	wi, err = c.WorkflowStatus(ctx, h.ID())
	if err != nil || wi.State != client.StateRevoked || wi.Counts[client.StateRevoked] != members+1 || len(wi.Steps) != members+1 {
		t.Fatalf("after the revoke: %s %+v, %v; want all %d steps REVOKED", wi.State, wi.Counts, err, members+1)
	}
	if n := len(runs(t, dir)); n != running {
		t.Fatalf("%d members started in the node, want the %d that ran before the revoke", n, running)
	}
	t.Logf("revoked a graph of %d queued and %d running members (%d of them started in the node): every step REVOKED, the running sleeps ended %v after the revoke",
		before[client.StateQueued], before[client.StateRunning], running, ended.Round(time.Millisecond))
}
