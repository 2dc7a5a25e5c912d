package e2e

import (
	"testing"
	"time"

	"github.com/zerotask/zerotask/client"
	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/node"
)

// TestRevokeRunning is an acceptance drill: the revoke of a running sleep 10000 ends it within
// 1 s (the node cancels the handler's context and answers; the broker frees the task).
func TestRevokeRunning(t *testing.T) {
	sys := startSystem(t, node.Config{Concurrency: 2})
	ctx := testutil.Context(t, 30*time.Second)
	h, err := sys.c.Submit(ctx, "sleep", []any{10000})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() bool {
		st, err := h.Status(ctx)
		return err == nil && st == client.StateRunning && sys.n.Stats().Running == 1
	}, "sleep 10000 running")
	start := time.Now()
	ti, err := sys.c.Revoke(ctx, h.ID())
	if err != nil || ti.State != client.StateRevoked {
		t.Fatalf("revoke: %+v, %v", ti, err)
	}
	testutil.Eventually(t, 2*time.Second, func() bool {
		return sys.n.Stats().Running == 0 && sys.b.Stats().Running == 0
	}, "the revoked sleep ended at the node and released at the broker")
	took := time.Since(start)
	t.Logf("revoked sleep 10000 ended %v after the revoke", took.Round(time.Millisecond))
	if took > time.Second {
		t.Errorf("revoke took %v to end the task, want within 1s", took)
	}
	if err := h.Wait(ctx, nil); !errorsIs(err, client.ErrRevoked) {
		t.Errorf("Wait on the revoked task: %v, want -32004", err)
	}
	if s := sys.n.Stats(); s.Revoked != 1 {
		t.Errorf("node stats %+v, want 1 revoked", s)
	}
}

// TestRevokeQueued: a revoked task that is still queued never runs.
func TestRevokeQueued(t *testing.T) {
	sys := startSystem(t, node.Config{Concurrency: 1, Prefetch: -1})
	ctx := testutil.Context(t, 30*time.Second)
	busy, err := sys.c.Submit(ctx, "sleep", []any{10000})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() bool { return sys.n.Stats().Running == 1 }, "busy")
	queued, err := sys.c.Submit(ctx, "echo", []any{"never"})
	if err != nil {
		t.Fatal(err)
	}
	if ti, err := sys.c.Revoke(ctx, queued.ID()); err != nil || ti.State != client.StateRevoked {
		t.Fatalf("revoke queued: %+v, %v", ti, err)
	}
	if _, err := sys.c.Revoke(ctx, busy.ID()); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return sys.n.Stats().Running == 0 }, "busy revoked")
	// The node is free now: a task submitted after runs, and the revoked one never came.
	var s string
	if err := sys.c.Call(ctx, "echo", &s, "after"); err != nil || s != "after" {
		t.Fatalf("echo after: %q, %v", s, err)
	}
	if st := sys.n.Stats(); st.Received != 2 {
		t.Errorf("node received %d tasks, want 2 (the busy one and the echo after): the revoked one ran", st.Received)
	}
}
