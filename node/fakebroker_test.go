package node

import (
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/fake"
	"github.com/zerotask/zerotask/zmtp"
)

// fakeBroker is a minimal broker for the node's tests: a zmtp ROUTER (and PUB) speaking the
// node side of docs/protocol.md with encoding/json, independent of the codec package. It hands
// queued tasks to nodes strictly within their credit, and checks the node's side of the
// contract as it goes: credit outstanding plus tasks held never above the capacity the node
// announced, results only for tasks it holds.
type fakeBroker struct {
	fake.Server // router, Mu (guards everything below), change signal, violations
	t           testing.TB
	pub         *zmtp.Socket
	PubAddr     string
	maxBatch    int

	peers      map[string]*fakePeer
	queue      []fakeTask
	results    map[string]fakeResult // task id -> response
	order      []string              // event log: "hello", "credit N", "running ID", "result ID", "bye"
	msgs       int                   // messages received
	members    int                   // JSON objects received
	maxMembers int                   // most members in one message
	nextID     int
	holdCredit bool // do not hand out tasks
}

type fakePeer struct {
	identity []byte
	hello    map[string]any
	capacity int
	credit   int
	held     map[string]bool
	hellos   int
	byes     int
	maxHeld  int
}

type fakeTask struct {
	id     string
	method string
	params string
	extra  string // extension members for the envelope, e.g. `"timeout_ms":50`
}

type fakeResult struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	} `json:"error"`
	Retry        bool  `json:"retry"`
	RetryAfterMS int64 `json:"retry_after_ms"`
	at           int   // index in order
}

// newFakeBroker binds a fake broker on free loopback ports (or on the given endpoints, to
// restart one in place) and serves until the test ends or Close.
func newFakeBroker(t testing.TB, endpoints ...string) *fakeBroker {
	t.Helper()
	f := &fakeBroker{
		t:        t,
		maxBatch: 1024,
		peers:    map[string]*fakePeer{},
		results:  map[string]fakeResult{},
	}
	addr, pubAddr := "tcp://127.0.0.1:0", "tcp://127.0.0.1:0"
	if len(endpoints) == 2 {
		addr, pubAddr = endpoints[0], endpoints[1]
	}
	f.pub = zmtp.NewPub(zmtp.Options{})
	if err := fake.Bind(f.pub, pubAddr); err != nil {
		t.Fatalf("fake broker bind pub: %v", err)
	}
	f.PubAddr = f.pub.LastEndpoint()
	t.Cleanup(func() { f.pub.Close() }) // after the router's Close (cleanups run last first)
	f.Start(t, zmtp.Options{HeartbeatInterval: time.Second}, addr, func(identity, body []byte) {
		f.handle(identity, body)
		f.dispatch()
	})
	return f
}

// Close stops the fake broker and closes its sockets (connections drop, as in a crash).
func (f *fakeBroker) Close() {
	f.Server.Close()
	f.pub.Close()
}

// handle processes one message from a peer.
func (f *fakeBroker) handle(identity, body []byte) {
	var items []json.RawMessage
	if len(body) > 0 && body[0] == '[' {
		if err := json.Unmarshal(body, &items); err != nil {
			f.Violation("bad JSON array from node: %s", body)
			return
		}
	} else {
		items = []json.RawMessage{body}
	}
	f.Mu.Lock()
	defer f.Mu.Unlock()
	defer f.SignalLocked()
	f.msgs++
	f.members += len(items)
	f.maxMembers = max(f.maxMembers, len(items))
	if len(items) > f.maxBatch {
		f.ViolationLocked("message with %d members > max_batch %d", len(items), f.maxBatch)
	}
	p := f.peers[string(identity)]
	for _, raw := range items {
		var msg struct {
			JSONRPC string          `json:"jsonrpc"`
			ID      json.RawMessage `json:"id"`
			Method  string          `json:"method"`
			Params  json.RawMessage `json:"params"`
			Result  json.RawMessage `json:"result"`
			Error   json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(raw, &msg); err != nil || msg.JSONRPC != "2.0" {
			f.ViolationLocked("bad member %s", raw)
			continue
		}
		switch {
		case msg.Method == "broker.hello":
			var hp map[string]any
			_ = json.Unmarshal(msg.Params, &hp)
			if p == nil {
				p = &fakePeer{identity: identity}
				f.peers[string(identity)] = p
			}
			p.hello = hp
			conc, _ := hp["concurrency"].(float64)
			pre, _ := hp["prefetch"].(float64)
			p.capacity = int(conc + pre)
			p.credit = 0
			p.held = map[string]bool{} // a new hello: the fake forgets what it gave before
			p.hellos++
			f.order = append(f.order, "hello")
			reply := fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":{"broker":"fake","heartbeat_ms":1000,"max_batch":%d}}`, msg.ID, f.maxBatch)
			f.sendLocked(identity, []byte(reply))
		case p == nil:
			f.ViolationLocked("message before hello: %s", raw)
		case msg.Method == "broker.credit":
			var n []int
			if err := json.Unmarshal(msg.Params, &n); err != nil || len(n) != 1 || n[0] <= 0 {
				f.ViolationLocked("bad credit %s", raw)
				continue
			}
			p.credit += n[0]
			f.order = append(f.order, "credit "+strconv.Itoa(n[0]))
			if msg.ID != nil { // a round-trip probe: answered with the credit now, as the broker does
				f.sendLocked(identity, []byte(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":%d}`, msg.ID, p.credit)))
			}
			if p.credit+len(p.held) > p.capacity {
				f.ViolationLocked("credit %d + held %d > capacity %d", p.credit, len(p.held), p.capacity)
			}
		case msg.Method == "broker.running":
			var ids []json.RawMessage
			_ = json.Unmarshal(msg.Params, &ids)
			for _, id := range ids {
				f.order = append(f.order, "running "+string(id))
			}
		case msg.Method == "broker.bye":
			p.byes++
			f.order = append(f.order, "bye")
		case msg.Method != "":
			f.ViolationLocked("unexpected method %q", msg.Method)
		default: // a response
			id := string(msg.ID)
			var r fakeResult
			_ = json.Unmarshal(raw, &r)
			r.at = len(f.order)
			f.order = append(f.order, "result "+id)
			if _, dup := f.results[id]; dup {
				f.ViolationLocked("second result for %s", id)
			}
			f.results[id] = r
			if !p.held[id] {
				f.ViolationLocked("result for %s, which the node does not hold", id)
			}
			delete(p.held, id)
		}
	}
}

// dispatch hands queued tasks to peers within their credit, packed several per message.
func (f *fakeBroker) dispatch() {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	if f.holdCredit {
		return
	}
	for _, p := range f.peers {
		if p.hello == nil || p.credit == 0 || len(f.queue) == 0 {
			continue
		}
		k := min(p.credit, len(f.queue), f.maxBatch)
		body := []byte{'['}
		for i, t := range f.queue[:k] {
			if i > 0 {
				body = append(body, ',')
			}
			body = fmt.Appendf(body, `{"jsonrpc":"2.0","id":%s,"method":%q,"params":%s`, t.id, t.method, t.params)
			if t.extra != "" {
				body = append(append(body, ','), t.extra...)
			}
			body = append(body, '}')
			p.held[t.id] = true
		}
		body = append(body, ']')
		f.queue = f.queue[k:]
		p.credit -= k
		p.maxHeld = max(p.maxHeld, len(p.held))
		f.sendLocked(p.identity, body)
	}
}

func (f *fakeBroker) sendLocked(identity, body []byte) { f.Send(identity, body) }

// submit queues a task and returns its id (a JSON number, as the broker's).
func (f *fakeBroker) submit(method, params string) string {
	f.Mu.Lock()
	f.nextID++
	id := strconv.Itoa(f.nextID)
	f.queue = append(f.queue, fakeTask{id: id, method: method, params: params})
	f.Mu.Unlock()
	f.kickDispatch()
	return id
}

// submitExt queues a task whose object carries the extension members extra (e.g.
// `"timeout_ms":50`) and returns its id.
func (f *fakeBroker) submitExt(method, params, extra string) string {
	f.Mu.Lock()
	f.nextID++
	id := strconv.Itoa(f.nextID)
	f.queue = append(f.queue, fakeTask{id: id, method: method, params: params, extra: extra})
	f.Mu.Unlock()
	f.kickDispatch()
	return id
}

// submitMany queues several tasks at once, so that they leave in the same messages.
func (f *fakeBroker) submitMany(method string, params []string) []string {
	f.Mu.Lock()
	ids := make([]string, len(params))
	for i, p := range params {
		f.nextID++
		ids[i] = strconv.Itoa(f.nextID)
		f.queue = append(f.queue, fakeTask{id: ids[i], method: method, params: p})
	}
	f.Mu.Unlock()
	f.kickDispatch()
	return ids
}

// sendRaw sends a body to every peer that said hello, whatever their credit (to test refusals).
func (f *fakeBroker) sendRaw(body string) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	for _, p := range f.peers {
		f.sendLocked(p.identity, []byte(body))
	}
}

// hold stops (true) or resumes (false) handing out tasks.
func (f *fakeBroker) hold(on bool) {
	f.Mu.Lock()
	f.holdCredit = on
	f.Mu.Unlock()
	if !on {
		f.kickDispatch()
	}
}

// kickDispatch runs dispatch from the caller's goroutine (the serve loop also runs it after
// every message).
func (f *fakeBroker) kickDispatch() { f.dispatch() }

// publish sends a PUB message.
func (f *fakeBroker) publish(topic, body string) {
	if err := f.pub.SendFrames(f.Ctx, []byte(topic), []byte(body)); err != nil {
		f.t.Errorf("fake broker publish: %v", err)
	}
}

// snapshot runs fn with the fake's state locked.
func (f *fakeBroker) snapshot(fn func(f *fakeBroker)) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	fn(f)
}

// result returns the response received for id, if any.
func (f *fakeBroker) result(id string) (fakeResult, bool) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	r, ok := f.results[id]
	return r, ok
}

// waitFor blocks until cond (called with the state locked) holds, or fails the test.
func (f *fakeBroker) waitFor(timeout time.Duration, what string, cond func(f *fakeBroker) bool) {
	f.t.Helper()
	f.WaitFor(timeout, what, func() bool { return cond(f) }, func() string {
		order := f.order
		if len(order) > 40 {
			order = order[len(order)-40:]
		}
		return fmt.Sprintf("last events %v", order)
	})
}

// onlyPeer returns the single peer (tests run one node per fake).
func (f *fakeBroker) onlyPeerLocked() *fakePeer {
	for _, p := range f.peers {
		return p
	}
	return nil
}
