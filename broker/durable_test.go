package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/protocol"
	"github.com/zerotask/zerotask/store"
)

// Durable mode on a Redis store of the test's own (a redis-server started for it); the
// drills with broker and node processes are in package e2e.

func storeFor(t testing.TB) *store.Redis {
	t.Helper()
	return redisStoreFor(t, testutil.StartRedis(t))
}

// serveDurable starts a broker on st as owner (loopback, no PUB) and serves it; the channel
// gets Serve's error. The test stops it (Shutdown) itself.
func serveDurable(t testing.TB, st store.Store, owner string) (*Broker, chan error) {
	t.Helper()
	b, err := New(Config{Listen: "tcp://127.0.0.1:0", Pub: PubDisabled, Store: st, StoreOwner: owner, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- b.Serve(context.Background()) }()
	return b, errc
}

// queuedLen returns how many tasks wait in the store's queue q.
func queuedLen(t testing.TB, st *store.Redis, q string) int {
	t.Helper()
	c := st.Client()
	n, err := c.Do(context.Background(), c.B().Llen().Key(testPrefix+"q:"+q).Build()).AsInt64()
	if err != nil {
		t.Fatal(err)
	}
	return int(n)
}

func getResult(t testing.TB, s store.Store, id string) (store.Result, bool) {
	t.Helper()
	var r store.Result
	ok, err := s.Get(context.Background(), id, &r)
	if err != nil {
		t.Fatalf("store Get %s: %v", id, err)
	}
	return r, ok
}

func TestDurableSubmitWritesBeforeAnswer(t *testing.T) {
	st := storeFor(t)
	b := startBroker(t, Config{Store: st, StoreOwner: "b1"})
	c := dealer(t, b)
	id := submitID(t, c, "add", "[1,2]", "")
	// Answered: the store has the task, held by this broker.
	where, owner, err := st.Locate(context.Background(), id)
	if err != nil || where != store.WhereHeld || owner != "b1#1" {
		t.Fatalf("Locate after the answer = %v %q %v, want held by b1's first run", where, owner, err)
	}
	n := newNode(t, b, "n1", "add")
	n.credit(1)
	ts := n.collect(1)
	n.result(ts[0].ID, "3")
	testutil.Eventually(t, wait, func() bool {
		r, ok := getResult(t, st, id)
		return ok && r.State == store.StateSuccess && string(r.Result) == "3" && r.Method == "add" && r.Node == "n1"
	}, "result of %s in the store", id)
	testutil.Eventually(t, wait, func() bool {
		w, _, _ := st.Locate(context.Background(), id)
		return w == store.WhereNone
	}, "task %s acked", id)
	if s := b.Stats(); s.Stored != 1 || s.Storing != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestDurableCallWrittenAndAcked(t *testing.T) {
	st := storeFor(t)
	b := startBroker(t, Config{Store: st, StoreOwner: "b1"})
	n := newNode(t, b, "n1", "add")
	n.credit(1)
	c := dealer(t, b)
	c.send(`{"jsonrpc":"2.0","id":7,"method":"add","params":[2,3]}`)
	ts := n.collect(1)
	// The task reached the node only once written.
	if s := b.Stats(); s.Stored != 1 {
		t.Fatalf("stored %d, want 1", s.Stored)
	}
	n.result(ts[0].ID, "5")
	if r := decodeResp(t, c.recv()); string(r.Result) != "5" {
		t.Fatalf("call answered %s", r.Result)
	}
	// No result is kept for a call; the task is acked.
	testutil.Eventually(t, wait, func() bool {
		for _, q := range []string{"add"} {
			if k := queuedLen(t, st, q); k != 0 {
				return false
			}
		}
		return b.Stats().Storing == 0
	}, "nothing left")
}

// TestDurableRecover: tasks an earlier run held under the owner id (a crash) run again after a
// start under the same id, with their ids, options and results under those ids.
func TestDurableRecover(t *testing.T) {
	st := storeFor(t)
	ctx := context.Background()
	meta := func(submitted bool) []byte {
		c := &core{opts: map[uint32]taskOpts{}}
		tk := &task{prio: 3}
		if submitted {
			tk.flags |= fSubmitted
		}
		return c.appendMeta(nil, 0, tk, holdEntry{})
	}
	err := st.Hold(ctx, "crashed", store.Task{ID: "deadbeef-1", Queue: "add", Method: "add", Params: []byte("[1,1]"), Meta: meta(true)},
		store.Task{ID: "deadbeef-2", Queue: "add", Method: "add", Params: []byte("[2,2]"), Meta: meta(false)})
	if err != nil {
		t.Fatal(err)
	}
	b := startBroker(t, Config{Store: st, StoreOwner: "crashed"})
	if k := queuedLen(t, st, "add"); k != 2 {
		t.Fatalf("after New, queue holds %d, want 2 (recovered)", k)
	}
	n := newNode(t, b, "n1", "add")
	n.credit(2)
	ts := n.collect(2)
	got := paramsOf(ts)
	if got[0] != "[1,1]" || got[1] != "[2,2]" {
		t.Fatalf("recovered tasks %v", got)
	}
	// Status through this broker while it runs: under its own id.
	c := dealer(t, b)
	r := decodeResp(t, c.call(`{"jsonrpc":"2.0","id":1,"method":"broker.status","params":{"id":"deadbeef-1"}}`))
	if !strings.Contains(string(r.Result), `"id":"deadbeef-1"`) || !strings.Contains(string(r.Result), `"RUNNING"`) && !strings.Contains(string(r.Result), `"QUEUED"`) {
		t.Fatalf("status of a recovered task: %s", r.Result)
	}
	n.result(ts[0].ID, "2")
	n.result(ts[1].ID, "4")
	testutil.Eventually(t, wait, func() bool {
		r, ok := getResult(t, st, "deadbeef-1")
		return ok && string(r.Result) == "2"
	}, "result of the recovered submit")
	testutil.Eventually(t, wait, func() bool {
		w1, _, _ := st.Locate(ctx, "deadbeef-1")
		w2, _, _ := st.Locate(ctx, "deadbeef-2")
		return w1 == store.WhereNone && w2 == store.WhereNone
	}, "recovered tasks acked")
	if _, ok := getResult(t, st, "deadbeef-2"); ok {
		t.Fatal("a recovered call left a result")
	}
	// Read through the store after the broker forgot it: status and result answer it.
	r = decodeResp(t, c.call(`{"jsonrpc":"2.0","id":2,"method":"broker.result","params":{"id":"deadbeef-1","wait_ms":1000}}`))
	if !strings.Contains(string(r.Result), `"state":"SUCCESS"`) || !strings.Contains(string(r.Result), `"result":2`) {
		t.Fatalf("result through the store: %s", r.Result)
	}
	if s := b.Stats(); s.Claimed != 2 {
		t.Fatalf("claimed %d, want 2", s.Claimed)
	}
}

// TestDurableTwoBrokers: two brokers on one store; the state (QUEUED, then RUNNING) and the
// result are read, and waited for, through the broker that did not run it.
func TestDurableTwoBrokers(t *testing.T) {
	st := storeFor(t)
	b1 := startBroker(t, Config{Store: st, StoreOwner: "b1"})
	b2 := startBroker(t, Config{Store: st, StoreOwner: "b2"})
	n1 := newNode(t, b1, "n1", "add")
	c1, c2 := dealer(t, b1), dealer(t, b2)
	id := submitID(t, c1, "add", "[20,22]", "")
	// Waiting through b2 for a task b1 holds: answered when b1's node finishes it.
	c2.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":"w","method":"broker.result","params":{"id":%q,"wait_ms":5000}}`, id))
	r := decodeResp(t, c2.call(fmt.Sprintf(`{"jsonrpc":"2.0","id":"s","method":"broker.status","params":{"id":%q}}`, id)))
	if !strings.Contains(string(r.Result), `"QUEUED"`) {
		t.Fatalf("status through the other broker: %s", r.Result)
	}
	n1.credit(1)
	ts := n1.collect(1)
	// b1's node reports it started: b2 reads RUNNING from the store.
	n1.send(fmt.Sprintf(`{"jsonrpc":"2.0","method":"broker.running","params":[%s]}`, ts[0].ID))
	testutil.Eventually(t, 5*time.Second, func() bool {
		r := decodeResp(t, c2.call(fmt.Sprintf(`{"jsonrpc":"2.0","id":"s","method":"broker.status","params":{"id":%q}}`, id)))
		return strings.Contains(string(r.Result), `"RUNNING"`)
	}, "status through the other broker after the node started the task")
	// It fails and is to run again: back at b1, in a retry backoff, so QUEUED through b2; then
	// it runs again.
	n1.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"error":{"code":-32050,"message":"later"},"retry":true,"retry_after_ms":10}`, ts[0].ID))
	testutil.Eventually(t, 5*time.Second, func() bool {
		r := decodeResp(t, c2.call(fmt.Sprintf(`{"jsonrpc":"2.0","id":"s","method":"broker.status","params":{"id":%q}}`, id)))
		return strings.Contains(string(r.Result), `"QUEUED"`)
	}, "status through the other broker after the node gave the task back")
	n1.credit(1)
	ts = n1.collect(1)
	n1.result(ts[0].ID, "42")
	r = decodeResp(t, c2.recv())
	if string(r.ID) != `"w"` || !strings.Contains(string(r.Result), `"result":42`) || !strings.Contains(string(r.Result), `"method":"add"`) {
		t.Fatalf("wait through the other broker: %s %s", r.ID, r.Result)
	}
	r = decodeResp(t, c2.call(`{"jsonrpc":"2.0","id":3,"method":"broker.status","params":{"id":"nope-1"}}`))
	if !strings.Contains(string(r.Result), `"UNKNOWN"`) {
		t.Fatalf("status of an unknown id: %s", r.Result)
	}
	_ = b2
}

// TestDurableShutdownKeepsQueued: a graceful shutdown leaves submitted tasks that did not run
// in the store (given back to its queues), and answers queued calls -32003.
func TestDurableShutdownKeepsQueued(t *testing.T) {
	st := storeFor(t)
	b, errc := serveDurable(t, st, "b1")
	c := dealer(t, b)
	var ids []string
	for i := 0; i < 3; i++ {
		ids = append(ids, submitID(t, c, "slow", "[]", ""))
	}
	ids = append(ids, submitID(t, c, "slow", "[]", `"delay_ms":60000`))
	c.send(`{"jsonrpc":"2.0","id":"call","method":"slow","params":[]}`)
	testutil.Eventually(t, wait, func() bool { return b.Stats().Queued == 4 }, "4 tasks queued")
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrServerClosed) {
		t.Fatal(err)
	}
	if code := errCode(t, c.recv()); code != CodeShuttingDown {
		t.Fatalf("queued call answered %d, want -32003", code)
	}
	if k := queuedLen(t, st, "slow"); k != 4 {
		t.Fatalf("store queue after shutdown holds %d, want 4", k)
	}
	for _, id := range ids {
		if w, _, _ := st.Locate(context.Background(), id); w != store.WhereQueued {
			t.Fatalf("%s is %v after shutdown, want queued", id, w)
		}
	}
}

// failStore refuses every Hold.
type failStore struct{ store.Store }

var errDown = errors.New("store down")

func (f failStore) Hold(context.Context, string, ...store.Task) error { return errDown }

func TestDurableStoreFailureRefuses(t *testing.T) {
	st := failStore{storeFor(t)}
	b := startBroker(t, Config{Store: st, StoreOwner: "b1", Logger: discardLogger()})
	newNode(t, b, "n1", "add").credit(1)
	c := dealer(t, b)
	tests := []struct{ name, req string }{
		{"submit", `{"jsonrpc":"2.0","id":1,"method":"broker.submit","params":{"method":"add","params":[1,2]}}`},
		{"call", `{"jsonrpc":"2.0","id":2,"method":"add","params":[1,2]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if code := errCode(t, c.call(tc.req)); code != CodeQueueFull {
				t.Fatalf("answered %d, want -32001", code)
			}
		})
	}
	if s := b.Stats(); s.Running != 0 || s.Queued != 0 || s.Storing != 0 || s.StoreErrors != uint64(len(tests)) {
		t.Fatalf("stats after refusals %+v (want StoreErrors %d)", s, len(tests))
	}
	var m strings.Builder
	if err := b.WriteMetrics(&m); err != nil || !strings.Contains(m.String(), "\n"+protocol.MetricStoreErrors+" 2\n") {
		t.Errorf("metrics after two refused writes (%v):\n%s", err, m.String())
	}
	b.mu.Lock()
	live, subm := b.c.tasks.live, len(b.c.subm)
	b.mu.Unlock()
	if live != 0 || subm != 0 {
		t.Fatalf("%d tasks and %d submitted ones left after refusals", live, subm)
	}
}

// blockStore holds every Hold until release is closed.
type blockStore struct {
	store.Store
	entered chan struct{}
	release chan struct{}
}

func (s blockStore) Hold(ctx context.Context, owner string, ts ...store.Task) error {
	select {
	case s.entered <- struct{}{}:
	default:
	}
	select {
	case <-s.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.Store.Hold(ctx, owner, ts...)
}

// TestDurableDroppedWhileStoring: a call whose client goes away while its task is being
// written is acked once written and never runs.
func TestDurableDroppedWhileStoring(t *testing.T) {
	st0 := storeFor(t)
	st := blockStore{Store: st0, entered: make(chan struct{}, 1), release: make(chan struct{})}
	b := startBroker(t, Config{Store: st, StoreOwner: "b1"})
	n := newNode(t, b, "n1", "add")
	n.credit(1)
	c := dealer(t, b)
	c.send(`{"jsonrpc":"2.0","id":1,"method":"add","params":[1,2]}`)
	<-st.entered
	if s := b.Stats(); s.Storing != 1 {
		t.Fatalf("storing %d, want 1", s.Storing)
	}
	c.s.Close()
	testutil.Eventually(t, wait, func() bool { return b.Stats().Storing == 0 && b.Stats().Dropped == 1 }, "call dropped")
	close(st.release)
	testutil.Eventually(t, wait, func() bool {
		s := b.Stats()
		return s.Stored == 0 && s.Storing == 0
	}, "write over")
	// Written, then acked: nothing in the store, nothing ran.
	b.mu.Lock()
	id := string(b.c.appendBareID(nil, 1))
	b.mu.Unlock()
	testutil.Eventually(t, wait, func() bool {
		w, _, _ := st0.Locate(context.Background(), id)
		return w == store.WhereNone
	}, "dropped task acked")
	n.none()
}

func TestDurableStatsJSON(t *testing.T) {
	st := storeFor(t)
	b := startBroker(t, Config{Store: st, StoreOwner: "b1"})
	c := dealer(t, b)
	submitID(t, c, "add", "[1,2]", "")
	r := decodeResp(t, c.call(`{"jsonrpc":"2.0","id":1,"method":"broker.stats"}`))
	var s map[string]any
	if err := json.Unmarshal(r.Result, &s); err != nil {
		t.Fatal(err)
	}
	if s["stored"] != float64(1) {
		t.Fatalf("stats %s", r.Result)
	}
}

// FuzzDecodeMeta: the task metadata read back from a store never panics the broker, and what
// it decodes encodes back to the same values.
func FuzzDecodeMeta(f *testing.F) {
	const now = int64(1e18) // this broker's clock at the claim, on a whole millisecond
	nowf := func() int64 { return now }
	c := &core{opts: map[uint32]taskOpts{}, now: nowf}
	f.Add(c.appendMeta(nil, 0, &task{prio: 3, flags: fSubmitted}, holdEntry{due: int64(time.Hour)}))
	c.opts[0] = taskOpts{maxAttempts: 5, backoff: time.Second, maxBackoff: time.Minute}
	f.Add(c.appendMeta(nil, 0, &task{flags: fOpts}, holdEntry{}))
	c.opts[0] = taskOpts{key: "alice\x00add\x00order-17", owner: "alice"}
	f.Add(c.appendMeta(nil, 0, &task{flags: fOpts | fSubmitted}, holdEntry{}))
	c.opts[0] = taskOpts{meta: `{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}`}
	f.Add(c.appendMeta(nil, 0, &task{flags: fOpts | fSubmitted}, holdEntry{}))
	f.Add([]byte{1, 0, 0, 0})
	f.Add([]byte{1, 1, 200, 250, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, ok := decodeMeta(b, now, 0)
		if !ok {
			return
		}
		if m.prio > MaxPriority || m.opts.maxAttempts > MaxAttemptsCap || len(m.opts.owner) > maxMetaOwner || len(m.opts.meta) > maxMetaMeta || m.opts.backoff < 0 || m.opts.maxBackoff < 0 || m.due < 0 {
			t.Fatalf("decoded out of bounds: %+v", m)
		}
		tk := &task{prio: m.prio}
		if m.submitted {
			tk.flags |= fSubmitted
		}
		if m.opts != (taskOpts{}) {
			tk.flags |= fOpts
		}
		c := &core{opts: map[uint32]taskOpts{0: m.opts}, now: nowf}
		m2, ok := decodeMeta(c.appendMeta(nil, 0, tk, holdEntry{due: m.due}), now, 0)
		if m.due != 0 {
			m.due = max(m.due, now) // a due time already past is kept as now
		}
		if !ok || m2 != m {
			t.Fatalf("round trip %+v -> %+v (%v)", m, m2, ok)
		}
	})
}

// TestDurableHandOver: a broker shut down gracefully leaves its submitted tasks in the store
// with their options; another broker on the same store runs them: priorities and meta kept, a delayed
// task not before it is due, its attempts bound kept.
func TestDurableHandOver(t *testing.T) {
	st := storeFor(t)
	b1, errc := serveDurable(t, st, "b1")
	c := dealer(t, b1)
	low := submitID(t, c, "work", `["low"]`, "")
	const meta = `{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "n":1e400}`
	high := submitID(t, c, "work", `["high"]`, `"priority":9,"meta":`+meta)
	due := time.Now().Add(400 * time.Millisecond)
	later := submitID(t, c, "work", `["later"]`, `"delay_ms":400,"max_attempts":1`)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := b1.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrServerClosed) {
		t.Fatal(err)
	}

	b2 := startBroker(t, Config{Store: st, StoreOwner: "b2"})
	n := newNode(t, b2, "n1", "work")
	n.credit(1) // one at a time: the order shows
	var order []string
	var lastAt time.Time
	var laterID json.RawMessage
	for len(order) < 3 {
		ts := n.collect(1)
		order = append(order, string(ts[0].Params))
		if m := string(ts[0].Meta); (string(ts[0].Params) == `["high"]`) != (m == meta) || m != "" && m != meta {
			t.Errorf("task %s handed out with meta %q, want %q on high only", ts[0].Params, m, meta)
		}
		lastAt = time.Now()
		if string(ts[0].Params) == `["later"]` {
			laterID = ts[0].ID
			n.fail(ts[0].ID, -32000, "boom") // max_attempts 1: no retry
		} else {
			n.result(ts[0].ID, "0")
		}
		n.credit(1)
	}
	if order[0] != `["high"]` || order[1] != `["low"]` || order[2] != `["later"]` {
		t.Fatalf("order %v, want high, low, later", order)
	}
	if lastAt.Before(due) {
		t.Fatalf("the delayed task ran %v before it was due", due.Sub(lastAt))
	}
	_ = laterID
	for id, want := range map[string]string{low: store.StateSuccess, high: store.StateSuccess, later: store.StateFailure} {
		testutil.Eventually(t, wait, func() bool {
			r, ok := getResult(t, st, id)
			return ok && r.State == want
		}, "%s ends %s", id, want)
	}
	// Read through b2 under the ids b1 gave.
	r := decodeResp(t, dealer(t, b2).call(fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"broker.status","params":{"id":%q}}`, high)))
	if !strings.Contains(string(r.Result), `"SUCCESS"`) {
		t.Fatalf("status through b2: %s", r.Result)
	}
}

// TestDurableKeyAcrossBrokers: an idempotency key names one task across brokers sharing a
// store, while the task lives and while its result is kept.
func TestDurableKeyAcrossBrokers(t *testing.T) {
	st := storeFor(t)
	b1 := startBroker(t, Config{Store: st, StoreOwner: "b1"})
	b2 := startBroker(t, Config{Store: st, StoreOwner: "b2"})
	c1, c2 := dealer(t, b1), dealer(t, b2)
	type answer struct {
		ID        string `json:"id"`
		State     string `json:"state"`
		Duplicate bool   `json:"duplicate"`
	}
	submitKey := func(c *tpeer) answer {
		t.Helper()
		r := submitExt(t, c, "add", "[1,2]", `"key":"order-17"`)
		if r.Error != nil {
			t.Fatalf("submit: %+v", r.Error)
		}
		var a answer
		if err := json.Unmarshal(r.Result, &a); err != nil {
			t.Fatal(err)
		}
		return a
	}
	first := submitKey(c1)
	if first.Duplicate || first.ID == "" {
		t.Fatalf("first submit %+v", first)
	}
	tests := []struct {
		name  string
		c     *tpeer
		state string
	}{
		{"same broker", c1, "QUEUED"},
		{"other broker", c2, "QUEUED"},
	}
	for _, tc := range tests {
		if a := submitKey(tc.c); !a.Duplicate || a.ID != first.ID || a.State != tc.state {
			t.Fatalf("%s: %+v, want a duplicate of %s in state %s", tc.name, a, first.ID, tc.state)
		}
	}
	if s := b2.Stats(); s.Submitted != 0 || s.Duplicate != 1 || s.Storing != 0 {
		t.Fatalf("b2 stats %+v: the duplicate must not count as a task", s)
	}
	// It runs once; then the key still names it, with its result, through any broker, and
	// through a broker that starts later.
	n := newNode(t, b1, "n1", "add")
	n.credit(2)
	n.result(n.collect(1)[0].ID, "3")
	testutil.Eventually(t, wait, func() bool { r, ok := getResult(t, st, first.ID); return ok && r.State == store.StateSuccess }, "result")
	b3 := startBroker(t, Config{Store: st, StoreOwner: "b3"})
	for _, c := range []*tpeer{c1, c2, dealer(t, b3)} {
		if a := submitKey(c); !a.Duplicate || a.ID != first.ID || a.State != "SUCCESS" {
			t.Fatalf("after the run: %+v, want a SUCCESS duplicate of %s", a, first.ID)
		}
	}
	n.none() // nothing ran twice
}

// TestDurableStoreTimeout: a store that does not answer within StoreTimeout (the write may
// have landed) is not taken for a refusal: the write is sent again until the store answers,
// and the submit is answered then, accepted, its task stored once. (A refusal, an error the
// store answers, is TestDurableStoreFailureRefuses.)
func TestDurableStoreTimeout(t *testing.T) {
	st0 := storeFor(t)
	st := blockStore{Store: st0, entered: make(chan struct{}, 1), release: make(chan struct{})}
	b := startBroker(t, Config{Store: st, StoreOwner: "b1", StoreTimeout: 100 * time.Millisecond, Logger: discardLogger()})
	c := dealer(t, b)
	c.send(`{"jsonrpc":"2.0","id":1,"method":"broker.submit","params":{"method":"add","params":[1,2]}}`)
	<-st.entered
	c.none() // past StoreTimeout: no answer, no refusal
	close(st.release)
	r := decodeResp(t, c.recv())
	var v struct{ ID string }
	if r.Error != nil || json.Unmarshal(r.Result, &v) != nil || v.ID == "" {
		t.Fatalf("answered %+v %s, want accepted", r.Error, r.Result)
	}
	if w, _, err := st0.Locate(context.Background(), v.ID); err != nil || w != store.WhereHeld {
		t.Fatalf("%s is %v, %v; want held", v.ID, w, err)
	}
	if s := b.Stats(); s.Stored != 1 || s.Rejected != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// TestDurableLookupBound: lookups against the store count against MaxWaiting: past it,
// -32001.
func TestDurableLookupBound(t *testing.T) {
	st := storeFor(t)
	// A task another broker holds: a result wait on it blocks in the store.
	if err := st.Hold(context.Background(), "elsewhere", store.Task{ID: "other-1", Queue: "add", Method: "add"}); err != nil {
		t.Fatal(err)
	}
	b := startBroker(t, Config{Store: st, StoreOwner: "b1", MaxWaiting: 1})
	c := dealer(t, b)
	c.send(`{"jsonrpc":"2.0","id":"w1","method":"broker.result","params":{"id":"other-1","wait_ms":5000}}`)
	testutil.Eventually(t, wait, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.c.dur.lookups == 1
	}, "first wait running")
	if code := errCode(t, c.call(`{"jsonrpc":"2.0","id":"w2","method":"broker.status","params":{"id":"other-1"}}`)); code != CodeQueueFull {
		t.Fatalf("second lookup answered %d, want -32001", code)
	}
	// The first wait is answered when the task's result is put (by whichever broker).
	if err := st.Put(context.Background(), time.Hour, store.Result{ID: "other-1", State: store.StateSuccess, Result: []byte("7")}); err != nil {
		t.Fatal(err)
	}
	r := decodeResp(t, c.recv())
	if string(r.ID) != `"w1"` || !strings.Contains(string(r.Result), `"result":7`) {
		t.Fatalf("wait answered %s %s", r.ID, r.Result)
	}
}

// TestDurableStopKeepsRecoveredCalls: calls an earlier run left in the store (a kill -9) are
// claimed by the restarted broker; a graceful stop then gives back every one it did not
// finish, the ones still queued and the ones on a node lost during the stop (a task submitted
// to this run among them), instead of failing them with nobody to answer (-32003) and acking
// them.
func TestDurableStopKeepsRecoveredCalls(t *testing.T) {
	st := storeFor(t)
	ctx := context.Background()
	const n = 20
	meta := (&core{opts: map[uint32]taskOpts{}}).appendMeta(nil, 0, &task{}, holdEntry{}) // a plain call
	var ids []string
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("deadbeef-%d", i+1)
		ids = append(ids, id)
		if err := st.Hold(ctx, "b1", store.Task{ID: id, Queue: "work", Method: "work", Params: []byte("[1]"), Meta: meta}); err != nil {
			t.Fatal(err)
		}
	}
	b, errc := serveDurable(t, st, "b1")
	nd := newNode(t, b, "n1", "work")
	nd.credit(2)
	ts := nd.collect(2)
	nd.result(ts[0].ID, "1") // one finishes; one stays on the node
	testutil.Eventually(t, wait, func() bool { return b.Stats().Claimed == n && b.Stats().Queued == n-2 }, "all claimed, %d queued", n-2)
	// A task submitted to this run, on the node too when the node is lost.
	sub := submitID(t, dealer(t, b), "work", `["sub"]`, `"priority":9`)
	nd.credit(1)
	if st := nd.collect(1); string(st[0].Params) != `["sub"]` {
		t.Fatalf("the node was given %s, want the submitted task", st[0].Params)
	}
	sctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- b.Shutdown(sctx) }()
	testutil.Eventually(t, wait, func() bool { return b.Stats().Queued == 0 }, "the stop began")
	nd.s.Close() // the node is lost during the stop
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrServerClosed) {
		t.Fatal(err)
	}
	back := 0
	for _, id := range append(ids, sub) {
		w, _, err := st.Locate(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if w == store.WhereQueued {
			back++
		}
	}
	if back != n || queuedLen(t, st, "work") != n {
		t.Fatalf("%d of %d unfinished recovered calls and submitted tasks back in the store (queue %d)", back, n, queuedLen(t, st, "work"))
	}
}
