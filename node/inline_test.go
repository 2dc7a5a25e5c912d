package node

import (
	"context"
	"testing"
	"time"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/dispatch"
	"github.com/zerotask/zerotask/internal/testutil"
)

// idleWorkers returns how many workers wait in popWait with nothing to do.
func (q *taskQueue) idleWorkers() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.idle - q.lent
}

// TestInlineRun: a lone context-free task runs on the reader while a worker is idle, answers
// as a worker's run would, and keeps the bounds: with every worker
// busy it waits for one (MaxRunning stays Concurrency), a handler that reads its context goes
// to a worker, and after a slow inline run the next messages go to the workers.
func TestInlineRun(t *testing.T) {
	d := testDispatcher(t)
	release := make(chan struct{})
	d.MustRegister("hold", dispatch.HandlerFunc(func(ctx context.Context, dst, p []byte) ([]byte, error) {
		select {
		case <-release:
		case <-ctx.Done():
			return dst, ctx.Err()
		}
		return append(dst, "true"...), nil
	}))
	d.MustRegister("slow", freeFunc(func(_ context.Context, dst, _ []byte) ([]byte, error) {
		time.Sleep(2 * svcAlwaysAbove) // a handler's own work, not synchronisation
		return append(dst, "true"...), nil
	}))
	f := newFakeBroker(t)
	rn := startNode(t, f, Config{Concurrency: 1, Prefetch: 4, FixedCredit: true, Dispatcher: d})
	idle := func() {
		t.Helper()
		testutil.Eventually(t, waitLong, func() bool { return rn.q.idleWorkers() == 1 }, "the worker idle")
	}

	idle()
	if r := waitResult(t, f, f.submit("add", "[2,3]")); string(r.Result) != "5" {
		t.Fatalf("add answered %s %+v", r.Result, r.Error)
	}
	if got := rn.inlined.Load(); got != 1 {
		t.Fatalf("%d tasks run on the reader, want 1", got)
	}

	// The worker busy: the next add waits for it.
	idle()
	held := f.submit("hold", "[]")
	testutil.Eventually(t, waitLong, func() bool { return rn.Stats().Running == 1 }, "hold running")
	add := f.submit("add", "[4,5]")
	testutil.Eventually(t, waitLong, func() bool { return rn.Stats().Queued == 1 }, "add queued: %+v", rn.Stats())
	close(release)
	if r := waitResult(t, f, add); string(r.Result) != "9" {
		t.Fatalf("add answered %s %+v", r.Result, r.Error)
	}
	if r := waitResult(t, f, held); string(r.Result) != "true" {
		t.Fatalf("hold answered %s %+v", r.Result, r.Error)
	}
	if s := rn.Stats(); s.MaxRunning != 1 || rn.inlined.Load() != 1 {
		t.Fatalf("MaxRunning %d, %d run on the reader; want 1 and 1", s.MaxRunning, rn.inlined.Load())
	}

	// A slow inline run: the next message goes to the worker.
	idle()
	if r := waitResult(t, f, f.submit("slow", "[]")); string(r.Result) != "true" {
		t.Fatalf("slow answered %s %+v", r.Result, r.Error)
	}
	idle()
	if r := waitResult(t, f, f.submit("add", "[1,1]")); string(r.Result) != "2" {
		t.Fatalf("add answered %s %+v", r.Result, r.Error)
	}
	if got := rn.inlined.Load(); got != 2 {
		t.Fatalf("%d tasks run on the reader, want 2 (slow, and not the add after it)", got)
	}
	f.CheckClean()
}

// TestInlinePanic: a context-free handler that panics on the reader is answered -32603, and
// the node goes on serving, on the reader too.
func TestInlinePanic(t *testing.T) {
	d := testDispatcher(t)
	d.SetLogger(quiet)
	d.MustRegister("boom", freeFunc(func(context.Context, []byte, []byte) ([]byte, error) { panic("boom") }))
	f := newFakeBroker(t)
	rn := startNode(t, f, Config{Concurrency: 1, Prefetch: 4, Dispatcher: d})
	testutil.Eventually(t, waitLong, func() bool { return rn.q.idleWorkers() == 1 }, "the worker idle")
	if r := waitResult(t, f, f.submit("boom", "[]")); r.Error == nil || r.Error.Code != codec.CodeInternalError {
		t.Fatalf("boom answered %s %+v, want %d", r.Result, r.Error, codec.CodeInternalError)
	}
	if got := rn.inlined.Load(); got != 1 {
		t.Fatalf("%d tasks run on the reader, want 1", got)
	}
	if r := waitResult(t, f, f.submit("add", "[2,3]")); string(r.Result) != "5" {
		t.Fatalf("add answered %s %+v", r.Result, r.Error)
	}
	f.CheckClean()
}

// TestInlineStop: a stop waits for a task running on the reader as for a worker's: its result
// is reported, and the bye comes last.
func TestInlineStop(t *testing.T) {
	d := testDispatcher(t)
	started, release := make(chan struct{}), make(chan struct{})
	d.MustRegister("wait", freeFunc(func(_ context.Context, dst, _ []byte) ([]byte, error) {
		close(started)
		<-release
		return append(dst, "true"...), nil
	}))
	f := newFakeBroker(t)
	rn := startNode(t, f, Config{Concurrency: 1, Prefetch: 2, Dispatcher: d})
	testutil.Eventually(t, waitLong, func() bool { return rn.q.idleWorkers() == 1 }, "the worker idle")
	id := f.submit("wait", "[]")
	select {
	case <-started:
	case <-time.After(waitLong):
		t.Fatal("wait did not start")
	}
	if got := rn.inlined.Load(); got != 1 {
		t.Fatalf("%d tasks run on the reader, want 1", got)
	}
	stopped := make(chan struct{})
	go func() { rn.stop(t); close(stopped) }()
	// The queue closes (the worker returns) while the reader's task still runs.
	testutil.Eventually(t, waitLong, func() bool { rn.q.mu.Lock(); defer rn.q.mu.Unlock(); return rn.q.closed && rn.q.idle == 0 }, "the queue closed")
	select {
	case <-stopped:
		t.Fatal("Serve returned while a task ran on the reader")
	default:
	}
	close(release)
	<-stopped
	f.waitFor(waitLong, "bye", func(f *fakeBroker) bool { return f.onlyPeerLocked().byes == 1 })
	f.snapshot(func(f *fakeBroker) {
		if r, ok := f.results[id]; !ok || string(r.Result) != "true" {
			t.Errorf("the reader's task not reported before the bye: %+v %v", r, ok)
		}
		if last := f.order[len(f.order)-1]; last != "bye" {
			t.Errorf("last message %q, want bye (order %v)", last, f.order)
		}
	})
	f.CheckClean()
}
