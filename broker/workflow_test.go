package broker

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/zerotask/zerotask/protocol"
)

// submitGraph sends broker.submit with a graph and extra params members, returning the reply.
func submitGraph(p *tpeer, graph, extra string) string {
	p.t.Helper()
	return p.call(`{"jsonrpc":"2.0","id":1,"method":"broker.submit","params":{"workflow":` + graph + extra + `}}`)
}

// flowRecord is a graph's record as broker.status answers it.
type flowRecord struct {
	ID       string          `json:"id"`
	Method   string          `json:"method"`
	Workflow bool            `json:"workflow"`
	State    string          `json:"state"`
	Policy   string          `json:"policy"`
	Counts   map[string]int  `json:"counts"`
	Result   json.RawMessage `json:"result"`
	Omitted  bool            `json:"steps_omitted"`
	Steps    []struct {
		ID     string `json:"id"`
		Method string `json:"method"`
		State  string `json:"state"`
	} `json:"steps"`
}

func graphStatus(t *testing.T, p *tpeer, id string) flowRecord {
	t.Helper()
	r := decodeResp(t, p.call(`{"jsonrpc":"2.0","id":2,"method":"broker.status","params":{"id":"`+id+`"}}`))
	var rec flowRecord
	if r.Error != nil || json.Unmarshal(r.Result, &rec) != nil {
		t.Fatalf("status: %+v", r)
	}
	return rec
}

// graphOf returns a group of n tasks of method m.
func groupOf(n int, m string) string {
	s := make([]string, n)
	for i := range s {
		s[i] = `{"method":"` + m + `","params":[` + fmt.Sprint(i) + `]}`
	}
	return `{"group":[` + strings.Join(s, ",") + `]}`
}

// nested returns a graph nested depth levels deep (chains of one step around a task).
func nested(depth int) string {
	g := `{"method":"m"}`
	for range depth - 1 {
		g = `{"chain":[` + g + `]}`
	}
	return g
}

// TestWorkflowRefused: graphs that are not valid, or past a bound, are refused whole (-32602
// or CodeQueueFull) and nothing of them is queued; graphs at each bound are accepted.
func TestWorkflowRefused(t *testing.T) {
	b := startBroker(t, Config{MaxWorkflowSteps: 5, MaxWorkflowDepth: 4, MaxQueued: 6, MaxWorkflows: 3})
	c := dealer(t, b)
	for _, tc := range []struct {
		name, graph, extra string
		code               int
	}{
		{"not an object", `[1]`, ``, -32602},
		{"empty chain", `{"chain":[]}`, ``, -32602},
		{"empty group", `{"group":[]}`, ``, -32602},
		{"method and chain", `{"method":"m","chain":[{"method":"m"}]}`, ``, -32602},
		{"callback without group", `{"chain":[{"method":"m"}],"callback":{"method":"m"}}`, ``, -32602},
		{"no kind", `{"params":[1]}`, ``, -32602},
		{"a broker method", `{"method":"broker.stats"}`, ``, -32602},
		{"params not an array", `{"method":"m","params":1}`, ``, -32602},
		{"object params where a result comes", `{"chain":[{"method":"m"},{"method":"m","params":{"a":1}}]}`, ``, -32602},
		{"a key on a step", `{"method":"m","key":"k"}`, ``, -32602},
		{"a bad step option", `{"method":"m","priority":99}`, ``, -32602},
		{"a bad policy", `{"method":"m"}`, `,"policy":"sometimes"`, -32602},
		{"steps past the bound", groupOf(6, "m"), ``, -32602},
		{"a chord's steps past the bound", `{"group":[{"method":"m"},{"method":"m"},{"method":"m"},{"method":"m"},{"method":"m"}],"callback":{"method":"m"}}`, ``, -32602},
		{"depth past the bound", nested(5), ``, -32602},
		{"steps past the bound in a chain of groups", `{"chain":[` + groupOf(5, "m") + `,` + groupOf(1, "m") + `]}`, ``, -32602},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code := errCode(t, submitGraph(c, tc.graph, tc.extra)); code != tc.code {
				t.Fatalf("code %d, want %d", code, tc.code)
			}
			if st := b.Stats(); st.Queued != 0 || st.Submitted != 0 {
				t.Fatalf("a refused graph left %d queued, %d submitted", st.Queued, st.Submitted)
			}
		})
	}
	// At the bounds: 5 steps, 4 levels, and 6 queued in all.
	ids := make([]string, 0, 3)
	for _, g := range []string{groupOf(5, "m"), nested(4)} {
		r := decodeResp(t, submitGraph(c, g, ``))
		var ans struct{ ID, State string }
		if r.Error != nil || json.Unmarshal(r.Result, &ans) != nil || ans.State != protocol.StateRunning {
			t.Fatalf("graph at the bound refused: %+v", r)
		}
		ids = append(ids, ans.ID)
	}
	if st := b.Stats(); st.Queued != 6 {
		t.Fatalf("%d queued, want 6", st.Queued)
	}
	// MaxQueued is reached: a graph whose first step would wait is refused whole.
	if code := errCode(t, submitGraph(c, `{"method":"m"}`, ``)); code != protocol.CodeQueueFull {
		t.Fatalf("past MaxQueued: code %d", code)
	}
	rec := graphStatus(t, c, ids[0])
	if !rec.Workflow || rec.Method != protocol.WorkflowMethod || rec.State != protocol.StateRunning || rec.Policy != protocol.PolicyFailFast ||
		len(rec.Steps) != 5 || rec.Counts[protocol.StateQueued] != 5 || rec.Steps[4].ID == "" || rec.Steps[4].Method != "m" {
		t.Fatalf("record %+v", rec)
	}
	// MaxWorkflows: revoke both (they stay known), and a third graph fits, a fourth does not.
	for _, id := range ids {
		c.call(`{"jsonrpc":"2.0","id":3,"method":"broker.revoke","params":{"id":"` + id + `"}}`)
		if rec := graphStatus(t, c, id); rec.State != protocol.StateRevoked || rec.Counts[protocol.StateRevoked] != len(rec.Steps) {
			t.Fatalf("revoked graph: %+v", rec)
		}
	}
	if st := b.Stats(); st.Queued != 0 {
		t.Fatalf("%d queued after the revokes", st.Queued)
	}
	// Finished graphs give way to new ones past MaxWorkflows; running ones do not.
	for i := range 3 {
		if code := errCode(t, submitGraph(c, `{"method":"m"}`, ``)); code != 0 {
			t.Fatalf("graph %d: code %d", i, code)
		}
	}
	if code := errCode(t, submitGraph(c, `{"method":"m"}`, ``)); code != protocol.CodeQueueFull {
		t.Fatalf("past MaxWorkflows: code %d", code)
	}
}

// TestWorkflowStepsRecord: steps not started show PENDING without an id; a chain's next step
// gets its params with the result appended, byte for byte.
func TestWorkflowStepsRecord(t *testing.T) {
	b := startBroker(t, Config{})
	c := dealer(t, b)
	n := newNode(t, b, "n1", "m")
	r := decodeResp(t, submitGraph(c, `{"chain":[{"method":"m","params":[1]},{"method":"m","params":[ "x" , 2 ]},{"method":"m"}]}`, ``))
	var ans struct{ ID string }
	if r.Error != nil || json.Unmarshal(r.Result, &ans) != nil {
		t.Fatalf("submit: %+v", r)
	}
	rec := graphStatus(t, c, ans.ID)
	if len(rec.Steps) != 3 || rec.Steps[1].State != protocol.StatePending || rec.Steps[1].ID != "" || rec.Counts[protocol.StatePending] != 2 {
		t.Fatalf("record %+v", rec)
	}
	n.credit(10)
	for i, want := range []string{`[1]`, `["x" , 2,{"v": [1.50, "\u00e9"]}]`, `[{"v": [1.50, "\u00e9"]}]`} {
		ts := n.collect(1)
		if string(ts[0].Params) != want {
			t.Fatalf("step %d params %s, want %s", i, ts[0].Params, want)
		}
		result := `{"v": [1.50, "\u00e9"]}`
		if i == 2 {
			result = `"done"`
		}
		n.result(ts[0].ID, result)
	}
	r = decodeResp(t, c.call(`{"jsonrpc":"2.0","id":4,"method":"broker.result","params":{"id":"`+ans.ID+`","wait_ms":5000}}`))
	if err := json.Unmarshal(r.Result, &rec); err != nil || rec.State != protocol.StateSuccess || string(rec.Result) != `"done"` {
		t.Fatalf("result %s", r.Result)
	}
}
