package e2e

import (
	"testing"
	"time"

	"github.com/zerotask/zerotask/client"
	"github.com/zerotask/zerotask/internal/testutil"
)

// TestDrillKillNode is the first acceptance drill: a broker and 3 node processes, 10,000 sleep
// tasks of 1-5 ms, and one node killed with SIGKILL while it holds tasks. Every task ends
// SUCCESS; the tasks that ran twice are counted and reported, and they are at most what the
// killed node held (its capacity bounds that: concurrency + prefetch).
func TestDrillKillNode(t *testing.T) {
	testutil.SkipShort(t, "process drill")
	const (
		tasks       = 10_000
		concurrency = 16
		prefetch    = 16
	)
	dir := t.TempDir()
	_, router, pub := startBinaryBroker(t, "--heartbeat", "500ms")
	var nodes []*daemon
	for _, name := range []string{"n0", "n1", "n2"} {
		nodes = append(nodes, startDrillNode(t, dir, router, pub, name, "--heartbeat", "500ms",
			"--concurrency", "16", "--prefetch", "16"))
	}
	c := dial(t, router)
	testutil.Eventually(t, 10*time.Second, func() bool { return len(nodesOf(t, c)) == 3 }, "3 nodes connected")

	// The victim is killed once it holds tasks, while the submits go on.
	killed := make(chan int, 1)
	go func() {
		held := 0
		testutil.Poll(30*time.Second, func() bool {
			held = nodesOf(t, c)["n1"].Running
			return held >= 4
		})
		kill9(t, nodes[1])
		killed <- held
	}()
	start := time.Now()
	ids := submitTagged(t, c, 0, tasks)
	held := <-killed
	infos := waitAll(t, c, ids, 2*time.Minute)
	elapsed := time.Since(start)

	retried := 0
	for i, ti := range infos {
		if ti.State != client.StateSuccess {
			t.Fatalf("task %d (%s) ended %s (%v), want SUCCESS", i, ids[i], ti.State, ti.Err())
		}
		if ti.Attempts > 1 {
			retried++
		}
	}
	ran := runs(t, dir)
	twice, missing := 0, 0
	for tag := range tasks {
		switch n := len(ran[tag]); {
		case n == 0:
			missing++
		case n > 1:
			twice++
		}
	}
	t.Logf("%d tasks in %v: the killed node held %d at the last look (capacity %d); %d tasks handed out again, %d ran twice",
		tasks, elapsed.Round(time.Millisecond), held, concurrency+prefetch, retried, twice)
	if missing > 0 {
		t.Errorf("%d SUCCESS tasks have no start in the nodes' logs", missing)
	}
	// What the killed node held when the broker lost it is exactly what was handed out again.
	if twice > retried || retried > concurrency+prefetch {
		t.Errorf("%d tasks ran twice, %d were handed out again: want twice <= handed out again <= capacity %d",
			twice, retried, concurrency+prefetch)
	}
	if retried == 0 {
		t.Errorf("no task was handed out again: the kill hit a node that held nothing")
	}
	if s := statsOf(t, c); s.Nodes != 2 || s.Queued != 0 || s.Running != 0 {
		t.Errorf("broker after the drill: %+v", s)
	}
}
