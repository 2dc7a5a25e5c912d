package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerotask/zerotask/dispatch"
	"github.com/zerotask/zerotask/internal/testutil"
)

const waitLong = 10 * time.Second

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// testDispatcher returns a dispatcher with the builtins.
func testDispatcher(t testing.TB) *dispatch.Dispatcher {
	t.Helper()
	d := dispatch.New()
	if err := Builtins(d); err != nil {
		t.Fatal(err)
	}
	return d
}

// runningNode is a node running in the background for a test.
type runningNode struct {
	*Node
	cancel context.CancelFunc
	ret    chan error
}

// startNode runs a node against f with cfg (Broker, Sub and Logger filled in when empty) until
// stop or the end of the test.
func startNode(t testing.TB, f *fakeBroker, cfg Config) *runningNode {
	t.Helper()
	if cfg.Broker == "" {
		cfg.Broker = f.Addr
	}
	if cfg.Sub == "" {
		cfg.Sub = f.PubAddr
	}
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	if cfg.Dispatcher == nil {
		cfg.Dispatcher = testDispatcher(t)
	}
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = time.Second
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rn := &runningNode{Node: n, cancel: cancel, ret: make(chan error, 1)}
	go func() { rn.ret <- n.Serve(ctx) }()
	t.Cleanup(func() { rn.stop(t) })
	return rn
}

// stop cancels Serve's context and waits for Serve to return ErrServerClosed.
func (rn *runningNode) stop(t testing.TB) {
	t.Helper()
	rn.cancel()
	select {
	case err, ok := <-rn.ret:
		if ok && !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
		if ok {
			close(rn.ret)
		}
	case <-time.After(waitLong):
		t.Fatalf("Serve did not return within %v of its context ending", waitLong)
	}
}

func TestHelloOnConnect(t *testing.T) {
	f := newFakeBroker(t)
	rn := startNode(t, f, Config{Name: "n1", Concurrency: 3, Prefetch: 2})
	f.waitFor(waitLong, "hello and credit", func(f *fakeBroker) bool {
		p := f.onlyPeerLocked()
		return p != nil && p.hellos == 1 && p.credit == 5
	})
	f.snapshot(func(f *fakeBroker) {
		p := f.onlyPeerLocked()
		if p.hello["role"] != "node" || p.hello["name"] != "n1" || p.hello["concurrency"] != 3.0 {
			t.Errorf("hello params = %v", p.hello)
		}
		methods := fmt.Sprint(p.hello["methods"])
		if methods != "[add echo sleep subtract sum]" {
			t.Errorf("hello methods = %s", methods)
		}
		if string(p.identity) != string(rn.identity) {
			t.Errorf("routing identity %q, want the node's %q", p.identity, rn.identity)
		}
		if f.order[0] != "hello" {
			t.Errorf("first message from the node was %q, want hello", f.order[0])
		}
	})
	testutil.Eventually(t, waitLong, func() bool { return rn.Stats().Connected && rn.Stats().Credit == 5 },
		"node stats: %+v", rn.Stats())
	f.CheckClean()
}

func TestHelloAfterBrokerRestart(t *testing.T) {
	f := newFakeBroker(t)
	rn := startNode(t, f, Config{Concurrency: 2, Prefetch: 1})
	id := f.submit("add", "[1,2]")
	f.waitFor(waitLong, "first result", func(f *fakeBroker) bool { _, ok := f.results[id]; return ok })
	addr, pub := f.Addr, f.PubAddr
	f.Close()
	testutil.Eventually(t, waitLong, func() bool { return !rn.Stats().Connected }, "node noticed the broker is gone")

	f2 := newFakeBroker(t, addr, pub)
	f2.waitFor(waitLong, "hello to the restarted broker", func(f *fakeBroker) bool {
		p := f.onlyPeerLocked()
		return p != nil && p.hellos == 1 && p.credit == 3
	})
	id2 := f2.submit("add", "[5,6]")
	f2.waitFor(waitLong, "result from the restarted broker", func(f *fakeBroker) bool { _, ok := f.results[id2]; return ok })
	if r, _ := f2.result(id2); string(r.Result) != "11" {
		t.Errorf("add(5,6) after restart = %s", r.Result)
	}
	if h := rn.Stats().Hellos; h != 2 {
		t.Errorf("Stats.Hellos = %d, want 2", h)
	}
	f.CheckClean()
	f2.CheckClean()
}

func TestResultsCarryTaskIDs(t *testing.T) {
	f := newFakeBroker(t)
	startNode(t, f, Config{Concurrency: 2})
	cases := []struct {
		method, params string
		result         string
		code           int
	}{
		{"add", "[5,6]", "11", 0},
		{"add", `{"a":1.5,"b":2}`, "3.5", 0},
		{"subtract", "[42,23]", "19", 0},
		{"subtract", `{"b":23,"a":42}`, "19", 0},
		{"echo", `["hello"]`, `"hello"`, 0},
		{"echo", `{"x":[1,2]}`, `{"x":[1,2]}`, 0},
		{"sleep", "[1]", "1", 0},
		{"add", `["a",1]`, "", -32602},
		{"nosuch", "[]", "", -32601},
	}
	ids := make([]string, len(cases))
	for i, c := range cases {
		ids[i] = f.submit(c.method, c.params)
	}
	f.waitFor(waitLong, "all results", func(f *fakeBroker) bool { return len(f.results) == len(cases) })
	for i, c := range cases {
		r, _ := f.result(ids[i])
		if c.code != 0 {
			if r.Error == nil || r.Error.Code != c.code {
				t.Errorf("%s %s: got result %s error %+v, want code %d", c.method, c.params, r.Result, r.Error, c.code)
			}
			continue
		}
		if r.Error != nil || string(r.Result) != c.result {
			t.Errorf("%s %s = %s (error %+v), want %s", c.method, c.params, r.Result, r.Error, c.result)
		}
	}
	f.CheckClean()
}

// TestCreditNeverExceeded runs many tasks through small credit: the fake checks on every
// message that credit outstanding plus tasks held never passes the announced capacity.
func TestCreditNeverExceeded(t *testing.T) {
	// Prefetch -1 means none (0 would mean the default bound, DefaultPrefetch).
	for _, tc := range []struct {
		conc, prefetch int
		fixed          bool
	}{{1, -1, false}, {1, 0, false}, {2, 1, false}, {2, 3, false}, {4, 4, false}, {1, 0, true}, {2, 3, true}} {
		t.Run(fmt.Sprintf("concurrency=%d,prefetch=%d,fixed=%v", tc.conc, tc.prefetch, tc.fixed), func(t *testing.T) {
			f := newFakeBroker(t)
			rn := startNode(t, f, Config{Concurrency: tc.conc, Prefetch: tc.prefetch, FixedCredit: tc.fixed})
			params := make([]string, 300)
			for i := range params {
				params[i] = fmt.Sprintf("[%d,%d]", i, i)
			}
			ids := f.submitMany("add", params)
			f.waitFor(waitLong, "300 results", func(f *fakeBroker) bool { return len(f.results) == len(ids) })
			for i, id := range ids {
				if r, _ := f.result(id); string(r.Result) != strconv.Itoa(2*i) {
					t.Fatalf("task %s = %s, want %d", id, r.Result, 2*i)
				}
			}
			capacity := rn.capacity
			if want := tc.conc + max(tc.prefetch, 0); tc.prefetch != 0 && capacity != want {
				t.Fatalf("capacity %d, want %d", capacity, want)
			}
			f.snapshot(func(f *fakeBroker) {
				if p := f.onlyPeerLocked(); p.maxHeld > capacity {
					t.Errorf("the node held %d tasks, capacity %d", p.maxHeld, capacity)
				}
			})
			// Once idle the node has granted its whole window again (all its capacity when
			// fixed); the window may have shrunk since a grant, never past the capacity.
			testutil.Eventually(t, waitLong, func() bool {
				s := rn.Stats()
				if tc.fixed {
					return s.Credit == capacity
				}
				return s.Credit >= s.Window && s.Credit <= capacity && s.Window >= tc.conc
			}, "credit back to the window: %+v", rn.Stats())
			f.CheckClean()
		})
	}
}

// TestConcurrencyLimit: with concurrency 2 and plenty of prefetch, never 3 handlers at once.
func TestConcurrencyLimit(t *testing.T) {
	d := testDispatcher(t)
	var now, peak atomic.Int64
	release := make(chan struct{})
	err := d.Register("block", dispatch.HandlerFunc(func(ctx context.Context, dst, params []byte) ([]byte, error) {
		v := now.Add(1)
		for {
			p := peak.Load()
			if v <= p || peak.CompareAndSwap(p, v) {
				break
			}
		}
		defer now.Add(-1)
		select {
		case <-release:
		case <-ctx.Done():
			return dst, ctx.Err()
		}
		return append(dst, "true"...), nil
	}))

	if err != nil {
		t.Fatal(err)
	}
	f := newFakeBroker(t)
	rn := startNode(t, f, Config{Concurrency: 2, Prefetch: 8, FixedCredit: true, Dispatcher: d})
	params := make([]string, 10)
	for i := range params {
		params[i] = "[]"
	}
	f.submitMany("block", params)
	testutil.Eventually(t, waitLong, func() bool { s := rn.Stats(); return s.Running == 2 && s.Queued == 8 },
		"2 running and 8 queued: %+v", rn.Stats())
	close(release)
	f.waitFor(waitLong, "10 results", func(f *fakeBroker) bool { return len(f.results) == 10 })
	if p := peak.Load(); p != 2 {
		t.Errorf("peak concurrent handlers = %d, want 2", p)
	}
	if s := rn.Stats(); s.MaxRunning != 2 || s.Done != 10 {
		t.Errorf("stats %+v, want MaxRunning 2 and Done 10", s)
	}
	f.CheckClean()
}

// TestRunningReported: a sleeping task is reported running before its result; the result of a
// quick task is not preceded by a running notice.
func TestRunningReported(t *testing.T) {
	f := newFakeBroker(t)
	startNode(t, f, Config{Concurrency: 2})
	slow := f.submit("sleep", "[300]")
	f.waitFor(waitLong, "running notice", func(f *fakeBroker) bool {
		for _, e := range f.order {
			if e == "running "+slow {
				return true
			}
		}
		return false
	})
	if _, ok := f.result(slow); ok {
		t.Fatalf("result arrived before the running notice was checked")
	}
	f.waitFor(waitLong, "sleep result", func(f *fakeBroker) bool { _, ok := f.results[slow]; return ok })
	if r, _ := f.result(slow); string(r.Result) != "300" {
		t.Errorf("sleep result %s, want 300", r.Result)
	}
	f.CheckClean()
}

// TestResultsCoalesce: tasks that arrive together leave in fewer messages than results.
func TestResultsCoalesce(t *testing.T) {
	d := testDispatcher(t)
	gate := make(chan struct{})
	if err := d.Register("gated", dispatch.HandlerFunc(func(ctx context.Context, dst, params []byte) ([]byte, error) {
		<-gate
		return append(dst, params...), nil
	})); err != nil {
		t.Fatal(err)
	}
	f := newFakeBroker(t)
	rn := startNode(t, f, Config{Concurrency: 1, Prefetch: 199, FixedCredit: true, Dispatcher: d})
	f.waitFor(waitLong, "credit", func(f *fakeBroker) bool { p := f.onlyPeerLocked(); return p != nil && p.credit == 200 })
	var before int
	f.snapshot(func(f *fakeBroker) { before = f.msgs })
	params := make([]string, 200)
	for i := range params {
		params[i] = fmt.Sprintf("[%d]", i)
	}
	f.submitMany("gated", params)
	testutil.Eventually(t, waitLong, func() bool { return rn.Stats().Queued+rn.Stats().Running == 200 }, "all received")
	close(gate)
	f.waitFor(waitLong, "200 results", func(f *fakeBroker) bool { return len(f.results) == 200 })
	var msgs int
	f.snapshot(func(f *fakeBroker) { msgs = f.msgs - before })
	t.Logf("200 results in %d messages", msgs)
	if msgs >= 100 {
		t.Errorf("200 results took %d messages: not coalesced", msgs)
	}
	f.CheckClean()
}

// TestMaxBatchRespected: the broker's max_batch from the hello reply bounds every message.
func TestMaxBatchRespected(t *testing.T) {
	f := newFakeBroker(t)
	f.maxBatch = 4
	startNode(t, f, Config{Concurrency: 2, Prefetch: 30})
	params := make([]string, 200)
	for i := range params {
		params[i] = "[1,1]"
	}
	f.submitMany("add", params)
	f.waitFor(waitLong, "200 results", func(f *fakeBroker) bool { return len(f.results) == 200 })
	f.snapshot(func(f *fakeBroker) {
		if f.maxMembers > 4 {
			t.Errorf("a message had %d members, max_batch 4", f.maxMembers)
		}
	})
	f.CheckClean()
}

// TestNoCreditRefused: a task sent past the node's capacity is answered with CodeNoCredit.
func TestNoCreditRefused(t *testing.T) {
	d := testDispatcher(t)
	gate := make(chan struct{})
	if err := d.Register("gated", dispatch.HandlerFunc(func(ctx context.Context, dst, params []byte) ([]byte, error) {
		<-gate
		return append(dst, "1"...), nil
	})); err != nil {
		t.Fatal(err)
	}
	f := newFakeBroker(t)
	rn := startNode(t, f, Config{Concurrency: 1, Prefetch: 1, Dispatcher: d})
	f.submitMany("gated", []string{"[]", "[]"})
	testutil.Eventually(t, waitLong, func() bool { return rn.Stats().Running == 1 && rn.Stats().Queued == 1 }, "full")
	f.Mu.Lock()
	f.peers[string(rn.identity)].held["99"] = true
	f.Mu.Unlock()
	f.sendRaw(`{"jsonrpc":"2.0","id":99,"method":"gated","params":[]}`)
	f.waitFor(waitLong, "refusal", func(f *fakeBroker) bool { _, ok := f.results["99"]; return ok })
	if r, _ := f.result("99"); r.Error == nil || r.Error.Code != CodeNoCredit {
		t.Errorf("task past capacity answered %s / %+v, want code %d", r.Result, r.Error, CodeNoCredit)
	}
	if rn.Stats().NoCredit != 1 {
		t.Errorf("Stats.NoCredit = %d", rn.Stats().NoCredit)
	}
	close(gate)
	f.waitFor(waitLong, "results", func(f *fakeBroker) bool { return len(f.results) == 3 })
	f.CheckClean()
}

// TestGracefulStop: a stopping node finishes its running sleep, reports it, hands back what it
// did not start (unanswered) and says bye last.
func TestGracefulStop(t *testing.T) {
	f := newFakeBroker(t)
	rn := startNode(t, f, Config{Concurrency: 1, Prefetch: 2, FixedCredit: true})
	ids := f.submitMany("sleep", []string{"[300]", "[300]", "[300]"})
	testutil.Eventually(t, waitLong, func() bool { s := rn.Stats(); return s.Running == 1 && s.Queued == 2 }, "running")
	start := time.Now()
	rn.stop(t)
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("stop took %v", el)
	}
	f.waitFor(waitLong, "bye", func(f *fakeBroker) bool { return f.onlyPeerLocked().byes == 1 })
	f.snapshot(func(f *fakeBroker) {
		r, ok := f.results[ids[0]]
		if !ok || string(r.Result) != "300" {
			t.Errorf("running sleep not reported before stop: %+v %v", r, ok)
		}
		for _, id := range ids[1:] {
			if _, ok := f.results[id]; ok {
				t.Errorf("task %s was not started but got answered", id)
			}
		}
		if last := f.order[len(f.order)-1]; last != "bye" {
			t.Errorf("last message %q, want bye (order %v)", last, f.order)
		}
		for _, e := range f.order[r.at+1:] {
			if strings.HasPrefix(e, "credit") {
				t.Errorf("credit granted after stop: %v", f.order)
			}
		}
	})
	f.CheckClean()
}

// TestGracePeriodCancels: past the grace period running handlers are cancelled, their results
// are not reported, and the node still says bye and returns.
func TestGracePeriodCancels(t *testing.T) {
	f := newFakeBroker(t)
	rn := startNode(t, f, Config{Concurrency: 1, GracePeriod: 100 * time.Millisecond})
	id := f.submit("sleep", "[60000]")
	testutil.Eventually(t, waitLong, func() bool { return rn.Stats().Running == 1 }, "running")
	start := time.Now()
	rn.stop(t)
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("stop with a 100ms grace period took %v", el)
	}
	f.waitFor(waitLong, "bye", func(f *fakeBroker) bool { return f.onlyPeerLocked().byes == 1 })
	if _, ok := f.result(id); ok {
		t.Errorf("the cancelled task's result was reported")
	}
	f.CheckClean()
}

// TestRevoke: broker.revoke on the control topic cancels the running task's context.
func TestRevoke(t *testing.T) {
	f := newFakeBroker(t)
	rn := startNode(t, f, Config{Concurrency: 2})
	id := f.submit("sleep", "[60000]")
	other := f.submit("sleep", "[200]")
	testutil.Eventually(t, waitLong, func() bool { return rn.Stats().Running == 2 }, "running")
	// PUB is lossy until the subscription is through: publish until the revoke lands.
	testutil.Eventually(t, waitLong, func() bool {
		f.publish("control", `{"jsonrpc":"2.0","method":"broker.revoke","params":{"ids":[`+id+`]}}`)
		_, ok := f.result(id)
		return ok
	}, "revoked task answered")
	r, _ := f.result(id)
	if r.Error == nil || r.Error.Code != -32004 {
		t.Errorf("revoked task answered %s / %+v, want -32004", r.Result, r.Error)
	}
	f.waitFor(waitLong, "other result", func(f *fakeBroker) bool { _, ok := f.results[other]; return ok })
	if r, _ := f.result(other); string(r.Result) != "200" {
		t.Errorf("the other task was hit: %s %+v", r.Result, r.Error)
	}
	if s := rn.Stats(); s.Revoked == 0 || s.Failed != 1 {
		t.Errorf("stats %+v", s)
	}
	f.CheckClean()
}

// TestContextValues: handlers see Serve's context values, not its cancellation.
func TestContextValues(t *testing.T) {
	type key struct{}
	d := testDispatcher(t)
	got := make(chan any, 1)
	_ = d.Register("value", dispatch.HandlerFunc(func(ctx context.Context, dst, params []byte) ([]byte, error) {
		got <- ctx.Value(key{})
		return append(dst, "null"...), nil
	}))

	f := newFakeBroker(t)
	n, err := New(Config{Broker: f.Addr, Sub: "none", Dispatcher: d, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	ret := make(chan error, 1)
	go func() { ret <- n.Serve(ctx) }()
	f.submit("value", "[]")
	select {
	case v := <-got:
		if v != "v" {
			t.Errorf("ctx value %v", v)
		}
	case <-time.After(waitLong):
		t.Fatal("handler not called")
	}
	cancel()
	if err := <-ret; !errors.Is(err, ErrServerClosed) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Serve after its context ended: %v, want ErrServerClosed wrapping context.Canceled", err)
	}
	if err := n.Serve(context.Background()); !errors.Is(err, ErrServing) {
		t.Errorf("second Serve: %v, want ErrServing", err)
	}
}

func TestNewConfig(t *testing.T) {
	bad := []Config{
		{Concurrency: -1},
		{GracePeriod: -1},
		{HeartbeatInterval: -1},
		{MaxMsgSize: -5},
		{MaxMsgSize: 100},
	}
	for _, c := range bad {
		if _, err := New(c); !errors.Is(err, ErrConfig) {
			t.Errorf("New(%+v) = %v, want ErrConfig", c, err)
		}
	}
	n, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if n.cfg.Broker != DefaultBroker || n.cfg.Sub != DefaultSub || n.cfg.Concurrency < 1 ||
		n.cfg.Prefetch != DefaultPrefetch || n.cfg.GracePeriod != DefaultGracePeriod ||
		n.cfg.Dispatcher != dispatch.Default || n.cfg.Name == "" {
		t.Errorf("defaults not applied: %+v", n.cfg)
	}
	if len(n.identity) == 0 || n.identity[0] == 0 {
		t.Errorf("bad identity %q", n.identity)
	}
	n2, _ := New(Config{Prefetch: -1, Concurrency: 3})
	if n2.capacity != 3 {
		t.Errorf("capacity with Prefetch -1 = %d, want 3", n2.capacity)
	}
}
