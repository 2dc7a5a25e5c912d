package broker

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/protocol"
	"github.com/zerotask/zerotask/store"
)

// TestDurableResultWaitOnGoneTask: a broker.result wait on another broker's task that leaves
// the store without a result while the wait lasts (acked without one, as a refused write is
// undone) ends UNKNOWN, not QUEUED: the task is in no queue and held by nobody.
func TestDurableResultWaitOnGoneTask(t *testing.T) {
	addr := testutil.StartRedis(t)
	raw, st := redisStoreFor(t, addr), redisStoreFor(t, addr)
	ctx := context.Background()
	run, _, err := raw.Register(ctx, "other", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Hold(ctx, run, store.Task{ID: "other-1", Queue: "work", Method: "work", Params: []byte(`[1]`)}); err != nil {
		t.Fatal(err)
	}
	b := startBroker(t, Config{Store: st, StoreOwner: "b", Logger: discardLogger()})
	c := dealer(t, b)
	c.send(`{"jsonrpc":"2.0","id":"w","method":"broker.result","params":{"id":"other-1","wait_ms":1500}}`)
	testutil.Eventually(t, wait, func() bool { return st.Waiting() == 1 }, "the broker waits on the task's result")
	if err := raw.Ack(ctx, run, "other-1"); err != nil { // gone, no result
		t.Fatal(err)
	}
	r := decodeResp(t, c.recv())
	var rec struct{ State string }
	if r.Error != nil || json.Unmarshal(r.Result, &rec) != nil || rec.State != protocol.StateUnknown {
		t.Fatalf("wait on a task gone without a result answered %s %+v; want %s", r.Result, r.Error, protocol.StateUnknown)
	}
}
