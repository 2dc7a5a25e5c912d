package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

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

// TestDurableArchive: on a durable broker a task that fails 3 times is archived in the store
// with its params, options and 3 errors, listed under its id by this broker, after its
// restart, and by another broker on the same store (with the live tasks first when no state is
// given); broker.requeue through the other broker runs it again under its id (its FAILURE
// forgotten) and it succeeds; a filter requeues an expired and a revoked task.
func TestDurableArchive(t *testing.T) {
	st := storeFor(t)
	b1, errc := serveDurable(t, st, "a1")
	c := dealer(t, b1)
	n := newNodeQueues(t, b1, "n1", []string{"q1"}, "work")
	id := submitID(t, c, "work", `["again"]`, `"max_attempts":3,"backoff_ms":1,"queue":"q1"`)
	for attempt := 1; attempt <= 3; attempt++ {
		n.credit(1)
		tk := n.collect(1)[0]
		n.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"error":{"code":-32050,"message":"boom %d"},"retry":true}`, tk.ID, attempt))
	}
	waitState(t, c, id, "FAILURE")
	check := func(c *tpeer, filter string) {
		t.Helper()
		var pg listPage
		testutil.Eventually(t, wait, func() bool {
			pg = list(t, c, filter)
			return len(pg.Tasks) == 1
		}, "the failed task archived in the store")
		d := pg.Tasks[0]
		if d.ID != id || !d.Archived || d.Queue != "q1" || string(d.Params) != `["again"]` || d.Attempts != 3 || d.MaxAttempts != 3 || len(d.Errors) != 3 || pg.Cursor != "" {
			t.Fatalf("archived task: %+v", pg)
		}
		for i, e := range d.Errors {
			if e.Attempt != i+1 || e.Node != "n1" || string(e.Error) != fmt.Sprintf(`{"code":-32050,"message":"boom %d"}`, i+1) {
				t.Fatalf("attempt %d: %+v %s", i+1, e, e.Error)
			}
		}
	}
	check(c, `{"state":"FAILURE"}`)
	check(c, `{"queue":"q1","method":"work"}`)
	// Its result gone (past the result TTL), broker.status answers its archived record.
	if err := st.Client().Do(context.Background(), st.Client().B().Del().Key(testPrefix+"r:"+id).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	c3 := dealer(t, startBroker(t, Config{Store: st, StoreOwner: "a3"}))
	if body := c3.call(fmt.Sprintf(`{"jsonrpc":"2.0","id":"st","method":"broker.status","params":{"id":%q}}`, id)); !strings.Contains(body, `"state":"FAILURE"`) || !strings.Contains(body, `"archived":true`) || !strings.Contains(body, `"params":["again"]`) {
		t.Fatalf("status from the archive: %s", body)
	}
	if pg := list(t, c, `{"state":"FAILURE","queue":"other"}`); len(pg.Tasks) != 0 {
		t.Fatalf("filtered out: %+v", pg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := b1.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrServerClosed) {
		t.Fatal(err)
	}

	// After a restart, and through another broker on the store.
	b1 = startBroker(t, Config{Store: st, StoreOwner: "a1"})
	check(dealer(t, b1), `{"state":"FAILURE"}`)
	b2 := startBroker(t, Config{Store: st, StoreOwner: "a2"})
	c2 := dealer(t, b2)
	n2 := newNodeQueues(t, b2, "n2", []string{"q1", "default"}, "work", "gone")
	live := submitID(t, c2, "work", `["live"]`, "")
	pg := list(t, c2, `{"limit":1}`) // the live task first, then a cursor into the archive
	if len(pg.Tasks) != 1 || pg.Tasks[0].ID != live || pg.Cursor == "" {
		t.Fatalf("first page: %+v", pg)
	}
	if pg = list(t, c2, fmt.Sprintf(`{"limit":1,"cursor":%q}`, pg.Cursor)); len(pg.Tasks) != 1 || pg.Tasks[0].ID != id || pg.Cursor != "" {
		t.Fatalf("second page: %+v", pg)
	}
	n2.credit(1)
	n2.result(n2.collect(1)[0].ID, "0")

	r := decodeResp(t, c2.call(fmt.Sprintf(`{"jsonrpc":"2.0","id":"rq","method":"broker.requeue","params":{"ids":[%q,"nosuch"]}}`, id)))
	if r.Error != nil || string(r.Result) != `{"requeued":1}` {
		t.Fatalf("requeue: %+v %s", r.Error, r.Result)
	}
	if pg := list(t, c2, `{"state":"FAILURE"}`); len(pg.Tasks) != 0 {
		t.Fatalf("archive after the requeue: %+v", pg)
	}
	n2.credit(1)
	tk := n2.collect(1)[0]
	if string(tk.Params) != `["again"]` {
		t.Fatalf("requeued task's params %s", tk.Params)
	}
	if st := status(t, c2, id); st.State != "RUNNING" && st.State != "QUEUED" {
		t.Fatalf("requeued task: %+v", st)
	}
	n2.result(tk.ID, "42")
	waitState(t, c2, id, "SUCCESS")
	waitState(t, dealer(t, b1), id, "SUCCESS")

	// An expired and a revoked task; a filter requeues both.
	exp := submitID(t, c2, "gone", "[1]", `"timeout_ms":1`)
	rev := submitID(t, c2, "gone", "[2]", "")
	if got := decodeResp(t, c2.call(fmt.Sprintf(`{"jsonrpc":"2.0","id":"rv","method":"broker.revoke","params":{"id":%q}}`, rev))); got.Error != nil {
		t.Fatalf("revoke: %+v", got.Error)
	}
	waitState(t, c2, exp, "EXPIRED")
	testutil.Eventually(t, wait, func() bool { return len(list(t, c2, `{"method":"gone"}`).Tasks) == 2 }, "both archived")
	r = decodeResp(t, c2.call(`{"jsonrpc":"2.0","id":"rq","method":"broker.requeue","params":{"method":"gone"}}`))
	if r.Error != nil || string(r.Result) != `{"requeued":2}` {
		t.Fatalf("requeue by filter: %+v %s", r.Error, r.Result)
	}

	// broker.purge with "archived" forgets archived tasks of a method, for every broker.
	doomed := submitID(t, c2, "doomed", "[3]", "")
	if got := decodeResp(t, c2.call(fmt.Sprintf(`{"jsonrpc":"2.0","id":"rv","method":"broker.revoke","params":{"id":%q}}`, doomed))); got.Error != nil {
		t.Fatalf("revoke: %+v", got.Error)
	}
	testutil.Eventually(t, wait, func() bool { return len(list(t, c2, `{"method":"doomed"}`).Tasks) == 1 }, "the revoked task archived")
	r = decodeResp(t, c2.call(`{"jsonrpc":"2.0","id":"pg","method":"broker.purge","params":{"method":"doomed","archived":true}}`))
	if r.Error != nil || string(r.Result) != `{"purged":1}` {
		t.Fatalf("purge archived: %+v %s", r.Error, r.Result)
	}
	if pg := list(t, dealer(t, b1), `{"method":"doomed"}`); len(pg.Tasks) != 0 {
		t.Fatalf("archive after the purge: %+v", pg)
	}
}
