package store_test

import (
	"context"
	"fmt"
	"time"

	"github.com/zerotask/zerotask/store"
)

// Open connects to the Redis a URL names (the broker's --store flag): results survive a broker
// restart and are shared by several brokers. Open refuses a Redis whose maxmemory-policy may
// evict keys.
func ExampleOpen() {
	s, err := store.Open("redis://127.0.0.1:6379/0?prefix=zerotask:")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
}

// Results: Put a batch with a TTL, Get one back into a reused Result, Wait for another.
func ExampleRedis_Put() {
	ctx := context.Background()
	s, err := store.DialRedis(ctx, "redis://127.0.0.1:6379/0", store.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
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

	err = s.Put(ctx, time.Hour,
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
	// Prints:
	// waited: task-2 FAILURE {"code":-32000,"message":"boom"}
	// get: true SUCCESS 11
}

// Tasks: Hold what a broker accepted (under its owner id), Ack what finished and Requeue what
// a lost node held; Claim takes given-back tasks; Recover gives back everything a dead owner
// held.
func ExampleRedis_Claim() {
	ctx := context.Background()
	s, err := store.DialRedis(ctx, "redis://127.0.0.1:6379/0", store.Options{Lease: 30 * time.Second})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()

	_ = s.Hold(ctx, "broker-a",
		store.Task{ID: "t1", Queue: "add", Method: "add", Params: []byte(`[1,2]`)},
		store.Task{ID: "t2", Queue: "add", Method: "add", Params: []byte(`[3,4]`)},
		store.Task{ID: "t3", Queue: "add", Method: "add", Params: []byte(`[5,6]`)},
	)
	_ = s.Ack(ctx, "broker-a", "t1")     // finished
	_ = s.Requeue(ctx, "broker-a", "t2") // its node was lost: back to the front of its queue, attempt counted
	n, _ := s.Recover(ctx, "broker-a")   // broker-a stops: t3 goes back too
	tasks, _ := s.Claim(ctx, "add", "broker-b", "", 10, nil)
	for _, t := range tasks {
		fmt.Println("claimed", t.ID, "attempts", t.Attempts)
	}
	fmt.Println("recovered", n)
	// Prints:
	// claimed t3 attempts 1
	// claimed t2 attempts 1
	// recovered 1
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
