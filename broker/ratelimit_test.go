package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/protocol"
)

// fakeClock is the clock of schedules and limits in tests: it moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) Add(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

// limitFleet is a set of fake nodes that answer every task they get, each on its own
// goroutine, counting what they ran; hold, when set, decides how long a task is held before
// its answer (its answer: the error object to send, "" for a result).
type limitFleet struct {
	ran     atomic.Int64 // tasks answered with a result
	holding atomic.Int64 // tasks held by the fleet now (handed out, not answered)
	most    atomic.Int64 // the most tasks the fleet held at once
	stop    func()
}

func startFleet(t *testing.T, b *Broker, nodes int, method string, answer func(n int64, task ntask) (hold time.Duration, errObj string)) *limitFleet {
	t.Helper()
	f := &limitFleet{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range nodes {
		n := newNode(t, b, fmt.Sprintf("n%d", i), method)
		n.credit(10_000)
		var mu sync.Mutex // one sender at a time on the node's socket
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				rctx, rcancel := context.WithTimeout(ctx, 50*time.Millisecond)
				m, err := n.s.Recv(rctx)
				rcancel()
				if err != nil {
					continue
				}
				body := append([]byte(nil), m.Frames[len(m.Frames)-1]...)
				m.Release()
				var ts []ntask
				if len(body) > 0 && body[0] == '[' {
					_ = json.Unmarshal(body, &ts)
				} else {
					var one ntask
					if json.Unmarshal(body, &one) == nil && one.Method != "" {
						ts = append(ts, one)
					}
				}
				for _, tk := range ts {
					h := f.holding.Add(1)
					for {
						m := f.most.Load()
						if h <= m || f.most.CompareAndSwap(m, h) {
							break
						}
					}
					wg.Add(1)
					go func() { // each task runs on its own, as a node's workers run them
						defer wg.Done()
						hold, errObj := answer(h, tk)
						if hold > 0 {
							time.Sleep(hold) // the task's run time, not synchronisation
						}
						f.holding.Add(-1)
						var out string
						if errObj != "" {
							out = fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"error":%s}`, tk.ID, errObj)
						} else {
							f.ran.Add(1)
							out = fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":true}`, tk.ID)
						}
						sctx, scancel := context.WithTimeout(context.Background(), wait)
						mu.Lock()
						_ = n.s.SendFrames(sctx, []byte(`[`+out+`,{"jsonrpc":"2.0","method":"broker.credit","params":[1]}]`))
						mu.Unlock()
						scancel()
					}()
				}
			}
		}()
	}
	f.stop = func() { cancel(); wg.Wait() }
	t.Cleanup(f.stop)
	return f
}

// queueNotifications sends n task notifications of method (params [i]) in batches.
func queueNotifications(t *testing.T, c *tpeer, method string, n int) {
	t.Helper()
	for i := 0; i < n; {
		var sb strings.Builder
		sb.WriteByte('[')
		for k := 0; k < 500 && i < n; k, i = k+1, i+1 {
			if k > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `{"jsonrpc":"2.0","method":%q,"params":[%d]}`, method, i)
		}
		sb.WriteByte(']')
		c.send(sb.String())
	}
}

// TestLimitRateOverTenSeconds: a limit of 100 tasks per second on a method, 4 nodes and
// 5,000 tasks queued: over 10 s of the (fake) clock, 1,000 +- 2% run, and never more than
// the bucket allows at any point.
func TestLimitRateOverTenSeconds(t *testing.T) {
	fc := newFakeClock(time.Unix(1_700_000_000, 0))
	b := startBroker(t, Config{
		Clock:  fc.Now,
		Limits: []protocol.Limit{{Scope: protocol.LimitMethod, Name: "work", Rate: 100, Burst: 10}},
	})
	c := dealer(t, b)
	queueNotifications(t, c, "work", 5000)
	testutil.Eventually(t, wait, func() bool { return b.Stats().Accepted == 5000 }, "5000 tasks accepted")
	f := startFleet(t, b, 4, "work", func(int64, ntask) (time.Duration, string) { return 0, "" })
	// The full bucket (the burst) goes at once, then 10 tokens per 100 ms.
	want := int64(10)
	testutil.Eventually(t, wait, func() bool { return f.ran.Load() == want }, "the burst runs")
	for step := 1; step <= 100; step++ {
		fc.Add(100 * time.Millisecond)
		want += 10
		testutil.Eventually(t, wait, func() bool { return f.ran.Load() >= want }, "step %d: %d run", step, want)
		if got := f.ran.Load(); got > want {
			t.Fatalf("step %d: %d ran, the bucket allows %d", step, got, want)
		}
	}
	got := f.ran.Load()
	if got < 980 || got > 1020 {
		t.Fatalf("over 10 s at 100/s: %d ran, want 1000 +- 2%%", got)
	}
	st := b.Stats()
	if st.Queued+int(got) != 5000 || st.Failed != 0 {
		t.Fatalf("stats %+v after %d ran: the rest must wait in the queue, none failed", st, got)
	}
	t.Logf("10 s at 100/s (burst 10): %d of 5000 ran, %d wait", got, st.Queued)
}

// TestLimitRunningCap: a cap of 3 running tasks across 4 nodes (each with credit to spare)
// is never passed, and is reached.
func TestLimitRunningCap(t *testing.T) {
	b := startBroker(t, Config{Limits: []protocol.Limit{{Scope: protocol.LimitMethod, Name: "slow", MaxRunning: 3}}})
	c := dealer(t, b)
	queueNotifications(t, c, "slow", 200)
	f := startFleet(t, b, 4, "slow", func(int64, ntask) (time.Duration, string) { return 2 * time.Millisecond, "" })
	testutil.Eventually(t, 4*wait, func() bool { return f.ran.Load() == 200 }, "200 tasks run")
	if m := f.most.Load(); m > 3 || m < 2 {
		t.Fatalf("the nodes held at most %d tasks at once, want the cap of 3 (and not far below)", m)
	}
	t.Logf("cap 3 over 4 nodes: at most %d held at once over 200 tasks", f.most.Load())
}

// TestLimitQueueScope: a limit on a named queue gates its tasks, whatever their method, and
// leaves the other queues alone.
func TestLimitQueueScope(t *testing.T) {
	fc := newFakeClock(time.Unix(1_700_000_000, 0))
	b := startBroker(t, Config{Clock: fc.Now, Limits: []protocol.Limit{{Scope: protocol.LimitQueue, Name: DefaultQueue, Rate: 1, Burst: 2}}})
	c := dealer(t, b)
	n := newNode(t, b, "n", "a")
	n.credit(100)
	queueNotifications(t, c, "a", 5)
	n.collect(2)
	n.none()
	fc.Add(time.Second)
	n.collect(1)
	n.none()
}

// TestRateLimitedPausesMethod: a node answering CodeRateLimited (dispatch.RateLimited) pauses
// the method for the delay it names, the task goes back to its queue with no attempt counted,
// and it runs once the pause is over.
func TestRateLimitedPausesMethod(t *testing.T) {
	fc := newFakeClock(time.Unix(1_700_000_000, 0))
	b := startBroker(t, Config{Clock: fc.Now})
	c := dealer(t, b)
	n := newNode(t, b, "n", "api")
	n.credit(100)
	id := submitID(t, c, "api", "[1]", `"max_attempts":1`)
	tk := n.collect(1)[0]
	n.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"error":%s}`, tk.ID, errJSON(protocol.NewRateLimited(2*time.Second))))
	// The answer travels on the node's connection: wait until the broker has it.
	testutil.Eventually(t, wait, func() bool {
		l := decodeResp(t, c.call(`{"jsonrpc":"2.0","id":1,"method":"broker.limit.list"}`))
		return strings.Contains(string(l.Result), `"paused_ms":2000`)
	}, "broker.limit.list shows the method paused for 2 s")
	submitID(t, c, "api", "[2]", "")
	n.none() // paused: neither the task given back nor the new one goes out
	fc.Add(2 * time.Second)
	ts := n.collect(2)
	if string(ts[0].Params) != "[1]" {
		t.Fatalf("after the pause the task given back comes first: got %s", ts[0].Params)
	}
	for _, tk := range ts {
		n.result(tk.ID, "7")
	}
	r := decodeResp(t, c.call(fmt.Sprintf(`{"jsonrpc":"2.0","id":2,"method":"broker.result","params":{"id":%q,"wait_ms":5000}}`, id)))
	if !strings.Contains(string(r.Result), `"SUCCESS"`) {
		t.Fatalf("with max_attempts 1, the rate-limited hand-out must not count: %s", r.Result)
	}
	if st := b.Stats(); st.Failed != 0 {
		t.Fatalf("stats %+v: nothing fails for a rate limit", st)
	}
	// The pause-only limit is gone once the pause is over and nothing waits.
	testutil.Eventually(t, wait, func() bool {
		l := decodeResp(t, c.call(`{"jsonrpc":"2.0","id":3,"method":"broker.limit.list"}`))
		return string(l.Result) == "[]"
	}, "the pause's limit dropped")
}

// TestLimitSetAtRunTime: broker.limit.set adds, changes and removes a limit; bad params and the
// MaxLimits bound are refused.
func TestLimitSetAtRunTime(t *testing.T) {
	fc := newFakeClock(time.Unix(1_700_000_000, 0))
	b := startBroker(t, Config{Clock: fc.Now, MaxLimits: 2})
	c := dealer(t, b)
	n := newNode(t, b, "n", "m")
	n.credit(100)
	call := func(params string) resp {
		return decodeResp(t, c.call(`{"jsonrpc":"2.0","id":1,"method":"broker.limit.set","params":`+params+`}`))
	}
	if r := call(`{"scope":"method","name":"m","rate":1,"burst":1}`); r.Error != nil {
		t.Fatalf("set: %+v", r.Error)
	}
	queueNotifications(t, c, "m", 3)
	n.collect(1)
	n.none()
	for _, tc := range []struct{ params, why string }{
		{`{"scope":"node","name":"m","rate":1}`, "unknown scope"},
		{`{"scope":"method","name":"","rate":1}`, "empty name"},
		{`{"scope":"method","name":"m","rate":-1}`, "negative rate"},
		{`{"scope":"method","name":"m","rate":1e8}`, "rate past MaxRate"},
		{`{"scope":"method","name":"m","max_running":-1}`, "negative cap"},
		{`[1]`, "not an object"},
	} {
		if r := call(tc.params); r.Error == nil || r.Error.Code != -32602 {
			t.Errorf("%s: got %+v, want -32602", tc.why, r.Error)
		}
	}
	if r := call(`{"scope":"queue","name":"q2","rate":5}`); r.Error != nil {
		t.Fatalf("second limit: %+v", r.Error)
	}
	if r := call(`{"scope":"queue","name":"q3","rate":5}`); r.Error == nil || r.Error.Code != protocol.CodeQueueFull {
		t.Fatalf("past MaxLimits: %+v", r.Error)
	}
	l := decodeResp(t, c.call(`{"jsonrpc":"2.0","id":1,"method":"broker.limit.list"}`))
	if want := `[{"scope":"method","name":"m","rate":1,"burst":1,"running":1},{"scope":"queue","name":"q2","rate":5,"burst":1}]`; string(l.Result) != want {
		t.Fatalf("list: %s, want %s", l.Result, want)
	}
	// Removed: what waited goes out at once.
	if r := call(`{"scope":"method","name":"m"}`); r.Error != nil {
		t.Fatalf("remove: %+v", r.Error)
	}
	n.collect(2)
}

// errJSON encodes an error object.
func errJSON(e *codec.Error) string {
	return string(codec.AppendErrorObject(nil, e))
}

// TestLimitedRoutingAllocs: a method under a limit that does not bind (rate and cap far
// above the load) is routed without allocating, like one without limits.
func TestLimitedRoutingAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	r := newRig(t, Config{})
	if e := r.c.setLimit(protocol.Limit{Scope: protocol.LimitMethod, Name: "add", Rate: protocol.MaxRate, Burst: protocol.MaxBurst, MaxRunning: protocol.MaxRunningCap}); e != nil {
		t.Fatal(e)
	}
	for i := 0; i < 100; i++ {
		r.roundTrip(single)
	}
	if allocs := testing.AllocsPerRun(1000, func() { r.roundTrip(single) }); allocs != 0 {
		t.Fatalf("%v allocs per round trip under a limit, want 0", allocs)
	}
}

// BenchmarkRoutingLimited is BenchmarkRouting's lone call with a limit on the method that
// does not bind: what checking a limit costs per hand-out.
func BenchmarkRoutingLimited(b *testing.B) {
	r := newRig(b, Config{})
	if e := r.c.setLimit(protocol.Limit{Scope: protocol.LimitMethod, Name: "add", Rate: protocol.MaxRate, Burst: protocol.MaxBurst, MaxRunning: protocol.MaxRunningCap}); e != nil {
		b.Fatal(e)
	}
	for i := 0; i < 100; i++ {
		r.roundTrip(single)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.roundTrip(single)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/task")
}

// callsOf sends task calls of method with the given extra members (notifications).
func callsOf(t *testing.T, c *tpeer, method string, ext []string) {
	t.Helper()
	var sb strings.Builder
	sb.WriteByte('[')
	for i, x := range ext {
		if i > 0 {
			sb.WriteByte(',')
		}
		if x != "" {
			x = "," + x
		}
		fmt.Fprintf(&sb, `{"jsonrpc":"2.0","method":%q,"params":[%d]%s}`, method, i, x)
	}
	sb.WriteByte(']')
	c.send(sb.String())
}

// TestLimitKeyGroup: a group's limit holds back its own tasks only: tasks of other groups, and
// without a group, queued behind them go out at once; the held ones wait (QUEUED, counted in
// Stats.Queued), go out as the group's bucket refills, and can be revoked while they wait.
func TestLimitKeyGroup(t *testing.T) {
	fc := newFakeClock(time.Unix(1_700_000_000, 0))
	b := startBroker(t, Config{Clock: fc.Now, Limits: []protocol.Limit{
		{Scope: protocol.LimitGroup, Name: "cust-a", Rate: 1, Burst: 1},
		{Scope: protocol.LimitGroup, Name: "cust-b", MaxRunning: 1},
	}})
	c := dealer(t, b)
	n := newNode(t, b, "n", "job")
	n.credit(100)
	a, bb := `"key_group":"cust-a"`, `"key_group":"cust-b"`
	callsOf(t, c, "job", []string{a, a, a, "", bb, bb, ""})
	ts := n.collect(4) // a#0, the two without a group, b#4; a#1, a#2 and b#5 wait
	got := paramsOf(ts)
	if strings.Join(got, " ") != "[0] [3] [4] [6]" {
		t.Fatalf("first hand-outs %v, want [0] [3] [4] [6]", got)
	}
	n.none()
	if st := b.Stats(); st.Queued != 3 {
		t.Fatalf("stats %+v: the 3 tasks waiting for their group count as queued", st)
	}
	fc.Add(time.Second)
	if ts := n.collect(1); string(ts[0].Params) != "[1]" {
		t.Fatalf("after 1 s: %s, want cust-a's next ([1])", ts[0].Params)
	}
	n.result(ts[2].ID, "true") // b#4 finishes: b#5 may run
	if ts := n.collect(1); string(ts[0].Params) != "[5]" {
		t.Fatalf("after cust-b's task ended: %s, want [5]", ts[0].Params)
	}
	// a#2 waits for its group: a submitted one with a group waits the same way and is revoked
	// while it waits.
	id := submitID(t, c, "job", "[9]", a)
	r := decodeResp(t, c.call(fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"broker.status","params":{"id":%q}}`, id)))
	if !strings.Contains(string(r.Result), `"QUEUED"`) {
		t.Fatalf("status of a task waiting for its group: %s", r.Result)
	}
	r = decodeResp(t, c.call(fmt.Sprintf(`{"jsonrpc":"2.0","id":2,"method":"broker.revoke","params":{"id":%q}}`, id)))
	if r.Error != nil {
		t.Fatalf("revoke: %+v", r.Error)
	}
	fc.Add(time.Second)
	if ts := n.collect(1); string(ts[0].Params) != "[2]" {
		t.Fatalf("after 2 s: %s, want [2]", ts[0].Params)
	}
	fc.Add(time.Second)
	n.none() // the revoked one never runs
	if st := b.Stats(); st.Queued != 0 {
		t.Fatalf("stats %+v: nothing waits", st)
	}
}

// TestRateLimitedPausesGroup: CodeRateLimited for a task with a key group pauses that group,
// not its method.
func TestRateLimitedPausesGroup(t *testing.T) {
	fc := newFakeClock(time.Unix(1_700_000_000, 0))
	b := startBroker(t, Config{Clock: fc.Now})
	c := dealer(t, b)
	n := newNode(t, b, "n", "api")
	n.credit(100)
	callsOf(t, c, "api", []string{`"key_group":"g"`})
	tk := n.collect(1)[0]
	n.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"error":%s}`, tk.ID, errJSON(protocol.NewRateLimited(time.Second))))
	testutil.Eventually(t, wait, func() bool {
		l := decodeResp(t, c.call(`{"jsonrpc":"2.0","id":1,"method":"broker.limit.list"}`))
		return strings.Contains(string(l.Result), `{"scope":"group","name":"g","paused_ms":1000}`)
	}, "the group paused")
	callsOf(t, c, "api", []string{`"key_group":"g"`, ""})
	if ts := n.collect(1); string(ts[0].Params) != "[1]" {
		t.Fatalf("during the group's pause: %s, want the task without a group", ts[0].Params)
	}
	n.none()
	fc.Add(time.Second)
	if ts := paramsOf(n.collect(2)); strings.Join(ts, " ") != "[0] [0]" {
		t.Fatalf("after the pause: %v, want the task given back and the new one", ts)
	}
}
