package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerotask/zerotask/dispatch"
	"github.com/zerotask/zerotask/internal/testutil"
)

// taskRecord is a decoded broker.status / broker.result record.
type taskRecord struct {
	ID       string          `json:"id"`
	Method   string          `json:"method"`
	State    string          `json:"state"`
	Attempts int             `json:"attempts"`
	Result   json.RawMessage `json:"result"`
	Error    *struct {
		Code int `json:"code"`
	} `json:"error"`
	Node string `json:"node"`
}

func recordOf(t testing.TB, body string) taskRecord {
	t.Helper()
	r := decodeResp(t, body)
	if r.Error != nil {
		t.Fatalf("error reply %s", body)
	}
	var rec taskRecord
	if err := json.Unmarshal(r.Result, &rec); err != nil {
		t.Fatalf("record %s: %v", r.Result, err)
	}
	return rec
}

func submit(t testing.TB, c *tpeer, method, params string) string {
	t.Helper()
	r := decodeResp(t, c.call(fmt.Sprintf(`{"jsonrpc":"2.0","id":"s","method":"broker.submit","params":{"method":%q,"params":%s}}`, method, params)))
	if r.Error != nil {
		t.Fatalf("submit: %+v", r.Error)
	}
	var v struct{ ID, State string }
	if err := json.Unmarshal(r.Result, &v); err != nil || v.State != "QUEUED" || v.ID == "" {
		t.Fatalf("submit result %s (%v)", r.Result, err)
	}
	return v.ID
}

func status(t testing.TB, c *tpeer, id string) taskRecord {
	t.Helper()
	return recordOf(t, c.call(fmt.Sprintf(`{"jsonrpc":"2.0","id":"st","method":"broker.status","params":{"id":%q}}`, id)))
}

// TestBrokerMethods: each broker.* method and its errors, over a real socket.
func TestBrokerMethods(t *testing.T) {
	b := startBroker(t, Config{})
	n := newNode(t, b, "n1", "add", "sub")
	n.credit(3)
	c := dealer(t, b)
	testutil.Eventually(t, wait, func() bool {
		return strings.Contains(c.call(`{"jsonrpc":"2.0","id":"w","method":"broker.nodes"}`), `"credit":3`)
	}, "the node's credit counted")
	cases := []struct {
		name, req string
		code      int    // expected error code, 0 for a result
		contains  string // in the raw result
	}{
		{"ping", `{"method":"broker.ping"}`, 0, `"pong"`},
		{"ping positional", `{"method":"broker.ping","params":[]}`, 0, `"pong"`},
		{"hello client", `{"method":"broker.hello","params":{"role":"client"}}`, 0, `"max_batch":1024`},
		{"hello positional", `{"method":"broker.hello","params":["client",false]}`, 0, `"heartbeat_ms":1000`},
		{"hello bad role", `{"method":"broker.hello","params":{"role":"king"}}`, -32602, ""},
		{"hello bad params", `{"method":"broker.hello","params":{"role":7}}`, -32602, ""},
		{"hello negative concurrency", `{"method":"broker.hello","params":{"role":"node","methods":["x"],"concurrency":-1}}`, -32602, ""},
		{"stats", `{"method":"broker.stats"}`, 0, `"nodes":1`},
		{"nodes", `{"method":"broker.nodes"}`, 0, `"name":"n1","methods":["add","sub"],"queues":["default"],"concurrency":4,"credit":3,"running":0`},
		{"submit", `{"method":"broker.submit","params":{"method":"add","params":[1,2]}}`, 0, `"state":"QUEUED"`},
		{"submit positional", `{"method":"broker.submit","params":["add",[1,2]]}`, 0, `"state":"QUEUED"`},
		{"submit without params", `{"method":"broker.submit","params":{"method":"add"}}`, 0, `"state":"QUEUED"`},
		{"submit no method", `{"method":"broker.submit","params":{}}`, -32602, ""},
		{"submit method not a string", `{"method":"broker.submit","params":{"method":1}}`, -32602, ""},
		{"submit broker method", `{"method":"broker.submit","params":{"method":"broker.ping"}}`, -32602, ""},
		{"submit rpc method", `{"method":"broker.submit","params":{"method":"rpc.x"}}`, -32602, ""},
		{"submit scalar params", `{"method":"broker.submit","params":{"method":"add","params":3}}`, -32602, ""},
		{"status unknown", `{"method":"broker.status","params":{"id":"deadbeef-1"}}`, 0, `"state":"UNKNOWN"`},
		{"status positional", `{"method":"broker.status","params":["nope"]}`, 0, `{"id":"nope","state":"UNKNOWN"}`},
		{"status no id", `{"method":"broker.status","params":{}}`, -32602, ""},
		{"status id not a string", `{"method":"broker.status","params":{"id":5}}`, -32602, ""},
		{"result unknown", `{"method":"broker.result","params":{"id":"x","wait_ms":10}}`, 0, `"state":"UNKNOWN"`},
		{"result bad wait", `{"method":"broker.result","params":{"id":"x","wait_ms":-1}}`, -32602, ""},
		{"revoke unknown", `{"method":"broker.revoke","params":{"id":"x"}}`, 0, `"state":"UNKNOWN"`},
		{"revoke no id", `{"method":"broker.revoke"}`, -32602, ""},
		{"credit from a client", `{"method":"broker.credit","params":[1]}`, -32602, ""},
		{"credit negative", `{"method":"broker.credit","params":[-1]}`, -32602, ""},
		{"running not a list", `{"method":"broker.running","params":{"ids":3}}`, -32602, ""},
		{"running from a client", `{"method":"broker.running","params":[1,2]}`, -32602, ""},
		{"bye from a client", `{"method":"broker.bye"}`, -32602, ""},
		{"unknown broker method", `{"method":"broker.nosuch"}`, -32601, ""},
		{"rpc method", `{"method":"rpc.discover"}`, -32601, ""},
	}
	notices := 0
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := strings.Replace(tc.req, `{"method"`, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method"`, i), 1)
			body := c.call(req)
			if strings.Contains(body, `"method":"broker.hello_required"`) {
				// Node messages from a client: told once to say hello (after the -32602 of
				// the first one).
				notices++
				body = c.recv()
			}
			r := decodeResp(t, body)
			if string(r.ID) != fmt.Sprint(i) {
				t.Fatalf("id %s, want %d", r.ID, i)
			}
			if tc.code != 0 {
				if r.Error == nil || r.Error.Code != tc.code {
					t.Fatalf("reply %s, want error %d", body, tc.code)
				}
				return
			}
			if r.Error != nil || !strings.Contains(string(r.Result), tc.contains) {
				t.Fatalf("reply %s, want a result containing %s", body, tc.contains)
			}
		})
	}
	if notices != 1 {
		t.Errorf("broker.hello_required sent %d times to the client, want once", notices)
	}
	n.collect(3) // the three submits went to the node
}

// TestSubmitLifecycle: submit -> QUEUED -> RUNNING -> SUCCESS, and the result.
func TestSubmitLifecycle(t *testing.T) {
	b := startBroker(t, Config{})
	c := dealer(t, b)
	id := submit(t, c, "add", "[5,6]")
	if !strings.HasPrefix(id, b.ID()+"-") {
		t.Fatalf("id %q does not start with the broker id %q", id, b.ID())
	}
	if st := status(t, c, id); st.State != "QUEUED" || st.Method != "add" || st.Attempts != 0 {
		t.Fatalf("status %+v", st)
	}
	n := newNode(t, b, "n1", "add")
	n.credit(1)
	ts := n.collect(1)
	if st := status(t, c, id); st.State != "QUEUED" || st.Attempts != 1 || st.Node != "n1" {
		t.Fatalf("status after hand-out %+v", st)
	}
	n.send(fmt.Sprintf(`{"jsonrpc":"2.0","method":"broker.running","params":[%s]}`, ts[0].ID))
	testutil.Eventually(t, wait, func() bool { return status(t, c, id).State == "RUNNING" }, "RUNNING")
	n.result(ts[0].ID, "11")
	testutil.Eventually(t, wait, func() bool { return status(t, c, id).State == "SUCCESS" }, "SUCCESS")
	st := status(t, c, id)
	if string(st.Result) != "11" || st.Attempts != 1 || st.Node != "n1" || st.Error != nil {
		t.Fatalf("final status %+v", st)
	}
	rec := recordOf(t, c.call(fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"broker.result","params":{"id":%q}}`, id)))
	if rec.State != "SUCCESS" || string(rec.Result) != "11" {
		t.Fatalf("result %+v", rec)
	}
	// A failure is stored with its error object.
	id2 := submit(t, c, "add", `["x"]`)
	n.credit(1)
	ts = n.collect(1)
	n.fail(ts[0].ID, -32602, "bad")
	testutil.Eventually(t, wait, func() bool { return status(t, c, id2).State == "FAILURE" }, "FAILURE")
	if st := status(t, c, id2); st.Error == nil || st.Error.Code != -32602 || st.Result != nil {
		t.Fatalf("failure status %+v", st)
	}
	if s := b.Stats(); s.Submitted != 2 || s.Results != 2 {
		t.Fatalf("stats %+v", s)
	}
}

// TestResultWait: broker.result with wait_ms is answered when the task finishes (no polling),
// or with the current state when the wait ends.
func TestResultWait(t *testing.T) {
	b := startBroker(t, Config{})
	c := dealer(t, b)
	id := submit(t, c, "work", "[]")
	c.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":"w","method":"broker.result","params":{"id":%q,"wait_ms":10000}}`, id))
	c.none()
	testutil.Eventually(t, wait, func() bool { return b.Stats().Waiting == 1 }, "waiting")
	n := newNode(t, b, "n1", "work")
	n.credit(1)
	ts := n.collect(1)
	c.none()
	n.result(ts[0].ID, `{"ok":true}`)
	rec := recordOf(t, c.recv())
	if rec.State != "SUCCESS" || string(rec.Result) != `{"ok":true}` {
		t.Fatalf("record %+v", rec)
	}

	// The wait ends: the record as it is now.
	id2 := submit(t, c, "nobody", "[]")
	start := time.Now()
	rec = recordOf(t, c.call(fmt.Sprintf(`{"jsonrpc":"2.0","id":"w2","method":"broker.result","params":[%q,50]}`, id2)))
	if rec.State != "QUEUED" || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("record %+v after %v", rec, time.Since(start))
	}
	// Several waiters on one task, one of them in a batch.
	id3 := submit(t, c, "work", "[]")
	c2 := dealer(t, b)
	c.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"broker.result","params":{"id":%q,"wait_ms":10000}}`, id3))
	c2.send(fmt.Sprintf(`[{"jsonrpc":"2.0","id":2,"method":"broker.result","params":{"id":%q,"wait_ms":10000}},{"jsonrpc":"2.0","id":3,"method":"broker.ping"}]`, id3))
	testutil.Eventually(t, wait, func() bool { return b.Stats().Waiting == 2 }, "two waiting")
	n.credit(1)
	ts = n.collect(1)
	n.result(ts[0].ID, "3")
	if rec := recordOf(t, c.recv()); rec.State != "SUCCESS" {
		t.Fatalf("waiter 1: %+v", rec)
	}
	if rs := decodeResps(t, c2.recv()); len(rs) != 2 {
		t.Fatalf("batch %+v", rs)
	}
}

// TestResultEviction: records are forgotten past MaxResults (oldest first) and past ResultTTL.
func TestResultEviction(t *testing.T) {
	b := startBroker(t, Config{MaxResults: 2, ResultTTL: time.Hour})
	c := dealer(t, b)
	n := newNode(t, b, "n1", "work")
	var ids []string
	for i := 0; i < 3; i++ {
		ids = append(ids, submit(t, c, "work", "[]"))
	}
	n.credit(3)
	for _, tk := range n.collect(3) {
		n.result(tk.ID, "0")
	}
	testutil.Eventually(t, wait, func() bool { return b.Stats().Succeeded == 3 }, "done")
	if s := b.Stats(); s.Results != 2 {
		t.Fatalf("results kept %d, want 2", s.Results)
	}
	want := []string{"UNKNOWN", "SUCCESS", "SUCCESS"}
	for i, id := range ids {
		if st := status(t, c, id); st.State != want[i] {
			t.Fatalf("task %d: %s, want %s", i, st.State, want[i])
		}
	}

	t.Run("Bytes", func(t *testing.T) {
		// Each record counts its 1,000-byte result plus 128: two fit in 2,300 bytes, a third
		// pushes the oldest out.
		b := startBroker(t, Config{MaxResultBytes: 2300, ResultTTL: time.Hour})
		c := dealer(t, b)
		n := newNode(t, b, "n1", "work")
		big := `"` + strings.Repeat("x", 998) + `"`
		var ids []string
		for i := 0; i < 3; i++ {
			ids = append(ids, submit(t, c, "work", "[]"))
		}
		n.credit(3)
		for _, tk := range n.collect(3) {
			n.result(tk.ID, big)
		}
		testutil.Eventually(t, wait, func() bool { return b.Stats().Succeeded == 3 }, "done")
		if s := b.Stats(); s.Results != 2 {
			t.Fatalf("results kept %d, want 2", s.Results)
		}
		for i, id := range ids {
			if st := status(t, c, id); st.State != want[i] {
				t.Fatalf("task %d: %s, want %s", i, st.State, want[i])
			}
		}
	})

	t.Run("TTL", func(t *testing.T) {
		b := startBroker(t, Config{ResultTTL: 50 * time.Millisecond})
		c := dealer(t, b)
		n := newNode(t, b, "n1", "work")
		id := submit(t, c, "work", "[]")
		n.credit(1)
		n.result(n.collect(1)[0].ID, "0")
		testutil.Eventually(t, wait, func() bool { return status(t, c, id).State == "SUCCESS" }, "stored")
		testutil.Eventually(t, wait, func() bool { return status(t, c, id).State == "UNKNOWN" }, "forgotten after the TTL")
		if s := b.Stats(); s.Results != 0 {
			t.Fatalf("stats %+v", s)
		}
	})
}

// TestRevoke: a queued task is removed; a running one is marked and its node told on the
// control topic; its late result is ignored.
func TestRevoke(t *testing.T) {
	b := startBroker(t, Config{})
	sub := subscribe(t, b, "control")
	c := dealer(t, b)
	id := submit(t, c, "work", "[1]")
	rec := recordOf(t, c.call(fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"broker.revoke","params":{"id":%q}}`, id)))
	if rec.State != "REVOKED" || rec.Error == nil || rec.Error.Code != CodeRevoked {
		t.Fatalf("revoke queued: %+v", rec)
	}
	if s := b.Stats(); s.Queued != 0 || s.Revoked != 1 {
		t.Fatalf("stats %+v", s)
	}
	n := newNode(t, b, "n1", "work")
	n.credit(10)
	n.none() // the revoked task is not handed out

	id2 := submit(t, c, "work", "[2]")
	ts := n.collect(1)
	waitPeers(t, b, 2)
	rec = recordOf(t, c.call(fmt.Sprintf(`{"jsonrpc":"2.0","id":2,"method":"broker.revoke","params":[%q]}`, id2)))
	if rec.State != "REVOKED" {
		t.Fatalf("revoke running: %+v", rec)
	}
	// The node that holds it is told on its DEALER too (the PUB is lossy).
	if got, want := n.recv(), `{"jsonrpc":"2.0","method":"broker.revoke","params":{"ids":[`+string(ts[0].ID)+`]}}`; got != want {
		t.Fatalf("notice to the node %s, want %s", got, want)
	}
	_, body := sub.until(func(topic, body string) bool { return strings.Contains(body, "broker.revoke") })
	if !strings.Contains(body, `"ids":[`+string(ts[0].ID)+`]`) {
		t.Fatalf("control %s, want id %s", body, ts[0].ID)
	}
	n.result(ts[0].ID, "2")
	testutil.Eventually(t, wait, func() bool { s := b.Stats(); return s.Running == 0 }, "revoked task freed")
	if st := status(t, c, id2); st.State != "REVOKED" {
		t.Fatalf("status %+v", st)
	}
	// Revoking a finished task changes nothing.
	id3 := submit(t, c, "work", "[3]")
	n.result(n.collect(1)[0].ID, "3")
	testutil.Eventually(t, wait, func() bool { return status(t, c, id3).State == "SUCCESS" }, "done")
	if rec := recordOf(t, c.call(fmt.Sprintf(`{"jsonrpc":"2.0","id":3,"method":"broker.revoke","params":{"id":%q}}`, id3))); rec.State != "SUCCESS" {
		t.Fatalf("revoke finished: %+v", rec)
	}
}

// TestRetryState: a submitted task whose node dies shows RETRY with its attempts counted.
func TestRetryState(t *testing.T) {
	b := startBroker(t, Config{})
	c := dealer(t, b)
	a := newNode(t, b, "a", "work")
	id := submit(t, c, "work", "[]")
	a.credit(1)
	a.collect(1)
	a.s.Close()
	testutil.Eventually(t, wait, func() bool { return status(t, c, id).State == "RETRY" }, "RETRY")
	n := newNode(t, b, "b", "work")
	n.credit(1)
	n.result(n.collect(1)[0].ID, "1")
	testutil.Eventually(t, wait, func() bool { return status(t, c, id).State == "SUCCESS" }, "SUCCESS")
	if st := status(t, c, id); st.Attempts != 2 || st.Node != "b" {
		t.Fatalf("status %+v", st)
	}
}

// TestUserBrokerTask: a user handler registered as broker.new_hotness runs in the broker, off
// the routing loop; built-ins cannot be replaced.
func TestUserBrokerTask(t *testing.T) {
	d := dispatch.New()
	release := make(chan struct{})
	var calls atomic.Int32
	d.MustRegister("broker.new_hotness", dispatch.Func1(func(ctx context.Context, s string) (string, error) {
		calls.Add(1)
		if s == "block" {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return "hot " + s, nil
	}))
	if err := d.Register("broker.ping", dispatch.HandlerFunc(func(ctx context.Context, dst, params []byte) ([]byte, error) {
		return append(dst, `"mine"`...), nil
	})); err != nil {
		t.Fatal(err)
	}
	b := startBroker(t, Config{Dispatcher: d, BrokerTaskWorkers: 1, BrokerTaskQueue: 1})
	c := dealer(t, b)
	if got := c.call(`{"jsonrpc":"2.0","id":1,"method":"broker.new_hotness","params":["stuff"]}`); got != `{"jsonrpc":"2.0","id":1,"result":"hot stuff"}` {
		t.Fatalf("reply %s", got)
	}
	if got := c.call(`{"jsonrpc":"2.0","id":2,"method":"broker.ping"}`); got != `{"jsonrpc":"2.0","id":2,"result":"pong"}` {
		t.Fatalf("built-in replaced: %s", got)
	}
	// A blocking broker task does not block routing; the worker bound holds.
	c.send(`{"jsonrpc":"2.0","id":3,"method":"broker.new_hotness","params":["block"]}`)
	testutil.Eventually(t, wait, func() bool { return calls.Load() == 2 }, "blocking task started")
	c.send(`{"jsonrpc":"2.0","id":4,"method":"broker.new_hotness","params":["queued"]}`)
	if got := c.call(`{"jsonrpc":"2.0","id":5,"method":"broker.ping"}`); !strings.Contains(got, "pong") {
		t.Fatalf("ping while a broker task blocks: %s", got)
	}
	if code := errCode(t, c.call(`{"jsonrpc":"2.0","id":6,"method":"broker.new_hotness","params":["refused"]}`)); code != CodeQueueFull {
		t.Fatalf("past BrokerTaskQueue: code %d", code)
	}
	close(release)
	got := []string{c.recv(), c.recv()}
	if got[0] != `{"jsonrpc":"2.0","id":3,"result":"hot block"}` || got[1] != `{"jsonrpc":"2.0","id":4,"result":"hot queued"}` {
		t.Fatalf("replies %q", got)
	}
	// Handler errors come back as JSON-RPC errors.
	if code := errCode(t, c.call(`{"jsonrpc":"2.0","id":8,"method":"broker.new_hotness","params":[1,2]}`)); code != -32602 {
		t.Fatalf("bad params: code %d", code)
	}
}

// TestResultWaitClientGone: the waits of a client that disconnects are forgotten at once.
func TestResultWaitClientGone(t *testing.T) {
	b := startBroker(t, Config{})
	c := dealer(t, b)
	id := submit(t, c, "nobody", "[]")
	for i := 0; i < 3; i++ {
		c.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"broker.result","params":{"id":%q,"wait_ms":3600000}}`, i, id))
	}
	c.send(fmt.Sprintf(`[{"jsonrpc":"2.0","id":9,"method":"broker.result","params":{"id":%q,"wait_ms":3600000}}]`, id))
	testutil.Eventually(t, wait, func() bool { return b.Stats().Waiting == 4 }, "4 waiting")
	c2 := dealer(t, b)
	c2.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"broker.result","params":{"id":%q,"wait_ms":3600000}}`, id))
	testutil.Eventually(t, wait, func() bool { return b.Stats().Waiting == 5 }, "5 waiting")
	c.s.Close()
	testutil.Eventually(t, wait, func() bool { return b.Stats().Waiting == 1 }, "the gone client's waits forgotten")
	n := newNode(t, b, "n", "nobody")
	n.credit(1)
	n.result(n.collect(1)[0].ID, "7")
	if rec := recordOf(t, c2.recv()); rec.State != "SUCCESS" || string(rec.Result) != "7" {
		t.Fatalf("remaining waiter: %+v", rec)
	}
	b.mu.Lock()
	nb := 0
	for _, bt := range b.c.batches {
		if bt.used {
			nb++
		}
	}
	b.mu.Unlock()
	if nb != 0 {
		t.Fatalf("%d batches still open", nb)
	}
}
