package broker

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/zmtp"
)

// TestTaskCallRouted: a plain JSON-RPC call goes to a node serving its method and the node's
// answer comes back with the client's own id, byte for byte.
func TestTaskCallRouted(t *testing.T) {
	b := startBroker(t, Config{})
	n := newNode(t, b, "n1", "add")
	n.credit(100)
	c := dealer(t, b)
	ids := []struct{ name, id string }{
		{"int", `1`},
		{"string", `"abc"`},
		{"fraction", `1.50`},
		{"exponent", `-1.5e3`},
		{"unicode string", `"é\u00e9"`},
		{"large int", `123456789012345678901234567890`},
		{"null", `null`},
	}
	for _, tc := range ids {
		t.Run(tc.name, func(t *testing.T) {
			c.send(`{"jsonrpc":"2.0","id":` + tc.id + `,"method":"add","params":[5,6]}`)
			ts := n.collect(1)
			if ts[0].Method != "add" || string(ts[0].Params) != "[5,6]" {
				t.Fatalf("node got %+v", ts[0])
			}
			n.result(ts[0].ID, "11")
			got := c.recv()
			want := `{"jsonrpc":"2.0","id":` + tc.id + `,"result":11}`
			if got != want {
				t.Fatalf("reply %s, want %s", got, want)
			}
		})
	}
	t.Run("error from the node", func(t *testing.T) {
		c.send(`{"jsonrpc":"2.0","id":7,"method":"add","params":[1]}`)
		ts := n.collect(1)
		n.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"error":{"code":-32602,"message":"want 2","data":{"x":1}}}`, ts[0].ID))
		got := c.recv()
		want := `{"jsonrpc":"2.0","id":7,"error":{"code":-32602,"message":"want 2","data":{"x":1}}}`
		if got != want {
			t.Fatalf("reply %s, want %s", got, want)
		}
	})
	t.Run("escaped method name", func(t *testing.T) {
		c.send(`{"jsonrpc":"2.0","id":10,"method":"ad\u0064","params":[1,1]}`)
		c.send(`[{"jsonrpc":"2.0","id":11,"method":"\u0061dd","params":[2,2]}]`)
		ts := n.collect(2)
		for _, tk := range ts {
			if tk.Method != "add" {
				t.Fatalf("method %q", tk.Method)
			}
			n.result(tk.ID, "0")
		}
		c.recv()
		c.recv()
	})
	t.Run("params absent and named", func(t *testing.T) {
		c.send(`{"jsonrpc":"2.0","id":8,"method":"add"}`)
		c.send(`{"jsonrpc":"2.0","id":9,"method":"add","params":{"a":1,"b":2}}`)
		ts := n.collect(2)
		if ts[0].Params != nil || string(ts[1].Params) != `{"a":1,"b":2}` {
			t.Fatalf("params %s, %s", ts[0].Params, ts[1].Params)
		}
		n.result(ts[0].ID, "0")
		n.result(ts[1].ID, "3")
		got := []string{c.recv(), c.recv()}
		sort.Strings(got)
		if got[0] != `{"jsonrpc":"2.0","id":8,"result":0}` || got[1] != `{"jsonrpc":"2.0","id":9,"result":3}` {
			t.Fatalf("replies %q", got)
		}
	})
	if s := b.Stats(); s.Succeeded != uint64(len(ids))+4 || s.Failed != 1 || s.Queued != 0 || s.Running != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// TestNotificationNotAnswered: a notification is run and never answered, even on failure.
func TestNotificationNotAnswered(t *testing.T) {
	b := startBroker(t, Config{})
	n := newNode(t, b, "n1", "add")
	n.credit(10)
	c := dealer(t, b)
	c.send(`{"jsonrpc":"2.0","method":"add","params":[1,2]}`)
	ts := n.collect(1)
	n.fail(ts[0].ID, -1, "boom")
	c.send(`{"jsonrpc":"2.0","method":"broker.ping"}`)
	c.send(`{"jsonrpc":"2.0","method":"broker.nosuch"}`)
	c.none()
	testutil.Eventually(t, wait, func() bool { return b.Stats().Failed == 1 }, "failure counted")
}

// TestREQClient: a REQ socket works (the empty delimiter frame is echoed).
func TestREQClient(t *testing.T) {
	b := startBroker(t, Config{})
	n := newNode(t, b, "n1", "add")
	n.credit(10)
	r := dialPeer(t, b, zmtp.Req, "")
	for i := 0; i < 3; i++ {
		r.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"add","params":[5,6]}`, i))
		ts := n.collect(1)
		n.result(ts[0].ID, "11")
		if got, want := r.recv(), fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"result":11}`, i); got != want {
			t.Fatalf("reply %s, want %s", got, want)
		}
	}
	// A broker method and an error through REQ too.
	r.send(`{"jsonrpc":"2.0","id":"p","method":"broker.ping"}`)
	if got := r.recv(); got != `{"jsonrpc":"2.0","id":"p","result":"pong"}` {
		t.Fatalf("ping: %s", got)
	}
	r.send(`{"jsonrpc":"2.0","id":"x","method":"rpc.x"}`)
	if code := errCode(t, r.recv()); code != -32601 {
		t.Fatalf("rpc.x: code %d", code)
	}
	// A raw DEALER that sends the delimiter itself gets it back.
	d := dealer(t, b)
	d.sendFrames("", `{"jsonrpc":"2.0","id":1,"method":"broker.ping"}`)
	fr := d.recvFrames(wait)
	if len(fr) != 2 || len(fr[0]) != 0 || string(fr[1]) != `{"jsonrpc":"2.0","id":1,"result":"pong"}` {
		t.Fatalf("frames %q", fr)
	}
}

// TestBadFrames: frame layouts and bodies that are not JSON-RPC.
func TestBadFrames(t *testing.T) {
	b := startBroker(t, Config{MaxBatch: 4})
	c := dealer(t, b)
	cases := []struct {
		name   string
		frames []string
		code   int
		delim  bool
	}{
		{"invalid JSON", []string{`{"jsonrpc":"2.0","id":1,"method":`}, -32700, false},
		{"not JSON-RPC", []string{`{"id":1,"method":"add"}`}, -32600, false},
		{"scalar", []string{`1`}, -32600, false},
		{"empty batch", []string{`[]`}, -32600, false},
		{"batch over MaxBatch", []string{`[{"jsonrpc":"2.0","method":"a"},{"jsonrpc":"2.0","method":"a"},{"jsonrpc":"2.0","method":"a"},{"jsonrpc":"2.0","method":"a"},{"jsonrpc":"2.0","method":"a"}]`}, -32600, false},
		{"batch over MaxBatch and invalid JSON", []string{`[{"jsonrpc":"2.0","method":"a"},{"jsonrpc":"2.0","method":"a"},{"jsonrpc":"2.0","method":"a"},{"jsonrpc":"2.0","method":"a"},{"jsonrpc":"2.0","method":"a"},]`}, -32700, false},
		{"batch with invalid JSON late", []string{`[{"jsonrpc":"2.0","id":1,"method":"work"},{"jsonrpc":"2.0","id":2,"method":"work"},}]`}, -32700, false},
		{"three frames", []string{"x", "y", `{}`}, -32600, false},
		{"three frames with delimiter", []string{"", "y", `{}`}, -32600, true},
		{"non-empty first of two", []string{"x", `{"jsonrpc":"2.0","id":1,"method":"broker.ping"}`}, -32600, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.sendFrames(tc.frames...)
			fr := c.recvFrames(wait)
			body := string(fr[len(fr)-1])
			if tc.delim != (len(fr) == 2) {
				t.Fatalf("frames %q (delimiter expected: %v)", fr, tc.delim)
			}
			r := decodeResp(t, body)
			if r.Error == nil || r.Error.Code != tc.code || string(r.ID) != "null" {
				t.Fatalf("reply %s, want code %d with id null", body, tc.code)
			}
		})
	}
	if s := b.Stats(); s.Queued != 0 || s.Accepted != 0 {
		t.Fatalf("a bad frame ran something: %+v", s)
	}
}

// TestBatchStrict: a client batch is answered with one array once every member is done.
func TestBatchStrict(t *testing.T) {
	b := startBroker(t, Config{})
	n := newNode(t, b, "n1", "add")
	n.credit(100)
	c := dealer(t, b)
	c.send(`[{"jsonrpc":"2.0","id":1,"method":"add","params":[1,1]},
		{"jsonrpc":"2.0","method":"add","params":[0,0]},
		{"jsonrpc":"2.0","id":"p","method":"broker.ping"},
		1,
		{"jsonrpc":"2.0","id":2,"method":"add","params":[2,2]},
		{"jsonrpc":"2.0","id":3,"method":"rpc.nope"}]`)
	ts := n.collect(3)
	byParams := map[string]json.RawMessage{}
	for _, tk := range ts {
		byParams[string(tk.Params)] = tk.ID
	}
	n.result(byParams["[1,1]"], "2")
	n.result(byParams["[0,0]"], "0")
	c.none() // member 2 still running: nothing yet
	n.result(byParams["[2,2]"], "4")
	rs := decodeResps(t, c.recv())
	got := map[string]string{}
	for _, r := range rs {
		v := string(r.Result)
		if r.Error != nil {
			v = fmt.Sprint(r.Error.Code)
		}
		got[string(r.ID)] = v
	}
	want := map[string]string{`1`: "2", `"p"`: `"pong"`, `null`: "-32600", `2`: "4", `3`: "-32601"}
	if fmt.Sprint(got) != fmt.Sprint(want) || len(rs) != 5 {
		t.Fatalf("batch reply %v, want %v", got, want)
	}

	t.Run("notifications only", func(t *testing.T) {
		c.send(`[{"jsonrpc":"2.0","method":"add","params":[3,3]},{"jsonrpc":"2.0","method":"broker.ping"}]`)
		ts := n.collect(1)
		n.result(ts[0].ID, "6")
		c.none()
	})
	t.Run("one invalid member", func(t *testing.T) {
		rs := decodeResps(t, c.call(`[1]`))
		if len(rs) != 1 || rs[0].Error == nil || rs[0].Error.Code != -32600 {
			t.Fatalf("reply %+v", rs)
		}
	})
	t.Run("immediate members only", func(t *testing.T) {
		rs := decodeResps(t, c.call(`[{"jsonrpc":"2.0","id":1,"method":"broker.ping"},{"jsonrpc":"2.0","id":2,"method":"broker.ping"}]`))
		if len(rs) != 2 {
			t.Fatalf("reply %+v", rs)
		}
	})
}

// TestBatchUnordered: after broker.hello {"unordered":true} batch members are answered as they
// complete, packed into arrays.
func TestBatchUnordered(t *testing.T) {
	b := startBroker(t, Config{})
	n := newNode(t, b, "n1", "add")
	n.credit(100)
	c := dealer(t, b)
	if r := decodeResp(t, c.call(`{"jsonrpc":"2.0","id":0,"method":"broker.hello","params":{"role":"client","unordered":true}}`)); r.Error != nil {
		t.Fatalf("hello: %+v", r.Error)
	}
	c.send(`[{"jsonrpc":"2.0","id":1,"method":"add","params":[1,1]},{"jsonrpc":"2.0","id":2,"method":"add","params":[2,2]}]`)
	ts := n.collect(2)
	n.result(ts[0].ID, "2")
	rs := decodeResps(t, c.recv())
	if len(rs) != 1 || string(rs[0].ID) != "1" || string(rs[0].Result) != "2" {
		t.Fatalf("first reply %+v", rs)
	}
	n.result(ts[1].ID, "4")
	rs = decodeResps(t, c.recv())
	if len(rs) != 1 || string(rs[0].ID) != "2" {
		t.Fatalf("second reply %+v", rs)
	}
	// Results arriving together are packed into one array.
	c.send(`[{"jsonrpc":"2.0","id":3,"method":"add","params":[3]},{"jsonrpc":"2.0","id":4,"method":"add","params":[4]}]`)
	ts = n.collect(2)
	n.send(fmt.Sprintf(`[{"jsonrpc":"2.0","id":%s,"result":3},{"jsonrpc":"2.0","id":%s,"result":4}]`, ts[0].ID, ts[1].ID))
	rs = decodeResps(t, c.recv())
	if len(rs) != 2 {
		t.Fatalf("packed reply %+v", rs)
	}
	// A single request is answered with a plain object.
	if r := decodeResp(t, c.call(`{"jsonrpc":"2.0","id":5,"method":"broker.ping"}`)); string(r.Result) != `"pong"` {
		t.Fatalf("ping %+v", r)
	}
}

// TestCreditNeverExceeded: a node that granted 3 gets exactly 3 tasks until it grants more.
func TestCreditNeverExceeded(t *testing.T) {
	b := startBroker(t, Config{})
	n := newNode(t, b, "n1", "work")
	c := dealer(t, b)
	for i := 0; i < 10; i++ {
		c.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"work"}`, i))
	}
	testutil.Eventually(t, wait, func() bool { return b.Stats().Queued == 10 }, "10 queued")
	n.none() // no credit, no task
	n.credit(3)
	ts := n.collect(3)
	n.none()
	if s := b.Stats(); s.Queued != 7 || s.Running != 3 {
		t.Fatalf("stats %+v", s)
	}
	// Answering does not grant credit: still nothing.
	for _, tk := range ts {
		n.result(tk.ID, "null")
	}
	for i := 0; i < 3; i++ {
		c.recv()
	}
	n.none()
	n.credit(2)
	n.collect(2)
	n.none()
	n.credit(100)
	n.collect(5)
	if s := b.Stats(); s.Queued != 0 || s.Running != 7 {
		t.Fatalf("stats %+v", s)
	}
}

// TestFairness: hand-outs go round robin per flush, in runs of at most MaxBatch tasks: a burst
// goes whole to the node whose turn it is, the next burst to the next node; with a smaller
// MaxBatch a burst spreads over the nodes in runs of MaxBatch; a node with credit never idles
// while tasks wait (when one node's credit is spent, the rest go to the other).
func TestFairness(t *testing.T) {
	burst := func(from, n int) string {
		var sb strings.Builder
		sb.WriteByte('[')
		for i := from; i < from+n; i++ {
			if i > from {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `{"jsonrpc":"2.0","method":"work","params":[%d]}`, i)
		}
		sb.WriteByte(']')
		return sb.String()
	}
	start := func(t *testing.T, cfg Config, credit1, credit2 int) (*Broker, *tnode, *tnode, *tpeer) {
		b := startBroker(t, cfg)
		n1 := newNode(t, b, "n1", "work")
		n2 := newNode(t, b, "n2", "work")
		n1.credit(credit1)
		n2.credit(credit2)
		testutil.Eventually(t, wait, func() bool {
			b.mu.Lock()
			defer b.mu.Unlock()
			q := b.c.queues[b.c.queueIdx["work"]]
			return q.withCredit == 2
		}, "both nodes have credit")
		return b, n1, n2, dealer(t, b)
	}
	// drain collects what the two nodes were handed, until total tasks.
	drain := func(t *testing.T, b *Broker, n1, n2 *tnode, total int) (int, int) {
		t.Helper()
		grab := func(n *tnode) int {
			if fr, ok := n.tryRecv(10 * time.Millisecond); ok {
				return len(parseTasks(t, fr[len(fr)-1]))
			}
			return 0
		}
		var got1, got2 int
		testutil.Eventually(t, wait, func() bool {
			got1 += grab(n1)
			got2 += grab(n2)
			return got1+got2 >= total
		}, "the burst handed out")
		if got1+got2 != total {
			t.Fatalf("handed out %d + %d, want %d", got1, got2, total)
		}
		return got1, got2
	}

	t.Run("a burst goes to one node, the next to the other", func(t *testing.T) {
		b, n1, n2, c := start(t, Config{}, 100, 100)
		c.send(burst(0, 60))
		a1, a2 := drain(t, b, n1, n2, 60)
		if a1 != 60 && a2 != 60 {
			t.Fatalf("first burst split %d/%d, want 60 to one node", a1, a2)
		}
		c.send(burst(60, 60))
		b1, b2 := drain(t, b, n1, n2, 60)
		if a1 == 60 && b2 != 60 || a2 == 60 && b1 != 60 {
			t.Fatalf("bursts %d/%d then %d/%d, want the second whole to the other node", a1, a2, b1, b2)
		}
	})
	t.Run("runs of MaxBatch", func(t *testing.T) {
		b, n1, n2, c := start(t, Config{MaxBatch: 10}, 100, 100)
		for i := 0; i < 10; i++ {
			c.send(burst(10*i, 10))
		}
		if a1, a2 := drain(t, b, n1, n2, 100); a1 != 50 || a2 != 50 {
			t.Fatalf("split %d/%d, want 50/50", a1, a2)
		}
	})
	t.Run("no node idles while tasks wait", func(t *testing.T) {
		b, n1, n2, c := start(t, Config{}, 30, 70)
		c.send(burst(0, 100))
		if a1, a2 := drain(t, b, n1, n2, 100); a1 != 30 || a2 != 70 {
			t.Fatalf("split %d/%d over credits 30/70", a1, a2)
		}
		if s := b.Stats(); s.Queued != 0 {
			t.Fatalf("stats %+v", s)
		}
		// Both out of credit: the next task waits for the first credit.
		c.send(`{"jsonrpc":"2.0","method":"work","params":[1]}`)
		testutil.Eventually(t, wait, func() bool { return b.Stats().Queued == 1 }, "queued")
		n1.none()
		n2.none()
		n2.credit(1)
		n2.collect(1)
	})
}

// TestNodeDisconnect: a node's held tasks go back to the front of the queue (RETRY, attempt
// counted) and run on another node; a late result from the old holder is ignored.
func TestNodeDisconnect(t *testing.T) {
	b := startBroker(t, Config{})
	a := newNodeID(t, b, "a", "node-a", "work")
	a.credit(2)
	c := dealer(t, b)
	c.send(`{"jsonrpc":"2.0","id":1,"method":"work","params":[1]}`)
	c.send(`{"jsonrpc":"2.0","id":2,"method":"work","params":[2]}`)
	c.send(`{"jsonrpc":"2.0","id":3,"method":"work","params":[3]}`)
	held := a.collect(2)
	testutil.Eventually(t, wait, func() bool { return b.Stats().Queued == 1 }, "one queued")
	a.s.Close()
	testutil.Eventually(t, wait, func() bool { s := b.Stats(); return s.Queued == 3 && s.Nodes == 0 }, "tasks requeued")
	if s := b.Stats(); s.Retried != 2 {
		t.Fatalf("stats %+v", s)
	}
	bn := newNode(t, b, "b", "work")
	bn.credit(1)
	first := bn.collect(1)
	if string(first[0].Params) != "[1]" {
		t.Fatalf("requeued task went to the back: got %s first", first[0].Params)
	}
	// The old holder comes back under the same identity with its late result: ignored.
	a2 := newNodeID(t, b, "a", "node-a", "work")
	a2.result(held[0].ID, `"late"`)
	testutil.Eventually(t, wait, func() bool { return b.Stats().Stale == 1 }, "late result counted stale")
	c.none()
	bn.result(first[0].ID, `"fresh"`)
	if got := c.recv(); got != `{"jsonrpc":"2.0","id":1,"result":"fresh"}` {
		t.Fatalf("reply %s", got)
	}
	bn.credit(10)
	rest := bn.collect(2)
	for _, tk := range rest {
		bn.result(tk.ID, "0")
	}
	c.recv()
	c.recv()
}

// TestNodeBye: broker.bye gives back what the node held.
func TestNodeBye(t *testing.T) {
	b := startBroker(t, Config{})
	a := newNode(t, b, "a", "work")
	a.credit(1)
	c := dealer(t, b)
	c.send(`{"jsonrpc":"2.0","id":1,"method":"work"}`)
	a.collect(1)
	a.send(`{"jsonrpc":"2.0","method":"broker.bye"}`)
	testutil.Eventually(t, wait, func() bool { s := b.Stats(); return s.Queued == 1 && s.Nodes == 0 }, "requeued after bye")
	a.credit(1) // no longer a node: no task, told once to say hello again
	if got := a.recv(); !strings.Contains(got, `"method":"broker.hello_required"`) {
		t.Fatalf("after bye, credit answered %s, want broker.hello_required", got)
	}
	a.credit(1)
	a.none()
}

// TestNodeHeartbeatDeath: a node that stops answering heartbeats (its TCP connection open but
// silent) is declared dead after 3 intervals and its tasks run elsewhere.
func TestNodeHeartbeatDeath(t *testing.T) {
	// 1s (dead after 3s): shorter intervals make a starved test process (race detector, a
	// loaded machine) miss PINGs on its good peers too.
	b := startBroker(t, Config{HeartbeatInterval: time.Second})
	raw := dialRaw(t, b.Addr(), "silent")
	raw.sendMsg(`{"jsonrpc":"2.0","id":1,"method":"broker.hello","params":{"role":"node","name":"silent","methods":["work"]}}`)
	raw.readMsg()
	raw.sendMsg(`{"jsonrpc":"2.0","method":"broker.credit","params":[1]}`)
	c := dealer(t, b)
	c.send(`{"jsonrpc":"2.0","id":1,"method":"work"}`)
	if body := raw.readMsg(); !strings.Contains(body, `"work"`) {
		t.Fatalf("raw node got %s", body)
	}
	// From here on the raw node reads nothing and answers no PING.
	start := time.Now()
	testutil.Eventually(t, 3*wait, func() bool { s := b.Stats(); return s.Nodes == 0 && s.Retried == 1 }, "silent node declared dead")
	if d := time.Since(start); d < 2*time.Second {
		t.Fatalf("declared dead after %v, before 3 heartbeat intervals", d)
	}
	n := newNode(t, b, "n", "work")
	n.credit(1)
	ts := n.collect(1)
	n.result(ts[0].ID, "1")
	if got := c.recv(); got != `{"jsonrpc":"2.0","id":1,"result":1}` {
		t.Fatalf("reply %s", got)
	}
}

// TestClientDisconnect: a client's queued calls are dropped when it goes; calls already at a
// node still run and their results are dropped.
func TestClientDisconnect(t *testing.T) {
	b := startBroker(t, Config{})
	n := newNode(t, b, "n", "work")
	n.credit(1)
	c := dealer(t, b)
	for i := 0; i < 5; i++ {
		c.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"work"}`, i))
	}
	c.send(`{"jsonrpc":"2.0","method":"work","params":["notification"]}`)
	running := n.collect(1)
	testutil.Eventually(t, wait, func() bool { return b.Stats().Queued == 5 }, "5 queued")
	c.s.Close()
	testutil.Eventually(t, wait, func() bool { s := b.Stats(); return s.Queued == 1 && s.Dropped == 4 && s.Clients == 0 }, "queued calls dropped")
	n.result(running[0].ID, "1")
	n.credit(10)
	ts := n.collect(1) // the notification still runs
	if string(ts[0].Params) != `["notification"]` {
		t.Fatalf("got %s", ts[0].Params)
	}
	testutil.Eventually(t, wait, func() bool { return b.Stats().Succeeded == 1 }, "result counted")
}

// TestQueueLimit: MaxQueued refuses the task past the bound with -32001 and drops nothing.
func TestQueueLimit(t *testing.T) {
	const max = 5
	b := startBroker(t, Config{MaxQueued: max})
	c := dealer(t, b)
	for i := 0; i < max; i++ {
		c.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"work"}`, i))
	}
	c.none()
	if code := errCode(t, c.call(`{"jsonrpc":"2.0","id":99,"method":"work"}`)); code != CodeQueueFull {
		t.Fatalf("code %d, want %d", code, CodeQueueFull)
	}
	if code := errCode(t, c.call(`{"jsonrpc":"2.0","id":98,"method":"broker.submit","params":{"method":"work"}}`)); code != CodeQueueFull {
		t.Fatalf("submit code %d", code)
	}
	if s := b.Stats(); s.Queued != max || s.Rejected != 2 {
		t.Fatalf("stats %+v", s)
	}
	n := newNode(t, b, "n", "work")
	n.credit(100)
	ts := n.collect(max)
	for _, tk := range ts {
		n.result(tk.ID, "0")
	}
	for i := 0; i < max; i++ {
		if code := errCode(t, c.recv()); code != 0 {
			t.Fatalf("code %d", code)
		}
	}
	// With a node holding credit, tasks that go straight to it do not count as queued.
	for i := 0; i < 2*max; i++ {
		c.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"work"}`, i))
	}
	n.collect(2 * max)
}

// TestInFlightLimit: MaxInFlightPerClient refuses the request past the bound with -32002.
func TestInFlightLimit(t *testing.T) {
	const max = 3
	b := startBroker(t, Config{MaxInFlightPerClient: max})
	n := newNode(t, b, "n", "work")
	n.credit(100)
	c := dealer(t, b)
	for i := 0; i < max; i++ {
		c.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"work"}`, i))
	}
	ts := n.collect(max)
	if code := errCode(t, c.call(`{"jsonrpc":"2.0","id":99,"method":"work"}`)); code != CodeTooManyInFlight {
		t.Fatalf("code %d, want %d", code, CodeTooManyInFlight)
	}
	// broker methods answered at once do not count; another client is not limited.
	if r := decodeResp(t, c.call(`{"jsonrpc":"2.0","id":"p","method":"broker.ping"}`)); r.Error != nil {
		t.Fatalf("ping %+v", r.Error)
	}
	other := dealer(t, b)
	other.send(`{"jsonrpc":"2.0","id":1,"method":"work"}`)
	n.collect(1)
	n.result(ts[0].ID, "0")
	c.recv()
	c.send(`{"jsonrpc":"2.0","id":100,"method":"work"}`)
	n.collect(1)
}

// TestMaxMethods: a task for a new method past MaxMethods is refused with -32001.
func TestMaxMethods(t *testing.T) {
	b := startBroker(t, Config{MaxMethods: 2, ClientShare: 100})
	c := dealer(t, b)
	c.send(`{"jsonrpc":"2.0","id":1,"method":"m1"}`)
	c.send(`{"jsonrpc":"2.0","id":2,"method":"m2"}`)
	if code := errCode(t, c.call(`{"jsonrpc":"2.0","id":3,"method":"m3"}`)); code != CodeQueueFull {
		t.Fatalf("code %d", code)
	}
	c.send(`{"jsonrpc":"2.0","id":4,"method":"m1"}`) // existing method: fine
	c.none()
	if s := b.Stats(); s.Queued != 3 || s.Methods != 2 {
		t.Fatalf("stats %+v", s)
	}
}

// TestDeadline: the timeout_ms extension: a call or a submitted task still queued when its
// deadline passes expires (-32005, state EXPIRED); one handed to a node in time does not.
func TestDeadline(t *testing.T) {
	b := startBroker(t, Config{})
	c := dealer(t, b)
	start := time.Now()
	r := decodeResp(t, c.call(`{"jsonrpc":"2.0","id":1,"method":"nobody","params":[],"timeout_ms":50}`))
	if r.Error == nil || r.Error.Code != CodeExpired || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("reply %+v after %v", r, time.Since(start))
	}
	id := submit(t, c, "nobody", `[1],"timeout_ms":50`)
	testutil.Eventually(t, wait, func() bool { return status(t, c, id).State == "EXPIRED" }, "EXPIRED")
	if st := status(t, c, id); st.Error == nil || st.Error.Code != CodeExpired {
		t.Fatalf("status %+v", st)
	}
	if s := b.Stats(); s.Expired != 2 || s.Queued != 0 {
		t.Fatalf("stats %+v", s)
	}
	// In a batch, and handed out in time.
	n := newNode(t, b, "n", "work")
	n.credit(1)
	c.send(`[{"jsonrpc":"2.0","id":2,"method":"work","timeout_ms":50},{"jsonrpc":"2.0","id":3,"method":"work","timeout_ms":50}]`)
	ts := n.collect(1)
	rs := decodeResps(t, func() string { n.result(ts[0].ID, "1"); return c.recv() }())
	if len(rs) != 2 {
		t.Fatalf("batch %+v", rs)
	}
	for _, r := range rs {
		switch string(r.ID) {
		case "2":
			if r.Error != nil {
				t.Fatalf("handed-out member expired: %+v", r)
			}
		case "3":
			if r.Error == nil || r.Error.Code != CodeExpired {
				t.Fatalf("queued member: %+v", r)
			}
		}
	}
}

// TestDeadlineAtHandOut: a task whose deadline passed between ticks expires when it would be
// handed out instead of running.
func TestDeadlineAtHandOut(t *testing.T) {
	r := newRig(t, Config{})
	now := int64(1_000_000_000)
	r.c.now = func() int64 { return now }
	r.send("C", `{"jsonrpc":"2.0","id":"late","method":"slow","timeout_ms":10}`)
	r.send("C", `{"jsonrpc":"2.0","id":"ok","method":"slow"}`)
	now += int64(20 * time.Millisecond)
	r.send("N2", `{"jsonrpc":"2.0","method":"broker.hello","params":{"role":"node","methods":["slow"]}}`)
	r.send("N2", `{"jsonrpc":"2.0","method":"broker.credit","params":[5]}`)
	if got := string(r.out.body("C")); !strings.Contains(got, `"id":"late","error":{"code":-32005`) {
		t.Fatalf("client got %s", got)
	}
	if got := string(r.out.body("N2")); strings.Count(got, `"method":"slow"`) != 1 {
		t.Fatalf("node got %s", got)
	}
	checkCounts(t, r.c)
}

// TestDeadlineHeapBounded: entries of tasks handed out before their deadline do not pile up.
func TestDeadlineHeapBounded(t *testing.T) {
	r := newRig(t, Config{MaxInFlightPerClient: 100_000})
	req := []byte(`{"jsonrpc":"2.0","id":1,"method":"later","timeout_ms":3600000}`)
	r.send("L", `{"jsonrpc":"2.0","method":"broker.hello","params":{"role":"node","methods":["later"]}}`)
	for round := 0; round < 10; round++ {
		for i := 0; i < 2000; i++ {
			r.sendBytes("C", req)
		}
		r.send("L", `{"jsonrpc":"2.0","method":"broker.credit","params":[2000]}`)
	}
	if r.c.withDeadline != 0 || len(r.c.deadlines) > 4096 {
		t.Fatalf("%d queued with a deadline, %d heap entries", r.c.withDeadline, len(r.c.deadlines))
	}
	checkCounts(t, r.c)
}

// TestFrameAndBatchBounds: a frame of exactly MaxMsgSize is served, one byte more closes the
// connection (zmtp); a batch of exactly MaxBatch is served, one more member is -32600.
func TestFrameAndBatchBounds(t *testing.T) {
	const maxMsg = 1024
	const maxBatch = 8
	b := startBroker(t, Config{MaxMsgSize: maxMsg, MaxBatch: maxBatch})
	c := dealer(t, b)
	ping := `{"jsonrpc":"2.0","id":1,"method":"broker.ping"}`
	atBound := ping + strings.Repeat(" ", maxMsg-len(ping))
	if got := c.call(atBound); got != `{"jsonrpc":"2.0","id":1,"result":"pong"}` {
		t.Fatalf("frame at the bound: %s", got)
	}
	before := b.router.Stats().ProtocolErrors
	c.send(atBound + " ")
	testutil.Eventually(t, wait, func() bool { return b.router.Stats().ProtocolErrors == before+1 }, "connection closed past MaxMsgSize")

	d := dealer(t, b)
	batch := func(n int) string {
		var sb strings.Builder
		sb.WriteByte('[')
		for i := 0; i < n; i++ {
			if i > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `{"jsonrpc":"2.0","id":%d,"method":"broker.ping"}`, i)
		}
		sb.WriteByte(']')
		return sb.String()
	}
	if rs := decodeResps(t, d.call(batch(maxBatch))); len(rs) != maxBatch {
		t.Fatalf("batch at the bound: %d replies", len(rs))
	}
	if code := errCode(t, d.call(batch(maxBatch+1))); code != -32600 {
		t.Fatalf("batch past the bound: code %d", code)
	}
}

// TestNodeResultThenDisconnect: a node that answers and disconnects at once has its answer
// routed (its disconnect is handled after the messages it sent before), never its task
// retried: thousands of connect/answer/close cycles, bounded in time.
func TestNodeResultThenDisconnect(t *testing.T) {
	b := startBroker(t, Config{})
	c := dealer(t, b)
	const cycles = 2000
	deadline := time.Now().Add(90 * time.Second)
	n := 0
	for ; n < cycles && time.Now().Before(deadline); n++ {
		raw := dialRaw(t, b.Addr(), fmt.Sprintf("quick-%d", n))
		raw.sendMsg(`{"jsonrpc":"2.0","method":"broker.hello","params":{"role":"node","name":"quick","methods":["work"]}}`)
		raw.sendMsg(`{"jsonrpc":"2.0","method":"broker.credit","params":[1]}`)
		c.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"work"}`, n))
		task := parseTasks(t, []byte(raw.readMsg()))
		raw.writeFrame(0x00, []byte(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":%d}`, task[0].ID, n)))
		raw.c.Close()
		if got, want := c.recv(), fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"result":%d}`, n, n); got != want {
			t.Fatalf("cycle %d: reply %s, want %s", n, got, want)
		}
	}
	if n < cycles/2 {
		t.Fatalf("only %d cycles within the deadline", n)
	}
	testutil.Eventually(t, wait, func() bool { return b.Stats().Nodes == 0 }, "nodes gone")
	if s := b.Stats(); s.Retried != 0 || s.Succeeded != uint64(n) {
		t.Fatalf("after %d cycles: stats %+v", n, s)
	}
}
