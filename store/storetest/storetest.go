// Package storetest is the conformance suite every store.Store implementation passes: results
// (put, get, TTL expiry, wait woken by put, by ctx end and by close), queues (FIFO claims of
// given-back tasks, ack of queued and in-flight tasks, requeue order and attempt counting,
// recover, lease expiry and renewal), held tasks (hold and ack, duplicate holds, recover and
// lease expiry of held tasks mixed with claimed ones, locate) and concurrency (many goroutines
// holding and giving back, claiming, acking, putting and waiting at once; many goroutines
// holding and acking).
//
// Run it from a test of the implementation:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, o store.Options) store.Store {
//			return openMyStore(t, o)
//		})
//	}
//
// open must return a fresh, empty store with o applied (the suite sets Lease);
// the suite closes it. Timing tests use leases and TTLs of a few hundred milliseconds and
// poll with a deadline; nothing sleeps to synchronize.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/protocol"
	"github.com/zerotask/zerotask/store"
)

// Opener returns a fresh, empty store with o applied. The suite closes it.
type Opener func(t *testing.T, o store.Options) store.Store

// Waiter is implemented by stores that report how many ids have a Wait blocked on them; the
// suite uses it to Put only once a Wait is really blocked (so that the Put, not the first
// read, is what it returns on).
type Waiter interface{ Waiting() int }

// Run runs the conformance suite against the stores open returns.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"PutGet", testPutGet},
		{"PutReplaces", testPutReplaces},
		{"TTLExpiry", testTTLExpiry},
		{"WaitAlreadyStored", testWaitAlreadyStored},
		{"WaitWokenByPut", testWaitWokenByPut},
		{"WaitCtxEnd", testWaitCtxEnd},
		{"WaitClose", testWaitClose},
		{"WaitMany", testWaitMany},
		{"QueueClaimFIFO", testQueueClaimFIFO},
		{"Ack", testAck},
		{"RequeueOrderAndAttempts", testRequeue},
		{"Recover", testRecover},
		{"LeaseExpiry", testLeaseExpiry},
		{"LeaseRenew", testLeaseRenew},
		{"HoldAck", testHoldAck},
		{"HoldDuplicate", testHoldDuplicate},
		{"HoldRecover", testHoldRecover},
		{"HoldLeaseExpiry", testHoldLeaseExpiry},
		{"HoldKeys", testHoldKeys},
		{"HoldKeyExpiry", testHoldKeyExpiry},
		{"PutKeepsKey", testPutKeepsKey},
		{"Locate", testLocate},
		{"SetRunning", testSetRunning},
		{"Invalid", testInvalid},
		{"Closed", testClosed},
		{"Concurrency", testConcurrency},
		{"ConcurrentHoldAck", testConcurrentHoldAck},
		{"Register", testRegister},
		{"Fencing", testFencing},
		{"ClaimToken", testClaimToken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

func openStore(t *testing.T, open Opener, o store.Options) store.Store {
	t.Helper()
	s := open(t, o)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func ctx(t *testing.T) context.Context { return testutil.Context(t, 30*time.Second) }

func sampleResults() []store.Result {
	at := time.Unix(1700000000, 123456789)
	return []store.Result{
		{ID: "r-ok", State: store.StateSuccess, Result: []byte(`11`), Attempts: 1, Node: "node-a", Method: "add", Submitter: "alice", FinishedAt: at},
		{ID: "r-fail", State: store.StateFailure, Error: []byte(`{"code":` + strconv.Itoa(protocol.CodeHandlerError) + `,"message":"boom","data":[1,2]}`), Attempts: 3, Node: "node-b", FinishedAt: at},
		{ID: "r-revoked", State: store.StateRevoked, Error: codec.AppendErrorObject(nil, protocol.ErrRevoked)},
		{ID: "r-big", State: store.StateSuccess, Result: bytes.Repeat([]byte(`"0123456789abcdef",`), 4096)},
		{ID: "r-binary:with:colons", State: "CUSTOM", Result: []byte{0, 1, 2, 0xff, '\n'}, Node: "n"},
	}
}

func equalResult(t *testing.T, got, want store.Result) {
	t.Helper()
	if got.ID != want.ID || got.State != want.State || got.Attempts != want.Attempts || got.Node != want.Node ||
		got.Method != want.Method || got.Submitter != want.Submitter || !got.FinishedAt.Equal(want.FinishedAt) || !bytes.Equal(got.Result, want.Result) || !bytes.Equal(got.Error, want.Error) {
		t.Fatalf("result\n got %+v\nwant %+v", brief(got), brief(want))
	}
}

func brief(r store.Result) string {
	cut := func(b []byte) string {
		if len(b) > 40 {
			return fmt.Sprintf("%q...(%d bytes)", b[:40], len(b))
		}
		return fmt.Sprintf("%q", b)
	}
	return fmt.Sprintf("{ID:%q State:%q Result:%s Error:%s Attempts:%d Node:%q FinishedAt:%v}",
		r.ID, r.State, cut(r.Result), cut(r.Error), r.Attempts, r.Node, r.FinishedAt)
}

func testPutGet(t *testing.T, open Opener) {
	s := openStore(t, open, store.Options{})
	c := ctx(t)
	rs := sampleResults()
	if err := s.Put(c, time.Minute, rs...); err != nil {
		t.Fatalf("Put: %v", err)
	}
	var dst store.Result // reused across reads: buffers must not leak between results
	for _, want := range rs {
		found, err := s.Get(c, want.ID, &dst)
		if err != nil || !found {
			t.Fatalf("Get(%q) = %v, %v", want.ID, found, err)
		}
		equalResult(t, dst, want)
	}
	found, err := s.Get(c, "missing", &dst)
	if err != nil || found {
		t.Fatalf("Get(missing) = %v, %v; want false, nil", found, err)
	}
	// The store copied what it keeps: changing the caller's buffers changes nothing stored.
	rs[0].Result[0] = '9'
	if _, err := s.Get(c, "r-ok", &dst); err != nil || string(dst.Result) != "11" {
		t.Fatalf("stored result changed with the caller's buffer: %q, %v", dst.Result, err)
	}
}

func testPutReplaces(t *testing.T, open Opener) {
	s := openStore(t, open, store.Options{})
	c := ctx(t)
	first := store.Result{ID: "x", State: store.StateFailure, Error: []byte(`{"code":1,"message":"m"}`)}
	second := store.Result{ID: "x", State: store.StateSuccess, Result: []byte(`[1]`), Attempts: 2}
	if err := s.Put(c, time.Minute, first); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(c, time.Minute, second); err != nil {
		t.Fatal(err)
	}
	var dst store.Result
	if found, err := s.Get(c, "x", &dst); err != nil || !found {
		t.Fatalf("Get = %v, %v", found, err)
	}
	equalResult(t, dst, second)
}

func testTTLExpiry(t *testing.T, open Opener) {
	s := openStore(t, open, store.Options{})
	c := ctx(t)
	if err := s.Put(c, 150*time.Millisecond, store.Result{ID: "short", State: store.StateSuccess, Result: []byte(`1`)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(c, time.Hour, store.Result{ID: "long", State: store.StateSuccess, Result: []byte(`2`)}); err != nil {
		t.Fatal(err)
	}
	var dst store.Result
	testutil.Eventually(t, 5*time.Second, func() bool {
		found, err := s.Get(c, "short", &dst)
		if err != nil {
			t.Fatal(err)
		}
		return !found
	}, "result with a 150ms TTL still there")
	if found, err := s.Get(c, "long", &dst); err != nil || !found {
		t.Fatalf("result with a 1h TTL: %v, %v", found, err)
	}
	// A Put after the expiry stores it again.
	if err := s.Put(c, time.Hour, store.Result{ID: "short", State: store.StateSuccess, Result: []byte(`3`)}); err != nil {
		t.Fatal(err)
	}
	if found, err := s.Get(c, "short", &dst); err != nil || !found || string(dst.Result) != "3" {
		t.Fatalf("Get after re-put: %v, %v, %q", found, err, dst.Result)
	}
}

func testWaitAlreadyStored(t *testing.T, open Opener) {
	s := openStore(t, open, store.Options{})
	c := ctx(t)
	want := sampleResults()[1]
	if err := s.Put(c, time.Minute, want); err != nil {
		t.Fatal(err)
	}
	var dst store.Result
	if err := s.Wait(c, want.ID, &dst); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	equalResult(t, dst, want)
}

// waitBlocked waits until n ids have a Wait blocked on them, when the store can tell.
func waitBlocked(t *testing.T, s store.Store, n int) {
	t.Helper()
	if w, ok := s.(Waiter); ok {
		testutil.Eventually(t, 10*time.Second, func() bool { return w.Waiting() >= n }, "%d ids waited on", n)
	}
}

func testWaitWokenByPut(t *testing.T, open Opener) {
	s := openStore(t, open, store.Options{})
	c := ctx(t)
	want := sampleResults()[0]
	got := make(chan error, 1)
	var dst store.Result
	go func() { got <- s.Wait(c, want.ID, &dst) }()
	waitBlocked(t, s, 1)
	select {
	case err := <-got:
		t.Fatalf("Wait returned before the Put: %v", err)
	default:
	}
	if err := s.Put(c, time.Minute, want); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("Wait: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait not woken by the Put within 10s")
	}
	equalResult(t, dst, want)
	if w, ok := s.(Waiter); ok {
		testutil.Eventually(t, 5*time.Second, func() bool { return w.Waiting() == 0 }, "waits left after the wake-up")
	}
}

func testWaitCtxEnd(t *testing.T, open Opener) {
	s := openStore(t, open, store.Options{})
	wctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	var dst store.Result
	start := time.Now()
	err := s.Wait(wctx, "never", &dst)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait = %v; want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Wait returned %v after its 200ms deadline", d)
	}
	// A cancelled (not timed out) wait.
	cctx, ccancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() { got <- s.Wait(cctx, "never-2", &dst) }()
	waitBlocked(t, s, 1)
	ccancel()
	select {
	case err := <-got:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait = %v; want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait not ended by its ctx within 10s")
	}
	if w, ok := s.(Waiter); ok {
		testutil.Eventually(t, 5*time.Second, func() bool { return w.Waiting() == 0 }, "abandoned waits must not stay registered")
	}
}

func testWaitClose(t *testing.T, open Opener) {
	s := openStore(t, open, store.Options{})
	got := make(chan error, 1)
	go func() {
		var dst store.Result
		got <- s.Wait(context.Background(), "never", &dst)
	}()
	waitBlocked(t, s, 1)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if !errors.Is(err, store.ErrClosed) {
			t.Fatalf("Wait after Close = %v; want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait not ended by Close within 10s")
	}
}

func testWaitMany(t *testing.T, open Opener) {
	s := openStore(t, open, store.Options{})
	c := ctx(t)
	const ids, perID = 10, 5
	var wg sync.WaitGroup
	errs := newErrSink()
	for i := 0; i < ids; i++ {
		for j := 0; j < perID; j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var dst store.Result
				id := fmt.Sprintf("w-%d", i)
				if err := s.Wait(c, id, &dst); err != nil {
					errs.report(err)
					return
				}
				if want := fmt.Sprintf(`%d`, i); string(dst.Result) != want || dst.ID != id {
					errs.report(fmt.Errorf("Wait(%s) read %s %q, want %q", id, dst.ID, dst.Result, want))
				}
			}()
		}
	}
	waitBlocked(t, s, ids)
	rs := make([]store.Result, ids)
	for i := range rs {
		rs[i] = store.Result{ID: fmt.Sprintf("w-%d", i), State: store.StateSuccess, Result: []byte(fmt.Sprint(i))}
	}
	if err := s.Put(c, time.Minute, rs[:ids/2]...); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(c, time.Minute, rs[ids/2:]...); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	errs.check(t)
}

func sampleTasks(queue string, n int) []store.Task {
	ts := make([]store.Task, n)
	for i := range ts {
		ts[i] = store.Task{
			ID: fmt.Sprintf("%s-%d", queue, i), Queue: queue, Method: "add",
			Params: []byte(fmt.Sprintf(`[%d,6]`, i)), Meta: []byte{byte(i), 0, 0xff},
		}
	}
	ts[0].Deadline = time.Unix(1800000000, 42)
	ts[0].Params = nil
	ts[0].Meta = nil
	if n > 1 {
		ts[1].Attempts = 2
	}
	return ts
}

func equalTask(t *testing.T, got, want store.Task) {
	t.Helper()
	if got.ID != want.ID || got.Queue != want.Queue || got.Method != want.Method || got.Attempts != want.Attempts ||
		!nearTime(got.Deadline, want.Deadline) || !bytes.Equal(got.Params, want.Params) || !bytes.Equal(got.Meta, want.Meta) ||
		(got.Params == nil) != (want.Params == nil) || (got.Meta == nil) != (want.Meta == nil) {
		t.Fatalf("task\n got %+v\nwant %+v", got, want)
	}
}

// nearTime reports whether a deadline read back is the one written: the store keeps it as
// the time left on its own clock (milliseconds, and the hold's round trip), so within 100 ms.
func nearTime(got, want time.Time) bool {
	if got.IsZero() || want.IsZero() {
		return got.IsZero() == want.IsZero()
	}
	d := got.Sub(want)
	return d > -100*time.Millisecond && d < 100*time.Millisecond
}

func ids(ts []store.Task) []string {
	out := make([]string, len(ts))
	for i := range ts {
		out[i] = ts[i].ID
	}
	return out
}

func claimIDs(t *testing.T, s store.Store, queue, owner string, n int) []store.Task {
	t.Helper()
	got, err := s.Claim(ctx(t), queue, owner, "", n, nil)
	if err != nil {
		t.Fatalf("Claim(%s, %s, %d): %v", queue, owner, n, err)
	}
	return got
}

func wantIDs(t *testing.T, got []store.Task, want ...string) {
	t.Helper()
	if fmt.Sprint(ids(got)) != fmt.Sprint(want) {
		t.Fatalf("claimed %v, want %v", ids(got), want)
	}
}

// enqueue puts tasks in their queues, in order and ahead of what waits there, the way tasks
// reach a queue: held by an owner of their own, then given back (Recover), which counts an
// attempt. It returns the tasks as a Claim reads them back (attempts counted).
func enqueue(t *testing.T, s store.Store, ts ...store.Task) []store.Task {
	t.Helper()
	owner := fmt.Sprintf("enqueue-%d", enqueueSeq.Add(1))
	if err := s.Hold(ctx(t), owner, ts...); err != nil {
		t.Fatalf("Hold: %v", err)
	}
	if n, err := s.Recover(ctx(t), owner); err != nil || n != len(ts) {
		t.Fatalf("Recover(%s) = %d, %v; want %d", owner, n, err, len(ts))
	}
	want := slices.Clone(ts)
	for i := range want {
		want[i].Attempts++
	}
	return want
}

var enqueueSeq atomic.Int64

func testQueueClaimFIFO(t *testing.T, open Opener) {
	s := openStore(t, open, store.Options{})
	c := ctx(t)
	ts := enqueue(t, s, sampleTasks("q", 10)...)
	enqueue(t, s, sampleTasks("other", 2)...)
	got := claimIDs(t, s, "q", "b1", 3)
	for i := range got {
		equalTask(t, got[i], ts[i])
	}
	dst := make([]store.Task, 1, 16) // Claim appends to dst
	dst, err := s.Claim(c, "q", "b1", "", 100, dst)
	if err != nil {
		t.Fatal(err)
	}
	if len(dst) != 8 {
		t.Fatalf("Claim appended %d tasks, want 7 after the one already in dst", len(dst)-1)
	}
	for i, got := range dst[1:] {
		equalTask(t, got, ts[3+i])
	}
	wantIDs(t, claimIDs(t, s, "q", "b1", 5))
	wantIDs(t, claimIDs(t, s, "nothing-here", "b1", 5))
	wantIDs(t, claimIDs(t, s, "other", "b2", 1), "other-0")
}

func testAck(t *testing.T, open Opener) {
	s := openStore(t, open, store.Options{})
	c := ctx(t)
	enqueue(t, s, sampleTasks("q", 6)...)
	got := claimIDs(t, s, "q", "b", 2)
	// In flight q-0 and q-1; queued q-2..q-5. Ack one of each, and an unknown id.
	if err := s.Ack(c, "b", "q-0", "q-3", "unknown"); err != nil {
		t.Fatal(err)
	}
	wantWhere(t, s, "q-3", store.WhereNone, "")
	if n, err := s.Recover(c, "b"); err != nil || n != 1 {
		t.Fatalf("Recover after ack = %d, %v; want 1 (q-1 only)", n, err)
	}
	wantIDs(t, claimIDs(t, s, "q", "b", 10), "q-1", "q-2", "q-4", "q-5")
	_ = got
	// Acked ids are forgotten: they can be stored again.
	enqueue(t, s, store.Task{ID: "q-0", Queue: "q", Method: "again"})
	wantIDs(t, claimIDs(t, s, "q", "b", 10), "q-0")
	if err := s.Ack(c, "b"); err != nil {
		t.Fatalf("Ack(): %v", err)
	}
}

func testRequeue(t *testing.T, open Opener) {
	s := openStore(t, open, store.Options{})
	c := ctx(t)
	enqueue(t, s, sampleTasks("q", 5)...)
	got := claimIDs(t, s, "q", "b", 3) // q-0 (attempts 1), q-1 (attempts 3), q-2 (1)
	wantIDs(t, got, "q-0", "q-1", "q-2")
	// q-2 and q-0 back in that order; q-3 is queued (not in flight): ignored.
	if err := s.Requeue(c, "b", "q-2", "q-0", "q-3", "unknown"); err != nil {
		t.Fatal(err)
	}
	again := claimIDs(t, s, "q", "b", 10)
	wantIDs(t, again, "q-2", "q-0", "q-3", "q-4")
	for _, tk := range again {
		want := map[string]int{"q-2": 2, "q-0": 2, "q-3": 1, "q-4": 1}[tk.ID]
		if tk.Attempts != want {
			t.Fatalf("task %s attempts %d, want %d", tk.ID, tk.Attempts, want)
		}
	}
	equalTaskExceptAttempts(t, again[1], sampleTasks("q", 5)[0])
	// Twice more: attempts keep counting.
	if err := s.Requeue(c, "b", "q-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Requeue(c, "b", "q-1"); err != nil { // not in flight any more: ignored
		t.Fatal(err)
	}
	if g := claimIDs(t, s, "q", "b", 1); len(g) != 1 || g[0].ID != "q-1" || g[0].Attempts != 4 {
		t.Fatalf("q-1 after one requeue: %+v, want attempts 4 (queued with 3)", g)
	}
}

func equalTaskExceptAttempts(t *testing.T, got, want store.Task) {
	t.Helper()
	got.Attempts = want.Attempts
	equalTask(t, got, want)
}

func testRecover(t *testing.T, open Opener) {
	s := openStore(t, open, store.Options{})
	c := ctx(t)
	enqueue(t, s, sampleTasks("q", 6)...)
	enqueue(t, s, sampleTasks("r", 2)...)
	wantIDs(t, claimIDs(t, s, "q", "A", 2), "q-0", "q-1")
	wantIDs(t, claimIDs(t, s, "q", "B", 1), "q-2")
	wantIDs(t, claimIDs(t, s, "r", "A", 1), "r-0")
	wantIDs(t, claimIDs(t, s, "q", "A", 1), "q-3")
	n, err := s.Recover(c, "A")
	if err != nil || n != 4 {
		t.Fatalf("Recover(A) = %d, %v; want 4", n, err)
	}
	if n, err := s.Recover(c, "A"); err != nil || n != 0 {
		t.Fatalf("second Recover(A) = %d, %v; want 0", n, err)
	}
	if n, err := s.Recover(c, "nobody"); err != nil || n != 0 {
		t.Fatalf("Recover(nobody) = %d, %v; want 0", n, err)
	}
	got := claimIDs(t, s, "q", "C", 10)
	wantIDs(t, got, "q-0", "q-1", "q-3", "q-4", "q-5") // A's in claim order, at the front
	for _, tk := range got {
		want := map[string]int{"q-0": 2, "q-1": 4, "q-3": 2, "q-4": 1, "q-5": 1}[tk.ID]
		if tk.Attempts != want {
			t.Fatalf("task %s attempts %d, want %d", tk.ID, tk.Attempts, want)
		}
	}
	wantIDs(t, claimIDs(t, s, "r", "C", 10), "r-0", "r-1")
	// B's task stayed in flight with B.
	if n, err := s.Recover(c, "B"); err != nil || n != 1 {
		t.Fatalf("Recover(B) = %d, %v; want 1", n, err)
	}
}

func testLeaseExpiry(t *testing.T, open Opener) {
	const lease = 300 * time.Millisecond
	s := openStore(t, open, store.Options{Lease: lease})
	enqueue(t, s, sampleTasks("q", 3)...)
	start := time.Now()
	wantIDs(t, claimIDs(t, s, "q", "dead", 2), "q-0", "q-1")
	back := claimAfterLease(t, s, "q", 3, start, lease)
	// q-2 was claimed at once; the dead owner's two come back at the front, attempts counted.
	wantIDs(t, back, "q-2", "q-0", "q-1")
	if back[1].Attempts != 2 || back[2].Attempts != 4 {
		t.Fatalf("attempts after lease expiry: %d, %d; want 2, 4", back[1].Attempts, back[2].Attempts)
	}
}

func testLeaseRenew(t *testing.T, open Opener) {
	const lease = 400 * time.Millisecond
	s := openStore(t, open, store.Options{Lease: lease})
	c := ctx(t)
	enqueue(t, s, sampleTasks("q", 2)...)
	wantIDs(t, claimIDs(t, s, "q", "renewer", 1), "q-0")
	// Renew every lease/4 for three leases: the task must stay with its owner all along.
	tick := time.NewTicker(lease / 4)
	defer tick.Stop()
	end := time.Now().Add(3 * lease)
	for time.Now().Before(end) {
		<-tick.C // the time under test, not synchronization
		if err := s.Renew(c, "renewer"); err != nil {
			t.Fatal(err)
		}
		got := claimIDs(t, s, "q", "other", 10)
		for _, tk := range got {
			if tk.ID == "q-0" {
				t.Fatal("a renewed owner's task was given back")
			}
		}
	}
	if n, err := s.Recover(c, "renewer"); err != nil || n != 1 {
		t.Fatalf("Recover(renewer) = %d, %v; want 1", n, err)
	}
}

func wantWhere(t *testing.T, s store.Store, id string, want store.Where, wantOwner string) {
	t.Helper()
	where, owner, err := s.Locate(ctx(t), id)
	if err != nil || where != want || owner != wantOwner {
		t.Fatalf("Locate(%s) = %v, %q, %v; want %v, %q", id, where, owner, err, want, wantOwner)
	}
}

// heldTasks returns sampleTasks(prefix, n) in queue.
func heldTasks(prefix, queue string, n int) []store.Task {
	ts := sampleTasks(prefix, n)
	for i := range ts {
		ts[i].Queue = queue
	}
	return ts
}

func testHoldAck(t *testing.T, open Opener) {
	s := openStore(t, open, store.Options{})
	c := ctx(t)
	ts := heldTasks("h", "q", 3)
	if err := s.Hold(c, "b", ts...); err != nil {
		t.Fatal(err)
	}
	for _, tk := range ts {
		wantWhere(t, s, tk.ID, store.WhereHeld, "b")
	}
	wantIDs(t, claimIDs(t, s, "q", "other", 10)) // never queued, so not claimable
	if err := s.Ack(c, "b", "h-0", "h-2"); err != nil {
		t.Fatal(err)
	}
	wantWhere(t, s, "h-0", store.WhereNone, "")
	wantWhere(t, s, "h-2", store.WhereNone, "")
	wantWhere(t, s, "h-1", store.WhereHeld, "b")
	// Requeue gives a held task back to the front of its queue, attempt counted, content kept.
	enqueue(t, s, store.Task{ID: "a-0", Queue: "q", Method: "m"})
	if err := s.Requeue(c, "b", "h-1"); err != nil {
		t.Fatal(err)
	}
	wantWhere(t, s, "h-1", store.WhereQueued, "")
	got := claimIDs(t, s, "q", "b", 10)
	wantIDs(t, got, "h-1", "a-0")
	if got[0].Attempts != 3 {
		t.Fatalf("h-1 attempts %d after one requeue; want 3 (held with 2)", got[0].Attempts)
	}
	equalTaskExceptAttempts(t, got[0], ts[1])
	if err := s.Ack(c, "b", "h-1", "a-0"); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Recover(c, "b"); err != nil || n != 0 {
		t.Fatalf("Recover(b) after every ack = %d, %v; want 0", n, err)
	}
	// Acked ids are forgotten: they can be held again. A Hold of nothing only renews.
	if err := s.Hold(c, "b", ts[0]); err != nil {
		t.Fatal(err)
	}
	if err := s.Hold(c, "b"); err != nil {
		t.Fatalf("Hold(b) with no tasks: %v", err)
	}
	wantWhere(t, s, "h-0", store.WhereHeld, "b")
}

func testHoldDuplicate(t *testing.T, open Opener) {
	s := openStore(t, open, store.Options{})
	c := ctx(t)
	enqueue(t, s, sampleTasks("q", 2)...)
	wantIDs(t, claimIDs(t, s, "q", "B", 1), "q-0") // q-0 held by B, q-1 queued
	if err := s.Hold(c, "A", store.Task{ID: "h-0", Queue: "q", Method: "first"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(c, time.Minute, store.Result{ID: "r-0", State: store.StateSuccess, Result: []byte(`1`)}); err != nil {
		t.Fatal(err)
	}
	// Held again by A: q-0 (B's), q-1 (queued), r-0 (finished), h-0 (A's own), n-0 twice in
	// the call. Another task's id (an id collision) is reported Taken; A's own is a resend.
	again := []store.Task{
		{ID: "q-0", Queue: "other", Method: "changed"},
		{ID: "q-1", Queue: "other", Method: "changed"},
		{ID: "r-0", Queue: "other", Method: "changed"},
		{ID: "h-0", Queue: "q", Method: "changed"},
		{ID: "n-0", Queue: "q", Method: "m", Attempts: 4},
		{ID: "n-0", Queue: "q", Method: "m2"},
	}
	if err := s.Hold(c, "A", again...); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, true, true, false, false, false} {
		if again[i].Taken != want {
			t.Errorf("Hold of %s by A: Taken %v, want %v", again[i].ID, again[i].Taken, want)
		}
	}
	wantWhere(t, s, "r-0", store.WhereNone, "")
	var r store.Result
	if found, err := s.Get(c, "r-0", &r); err != nil || !found || string(r.Result) != `1` {
		t.Fatalf("r-0's result after a Hold of its id: %v %v %+v", found, err, r)
	}
	wantWhere(t, s, "q-0", store.WhereHeld, "B")
	wantWhere(t, s, "q-1", store.WhereQueued, "")
	wantWhere(t, s, "h-0", store.WhereHeld, "A")
	wantWhere(t, s, "n-0", store.WhereHeld, "A")
	wantIDs(t, claimIDs(t, s, "other", "D", 10)) // nothing of the duplicates was queued
	if n, err := s.Recover(c, "A"); err != nil || n != 2 {
		t.Fatalf("Recover(A) = %d, %v; want 2 (h-0, n-0)", n, err)
	}
	got := claimIDs(t, s, "q", "C", 10)
	wantIDs(t, got, "h-0", "n-0", "q-1")
	if got[0].Method != "first" || got[1].Method != "m" || got[1].Attempts != 5 || got[2].Method != "add" {
		t.Fatalf("a duplicate Hold replaced a task: %+v", got)
	}
	if n, err := s.Recover(c, "B"); err != nil || n != 1 {
		t.Fatalf("Recover(B) = %d, %v; want 1 (q-0 stayed with B)", n, err)
	}
	// Only new ids, one of them twice: the second is a resend, not a second task.
	fresh := []store.Task{
		{ID: "f-0", Queue: "f", Method: "first"},
		{ID: "f-1", Queue: "f", Method: "m"},
		{ID: "f-0", Queue: "f", Method: "second"},
	}
	if err := s.Hold(c, "A", fresh...); err != nil {
		t.Fatal(err)
	}
	for _, f := range fresh {
		if f.Taken || f.Bound != "" {
			t.Errorf("Hold of new id %s: Taken %v, Bound %q", f.ID, f.Taken, f.Bound)
		}
	}
	if n, err := s.Recover(c, "A"); err != nil || n != 2 {
		t.Fatalf("Recover(A) of f-0, f-1 = %d, %v; want 2", n, err)
	}
	got = claimIDs(t, s, "f", "C", 10)
	wantIDs(t, got, "f-0", "f-1")
	if got[0].Method != "first" {
		t.Fatalf("a resend in the same Hold replaced the task: %+v", got[0])
	}
}

func testHoldRecover(t *testing.T, open Opener) {
	s := openStore(t, open, store.Options{})
	c := ctx(t)
	enqueue(t, s, sampleTasks("q", 6)...)
	held := heldTasks("h", "q", 4) // h-0 (attempts 0), h-1 (attempts 2), h-2, h-3
	held[2].Queue = "r"
	held[3].Attempts = 5
	if err := s.Hold(c, "A", held[0]); err != nil {
		t.Fatal(err)
	}
	wantIDs(t, claimIDs(t, s, "q", "A", 2), "q-0", "q-1")
	if err := s.Hold(c, "A", held[1], held[2]); err != nil {
		t.Fatal(err)
	}
	wantIDs(t, claimIDs(t, s, "q", "B", 1), "q-2")
	wantIDs(t, claimIDs(t, s, "q", "A", 1), "q-3")
	if err := s.Hold(c, "B", held[3]); err != nil {
		t.Fatal(err)
	}
	n, err := s.Recover(c, "A")
	if err != nil || n != 6 {
		t.Fatalf("Recover(A) = %d, %v; want 6", n, err)
	}
	got := claimIDs(t, s, "q", "C", 10)
	// A's in hold/claim order at the front, then what was still queued.
	wantIDs(t, got, "h-0", "q-0", "q-1", "h-1", "q-3", "q-4", "q-5")
	for _, tk := range got {
		want := map[string]int{"h-0": 1, "q-0": 2, "q-1": 4, "h-1": 3, "q-3": 2, "q-4": 1, "q-5": 1}[tk.ID]
		if tk.Attempts != want {
			t.Fatalf("task %s attempts %d, want %d", tk.ID, tk.Attempts, want)
		}
	}
	equalTaskExceptAttempts(t, got[0], held[0])
	equalTaskExceptAttempts(t, got[3], held[1])
	gotR := claimIDs(t, s, "r", "C", 10)
	wantIDs(t, gotR, "h-2")
	if gotR[0].Attempts != 1 {
		t.Fatalf("h-2 attempts %d, want 1", gotR[0].Attempts)
	}
	equalTaskExceptAttempts(t, gotR[0], held[2])
	// B's held and claimed tasks stayed with B.
	wantWhere(t, s, "h-3", store.WhereHeld, "B")
	wantWhere(t, s, "q-2", store.WhereHeld, "B")
	if n, err := s.Recover(c, "B"); err != nil || n != 2 {
		t.Fatalf("Recover(B) = %d, %v; want 2", n, err)
	}
	wantIDs(t, claimIDs(t, s, "q", "C", 10), "q-2", "h-3")
}

func testHoldLeaseExpiry(t *testing.T, open Opener) {
	const lease = 300 * time.Millisecond
	s := openStore(t, open, store.Options{Lease: lease})
	c := ctx(t)
	start := time.Now()
	// "dead" only holds, never claims or renews.
	if err := s.Hold(c, "dead", heldTasks("h", "q", 2)...); err != nil {
		t.Fatal(err)
	}
	wantWhere(t, s, "h-1", store.WhereHeld, "dead")
	back := claimAfterLease(t, s, "q", 2, start, lease)
	wantIDs(t, back, "h-0", "h-1")
	if back[0].Attempts != 1 || back[1].Attempts != 3 {
		t.Fatalf("attempts after lease expiry: %d, %d; want 1, 3", back[0].Attempts, back[1].Attempts)
	}
	wantWhere(t, s, "h-1", store.WhereHeld, "alive")
	if n, err := s.Recover(c, "dead"); err != nil || n != 0 {
		t.Fatalf("Recover(dead) = %d, %v; want 0", n, err)
	}
}

func testLocate(t *testing.T, open Opener) {
	s := openStore(t, open, store.Options{})
	c := ctx(t)
	wantWhere(t, s, "never", store.WhereNone, "")
	enqueue(t, s, sampleTasks("q", 2)...)
	wantWhere(t, s, "q-0", store.WhereQueued, "")
	wantIDs(t, claimIDs(t, s, "q", "B", 1), "q-0")
	wantWhere(t, s, "q-0", store.WhereHeld, "B")
	wantWhere(t, s, "q-1", store.WhereQueued, "")
	if err := s.Hold(c, "A", store.Task{ID: "h", Queue: "q", Method: "m"}); err != nil {
		t.Fatal(err)
	}
	wantWhere(t, s, "h", store.WhereHeld, "A")
	if n, err := s.Recover(c, "A"); err != nil || n != 1 {
		t.Fatalf("Recover(A) = %d, %v; want 1", n, err)
	}
	wantWhere(t, s, "h", store.WhereQueued, "")
	if err := s.Ack(c, "B", "q-0", "q-1", "h"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"q-0", "q-1", "h"} {
		wantWhere(t, s, id, store.WhereNone, "")
	}
	for w, want := range map[store.Where]string{store.WhereNone: "none", store.WhereQueued: "queued", store.WhereHeld: "held", store.WhereRunning: "running"} {
		if w.String() != want {
			t.Fatalf("Where(%d).String() = %q; want %q", w, w.String(), want)
		}
	}
}

// testSetRunning: SetRunning marks the tasks an owner holds as running, for Locate through any
// store handle, and clears the mark; other owners' marks, and ids not held, are ignored; the
// mark goes with the task when it is given back (Requeue, Recover, an expired lease) and does
// not follow it to its next claim.
func testSetRunning(t *testing.T, open Opener) {
	const lease = 300 * time.Millisecond
	s := openStore(t, open, store.Options{Lease: lease})
	c := ctx(t)
	enqueue(t, s, sampleTasks("q", 4)...)
	wantIDs(t, claimIDs(t, s, "q", "A", 2), "q-0", "q-1")
	if err := s.Hold(c, "B", store.Task{ID: "h", Queue: "q", Method: "m"}); err != nil {
		t.Fatal(err)
	}
	// q-1 is A's but B says so; q-2 is queued; "never" does not exist.
	if err := s.SetRunning(c, "A", true, "q-0", "q-2", "never"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRunning(c, "B", true, "h", "q-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRunning(c, "A", true); err != nil {
		t.Fatalf("SetRunning with no ids: %v", err)
	}
	wantWhere(t, s, "q-0", store.WhereRunning, "A")
	wantWhere(t, s, "q-1", store.WhereHeld, "A")
	wantWhere(t, s, "q-2", store.WhereQueued, "")
	wantWhere(t, s, "never", store.WhereNone, "")
	wantWhere(t, s, "h", store.WhereRunning, "B")
	// Cleared by its owner only; set again.
	if err := s.SetRunning(c, "A", false, "h"); err != nil {
		t.Fatal(err)
	}
	wantWhere(t, s, "h", store.WhereRunning, "B")
	if err := s.SetRunning(c, "B", false, "h"); err != nil {
		t.Fatal(err)
	}
	wantWhere(t, s, "h", store.WhereHeld, "B")
	if err := s.SetRunning(c, "B", true, "h"); err != nil {
		t.Fatal(err)
	}
	wantWhere(t, s, "h", store.WhereRunning, "B")
	// Given back: queued, and held (not running) when claimed again, even by the same owner.
	if err := s.Requeue(c, "A", "q-0"); err != nil {
		t.Fatal(err)
	}
	wantWhere(t, s, "q-0", store.WhereQueued, "")
	wantIDs(t, claimIDs(t, s, "q", "A", 1), "q-0")
	wantWhere(t, s, "q-0", store.WhereHeld, "A")
	if n, err := s.Recover(c, "B"); err != nil || n != 1 {
		t.Fatalf("Recover(B) = %d, %v; want 1", n, err)
	}
	wantWhere(t, s, "h", store.WhereQueued, "")
	// A's lease runs out (no renew): its running task goes back as well.
	if err := s.SetRunning(c, "A", true, "q-0"); err != nil {
		t.Fatal(err)
	}
	wantWhere(t, s, "q-0", store.WhereRunning, "A")
	testutil.Eventually(t, 10*time.Second, func() bool {
		if _, err := s.Claim(c, "other", "C", "", 1, nil); err != nil { // gives back expired owners
			t.Fatal(err)
		}
		w, _, err := s.Locate(c, "q-0")
		return err == nil && w == store.WhereQueued
	}, "A's running task not given back when its lease ran out")
	if err := s.Ack(c, "cleaner", "q-0", "q-1", "q-2", "q-3", "h"); err != nil {
		t.Fatal(err)
	}
	wantWhere(t, s, "q-0", store.WhereNone, "")
}

// claimAfterLease claims from queue as owner "alive" until it has n tasks: the tasks of an
// owner that stopped renewing at start, which must not come back before its lease ran out.
func claimAfterLease(t *testing.T, s store.Store, queue string, n int, start time.Time, lease time.Duration) []store.Task {
	t.Helper()
	c := ctx(t)
	var back []store.Task
	if !testutil.Poll(10*time.Second, func() bool {
		got, err := s.Claim(c, queue, "alive", "", 10, nil)
		if err != nil {
			t.Fatal(err)
		}
		back = append(back, got...)
		return len(back) >= n
	}) {
		t.Fatalf("the silent owner's tasks did not come back: claimed %v, want %d", ids(back), n)
	}
	// Stores keep lease deadlines in whole milliseconds of their own clock (Redis: TIME),
	// so one may run out up to a millisecond before the lease measured here.
	if d := time.Since(start); d < lease-time.Millisecond {
		t.Fatalf("tasks came back after %v, before the %v lease ran out", d, lease)
	}
	return back
}

// testRegister: a run of an owner id is refused while the previous run's lease is live; once
// it ran out, the next run gets what the previous one held back in the queues, and the
// previous run's writes are fenced.
func testRegister(t *testing.T, open Opener) {
	const lease = 300 * time.Millisecond
	s := openStore(t, open, store.Options{Lease: lease})
	c := ctx(t)
	run1, n, err := s.Register(c, "x", false)
	if err != nil || n != 0 || run1 == "" || run1 == "x" {
		t.Fatalf("Register(x) = %q, %d, %v; want a run of x and 0 tasks", run1, n, err)
	}
	if err := s.Hold(c, run1, heldTasks("h", "q", 2)...); err != nil {
		t.Fatal(err)
	}
	wantWhere(t, s, "h-0", store.WhereHeld, run1)
	if _, _, err := s.Register(c, "x", false); !errors.Is(err, store.ErrOwnerLive) {
		t.Fatalf("Register(x) while its run is live = %v; want ErrOwnerLive", err)
	}
	var run2 string
	if !testutil.Poll(10*time.Second, func() bool {
		run2, n, err = s.Register(c, "x", false)
		return err == nil
	}) {
		t.Fatalf("Register(x) after the lease: %v", err)
	}
	if run2 == run1 || n != 2 {
		t.Fatalf("second run %q (first %q) got %d tasks back; want a new run and 2", run2, run1, n)
	}
	wantWhere(t, s, "h-0", store.WhereQueued, "")
	wantFenced(t, s, run1)
	if err := s.Hold(c, run2, heldTasks("n", "q", 1)...); err != nil {
		t.Fatalf("Hold by the new run: %v", err)
	}
	// A graceful end (Recover) frees the owner id at once.
	if _, err := s.Recover(c, run2); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Register(c, "x", false); err != nil {
		t.Fatalf("Register(x) after the run ended: %v", err)
	}
}

// wantFenced checks that every write of run is refused with ErrFenced.
func wantFenced(t *testing.T, s store.Store, run string) {
	t.Helper()
	c := ctx(t)
	_, claimErr := s.Claim(c, "q", run, "", 1, nil)
	for name, err := range map[string]error{
		"Renew":   s.Renew(c, run),
		"Hold":    s.Hold(c, run, store.Task{ID: "fenced-1", Queue: "q", Method: "m"}),
		"Ack":     s.Ack(c, run, "h-0"),
		"Requeue": s.Requeue(c, run, "h-0"),
		"Claim":   claimErr,
	} {
		if !errors.Is(err, store.ErrFenced) {
			t.Errorf("%s by fenced %q = %v; want ErrFenced", name, run, err)
		}
	}
	wantWhere(t, s, "fenced-1", store.WhereNone, "")
}

// testFencing: an owner whose lease ran out while another claimed its tasks can no longer
// write: its tasks are the other's, and its Ack does not touch them.
func testFencing(t *testing.T, open Opener) {
	const lease = 300 * time.Millisecond
	s := openStore(t, open, store.Options{Lease: lease})
	c := ctx(t)
	start := time.Now() // the lease starts when the store runs the Hold, after this
	if err := s.Hold(c, "A", heldTasks("h", "q", 3)...); err != nil {
		t.Fatal(err)
	}
	back := claimAfterLease(t, s, "q", 3, start, lease)
	wantIDs(t, back, "h-0", "h-1", "h-2")
	wantFenced(t, s, "A")
	wantWhere(t, s, "h-0", store.WhereHeld, "alive")
	if err := s.Ack(c, "alive", "h-0"); err != nil {
		t.Fatal(err)
	}
	wantWhere(t, s, "h-0", store.WhereNone, "")
	// An owner acks only its own tasks, and puts results only for them.
	if err := s.Ack(c, "other", "h-1"); err != nil {
		t.Fatal(err)
	}
	wantWhere(t, s, "h-1", store.WhereHeld, "alive")
	err := s.Put(c, time.Minute, store.Result{ID: "h-1", State: store.StateSuccess, Result: []byte(`"A"`), Owner: "A"},
		store.Result{ID: "h-2", State: store.StateSuccess, Result: []byte(`"alive"`), Owner: "alive"})
	if err != nil {
		t.Fatal(err)
	}
	var r store.Result
	if found, err := s.Get(c, "h-1", &r); err != nil || found {
		t.Fatalf("result of h-1 put by fenced A: found %v, %v; want none", found, err)
	}
	if found, err := s.Get(c, "h-2", &r); err != nil || !found || string(r.Result) != `"alive"` {
		t.Fatalf("result of h-2 put by its owner: %v %q %v", found, r.Result, err)
	}
}

// testClaimToken: a claim sent again with its token (its reply was lost) returns the tasks it
// took, those still held, and takes no more; another token takes the next ones.
func testClaimToken(t *testing.T, open Opener) {
	s := openStore(t, open, store.Options{})
	c := ctx(t)
	enqueue(t, s, sampleTasks("q", 5)...)
	first, err := s.Claim(c, "q", "b", "tok-1", 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantIDs(t, first, "q-0", "q-1")
	again, err := s.Claim(c, "q", "b", "tok-1", 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantIDs(t, again, "q-0", "q-1")
	equalTask(t, again[1], first[1])
	if err := s.Ack(c, "b", "q-0"); err != nil {
		t.Fatal(err)
	}
	again, err = s.Claim(c, "q", "b", "tok-1", 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantIDs(t, again, "q-1")
	next, err := s.Claim(c, "q", "b", "tok-2", 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantIDs(t, next, "q-2", "q-3")
}

func testInvalid(t *testing.T, open Opener) {
	s := openStore(t, open, store.Options{})
	c := ctx(t)
	var dst store.Result
	_ = dst
	cases := []struct {
		name string
		err  error
	}{
		{"Put ttl 0", s.Put(c, 0, store.Result{ID: "x"})},
		{"Put empty id", s.Put(c, time.Minute, store.Result{State: store.StateSuccess})},
		{"Claim n 0", func() error { _, err := s.Claim(c, "q", "o", "", 0, nil); return err }()},
		{"Claim empty queue", func() error { _, err := s.Claim(c, "", "o", "", 1, nil); return err }()},
		{"Claim empty owner", func() error { _, err := s.Claim(c, "q", "", "", 1, nil); return err }()},
		{"Renew empty owner", s.Renew(c, "")},
		{"Hold empty owner", s.Hold(c, "", store.Task{ID: "x", Queue: "q"})},
		{"Hold empty id", s.Hold(c, "o", store.Task{ID: "x", Queue: "q"}, store.Task{Queue: "q"})},
		{"Hold empty queue", s.Hold(c, "o", store.Task{ID: "x"})},
		{"Locate empty id", func() error { _, _, err := s.Locate(c, ""); return err }()},
		{"SetRunning empty owner", s.SetRunning(c, "", true, "x")},
	}
	for _, tc := range cases {
		if !errors.Is(tc.err, store.ErrInvalid) {
			t.Errorf("%s: %v; want ErrInvalid", tc.name, tc.err)
		}
	}
	wantWhere(t, s, "x", store.WhereNone, "") // the refused Hold stored nothing
}

func testClosed(t *testing.T, open Opener) {
	s := openStore(t, open, store.Options{})
	c := ctx(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var dst store.Result
	_, claimErr := s.Claim(c, "q", "o", "", 1, nil)
	_, getErr := s.Get(c, "x", &dst)
	_, recErr := s.Recover(c, "o")
	_, _, locErr := s.Locate(c, "x")
	for name, err := range map[string]error{
		"Put":        s.Put(c, time.Minute, store.Result{ID: "x"}),
		"Get":        getErr,
		"Wait":       s.Wait(c, "x", &dst),
		"Claim":      claimErr,
		"Ack":        s.Ack(c, "o", "x"),
		"Requeue":    s.Requeue(c, "o", "x"),
		"Renew":      s.Renew(c, "o"),
		"Recover":    recErr,
		"Hold":       s.Hold(c, "o", store.Task{ID: "x", Queue: "q"}),
		"Locate":     locErr,
		"SetRunning": s.SetRunning(c, "o", true, "x"),
	} {
		if !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s after Close: %v; want ErrClosed", name, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// testConcurrency: producers append, consumers (each its own owner) claim, put the result and
// ack, waiters wait for every result; every task is claimed exactly once and every wait ends
// with the right result.
func testConcurrency(t *testing.T, open Opener) {
	s := openStore(t, open, store.Options{})
	c := ctx(t)
	const producers, perProducer, batch, consumers, waiters = 4, 150, 10, 4, 4
	total := producers * perProducer
	var wg sync.WaitGroup
	errs := newErrSink()
	report := errs.report
	for w := 0; w < waiters; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var dst store.Result
			for i := w; i < total; i += waiters * 7 { // a sample of the tasks
				id := fmt.Sprintf("p%d-%d", i%producers, i/producers)
				if err := s.Wait(c, id, &dst); err != nil {
					report(fmt.Errorf("Wait(%s): %w", id, err))
					return
				}
				if string(dst.Result) != `"`+id+`"` {
					report(fmt.Errorf("Wait(%s) read %q", id, dst.Result))
				}
			}
		}()
	}
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perProducer; i += batch {
				ts := make([]store.Task, batch)
				for j := range ts {
					ts[j] = store.Task{ID: fmt.Sprintf("p%d-%d", p, i+j), Queue: "q", Method: "m", Params: []byte(`[1]`)}
				}
				if err := s.Hold(c, fmt.Sprintf("producer-%d", p), ts...); err != nil {
					report(err)
					return
				}
				if _, err := s.Recover(c, fmt.Sprintf("producer-%d", p)); err != nil {
					report(err)
					return
				}
			}
		}()
	}
	var mu sync.Mutex
	seen := make(map[string]int, total)
	done := 0
	for k := 0; k < consumers; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprintf("consumer-%d", k)
			var buf []store.Task
			rs := make([]store.Result, 0, 16)
			for {
				mu.Lock()
				finished := done == total
				mu.Unlock()
				if finished || c.Err() != nil {
					return
				}
				var err error
				buf, err = s.Claim(c, "q", owner, "", 16, buf[:0])
				if err != nil {
					report(err)
					return
				}
				if len(buf) == 0 {
					runtime.Gosched() // let the producers run
					continue
				}
				rs = rs[:0]
				ackIDs := make([]string, len(buf))
				for i, tk := range buf {
					rs = append(rs, store.Result{ID: tk.ID, State: store.StateSuccess, Result: []byte(`"` + tk.ID + `"`)})
					ackIDs[i] = tk.ID
				}
				if err := s.Put(c, time.Minute, rs...); err != nil {
					report(err)
					return
				}
				if err := s.Ack(c, owner, ackIDs...); err != nil {
					report(err)
					return
				}
				mu.Lock()
				for _, id := range ackIDs {
					seen[id]++
				}
				done += len(ackIDs)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	errs.check(t)
	if len(seen) != total {
		t.Fatalf("claimed %d distinct tasks, want %d", len(seen), total)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("task %s claimed %d times", id, n)
		}
	}
	wantIDs(t, claimIDs(t, s, "q", "last", 10))
}

// errSink gathers errors from a test's goroutines (the first 64; the rest add nothing) for the
// test's own goroutine to report once they are done.
type errSink chan error

func newErrSink() errSink { return make(errSink, 64) }

func (e errSink) report(err error) {
	select {
	case e <- err:
	default:
	}
}

// check reports every error gathered; call it once the goroutines are done.
func (e errSink) check(t *testing.T) {
	t.Helper()
	close(e)
	for err := range e {
		t.Error(err)
	}
}

// testConcurrentHoldAck: many goroutines (a few owners, shared) hold tasks, locate them and
// ack them, as a durable broker does per accepted task; others claim from the same queue
// meanwhile. Every held task is where Hold put it until its Ack, and nothing is left after.
func testConcurrentHoldAck(t *testing.T, open Opener) {
	s := openStore(t, open, store.Options{})
	c := ctx(t)
	const goroutines, perG, owners = 16, 40, 4
	var wg sync.WaitGroup
	errs := newErrSink()
	report := errs.report
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprintf("broker-%d", g%owners)
			for i := 0; i < perG; {
				n := 1 + (g+i)%3 // batches of 1 to 3
				ts := make([]store.Task, 0, n)
				ids := make([]string, 0, n)
				for ; len(ts) < n && i < perG; i++ {
					id := fmt.Sprintf("g%d-%d", g, i)
					ts = append(ts, store.Task{ID: id, Queue: "q", Method: "m", Params: []byte(`[1]`)})
					ids = append(ids, id)
				}
				if err := s.Hold(c, owner, ts...); err != nil {
					report(fmt.Errorf("hold: %w", err))
					return
				}
				for _, id := range ids {
					where, o, err := s.Locate(c, id)
					if err != nil || where != store.WhereHeld || o != owner {
						report(fmt.Errorf("locate(%s) after Hold = %v, %q, %v; want held by %s", id, where, o, err, owner))
						return
					}
				}
				if err := s.Ack(c, owner, ids...); err != nil {
					report(fmt.Errorf("ack: %w", err))
					return
				}
			}
		}()
	}
	// A claimer on the same queue must never see a held task.
	stop := make(chan struct{})
	claimerDone := make(chan struct{})
	go func() {
		defer close(claimerDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			got, err := s.Claim(c, "q", "claimer", "", 8, nil)
			if err != nil {
				report(fmt.Errorf("claim: %w", err))
				return
			}
			if len(got) > 0 {
				report(fmt.Errorf("claim took held tasks %v", ids(got)))
				return
			}
			runtime.Gosched() // let the holders run
		}
	}()
	wg.Wait()
	close(stop)
	<-claimerDone
	errs.check(t)
	for g := 0; g < goroutines; g++ {
		for _, i := range []int{0, perG - 1} {
			wantWhere(t, s, fmt.Sprintf("g%d-%d", g, i), store.WhereNone, "")
		}
	}
	for o := 0; o < owners; o++ {
		if n, err := s.Recover(c, fmt.Sprintf("broker-%d", o)); err != nil || n != 0 {
			t.Fatalf("Recover(broker-%d) after every ack = %d, %v; want 0", o, n, err)
		}
	}
	wantIDs(t, claimIDs(t, s, "q", "last", 10))
}

// keyed returns a task held under idempotency key key for ttl.
func keyed(id, key string, ttl time.Duration) store.Task {
	return store.Task{ID: id, Queue: "q", Method: "m", Key: key, KeyTTL: ttl}
}

// testHoldKeys: a Hold of a task whose key is bound to another task stores nothing and names
// that task in Bound, within one call and across calls and owners; the same id again is not
// a conflict; tasks without a key are not affected.
func testHoldKeys(t *testing.T, open Opener) {
	s := openStore(t, open, store.Options{})
	c := ctx(t)
	first := []store.Task{keyed("k-1", "order-17", time.Hour), keyed("k-2", "order-17", time.Hour), {ID: "plain", Queue: "q", Method: "m"}}
	if err := s.Hold(c, "A", first...); err != nil {
		t.Fatal(err)
	}
	if first[0].Bound != "" || first[1].Bound != "k-1" || first[2].Bound != "" {
		t.Fatalf("Bound after the first Hold: %q %q %q, want \"\" \"k-1\" \"\"", first[0].Bound, first[1].Bound, first[2].Bound)
	}
	wantWhere(t, s, "k-1", store.WhereHeld, "A")
	wantWhere(t, s, "k-2", store.WhereNone, "")
	wantWhere(t, s, "plain", store.WhereHeld, "A")
	// Another owner, another id, the same key: refused while k-1 is held, and while its result
	// is kept after its ack.
	again := []store.Task{keyed("k-3", "order-17", time.Hour), keyed("k-1", "order-17", time.Hour), keyed("k-4", "order-18", time.Hour)}
	if err := s.Hold(c, "B", again...); err != nil {
		t.Fatal(err)
	}
	if again[0].Bound != "k-1" || again[1].Bound != "" || again[2].Bound != "" {
		t.Fatalf("Bound after the second Hold: %q %q %q, want \"k-1\" \"\" \"\"", again[0].Bound, again[1].Bound, again[2].Bound)
	}
	wantWhere(t, s, "k-1", store.WhereHeld, "A") // an id already held stays as it is
	wantWhere(t, s, "k-3", store.WhereNone, "")
	wantWhere(t, s, "k-4", store.WhereHeld, "B")
	if err := s.Put(c, time.Hour, store.Result{ID: "k-1", State: store.StateSuccess, Key: "order-17"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(c, "A", "k-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(c, "B", "k-4"); err != nil {
		t.Fatal(err)
	}
	late := []store.Task{keyed("k-5", "order-17", time.Hour), keyed("k-6", "order-18", time.Hour)}
	if err := s.Hold(c, "B", late...); err != nil {
		t.Fatal(err)
	}
	// order-17: k-1's result is kept, the key still names it. order-18: k-4 is gone with no
	// result (as after a write that failed), so its binding is stale and k-6 takes the key.
	if late[0].Bound != "k-1" || late[1].Bound != "" {
		t.Fatalf("Bound after the acks: %q %q, want \"k-1\" \"\"", late[0].Bound, late[1].Bound)
	}
	wantWhere(t, s, "k-6", store.WhereHeld, "B")
	if err := s.Hold(c, "B", store.Task{ID: "k-6", Queue: "q", Key: "order-19"}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("Hold with a key and no KeyTTL: %v, want ErrInvalid", err)
	}
}

// testHoldKeyExpiry: a key bound by a Hold is free again after its KeyTTL.
func testHoldKeyExpiry(t *testing.T, open Opener) {
	s := openStore(t, open, store.Options{})
	c := ctx(t)
	if err := s.Hold(c, "A", keyed("e-1", "k", 150*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() bool {
		ts := []store.Task{keyed(fmt.Sprintf("e-%d", time.Now().UnixNano()), "k", time.Hour)}
		if err := s.Hold(c, "A", ts...); err != nil {
			t.Fatal(err)
		}
		return ts[0].Bound == ""
	}, "key still bound after its 150ms TTL")
}

// testPutKeepsKey: a Put with a Key binds it for the result's TTL (so it outlives a short
// KeyTTL given at Hold), and never takes a key bound to another task.
func testPutKeepsKey(t *testing.T, open Opener) {
	s := openStore(t, open, store.Options{})
	c := ctx(t)
	// ctl is bound with the same short KeyTTL and never put: it tells when that TTL is over.
	if err := s.Hold(c, "A", keyed("p-1", "k", 150*time.Millisecond), keyed("p-2", "other", time.Hour),
		keyed("p-ctl", "ctl", 150*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(c, time.Hour, store.Result{ID: "p-1", State: store.StateSuccess, Key: "k"},
		store.Result{ID: "p-3", State: store.StateSuccess, Key: "other"}); err != nil {
		t.Fatal(err)
	}
	var r store.Result
	if found, err := s.Get(c, "p-1", &r); err != nil || !found || r.Key != "" {
		t.Fatalf("Get p-1: %v %v, Key %q (want found, no key kept in the result)", found, err, r.Key)
	}
	// Once the Hold's 150ms are over (ctl is free again), k still names p-1: the Put
	// extended its binding to an hour.
	n := 0
	testutil.Eventually(t, 5*time.Second, func() bool {
		n++
		ts := []store.Task{keyed(fmt.Sprintf("p-ctl-%d", n), "ctl", time.Hour)}
		if err := s.Hold(c, "B", ts...); err != nil {
			t.Fatal(err)
		}
		return ts[0].Bound == ""
	}, "key ctl still bound after its 150ms KeyTTL")
	ts := []store.Task{keyed("p-4", "k", time.Hour)}
	if err := s.Hold(c, "B", ts...); err != nil {
		t.Fatal(err)
	}
	if ts[0].Bound != "p-1" {
		t.Fatalf("key k bound to %q after the Put and past the Hold's KeyTTL, want p-1", ts[0].Bound)
	}
	ts = []store.Task{keyed("p-5", "other", time.Hour)}
	if err := s.Hold(c, "B", ts...); err != nil {
		t.Fatal(err)
	}
	if ts[0].Bound != "p-2" {
		t.Fatalf("key other bound to %q, want p-2 (a Put of another id does not take it)", ts[0].Bound)
	}
}
