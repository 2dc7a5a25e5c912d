package store_test

import (
	"context"
	"fmt"
	"time"

	"github.com/zerotask/zerotask/store"
)

// Open picks the store from a URL: the broker's --store flag.
func ExampleOpen() {
	s, err := store.Open("memory://?max_queued=1000")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	fmt.Printf("%T\n", s)
	// Output: *store.Memory
}

// A Redis store: results survive a broker restart and are shared by several brokers. Open
// refuses a Redis whose maxmemory-policy may evict keys.
func ExampleOpen_redis() {
	s, err := store.Open("redis://127.0.0.1:6379/0?prefix=zerotask:")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
}

// Results: Put a batch with a TTL, Get one back into a reused Result, Wait for another.
func ExampleNewMemory() {
	ctx := context.Background()
	s := store.NewMemory(store.Options{MaxEntries: 10_000})
	defer s.Close()

	done := make(chan struct{})
	go func() {
		defer close(done)
		var r store.Result
		if err := s.Wait(ctx, "task-2", &r); err != nil { // blocks until the Put below
			fmt.Println(err)
			return
		}
		fmt.Println("waited:", r.ID, r.State, string(r.Error))
	}()

	err := s.Put(ctx, time.Hour,
		store.Result{ID: "task-1", State: store.StateSuccess, Result: []byte(`11`)},
		store.Result{ID: "task-2", State: store.StateFailure, Error: []byte(`{"code":-32000,"message":"boom"}`)},
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	<-done
	var r store.Result
	found, _ := s.Get(ctx, "task-1", &r)
	fmt.Println("get:", found, r.State, string(r.Result))
	// Output:
	// waited: task-2 FAILURE {"code":-32000,"message":"boom"}
	// get: true SUCCESS 11
}

// Queues: Append tasks, Claim them as a broker instance (an owner), Ack what finished and
// Requeue what a lost node held; Recover gives back everything a dead owner held.
func ExampleMemory_Claim() {
	ctx := context.Background()
	s := store.NewMemory(store.Options{Lease: 30 * time.Second})
	defer s.Close()

	_ = s.Append(ctx,
		store.Task{ID: "t1", Queue: "add", Method: "add", Params: []byte(`[1,2]`)},
		store.Task{ID: "t2", Queue: "add", Method: "add", Params: []byte(`[3,4]`)},
		store.Task{ID: "t3", Queue: "add", Method: "add", Params: []byte(`[5,6]`)},
	)
	tasks, _ := s.Claim(ctx, "add", "broker-a", 2, nil)
	for _, t := range tasks {
		fmt.Println("claimed", t.ID, string(t.Params))
	}
	_ = s.Ack(ctx, "t1")     // finished
	_ = s.Requeue(ctx, "t2") // its node was lost: back to the front, attempt counted
	tasks, _ = s.Claim(ctx, "add", "broker-b", 10, nil)
	for _, t := range tasks {
		fmt.Println("claimed", t.ID, "attempts", t.Attempts)
	}
	n, _ := s.Recover(ctx, "broker-b") // broker-b died
	fmt.Println("recovered", n)
	// Output:
	// claimed t1 [1,2]
	// claimed t2 [3,4]
	// claimed t2 attempts 1
	// claimed t3 attempts 0
	// recovered 2
}

// DialRedis with options: a short lease for brokers that renew often.
func ExampleDialRedis() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := store.DialRedis(ctx, "redis://127.0.0.1:6379/0", store.Options{Lease: 10 * time.Second})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	// The broker renews its lease more often than Lease, e.g. every Lease/3.
	_ = r.Renew(ctx, "broker-a")
}

// CheckMaxmemoryPolicy can be run again at any time (Open runs it once).
func ExampleRedis_CheckMaxmemoryPolicy() {
	ctx := context.Background()
	r, err := store.DialRedis(ctx, "redis://127.0.0.1:6379", store.Options{})
	if err != nil {
		fmt.Println(err) // e.g. "... maxmemory-policy is "allkeys-lru" ... CONFIG SET maxmemory-policy noeviction ..."
		return
	}
	defer r.Close()
	if err := r.CheckMaxmemoryPolicy(ctx); err != nil {
		fmt.Println(err)
	}
}
