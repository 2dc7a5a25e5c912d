package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerotask/zerotask/broker"
	"github.com/zerotask/zerotask/client"
	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/store"
)

// The durable-mode drills: brokers on a real redis-server (Debian's package, started here on a
// free loopback port), killed with SIGKILL mid-load, and two brokers sharing one Redis.

// startRedisStore starts a redis-server (append-only file on) and returns its store URL and a
// store connected to it for the test's own reads.
func startRedisStore(t testing.TB) (string, store.Store) {
	t.Helper()
	srv := testutil.StartRedisServer(t, testutil.RedisOptions{AppendOnly: true})
	url := "redis://" + srv.Addr + "/0"
	st, err := store.DialRedis(testutil.Context(t, 10*time.Second), url, store.Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("connect to redis: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return url, st
}

// sleepParams is the drill's task: sleep ms milliseconds, tagged so that the nodes' logs tell
// which task started.
func sleepParams(tag, ms int) any {
	return client.Named(map[string]int{"ms": ms, "tag": tag})
}

// resultsOf reads from the store the results of the ids (tag -> id), 64 goroutines at a time,
// polling (testutil.Poll) until each is there or timeout passes; it returns the results found
// by tag.
func resultsOf(t testing.TB, st store.Store, ids map[int]string, timeout time.Duration) map[int]store.Result {
	t.Helper()
	got := make(map[int]store.Result, len(ids))
	var mu sync.Mutex
	testutil.Poll(timeout, func() bool {
		var missing []int // listed before any reader runs: got is written by them
		for tag := range ids {
			if _, ok := got[tag]; !ok {
				missing = append(missing, tag)
			}
		}
		var wg sync.WaitGroup
		sem := make(chan struct{}, 64)
		for _, tag := range missing {
			id := ids[tag]
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				var r store.Result
				if ok, err := st.Get(ctx, id, &r); err == nil && ok {
					mu.Lock()
					got[tag] = r
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		return len(got) == len(ids)
	})
	return got
}

// TestDrillDurableBrokerKill is the durable-mode acceptance drill: a `zerotask broker --store
// redis://...` process and two node processes; a client submits 100,000 tasks; the broker is
// killed with SIGKILL when half of them are acknowledged and restarted under the same owner id
// on the same port. Every acknowledged task reaches SUCCESS in Redis, and ran once, or twice
// for the tasks a node held (or had just finished) at the crash; that count is reported.
func TestDrillDurableBrokerKill(t *testing.T) {
	testutil.SkipShort(t, "process drill")
	const (
		tasks       = 100_000
		senders     = 64
		nodes       = 2
		concurrency = 16
		prefetch    = 64
	)
	url, st := startRedisStore(t)
	dir := t.TempDir()
	router := testutil.FreeEndpoint(t)
	brokerArgs := []string{"broker", "--listen", router, "--pub", "none", "--log-level", "warn",
		"--heartbeat", "500ms", "--store", url, "--owner", "drill-broker"}
	b1, _ := startDaemon(t, brokerLine, brokerArgs...)
	for i := range nodes {
		startDrillNode(t, dir, router, "none", fmt.Sprintf("n%d", i), "--heartbeat", "500ms",
			"--concurrency", fmt.Sprint(concurrency), "--prefetch", fmt.Sprint(prefetch))
	}
	c := dial(t, router)
	testutil.Eventually(t, 10*time.Second, func() bool { return len(nodesOf(t, c)) == nodes }, "%d nodes connected", nodes)

	ids := make([]string, tasks) // the acknowledged submits' ids, by tag
	var acked, refused atomic.Int64
	var killAt time.Time
	restarted := make(chan *daemon, 1)
	go func() {
		testutil.Poll(2*time.Minute, func() bool { return acked.Load() >= tasks/2 })
		killAt = time.Now()
		kill9(t, b1)
		d, _ := startDaemon(t, brokerLine, brokerArgs...)
		restarted <- d
	}()
	start := time.Now()
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := s; i < tasks; i += senders {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				h, err := c.Submit(ctx, "sleep", []any{sleepParams(i, 1+i%2)})
				cancel()
				if err != nil {
					refused.Add(1) // lost with the broker's connection: not acknowledged
					continue
				}
				ids[i] = h.ID()
				acked.Add(1)
			}
		}()
	}
	wg.Wait()
	b2 := <-restarted
	submitted := time.Since(start)

	want := make(map[int]string, tasks)
	for tag, id := range ids {
		if id != "" {
			want[tag] = id
		}
	}
	got := resultsOf(t, st, want, 3*time.Minute)
	elapsed := time.Since(start)
	notSuccess := 0
	for tag, id := range want {
		r, ok := got[tag]
		if !ok || r.State != store.StateSuccess {
			if notSuccess < 5 {
				t.Errorf("acknowledged task %d (%s): result %+v found %v, want SUCCESS", tag, id, r, ok)
			}
			notSuccess++
		}
	}
	if notSuccess > 0 {
		t.Fatalf("%d of %d acknowledged tasks did not reach SUCCESS\nbroker stderr:\n%s", notSuccess, len(want), b2.Stderr())
	}

	ran := starts(t, dir)
	once, twice, more, lateFirst := 0, 0, 0, 0
	for tag := range want {
		switch n := len(ran[tag]); {
		case n == 0:
			t.Errorf("task %d is SUCCESS in Redis but no node logged its start", tag)
		case n == 1:
			once++
		case n == 2:
			twice++
			if ran[tag][0].at.After(killAt.Add(5 * time.Second)) {
				lateFirst++ // first run well after the crash: not a task a node had then
			}
		default:
			more++
		}
	}
	cs := statsOf(t, c)
	t.Logf("%d tasks: %d acknowledged (submits took %v, all results in Redis after %v), %d not acknowledged (in flight at the kill); "+
		"ran once %d, twice %d (on a node, or just finished, at the crash); the restarted broker took %d back from Redis and accepted %d",
		tasks, len(want), submitted.Round(time.Millisecond), elapsed.Round(time.Millisecond), refused.Load(), once, twice,
		cs.Claimed, cs.Accepted)
	if more > 0 {
		t.Errorf("%d acknowledged tasks ran more than twice", more)
	}
	if lateFirst > 0 {
		t.Errorf("%d tasks ran twice with their first run long after the crash", lateFirst)
	}
	// What can run twice is what the nodes held (running and prefetched) plus the results the
	// broker had taken in but not yet written: bounded by the nodes' capacity and the
	// broker's write batches.
	if bound := nodes*(concurrency+prefetch) + 2*1024; twice > bound {
		t.Errorf("%d tasks ran twice, more than the bound %d", twice, bound)
	}
	if acked.Load() < tasks/2 {
		t.Errorf("only %d submits acknowledged", acked.Load())
	}
}

// TestDrillTwoBrokers: two `zerotask broker --store redis://...` processes share one Redis;
// two node processes are connected to both (one connection per broker), and one client is
// connected to both (its DEALER sends round robin). 10,000 submits spread over the brokers;
// each result is read through the broker that did not take the task; every task ran exactly
// once.
func TestDrillTwoBrokers(t *testing.T) {
	testutil.SkipShort(t, "process drill")
	const tasks = 10_000
	url, st := startRedisStore(t)
	dir := t.TempDir()
	var routers []string
	for _, owner := range []string{"b1", "b2"} {
		_, m := startDaemon(t, brokerLine, "broker", "--listen", "tcp://127.0.0.1:0", "--pub", "none",
			"--log-level", "warn", "--store", url, "--owner", owner)
		routers = append(routers, m[1])
	}
	both := strings.Join(routers, ",")
	for i := range 2 {
		startDrillNode(t, dir, both, "none", fmt.Sprintf("n%d", i), "--concurrency", "8", "--prefetch", "32")
	}
	c1, c2 := dial(t, routers[0]), dial(t, routers[1])
	for _, c := range []*client.Client{c1, c2} {
		testutil.Eventually(t, 10*time.Second, func() bool { return len(nodesOf(t, c)) == 2 }, "2 nodes on each broker")
	}
	id1 := statsOf(t, c1).Broker
	c := dial(t, both)

	ids := submitTagged(t, c, 0, tasks)
	s1, s2 := statsOf(t, c1), statsOf(t, c2)
	if s1.Submitted == 0 || s2.Submitted == 0 || s1.Submitted+s2.Submitted != tasks {
		t.Fatalf("submits per broker %d and %d, want both > 0 and %d in all", s1.Submitted, s2.Submitted, tasks)
	}

	// Every result through the other broker (waiting there for the tasks still running).
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		bad      []string
		readVia  [2]int
		sem      = make(chan struct{}, 128)
		deadline = time.Now().Add(2 * time.Minute)
	)
	for i, id := range ids {
		other, k := c1, 0
		if strings.HasPrefix(id, id1+"-") {
			other, k = c2, 1
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			defer cancel()
			var ti client.TaskInfo
			var err error
			for ctx.Err() == nil {
				if ti, err = other.Wait(ctx, id, 5*time.Second); err != nil || ti.State.Done() {
					break
				}
			}
			mu.Lock()
			defer mu.Unlock()
			readVia[k]++
			if err != nil || ti.State != client.StateSuccess {
				bad = append(bad, fmt.Sprintf("task %d (%s): %s %v", i, id, ti.State, err))
			}
		}()
	}
	wg.Wait()
	if len(bad) > 0 {
		t.Fatalf("%d results not SUCCESS through the other broker, e.g. %v", len(bad), bad[:min(5, len(bad))])
	}
	want := make(map[int]string, tasks)
	for tag, id := range ids {
		want[tag] = id
	}
	if got := resultsOf(t, st, want, 10*time.Second); len(got) != tasks {
		t.Fatalf("%d of %d results in Redis", len(got), tasks)
	}
	ran := starts(t, dir)
	notOnce := 0
	for tag := range tasks {
		if len(ran[tag]) != 1 {
			notOnce++
		}
	}
	if notOnce > 0 {
		t.Errorf("%d tasks did not run exactly once", notOnce)
	}
	// An idempotency key names one task through either broker.
	kctx, kcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer kcancel()
	h1, err := c1.Submit(kctx, "sleep", []any{sleepParams(tasks, 1)}, client.Key("drill-key"))
	if err != nil {
		t.Fatal(err)
	}
	h2, err := c2.Submit(kctx, "sleep", []any{sleepParams(tasks+1, 1)}, client.Key("drill-key"))
	if err != nil {
		t.Fatal(err)
	}
	if h1.ID() != h2.ID() {
		t.Fatalf("one key gave two tasks through the two brokers: %s and %s", h1.ID(), h2.ID())
	}
	if ti, err := c2.Wait(kctx, h1.ID(), 5*time.Second); err != nil || ti.State != client.StateSuccess {
		t.Fatalf("the keyed task through the other broker: %+v %v", ti, err)
	}
	if n := len(starts(t, dir)[tasks+1]); n != 0 {
		t.Fatalf("the duplicate submit ran %d times", n)
	}
	t.Logf("%d tasks over two brokers (%d and %d submits), each read through the other broker (%d via the second, %d via the first), all SUCCESS, each ran once; one key gave one task through both",
		tasks, s1.Submitted, s2.Submitted, readVia[1], readVia[0])
}

// TestBrokerRefusesEvictingRedis: a Redis whose maxmemory-policy may evict keys is refused at
// start, by `zerotask broker --store` (the store's check) and by broker.New (the broker's own
// check, for a store opened while the policy was still safe), with a message saying how to fix
// it.
func TestBrokerRefusesEvictingRedis(t *testing.T) {
	url, st := startRedisStore(t)
	rc := st.(*store.Redis).Client()
	setPolicy := func(p string) {
		t.Helper()
		if err := rc.Do(context.Background(), rc.B().ConfigSet().ParameterValue().ParameterValue("maxmemory-policy", p).Build()).Error(); err != nil {
			t.Fatalf("CONFIG SET maxmemory-policy %s: %v", p, err)
		}
	}
	for _, policy := range []string{"allkeys-lru", "volatile-ttl"} {
		t.Run(policy, func(t *testing.T) {
			setPolicy(policy)
			defer setPolicy("noeviction")
			code, _, stderr := zerotask(t, 30*time.Second, "broker", "--listen", "tcp://127.0.0.1:0", "--pub", "none", "--store", url)
			if code == 0 || !strings.Contains(stderr, "maxmemory-policy noeviction") || !strings.Contains(stderr, policy) {
				t.Fatalf("zerotask broker exited %d with stderr %q, want a failure naming %s and the fix", code, stderr, policy)
			}
			_, err := broker.New(broker.Config{Listen: "tcp://127.0.0.1:0", Pub: broker.PubDisabled, Store: st, Logger: testLogger(t)})
			if !errors.Is(err, store.ErrEvictionPolicy) {
				t.Fatalf("broker.New on %s: %v, want ErrEvictionPolicy", policy, err)
			}
		})
	}
}

// TestBrokerOwnerInUse: `zerotask broker --owner x` refuses to start while another broker
// process serves owner x on the same Redis (a configuration mistake that would keep both
// leases alive), naming the fix; once that broker is killed with kill -9, a broker under x
// starts (after the 2.5 s probe that shows the lease is no longer renewed) and takes it over.
func TestBrokerOwnerInUse(t *testing.T) {
	url, _ := startRedisStore(t)
	args := []string{"broker", "--listen", "tcp://127.0.0.1:0", "--pub", "tcp://127.0.0.1:0", "--log-level", "error", "--store", url, "--owner", "x"}
	first, _ := startDaemon(t, brokerLine, args...)
	code, _, stderr := zerotask(t, 30*time.Second, args...)
	if code == 0 || !strings.Contains(stderr, "is in use by a live broker") || !strings.Contains(stderr, "--takeover") {
		t.Fatalf("a second broker under a live owner id exited %d with stderr %q; want a failure naming the owner id in use and --takeover", code, stderr)
	}
	kill9(t, first)
	start := time.Now()
	startDaemon(t, brokerLine, args...)
	t.Logf("a broker under the killed broker's owner id served %v after its start", time.Since(start).Round(time.Millisecond))
}
