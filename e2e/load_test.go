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
	cfg := node.Config{Concurrency: 4, Prefetch: 2}
	cfg.Name = "n1"
	n1, _ := startNode(t, b, cfg)
	cfg.Name = "n2"
	n2, _ := startNode(t, b, cfg)
	waitConnected(t, n1)
	waitConnected(t, n2)
	c := dial(t, b.Addr())
	ctx := testutil.Context(t, 60*time.Second)

	// A sampler looks at both nodes every millisecond while the broker has a backlog.
	var backlogSamples, bothBusy int
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if b.Stats().Queued < 50 {
				continue
			}
			s1, s2 := n1.Stats(), n2.Stats()
			backlogSamples++
			if s1.Running > 0 && s2.Running > 0 {
				bothBusy++
			}
		}
	}()
	callMany(t, ctx, c, 500, tasks, "sleep", []byte("[1]"))
	close(stop)
	<-sampled

	s1, s2 := n1.Stats(), n2.Stats()
	if got := s1.Done + s2.Done; got != tasks {
		t.Fatalf("nodes did %d + %d = %d tasks, want %d", s1.Done, s2.Done, got, tasks)
	}
	for _, s := range []node.Stats{s1, s2} {
		if s.Done < tasks*35/100 {
			t.Errorf("a node did %d of %d tasks, want a fair share (at least 35%%): n1 %d, n2 %d", s.Done, tasks, s1.Done, s2.Done)
		}
	}
	if backlogSamples < 20 {
		t.Fatalf("only %d samples with a backlog: the test did not load the broker", backlogSamples)
	}
	// A node between two tasks may be caught with nothing running for an instant; idling while
	// work waits would show in far more samples than that.
	if bothBusy*100 < backlogSamples*95 {
		t.Fatalf("both nodes busy in %d of %d samples taken while tasks were queued, want at least 95%%", bothBusy, backlogSamples)
	}
	t.Logf("n1 did %d, n2 did %d; both busy in %d of %d backlog samples", s1.Done, s2.Done, bothBusy, backlogSamples)
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
	var worst atomic.Int64
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
			st := s.n.Stats()
			held := int64(st.Running + st.Queued)
			if held > worst.Load() {
				worst.Store(held)
			}
			if st.Running+st.Queued+st.Credit > conc+prefetch {
				t.Errorf("node holds %d running + %d waiting with %d credit outstanding: more than %d", st.Running, st.Queued, st.Credit, conc+prefetch)
			}
			samples.Add(1)
		}
	}()
	callMany(t, ctx, s.c, 64, 400, "sleep", []byte("[2]"))
	close(stop)
	<-sampled
	if w := worst.Load(); w > conc+prefetch || w < conc+1 {
		t.Fatalf("the node held at most %d tasks, want between %d (it prefetched) and %d (its credit)", w, conc+1, conc+prefetch)
	}
	if st := s.n.Stats(); st.MaxRunning > conc {
		t.Fatalf("MaxRunning %d > concurrency %d", st.MaxRunning, conc)
	}
	t.Logf("held at most %d tasks over %d samples", worst.Load(), samples.Load())
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
