package broker

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/testutil"
)

// taskParamsMax is the documented bound on a task's params (docs/protocol.md, "Message
// sizes"): MaxMsgSize - 159 - the method as a JSON string (default queue).
func taskParamsMax(maxMsg int, method string) int { return maxMsg - 159 - len(method) - 2 }

// stringParams returns params ["<tag>xxx..."] of exactly size bytes.
func stringParams(tag string, size int) string {
	return `["` + tag + strings.Repeat("x", size-4-len(tag)) + `"]`
}

func TestEnvelopeOverheadDocumented(t *testing.T) {
	if envOverhead+2 != 159 {
		t.Fatalf("envOverhead+2 = %d, docs/protocol.md says 159", envOverhead+2)
	}
}

// TestTaskSizeAtBound: a task whose message to a node can take MaxMsgSize-2 bytes is accepted
// and reaches the node (whose socket takes at most MaxMsgSize); one byte more is refused at
// once with -32600, as a call and as a submit, and queues nothing.
func TestTaskSizeAtBound(t *testing.T) {
	b := startBroker(t, Config{})
	n := newNode(t, b, "n1", "echo")
	c := dealer(t, b)
	bound := taskParamsMax(DefaultMaxMsgSize, "echo")

	for _, tc := range []struct {
		name, req string
	}{
		{"call", `{"jsonrpc":"2.0","id":1,"method":"echo","params":%s,"timeout_ms":60000}`},
		{"submit", `{"jsonrpc":"2.0","id":1,"method":"broker.submit","params":{"method":"echo","params":%s}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := decodeResp(t, c.call(fmt.Sprintf(tc.req, stringParams("over", bound+1))))
			if r.Error == nil || r.Error.Code != -32600 || !strings.Contains(r.Error.Message, "too large") {
				t.Fatalf("params of %d bytes: %+v, want -32600 too large", bound+1, r.Error)
			}
			if want := fmt.Sprintf(`{"bytes":%d,"max":%d}`, DefaultMaxMsgSize-1, DefaultMaxMsgSize-2); string(r.Error.Data) != want {
				t.Errorf("data %s, want %s", r.Error.Data, want)
			}
			c.send(fmt.Sprintf(tc.req, stringParams("at", bound)))
			n.credit(1)
			ts := n.collect(1)
			if len(ts) != 1 || len(ts[0].Params) != bound || !strings.HasPrefix(string(ts[0].Params), `["at`) {
				t.Fatalf("node got %d tasks (params %d bytes), want the one of %d bytes", len(ts), len(ts[0].Params), bound)
			}
			n.result(ts[0].ID, `"done"`)
			if r := decodeResp(t, c.recv()); r.Error != nil {
				t.Fatalf("task at the bound: %+v", r.Error)
			}
		})
	}
	testutil.Eventually(t, wait, func() bool { s := b.Stats(); return s.Queued == 0 && s.Running == 0 && s.Succeeded == 2 },
		"both tasks at the bound done, and the refused ones never queued")
}

// TestLargeTasksPacked: large tasks queued before a node grants credit leave in messages of
// their own, each within the node's bound (the fake node's socket drops its connection on a
// larger one, which would lose the tasks).
func TestLargeTasksPacked(t *testing.T) {
	b := startBroker(t, Config{})
	c := dealer(t, b)
	sizes := []int{500 << 10, 700 << 10, taskParamsMax(DefaultMaxMsgSize, "echo"), 100, 200}
	for i, size := range sizes {
		c.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"echo","params":%s}`, i, stringParams(fmt.Sprint(i, "-"), size)))
	}
	testutil.Eventually(t, wait, func() bool { return b.Stats().Queued == len(sizes) }, "%d tasks queued", len(sizes))
	n := newNode(t, b, "n1", "echo")
	n.credit(len(sizes))
	got := map[string]int{}
	for len(got) < len(sizes) {
		fr := n.recvFrames(wait)
		body := fr[len(fr)-1]
		if len(body) > DefaultMaxMsgSize {
			t.Fatalf("a message of %d bytes", len(body))
		}
		for _, tk := range parseTasks(t, body) {
			got[string(tk.Params[2:4])] = len(tk.Params)
			n.result(tk.ID, `1`)
		}
	}
	for i, size := range sizes {
		if got[fmt.Sprint(i, "-")] != size {
			t.Errorf("task %d: params of %d bytes at the node, want %d", i, got[fmt.Sprint(i, "-")], size)
		}
	}
	for range sizes {
		if r := decodeResp(t, c.recv()); r.Error != nil {
			t.Errorf("reply %+v", r.Error)
		}
	}
}

// TestNodeHelloBounds: a node's name and its method and queue lists are bounded at hello
// (they land in every broker.nodes reply), each tested at its bound; so is the message size
// a node announces (it must take every task the broker accepts).
func TestNodeHelloBounds(t *testing.T) {
	b := startBroker(t, Config{MaxNodeName: 16, MaxNodeLists: 64})
	p := dealer(t, b)
	hello := func(params string) int {
		return errCode(t, p.call(`{"jsonrpc":"2.0","id":1,"method":"broker.hello","params":`+params+`}`))
	}
	m30 := strings.Repeat("m", 30)
	tests := []struct {
		name   string
		params string
		want   int
	}{
		{"name at the bound", `{"role":"node","name":"` + strings.Repeat("n", 16) + `","methods":["a"]}`, 0},
		{"name past it", `{"role":"node","name":"` + strings.Repeat("n", 17) + `","methods":["a"]}`, -32602},
		{"300 KiB name", `{"role":"node","name":"` + strings.Repeat("n", 300<<10) + `","methods":["a"]}`, -32602},
		{"lists at the bound", `{"role":"node","methods":["` + m30 + `","` + m30 + `"],"queues":["qq","rr"]}`, 0},
		{"lists past it", `{"role":"node","methods":["` + m30 + `","` + m30 + `"],"queues":["qq","rrr"]}`, -32602},
		{"max_msg_size at the broker's", `{"role":"node","methods":["a"],"max_msg_size":1048576}`, 0},
		{"max_msg_size below it", `{"role":"node","methods":["a"],"max_msg_size":1048575}`, -32602},
		{"a client may announce less", `{"role":"client","max_msg_size":4096}`, 0},
		{"but not below 256", `{"role":"client","max_msg_size":255}`, -32602},
	}
	for _, tt := range tests {
		if got := hello(tt.params); got != tt.want {
			t.Errorf("%s: code %d, want %d", tt.name, got, tt.want)
		}
	}
}

// TestBatchReplyBounded: a reply amplification: a node with the longest name and lists
// a hello allows, then one batch of 1,024 broker.nodes calls. The reply is one array within
// the client's message size: room for an error per member is kept, the members whose replies
// no longer fit get -32603 with their own ids, and nothing larger is built. An unordered client gets every reply, packed in
// messages within its bound.
func TestBatchReplyBounded(t *testing.T) {
	b := startBroker(t, Config{})
	methods := make([]string, 64) // 64 x 1,024 bytes: MaxNodeLists exactly
	for i := range methods {
		methods[i] = fmt.Sprintf("%04d", i) + strings.Repeat("m", 1020)
	}
	newNode(t, b, strings.Repeat("n", DefaultMaxNodeName), methods...)
	var req strings.Builder
	req.WriteByte('[')
	for i := range 1024 {
		if i > 0 {
			req.WriteByte(',')
		}
		fmt.Fprintf(&req, `{"jsonrpc":"2.0","id":%d,"method":"broker.nodes"}`, i)
	}
	req.WriteByte(']')

	strict := dealer(t, b)
	body := strict.call(req.String())
	if len(body) > DefaultMaxMsgSize {
		t.Fatalf("batch reply of %d bytes", len(body))
	}
	rs := decodeResps(t, body)
	seen := map[string]bool{}
	results, errs := 0, 0
	for _, r := range rs {
		seen[string(r.ID)] = true
		switch {
		case r.Error == nil:
			results++
		case r.Error.Code == -32603:
			errs++
		default:
			t.Fatalf("member %s: %+v", r.ID, r.Error)
		}
	}
	if len(seen) != 1024 || results == 0 || errs == 0 || results > DefaultMaxMsgSize/(64<<10) {
		t.Fatalf("%d members answered (%d results, %d errors), want 1,024, at most %d results", len(seen), results, errs, DefaultMaxMsgSize/(64<<10))
	}
	if s := b.Stats(); s.TooLarge != uint64(errs) {
		t.Errorf("Stats.TooLarge %d, want %d", s.TooLarge, errs)
	}

	unordered := dealer(t, b)
	if code := errCode(t, unordered.call(`{"jsonrpc":"2.0","id":"h","method":"broker.hello","params":{"unordered":true}}`)); code != 0 {
		t.Fatalf("hello: %d", code)
	}
	unordered.send(req.String())
	seen, results, bytes := map[string]bool{}, 0, 0
	for len(seen) < 1024 {
		fr := unordered.recvFrames(wait)
		if len(fr[0]) > DefaultMaxMsgSize {
			t.Fatalf("a message of %d bytes", len(fr[0]))
		}
		for _, r := range decodeResps(t, string(fr[0])) {
			seen[string(r.ID)] = true
			switch {
			case r.Error == nil:
				results++
				bytes += len(r.Result)
			case r.Error.Code != -32603:
				t.Fatalf("member %s: %+v", r.ID, r.Error)
			}
		}
	}
	// An unordered client's batch shares the same budget: its results take at most
	// MaxMsgSize together, the rest are errors.
	if results == 0 || results > DefaultMaxMsgSize/(64<<10) || bytes > DefaultMaxMsgSize {
		t.Fatalf("unordered: %d results of %d bytes together, want at most %d within %d bytes", results, bytes, DefaultMaxMsgSize/(64<<10), DefaultMaxMsgSize)
	}
}

// TestResultRecordBound: a submitted task's result may be as large as leaves its record
// readable in one broker.status reply (with an id of up to 20 bytes) of MaxMsgSize; at the
// bound the reply is exactly MaxMsgSize-2 bytes, and one byte more ends the task FAILURE
// with -32603 instead of storing a record no client could read.
func TestResultRecordBound(t *testing.T) {
	b := startBroker(t, Config{})
	n := newNode(t, b, "n1", "echo")
	c := dealer(t, b)
	const sid = `12345678901234567890` // a 20-byte id
	run := func(result string) string {
		t.Helper()
		id := submitID(t, c, "echo", "[1]", "")
		n.credit(1)
		ts := n.collect(1)
		n.result(ts[0].ID, result)
		for {
			body := c.call(`{"jsonrpc":"2.0","id":` + sid + `,"method":"broker.status","params":["` + id + `"]}`)
			if !strings.Contains(body, `"state":"QUEUED"`) && !strings.Contains(body, `"state":"RUNNING"`) {
				return body
			}
		}
	}
	base := run("null")
	room := DefaultMaxMsgSize - 2 - (len(base) - len("null"))
	at := run(`"` + strings.Repeat("r", room-2) + `"`)
	if len(at) != DefaultMaxMsgSize-2 || !strings.Contains(at, `"state":"SUCCESS"`) {
		t.Fatalf("result at the bound: reply of %d bytes (want %d), %.200s", len(at), DefaultMaxMsgSize-2, at)
	}
	past := run(`"` + strings.Repeat("r", room-1) + `"`)
	if !strings.Contains(past, `"state":"FAILURE"`) || !strings.Contains(past, `-32603`) {
		t.Fatalf("result past the bound: %.300s", past)
	}
}

// TestRevokeNoticesBounded: the revokes of one tick leave on the control topic in as many
// notices as keep each within MaxMsgSize.
func TestRevokeNoticesBounded(t *testing.T) {
	const maxMsg, tasks = 512, 60
	b := startBroker(t, Config{MaxMsgSize: maxMsg, Tick: 300 * time.Millisecond})
	sub := subscribe(t, b, "control")
	n := newNode(t, b, "n1", "work")
	c := dealer(t, b)
	ids := make([]string, tasks)
	for i := range ids {
		ids[i] = submitID(t, c, "work", fmt.Sprintf("[%d]", i), "")
	}
	n.credit(tasks)
	n.collect(tasks)
	for _, id := range ids {
		if code := errCode(t, c.call(`{"jsonrpc":"2.0","id":1,"method":"broker.revoke","params":["`+id+`"]}`)); code != 0 {
			t.Fatalf("revoke %s: %d", id, code)
		}
	}
	revoked, notices := 0, 0
	for revoked < tasks {
		_, body := sub.until(func(topic, body string) bool { return topic == "control" })
		if len(body) > maxMsg {
			t.Fatalf("a control notice of %d bytes, MaxMsgSize %d", len(body), maxMsg)
		}
		var v struct {
			Params struct{ IDs []json.RawMessage } `json:"params"`
		}
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatalf("notice %s: %v", body, err)
		}
		revoked += len(v.Params.IDs)
		notices++
	}
	if revoked != tasks || notices < 2 {
		t.Fatalf("%d ids in %d notices, want %d in several", revoked, notices, tasks)
	}
}

// TestInFlightBytes: a client's task calls awaiting a reply are bounded in bytes
// (MaxInFlightBytes): the call that would pass the bound is refused with -32002 and data
// naming the budget, while submits, notifications and other clients are not counted against
// it; an answer makes room again, and one call always fits when none is in flight.
func TestInFlightBytes(t *testing.T) {
	const size = 3000 // params; with id 1..3 bytes, a 4 KiB buffer each
	cost, small := taskCost(poolCap(size+3)), taskCost(poolCap(len(`5[1]`)))
	b := startBroker(t, Config{MaxInFlightBytes: 3*cost + small})
	n := newNode(t, b, "n", "work")
	n.credit(100)
	c := dealer(t, b)
	for i := range 3 {
		c.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"work","params":%s}`, i, stringParams("c", size)))
	}
	ts := n.collect(3)
	r := decodeResp(t, c.call(fmt.Sprintf(`{"jsonrpc":"2.0","id":99,"method":"work","params":%s}`, stringParams("c", size))))
	if r.Error == nil || r.Error.Code != CodeTooManyInFlight || string(r.Error.Data) != `{"budget":"client_inflight_bytes"}` {
		t.Fatalf("the call past the bound: %+v", r)
	}
	// A small call still fits under the bound (the bound is in bytes, not calls).
	c.send(`{"jsonrpc":"2.0","id":5,"method":"work","params":[1]}`)
	s := n.collect(1)
	// Not counted: a submit (answered at once), a notification, another client's call.
	if id := submit(t, c, "work", stringParams("s", size)); id == "" {
		t.Fatal("submit refused")
	}
	c.send(fmt.Sprintf(`{"jsonrpc":"2.0","method":"work","params":%s}`, stringParams("n", size)))
	other := dealer(t, b)
	other.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"work","params":%s}`, stringParams("o", size)))
	n.collect(3)
	// An answer makes room for one more.
	n.result(ts[0].ID, "0")
	c.recv()
	n.result(s[0].ID, "0")
	c.recv()
	c.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":100,"method":"work","params":%s}`, stringParams("c", size)))
	n.collect(1)
	if code := errCode(t, c.call(fmt.Sprintf(`{"jsonrpc":"2.0","id":101,"method":"work","params":%s}`, stringParams("c", size)))); code != CodeTooManyInFlight {
		t.Fatalf("a call past the bound again: code %d, want %d", code, CodeTooManyInFlight)
	}

	// One call always fits: a bound below a single call's cost.
	b2 := startBroker(t, Config{MaxInFlightBytes: 1})
	n2 := newNode(t, b2, "n", "work")
	n2.credit(10)
	c2 := dealer(t, b2)
	c2.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"work","params":%s}`, stringParams("c", size)))
	n2.collect(1)
	if code := errCode(t, c2.call(`{"jsonrpc":"2.0","id":2,"method":"work","params":[1]}`)); code != CodeTooManyInFlight {
		t.Fatalf("the second call past a bound of 1 byte: code %d, want %d", code, CodeTooManyInFlight)
	}
}
