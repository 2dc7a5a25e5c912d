package store

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// TestMemoryAllocs holds the memory store's hot path to zero allocations in steady state: a
// batch of results put and read back, and a batch of tasks appended, claimed and acked (or
// requeued and claimed again), and a batch held, located and acked, with records recycled
// through the free lists.
func TestMemoryAllocs(t *testing.T) {
	ctx := context.Background()
	m := NewMemory(Options{MaxEntries: 256})
	defer m.Close()
	const batch = 64
	rs := make([]Result, batch)
	ts := make([]Task, batch)
	ids := make([]string, batch)
	for i := range rs {
		ids[i] = "5f0c2a91-" + strconv.Itoa(i)
		rs[i] = Result{ID: ids[i], State: StateSuccess, Result: []byte(`{"sum":11}`), Node: "node-1", Attempts: 1}
		ts[i] = Task{ID: ids[i], Queue: "add", Method: "add", Params: []byte(`[5,6]`), Meta: []byte{1, 2, 3}}
	}
	var dst Result
	claimed := make([]Task, 0, batch)
	cycle := func() {
		if err := m.Put(ctx, time.Minute, rs...); err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			if ok, _ := m.Get(ctx, id, &dst); !ok {
				t.Fatal("result not found")
			}
		}
		if err := m.Append(ctx, ts...); err != nil {
			t.Fatal(err)
		}
		claimed, _ = m.Claim(ctx, "add", "broker-1", batch/2, claimed[:0])
		if err := m.Requeue(ctx, ids[:batch/2]...); err != nil {
			t.Fatal(err)
		}
		claimed, _ = m.Claim(ctx, "add", "broker-1", batch, claimed[:0])
		if len(claimed) != batch {
			t.Fatalf("claimed %d, want %d", len(claimed), batch)
		}
		if err := m.Ack(ctx, ids...); err != nil {
			t.Fatal(err)
		}
		if err := m.Renew(ctx, "broker-1"); err != nil {
			t.Fatal(err)
		}
		if err := m.Hold(ctx, "broker-1", ts...); err != nil {
			t.Fatal(err)
		}
		if where, _, _ := m.Locate(ctx, ids[0]); where != WhereHeld {
			t.Fatalf("held task is %v, want held", where)
		}
		if err := m.Ack(ctx, ids...); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 4; i++ { // warm up: maps and free lists reach their steady size
		cycle()
	}
	allocs := testing.AllocsPerRun(100, cycle)
	if raceEnabled {
		t.Logf("race detector on: %v allocs per cycle (not asserted)", allocs)
		return
	}
	if allocs != 0 {
		t.Fatalf("%v allocations per cycle of %d puts, gets, appends, claims, requeues, holds and acks; want 0", allocs, batch)
	}
}
