package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/protocol"
	"github.com/zerotask/zerotask/store"
)

// TestDurableResultWaitOnGoneTask: a broker.result wait on another broker's task that leaves
// the store without a result while the wait lasts (acked without one, as a refused write is
// undone) ends UNKNOWN, not QUEUED: the task is in no queue and held by nobody.
func TestDurableResultWaitOnGoneTask(t *testing.T) {
	addr := testutil.StartRedis(t)
	raw, st := redisStoreFor(t, addr), redisStoreFor(t, addr)
	ctx := context.Background()
	run, _, err := raw.Register(ctx, "other", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Hold(ctx, run, store.Task{ID: "other-1", Queue: "work", Method: "work", Params: []byte(`[1]`)}); err != nil {
		t.Fatal(err)
	}
	b := startBroker(t, Config{Store: st, StoreOwner: "b", Logger: discardLogger()})
	c := dealer(t, b)
	c.send(`{"jsonrpc":"2.0","id":"w","method":"broker.result","params":{"id":"other-1","wait_ms":1500}}`)
	testutil.Eventually(t, wait, func() bool { return st.Waiting() == 1 }, "the broker waits on the task's result")
	if err := raw.Ack(ctx, run, "other-1"); err != nil { // gone, no result
		t.Fatal(err)
	}
	r := decodeResp(t, c.recv())
	var rec struct{ State string }
	if r.Error != nil || json.Unmarshal(r.Result, &rec) != nil || rec.State != protocol.StateUnknown {
		t.Fatalf("wait on a task gone without a result answered %s %+v; want %s", r.Result, r.Error, protocol.StateUnknown)
	}
}

// TestDurableIDCollision: a task whose id the store has as another task (an earlier run drew
// the same 32-bit epoch: held by another owner, or finished with its result kept) is refused
// -32001 instead of being reported stored, and the other task and its result are left as
// they were; the next task is accepted and runs.
func TestDurableIDCollision(t *testing.T) {
	addr := testutil.StartRedis(t)
	raw, st := redisStoreFor(t, addr), redisStoreFor(t, addr)
	ctx := context.Background()
	b := startBroker(t, Config{Store: st, StoreOwner: "b", Logger: discardLogger()})
	b.mu.Lock()
	next := b.c.seq + 1
	held, done := string(b.c.appendBareID(nil, next)), string(b.c.appendBareID(nil, next+1))
	b.mu.Unlock()
	run, _, err := raw.Register(ctx, "earlier", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Hold(ctx, run, store.Task{ID: held, Queue: "work", Method: "work", Params: []byte(`["theirs"]`)}); err != nil {
		t.Fatal(err)
	}
	if err := raw.Put(ctx, time.Hour, store.Result{ID: done, State: store.StateSuccess, Result: []byte(`"theirs"`)}); err != nil {
		t.Fatal(err)
	}
	c := dealer(t, b)
	for _, id := range []string{held, done} {
		if code := errCode(t, c.call(`{"jsonrpc":"2.0","id":1,"method":"broker.submit","params":{"method":"work","params":["mine"]}}`)); code != CodeQueueFull {
			t.Fatalf("submit drawing id %s (another task's) answered %d, want -32001", id, code)
		}
	}
	id := submitID(t, c, "work", `["mine"]`, "")
	n := newNode(t, b, "n1", "work")
	n.credit(3)
	if ts := n.collect(1); string(ts[0].Params) != `["mine"]` {
		t.Fatalf("ran %s", ts[0].Params)
	}
	n.none()
	if w, owner, err := raw.Locate(ctx, held); err != nil || w != store.WhereHeld || owner != run {
		t.Fatalf("the other task %s: %v by %q, %v; want held by %s", held, w, owner, err, run)
	}
	if r, ok := getResult(t, raw, done); !ok || string(r.Result) != `"theirs"` {
		t.Fatalf("the other result %s: %+v", done, r)
	}
	if s := b.Stats(); s.Storing != 0 {
		t.Fatalf("stats %+v", s)
	}
	_ = id
}

// stallStore makes every write hang until its context ends while stalled, as a Redis that
// does not answer (stopped, cut off); it counts the calls that hung.
type stallStore struct {
	store.Store
	stalled atomic.Bool
	hung    atomic.Int64
	maxPut  atomic.Int64 // the most results one Put carried
}

func (s *stallStore) stall(ctx context.Context) error {
	if !s.stalled.Load() {
		return nil
	}
	s.hung.Add(1)
	<-ctx.Done()
	return ctx.Err()
}

func (s *stallStore) Hold(ctx context.Context, owner string, ts ...store.Task) error {
	if err := s.stall(ctx); err != nil {
		return err
	}
	return s.Store.Hold(ctx, owner, ts...)
}

func (s *stallStore) Put(ctx context.Context, ttl time.Duration, rs ...store.Result) error {
	if n := int64(len(rs)); n > s.maxPut.Load() {
		s.maxPut.Store(n) // one finisher: no concurrent Puts
	}
	if err := s.stall(ctx); err != nil {
		return err
	}
	return s.Store.Put(ctx, ttl, rs...)
}

func (s *stallStore) Ack(ctx context.Context, owner string, ids ...string) error {
	if err := s.stall(ctx); err != nil {
		return err
	}
	return s.Store.Ack(ctx, owner, ids...)
}

// TestDurableStoreUnreachableBounded: while Redis does not answer, what the broker keeps
// waiting to be written stays bounded: accepted tasks whose write is pending count against
// MaxQueued (past it a submit is refused -32001 at once), and results waiting to be written
// are those of the tasks it had when Redis went silent (no new task runs before its write is
// confirmed). Retries do not add to either; once Redis answers everything lands.
func TestDurableStoreUnreachableBounded(t *testing.T) {
	st := storeFor(t)
	stall := &stallStore{Store: st}
	const maxQueued, before, during = 8, 5, 20
	b := startBroker(t, Config{Store: stall, StoreOwner: "b", MaxQueued: maxQueued, StoreTimeout: 100 * time.Millisecond, Logger: discardLogger()})
	c := dealer(t, b)
	var ids []string
	for i := range before {
		ids = append(ids, submitID(t, c, "work", fmt.Sprintf("[%d]", i), ""))
	}
	stall.stalled.Store(true)
	n := newNode(t, b, "n1", "work")
	n.credit(before + during)
	for _, tk := range n.collect(before) {
		n.result(tk.ID, "1")
	}
	for i := range during {
		c.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"broker.submit","params":{"method":"work","params":["late%d"]}}`, i, i))
	}
	for range during - maxQueued {
		if code := errCode(t, c.recv()); code != CodeQueueFull {
			t.Fatalf("a submit past MaxQueued while Redis is silent answered %d, want -32001", code)
		}
	}
	// Several rounds of retries later, nothing more is pending.
	from := stall.hung.Load()
	testutil.Eventually(t, wait, func() bool { return stall.hung.Load() >= from+10 }, "the writes are retried")
	b.mu.Lock()
	storing, queuedPuts := b.c.dur.storing, len(b.c.dur.puts)
	b.mu.Unlock()
	if storing != maxQueued {
		t.Fatalf("%d tasks waiting to be written, want MaxQueued (%d)", storing, maxQueued)
	}
	// The finisher retries one batch; what finished meanwhile waits behind it.
	if p := int(stall.maxPut.Load()) + queuedPuts; p > before {
		t.Fatalf("%d results waiting to be written, more than the %d tasks there were", p, before)
	}
	n.none() // nothing new runs before its write is confirmed
	stall.stalled.Store(false)
	for range maxQueued {
		if r := decodeResp(t, c.recv()); r.Error != nil {
			t.Fatalf("a pending submit answered %+v once Redis answers", r.Error)
		}
	}
	for _, id := range ids {
		testutil.Eventually(t, wait, func() bool {
			r, ok := getResult(t, st, id)
			return ok && r.State == store.StateSuccess
		}, "result of %s written once Redis answers", id)
	}
	n.collect(maxQueued)
}

// splitCutStore cuts the lease renewals and the finisher's writes separately, as a broker
// whose connections to Redis fail and come back one after the other sees it.
type splitCutStore struct {
	store.Store
	renew, writes atomic.Bool
}

func (s *splitCutStore) Lease() time.Duration { return s.Store.(*store.Redis).Lease() }

func (s *splitCutStore) Renew(ctx context.Context, owner string) error {
	if s.renew.Load() {
		return errCut
	}
	return s.Store.Renew(ctx, owner)
}

func (s *splitCutStore) Claim(ctx context.Context, queue, owner, token string, n int, dst []store.Task) ([]store.Task, error) {
	if s.renew.Load() {
		return dst, errCut
	}
	return s.Store.Claim(ctx, queue, owner, token, n, dst)
}

func (s *splitCutStore) Put(ctx context.Context, ttl time.Duration, rs ...store.Result) error {
	if s.writes.Load() {
		return errCut
	}
	return s.Store.Put(ctx, ttl, rs...)
}

func (s *splitCutStore) Ack(ctx context.Context, owner string, ids ...string) error {
	if s.writes.Load() {
		return errCut
	}
	return s.Store.Ack(ctx, owner, ids...)
}

// TestDurableLostLeaseKeepsGivenBack: results and acks a broker had waiting when it learned
// it lost its lease belong to the lost run. They are not written under its next run: an ack
// there of a task given back to a queue (not yet claimed by anyone) would forget the task
// unrun, and its result would not be written either: an acknowledged task lost.
func TestDurableLostLeaseKeepsGivenBack(t *testing.T) {
	addr := testutil.StartRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cut := &splitCutStore{Store: dialLeased(ctx, t, addr, time.Second)}
	a := startBroker(t, Config{Store: cut, StoreOwner: "a", Logger: discardLogger()})
	ca := dealer(t, a)
	id1 := submitID(t, ca, "work", `[1]`, "")
	id2 := submitID(t, ca, "work", `[2]`, "")
	n := newNode(t, a, "n1", "work")
	n.credit(2)
	ts := n.collect(2)
	cut.renew.Store(true)
	cut.writes.Store(true)
	n.result(ts[0].ID, "1") // its write fails: the finisher retries it
	// The lease runs out on Redis's clock; another broker's claim (of another queue) gives
	// a's tasks back to the queue "work", where they wait.
	other := dialLeased(ctx, t, addr, time.Hour)
	orun, _, err := other.Register(ctx, "b", false)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() bool {
		if _, err := other.Claim(ctx, "elsewhere", orun, "", 1, nil); err != nil {
			t.Fatal(err)
		}
		w, _, err := other.Locate(ctx, id2)
		return err == nil && w == store.WhereQueued
	}, "a's tasks given back after its lease")
	n.result(ts[1].ID, "2") // waits behind the first result's write
	a.mu.Lock()
	run := a.c.dur.owner()
	a.mu.Unlock()
	cut.renew.Store(false) // the renewal is refused as fenced: a starts a new run
	testutil.Eventually(t, 10*time.Second, func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.c.dur.owner() != run
	}, "a learns it lost its lease")
	cut.writes.Store(false)
	// A task of the new run, finished, is a barrier: the finisher writes in order, so once
	// its result and ack are in, whatever a had waiting before is written too.
	after := submitID(t, ca, "work", `["after"]`, "")
	n.credit(1)
	at := n.collect(1)
	if string(at[0].Params) != `["after"]` {
		t.Fatalf("ran %s", at[0].Params)
	}
	n.result(at[0].ID, "3")
	testutil.Eventually(t, 10*time.Second, func() bool {
		_, found := getResult(t, other, after)
		w, _, err := other.Locate(ctx, after)
		return found && err == nil && w == store.WhereNone
	}, "the new run's task written and acked")
	for _, id := range []string{id1, id2} {
		if w, _, err := other.Locate(ctx, id); err != nil || w != store.WhereQueued {
			_, found := getResult(t, other, id)
			t.Errorf("%s is %v (%v), result stored %v, after a lost its lease; want queued (given back, to run again)", id, w, err, found)
		}
	}
}
