package e2e

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/zerotask/zerotask/client"
	"github.com/zerotask/zerotask/internal/testutil"
)

func errorsIs(err, target error) bool { return errors.Is(err, target) }

// TestBackpressureQueueFull is an acceptance drill: a client that fills a bounded queue gets
// the documented error (-32001) at once; nothing it had queued is dropped; once the backlog
// drains its later calls succeed.
func TestBackpressureQueueFull(t *testing.T) {
	const bound = 50
	dir := t.TempDir()
	_, router, pub := startBinaryBroker(t, "--max-queued", "50")
	c := dial(t, router)
	ctx := testutil.Context(t, time.Minute)
	var ids []string
	for i := range bound {
		h, err := c.Submit(ctx, "sleep", []any{client.Named(map[string]int{"ms": 1, "tag": i})})
		if err != nil {
			t.Fatalf("submit %d of %d: %v", i+1, bound, err)
		}
		ids = append(ids, h.ID())
	}
	for range 3 {
		start := time.Now()
		_, err := c.Submit(ctx, "sleep", []any{client.Named(map[string]int{"ms": 1, "tag": -1})})
		took := time.Since(start)
		if !errors.Is(err, client.ErrQueueFull) {
			t.Fatalf("submit past the bound: %v, want -32001", err)
		}
		if took > 500*time.Millisecond {
			t.Errorf("the refusal took %v, want at once", took)
		}
		var sum int
		if err := c.CallWith(ctx, "add", &sum, []any{5, 6}, client.Timeout(time.Second)); !errors.Is(err, client.ErrQueueFull) {
			t.Fatalf("call past the bound: %v, want -32001", err)
		}
	}
	if s := statsOf(t, c); s.Queued != bound {
		t.Fatalf("queued %d, want %d", s.Queued, bound)
	}
	// A node drains the backlog: every accepted task runs, and new calls succeed again.
	startDrillNode(t, dir, router, pub, "drain", "--concurrency", "8")
	for i, ti := range waitAll(t, c, ids, 30*time.Second) {
		if ti.State != client.StateSuccess {
			t.Errorf("accepted task %d ended %s", i, ti.State)
		}
	}
	if n := len(runs(t, dir)[-1]); n != 0 {
		t.Errorf("a refused task ran %d times", n)
	}
	var sum int
	if err := c.Call(ctx, "add", &sum, 5, 6); err != nil || sum != 11 {
		t.Fatalf("add after the drain: %d, %v", sum, err)
	}
	if _, err := c.Submit(ctx, "sleep", []any{1}); err != nil {
		t.Fatalf("submit after the drain: %v", err)
	}
}

// TestBackpressureInFlight: past the broker's per-client in-flight bound a call gets -32002 at
// once; the calls already accepted complete, and later calls succeed.
func TestBackpressureInFlight(t *testing.T) {
	dir := t.TempDir()
	_, router, pub := startBinaryBroker(t, "--max-inflight", "20")
	startDrillNode(t, dir, router, pub, "n", "--concurrency", "64")
	c := dial(t, router, client.WithMaxInFlight(1000))
	testutil.Eventually(t, 10*time.Second, func() bool { return len(nodesOf(t, c)) == 1 }, "node connected")
	var ok, refused, other int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			start := time.Now()
			err := c.Call(ctx, "sleep", nil, client.Named(map[string]int{"ms": 300, "tag": i}))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, client.ErrTooManyInFlight):
				refused++
				if took := time.Since(start); took > 250*time.Millisecond {
					t.Errorf("a refusal took %v, want at once", took)
				}
			default:
				other++
				t.Errorf("call %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	t.Logf("60 concurrent calls, bound 20: %d done, %d refused with -32002", ok, refused)
	if ok < 20 || refused == 0 || ok+refused != 60 {
		t.Errorf("%d done, %d refused, %d other; want at least 20 done and some refused", ok, refused, other)
	}
	var sum int
	if err := c.Call(testutil.Context(t, 10*time.Second), "add", &sum, 5, 6); err != nil || sum != 11 {
		t.Fatalf("add after: %d, %v", sum, err)
	}
}
