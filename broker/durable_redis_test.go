package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/store"
)

// testPrefix is the key prefix of the tests' stores.
const testPrefix = "zt:"

// dialLeased dials the Redis at addr as a store whose owners hold leases of lease, closed when
// the test ends.
func dialLeased(ctx context.Context, t *testing.T, addr string, lease time.Duration) *store.Redis {
	t.Helper()
	st, err := store.DialRedis(ctx, "redis://"+addr, store.Options{Prefix: testPrefix, Lease: lease})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// redisStoreFor opens a Redis store on addr for the test (closed when it ends).
func redisStoreFor(t testing.TB, addr string) *store.Redis {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	st, err := store.DialRedis(ctx, "redis://"+addr, store.Options{Prefix: testPrefix, Lease: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestDurableRecordsInRedis: after a run that ends tasks every way (a node's result and error,
// expiry, revoke, a lost node, calls, a keyed and a delayed submit), every key the store wrote
// decodes and every result and error in it is valid JSON, no task is left behind, and each
// record read through another broker (from Redis) equals the one the writer has in memory.
func TestDurableRecordsInRedis(t *testing.T) {
	addr := testutil.StartRedis(t)
	stA, stB := redisStoreFor(t, addr), redisStoreFor(t, addr)
	a := startBroker(t, Config{Store: stA, StoreOwner: "a"})
	b := startBroker(t, Config{Store: stB, StoreOwner: "b"})
	ca, cb := dealer(t, a), dealer(t, b)

	work := newNode(t, a, "n1", "work")
	lose := newNode(t, a, "n2", "lose")
	var ids []string
	submit := func(method, params, ext string) string {
		id := submitID(t, ca, method, params, ext)
		ids = append(ids, id)
		return id
	}
	submit("work", `["ok"]`, "")
	submit("work", `["fail"]`, "")
	submit("work", `["keyed"]`, `"key":"k1"`)
	submit("work", `["later"]`, `"delay_ms":100`)
	submit("idle", `[1]`, `"timeout_ms":100`) // no node: EXPIRED (-32005)
	revoked := submit("idle", `[2]`, "")
	submit("lose", `[3]`, `"max_attempts":1`) // its node goes: FAILURE (-32006)
	recordOf(t, ca.call(fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"broker.revoke","params":{"id":%q}}`, revoked)))
	ca.send(`{"jsonrpc":"2.0","id":"call","method":"work","params":["call"]}`)

	lose.credit(1)
	lose.collect(1)
	lose.s.Close()
	work.credit(10)
	for _, tk := range work.collect(5) {
		if string(tk.Params) == `["fail"]` {
			work.fail(tk.ID, -32050, "boom")
		} else {
			work.result(tk.ID, fmt.Sprintf("{\"echo\":%s}", tk.Params))
		}
	}
	if r := decodeResp(t, ca.recv()); string(r.ID) != `"call"` || r.Error != nil {
		t.Fatalf("call answered %s %+v", r.ID, r.Error)
	}

	ctx := context.Background()
	for _, id := range ids {
		testutil.Eventually(t, wait, func() bool {
			var r store.Result
			found, err := stB.Get(ctx, id, &r)
			if err != nil {
				t.Fatalf("result of %s: %v", id, err)
			}
			w, _, _ := stB.Locate(ctx, id)
			return found && w == store.WhereNone
		}, "result of %s written and its task acked", id)
	}

	// Through the writer (its memory) and through the other broker (Redis): the same record.
	for _, id := range ids {
		q := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"broker.status","params":{"id":%q}}`, id)
		ra, rb := storedFields(t, ca.call(q)), storedFields(t, cb.call(q))
		if !reflect.DeepEqual(ra, rb) {
			t.Errorf("record of %s\n through the writer: %v\n through the other:  %v", id, ra, rb)
		}
	}
	checkStoreKeys(t, stB, testPrefix)
}

// storedFields decodes the record in a broker.status answer: the fields both the writer and
// another broker report (the writer adds the named queue), with result and error decoded.
func storedFields(t testing.TB, body string) map[string]any {
	t.Helper()
	r := decodeResp(t, body)
	if r.Error != nil || !json.Valid(r.Result) {
		t.Fatalf("status answer %s", body)
	}
	var m map[string]any
	if err := json.Unmarshal(r.Result, &m); err != nil {
		t.Fatalf("record %s: %v", r.Result, err)
	}
	delete(m, "queue")
	return m
}

// checkStoreKeys scans every key under prefix and fails the test for one that does not
// decode, holds invalid JSON, is of an unexpected kind or type, or is a task still in the store.
func checkStoreKeys(t testing.TB, st *store.Redis, prefix string) {
	t.Helper()
	ctx := context.Background()
	c := st.Client()
	keys, err := c.Do(ctx, c.B().Keys().Pattern(prefix+"*").Build()).AsStrSlice()
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, k := range keys {
		name := strings.TrimPrefix(k, prefix)
		kind, rest, _ := strings.Cut(name, ":")
		typ, err := c.Do(ctx, c.B().Type().Key(k).Build()).ToString()
		if err != nil {
			t.Fatal(err)
		}
		kinds[kind]++
		want := map[string]string{"r": "string", "key": "string", "seq": "string", "owners": "zset", "own": "zset", "q": "list", "t": "hash", "epoch": "hash", "fenced": "zset", "claim": "list", "paused": "set", "dead": "hash", "deadz": "zset", "deadbytes": "string", "deadlast": "string", "held": "hash", "run": "set", "holders": "set"}[kind]
		if want == "" || typ != want {
			t.Errorf("key %q: kind %q of type %s (want %q)", k, kind, typ, want)
			continue
		}
		switch kind {
		case "r":
			var r store.Result
			if found, err := st.Get(ctx, rest, &r); err != nil || !found {
				t.Errorf("result %q: found %v, %v", rest, found, err)
				continue
			}
			if r.State == store.StateSuccess {
				if !json.Valid(r.Result) {
					t.Errorf("result %q: invalid JSON result %q", rest, r.Result)
				}
				continue
			}
			var e struct {
				Code    *int    `json:"code"`
				Message *string `json:"message"`
			}
			if err := json.Unmarshal(r.Error, &e); err != nil || e.Code == nil || e.Message == nil {
				t.Errorf("result %q (%s): invalid error object %q", rest, r.State, r.Error)
			}
		case "key":
			id, err := c.Do(ctx, c.B().Get().Key(k).Build()).ToString()
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := c.Do(ctx, c.B().Exists().Key(prefix+"r:"+id).Build()).AsInt64(); n != 1 {
				t.Errorf("idempotency key %q names %q, which has no result", k, id)
			}
		case "t", "q", "own", "run":
			t.Errorf("key %q: a task still in the store after every task finished", k)
		case "held":
			// A held hash outlives its tasks: its anchor field ("") keeps it.
			fields, err := c.Do(ctx, c.B().Hkeys().Key(k).Build()).AsStrSlice()
			if err != nil {
				t.Fatal(err)
			}
			if len(fields) != 1 || fields[0] != "" {
				t.Errorf("key %q: tasks %q still in the store after every task finished", k, fields)
			}
		}
	}
	if kinds["r"] == 0 {
		t.Errorf("no result keys among %v", keys)
	}
}

// TestDurableCorruptStoredRecord: a stored result whose error or result is not JSON (a broken
// or foreign writer) is answered as a valid FAILURE record, never passed on.
func TestDurableCorruptStoredRecord(t *testing.T) {
	addr := testutil.StartRedis(t)
	st := redisStoreFor(t, addr)
	b := startBroker(t, Config{Store: st, StoreOwner: "a", Logger: discardLogger()})
	c := dealer(t, b)
	ctx := context.Background()
	err := st.Put(ctx, time.Minute,
		store.Result{ID: "bad-1", State: store.StateExpired, Error: []byte(`ac1e0443-52005,"message":"task expired"}`)},
		store.Result{ID: "bad-2", State: store.StateSuccess, Result: []byte(`{"a":`)})
	if err != nil {
		t.Fatal(err)
	}
	for id, state := range map[string]string{"bad-1": "EXPIRED", "bad-2": "FAILURE"} {
		m := storedFields(t, c.call(fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"broker.result","params":{"id":%q}}`, id)))
		e, _ := m["error"].(map[string]any)
		if m["state"] != state || e["code"] != float64(-32603) || m["result"] != nil {
			t.Errorf("record of %s: %v", id, m)
		}
	}
}

// TestDurableOneOwnerOneBroker: a broker refuses to start under an owner id whose run is live
// in the store; told to take over, it waits for that lease to end and gets its tasks.
func TestDurableOneOwnerOneBroker(t *testing.T) {
	addr := testutil.StartRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	st, err := store.DialRedis(ctx, "redis://"+addr, store.Options{Prefix: testPrefix, Lease: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a := startBroker(t, Config{Store: st, StoreOwner: "x", Logger: discardLogger()})
	_, err = New(Config{Listen: "tcp://127.0.0.1:0", Pub: PubDisabled, Store: st, StoreOwner: "x", Logger: discardLogger()})
	if !errors.Is(err, store.ErrOwnerLive) {
		t.Fatalf("second broker with a live owner id: %v; want ErrOwnerLive", err)
	}
	_ = a
	// A run that died holding a task (it renews no more): a takeover waits out its lease.
	run, _, err := st.Register(ctx, "y", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Hold(ctx, run, store.Task{ID: "dead-1", Queue: "work", Method: "work", Params: []byte("[1]")}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	b := startBroker(t, Config{Store: st, StoreOwner: "y", StoreTakeover: true, Logger: discardLogger()})
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Fatalf("took over after %v, before the 1 s lease of the other run ended", d)
	}
	n := newNode(t, b, "n1", "work")
	n.credit(1)
	if ts := n.collect(1); string(ts[0].Params) != "[1]" {
		t.Fatalf("took over %s", ts[0].Params)
	}
}

// claimFailStore performs the first Claim but reports it timed out, as when Redis stalls past
// StoreTimeout and runs the claim when it resumes.
type claimFailStore struct {
	store.Store
	failed atomic.Bool
}

func (s *claimFailStore) Claim(ctx context.Context, queue, owner, token string, n int, dst []store.Task) ([]store.Task, error) {
	got, err := s.Store.Claim(ctx, queue, owner, token, n, dst)
	if err == nil && len(got) > len(dst) && s.failed.CompareAndSwap(false, true) {
		return dst, context.DeadlineExceeded
	}
	return got, err
}

// TestDurableClaimTimeoutApplied: a claim whose reply is lost still gets its tasks run: the
// claimer sends it again with its token and takes in what it took.
func TestDurableClaimTimeoutApplied(t *testing.T) {
	addr := testutil.StartRedis(t)
	raw := redisStoreFor(t, addr)
	ctx := context.Background()
	run, _, err := raw.Register(ctx, "gone", false)
	if err != nil {
		t.Fatal(err)
	}
	var ts []store.Task
	for i := 0; i < 10; i++ {
		ts = append(ts, store.Task{ID: fmt.Sprintf("gone-%d", i), Queue: "work", Method: "work", Params: []byte(fmt.Sprintf("[%d]", i))})
	}
	if err := raw.Hold(ctx, run, ts...); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Recover(ctx, run); err != nil {
		t.Fatal(err)
	}
	st := &claimFailStore{Store: raw}
	b := startBroker(t, Config{Store: st, StoreOwner: "b1", Logger: discardLogger()})
	n := newNode(t, b, "n1", "work")
	n.credit(10)
	got := n.collect(10)
	if !st.failed.Load() || len(got) != 10 {
		t.Fatalf("claim failed %v; %d tasks ran", st.failed.Load(), len(got))
	}
}

// TestDurableLostLease: a broker cut off from Redis past its lease (its renewals fail) while
// another broker claims its tasks learns it lost them at its next write: it hands none of them
// out any more, delayed ones included (due while it is cut off, or after), and goes on under
// a new run.
func TestDurableLostLease(t *testing.T) {
	addr := testutil.StartRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cut := &cutStore{Store: dialLeased(ctx, t, addr, time.Second)}
	a := startBroker(t, Config{Store: cut, StoreOwner: "a", Logger: discardLogger()})
	ca := dealer(t, a)
	var ids []string
	for i := 0; i < 5; i++ {
		ids = append(ids, submitID(t, ca, "work", fmt.Sprintf("[%d]", i), ""))
	}
	const lateDelay = 3 * time.Second
	submitted := time.Now()
	ids = append(ids, submitID(t, ca, "work", `["soon"]`, `"delay_ms":300`))
	ids = append(ids, submitID(t, ca, "work", `["late"]`, fmt.Sprintf(`"delay_ms":%d`, lateDelay.Milliseconds())))
	cut.cut.Store(true) // a is cut off: no renewal reaches Redis
	testutil.Eventually(t, 5*time.Second, func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.c.dur.paused
	}, "a stops handing out once its lease is not confirmed")
	n := newNode(t, a, "n1", "work")
	n.credit(5)
	n.none() // its tasks may be another broker's by now: not handed out
	other := dialLeased(ctx, t, addr, time.Hour)
	orun, _, err := other.Register(ctx, "b", false)
	if err != nil {
		t.Fatal(err)
	}
	var got []store.Task
	testutil.Eventually(t, 10*time.Second, func() bool {
		g, err := other.Claim(ctx, "work", orun, "", 10, nil)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, g...)
		return len(got) == len(ids)
	}, "b claims a's %d tasks after a's lease: %d", len(ids), len(got))
	cut.cut.Store(false)
	testutil.Eventually(t, 10*time.Second, func() bool {
		s := a.Stats()
		return s.Queued == 0
	}, "a forgets the tasks it lost")
	n.none()
	// a goes on under a new run: a new task is held and runs.
	id := submitID(t, ca, "work", `["new"]`, "")
	if ts := n.collect(1); string(ts[0].Params) != `["new"]` {
		t.Fatalf("a ran %s after losing its lease", ts[0].Params)
	}
	if w, owner, _ := other.Locate(ctx, id); w != store.WhereHeld || owner == "a#1" {
		t.Fatalf("new task %s: %v by %q; want held by a's new run", id, w, owner)
	}
	// Past the late delayed task's due time: a does not run it (b holds it).
	testutil.Eventually(t, 2*lateDelay, func() bool { return time.Since(submitted) > lateDelay+100*time.Millisecond }, "past the delay")
	n.none()
}

// TestDurableLeaseIgnoresWallClock: the broker's lease is measured on its monotonic clock, so
// a jump of its host's wall clock neither pauses hand-outs (2 minutes ahead, the lease still
// confirmed) nor keeps them going past the lease while cut off from Redis (2 minutes back,
// which on the wall clock would leave the lease "live" for 2 minutes more while another broker
// claims its tasks).
func TestDurableLeaseIgnoresWallClock(t *testing.T) {
	addr := testutil.StartRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.DialRedis(ctx, "redis://"+addr, store.Options{Prefix: testPrefix, Lease: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cut := &cutStore{Store: st}
	a := startBroker(t, Config{Store: cut, StoreOwner: "a", Logger: discardLogger()})
	jump := func(d time.Duration) {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.c.now = func() int64 { return time.Now().Add(d).UnixNano() }
		a.c.checkLease()
		if a.c.dur.paused {
			t.Fatalf("wall clock jumped %v: hand-outs paused with the lease confirmed", d)
		}
	}
	jump(2 * time.Minute)
	jump(-2 * time.Minute)
	cut.cut.Store(true) // no renewal reaches Redis any more
	start := time.Now()
	testutil.Eventually(t, 5*time.Second, func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.c.dur.paused
	}, "hand-outs pause once the lease is not confirmed, the wall clock 2 minutes back")
	if d := time.Since(start); d > time.Second {
		t.Errorf("paused %v after the cut; want within the lease (1 s)", d)
	}
	cut.cut.Store(false)
	testutil.Eventually(t, 5*time.Second, func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return !a.c.dur.paused
	}, "hand-outs resume once a renewal is confirmed")
}

// cutStore fails every call while cut, as a broker cut off from Redis sees it.
type cutStore struct {
	store.Store
	cut atomic.Bool
}

func (s *cutStore) Lease() time.Duration { return s.Store.(*store.Redis).Lease() }

var errCut = errors.New("cut off from the store")

func (s *cutStore) Renew(ctx context.Context, owner string) error {
	if s.cut.Load() {
		return errCut
	}
	return s.Store.Renew(ctx, owner)
}

func (s *cutStore) Claim(ctx context.Context, queue, owner, token string, n int, dst []store.Task) ([]store.Task, error) {
	if s.cut.Load() {
		return dst, errCut
	}
	return s.Store.Claim(ctx, queue, owner, token, n, dst)
}

// TestDurableClockSkewHandOver: delays and deadlines handed over through the store hold on
// the claiming broker's clock even when it is 2 minutes ahead or behind: the store keeps them
// relative to the hold, on Redis's clock. A delayed task runs neither early nor more than 1 s
// late; a task with a deadline does not expire unrun, and its node is given the time left
// within 1 s; a task still queued at its deadline expires neither early nor more than 1 s late.
func TestDurableClockSkewHandOver(t *testing.T) {
	for _, skew := range []time.Duration{2 * time.Minute, -2 * time.Minute} {
		t.Run(skew.String(), func(t *testing.T) { testClockSkewHandOver(t, skew) })
	}
}

func testClockSkewHandOver(t *testing.T, skew time.Duration) {
	const delay = 2 * time.Second
	st := storeFor(t)
	b1, errc := serveDurable(t, st, "b1")
	c := dealer(t, b1)
	start := time.Now()
	deadlined := submitID(t, c, "work", `["deadline"]`, `"timeout_ms":4000`)
	delayed := submitID(t, c, "work", `["delayed"]`, fmt.Sprintf(`"delay_ms":%d,"timeout_ms":6000`, delay.Milliseconds()))
	// On a queue whose only node is kept busy by the first task: the second waits, claimed
	// by the other broker, until its deadline.
	submitID(t, c, "slow", `["blocker"]`, "")
	const expiry = 3 * time.Second
	expiring := submitID(t, c, "slow", `["expiring"]`, fmt.Sprintf(`"timeout_ms":%d`, expiry.Milliseconds()))
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := b1.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrServerClosed) {
		t.Fatal(err)
	}

	b2, err := New(Config{Listen: "tcp://127.0.0.1:0", Pub: PubDisabled, Store: st, StoreOwner: "b2", Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	b2.c.now = func() int64 { return time.Now().Add(skew).UnixNano() }
	go func() { errc <- b2.Serve(context.Background()) }()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), wait)
		defer scancel()
		b2.Shutdown(sctx)
		<-errc
	})
	busy := newNode(t, b2, "n2", "slow")
	busy.credit(1)
	bt := busy.collect(1)
	if string(bt[0].Params) != `["blocker"]` {
		t.Fatalf("the slow queue's node ran %s first", bt[0].Params)
	}
	n := newNode(t, b2, "n1", "work")
	n.credit(2)
	ts := n.collect(1)
	if string(ts[0].Params) != `["deadline"]` {
		t.Fatalf("first ran %s", ts[0].Params)
	}
	if left, want := time.Duration(ts[0].TimeoutMS)*time.Millisecond, 4*time.Second-time.Since(start); left < want-time.Second || left > want+time.Second {
		t.Fatalf("the deadlined task was handed out with %v left, want %v within 1 s", left, want.Round(time.Millisecond))
	}
	n.result(ts[0].ID, "1")
	ts = n.collect(1)
	ran := time.Since(start)
	if string(ts[0].Params) != `["delayed"]` || ran < delay-100*time.Millisecond || ran > delay+time.Second {
		t.Fatalf("%s ran %v after its submit, want the delayed task after %v, within 1 s", ts[0].Params, ran, delay)
	}
	t.Logf("clock %v off: the %v delayed task ran %v after its submit", skew, delay, ran.Round(time.Millisecond))
	n.result(ts[0].ID, "2")
	testutil.Eventually(t, wait, func() bool {
		r, ok := getResult(t, st, expiring)
		return ok && r.State == store.StateExpired
	}, "the queued task with a deadline expires")
	if gone := time.Since(start); gone < expiry-100*time.Millisecond || gone > expiry+time.Second {
		t.Fatalf("the task with a %v deadline expired %v after its submit, want within 1 s of it", expiry, gone)
	} else {
		t.Logf("clock %v off: the task with a %v deadline expired %v after its submit", skew, expiry, gone.Round(time.Millisecond))
	}
	busy.result(bt[0].ID, "0")
	for _, id := range []string{deadlined, delayed} {
		testutil.Eventually(t, wait, func() bool {
			r, ok := getResult(t, st, id)
			return ok && r.State == store.StateSuccess
		}, "%s ends SUCCESS", id)
	}
}

// TestDurableKeyedRetryWhileStoring: a keyed submit sent again while the first one's write is
// pending is not told "duplicate" of a task that might yet be refused: it waits for the store,
// which binds the key to the task that landed. When the first write lands, both answers name
// that task; when it is refused (-32001), the retry is its own task, in Redis, and runs.
func TestDurableKeyedRetryWhileStoring(t *testing.T) {
	for _, refuse := range []bool{false, true} {
		t.Run(map[bool]string{false: "first lands", true: "first refused"}[refuse], func(t *testing.T) {
			st0 := storeFor(t)
			st := &refuseFirstStore{Store: st0, refuse: refuse, entered: make(chan struct{}, 1), release: make(chan struct{})}
			b := startBroker(t, Config{Store: st, StoreOwner: "b1", Logger: discardLogger()})
			c1, c2 := dealer(t, b), dealer(t, b)
			req := `{"jsonrpc":"2.0","id":1,"method":"broker.submit","params":{"method":"add","params":[1,2],"key":"k1"}}`
			c1.send(req)
			<-st.entered
			c2.send(req)
			c2.none() // not answered before the first write is settled
			close(st.release)
			type answer struct {
				ID        string
				Duplicate bool
			}
			var a1, a2 answer
			r1 := decodeResp(t, c1.recv())
			if refuse {
				if r1.Error == nil || r1.Error.Code != CodeQueueFull {
					t.Fatalf("first submit, its write refused: %s %+v; want -32001", r1.Result, r1.Error)
				}
			} else if err := json.Unmarshal(r1.Result, &a1); err != nil || a1.ID == "" || a1.Duplicate {
				t.Fatalf("first submit: %+v %v", a1, err)
			}
			if err := json.Unmarshal(decodeResp(t, c2.recv()).Result, &a2); err != nil || a2.ID == "" {
				t.Fatalf("retry: %+v %v", a2, err)
			}
			if refuse && a2.Duplicate || !refuse && (a2.ID != a1.ID || !a2.Duplicate) {
				t.Fatalf("retry: %+v; first: %+v", a2, a1)
			}
			if w, _, err := st0.Locate(context.Background(), a2.ID); err != nil || w != store.WhereHeld {
				t.Fatalf("%s is %v, %v; want held", a2.ID, w, err)
			}
			n := newNode(t, b, "n1", "add")
			n.credit(1)
			n.result(n.collect(1)[0].ID, "3")
			testutil.Eventually(t, wait, func() bool {
				r, ok := getResult(t, st0, a2.ID)
				return ok && r.State == store.StateSuccess
			}, "the task the key names runs")
		})
	}
}

// refuseFirstStore holds the first Hold until released, then performs it, or refuses it
// (an error reply, nothing written) when refuse is set; later Holds go through.
type refuseFirstStore struct {
	store.Store
	refuse  bool
	once    atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func (s *refuseFirstStore) Hold(ctx context.Context, owner string, ts ...store.Task) error {
	if !s.once.CompareAndSwap(false, true) {
		return s.Store.Hold(ctx, owner, ts...)
	}
	s.entered <- struct{}{}
	<-s.release
	if s.refuse {
		return errDown
	}
	return s.Store.Hold(ctx, owner, ts...)
}
