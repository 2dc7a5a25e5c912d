package node

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/zerotask/zerotask/dispatch"
)

// runOffline registers h as method "m" on an offline node and runs the tasks of one broker
// message (frame) on its worker.
func runOffline(t *testing.T, cfg Config, h dispatch.Handler, frame string) {
	t.Helper()
	d := dispatch.New()
	if err := d.Register("m", h); err != nil {
		t.Fatal(err)
	}
	cfg.Dispatcher = d
	cfg.Concurrency = 1
	n, _, r := offlineNode(t, cfg)
	r.ingest([]byte(frame))
	for n.q.len() > 0 {
		n.workers[0].run(n.workers[0].next())
	}
}

// TestHandlerContextEndsWithHandler: as net/http does for a request, a task's context ends when
// its handler returns: a goroutine the handler left behind sees Done (context.Canceled), and
// each task has a context of its own, which a later task's end does not touch.
func TestHandlerContextEndsWithHandler(t *testing.T) {
	var mu sync.Mutex
	var ctxs []context.Context
	ended := make(chan error, 2)
	h := dispatch.Proc0(func(ctx context.Context) error {
		mu.Lock()
		ctxs = append(ctxs, ctx)
		mu.Unlock()
		if ctx.Err() != nil {
			t.Errorf("context ended before the handler returned: %v", ctx.Err())
		}
		go func() { <-ctx.Done(); ended <- ctx.Err() }() // left behind
		return nil
	})
	runOffline(t, Config{}, h, `[{"jsonrpc":"2.0","id":1,"method":"m"},{"jsonrpc":"2.0","id":2,"method":"m"}]`)
	for range 2 {
		select {
		case err := <-ended:
			if err != context.Canceled {
				t.Errorf("left-behind goroutine saw %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a goroutine left behind never saw its task's context end")
		}
	}
	if len(ctxs) != 2 || ctxs[0] == ctxs[1] {
		t.Fatalf("contexts %v: want one per task", ctxs)
	}
}

// TestHandlerContextNoWatcherGoroutines: context.WithTimeout, WithCancel and AfterFunc on a
// task's context start no goroutine to watch it (the context implements AfterFunc); functions
// registered with AfterFunc run when the task ends, unless stopped.
func TestHandlerContextNoWatcherGoroutines(t *testing.T) {
	const derived = 200
	var grew int
	ran := make(chan struct{}, 1)
	var stopped, stopTrue bool
	h := dispatch.Proc0(func(ctx context.Context) error {
		before := runtime.NumGoroutine()
		cancels := make([]context.CancelFunc, 0, 2*derived)
		for range derived {
			c1, cancel1 := context.WithTimeout(ctx, time.Hour)
			_, cancel2 := context.WithCancel(c1)
			cancels = append(cancels, cancel1, cancel2)
		}
		grew = runtime.NumGoroutine() - before
		for _, cancel := range cancels {
			cancel()
		}
		context.AfterFunc(ctx, func() { ran <- struct{}{} })
		stop := context.AfterFunc(ctx, func() { stopped = true })
		stopTrue = stop()
		return nil
	})
	runOffline(t, Config{}, h, `{"jsonrpc":"2.0","id":1,"method":"m"}`)
	if grew >= derived/2 {
		t.Errorf("%d goroutines more after %d derived contexts: a watcher per context", grew, derived)
	}
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("AfterFunc never ran after the task ended")
	}
	if !stopTrue || stopped {
		t.Errorf("stop() = %v, stopped func ran %v: want true, false", stopTrue, stopped)
	}
}

// TestTaskInfoFrom: a handler reads its task's id, attempt, queue and deadline with
// dispatch.TaskInfoFrom, from its context and from contexts derived from it.
func TestTaskInfoFrom(t *testing.T) {
	for _, tt := range []struct {
		name  string
		cfg   Config
		frame string
		want  dispatch.TaskInfo
		left  time.Duration // deadline about this far ahead (0: none)
	}{
		{"call", Config{}, `{"jsonrpc":"2.0","id":1,"method":"m"}`,
			dispatch.TaskInfo{Queue: "default"}, 0},
		{"submitted", Config{}, `{"jsonrpc":"2.0","id":"e.1","method":"m","task":"5f0c2a91-17","attempt":1}`,
			dispatch.TaskInfo{ID: "5f0c2a91-17", Attempt: 1, Queue: "default"}, 0},
		{"retry in a named queue", Config{Queues: []string{"default", "reports"}},
			`{"jsonrpc":"2.0","id":"e.2","method":"m","params":[],"timeout_ms":60000,"task":"5f0c2a91-18","attempt":3,"queue":"reports"}`,
			dispatch.TaskInfo{ID: "5f0c2a91-18", Attempt: 3, Queue: "reports"}, time.Minute},
		{"time limit", Config{TimeLimit: 30 * time.Second}, `{"jsonrpc":"2.0","id":3,"method":"m","attempt":2}`,
			dispatch.TaskInfo{Attempt: 2, Queue: "default"}, 30 * time.Second},
		{"members inside params are not the task's", Config{},
			`{"jsonrpc":"2.0","id":4,"method":"m","params":{"task":"x","attempt":9,"queue":"q"}}`,
			dispatch.TaskInfo{Queue: "default"}, 0},
		{"a queue the node does not list", Config{}, `{"jsonrpc":"2.0","id":5,"method":"m","queue":"other"}`,
			dispatch.TaskInfo{Queue: "other"}, 0},
		{"bad types ignored", Config{}, `{"jsonrpc":"2.0","id":6,"method":"m","task":17,"attempt":"1","queue":null}`,
			dispatch.TaskInfo{Queue: "default"}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got, derived dispatch.TaskInfo
			var ok, dok bool
			h := dispatch.HandlerFunc(func(ctx context.Context, dst, params []byte) ([]byte, error) {
				got, ok = dispatch.TaskInfoFrom(ctx)
				sub, cancel := context.WithTimeout(ctx, time.Hour)
				defer cancel()
				derived, dok = dispatch.TaskInfoFrom(sub)
				return append(dst, "null"...), nil
			})
			began := time.Now()
			runOffline(t, tt.cfg, h, tt.frame)
			if !ok || !dok || derived != got {
				t.Fatalf("TaskInfoFrom: %+v %v, from a derived context %+v %v", got, ok, derived, dok)
			}
			dl := got.Deadline
			got.Deadline = time.Time{}
			if got != tt.want {
				t.Errorf("TaskInfoFrom = %+v, want %+v", got, tt.want)
			}
			switch {
			case tt.left == 0 && !dl.IsZero():
				t.Errorf("deadline %v, want none", dl)
			case tt.left > 0 && (dl.Before(began.Add(tt.left-5*time.Second)) || dl.After(time.Now().Add(tt.left))):
				t.Errorf("deadline %v from %v, want about %v ahead", dl.Sub(began), began, tt.left)
			}
		})
	}
	if _, ok := dispatch.TaskInfoFrom(context.Background()); ok {
		t.Error("TaskInfoFrom(Background) reported a task")
	}
	info := dispatch.TaskInfo{ID: "t-1", Attempt: 2, Queue: "q"}
	if got, ok := dispatch.TaskInfoFrom(dispatch.WithTaskInfo(context.Background(), info)); !ok || got != info {
		t.Errorf("WithTaskInfo round trip: %+v %v", got, ok)
	}
}
