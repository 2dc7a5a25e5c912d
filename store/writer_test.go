package store

import (
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/testutil"
)

// TestWriterFlushOrder: one flush holding every kind of op, handed over in an order unlike
// the pipeline's, runs put, hold, ack in that order: an Ack gathered with the Hold of the
// same id forgets the task, and each op gets its own answer.
func TestWriterFlushOrder(t *testing.T) {
	addr := testutil.StartRedis(t)
	ctx := testutil.Context(t, 30*time.Second)
	r, err := DialRedis(ctx, "redis://"+addr+"/0", Options{Prefix: "order:"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	mk := func(kind int, owner string, tasks ...Task) *wop {
		op := acquireOp(kind)
		op.owner = owner
		for i := range tasks {
			op.buf = appendHeld(op.buf, i+1, &tasks[i], time.Now())
			op.ends = append(op.ends, len(op.buf))
			op.ids = append(op.ids, tasks[i].ID)
		}
		op.n = len(tasks)
		return op
	}
	ack := func(ids ...string) *wop {
		op := acquireOp(opAck)
		op.owner = "A"
		op.ids = append(op.ids, ids...)
		op.n = len(ids)
		return op
	}
	put := acquireOp(opPut)
	put.ttl = "60000"
	put.buf = appendResult(put.buf, &Result{ID: "r1", State: StateSuccess, Result: []byte(`1`)})
	put.ends = append(put.ends, len(put.buf))
	put.ids = append(put.ids, "r1")
	put.n = 1

	task := func(id string) Task { return Task{ID: id, Queue: "q", Method: "m"} }
	ops := []*wop{
		ack("held-then-acked"),
		mk(opHold, "A", task("held-then-acked"), task("held")),
		put,
		mk(opHold, "B", task("held-b"), task("held")), // "held" is A's already
	}
	w := &writer{r: r}
	w.batch = append(w.batch, ops...)
	w.flush(ctx)
	for i, op := range ops {
		err := <-op.done
		if err != nil {
			t.Fatalf("op %d (kind %d) answered %v", i, op.kind, err)
		}
	}
	for id, want := range map[string]struct {
		where Where
		owner string
	}{
		"held-then-acked": {WhereNone, ""},
		"held":            {WhereHeld, "A"},
		"held-b":          {WhereHeld, "B"},
	} {
		where, owner, err := r.Locate(ctx, id)
		if err != nil || where != want.where || owner != want.owner {
			t.Errorf("Locate(%s) = %v, %q, %v; want %v, %q", id, where, owner, err, want.where, want.owner)
		}
	}
	var dst Result
	if ok, err := r.Get(ctx, "r1", &dst); !ok || err != nil {
		t.Fatalf("Get(r1) = %v, %v", ok, err)
	}
	// Both owners' leases were renewed by the hold script.
	c := r.Client()
	for _, o := range []string{"A", "B"} {
		if _, err := c.Do(ctx, c.B().Zscore().Key("order:owners").Member(o).Build()).AsFloat64(); err != nil {
			t.Fatalf("owner %s has no lease: %v", o, err)
		}
	}
}
