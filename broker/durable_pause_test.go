package broker

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/internal/testutil"
)

// TestDurablePauseSurvivesRestart: a queue paused on a durable broker stays paused when the
// broker restarts on the same store (its tasks are kept and not handed out) until it is
// resumed; the resume is written too.
func TestDurablePauseSurvivesRestart(t *testing.T) {
	st := storeFor(t)
	b1, errc := serveDurable(t, st, "p")
	c := dealer(t, b1)
	if r := decodeResp(t, c.call(`{"jsonrpc":"2.0","id":1,"method":"broker.pause","params":{"queue":"default"}}`)); r.Error != nil {
		t.Fatalf("pause: %+v", r.Error)
	}
	id := submitID(t, c, "work", `["paused"]`, "")
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := b1.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrServerClosed) {
		t.Fatal(err)
	}
	if names, err := st.Paused(ctx); err != nil || !slices.Equal(names, []string{"default"}) {
		t.Fatalf("paused in the store: %v, %v", names, err)
	}

	b2 := startBroker(t, Config{Store: st, StoreOwner: "p"})
	n := newNode(t, b2, "n1", "work")
	n.credit(5)
	c2 := dealer(t, b2)
	testutil.Eventually(t, wait, func() bool { return b2.Stats().Queued == 1 }, "the stored task is back in the paused queue")
	n.none()
	if st := status(t, c2, id); st.State != "QUEUED" {
		t.Fatalf("task of the paused queue after the restart: %+v", st)
	}
	if r := decodeResp(t, c2.call(`{"jsonrpc":"2.0","id":2,"method":"broker.resume","params":{"queue":"default"}}`)); r.Error != nil {
		t.Fatalf("resume: %+v", r.Error)
	}
	tk := n.collect(1)[0]
	if string(tk.Params) != `["paused"]` {
		t.Fatalf("handed out %s", tk.Params)
	}
	n.result(tk.ID, "1")
	testutil.Eventually(t, wait, func() bool {
		names, err := st.Paused(ctx)
		return err == nil && len(names) == 0
	}, "the resume written to the store")
}

// TestDurableArchive: on a durable broker a failed task is archived and listed under its id;
// broker.requeue answers -32602 (not served in durable mode yet).
func TestDurableArchive(t *testing.T) {
	st := storeFor(t)
	b := startBroker(t, Config{Store: st, StoreOwner: "rq"})
	c := dealer(t, b)
	n := newNode(t, b, "n1", "work")
	id := submitID(t, c, "work", `["again"]`, "")
	n.credit(1)
	tk := n.collect(1)[0]
	n.fail(tk.ID, -32050, "boom")
	waitState(t, c, id, "FAILURE")
	if pg := list(t, c, `{"state":"FAILURE"}`); len(pg.Tasks) != 1 || pg.Tasks[0].ID != id || string(pg.Tasks[0].Params) != `["again"]` {
		t.Fatalf("archive: %+v", pg)
	}
	if code := errCode(t, c.call(`{"jsonrpc":"2.0","id":"rq","method":"broker.requeue","params":{"ids":["`+id+`"]}}`)); code != codec.CodeInvalidParams {
		t.Fatalf("requeue on a durable broker: code %d", code)
	}
}
