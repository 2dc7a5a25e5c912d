package store_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/store"
)

// Store benchmarks on Redis (a real redis-server on loopback), by batch size. One op
// is one call (a batch); items/s counts results or tasks.
//
//	go test -run '^$' -bench Redis -benchtime 2s ./store/

var benchSizes = []int{1, 64}

func benchData(n int) ([]store.Result, []store.Task, []string) {
	rs := make([]store.Result, n)
	ts := make([]store.Task, n)
	ids := make([]string, n)
	for i := range rs {
		ids[i] = "5f0c2a91-" + strconv.Itoa(1000000+i)
		rs[i] = store.Result{ID: ids[i], State: store.StateSuccess, Result: []byte(`{"sum":11}`), Node: "node-1", Attempts: 1, FinishedAt: time.Now()}
		ts[i] = store.Task{ID: ids[i], Queue: "add", Method: "add", Params: []byte(`[5,6]`), Meta: []byte{1, 2, 3, 4}}
	}
	return rs, ts, ids
}

func itemsPerSec(b *testing.B, n int) {
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "items/s")
}

func benchStore(b *testing.B, s store.Store) {
	ctx := context.Background()
	for _, n := range benchSizes {
		rs, ts, ids := benchData(n)
		b.Run(fmt.Sprintf("Put/batch=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(n * len(rs[0].Result)))
			for i := 0; i < b.N; i++ {
				if err := s.Put(ctx, time.Minute, rs...); err != nil {
					b.Fatal(err)
				}
			}
			itemsPerSec(b, n)
		})
		b.Run(fmt.Sprintf("Get/batch=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			var dst store.Result
			for i := 0; i < b.N; i++ {
				for _, id := range ids {
					if ok, err := s.Get(ctx, id, &dst); !ok || err != nil {
						b.Fatal(ok, err)
					}
				}
			}
			itemsPerSec(b, n)
		})
		// A durable broker's path per task: Hold on accept, Ack on finish.
		b.Run(fmt.Sprintf("HoldAck/batch=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if err := s.Hold(ctx, "broker-1", ts...); err != nil {
					b.Fatal(err)
				}
				if err := s.Ack(ctx, "broker-1", ids...); err != nil {
					b.Fatal(err)
				}
			}
			itemsPerSec(b, n)
		})
	}
	// Many callers at once, one task each held and acked: concurrent Holds and Acks share the
	// writer's batches.
	b.Run("HoldAck/parallel=16", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(8) // 8 x GOMAXPROCS callers
		_, ts, _ := benchData(1024)
		var next atomicCounter
		b.RunParallel(func(pb *testing.PB) {
			// A task of this caller's own, held and acked in turn (slices made once, so that
			// the variadic calls do not allocate).
			k := next.add() % len(ts)
			tk := ts[k : k+1]
			id := []string{tk[0].ID}
			for pb.Next() {
				if err := s.Hold(ctx, "broker-1", tk...); err != nil {
					b.Error(err)
					return
				}
				if err := s.Ack(ctx, "broker-1", id...); err != nil {
					b.Error(err)
					return
				}
			}
		})
		itemsPerSec(b, 1)
	})
	// Many callers at once, one result each: what the writer's batching is for.
	b.Run("Put/parallel=16", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(8) // 8 x GOMAXPROCS callers
		rs, _, _ := benchData(256)
		var next atomicCounter
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				r := rs[next.add()%len(rs)]
				if err := s.Put(ctx, time.Minute, r); err != nil {
					b.Error(err)
					return
				}
			}
		})
		itemsPerSec(b, 1)
	})
}

func BenchmarkRedis(b *testing.B) {
	addr := testutil.StartRedis(b)
	for _, delay := range []time.Duration{0, time.Millisecond} {
		b.Run("flush_delay="+delay.String(), func(b *testing.B) {
			r := openRedis(b, addr, store.Options{FlushDelay: delay})
			defer r.Close()
			benchStore(b, r)
		})
	}
}
