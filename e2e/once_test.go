package e2e

import (
	"sync"
	"testing"
	"time"

	"github.com/zerotask/zerotask/client"
	"github.com/zerotask/zerotask/internal/testutil"
)

// TestKeyRunsOnce is an acceptance drill: a task submitted twice with the same idempotency key
// runs once, also when the submits race each other from several goroutines.
func TestKeyRunsOnce(t *testing.T) {
	dir := t.TempDir()
	_, router, pub := startBinaryBroker(t)
	startDrillNode(t, dir, router, pub, "n", "--concurrency", "4")
	c := dial(t, router)
	ctx := testutil.Context(t, time.Minute)
	submit := func(tag int, key string) (*client.Handle, error) {
		return c.Submit(ctx, "sleep", []any{client.Named(map[string]int{"ms": 200, "tag": tag})}, client.Key(key))
	}
	first, err := submit(1, "report-1")
	if err != nil {
		t.Fatal(err)
	}
	second, err := submit(1, "report-1")
	if err != nil || second.ID() != first.ID() {
		t.Fatalf("second submit: %v, id %s, want %s", err, second.ID(), first.ID())
	}
	// Eight goroutines race with a new key: one task.
	ids := make([]string, 8)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if h, err := submit(2, "report-2"); err == nil {
				ids[i] = h.ID()
			} else {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("racing submits got ids %v, want one", ids)
		}
	}
	for _, ti := range waitAll(t, c, []string{first.ID(), ids[0]}, 30*time.Second) {
		if ti.State != client.StateSuccess {
			t.Fatalf("%+v", ti)
		}
	}
	// Known as a finished task: a third submit still returns it and runs nothing.
	if h, err := submit(1, "report-1"); err != nil || h.ID() != first.ID() {
		t.Fatalf("submit after completion: %v, %v", h, err)
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return len(runs(t, dir)[1]) > 0 && len(runs(t, dir)[2]) > 0 }, "both ran")
	if r := runs(t, dir); len(r[1]) != 1 || len(r[2]) != 1 {
		t.Fatalf("runs: key 1 %d, key 2 %d; want once each", len(r[1]), len(r[2]))
	}
}

// TestDelayRunsOnce is an acceptance drill: a task with a 10 s delay runs once and not before
// its time, although its node is killed and replaced while it waits (a delayed task is held
// by the broker, not leased to a node: no visibility timeout can run it twice).
func TestDelayRunsOnce(t *testing.T) {
	testutil.SkipShort(t, "10 s drill")
	t.Parallel()
	const delay = 10 * time.Second
	dir := t.TempDir()
	_, router, pub := startBinaryBroker(t, "--heartbeat", "300ms")
	first := startDrillNode(t, dir, router, pub, "first", "--heartbeat", "300ms")
	c := dial(t, router)
	ctx := testutil.Context(t, time.Minute)
	submitted := time.Now()
	h, err := c.Submit(ctx, "sleep", []any{client.Named(map[string]int{"ms": 1, "tag": 10})}, client.Delay(delay))
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return len(nodesOf(t, c)) == 1 }, "node connected")
	kill9(t, first)
	startDrillNode(t, dir, router, pub, "second", "--heartbeat", "300ms")
	if st, err := h.Status(ctx); err != nil || st != client.StateQueued {
		t.Fatalf("status while delayed: %s, %v", st, err)
	}
	ti := waitAll(t, c, []string{h.ID()}, 30*time.Second)[0]
	if ti.State != client.StateSuccess || ti.Attempts != 1 || ti.Node != "second" {
		t.Fatalf("record %+v, want SUCCESS at the first attempt", ti)
	}
	s := starts(t, dir)[10]
	if len(s) != 1 {
		t.Fatalf("the delayed task started %d times, want once", len(s))
	}
	if early := s[0].at.Sub(submitted); early < delay-50*time.Millisecond {
		t.Fatalf("started %v after the submit, before its %v delay", early, delay)
	} else {
		t.Logf("the 10s-delayed task started %v after its submit", early.Round(time.Millisecond))
	}
}
