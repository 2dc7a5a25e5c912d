package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/store"
)

// raceStore holds back the reply of one Claim or Hold that Redis took (when armed) until the
// test releases it, and cuts the lease renewals while cut: a broker whose write landed just
// before its run was fenced, and which reads the reply only after it learned of the fence.
type raceStore struct {
	store.Store
	cut               atomic.Bool
	armClaim, armHold atomic.Bool
	entered, released chan struct{}
}

func newRaceStore(st store.Store) *raceStore {
	return &raceStore{Store: st, entered: make(chan struct{}, 1), released: make(chan struct{})}
}

func (s *raceStore) Lease() time.Duration { return s.Store.(*store.Redis).Lease() }

func (s *raceStore) Renew(ctx context.Context, owner string) error {
	if s.cut.Load() {
		return errCut
	}
	return s.Store.Renew(ctx, owner)
}

func (s *raceStore) Claim(ctx context.Context, queue, owner, token string, n int, dst []store.Task) ([]store.Task, error) {
	got, err := s.Store.Claim(ctx, queue, owner, token, n, dst)
	if err == nil && len(got) > len(dst) && s.armClaim.CompareAndSwap(true, false) {
		s.entered <- struct{}{}
		<-s.released
	}
	return got, err
}

func (s *raceStore) Hold(ctx context.Context, owner string, tasks ...store.Task) error {
	err := s.Store.Hold(ctx, owner, tasks...)
	if err == nil && s.armHold.CompareAndSwap(true, false) {
		s.entered <- struct{}{}
		<-s.released
	}
	return err
}

// TestDurableStaleWriteAfterFence: a claim or a hold that Redis took under a run, whose reply
// the broker reads only after that run was fenced (its tasks given back to the queue) and it
// went on under a new run, is not taken in under the new run: those tasks are Redis's queue's
// now. Taken in, they ran with results the store does not write (the task is not the new
// run's) and acks that forgot them unrun from the queue: acknowledged tasks lost (seen in
// e2e.TestJepsen "redis clock jump 2 min each way"). Every task ends SUCCESS in Redis. The
// same for a workflow whose coordinator is that write: the graph is not started under the
// new run (its coordinator is back in the workflow queue, and an ack of it would forget it
// unrun); the graph runs from there and its record ends SUCCESS.
func TestDurableStaleWriteAfterFence(t *testing.T) {
	for _, which := range []string{"claim", "hold", "workflow", "running workflow"} {
		t.Run(which, func(t *testing.T) { testStaleWriteAfterFence(t, which) })
	}
}

func testStaleWriteAfterFence(t *testing.T, which string) {
	addr := testutil.StartRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	other := dialLeased(ctx, t, addr, time.Hour)
	var ids []string
	if which == "claim" { // submitted tasks a dead run left in the queue, for the broker to claim
		run, _, err := other.Register(ctx, "gone", false)
		if err != nil {
			t.Fatal(err)
		}
		meta := (&core{opts: map[uint32]taskOpts{}}).appendMeta(nil, 0, &task{flags: fSubmitted}, holdEntry{})
		for i := range 5 {
			id := fmt.Sprintf("gone-%d", i)
			ids = append(ids, id)
			if err := other.Hold(ctx, run, store.Task{ID: id, Queue: "work", Method: "work", Params: []byte(fmt.Sprintf("[%d]", i)), Meta: meta}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := other.Recover(ctx, run); err != nil {
			t.Fatal(err)
		}
	}
	rs := newRaceStore(dialLeased(ctx, t, addr, time.Second))
	a := startBroker(t, Config{Store: rs, StoreOwner: "a", Logger: discardLogger()})
	run := a.c.dur.owner()
	n := newNode(t, a, "n1", "work")
	c := dealer(t, a)
	switch which {
	case "claim":
		rs.armClaim.Store(true)
		n.credit(5)
	case "hold":
		rs.armHold.Store(true)
		c.send(`{"jsonrpc":"2.0","id":1,"method":"broker.submit","params":{"method":"work","params":["held"]}}`)
	case "workflow": // the graph's coordinator is the write that lands under the lost run
		rs.armHold.Store(true)
		c.send(`{"jsonrpc":"2.0","id":1,"method":"broker.submit","params":{"workflow":{"group":[{"method":"work","params":["g0"]},{"method":"work","params":["g1"]}]}}}`)
	case "running workflow": // a graph with a step on the node when the run is lost
		ids = append(ids, submitIDFrom(t, c.call(`{"jsonrpc":"2.0","id":1,"method":"broker.submit","params":{"workflow":{"chain":[{"method":"work","params":["s0"]},{"method":"work","params":["s1"]}]}}}`)))
		n.credit(1)
		n.collect(1) // s0, not answered before the fence
	}
	if which != "running workflow" {
		select {
		case <-rs.entered:
		case <-ctx.Done():
			t.Fatalf("no %s landed", which)
		}
	}
	fenceByClaim(ctx, t, a, &rs.cut, other, run)
	close(rs.released) // now the reply of the write made under the lost run (if one waits)
	switch which {
	case "hold":
		ids = append(ids, submitIDFrom(t, c.recv()))
		n.credit(1)
	case "workflow": // accepted (it is in Redis); the graph ends SUCCESS, its record stored
		ids = append(ids, submitIDFrom(t, c.recv()))
		n.credit(10)
	case "running workflow":
		n.credit(10)
	}
	// The node answers whatever it is given; every task ends SUCCESS in Redis.
	done := func() bool {
		for _, id := range ids {
			if r, ok := getResult(t, other, id); !ok || r.State != store.StateSuccess {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(20 * time.Second)
	for !done() {
		if time.Now().After(deadline) {
			for _, id := range ids {
				r, ok := getResult(t, other, id)
				w, owner, _ := other.Locate(ctx, id)
				t.Errorf("%s: result stored %v (%s), in the store %v by %q", id, ok, r.State, w, owner)
			}
			t.Fatalf("acknowledged tasks did not end SUCCESS after a %s landed under a run fenced since", which)
		}
		if fr, ok := n.tryRecv(50 * time.Millisecond); ok {
			for _, tk := range parseTasks(t, fr[len(fr)-1]) {
				n.result(tk.ID, "1")
			}
		}
	}
}

// submitIDFrom reads the task id of a broker.submit answer.
func submitIDFrom(t testing.TB, body string) string {
	t.Helper()
	r := decodeResp(t, body)
	var v struct{ ID string }
	if r.Error != nil || json.Unmarshal(r.Result, &v) != nil || v.ID == "" {
		t.Fatalf("submit answered %s %+v", r.Result, r.Error)
	}
	return v.ID
}

// fenceByClaim lets run's lease run out (cut stops its renewals from reaching Redis), has
// other, a second broker's store, claim so that Redis gives the run's tasks back to the queue
// and fences it, then lets the renewals through again: the next one is refused as fenced, and
// the test waits until b knows it lost run and goes on under a new one.
func fenceByClaim(ctx context.Context, t *testing.T, b *Broker, cut *atomic.Bool, other *store.Redis, run string) {
	t.Helper()
	cut.Store(true)
	orun, _, err := other.Register(ctx, "b", false)
	if err != nil {
		t.Fatal(err)
	}
	rc := other.Client()
	testutil.Eventually(t, 10*time.Second, func() bool {
		if _, err := other.Claim(ctx, "elsewhere", orun, "", 1, nil); err != nil {
			t.Fatal(err)
		}
		_, err := rc.Do(ctx, rc.B().Zscore().Key(testPrefix+"fenced").Member(run).Build()).ToFloat64()
		return err == nil
	}, "run %s fenced after its lease", run)
	cut.Store(false)
	testutil.Eventually(t, 10*time.Second, func() bool { return b.c.dur.owner() != run }, "the broker learns it lost %s", run)
}
