//go:build !windows

package e2e

import (
	"syscall"
	"testing"
	"time"

	"github.com/zerotask/zerotask/client"
	"github.com/zerotask/zerotask/internal/testutil"
)

// TestDrillFrozenNode is the second acceptance drill: a node frozen with SIGSTOP while it runs
// tasks is declared dead within 3 heartbeat intervals + 1 s, its tasks run on the other node,
// and once it is resumed (SIGCONT) its late results do not overwrite the new ones.
func TestDrillFrozenNode(t *testing.T) {
	testutil.SkipShort(t, "process drill")
	const hb = 300 * time.Millisecond
	dir := t.TempDir()
	_, router, pub := startBinaryBroker(t, "--heartbeat", hb.String())
	frozen := startDrillNode(t, dir, router, pub, "frozen", "--heartbeat", hb.String(), "--concurrency", "4", "--prefetch", "0")
	c := dial(t, router)
	testutil.Eventually(t, 10*time.Second, func() bool { return len(nodesOf(t, c)) == 1 }, "the first node connected")

	// Four long sleeps, all running on the node about to be frozen.
	ctx := testutil.Context(t, time.Minute)
	var ids []string
	for i := range 4 {
		h, err := c.Submit(ctx, "sleep", []any{client.Named(map[string]int{"ms": 2000, "tag": i})})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, h.ID())
	}
	testutil.Eventually(t, 10*time.Second, func() bool { return nodesOf(t, c)["frozen"].Running == 4 }, "4 tasks at the first node")
	startDrillNode(t, dir, router, pub, "spare", "--heartbeat", hb.String(), "--concurrency", "4", "--prefetch", "0")
	testutil.Eventually(t, 10*time.Second, func() bool { return len(nodesOf(t, c)) == 2 }, "the spare node connected")

	if err := frozen.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	resumed := false
	defer func() {
		if !resumed {
			_ = frozen.cmd.Process.Signal(syscall.SIGCONT) // so that the cleanup's SIGKILL is not the only way out
		}
	}()
	bound := 3*hb + time.Second
	testutil.Eventually(t, 10*time.Second, func() bool { _, ok := nodesOf(t, c)["frozen"]; return !ok }, "the frozen node declared dead")
	dead := time.Since(stopped)
	t.Logf("frozen node declared dead %v after SIGSTOP (bound %v)", dead.Round(time.Millisecond), bound)
	if dead > bound {
		t.Errorf("declared dead after %v, want within 3 heartbeat intervals + 1s = %v", dead, bound)
	}
	testutil.Eventually(t, 10*time.Second, func() bool { return nodesOf(t, c)["spare"].Running == 4 }, "the 4 tasks running at the spare node")

	// Resume the frozen node while the spare runs the tasks again: its late results (for
	// hand-outs the broker has since given to the spare) must be ignored.
	if err := frozen.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed = true
	infos := waitAll(t, c, ids, 30*time.Second)
	testutil.Eventually(t, 10*time.Second, func() bool { _, ok := nodesOf(t, c)["frozen"]; return ok }, "the resumed node back")
	// The resumed node has reconnected and sent whatever it had: the records stay the spare's.
	testutil.Eventually(t, 5*time.Second, func() bool { return statsOf(t, c).Stale >= 4 }, "the resumed node's 4 late results counted stale")
	for i, id := range ids {
		ti, err := c.Status(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if ti.State != client.StateSuccess || ti.Node != "spare" || ti.Attempts != 2 || string(ti.Result) != "2000" {
			t.Errorf("task %d: %+v (at first %+v), want SUCCESS by spare after 2 attempts", i, ti, infos[i])
		}
	}
	ran := runs(t, dir)
	for tag := range 4 {
		if len(ran[tag]) != 2 {
			t.Errorf("sleep %d started %d times (%v), want twice: once frozen, once on the spare", tag, len(ran[tag]), ran[tag])
		}
	}

	// The resumed node consumes again: eight sleeps need both nodes' four slots.
	var more []string
	for i := range 8 {
		h, err := c.Submit(ctx, "sleep", []any{client.Named(map[string]int{"ms": 300, "tag": 100 + i})})
		if err != nil {
			t.Fatal(err)
		}
		more = append(more, h.ID())
	}
	byNode := map[string]int{}
	for _, ti := range waitAll(t, c, more, 30*time.Second) {
		byNode[ti.Node]++
	}
	if byNode["frozen"] == 0 || byNode["spare"] == 0 {
		t.Errorf("after SIGCONT the tasks ran on %v, want both nodes", byNode)
	}
}
