package broker

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/protocol"
)

// TestPauseResume: a paused queue keeps accepting and hands nothing out, other queues run on;
// resumed, its tasks go to the node in order. A queue made after the pause is paused too.
func TestPauseResume(t *testing.T) {
	b := startBroker(t, Config{})
	c := dealer(t, b)
	if got := decodeResp(t, c.call(`{"jsonrpc":"2.0","id":1,"method":"broker.pause","params":{"queue":"default"}}`)); got.Error != nil || string(got.Result) != `{"queue":"default","paused":true}` {
		t.Fatalf("pause: %+v %s", got.Error, got.Result)
	}
	n := &tnode{tpeer: dealer(t, b), name: "n1"}
	if r := decodeResp(t, n.call(`{"jsonrpc":"2.0","id":"hello","method":"broker.hello","params":{"role":"node","name":"n1","methods":["work"],"queues":["default","fast"],"concurrency":4}}`)); r.Error != nil {
		t.Fatalf("hello: %+v", r.Error)
	}
	n.credit(10)
	id := submit(t, c, "work", "[1]") // the queue of "work" is made after the pause
	c.send(`{"jsonrpc":"2.0","id":"r","method":"broker.submit","params":{"method":"work","params":[2],"queue":"fast"}}`)
	if r := decodeResp(t, c.recv()); r.Error != nil {
		t.Fatalf("submit to fast: %+v", r.Error)
	}
	ts := n.collect(1) // the task of the queue "fast" runs; the paused one does not
	if string(ts[0].Params) != "[2]" {
		t.Fatalf("handed out %s, want the task of the unpaused queue", ts[0].Params)
	}
	n.none()
	if st := status(t, c, id); st.State != "QUEUED" {
		t.Fatalf("task of a paused queue: %+v", st)
	}
	if got := decodeResp(t, c.call(`{"jsonrpc":"2.0","id":2,"method":"broker.resume","params":["default"]}`)); got.Error != nil || string(got.Result) != `{"queue":"default","paused":false}` {
		t.Fatalf("resume: %+v %s", got.Error, got.Result)
	}
	if ts := n.collect(1); string(ts[0].Params) != "[1]" {
		t.Fatalf("after resume handed out %s, want [1]", ts[0].Params)
	}
	for _, body := range []string{
		`{"jsonrpc":"2.0","id":3,"method":"broker.pause"}`,
		`{"jsonrpc":"2.0","id":3,"method":"broker.pause","params":{"queue":""}}`,
		`{"jsonrpc":"2.0","id":3,"method":"broker.pause","params":{"queue":5}}`,
		`{"jsonrpc":"2.0","id":3,"method":"broker.resume","params":{"queue":"a\u0000b"}}`,
		fmt.Sprintf(`{"jsonrpc":"2.0","id":3,"method":"broker.pause","params":[%q]}`, strings.Repeat("q", 129)),
	} {
		if code := errCode(t, c.call(body)); code != codec.CodeInvalidParams {
			t.Errorf("%s: code %d, want -32602", body, code)
		}
	}
}

// TestPurge: purge drops the queued tasks of a queue, of a method, or of both, answering how
// many; they end REVOKED (a waiting call gets -32004); delayed and running tasks stay.
func TestPurge(t *testing.T) {
	b := startBroker(t, Config{})
	c := dealer(t, b)
	var ids []string
	for i := range 3 {
		ids = append(ids, submit(t, c, "a", fmt.Sprintf("[%d]", i)))
	}
	c.send(`{"jsonrpc":"2.0","id":"call","method":"b","params":[1]}`) // a call waits for its reply
	c.send(`{"jsonrpc":"2.0","id":"q","method":"broker.submit","params":{"method":"a","params":[9],"queue":"slow"}}`)
	c.send(`{"jsonrpc":"2.0","id":"d","method":"broker.submit","params":{"method":"a","params":[8],"delay_ms":3600000}}`)
	var slow, delayed string
	for range 2 {
		r := decodeResp(t, c.recv())
		var v struct{ ID string }
		_ = json.Unmarshal(r.Result, &v)
		switch string(r.ID) {
		case `"q"`:
			slow = v.ID
		case `"d"`:
			delayed = v.ID
		}
	}
	testutil.Eventually(t, wait, func() bool { return b.Stats().Queued == 5 }, "5 queued")

	purge := func(params string) int {
		t.Helper()
		r := decodeResp(t, c.call(`{"jsonrpc":"2.0","id":"p","method":"broker.purge","params":`+params+`}`))
		var v struct{ Purged int }
		if r.Error != nil || json.Unmarshal(r.Result, &v) != nil {
			t.Fatalf("purge %s: %+v %s", params, r.Error, r.Result)
		}
		return v.Purged
	}
	if n := purge(`{"method":"a","queue":"default"}`); n != 3 {
		t.Fatalf("purged %d of method a in the default queue, want 3", n)
	}
	for _, id := range ids {
		if st := status(t, c, id); st.State != "REVOKED" || st.Error == nil || st.Error.Code != CodeRevoked {
			t.Fatalf("purged task: %+v", st)
		}
	}
	c.send(`{"jsonrpc":"2.0","id":"p","method":"broker.purge","params":{"method":"b"}}`)
	for range 2 { // the call's answer, and the purge's
		r := decodeResp(t, c.recv())
		switch string(r.ID) {
		case `"call"`:
			if r.Error == nil || r.Error.Code != CodeRevoked {
				t.Fatalf("purged call answered %+v, want -32004", r.Error)
			}
		case `"p"`:
			if string(r.Result) != `{"purged":1}` {
				t.Fatalf("purge of method b: %+v %s", r.Error, r.Result)
			}
		}
	}
	if n := purge(`{"queue":"slow"}`); n != 1 {
		t.Fatalf("purged %d of queue slow, want 1", n)
	}
	if st := status(t, c, slow); st.State != "REVOKED" {
		t.Fatalf("purged task of slow: %+v", st)
	}
	if n := purge(`{"queue":"default"}`); n != 0 {
		t.Fatalf("purged %d again, want 0", n)
	}
	if st := status(t, c, delayed); st.State != "QUEUED" {
		t.Fatalf("a delayed task was purged: %+v", st)
	}
	if s := b.Stats(); s.Queued != 0 || s.Revoked != 5 || s.Scheduled != 1 {
		t.Fatalf("stats %+v", s)
	}
	// The queues emptied can be used again.
	n := newNode(t, b, "n1", "a")
	n.credit(1)
	submit(t, c, "a", "[7]")
	if ts := n.collect(1); string(ts[0].Params) != "[7]" {
		t.Fatalf("handed out %s", ts[0].Params)
	}
	for _, body := range []string{
		`{"jsonrpc":"2.0","id":3,"method":"broker.purge"}`,
		`{"jsonrpc":"2.0","id":3,"method":"broker.purge","params":{}}`,
		`{"jsonrpc":"2.0","id":3,"method":"broker.purge","params":{"method":7}}`,
	} {
		if code := errCode(t, c.call(body)); code != codec.CodeInvalidParams {
			t.Errorf("%s: code %d, want -32602", body, code)
		}
	}
}

// TestSteeringNeedsAdmin: with roles, only an admin key may pause, resume or purge.
func TestSteeringNeedsAdmin(t *testing.T) {
	w := newCurveWorld(t)
	alice, _ := w.dial(t, w.alice)
	root, _ := w.dial(t, w.admin)
	for _, req := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"broker.pause","params":{"queue":"default"}}`,
		`{"jsonrpc":"2.0","id":2,"method":"broker.resume","params":{"queue":"default"}}`,
		`{"jsonrpc":"2.0","id":3,"method":"broker.purge","params":{"queue":"default"}}`,
	} {
		if code := errCode(t, alice.call(req)); code != protocol.CodeForbidden {
			t.Fatalf("client key's %s: code %d, want %d", req, code, protocol.CodeForbidden)
		}
		if r := decodeResp(t, root.call(req)); r.Error != nil {
			t.Fatalf("admin key's %s: %+v", req, r.Error)
		}
	}
}
