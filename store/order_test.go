package store

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"github.com/zerotask/zerotask/internal/testutil"
)

// TestRedisOrderAcrossConnections: the writer has up to two batches on the wire at once, and
// rueidis may send them on different connections (a keyless script goes to a random one of
// its pipelining connections when it has several), so nothing may depend on the order of two
// writes in flight together. Nothing does: a caller's writes are sequential (its next write is
// sent once the last was answered), and the broker's writes that must follow others (a result
// after its task's hold, an ack after its result) come from one caller or after an answer.
// With 8 connections and 16 callers each holding a task, putting its result (fenced: written
// only while the caller holds it) and acking it, every result is stored and every task gone,
// over several connections.
func TestRedisOrderAcrossConnections(t *testing.T) {
	addr := testutil.StartRedis(t)
	ctx := testutil.Context(t, 60*time.Second)
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, DisableCache: true, PipelineMultiplex: 3, ClientName: "order"})
	if err != nil {
		t.Fatal(err)
	}
	r := newRedis(c, Options{Prefix: "ord:"}.withDefaults())
	defer r.Close()
	run, _, err := r.Register(ctx, "o", false)
	if err != nil {
		t.Fatal(err)
	}
	const callers, each = 16, 40
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for g := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id := fmt.Sprintf("g%d-%d", g, i)
				if err := r.Hold(ctx, run, Task{ID: id, Queue: "q", Method: "m"}); err != nil {
					errs <- err
					return
				}
				if err := r.Put(ctx, time.Minute, Result{ID: id, State: StateSuccess, Result: []byte(`1`), Owner: run}); err != nil {
					errs <- err
					return
				}
				if err := r.Ack(ctx, run, id); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for g := range callers {
		for i := range each {
			id := fmt.Sprintf("g%d-%d", g, i)
			var res Result
			if found, err := r.Get(ctx, id, &res); err != nil || !found {
				t.Fatalf("result of %s: found %v, %v (written out of order?)", id, found, err)
			}
			if w, _, err := r.Locate(ctx, id); err != nil || w != WhereNone {
				t.Fatalf("%s is %v, %v after its ack", id, w, err)
			}
		}
	}
	list, err := c.Do(ctx, c.B().ClientList().Build()).ToString()
	if err != nil {
		t.Fatal(err)
	}
	n := strings.Count(list, "name=order ")
	if n < 2 {
		t.Fatalf("the writes went over %d connection(s); the test needs several", n)
	}
	t.Logf("%d writes by %d callers over %d connections, in order", 3*callers*each, callers, n)
}
