package e2e

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerotask/zerotask/broker"
	"github.com/zerotask/zerotask/client"
	"github.com/zerotask/zerotask/dispatch"
	"github.com/zerotask/zerotask/node"
	"github.com/zerotask/zerotask/protocol"
)

// TestLimitRunningCapRealNodes: a cap of 3 running tasks on a method, over 4 real nodes of
// concurrency 4: the handlers, counting themselves, never run more than 3 at once (and reach
// 3), and every task succeeds.
func TestLimitRunningCapRealNodes(t *testing.T) {
	b, _ := startBroker(t, broker.Config{Limits: []protocol.Limit{{Scope: protocol.LimitMethod, Name: "work", MaxRunning: 3}}})
	var now, most atomic.Int64
	d := dispatch.New()
	d.MustRegister("work", dispatch.Func1(func(ctx context.Context, i int) (int, error) {
		n := now.Add(1)
		defer now.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(3 * time.Millisecond) // the task's work, not synchronisation
		return i, nil
	}))
	for range 4 {
		n, _ := startNode(t, b, node.Config{Dispatcher: d, Concurrency: 4})
		waitConnected(t, n)
	}
	c := dial(t, b.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const tasks = 300
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range tasks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var got int
			if err := c.Call(ctx, "work", &got, i); err != nil || got != i {
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f != 0 {
		t.Fatalf("%d of %d tasks failed or got another's answer", f, tasks)
	}
	if m := most.Load(); m != 3 {
		t.Fatalf("at most %d handlers ran at once over 4 nodes, want the cap: 3", m)
	}
	t.Logf("cap 3 over 4 nodes of concurrency 4: %d tasks, at most %d handlers at once", tasks, most.Load())
}

// TestRateLimitedRealNode: a handler answering dispatch.RateLimited pauses its method; the
// task runs again after the pause, as the same attempt (max_attempts 1 still succeeds), and
// the other tasks of the method waited for the pause too.
func TestRateLimitedRealNode(t *testing.T) {
	b, _ := startBroker(t, broker.Config{})
	var calls atomic.Int64
	var firstAt, againAt atomic.Int64
	attempts := make(chan int, 4)
	d := dispatch.New()
	d.MustRegister("api", dispatch.Func1(func(ctx context.Context, i int) (int, error) {
		if calls.Add(1) == 1 {
			firstAt.Store(time.Now().UnixNano())
			return 0, dispatch.RateLimited(300 * time.Millisecond)
		}
		againAt.CompareAndSwap(0, time.Now().UnixNano())
		info, _ := dispatch.TaskInfoFrom(ctx)
		attempts <- info.Attempt
		return i, nil
	}))
	n, _ := startNode(t, b, node.Config{Dispatcher: d, Concurrency: 1})
	waitConnected(t, n)
	c := dial(t, b.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := c.Submit(ctx, "api", []any{7}, client.MaxAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	var got int
	if err := h.Wait(ctx, &got); err != nil || got != 7 {
		t.Fatalf("the rate-limited task: %v %d, want 7 (no attempt counted for the 429)", err, got)
	}
	if a := <-attempts; a != 1 {
		t.Fatalf("the run after the pause is attempt %d, want 1", a)
	}
	if wait := time.Duration(againAt.Load() - firstAt.Load()); wait < 300*time.Millisecond {
		t.Fatalf("ran again %v after the 429, want the 300ms pause", wait)
	}
	if st := b.Stats(); st.Failed != 0 || st.Retried != 0 {
		t.Fatalf("stats %+v: a rate limit is neither a failure nor a retry", st)
	}
}
