package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/protocol"
)

// TestDurableResultWaitOnReleasedTask: a broker.result wait that a client started on a task
// the broker then forgets without finishing it (its run was fenced and dropStored let go of
// the task, which the fence gave back to Redis's queue; or a graceful stop left it to the
// store) goes on against the store, and is never answered UNKNOWN while Redis has the task.
// Before, the wait stayed on the forgotten task in memory and its deadline answered it from
// there: UNKNOWN, for an acknowledged task that then ran to SUCCESS under the broker's next
// run (e2e.TestJepsen "redis maxmemory full" reported 30-40 acknowledged tasks lost so).
func TestDurableResultWaitOnReleasedTask(t *testing.T) {
	for _, where := range []string{"queued", "on a node"} {
		t.Run("lost lease/"+where, func(t *testing.T) { testWaitOnFencedTask(t, where == "on a node") })
	}
	t.Run("graceful stop", testWaitOnStoppedTask)
}

// resultWait sends a broker.result wait of wait on task id.
func resultWait(c *tpeer, reqID int, id string, wait time.Duration) {
	c.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":{%q:%q,%q:%d}}`,
		reqID, protocol.MethodResult, protocol.ParamID, id, protocol.ParamWaitMS, wait.Milliseconds()))
}

// waitingOn reports whether the broker holds at least n broker.result waits in memory.
func waitingOn(b *Broker, n int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.c.store.waiting() >= n
}

// recvRecord reads the answer of a broker.result within d: the task's state and result.
func recvRecord(t *testing.T, c *tpeer, d time.Duration) (string, json.RawMessage) {
	t.Helper()
	deadline := time.Now().Add(d)
	var r resp
	for r.Result == nil && r.Error == nil { // a notification (broker.shutdown) is no answer
		fr, ok := c.tryRecv(time.Until(deadline))
		if !ok {
			t.Fatalf("no answer to the result wait within %v", d)
		}
		r = decodeResp(t, string(fr[len(fr)-1]))
	}
	if r.Error != nil {
		t.Fatalf("result wait answered error %d %s", r.Error.Code, r.Error.Message)
	}
	var rec struct {
		State  string          `json:"state"`
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(r.Result, &rec); err != nil {
		t.Fatalf("record %s: %v", r.Result, err)
	}
	return rec.State, rec.Result
}

func testWaitOnFencedTask(t *testing.T, onNode bool) {
	addr := testutil.StartRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	other := dialLeased(ctx, t, addr, time.Hour)
	cs := &cutStore{Store: dialLeased(ctx, t, addr, time.Second)}
	a := startBroker(t, Config{Store: cs, StoreOwner: "a", Logger: discardLogger()})
	run := a.c.dur.owner()
	n := newNode(t, a, "n1", "work")
	c := dealer(t, a)
	id := submitIDFrom(t, c.call(`{"jsonrpc":"2.0","id":1,"method":"broker.submit","params":{"method":"work","params":["w"]}}`))
	if onNode {
		n.credit(1)
		n.collect(1) // not answered before the fence
	}
	// Longer than the test takes with the fix; without it, the deadline answers UNKNOWN.
	const long = 15 * time.Second
	resultWait(c, 2, id, long)
	testutil.Eventually(t, wait, func() bool { return waitingOn(a, 1) }, "the wait registered on the live task")

	// The run's lease runs out; another broker's claim gives the task back to the queue and
	// fences the run; the broker forgets the task and goes on under a new run.
	fenceByClaim(ctx, t, a, &cs.cut, other, run)

	// The new run claims the task back for the node, which answers it: the wait that began
	// before the fence is answered with that result.
	n.credit(1)
	var got []ntask
	for len(got) == 0 {
		fr, ok := n.tryRecv(wait)
		if !ok {
			t.Fatal("the task was not claimed back for the node")
		}
		got = parseTasks(t, fr[len(fr)-1])
	}
	n.result(got[0].ID, `"done"`)
	state, result := recvRecord(t, c, long+wait)
	if state != protocol.StateSuccess || string(result) != `"done"` {
		t.Fatalf("the wait begun before the fence answered %s %s, want SUCCESS \"done\"", state, result)
	}
}

func testWaitOnStoppedTask(t *testing.T) {
	st := storeFor(t)
	a, errc := serveDurable(t, st, "a")
	c := dealer(t, a)
	id := submitIDFrom(t, c.call(`{"jsonrpc":"2.0","id":1,"method":"broker.submit","params":{"method":"work","params":["w"]}}`))
	resultWait(c, 2, id, time.Minute)
	testutil.Eventually(t, wait, func() bool { return waitingOn(a, 1) }, "the wait registered on the queued task")
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := a.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrServerClosed) {
		t.Fatal(err)
	}
	// The task stays in Redis for the next run or another broker: the wait says so.
	if state, _ := recvRecord(t, c, wait); state != protocol.StateQueued {
		t.Fatalf("the wait on a task left to the store at the stop answered %s, want %s", state, protocol.StateQueued)
	}
	if n := queuedLen(t, st, "work"); n != 1 {
		t.Fatalf("%d tasks in the store's queue after the stop, want 1", n)
	}
}
