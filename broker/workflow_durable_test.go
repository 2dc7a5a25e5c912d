package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/store"
)

// TestDurableWorkflowResumes: a chord whose broker stops with half its members answered is
// resumed by the next run of the same owner: the members with a result in the store do not
// run again, the others do, and the callback runs once with every result in member order.
func TestDurableWorkflowResumes(t *testing.T) {
	st := storeFor(t)
	b1, errc := serveDurable(t, st, "wf")
	c := dealer(t, b1)
	members := make([]string, 6)
	for i := range members {
		members[i] = fmt.Sprintf(`{"method":"m","params":[%d]}`, i)
	}
	graph := `{"group":[` + strings.Join(members, ",") + `],"callback":{"method":"s","params":["cb"]}}`
	r := decodeResp(t, submitGraph(c, graph, `,"key":"resume-1"`))
	var ans struct{ ID, State string }
	if r.Error != nil || json.Unmarshal(r.Result, &ans) != nil || ans.State != "RUNNING" {
		t.Fatalf("submit: %+v", r)
	}
	if w, _, _ := st.Locate(context.Background(), ans.ID); w != store.WhereHeld {
		t.Fatalf("the graph is %v in the store, want held", w)
	}
	n1 := newNode(t, b1, "n1", "m", "s")
	n1.credit(6)
	ts := n1.collect(6)
	for _, tk := range ts[:3] {
		var p []int
		_ = json.Unmarshal(tk.Params, &p)
		n1.result(tk.ID, fmt.Sprintf(`{"r":%d}`, 10*p[0]))
	}
	answered := map[string]bool{}
	for _, tk := range ts[:3] {
		answered[string(tk.Params)] = true
	}
	testutil.Eventually(t, wait, func() bool {
		k := 0
		for i := range 6 {
			if _, ok := getResult(t, st, fmt.Sprintf("%s.%d", ans.ID, i)); ok {
				k++
			}
		}
		return k == 3
	}, "3 member results in the store")
	ctx, cancel := context.WithTimeout(context.Background(), quiet)
	_ = b1.Shutdown(ctx) // the node never answers the other 3: they go back to the store
	cancel()
	if err := <-errc; !errors.Is(err, ErrServerClosed) {
		t.Fatal(err)
	}

	b2 := startBroker(t, Config{Store: st, StoreOwner: "wf"})
	n2 := newNode(t, b2, "n2", "m", "s")
	n2.credit(10)
	ts = n2.collect(3)
	for _, tk := range ts {
		if answered[string(tk.Params)] {
			t.Fatalf("member %s ran again though its result was stored", tk.Params)
		}
		var p []int
		_ = json.Unmarshal(tk.Params, &p)
		n2.result(tk.ID, fmt.Sprintf(`{"r":%d}`, 10*p[0]))
	}
	cb := n2.collect(1)
	if cb[0].Method != "s" || string(cb[0].Params) != `["cb",[{"r":0},{"r":10},{"r":20},{"r":30},{"r":40},{"r":50}]]` {
		t.Fatalf("callback %s %s", cb[0].Method, cb[0].Params)
	}
	n2.result(cb[0].ID, `"total"`)
	c2 := dealer(t, b2)
	r = decodeResp(t, c2.call(`{"jsonrpc":"2.0","id":4,"method":"broker.result","params":{"id":"`+ans.ID+`","wait_ms":5000}}`))
	var rec flowRecord
	if json.Unmarshal(r.Result, &rec) != nil || rec.State != "SUCCESS" || string(rec.Result) != `"total"` || rec.Counts["SUCCESS"] != 7 {
		t.Fatalf("graph after the restart: %s", r.Result)
	}
	testutil.Eventually(t, wait, func() bool {
		res, ok := getResult(t, st, ans.ID)
		w, _, _ := st.Locate(context.Background(), ans.ID)
		return ok && string(res.Result) == `"total"` && w == store.WhereNone
	}, "the graph's result stored and the graph acked")
	// The key still names the graph.
	r = decodeResp(t, submitGraph(c2, graph, `,"key":"resume-1"`))
	if !strings.Contains(string(r.Result), `"id":"`+ans.ID+`"`) || !strings.Contains(string(r.Result), `"duplicate":true`) {
		t.Fatalf("same key after the restart: %s", r.Result)
	}
	n2.none()
}
