package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/store"
	"github.com/zerotask/zerotask/store/storetest"
)

var prefixSeq atomic.Int64

// openRedis opens a Redis store on addr under a prefix of its own (tests share one server).
func openRedis(t testing.TB, addr string, o store.Options) *store.Redis {
	t.Helper()
	if o.Prefix == "" {
		o.Prefix = fmt.Sprintf("zt%d:", prefixSeq.Add(1))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := store.DialRedis(ctx, "redis://"+addr+"/0", o)
	if err != nil {
		t.Fatalf("DialRedis: %v", err)
	}
	return r
}

// queueTasks puts ts in their queues, in order, as tasks get there: held by an owner of their
// own and given back (each with one attempt counted).
func queueTasks(t testing.TB, ctx context.Context, s store.Store, ts ...store.Task) {
	t.Helper()
	owner := fmt.Sprintf("queuer-%d", prefixSeq.Add(1))
	if err := s.Hold(ctx, owner, ts...); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Recover(ctx, owner); err != nil || n != len(ts) {
		t.Fatalf("Recover(%s) = %d, %v; want %d", owner, n, err, len(ts))
	}
}

func TestRedisConformance(t *testing.T) {
	addr := testutil.StartRedis(t)
	storetest.Run(t, func(t *testing.T, o store.Options) store.Store { return openRedis(t, addr, o) })
}

func TestRedisConformanceFlushDelay(t *testing.T) {
	testutil.SkipShort(t, "second conformance run")
	addr := testutil.StartRedis(t)
	storetest.Run(t, func(t *testing.T, o store.Options) store.Store {
		o.FlushDelay = time.Millisecond
		o.FlushMax = 7 // small batches: ops split across flushes
		return openRedis(t, addr, o)
	})
}

// TestRedisMaxmemoryPolicy: every policy but noeviction is refused, with the fix in the message.
func TestRedisMaxmemoryPolicy(t *testing.T) {
	srv := testutil.StartRedisServer(t, testutil.RedisOptions{})
	r := openRedis(t, srv.Addr, store.Options{})
	defer r.Close()
	ctx := testutil.Context(t, 30*time.Second)
	policies := []struct {
		policy string
		ok     bool
	}{
		{"noeviction", true},
		{"allkeys-lru", false},
		{"allkeys-lfu", false},
		{"allkeys-random", false},
		{"volatile-lru", false},
		{"volatile-lfu", false},
		{"volatile-random", false},
		{"volatile-ttl", false},
	}
	for _, tc := range policies {
		t.Run(tc.policy, func(t *testing.T) {
			c := r.Client()
			if err := c.Do(ctx, c.B().ConfigSet().ParameterValue().ParameterValue("maxmemory-policy", tc.policy).Build()).Error(); err != nil {
				t.Fatal(err)
			}
			err := r.CheckMaxmemoryPolicy(ctx)
			if tc.ok {
				if err != nil {
					t.Fatalf("CheckMaxmemoryPolicy with %s: %v", tc.policy, err)
				}
				return
			}
			if !errors.Is(err, store.ErrEvictionPolicy) {
				t.Fatalf("CheckMaxmemoryPolicy with %s = %v; want ErrEvictionPolicy", tc.policy, err)
			}
			for _, want := range []string{tc.policy, "CONFIG SET maxmemory-policy noeviction"} {
				if !strings.Contains(err.Error(), want) {
					t.Fatalf("message %q does not say %q", err, want)
				}
			}
			// Open refuses such a Redis too.
			if s, err := store.Open("redis://" + srv.Addr + "/0"); !errors.Is(err, store.ErrEvictionPolicy) {
				if s != nil {
					s.Close()
				}
				t.Fatalf("Open with %s = %v; want ErrEvictionPolicy", tc.policy, err)
			}
		})
	}
}

// TestRedisRefusedAtStart: a server started with allkeys-lru is refused by Open.
func TestRedisRefusedAtStart(t *testing.T) {
	srv := testutil.StartRedisServer(t, testutil.RedisOptions{Args: []string{"--maxmemory-policy", "allkeys-lru"}})
	s, err := store.Open("redis://" + srv.Addr)
	if !errors.Is(err, store.ErrEvictionPolicy) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("Open = %v; want ErrEvictionPolicy", err)
	}
	t.Logf("refused with: %v", err)
}

func TestRedisOpenURL(t *testing.T) {
	addr := testutil.StartRedis(t)
	ctx := testutil.Context(t, 30*time.Second)
	s, err := store.Open("redis://" + addr + "/3?prefix=urltest:&lease=1h")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	queueTasks(t, ctx, s, store.Task{ID: "a", Queue: "q"})
	c := s.(*store.Redis).Client()
	n, err := c.Do(ctx, c.B().Llen().Key("urltest:q:q").Build()).AsInt64()
	if err != nil || n != 1 {
		t.Fatalf("key urltest:q:q in db 3: %d, %v", n, err)
	}
	if _, err := s.Claim(ctx, "q", "o", "", 1, nil); err != nil {
		t.Fatal(err)
	}
	ms, err := c.Do(ctx, c.B().Zscore().Key("urltest:owners").Member("o").Build()).AsInt64()
	if now := time.Now().UnixMilli(); err != nil || ms < now+59*60*1000 {
		t.Fatalf("lease=1h not applied: lease ends at %d (now %d), %v", ms, now, err)
	}
	for _, bad := range []string{"redis://" + addr + "?max_queued=1", "memory://", "redis://" + addr + "?lease=soon"} {
		if s, err := store.Open(bad); !errors.Is(err, store.ErrURL) {
			if s != nil {
				s.Close()
			}
			t.Errorf("Open(%q) = %v; want ErrURL", bad, err)
		}
	}
	// Nothing reaches an unreachable Redis.
	if s, err := store.OpenOptions("redis://127.0.0.1:1", store.Options{DialTimeout: time.Second}); err == nil {
		s.Close()
		t.Fatal("Open of a closed port succeeded")
	}
}

// TestRedisSurvivesRestart: with appendonly, acknowledged tasks (queued, claimed and held)
// and results survive a kill -9 of redis-server; the same store reconnects by itself, and a new store (a restarted broker)
// finds everything.
func TestRedisSurvivesRestart(t *testing.T) {
	srv := testutil.StartRedisServer(t, testutil.RedisOptions{AppendOnly: true})
	r := openRedis(t, srv.Addr, store.Options{Prefix: "durable:"})
	defer r.Close()
	ctx := testutil.Context(t, 60*time.Second)
	const n = 500
	ts := make([]store.Task, n)
	for i := range ts {
		ts[i] = store.Task{ID: fmt.Sprint("t", i), Queue: "q", Method: "add", Params: []byte(`[1,2]`)}
	}
	queueTasks(t, ctx, r, ts...)
	if err := r.Put(ctx, time.Hour, store.Result{ID: "done-1", State: store.StateSuccess, Result: []byte(`3`)}); err != nil {
		t.Fatal(err)
	}
	claimed, err := r.Claim(ctx, "q", "broker-1", "", 10, nil)
	if err != nil || len(claimed) != 10 {
		t.Fatalf("Claim: %d, %v", len(claimed), err)
	}
	// A durable broker's accepted tasks: held by it at once, never queued.
	const nh = 5
	held := make([]store.Task, nh)
	for i := range held {
		held[i] = store.Task{ID: fmt.Sprint("h", i), Queue: "q", Method: "add", Params: []byte(`[1,2]`)}
	}
	if err := r.Hold(ctx, "broker-1", held...); err != nil {
		t.Fatal(err)
	}

	srv.Kill()
	srv.Restart()

	// The same store reconnects (its first calls may fail while it does).
	var queued int64
	var lenErr error
	c := r.Client()
	if !testutil.Poll(20*time.Second, func() bool {
		queued, lenErr = c.Do(ctx, c.B().Llen().Key("durable:q:q").Build()).AsInt64()
		return lenErr == nil && queued == n-10
	}) {
		t.Fatalf("queued tasks 20 s after the restart: %d, %v; want %d", queued, lenErr, n-10)
	}
	r2 := openRedis(t, srv.Addr, store.Options{Prefix: "durable:"})
	defer r2.Close()
	var dst store.Result
	if ok, err := r2.Get(ctx, "done-1", &dst); err != nil || !ok || string(dst.Result) != "3" {
		t.Fatalf("result after restart: %v, %v, %q", ok, err, dst.Result)
	}
	if where, owner, err := r2.Locate(ctx, "h0"); err != nil || where != store.WhereHeld || owner != "broker-1" {
		t.Fatalf("Locate(h0) after restart = %v, %q, %v; want held by broker-1", where, owner, err)
	}
	// The broker that held 10 claimed and 5 held tasks is gone: recovering its owner id gives
	// them back first, in claim/hold order.
	if got, err := r2.Recover(ctx, "broker-1"); err != nil || got != 10+nh {
		t.Fatalf("Recover = %d, %v; want %d", got, err, 10+nh)
	}
	all, err := r2.Claim(ctx, "q", "broker-2", "", n+nh+1, nil)
	if err != nil || len(all) != n+nh {
		t.Fatalf("Claim after restart: %d tasks, %v; want %d", len(all), err, n+nh)
	}
	var want []string
	for i := 0; i < 10; i++ {
		want = append(want, fmt.Sprint("t", i))
	}
	for i := 0; i < nh; i++ {
		want = append(want, fmt.Sprint("h", i))
	}
	for i := 10; i < n; i++ {
		want = append(want, fmt.Sprint("t", i))
	}
	for i := range all {
		if all[i].ID != want[i] || string(all[i].Params) != `[1,2]` {
			t.Fatalf("task %d after restart: %+v, want id %s", i, all[i], want[i])
		}
		if wantAtt := map[bool]int{true: 2, false: 1}[i < 10]; all[i].Attempts != wantAtt {
			t.Fatalf("task %s attempts %d, want %d", all[i].ID, all[i].Attempts, wantAtt)
		}
	}
}

// TestRedisWaitAcrossStores: a Wait on one store (broker) is woken by a Put on another sharing
// the Redis, through pub/sub, also after the Redis restarts under the waiting store.
func TestRedisWaitAcrossStores(t *testing.T) {
	srv := testutil.StartRedisServer(t, testutil.RedisOptions{})
	a := openRedis(t, srv.Addr, store.Options{Prefix: "shared:"})
	defer a.Close()
	b := openRedis(t, srv.Addr, store.Options{Prefix: "shared:"})
	defer b.Close()
	ctx := testutil.Context(t, 60*time.Second)

	wait := func(id string) chan error {
		got := make(chan error, 1)
		go func() {
			var dst store.Result
			err := a.Wait(ctx, id, &dst)
			if err == nil && string(dst.Result) != `"`+id+`"` {
				err = fmt.Errorf("read %q", dst.Result)
			}
			got <- err
		}()
		return got
	}
	check := func(got chan error) {
		t.Helper()
		select {
		case err := <-got:
			if err != nil {
				t.Fatalf("Wait: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("Wait not woken by the other store's Put within 20s (waits subscribed: %d)", a.Waiting())
		}
	}
	got := wait("x1")
	testutil.Eventually(t, 10*time.Second, func() bool { return a.Waiting() == 1 }, "wait subscribed")
	if err := b.Put(ctx, time.Minute, store.Result{ID: "x1", State: store.StateSuccess, Result: []byte(`"x1"`)}); err != nil {
		t.Fatal(err)
	}
	check(got)

	// A Wait blocked while Redis restarts: resubscribed on the new connection.
	got = wait("x2")
	testutil.Eventually(t, 10*time.Second, func() bool { return a.Waiting() == 1 }, "wait subscribed")
	srv.Kill()
	srv.Restart()
	testutil.Eventually(t, 20*time.Second, func() bool {
		return b.Put(ctx, time.Minute, store.Result{ID: "x2", State: store.StateSuccess, Result: []byte(`"x2"`)}) == nil
	}, "Put after the restart")
	check(got)
}

// TestRedisSeveralOwners: two stores (brokers) sharing one Redis claim disjoint tasks, and
// the tasks of the one that stops renewing come back to the other.
func TestRedisSeveralOwners(t *testing.T) {
	addr := testutil.StartRedis(t)
	// Long enough that neither owner's lease runs out between its own claims on a loaded
	// machine (a claim that finds its own run's lease out gives its tasks back and fences it),
	// short enough that A's tasks come back soon after it stops.
	o := store.Options{Prefix: "multi:", Lease: 2 * time.Second}
	a := openRedis(t, addr, o)
	defer a.Close()
	b := openRedis(t, addr, o)
	defer b.Close()
	ctx := testutil.Context(t, 60*time.Second)
	ts := make([]store.Task, 200)
	for i := range ts {
		ts[i] = store.Task{ID: fmt.Sprint(i), Queue: "q", Method: "m"}
	}
	queueTasks(t, ctx, a, ts...)
	seen := map[string]string{}
	for len(seen) < 150 {
		for _, s := range []struct {
			st    *store.Redis
			owner string
		}{{a, "A"}, {b, "B"}} {
			got, err := s.st.Claim(ctx, "q", s.owner, "", 5, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, tk := range got {
				if prev, dup := seen[tk.ID]; dup {
					t.Fatalf("task %s claimed by %s and %s", tk.ID, prev, s.owner)
				}
				seen[tk.ID] = s.owner
			}
		}
	}
	// A stops renewing (a dead broker); B keeps claiming and gets A's 75 tasks back.
	back := 0
	testutil.Eventually(t, 20*time.Second, func() bool {
		got, err := b.Claim(ctx, "q", "B", "", 100, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, tk := range got {
			if seen[tk.ID] == "A" {
				back++
				if tk.Attempts != 2 {
					t.Fatalf("task %s attempts %d, want 2", tk.ID, tk.Attempts)
				}
			}
		}
		return back == 75
	}, "A's tasks back: %d of 75", back)
}

// TestRedisNoScript: after SCRIPT FLUSH (as after a Redis restart), scripts run again.
func TestRedisNoScript(t *testing.T) {
	addr := testutil.StartRedis(t)
	r := openRedis(t, addr, store.Options{})
	defer r.Close()
	ctx := testutil.Context(t, 30*time.Second)
	c := r.Client()
	for i := 0; i < 2; i++ {
		if err := c.Do(ctx, c.B().ScriptFlush().Build()).Error(); err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprint("t", i)
		queueTasks(t, ctx, r, store.Task{ID: id, Queue: "q", Method: "m"})
		if err := r.Put(ctx, time.Minute, store.Result{ID: id, State: store.StateSuccess}); err != nil {
			t.Fatal(err)
		}
		if err := c.Do(ctx, c.B().ScriptFlush().Build()).Error(); err != nil {
			t.Fatal(err)
		}
		got, err := r.Claim(ctx, "q", "o", "", 1, nil)
		if err != nil || len(got) != 1 || got[0].ID != id {
			t.Fatalf("Claim after SCRIPT FLUSH: %v, %v", got, err)
		}
		if err := c.Do(ctx, c.B().ScriptFlush().Build()).Error(); err != nil {
			t.Fatal(err)
		}
		if err := r.Hold(ctx, "o", store.Task{ID: "h" + id, Queue: "q", Method: "m"}); err != nil {
			t.Fatalf("Hold after SCRIPT FLUSH: %v", err)
		}
		if err := c.Do(ctx, c.B().ScriptFlush().Build()).Error(); err != nil {
			t.Fatal(err)
		}
		if err := r.Ack(ctx, "o", id, "h"+id); err != nil {
			t.Fatal(err)
		}
		for _, x := range []string{id, "h" + id} {
			if where, _, err := r.Locate(ctx, x); err != nil || where != store.WhereNone {
				t.Fatalf("Locate(%s) after Ack = %v, %v; want none", x, where, err)
			}
		}
	}
}

type atomicCounter struct{ n atomic.Int64 }

func (c *atomicCounter) add() int { return int(c.n.Add(1)) }

// TestRedisBadRecords: a damaged task record, or a task key of the wrong type, is moved aside
// (bad:<id>, counted) and blocks nothing: the rest of a claim batch is claimed, acks and holds
// of other tasks in the same batch go through.
func TestRedisBadRecords(t *testing.T) {
	addr := testutil.StartRedis(t)
	r := openRedis(t, addr, store.Options{Prefix: "bad:"})
	defer r.Close()
	ctx := testutil.Context(t, 30*time.Second)
	c := r.Client()
	var ts []store.Task
	for i := 0; i < 5; i++ {
		ts = append(ts, store.Task{ID: fmt.Sprint("t", i), Queue: "q", Method: "m", Params: []byte(`[1]`)})
	}
	queueTasks(t, ctx, r, ts...)
	// t1: a record of an unknown version; t3: not even a hash.
	if err := c.Do(ctx, c.B().Hset().Key("bad:t:t1").FieldValue().FieldValue("d", "\x7fgarbage").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, c.B().Del().Key("bad:t:t3").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, c.B().Set().Key("bad:t:t3").Value("a string").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	got, err := r.Claim(ctx, "q", "B", "", 10, nil)
	if err != nil {
		t.Fatalf("Claim over bad records: %v", err)
	}
	if fmt.Sprint(ids(got)) != "[t0 t2 t4]" || r.Quarantined() != 1 {
		t.Fatalf("claimed %v, quarantined %d; want [t0 t2 t4] and 1", ids(got), r.Quarantined())
	}
	for _, k := range []string{"bad:bad:t1", "bad:bad:t3"} {
		if n, _ := c.Do(ctx, c.B().Exists().Key(k).Build()).AsInt64(); n != 1 {
			t.Errorf("%s not set aside", k)
		}
	}
	// A wrong-type key among acks and holds: the others go through.
	if err := c.Do(ctx, c.B().Set().Key("bad:t:w").Value("x").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if err := r.Ack(ctx, "B", "w", "t0"); err != nil {
		t.Fatalf("Ack with a wrong-type key: %v", err)
	}
	if err := c.Do(ctx, c.B().Set().Key("bad:t:w2").Value("x").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if err := r.Hold(ctx, "B", store.Task{ID: "w2", Queue: "q", Method: "m"}, store.Task{ID: "h", Queue: "q", Method: "m"}); err != nil {
		t.Fatalf("Hold over a wrong-type key: %v", err)
	}
	// An idempotency key of the wrong type, in a hold batch and in a result batch: set aside
	// and read as unbound; the other tasks and results of the batch go through.
	if err := c.Do(ctx, c.B().Hset().Key("bad:key:k1").FieldValue().FieldValue("x", "y").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if err := r.Hold(ctx, "B", store.Task{ID: "k", Queue: "q", Method: "m", Key: "k1", KeyTTL: time.Minute}, store.Task{ID: "h2", Queue: "q", Method: "m"}); err != nil {
		t.Fatalf("Hold over a wrong-type idempotency key: %v", err)
	}
	if err := c.Do(ctx, c.B().Del().Key("bad:key:k1").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, c.B().Lpush().Key("bad:key:k1").Element("x").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if err := r.Put(ctx, time.Minute, store.Result{ID: "k", State: store.StateSuccess, Result: []byte("1"), Key: "k1"},
		store.Result{ID: "h", State: store.StateSuccess, Result: []byte("2")}); err != nil {
		t.Fatalf("Put over a wrong-type idempotency key: %v", err)
	}
	for id, want := range map[string]store.Where{"t0": store.WhereNone, "w2": store.WhereHeld, "h": store.WhereHeld, "t2": store.WhereHeld, "k": store.WhereHeld, "h2": store.WhereHeld} {
		if w, _, err := r.Locate(ctx, id); err != nil || w != want {
			t.Errorf("Locate(%s) = %v, %v; want %v", id, w, err, want)
		}
	}
	for _, id := range []string{"k", "h"} {
		var res store.Result
		if found, err := r.Get(ctx, id, &res); err != nil || !found {
			t.Errorf("result of %s: found %v, %v", id, found, err)
		}
	}
	if bound, err := c.Do(ctx, c.B().Get().Key("bad:key:k1").Build()).ToString(); err != nil || bound != "k" {
		t.Errorf("idempotency key k1 after its wrong-type value was set aside: %q, %v; want bound to k", bound, err)
	}
	if n, _ := c.Do(ctx, c.B().Exists().Key("bad:bad:key:k1").Build()).AsInt64(); n != 1 {
		t.Errorf("the wrong-type idempotency key was not set aside")
	}
}

func ids(ts []store.Task) []string {
	out := make([]string, len(ts))
	for i := range ts {
		out[i] = ts[i].ID
	}
	return out
}

// TestRedisBadStructureKeys: a structure key of the wrong type (a queue, an owner's set or
// held hash, the holders, the owners, the fenced runs, the epochs) is set aside (<p>bad:<name>, its name in <p>bad) by the
// script that meets it, and the writes go on: holds, acks, requeues, claims, renewals and a
// registration all succeed over them.
func TestRedisBadStructureKeys(t *testing.T) {
	addr := testutil.StartRedis(t)
	r := openRedis(t, addr, store.Options{Prefix: "bs:"})
	defer r.Close()
	ctx := testutil.Context(t, 30*time.Second)
	c := r.Client()
	set := func(key string) {
		t.Helper()
		if err := c.Do(ctx, c.B().Set().Key(key).Value("not mine").Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"bs:owners", "bs:own:B", "bs:held:B", "bs:holders", "bs:fenced", "bs:epoch"} {
		set(k)
	}
	if err := c.Do(ctx, c.B().Hset().Key("bs:q:q").FieldValue().FieldValue("x", "y").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	task := func(id string) store.Task { return store.Task{ID: id, Queue: "q", Method: "m", Params: []byte(`[1]`)} }
	if err := r.Hold(ctx, "B", task("h1"), task("h2")); err != nil {
		t.Fatalf("Hold over wrong-type owners, own:B, held:B, holders and fenced: %v", err)
	}
	if err := r.Ack(ctx, "B", "h1"); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	if err := r.Requeue(ctx, "B", "h2"); err != nil {
		t.Fatalf("Requeue into a wrong-type queue: %v", err)
	}
	got, err := r.Claim(ctx, "q", "C", "", 10, nil)
	if err != nil || fmt.Sprint(ids(got)) != "[h2]" {
		t.Fatalf("Claim = %v, %v; want [h2]", ids(got), err)
	}
	set("bs:owners")
	if err := r.Renew(ctx, "C"); err != nil {
		t.Fatalf("Renew over a wrong-type owners: %v", err)
	}
	set("bs:epoch")
	if _, _, err := r.Register(ctx, "D", false); err != nil {
		t.Fatalf("Register over a wrong-type epoch: %v", err)
	}
	set("bs:own:C")
	if err := r.Ack(ctx, "C", "h2"); err != nil {
		t.Fatalf("Ack over a wrong-type own:C: %v", err)
	}
	for id, want := range map[string]store.Where{"h1": store.WhereNone, "h2": store.WhereNone} {
		if w, _, err := r.Locate(ctx, id); err != nil || w != want {
			t.Errorf("Locate(%s) = %v, %v; want %v", id, w, err, want)
		}
	}
	for _, k := range []string{"bs:bad:owners", "bs:bad:own:B", "bs:bad:held:B", "bs:bad:holders", "bs:bad:own:C", "bs:bad:fenced", "bs:bad:epoch", "bs:bad:q:q"} {
		if n, _ := c.Do(ctx, c.B().Exists().Key(k).Build()).AsInt64(); n != 1 {
			t.Errorf("%s not set aside", k)
		}
	}
	if n, _ := c.Do(ctx, c.B().Sismember().Key("bs:bad").Member("q:q").Build()).AsInt64(); n != 1 {
		t.Errorf("q:q not listed in bs:bad")
	}
}
