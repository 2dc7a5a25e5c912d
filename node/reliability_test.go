package node

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/dispatch"
	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/protocol"
)

// waitResult waits for the node's answer to task id.
func waitResult(t *testing.T, f *fakeBroker, id string) fakeResult {
	t.Helper()
	f.waitFor(waitLong, "result "+id, func(f *fakeBroker) bool { _, ok := f.results[id]; return ok })
	r, _ := f.result(id)
	return r
}

// TestDeadlines: the task's timeout_ms ends the handler's context (with a deadline the handler
// can read), a method's time limit and the node's default time limit do too, whichever comes
// first; the answer is CodeDeadline, never marked retryable.
func TestDeadlines(t *testing.T) {
	d := testDispatcher(t)
	d.MustRegister("limited", dispatch.HandlerFunc(func(ctx context.Context, dst, p []byte) ([]byte, error) {
		<-ctx.Done()
		return dst, ctx.Err()
	}), dispatch.TimeLimit(100*time.Millisecond), dispatch.RetryOnError())
	d.MustRegister("deadline", dispatch.HandlerFunc(func(ctx context.Context, dst, p []byte) ([]byte, error) {
		dl, ok := ctx.Deadline()
		if !ok {
			return append(dst, "null"...), nil
		}
		return fmt.Appendf(dst, "%d", time.Until(dl).Milliseconds()), nil
	}))
	f := newFakeBroker(t)
	startNode(t, f, Config{Concurrency: 4, Dispatcher: d, TimeLimit: 2 * time.Second})

	tests := []struct {
		name, method, params, extra string
		code                        int
		message                     string
		within                      time.Duration
	}{
		{"call deadline", "sleep", "[60000]", `"timeout_ms":100`, CodeDeadline, "task deadline exceeded", 3 * time.Second},
		{"method time limit", "limited", "[]", "", CodeDeadline, "task time limit exceeded", 3 * time.Second},
		{"deadline before limit", "limited", "[]", `"timeout_ms":50`, CodeDeadline, "task deadline exceeded", 3 * time.Second},
		{"node time limit", "sleep", "[60000]", "", CodeDeadline, "task time limit exceeded", 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			id := f.submitExt(tt.method, tt.params, tt.extra)
			r := waitResult(t, f, id)
			if r.Error == nil || r.Error.Code != tt.code || r.Error.Message != tt.message {
				t.Fatalf("answer %s %+v, want %d %q", r.Result, r.Error, tt.code, tt.message)
			}
			if r.Retry {
				t.Errorf("a deadline is marked retryable")
			}
			if el := time.Since(start); el > tt.within {
				t.Errorf("answered after %v, want within %v", el, tt.within)
			}
		})
	}
	// The deadline is visible to the handler: about timeout_ms from now.
	id := f.submitExt("deadline", "[]", `"timeout_ms":1500`)
	r := waitResult(t, f, id)
	if ms, err := strconv.Atoi(string(r.Result)); err != nil || ms < 500 || ms > 1500 {
		t.Fatalf("deadline handler: %s %+v, want about 1500 (ms left)", r.Result, r.Error)
	}
	// Without a timeout the handler sees no deadline beyond the node's time limit.
	id = f.submitExt("deadline", "[]", "")
	if r := waitResult(t, f, id); r.Error != nil || string(r.Result) == "null" {
		t.Errorf("node time limit not visible as a deadline: %s %+v", r.Result, r.Error)
	}
	f.CheckClean()
}

// TestExpiredInNode: a task whose deadline passes while it waits in the node for a worker is
// answered CodeExpired and never run, whether its handler reads its context or not
// (dispatch.ContextFree, run without one).
func TestExpiredInNode(t *testing.T) {
	for _, free := range []bool{false, true} {
		t.Run(map[bool]string{false: "context", true: "context-free"}[free], func(t *testing.T) {
			d := testDispatcher(t)
			ran := make(chan struct{}, 1)
			mark := func(ctx context.Context, dst, p []byte) ([]byte, error) {
				ran <- struct{}{}
				return dst, nil
			}
			if free {
				d.MustRegister("mark", freeFunc(mark))
			} else {
				d.MustRegister("mark", dispatch.HandlerFunc(mark))
			}
			f := newFakeBroker(t)
			startNode(t, f, Config{Concurrency: 1, Prefetch: 4, Dispatcher: d})
			f.hold(true)
			busy := f.submit("sleep", "[400]")
			late := f.submitExt("mark", "[]", `"timeout_ms":50`)
			f.hold(false)
			r := waitResult(t, f, late)
			if r.Error == nil || r.Error.Code != CodeExpired {
				t.Fatalf("late task answered %s %+v, want %d", r.Result, r.Error, CodeExpired)
			}
			select {
			case <-ran:
				t.Fatal("an expired task ran")
			default:
			}
			if r := waitResult(t, f, busy); string(r.Result) != "400" {
				t.Errorf("busy task %s %+v", r.Result, r.Error)
			}
			f.CheckClean()
		})
	}
}

// TestRetryMarks: the node marks retryable failures with "retry":true (and the handler's own
// delay as retry_after_ms), per the handler's error and the method's policy; ErrSkipRetry and
// invalid params are never marked.
func TestRetryMarks(t *testing.T) {
	d := testDispatcher(t)
	fail := func(err error) dispatch.HandlerFunc {
		return func(ctx context.Context, dst, p []byte) ([]byte, error) { return dst, err }
	}
	errBoom := errors.New("boom")
	d.MustRegister("plain", fail(errBoom))
	d.MustRegister("marked", fail(dispatch.Retry(errBoom)))
	d.MustRegister("after", fail(dispatch.RetryAfter(dispatch.Errorf(-32050, nil, "busy"), 1500*time.Millisecond)))
	d.MustRegister("skip", fail(dispatch.Retry(fmt.Errorf("bad: %w", dispatch.ErrSkipRetry))))
	d.MustRegister("policy", fail(errBoom), dispatch.RetryOnError())
	d.MustRegister("policy-skip", fail(fmt.Errorf("bad: %w", dispatch.ErrSkipRetry)), dispatch.RetryOnError())
	d.MustRegister("policy-params", dispatch.Pure1(func(x int) int { return x }), dispatch.RetryOnError())
	f := newFakeBroker(t)
	startNode(t, f, Config{Concurrency: 2, Dispatcher: d})
	tests := []struct {
		method, params string
		code           int
		retry          bool
		afterMS        int64
	}{
		{"plain", "[]", -32000, false, 0},
		{"marked", "[]", -32000, true, 0},
		{"after", "[]", -32050, true, 1500},
		{"skip", "[]", -32000, false, 0},
		{"policy", "[]", -32000, true, 0},
		{"policy-skip", "[]", -32000, false, 0},
		{"policy-params", `["x"]`, -32602, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			r := waitResult(t, f, f.submit(tt.method, tt.params))
			if r.Error == nil || r.Error.Code != tt.code || r.Retry != tt.retry || r.RetryAfterMS != tt.afterMS {
				t.Fatalf("answer %+v retry %v after %d; want code %d retry %v after %d", r.Error, r.Retry, r.RetryAfterMS, tt.code, tt.retry, tt.afterMS)
			}
		})
	}
	f.CheckClean()
}

// TestRevokeOnDealer: a broker.revoke notification on the DEALER (not only on the PUB) cancels
// the running task, which answers -32004 at once.
func TestRevokeOnDealer(t *testing.T) {
	f := newFakeBroker(t)
	rn := startNode(t, f, Config{Concurrency: 2, Sub: "none"})
	id := f.submit("sleep", "[60000]")
	testutil.Eventually(t, waitLong, func() bool { return rn.Stats().Running == 1 }, "running")
	start := time.Now()
	f.sendRaw(`{"jsonrpc":"2.0","method":"broker.revoke","params":{"ids":[` + id + `]}}`)
	r := waitResult(t, f, id)
	if r.Error == nil || r.Error.Code != -32004 {
		t.Fatalf("revoked task answered %s %+v, want -32004", r.Result, r.Error)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("revoke took %v, want well under 1s", el)
	}
	// A second revoke of the same id, and a shutdown notice, change nothing.
	f.sendRaw(`{"jsonrpc":"2.0","method":"broker.revoke","params":{"ids":[` + id + `]}}`)
	f.sendRaw(`{"jsonrpc":"2.0","method":"broker.shutdown"}`)
	if r := waitResult(t, f, f.submit("add", "[1,2]")); string(r.Result) != "3" {
		t.Errorf("add after revoke: %s %+v", r.Result, r.Error)
	}
	f.CheckClean()
}

// TestRevokeWaitingBeforeRunning: one revoke naming a running task and a task waiting behind
// it (concurrency 1) marks the waiting one before it cancels the running one, so the worker
// the cancel frees never starts the revoked waiting task; both answer -32004.
func TestRevokeWaitingBeforeRunning(t *testing.T) {
	for i := range 20 { // the order used to be a race: try it several times
		f := newFakeBroker(t)
		d := testDispatcher(t)
		var started atomic.Int64
		d.MustRegister("mark", dispatch.HandlerFunc(func(_ context.Context, dst, _ []byte) ([]byte, error) {
			started.Add(1)
			return append(dst, "true"...), nil
		}))
		rn := startNode(t, f, Config{Concurrency: 1, Sub: "none", Dispatcher: d})
		running := f.submit("sleep", "[60000]")
		waiting := f.submit("mark", "[]")
		testutil.Eventually(t, waitLong, func() bool { s := rn.Stats(); return s.Running == 1 && s.Queued == 1 }, "one running, one waiting")
		f.sendRaw(`{"jsonrpc":"2.0","method":"broker.revoke","params":{"ids":[` + running + `,` + waiting + `]}}`)
		for _, id := range []string{running, waiting} {
			if r := waitResult(t, f, id); r.Error == nil || r.Error.Code != -32004 {
				t.Fatalf("run %d: task %s answered %s %+v, want -32004", i, id, r.Result, r.Error)
			}
		}
		if n := started.Load(); n != 0 {
			t.Fatalf("run %d: the revoked waiting task started", i)
		}
		f.CheckClean()
	}
}

// TestQueuesInHello: the queues a node takes tasks from go in every hello; bad names are
// refused by New.
func TestQueuesInHello(t *testing.T) {
	f := newFakeBroker(t)
	startNode(t, f, Config{Queues: []string{"default", "high"}})
	f.waitFor(waitLong, "hello", func(f *fakeBroker) bool { p := f.onlyPeerLocked(); return p != nil && p.hello != nil })
	var queues []any
	f.snapshot(func(f *fakeBroker) { queues, _ = f.onlyPeerLocked().hello["queues"].([]any) })
	if fmt.Sprint(queues) != "[default high]" {
		t.Errorf("hello queues %v", queues)
	}
	for _, qs := range [][]string{{""}, {"a", "a"}, {strings.Repeat("q", protocol.MaxQueueName+1)}, make([]string, maxQueues+1)} {
		if _, err := New(Config{Queues: qs, Logger: quiet}); !errors.Is(err, ErrConfig) {
			t.Errorf("Queues %q: %v, want ErrConfig", qs, err)
		}
	}
	if _, err := New(Config{TimeLimit: -1, Logger: quiet}); !errors.Is(err, ErrConfig) {
		t.Errorf("negative TimeLimit: %v", err)
	}
}

// TestEnvelopeUint: the extension members are found outside params only.
func TestEnvelopeUint(t *testing.T) {
	tests := []struct {
		obj  string
		want uint64
		ok   bool
	}{
		{`{"jsonrpc":"2.0","id":1,"method":"m","params":[1],"timeout_ms":50}`, 50, true},
		{`{"timeout_ms":7,"jsonrpc":"2.0","id":1,"method":"m"}`, 7, true},
		{`{"jsonrpc":"2.0","id":1,"method":"m","params":{"timeout_ms":50}}`, 0, false},
		{`{"jsonrpc":"2.0","id":1,"method":"m","params":["\"timeout_ms\":5"]}`, 0, false},
		{`{"jsonrpc":"2.0","id":1,"method":"m","timeout_ms":-5}`, 0, false},
		{`{"jsonrpc":"2.0","id":1,"method":"m","timeout_ms":"5"}`, 0, false},
		{`{"jsonrpc":"2.0","id":1,"method":"m", "timeout_ms" : 12 }`, 12, true},
		{`{"jsonrpc":"2.0","id":1,"method":"m"}`, 0, false},
	}
	for _, tt := range tests {
		obj := []byte(tt.obj)
		var h codec.Header
		if err := codec.Scan(obj, &h); err != nil {
			t.Fatalf("%s: %v", tt.obj, err)
		}
		var e envelope
		e.read(h.Ext, h.Params)
		got, ok := envelopeUint(e.timeoutMS)
		if got != tt.want || ok != tt.ok {
			t.Errorf("%s: %d %v, want %d %v", tt.obj, got, ok, tt.want, tt.ok)
		}
	}
}

// TestIngestArray: an array from the broker is validated as it is walked; its tasks are queued
// only when the whole array is valid, and an array malformed past its first elements, or with
// something after it, is dropped with its tasks.
func TestIngestArray(t *testing.T) {
	task := func(id int) string {
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"add","params":[5,6],"timeout_ms":30000,"attempt":1}`, id)
	}
	tests := []struct {
		name  string
		frame string
		want  int // tasks queued
	}{
		{"two tasks", "[" + task(1) + "," + task(2) + "]", 2},
		{"an invalid element is skipped", "[" + task(1) + `,{"jsonrpc":"1.0","id":3,"method":"add"}` + "]", 1},
		{"cut short", "[" + task(1) + "," + task(2), 0},
		{"broken after two tasks", "[" + task(1) + "," + task(2) + ",{]", 0},
		{"something after the array", "[" + task(1) + "]x", 0},
		{"empty array", "[]", 0},
		{"a lone task", task(7), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, _, r := offlineNode(t, Config{Concurrency: 1, Prefetch: 8})
			r.lim = codec.Limits{MaxFrame: int(n.cfg.MaxMsgSize)}
			r.ingest([]byte(tt.frame))
			if got := n.q.len(); got != tt.want {
				t.Errorf("%d tasks queued, want %d", got, tt.want)
			}
		})
	}
}
