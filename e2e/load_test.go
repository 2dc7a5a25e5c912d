package e2e

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerotask/zerotask/broker"
	"github.com/zerotask/zerotask/client"
	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/node"
)

// callMany runs n calls of method with params from workers goroutines and fails the test on the
// first error.
func callMany(t testing.TB, ctx context.Context, c *client.Client, workers, n int, method string, params []byte) {
	t.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var dst []byte
			for next.Add(1) <= int64(n) {
				var err error
				if dst, err = c.CallRaw(ctx, dst[:0], method, params); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("%s: %v", method, err)
	}
}

// TestTwoNodesShareTheLoad sends 10,000 sleep tasks to two nodes: while the broker still has
// tasks queued, neither node sits idle, and each does a fair share.
func TestTwoNodesShareTheLoad(t *testing.T) {
	const tasks = 10_000
	b, _ := startBroker(t, broker.Config{})
	// Each node runs 8 tasks of 4 ms at once and holds 8 more: a refill has 4 ms to arrive before
	// the node runs dry, far more than a round trip even under the race detector.
	cfg := node.Config{Concurrency: 8, Prefetch: 8}
	cfg.Name = "n1"
	n1, _ := startNode(t, b, cfg)
	cfg.Name = "n2"
	n2, _ := startNode(t, b, cfg)
	waitConnected(t, n1)
	waitConnected(t, n2)
	c := dial(t, b.Addr())
	ctx := testutil.Context(t, 60*time.Second)

	// A sampler looks at both nodes every millisecond while the broker has a backlog. A node is
	// idle when it holds nothing at all (no task running, none waiting for a worker): the
	// broker is not feeding it although it has credit. Running == 0 alone is not idleness: it
	// happens for an instant between two tasks, more often under the race detector.
	var backlogSamples, bothBusy, idle1, idle2, longestIdle, idleRun, lateSamples int
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		last := time.Now()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			// A sample taken after the sampler itself waited far past its tick says the machine
			// was not running this process's goroutines, nodes included: what it sees is the
			// scheduler's doing, not the broker's. It is skipped and ends an idle streak.
			now := time.Now()
			late := now.Sub(last) > 5*time.Millisecond
			last = now
			if late {
				lateSamples++
				idleRun = 0
				continue
			}
			if b.Stats().Queued < 50 {
				continue
			}
			s1, s2 := n1.Stats(), n2.Stats()
			backlogSamples++
			if s1.Running > 0 && s2.Running > 0 {
				bothBusy++
			}
			i1, i2 := s1.Running+s1.Queued == 0, s2.Running+s2.Queued == 0
			if i1 {
				idle1++
			}
			if i2 {
				idle2++
			}
			if (i1 || i2) && idleRun == 10 { // evidence for a failure below
				t.Logf("a node idle for 10 samples in a row: n1 %+v; n2 %+v; broker %+v", s1, s2, b.Stats())
			}
			if i1 || i2 {
				idleRun++
				longestIdle = max(longestIdle, idleRun)
			} else {
				idleRun = 0
			}
		}
	}()
	callMany(t, ctx, c, 500, tasks, "sleep", []byte("[4]"))
	close(stop)
	<-sampled

	s1, s2 := n1.Stats(), n2.Stats()
	t.Logf("n1 did %d, n2 did %d; over %d backlog samples: both running %d, n1 idle %d, n2 idle %d, longest idle streak %d; %d late samples skipped; hellos %d, %d",
		s1.Done, s2.Done, backlogSamples, bothBusy, idle1, idle2, longestIdle, lateSamples, s1.Hellos, s2.Hellos)
	if backlogSamples < 20 {
		t.Fatalf("only %d samples with a backlog: the test did not load the broker", backlogSamples)
	}
	for _, s := range []node.Stats{s1, s2} {
		if s.Done < tasks*35/100 {
			t.Errorf("a node did %d of %d tasks, want a fair share (at least 35%%): n1 %d, n2 %d", s.Done, tasks, s1.Done, s2.Done)
		}
	}
	// Bounds. Idleness for an instant (a refill in flight) is not what this test is after; a
	// node left without work while tasks wait shows in a large share of the samples, or in
	// long streaks. Without the race detector a run here has (nearly) no idle sample and no
	// reconnection. The race detector slows everything several times and, on a loaded machine,
	// has shown idle streaks of hundreds of milliseconds and heartbeat losses (a node
	// reconnecting, its tasks run twice: at-least-once), so only coarse bounds hold there.
	maxIdlePct, minBothPct := 2, 90
	if raceEnabled {
		maxIdlePct, minBothPct = 25, 60
	}
	if idle1*100 > backlogSamples*maxIdlePct || idle2*100 > backlogSamples*maxIdlePct {
		t.Errorf("a node was idle while tasks were queued: n1 in %d, n2 in %d of %d samples (want at most %d%%)", idle1, idle2, backlogSamples, maxIdlePct)
	}
	if bothBusy*100 < backlogSamples*minBothPct {
		t.Errorf("both nodes were running tasks in only %d of %d backlog samples, want at least %d%%", bothBusy, backlogSamples, minBothPct)
	}
	got := s1.Done + s2.Done
	if raceEnabled {
		if got < tasks {
			t.Errorf("nodes did %d + %d = %d tasks, want at least %d", s1.Done, s2.Done, got, tasks)
		}
		return
	}
	if longestIdle > 25 {
		t.Errorf("a node was idle for %d consecutive samples (about %d ms) while tasks were queued", longestIdle, longestIdle)
	}
	if s1.Hellos != 1 || s2.Hellos != 1 {
		t.Errorf("nodes said hello %d and %d times: a connection was lost on loopback", s1.Hellos, s2.Hellos)
	}
	if got != tasks {
		t.Errorf("nodes did %d + %d = %d tasks, want exactly %d", s1.Done, s2.Done, got, tasks)
	}
}

// TestConcurrencyBound runs many sleep tasks on a node of concurrency 2: it never runs 3.
func TestConcurrencyBound(t *testing.T) {
	s := startSystem(t, node.Config{Concurrency: 2, Prefetch: 8})
	callMany(t, testutil.Context(t, 30*time.Second), s.c, 32, 200, "sleep", []byte("[2]"))
	st := s.n.Stats()
	if st.MaxRunning != 2 {
		t.Fatalf("MaxRunning = %d, want exactly 2 (the concurrency, reached under load)", st.MaxRunning)
	}
	if st.Done != 200 {
		t.Fatalf("Done = %d, want 200", st.Done)
	}
}

// TestCreditBound checks, under a backlog, that a node never holds more tasks than the credit
// it granted (Concurrency + Prefetch): running + waiting + credit outstanding stays within it,
// and the broker never counts more running at the node than that.
func TestCreditBound(t *testing.T) {
	const conc, prefetch = 2, 3
	s := startSystem(t, node.Config{Concurrency: conc, Prefetch: prefetch})
	ctx := testutil.Context(t, 30*time.Second)
	var samples atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(200 * time.Microsecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			// Held and Credit come from one snapshot under the node's credit lock, so their sum
			// is exact (Running and Queued are separate counters, read at different moments).
			st := s.n.Stats()
			if st.Held+st.Credit > conc+prefetch {
				t.Errorf("node holds %d tasks with %d credit outstanding: more than %d", st.Held, st.Credit, conc+prefetch)
			}
			samples.Add(1)
		}
	}()
	callMany(t, ctx, s.c, 64, 400, "sleep", []byte("[2]"))
	close(stop)
	<-sampled
	st := s.n.Stats()
	if w := st.MaxHeld; w > conc+prefetch || w < conc+1 {
		t.Fatalf("the node held at most %d tasks, want between %d (it prefetched) and %d (its credit)", w, conc+1, conc+prefetch)
	}
	if st.MaxRunning > conc {
		t.Fatalf("MaxRunning %d > concurrency %d", st.MaxRunning, conc)
	}
	t.Logf("held at most %d tasks; %d samples", st.MaxHeld, samples.Load())
}

// TestMap100k maps add over 100,000 inputs: every result comes back, in input order.
func TestMap100k(t *testing.T) {
	const n = 100_000
	s := startSystem(t, node.Config{})
	inputs := make([]any, n)
	for i := range inputs {
		inputs[i] = []int{i, 1}
	}
	got, err := client.Map[int](testutil.Context(t, 90*time.Second), s.c, "add", inputs)
	if err != nil {
		t.Fatalf("Map: %v", err)
	}
	if len(got) != n {
		t.Fatalf("Map returned %d results, want %d", len(got), n)
	}
	for i, v := range got {
		if v != i+1 {
			t.Fatalf("result %d = %d, want %d (out of order or lost)", i, v, i+1)
		}
	}
}
