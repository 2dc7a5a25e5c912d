package e2e

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerotask/zerotask/broker"
	"github.com/zerotask/zerotask/client"
	"github.com/zerotask/zerotask/node"
)

// BenchmarkListRoutingLatency: how long listing 1,000,000 queued tasks holds up task routing.
// A broker holds 1,000,000 submitted tasks of a method no node serves; a client calls add (a
// node serves it) one call at a time, first alone, then while another client pages through the
// queued tasks with broker.list as fast as it can (1,000 a page, cursor after cursor). The
// metrics are the call round trips (p50, p99, max) in both phases and the list pages' round
// trips; the difference between the phases is what listing costs routing.
//
//	go test -run XXX -bench BenchmarkListRoutingLatency -benchtime 1x ./e2e/
func BenchmarkListRoutingLatency(b *testing.B) {
	const total = 1_000_000
	br, _ := startBroker(b, broker.Config{MaxQueued: total + 1000, MemoryBudget: 8 << 30, MaxInFlightPerClient: 1 << 20})
	startNode(b, br, node.Config{Name: "n1"})
	c := dial(b, br.Addr())
	lister := dial(b, br.Addr())
	ctx := context.Background()

	// Fill: 64 submitters in parallel (the client packs their requests into batches).
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= total {
				if _, err := c.Submit(ctx, "parked", []any{1}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if q := br.Stats().Queued; q < total {
		b.Fatalf("%d queued, want %d", q, total)
	}
	calls := func(n int) []time.Duration {
		var d []time.Duration
		for range n {
			start := time.Now()
			var sum int
			if err := c.Call(ctx, "add", &sum, 2, 3); err != nil || sum != 5 {
				b.Fatalf("add: %d, %v", sum, err)
			}
			d = append(d, time.Since(start))
		}
		slices.Sort(d)
		return d
	}
	pct := func(d []time.Duration, p int) float64 { return float64(d[(len(d)-1)*p/100]) / 1e6 }
	for b.Loop() {
		base := calls(2000)
		stop := make(chan struct{})
		var pages []time.Duration
		var listed int
		done := make(chan struct{})
		go func() {
			defer close(done)
			o := client.ListOptions{State: client.StateQueued, Limit: 1000}
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				pg, err := lister.List(ctx, o)
				if err != nil {
					b.Error(err)
					return
				}
				pages = append(pages, time.Since(start))
				listed += len(pg.Tasks)
				o.Cursor = pg.Cursor
			}
		}()
		during := calls(2000)
		close(stop)
		<-done
		slices.Sort(pages)
		b.ReportMetric(pct(base, 50), "alone-p50-ms")
		b.ReportMetric(pct(base, 99), "alone-p99-ms")
		b.ReportMetric(pct(base, 100), "alone-max-ms")
		b.ReportMetric(pct(during, 50), "listing-p50-ms")
		b.ReportMetric(pct(during, 99), "listing-p99-ms")
		b.ReportMetric(pct(during, 100), "listing-max-ms")
		b.ReportMetric(pct(pages, 50), "page-p50-ms")
		b.ReportMetric(pct(pages, 99), "page-p99-ms")
		b.ReportMetric(float64(listed), "tasks-listed")
	}
	// Drop the parked tasks, so that the broker stops quickly.
	if _, err := c.Purge(ctx, "", "parked"); err != nil {
		b.Fatal(err)
	}
}
