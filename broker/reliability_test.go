package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/zmtp"
)

// submitExt submits method with params and the extra params members ext (`"key":"k"`, ...),
// returning the decoded reply.
func submitExt(t testing.TB, c *tpeer, method, params, ext string) resp {
	t.Helper()
	if ext != "" {
		ext = "," + ext
	}
	return decodeResp(t, c.call(fmt.Sprintf(`{"jsonrpc":"2.0","id":"s","method":"broker.submit","params":{"method":%q,"params":%s%s}}`, method, params, ext)))
}

func submitID(t testing.TB, c *tpeer, method, params, ext string) string {
	t.Helper()
	r := submitExt(t, c, method, params, ext)
	if r.Error != nil {
		t.Fatalf("submit: %+v", r.Error)
	}
	var v struct{ ID string }
	if err := json.Unmarshal(r.Result, &v); err != nil || v.ID == "" {
		t.Fatalf("submit result %s", r.Result)
	}
	return v.ID
}

// paramsOf returns the params of tasks as strings, in order.
func paramsOf(ts []ntask) []string {
	out := make([]string, len(ts))
	for i, tk := range ts {
		out[i] = string(tk.Params)
	}
	return out
}

// TestPriorities: within a queue higher priorities go first, FIFO within one priority; a task
// given back by a lost node goes first within its priority.
func TestPriorities(t *testing.T) {
	b := startBroker(t, Config{})
	n := newNode(t, b, "n", "work")
	c := dealer(t, b)
	for i, p := range []int{0, 5, 9, 5, 0, 9} {
		c.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"work","params":[%d],"priority":%d}`, i, i, p))
	}
	testutil.Eventually(t, wait, func() bool { return b.Stats().Queued == 6 }, "6 queued")
	n.credit(6)
	got := strings.Join(paramsOf(n.collect(6)), " ")
	if want := "[2] [5] [1] [3] [0] [4]"; got != want {
		t.Fatalf("hand-out order %s, want %s", got, want)
	}
	for _, bad := range []string{`"priority":10`, `"priority":-1`, `"priority":"high"`, `"queue":""`, `"queue":7`,
		`"max_attempts":0`, `"max_attempts":101`, `"timeout_ms":0`, `"timeout_ms":1.5`, `"timeout_ms":"5"`,
		`"timeout_ms":-5`, `"timeout_ms":5,"priority":10`, `"delay_ms":-5`, `"backoff_ms":0`,
		`"backoff_ms":100,"max_backoff_ms":10`} {
		body := c.call(`{"jsonrpc":"2.0","id":"bad","method":"work",` + bad + `}`)
		if code := errCode(t, body); code != -32602 {
			t.Errorf("%s: reply %s, want -32602", bad, body)
		}
	}
}

// TestNamedQueues: a task names a queue; only the nodes that serve that queue get it. Records
// and broker.nodes show the queues.
func TestNamedQueues(t *testing.T) {
	b := startBroker(t, Config{})
	c := dealer(t, b)
	hi := newNodeQueues(t, b, "hi", []string{"high"}, "work")
	def := newNode(t, b, "def", "work")
	both := newNodeQueues(t, b, "both", []string{"default", "low"}, "work", "other")
	hi.credit(10)
	def.credit(10)
	both.credit(10)
	id := submitID(t, c, "work", "[1]", `"queue":"high"`)
	if tk := hi.collect(1)[0]; string(tk.Params) != "[1]" {
		t.Fatalf("high queue task %+v", tk)
	}
	if rec := status(t, c, id); rec.State != "QUEUED" {
		t.Fatalf("status %+v", rec)
	}
	submitID(t, c, "work", "[2]", `"queue":"low"`)
	if tk := both.collect(1)[0]; string(tk.Params) != "[2]" {
		t.Fatalf("low queue task %+v", tk)
	}
	// A queue nobody serves waits; the default queue is served by def and both.
	submitID(t, c, "work", "[3]", `"queue":"nobody"`)
	testutil.Eventually(t, wait, func() bool { return b.Stats().Queued == 1 }, "the unserved queue waits")
	hi.none()
	nodes := c.call(`{"jsonrpc":"2.0","id":1,"method":"broker.nodes"}`)
	if !strings.Contains(nodes, `"name":"both","methods":["work","other"],"queues":["default","low"]`) {
		t.Fatalf("broker.nodes %s", nodes)
	}
	raw := c.call(fmt.Sprintf(`{"jsonrpc":"2.0","id":"st","method":"broker.status","params":{"id":%q}}`, id))
	if !strings.Contains(raw, `"method":"work","queue":"high"`) {
		t.Fatalf("record %s, want the queue", raw)
	}
}

func newNodeQueues(t testing.TB, b *Broker, name string, queues []string, methods ...string) *tnode {
	t.Helper()
	n := &tnode{tpeer: dialPeer(t, b, zmtp.Dealer, ""), name: name}
	ms, _ := json.Marshal(methods)
	qs, _ := json.Marshal(queues)
	r := decodeResp(t, n.call(fmt.Sprintf(`{"jsonrpc":"2.0","id":"hello","method":"broker.hello","params":{"role":"node","name":%q,"methods":%s,"queues":%s,"concurrency":4}}`, name, ms, qs)))
	if r.Error != nil {
		t.Fatalf("hello: %+v", r.Error)
	}
	return n
}

// TestDelayedTasks: a delayed task is held by the broker, apart from every node, until it is
// due: never handed out early, never twice; a revoked one never runs; one whose deadline comes
// first expires without running.
func TestDelayedTasks(t *testing.T) {
	b := startBroker(t, Config{})
	n := newNode(t, b, "n", "work")
	n.credit(10)
	c := dealer(t, b)
	start := time.Now()
	id := submitID(t, c, "work", "[1]", `"delay_ms":400`)
	revoked := submitID(t, c, "work", "[2]", `"delay_ms":200`)
	expired := submitID(t, c, "work", "[3]", `"delay_ms":2000,"timeout_ms":300`)
	eta := submitID(t, c, "work", "[4]", fmt.Sprintf(`"eta_ms":%d`, time.Now().Add(600*time.Millisecond).UnixMilli()))
	if s := b.Stats(); s.Scheduled != 4 || s.Queued != 0 {
		t.Fatalf("stats %+v, want 4 scheduled", s)
	}
	if rec := status(t, c, id); rec.State != "QUEUED" || rec.Attempts != 0 {
		t.Fatalf("delayed status %+v", rec)
	}
	recordOf(t, c.call(fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"broker.revoke","params":{"id":%q}}`, revoked)))
	tk := n.collect(1)[0]
	if el := time.Since(start); string(tk.Params) != "[1]" || el < 400*time.Millisecond {
		t.Fatalf("first task %s after %v, want [1] after 400ms", tk.Params, el)
	}
	n.result(tk.ID, "1")
	tk = n.collect(1)[0]
	if el := time.Since(start); string(tk.Params) != "[4]" || el < 550*time.Millisecond {
		t.Fatalf("eta task %s after %v, want [4] after 600ms", tk.Params, el)
	}
	n.result(tk.ID, "4")
	n.none()
	for _, tc := range []struct{ id, state string }{{id, "SUCCESS"}, {revoked, "REVOKED"}, {expired, "EXPIRED"}, {eta, "SUCCESS"}} {
		testutil.Eventually(t, wait, func() bool { return status(t, c, tc.id).State == tc.state }, "%s %s", tc.id, tc.state)
	}
	if s := b.Stats(); s.Scheduled != 0 || s.Expired != 1 {
		t.Fatalf("stats %+v", s)
	}
	// A delayed call (not a submit) is answered when it has run; its client leaving drops it.
	c.send(`{"jsonrpc":"2.0","id":"late","method":"work","params":[5],"delay_ms":100}`)
	tk = n.collect(1)[0]
	n.result(tk.ID, "5")
	if r := decodeResp(t, c.recv()); string(r.ID) != `"late"` || string(r.Result) != "5" {
		t.Fatalf("delayed call reply %+v", r)
	}
	gone := dealer(t, b)
	gone.send(`{"jsonrpc":"2.0","id":1,"method":"work","params":[6],"delay_ms":200}`)
	testutil.Eventually(t, wait, func() bool { return b.Stats().Scheduled == 1 }, "scheduled")
	gone.s.Close()
	testutil.Eventually(t, wait, func() bool { return b.Stats().Scheduled == 0 }, "dropped with its client")
	n.none()
	if code := errCode(t, c.call(`{"jsonrpc":"2.0","id":2,"method":"work","delay_ms":99999999999}`)); code != -32602 {
		t.Fatalf("delay past MaxDelay: %d", code)
	}
}

// TestRetryableErrors: an error the node marks retryable runs the task again after the
// backoff, in state RETRY meanwhile, while attempts are left; then the last error is final.
// An unmarked error is final at once.
func TestRetryableErrors(t *testing.T) {
	b := startBroker(t, Config{})
	n := newNode(t, b, "n", "work")
	n.credit(10)
	c := dealer(t, b)
	id := submitID(t, c, "work", "[1]", `"max_attempts":3,"backoff_ms":100,"max_backoff_ms":200`)
	var gaps []time.Duration
	last := time.Now()
	for attempt := 1; attempt <= 3; attempt++ {
		tk := n.collect(1)[0]
		gaps = append(gaps, time.Since(last))
		n.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"error":{"code":-32050,"message":"busy %d"},"retry":true}`, tk.ID, attempt))
		last = time.Now()
		if attempt < 3 {
			testutil.Eventually(t, wait, func() bool { return status(t, c, id).State == "RETRY" }, "RETRY")
		}
	}
	testutil.Eventually(t, wait, func() bool { return status(t, c, id).State == "FAILURE" }, "FAILURE")
	rec := status(t, c, id)
	if rec.Attempts != 3 || rec.Error == nil || rec.Error.Code != -32050 {
		t.Fatalf("record %+v, want 3 attempts and the last error", rec)
	}
	for i, g := range gaps[1:] {
		if g < 50*time.Millisecond || g > 2*time.Second {
			t.Errorf("retry %d came %v after the failure, want the backoff (50ms..200ms, jittered)", i+1, g)
		}
	}
	// retry_after_ms chooses the delay (capped by max_backoff_ms); an unmarked error is final.
	id2 := submitID(t, c, "work", "[2]", `"backoff_ms":10,"max_backoff_ms":300`)
	tk := n.collect(1)[0]
	n.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"error":{"code":-32050,"message":"later"},"retry":true,"retry_after_ms":100000}`, tk.ID))
	failed := time.Now()
	tk = n.collect(1)[0]
	if g := time.Since(failed); g < 250*time.Millisecond {
		t.Errorf("retry_after_ms capped at 300ms came after %v", g)
	}
	n.fail(tk.ID, -32051, "final")
	testutil.Eventually(t, wait, func() bool { return status(t, c, id2).State == "FAILURE" }, "final failure")
	if rec := status(t, c, id2); rec.Attempts != 2 || rec.Error.Code != -32051 {
		t.Fatalf("record %+v", rec)
	}
	// A call (not a submit) is retried the same way, and answered once.
	c.send(`{"jsonrpc":"2.0","id":"call","method":"work","params":[3],"backoff_ms":10}`)
	tk = n.collect(1)[0]
	n.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"error":{"code":-32050,"message":"again"},"retry":true}`, tk.ID))
	n.result(n.collect(1)[0].ID, `"ok"`)
	if got := c.recv(); got != `{"jsonrpc":"2.0","id":"call","result":"ok"}` {
		t.Fatalf("retried call reply %s", got)
	}
	c.none()
	if s := b.Stats(); s.Retried != 4 {
		t.Errorf("retried %d, want 4", s.Retried)
	}
}

// TestBackoff: the delay doubles per attempt, is capped, and its upper half is jittered.
func TestBackoff(t *testing.T) {
	r := newRig(t, Config{RetryBackoff: 100 * time.Millisecond, MaxRetryBackoff: time.Second})
	tk := &task{}
	for attempt, want := range map[uint8]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 20: time.Second} {
		tk.attempts = attempt
		lo, hi := want, time.Duration(0)
		for range 200 {
			d := r.c.backoff(0, tk, 0)
			lo, hi = min(lo, d), max(hi, d)
		}
		if lo < want/2 || hi > want || hi-lo < want/4 {
			t.Errorf("attempt %d: backoff in [%v, %v], want jittered within [%v, %v]", attempt, lo, hi, want/2, want)
		}
	}
	if d := r.c.backoff(0, tk, 5*time.Second); d != time.Second {
		t.Errorf("retry_after past the cap: %v", d)
	}
}

// TestNodeLostAttempts: a task whose node is lost runs again while attempts are left; then it
// fails with -32006.
func TestNodeLostAttempts(t *testing.T) {
	b := startBroker(t, Config{MaxAttempts: 2})
	c := dealer(t, b)
	id := submitID(t, c, "work", "[]", "")
	one := submitID(t, c, "work", "[1]", `"max_attempts":1`)
	for i := range 2 {
		a := newNode(t, b, fmt.Sprint("a", i), "work")
		a.credit(2)
		a.collect(2 - i)
		a.s.Close()
		testutil.Eventually(t, wait, func() bool { return b.Stats().Nodes == 0 }, "node gone")
	}
	for _, tid := range []string{id, one} {
		testutil.Eventually(t, wait, func() bool { return status(t, c, tid).State == "FAILURE" }, "FAILURE")
		if rec := status(t, c, tid); rec.Error == nil || rec.Error.Code != CodeNodeLost {
			t.Fatalf("record %+v, want -32006", rec)
		}
	}
	if rec := status(t, c, id); rec.Attempts != 2 {
		t.Errorf("attempts %d, want 2", rec.Attempts)
	}
}

// TestIdempotencyKey: a second submit with the same key, while the broker knows the first
// task, returns its id and runs nothing; a task is never run twice for one key.
func TestIdempotencyKey(t *testing.T) {
	b := startBroker(t, Config{})
	c := dealer(t, b)
	n := newNode(t, b, "n", "work")
	first := submitExt(t, c, "work", "[1]", `"key":"order-17"`)
	again := submitExt(t, c, "work", "[1]", `"key":"order-17"`)
	if first.Error != nil || again.Error != nil {
		t.Fatalf("submits %+v %+v", first.Error, again.Error)
	}
	var a, bb struct {
		ID, State string
		Duplicate bool
	}
	_ = json.Unmarshal(first.Result, &a)
	_ = json.Unmarshal(again.Result, &bb)
	if a.ID == "" || a.ID != bb.ID || a.Duplicate || !bb.Duplicate {
		t.Fatalf("first %s, again %s: want the same id, the second marked duplicate", first.Result, again.Result)
	}
	other := submitID(t, c, "work", "[2]", `"key":"order-18"`)
	n.credit(10)
	ts := n.collect(2)
	n.none()
	for _, tk := range ts {
		n.result(tk.ID, string(tk.Params))
	}
	testutil.Eventually(t, wait, func() bool { return status(t, c, a.ID).State == "SUCCESS" }, "done")
	// Known as a finished record: still the same task, not run again.
	third := submitExt(t, c, "work", "[1]", `"key":"order-17"`)
	if !strings.Contains(string(third.Result), a.ID) || !strings.Contains(string(third.Result), `"state":"SUCCESS"`) {
		t.Fatalf("after completion %s", third.Result)
	}
	n.none()
	if s := b.Stats(); s.Duplicate != 2 || s.Submitted != 2 {
		t.Fatalf("stats %+v", s)
	}
	if other == a.ID {
		t.Fatal("different keys, same task")
	}
	for _, bad := range []string{`"key":""`, `"key":5`, `"key":"` + strings.Repeat("k", MaxKeyLen+1) + `"`} {
		if r := submitExt(t, c, "work", "[]", bad); r.Error == nil || r.Error.Code != -32602 {
			t.Errorf("%s: %+v", bad, r)
		}
	}
}

// TestIdempotencyKeyForgotten: once the first task's record is forgotten, the key is free.
func TestIdempotencyKeyForgotten(t *testing.T) {
	r := newRig(t, Config{MaxResults: 1})
	submit := func(key string) string {
		r.send("C", `{"jsonrpc":"2.0","id":1,"method":"broker.submit","params":{"method":"m","key":"`+key+`"}}`)
		return string(r.out.body("C"))
	}
	id1 := submit("k")
	if dup := submit("k"); !strings.Contains(dup, `"duplicate":true`) {
		t.Fatalf("second submit %s", dup)
	}
	// Revoke it (stored as a record), then push the record out with another one.
	seq := uint64(1)
	r.send("C", `{"jsonrpc":"2.0","id":2,"method":"broker.revoke","params":{"id":"`+string(r.c.appendBareID(nil, 1))+`"}}`)
	submit("other")
	r.send("C", `{"jsonrpc":"2.0","id":2,"method":"broker.revoke","params":{"id":"`+string(r.c.appendBareID(nil, 2))+`"}}`)
	if r.c.known(seq) {
		t.Fatalf("record 1 still kept with MaxResults 1")
	}
	if fresh := submit("k"); strings.Contains(fresh, `"duplicate"`) || fresh == id1 {
		t.Fatalf("after the first task was forgotten: %s", fresh)
	}
	// Stale keys are swept: the map stays bounded by what the broker knows.
	for i := range 5000 {
		submit(fmt.Sprint("sweep-", i))
		r.send("C", fmt.Sprintf(`{"jsonrpc":"2.0","id":2,"method":"broker.revoke","params":{"id":"%s"}}`, r.c.appendBareID(nil, r.c.seq)))
	}
	if n := len(r.c.keys); n > 2048 {
		t.Errorf("%d keys kept for 1 record", n)
	}
}

// TestDeadlineTravels: a task handed to a node carries the milliseconds left to its deadline;
// a node's -32005 (it waited there past its deadline) makes the task EXPIRED.
func TestDeadlineTravels(t *testing.T) {
	b := startBroker(t, Config{})
	n := newNode(t, b, "n", "work")
	n.credit(10)
	c := dealer(t, b)
	c.send(`{"jsonrpc":"2.0","id":1,"method":"work","params":[1],"timeout_ms":5000}`)
	fr := n.recvFrames(wait)
	var tk struct {
		ID        json.RawMessage `json:"id"`
		TimeoutMS int             `json:"timeout_ms"`
	}
	if err := json.Unmarshal(fr[len(fr)-1], &tk); err != nil || tk.TimeoutMS < 4000 || tk.TimeoutMS > 5000 {
		t.Fatalf("task %s: want timeout_ms about 5000", fr[len(fr)-1])
	}
	n.result(tk.ID, "1")
	c.recv()
	c.send(`{"jsonrpc":"2.0","id":2,"method":"work","params":[2]}`)
	body := n.recvFrames(wait)[0]
	if !strings.Contains(string(body), `"timeout_ms":1800000`) {
		t.Fatalf("task without a deadline does not carry TaskTimeout (30 min): %s", body)
	}
	id := submitID(t, c, "work", "[3]", `"timeout_ms":60000`)
	ts := append(parseTasks(t, body), n.collect(1)...)
	for _, x := range ts {
		n.fail(x.ID, CodeExpired, "task expired")
	}
	c.recv() // the call's error
	testutil.Eventually(t, wait, func() bool { return status(t, c, id).State == "EXPIRED" }, "EXPIRED")
	if s := b.Stats(); s.Expired != 2 {
		t.Errorf("expired %d, want 2", s.Expired)
	}
}

// TestMethodTooLong: a method name past MaxMethodLen is refused and makes no queue.
func TestMethodTooLong(t *testing.T) {
	b := startBroker(t, Config{MaxMethodLen: 16})
	c := dealer(t, b)
	long := strings.Repeat("m", 17)
	for _, req := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"` + long + `"}`,
		`{"jsonrpc":"2.0","id":1,"method":"` + strings.Repeat(`\u006d`, 17) + `"}`, // 17 bytes once decoded
		`{"jsonrpc":"2.0","id":1,"method":"broker.submit","params":{"method":"` + long + `"}}`,
	} {
		if code := errCode(t, c.call(req)); code != -32600 {
			t.Errorf("%s: code %d, want -32600", req, code)
		}
	}
	if code := errCode(t, c.call(`{"jsonrpc":"2.0","id":1,"method":"`+long[:16]+`","timeout_ms":1}`)); code != CodeExpired {
		t.Errorf("16 bytes: code %d, want a queued call that expires", code)
	}
	if s := b.Stats(); s.Methods != 0 {
		t.Errorf("%d methods left", s.Methods)
	}
}

// TestBacklogBound: the replies kept for a peer that does not read are bounded (MaxBacklog);
// past it they are dropped and counted, and the broker keeps serving everyone else.
func TestBacklogBound(t *testing.T) {
	b := startBroker(t, Config{SendHWM: 4, MaxBacklog: 256 << 10, Logger: discardLogger()})
	// A peer that never reads: its socket takes one message, then TCP pushes back.
	s := zmtp.NewDealer(zmtp.Options{RecvHWM: 1, MaxMsgSize: -1, Logger: discardLogger()})
	if err := s.Connect(b.Addr()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	slow := &tpeer{t: t, s: s}
	req := `{"jsonrpc":"2.0","id":1,"method":"broker.stats"}`
	batch := "[" + strings.Repeat(req+",", 255) + req + "]"
	for range 200 {
		slow.send(batch) // replies pile up in the kernel, in zmtp, then in the broker, then dropped
	}
	testutil.Eventually(t, 20*time.Second, func() bool { return b.Stats().Unsent > 0 }, "replies dropped past the backlog")
	c := dealer(t, b)
	if got := c.call(`{"jsonrpc":"2.0","id":1,"method":"broker.ping"}`); !strings.Contains(got, "pong") {
		t.Fatalf("ping %s", got)
	}
	b.mu.Lock()
	var most int64
	for _, p := range b.c.peers {
		most = max(most, p.backlog)
	}
	b.mu.Unlock()
	if most > 256<<10 {
		t.Errorf("backlog %d bytes, bound %d", most, 256<<10)
	}
}

// TestShutdownKeepsResults: during a shutdown, results of the tasks still running stay
// readable: Shutdown waits until they are read, or until ResultGrace.
func TestShutdownKeepsResults(t *testing.T) {
	for _, read := range []bool{true, false} {
		t.Run(fmt.Sprint("read=", read), func(t *testing.T) {
			b, err := New(Config{Listen: "tcp://127.0.0.1:0", Pub: "none", ResultGrace: 700 * time.Millisecond, Logger: discardLogger()})
			if err != nil {
				t.Fatal(err)
			}
			errc := make(chan error, 1)
			go func() { errc <- b.Serve(context.Background()) }()
			n := newNode(t, b, "n", "work")
			n.credit(1)
			c := dealer(t, b)
			id := submitID(t, c, "work", "[1]", "")
			tk := n.collect(1)[0]
			// A result wait open when the shutdown begins is answered when the task ends.
			c.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":"w","method":"broker.result","params":{"id":%q,"wait_ms":10000}}`, id))
			testutil.Eventually(t, wait, func() bool { return b.Stats().Waiting == 1 }, "waiting")
			shut := make(chan time.Time, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := b.Shutdown(ctx); err != nil {
					t.Errorf("Shutdown: %v", err)
				}
				shut <- time.Now()
			}()
			if got := c.recv(); got != string(shutdownNotice) {
				t.Fatalf("notice %s", got)
			}
			if r := decodeResp(t, c.call(`{"jsonrpc":"2.0","id":"new","method":"broker.submit","params":{"method":"work"}}`)); r.Error == nil || r.Error.Code != CodeShuttingDown {
				t.Fatalf("submit during shutdown %+v", r)
			}
			if !read {
				// The waiter reads the result: end it first, so nobody reads.
				c.s.Close()
				testutil.Eventually(t, wait, func() bool { return b.Stats().Waiting == 0 }, "wait dropped")
			}
			n.result(tk.ID, `"done"`)
			done := time.Now()
			if read {
				rec := recordOf(t, c.recv())
				if rec.State != "SUCCESS" || string(rec.Result) != `"done"` {
					t.Fatalf("result during shutdown %+v", rec)
				}
			}
			at := <-shut
			took := at.Sub(done)
			switch {
			case read && took > 500*time.Millisecond:
				t.Errorf("Shutdown took %v after the result was read, want at once", took)
			case !read && (took < 600*time.Millisecond || took > 3*time.Second):
				t.Errorf("Shutdown took %v with an unread result, want about ResultGrace (700ms)", took)
			}
			if err := <-errc; !errors.Is(err, ErrServerClosed) {
				t.Fatalf("Serve: %v", err)
			}
		})
	}
}

// TestLeaseGivenUp: a node that holds a task past its deadline (a handler that ignores its
// context, a node that never answers) does not keep it RUNNING forever: past the deadline and
// a grace of 3 heartbeats the broker fails it with -32011; a late answer is ignored.
func TestLeaseGivenUp(t *testing.T) {
	b := startBroker(t, Config{HeartbeatInterval: 200 * time.Millisecond})
	n := newNode(t, b, "n", "work")
	n.credit(10)
	c := dealer(t, b)
	start := time.Now()
	c.send(`{"jsonrpc":"2.0","id":1,"method":"work","timeout_ms":300}`)
	id := submitID(t, c, "work", "[]", `"timeout_ms":300`)
	ts := n.collect(2)
	r := decodeResp(t, c.recv())
	if r.Error == nil || r.Error.Code != CodeDeadline {
		t.Fatalf("call given up: %+v", r)
	}
	if el := time.Since(start); el < 800*time.Millisecond || el > 5*time.Second {
		t.Errorf("given up after %v, want about the deadline + 3 heartbeats (900ms)", el)
	}
	testutil.Eventually(t, wait, func() bool { return status(t, c, id).State == "FAILURE" }, "FAILURE")
	stale := b.Stats().Stale
	for _, tk := range ts {
		n.result(tk.ID, `"late"`)
	}
	testutil.Eventually(t, wait, func() bool { return b.Stats().Stale == stale+2 }, "late answers ignored")
	if rec := status(t, c, id); rec.State != "FAILURE" || rec.Error.Code != CodeDeadline {
		t.Fatalf("record %+v", rec)
	}
	if s := b.Stats(); s.Running != 0 {
		t.Errorf("running %d", s.Running)
	}
}

// TestNoCreditGivesBack: a node that answers -32010 (the task came beyond its credit) did not
// run the task: it goes back to the front of its queue, no attempt counted, and runs.
func TestNoCreditGivesBack(t *testing.T) {
	b := startBroker(t, Config{MaxAttempts: 1})
	c := dealer(t, b)
	n := newNode(t, b, "n1", "work")
	id := submitID(t, c, "work", `["a"]`, "")
	n.credit(1)
	first := n.collect(1)
	n.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"error":{"code":-32010,"message":"node: task sent without credit while the node is full","data":{"no_credit":true}}}`, first[0].ID))
	n.credit(1)
	again := n.collect(1)
	if string(again[0].Params) != `["a"]` || string(again[0].ID) == string(first[0].ID) {
		t.Fatalf("handed out again as %s %s (first %s)", again[0].ID, again[0].Params, first[0].ID)
	}
	n.result(again[0].ID, "1")
	testutil.Eventually(t, wait, func() bool { return status(t, c, id).State == "SUCCESS" }, "task ran")
	if rec := status(t, c, id); rec.Attempts != 1 {
		t.Fatalf("attempts %d, want 1 (the refused hand-out does not count)", rec.Attempts)
	}
}

// TestHandlerCode32010: a handler's own error with code -32010 (no "no_credit" data) is an
// ordinary failure, answered to the caller.
func TestHandlerCode32010(t *testing.T) {
	b := startBroker(t, Config{})
	c := dealer(t, b)
	n := newNode(t, b, "n1", "divide")
	n.credit(1)
	c.send(`{"jsonrpc":"2.0","id":9,"method":"divide","params":[1,0]}`)
	ts := n.collect(1)
	n.fail(ts[0].ID, -32010, "division by zero")
	if code := errCode(t, c.recv()); code != -32010 {
		t.Fatalf("answered %d, want the handler's -32010", code)
	}
}
