package broker

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/testutil"
)

// TestInvalidAnswers: an invalid answer from the node that holds a task fails that task at
// once with a clear error (-32012, naming the node and the fault); an answer that names no
// task closes the node's connection, and its task runs on another node. Either way the caller
// hears within one heartbeat interval, not at its deadline.
func TestInvalidAnswers(t *testing.T) {
	const hb = 500 * time.Millisecond
	cases := []struct {
		name   string
		answer string // ID stands for the task's hand-out id
		fault  string // in the -32012 message; "" for a violation (the task runs elsewhere)
	}{
		{"non-integer code", `{"jsonrpc":"2.0","id":ID,"error":{"code":"x","message":"m"}}`, "error code is not an integer"},
		{"fractional code", `{"jsonrpc":"2.0","id":ID,"error":{"code":1.5,"message":"m"}}`, "error code is not an integer"},
		{"result and error", `{"jsonrpc":"2.0","id":ID,"result":1,"error":{"code":1,"message":"m"}}`, "both result and error"},
		{"neither", `{"jsonrpc":"2.0","id":ID}`, "neither result nor error"},
		{"error not an object", `{"jsonrpc":"2.0","id":ID,"error":"boom"}`, "error is not an object"},
		{"message not a string", `{"jsonrpc":"2.0","id":ID,"error":{"code":1,"message":2}}`, "error message is not a string"},
		{"wrong version", `{"jsonrpc":"1.0","id":ID,"result":1}`, `"jsonrpc" is not "2.0"`},
		{"in an array", `[{"jsonrpc":"2.0","method":"broker.credit","params":[1]},{"jsonrpc":"2.0","id":ID,"result":1,"error":{"code":1,"message":"m"}}]`, "both result and error"},
		{"no id", `{"jsonrpc":"2.0","result":1}`, ""},
		{"unknown id", `{"jsonrpc":"2.0","id":12345,"result":1}`, ""},
		{"id of another form", `{"jsonrpc":"2.0","id":"x.1","result":1}`, ""},
		{"id wrong type", `{"jsonrpc":"2.0","id":[1],"result":1}`, ""},
		{"invalid and no id", `{"jsonrpc":"2.0","error":{"code":"x","message":"m"}}`, ""},
		{"garbage", `garbage`, ""},
		{"garbage in an array", `[{"jsonrpc":"2.0","method":"broker.credit","params":[1]},{"jsonrpc":`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := startBroker(t, Config{HeartbeatInterval: hb, Logger: discardLogger()})
			bad := newNode(t, b, "bad", "work")
			bad.credit(1)
			c := dealer(t, b)
			c.send(`{"jsonrpc":"2.0","id":1,"method":"work","params":[7]}`)
			tk := bad.collect(1)[0]
			start := time.Now()
			bad.send(strings.ReplaceAll(tc.answer, "ID", string(tk.ID)))
			if tc.fault != "" {
				got := c.recvFrames(hb)
				if d := time.Since(start); d > hb {
					t.Fatalf("answered after %v", d)
				}
				r := decodeResp(t, string(got[0]))
				if r.Error == nil || r.Error.Code != CodeBadAnswer || !strings.Contains(r.Error.Message, `node "bad"`) || !strings.Contains(r.Error.Message, tc.fault) {
					t.Fatalf("caller got %s, want -32012 naming the node and %q", got[0], tc.fault)
				}
				if s := b.Stats(); s.BadAnswers != 1 || s.Violations != 0 || s.Nodes != 1 {
					t.Fatalf("stats: bad answers %d, violations %d, nodes %d", s.BadAnswers, s.Violations, s.Nodes)
				}
				return
			}
			// A violation: the bad node's session ends, its task goes to another node.
			testutil.Eventually(t, hb, func() bool { s := b.Stats(); return s.Violations == 1 && s.Nodes == 0 }, "violation counted, bad node gone")
			good := newNode(t, b, "good", "work")
			good.credit(1)
			tk2 := good.collect(1)[0]
			if string(tk2.Params) != "[7]" {
				t.Fatalf("the other node got %+v", tk2)
			}
			good.result(tk2.ID, "14")
			if got := c.recv(); got != `{"jsonrpc":"2.0","id":1,"result":14}` {
				t.Fatalf("caller got %s", got)
			}
			if d := time.Since(start); d > 2*hb {
				t.Fatalf("the task ran elsewhere after %v", d)
			}
		})
	}
}

// TestHelloRequired: a node that the broker does not know on its connection (here: after its
// bye) is told to say hello again by whatever it sends that only a node sends, once; after a
// new hello it serves again.
func TestHelloRequired(t *testing.T) {
	b := startBroker(t, Config{})
	n := newNode(t, b, "n", "work")
	n.send(`{"jsonrpc":"2.0","method":"broker.bye"}`)
	testutil.Eventually(t, wait, func() bool { return b.Stats().Nodes == 0 }, "node gone after bye")
	for _, msg := range []string{
		`{"jsonrpc":"2.0","id":"00000000.1","result":1}`,
		`{"jsonrpc":"2.0","method":"broker.running","params":["00000000.1"]}`,
		`{"jsonrpc":"2.0","method":"broker.credit","params":[1]}`,
	} {
		n.send(msg)
	}
	if got := n.recv(); !strings.Contains(got, `"method":"broker.hello_required","params":{"broker":"`+b.ID()+`"}`) {
		t.Fatalf("got %s, want broker.hello_required", got)
	}
	n.none() // once
	r := decodeResp(t, n.call(`{"jsonrpc":"2.0","id":"hello","method":"broker.hello","params":{"role":"node","name":"n","methods":["work"]}}`))
	if r.Error != nil {
		t.Fatal(r.Error.Message)
	}
	n.credit(1)
	c := dealer(t, b)
	c.send(`{"jsonrpc":"2.0","id":1,"method":"work"}`)
	n.result(n.collect(1)[0].ID, "1")
	if got := c.recv(); got != `{"jsonrpc":"2.0","id":1,"result":1}` {
		t.Fatalf("caller got %s", got)
	}
}

// TestControlCharacterNames: a method name with an escaped NUL (or another control character)
// is refused before it becomes a queue key, as a call (-32600), a submit or a node's method or
// queue (-32602): it creates no queue, and add on queue "high" keeps working.
func TestControlCharacterNames(t *testing.T) {
	b := startBroker(t, Config{})
	n := newNode(t, b, "n", "work")
	r := decodeResp(t, n.call(`{"jsonrpc":"2.0","id":"h2","method":"broker.hello","params":{"role":"node","name":"n","methods":["add"],"queues":["high"]}}`))
	if r.Error != nil {
		t.Fatal(r.Error.Message)
	}
	n.credit(1)
	c := dealer(t, b)
	methods := b.Stats().Methods
	for _, tc := range []struct {
		req  string
		code int
	}{
		{`{"jsonrpc":"2.0","id":1,"method":"add\u0000high","params":[1,2],"delay_ms":2592000000}`, -32600},
		{`{"jsonrpc":"2.0","id":2,"method":"add\u001fx"}`, -32600},
		{`{"jsonrpc":"2.0","id":3,"method":"broker.submit","params":{"method":"add\u0000high","params":[1],"delay_ms":2592000000}}`, -32602},
		{`{"jsonrpc":"2.0","id":4,"method":"broker.hello","params":{"role":"node","methods":["add\u0000high"]}}`, -32602},
		{`{"jsonrpc":"2.0","id":5,"method":"broker.hello","params":{"role":"node","methods":["add"],"queues":["a\u0000b"]}}`, -32602},
	} {
		if got := errCode(t, c.call(tc.req)); got != tc.code {
			t.Errorf("%s: code %d, want %d", tc.req, got, tc.code)
		}
	}
	if s := b.Stats(); s.Methods != methods || s.Scheduled != 0 {
		t.Fatalf("methods %d (was %d), scheduled %d: a refused name made a queue", s.Methods, methods, s.Scheduled)
	}
	c.send(`{"jsonrpc":"2.0","id":9,"method":"add","params":[1,2],"queue":"high"}`)
	n.result(n.collect(1)[0].ID, "3")
	if got := c.recv(); got != `{"jsonrpc":"2.0","id":9,"result":3}` {
		t.Fatalf("add on high: %s", got)
	}
}

// TestStalledNodeLosesUnstartedTasks: a node that takes tasks and stays silent (no answer, no
// running notice) loses the tasks it did not report running after ProgressTimeout; they run on
// another node with no attempt counted (max_attempts 1 still succeeds), and the silent node
// gets a broker.revoke for them. A task it reported running stays with it.
func TestStalledNodeLosesUnstartedTasks(t *testing.T) {
	const progress = 300 * time.Millisecond
	b := startBroker(t, Config{ProgressTimeout: progress, Logger: discardLogger()})
	silent := newNode(t, b, "silent", "work")
	silent.credit(10)
	c := dealer(t, b)
	for i := range 3 {
		c.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"broker.submit","params":{"method":"work","params":[%d],"max_attempts":1}}`, i, i))
		c.recv()
	}
	held := silent.collect(3)
	silent.send(fmt.Sprintf(`{"jsonrpc":"2.0","method":"broker.running","params":[%s]}`, held[0].ID))
	start := time.Now()
	good := newNode(t, b, "good", "work")
	good.credit(10)
	got := good.collect(2)
	if d := time.Since(start); d > progress+time.Second {
		t.Fatalf("unstarted tasks reached the other node after %v (ProgressTimeout %v)", d, progress)
	}
	for _, tk := range got {
		if string(tk.Params) == string(held[0].Params) {
			t.Fatalf("the task reported running was taken from its node: %s", tk.Params)
		}
		good.result(tk.ID, string(tk.Params))
	}
	revoke := silent.recv()
	if !strings.Contains(revoke, `"method":"broker.revoke"`) || !strings.Contains(revoke, string(held[1].ID)) || !strings.Contains(revoke, string(held[2].ID)) {
		t.Fatalf("the silent node got %s, want a broker.revoke of its two unstarted tasks", revoke)
	}
	testutil.Eventually(t, wait, func() bool { s := b.Stats(); return s.Succeeded == 2 }, "the two tasks succeeded elsewhere")
	if s := b.Stats(); s.Reclaimed != 1 || s.HandedBack != 2 || s.Failed != 0 || s.Running != 1 {
		t.Fatalf("reclaimed %d, handed back %d, failed %d, running %d", s.Reclaimed, s.HandedBack, s.Failed, s.Running)
	}
}

// TestTaskTimeout: a task without a deadline carries TaskTimeout to its node as timeout_ms, and
// a node that never answers it (a handler that never returns) loses it 3 heartbeat intervals
// later: the caller gets -32011, not an endless wait.
func TestTaskTimeout(t *testing.T) {
	const timeout, hb = 200 * time.Millisecond, 100 * time.Millisecond
	b := startBroker(t, Config{TaskTimeout: timeout, HeartbeatInterval: hb, ProgressTimeout: -1, Logger: discardLogger()})
	n := newNode(t, b, "n", "work")
	n.credit(1)
	c := dealer(t, b)
	start := time.Now()
	c.send(`{"jsonrpc":"2.0","id":1,"method":"work"}`)
	fr := n.recvFrames(wait)
	if !strings.Contains(string(fr[len(fr)-1]), `"timeout_ms":200`) {
		t.Fatalf("task %s, want timeout_ms 200", fr[len(fr)-1])
	}
	r := decodeResp(t, c.recv())
	if d := time.Since(start); r.Error == nil || r.Error.Code != CodeDeadline || d < timeout || d > timeout+3*hb+time.Second {
		t.Fatalf("caller got %+v after %v, want -32011 after about %v", r.Error, d, timeout+3*hb)
	}
}

// TestRunLeasesBounded: the run leases of answered tasks do not pile up for TaskTimeout: the
// FIFO drops them once they outnumber the held tasks, so it stays within 1,024 entries or twice
// the tasks held, also when a task handed out first is still held in front of them all (and
// its lease is kept).
func TestRunLeasesBounded(t *testing.T) {
	for _, tc := range []struct {
		name string
		hold bool // leave the first task unanswered
	}{
		{"answered in order", false},
		{"the first one held", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, Config{})
			var heldKey uint64
			if tc.hold {
				r.send("C", `{"jsonrpc":"2.0","id":"held","method":"add","params":[1,2]}`)
				body := r.out.body("N")
				i := bytes.Index(body, idPrefix) + len(idPrefix)
				k, ours, ok := r.c.parseHandout(body[i : i+bytes.IndexByte(body[i+1:], '"')+2])
				if !ok || !ours {
					t.Fatalf("no hand-out id in %s", body)
				}
				heldKey = k
			}
			for range 200 {
				r.roundTrip(batchOf(64))
			}
			if n := r.c.runs.len(); n > 1025 {
				t.Fatalf("%d run leases kept for %d held tasks", n, r.c.running)
			}
			if s := r.c.stats(); s.Succeeded != 200*64 {
				t.Fatalf("succeeded %d", s.Succeeded)
			}
			if tc.hold && !slices.ContainsFunc(r.c.runs.e[r.c.runs.head:], func(e deadlineEntry) bool { return e.key == heldKey }) {
				t.Fatal("the lease of the task still held was dropped")
			}
		})
	}
}
