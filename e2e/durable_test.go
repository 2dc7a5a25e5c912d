package e2e

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
// until each is there or the deadline passes; it returns the results found by tag.
func resultsOf(t testing.TB, st store.Store, ids map[int]string, timeout time.Duration) map[int]store.Result {
	t.Helper()
	got := make(map[int]store.Result, len(ids))
	var mu sync.Mutex
	deadline := time.Now().Add(timeout)
	for {
		var missing []int
		for tag := range ids {
			if _, ok := got[tag]; !ok {
				missing = append(missing, tag)
			}
		}
		if len(missing) == 0 {
			return got
		}
		if time.Now().After(deadline) {
			return got
		}
		var wg sync.WaitGroup
		sem := make(chan struct{}, 64)
		for _, tag := range missing {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				var r store.Result
				if ok, err := st.Get(ctx, ids[tag], &r); err == nil && ok {
					mu.Lock()
					got[tag] = r
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(got) < len(ids) {
			time.Sleep(100 * time.Millisecond) // pace of the re-reads while tasks still run, not synchronization
		}
	}
}

// TestDrillDurableBrokerKill is the durable-mode acceptance drill: a `zerotask broker --store
// redis://...` process and two node processes; a client submits 100,000 tasks; the broker is
// killed with SIGKILL when half of them are acknowledged and restarted under the same owner id
// on the same port. Every acknowledged task reaches SUCCESS in Redis, and ran once, or twice
// for the tasks a node held (or had just finished) at the crash; that count is reported.
func TestDrillDurableBrokerKill(t *testing.T) {
	if testing.Short() {
		t.Skip("process drill: skipped with -short")
	}
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
				h, err := c.Submit(ctx, "sleep", sleepParams(i, 1+i%2))
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
		claimedOf(t, c), cs.Accepted)
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

// claimedOf returns the broker's "claimed" counter (tasks taken from the store).
func claimedOf(t testing.TB, c *client.Client) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var s struct {
		Claimed uint64 `json:"claimed"`
	}
	if err := c.Call(ctx, "broker.stats", &s); err != nil {
		t.Fatalf("broker.stats: %v", err)
	}
	return s.Claimed
}

// brokerID returns the id (epoch) a broker's stats announce: the prefix of its task ids.
func brokerID(t testing.TB, c *client.Client) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var s struct {
		Broker string `json:"broker"`
	}
	if err := c.Call(ctx, "broker.stats", &s); err != nil {
		t.Fatalf("broker.stats: %v", err)
	}
	return s.Broker
}
