package broker

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/protocol"
	"github.com/zerotask/zerotask/store"
)

// TestDurableSubmitterSurvives: in durable mode a task keeps its submitter across brokers and
// restarts: in the store's copy of the task (claimed by another broker, B cannot read it, A
// can) and in its stored result (read through a third broker: B gets UNKNOWN, A the result).
func TestDurableSubmitterSurvives(t *testing.T) {
	st := storeFor(t)
	w := newCurveKeys(t)
	start := func(owner string) (*Broker, func()) {
		b, err := New(w.config(Config{Listen: "tcp://127.0.0.1:0", Pub: PubDisabled, Store: st, StoreOwner: owner}))
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() { errc <- b.Serve(context.Background()) }()
		return b, func() {
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			if err := b.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			if err := <-errc; !errors.Is(err, ErrServerClosed) {
				t.Fatal(err)
			}
		}
	}
	record := func(p *tpeer, method, id string) map[string]any {
		t.Helper()
		r := decodeResp(t, p.call(`{"jsonrpc":"2.0","id":2,"method":"`+method+`","params":{"id":"`+id+`","wait_ms":50}}`))
		var v map[string]any
		if r.Error != nil || json.Unmarshal(r.Result, &v) != nil {
			t.Fatalf("%s: %+v %s", method, r.Error, r.Result)
		}
		return v
	}

	b1, stop1 := start("b1")
	a1, _ := w.dialTo(t, b1, w.alice)
	r := decodeResp(t, a1.call(`{"jsonrpc":"2.0","id":1,"method":"broker.submit","params":{"method":"secret","params":["s3cr3t"],"key":"order-17"}}`))
	var sub struct{ ID string }
	if r.Error != nil || json.Unmarshal(r.Result, &sub) != nil || sub.ID == "" {
		t.Fatalf("submit: %+v %s", r.Error, r.Result)
	}
	idA := sub.ID
	stop1() // the task stays in the store, queued

	b2, stop2 := start("b2")
	node, _ := w.dialTo(t, b2, w.worker)
	if r := decodeResp(t, node.call(`{"jsonrpc":"2.0","id":"hello","method":"broker.hello","params":{"role":"node","name":"n","methods":["secret"],"concurrency":1}}`)); r.Error != nil {
		t.Fatalf("hello: %+v", r.Error)
	}
	n := &tnode{tpeer: node, name: "n"}
	n.credit(1)
	ts := n.collect(1) // claimed from the store by b2
	a2, _ := w.dialTo(t, b2, w.alice)
	bob2, _ := w.dialTo(t, b2, w.bob)
	for _, m := range []string{protocol.MethodStatus, protocol.MethodRevoke} {
		if st := record(bob2, m, idA)["state"]; st != protocol.StateUnknown {
			t.Fatalf("B's %s of A's claimed task: %v", m, st)
		}
	}
	if rec := record(a2, protocol.MethodStatus, idA); rec["state"] != protocol.StateRunning && rec["state"] != protocol.StateQueued || rec["submitter"] != "alice" {
		t.Fatalf("A's claimed task: %v", rec)
	}
	// B's submit with A's key is another task; A's is the same one.
	r = decodeResp(t, bob2.call(`{"jsonrpc":"2.0","id":1,"method":"broker.submit","params":{"method":"secret","params":[1],"key":"order-17"}}`))
	var dup struct {
		ID        string
		Duplicate bool
	}
	if r.Error != nil || json.Unmarshal(r.Result, &dup) != nil || dup.Duplicate || dup.ID == idA {
		t.Fatalf("B's submit with A's key: %+v %s", r.Error, r.Result)
	}
	r = decodeResp(t, a2.call(`{"jsonrpc":"2.0","id":1,"method":"broker.submit","params":{"method":"secret","params":[1],"key":"order-17"}}`))
	if r.Error != nil || json.Unmarshal(r.Result, &dup) != nil || !dup.Duplicate || dup.ID != idA {
		t.Fatalf("A's submit with its key again: %+v %s", r.Error, r.Result)
	}
	n.result(ts[0].ID, `"answer"`)
	testutil.Eventually(t, wait, func() bool {
		var res store.Result
		ok, err := st.Get(context.Background(), idA, &res)
		return err == nil && ok && res.Submitter == "alice"
	}, "A's result stored with its submitter")
	stop2()

	b3, stop3 := start("b3")
	defer stop3()
	a3, _ := w.dialTo(t, b3, w.alice)
	bob3, _ := w.dialTo(t, b3, w.bob)
	adm3, _ := w.dialTo(t, b3, w.admin)
	for _, m := range []string{protocol.MethodStatus, protocol.MethodResult} {
		if st := record(bob3, m, idA)["state"]; st != protocol.StateUnknown {
			t.Fatalf("B's %s of A's stored result through another broker: %v", m, st)
		}
	}
	for _, p := range []*tpeer{a3, adm3} {
		if rec := record(p, protocol.MethodResult, idA); rec["state"] != protocol.StateSuccess || rec["result"] != "answer" || rec["submitter"] != "alice" {
			t.Fatalf("stored result read by its submitter or an admin: %v", rec)
		}
	}
}

// TestDurableArchivedSubmitter: a failed task's record in the store's archive (read by
// broker.status through another broker once its result is gone) is its submitter's: another
// user without the admin role gets UNKNOWN, the submitter and an admin get the archived record.
func TestDurableArchivedSubmitter(t *testing.T) {
	st := storeFor(t)
	w := newCurveKeys(t)
	start := func(owner string) *Broker {
		b, err := New(w.config(Config{Listen: "tcp://127.0.0.1:0", Pub: PubDisabled, Store: st, StoreOwner: owner}))
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() { errc <- b.Serve(context.Background()) }()
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			if err := b.Shutdown(ctx); err != nil {
				t.Error(err)
			}
			if err := <-errc; !errors.Is(err, ErrServerClosed) {
				t.Error(err)
			}
		})
		return b
	}
	b1 := start("b1")
	node, _ := w.dialTo(t, b1, w.worker)
	if r := decodeResp(t, node.call(`{"jsonrpc":"2.0","id":"hello","method":"broker.hello","params":{"role":"node","name":"n","methods":["secret"],"concurrency":1}}`)); r.Error != nil {
		t.Fatalf("hello: %+v", r.Error)
	}
	n := &tnode{tpeer: node, name: "n"}
	a1, _ := w.dialTo(t, b1, w.alice)
	r := decodeResp(t, a1.call(`{"jsonrpc":"2.0","id":1,"method":"broker.submit","params":{"method":"secret","params":["s3cr3t"]}}`))
	var sub struct{ ID string }
	if r.Error != nil || json.Unmarshal(r.Result, &sub) != nil || sub.ID == "" {
		t.Fatalf("submit: %+v %s", r.Error, r.Result)
	}
	n.credit(1)
	n.fail(n.collect(1)[0].ID, -32050, "boom")
	ctx := context.Background()
	testutil.Eventually(t, wait, func() bool {
		var d store.Dead
		ok, err := st.GetDead(ctx, sub.ID, &d)
		return err == nil && ok
	}, "the failed task archived in the store")
	if err := st.Client().Do(ctx, st.Client().B().Del().Key(testPrefix+"r:"+sub.ID).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	state := func(p *tpeer) (string, bool) {
		t.Helper()
		r := decodeResp(t, p.call(`{"jsonrpc":"2.0","id":2,"method":"broker.status","params":{"id":"`+sub.ID+`"}}`))
		var v struct {
			State    string
			Archived bool
		}
		if r.Error != nil || json.Unmarshal(r.Result, &v) != nil {
			t.Fatalf("status: %+v %s", r.Error, r.Result)
		}
		return v.State, v.Archived
	}
	b2 := start("b2")
	alice, _ := w.dialTo(t, b2, w.alice)
	bob, _ := w.dialTo(t, b2, w.bob)
	adm, _ := w.dialTo(t, b2, w.admin)
	if s, _ := state(bob); s != protocol.StateUnknown {
		t.Fatalf("another user's status of the archived task: %s", s)
	}
	for _, p := range []*tpeer{alice, adm} {
		if s, archived := state(p); s != protocol.StateFailure || !archived {
			t.Fatalf("the submitter's or an admin's status of the archived task: %s, archived %v", s, archived)
		}
	}
}
