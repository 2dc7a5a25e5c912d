package client

import (
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/fake"
	"github.com/zerotask/zerotask/zmtp"
)

// fakeBroker is a minimal broker for the client's tests: a zmtp ROUTER speaking the client side
// of docs/protocol.md with encoding/json (independent of codec). Task calls are answered by the
// fake itself: add, echo, sleep (answers after its param in ms), fail (a custom error), hang
// (answers when release is called). broker.submit/status/result/revoke keep task records,
// broker.result holds its request until the task is done or wait_ms passes.
type fakeBroker struct {
	fake.Server // router, Mu (guards everything below), change signal, violations
	t           testing.TB

	msgs       int            // messages received
	requests   int            // requests received (hello excluded)
	maxMembers int            // most members in one message
	bare       int            // messages that were a bare object
	methods    map[string]int // requests per method
	hellos     int
	unordered  bool
	notified   []string            // notifications received
	raws       map[string][]string // raw request objects by method (hello excluded)
	hung       []hungCall
	tasks      map[string]*fakeTask
	nextTask   int
	maxBatch   int
	refuse     bool // answer hellos with -32602
	maxHung    int  // most hanging calls at once
}

type hungCall struct {
	identity []byte
	id       json.RawMessage
}

type fakeTask struct {
	id, method string
	params     json.RawMessage
	state      string
	result     json.RawMessage
	errObj     json.RawMessage
	waiters    []chan struct{}
}

type rpcMsg struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
}

func newFakeBroker(t testing.TB, endpoint ...string) *fakeBroker {
	t.Helper()
	f := &fakeBroker{
		t:        t,
		methods:  map[string]int{},
		tasks:    map[string]*fakeTask{},
		maxBatch: 1024,
	}
	ep := "tcp://127.0.0.1:0"
	if len(endpoint) == 1 {
		ep = endpoint[0]
	}
	f.Start(t, zmtp.Options{}, ep, f.handle)
	return f
}

func (f *fakeBroker) handle(identity, body []byte) {
	var items []json.RawMessage
	batch := len(body) > 0 && body[0] == '['
	if batch {
		if err := json.Unmarshal(body, &items); err != nil {
			f.Violation("bad JSON from client: %s", body)
			return
		}
	} else {
		items = []json.RawMessage{body}
	}
	var replies []string
	f.Mu.Lock()
	f.msgs++
	f.maxMembers = max(f.maxMembers, len(items))
	if !batch {
		f.bare++
	}
	if len(items) > f.maxBatch {
		f.ViolationLocked("batch of %d > max_batch %d", len(items), f.maxBatch)
	}
	if batch && !f.unordered {
		f.ViolationLocked("batch before an unordered hello")
	}
	f.Mu.Unlock()
	for _, raw := range items {
		var m rpcMsg
		if err := json.Unmarshal(raw, &m); err != nil || m.JSONRPC != "2.0" || m.Method == "" {
			f.Violation("bad request %s", raw)
			continue
		}
		if m.Method != "broker.hello" {
			f.Mu.Lock()
			if f.raws == nil {
				f.raws = map[string][]string{}
			}
			f.raws[m.Method] = append(f.raws[m.Method], string(raw))
			f.Mu.Unlock()
		}
		if r := f.request(identity, m); r != "" {
			replies = append(replies, r)
		}
	}
	f.Mu.Lock()
	f.SignalLocked()
	f.Mu.Unlock()
	switch len(replies) {
	case 0:
	case 1:
		f.send(identity, replies[0])
	default:
		out := "["
		for i, r := range replies {
			if i > 0 {
				out += ","
			}
			out += r
		}
		f.send(identity, out+"]")
	}
}

func result(id json.RawMessage, v string) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":%s}`, id, v)
}

func errorReply(id json.RawMessage, code int, msg, data string) string {
	if data != "" {
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"error":{"code":%d,"message":%q,"data":%s}}`, id, code, msg, data)
	}
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"error":{"code":%d,"message":%q}}`, id, code, msg)
}

// request handles one request; it returns the reply to send now ("" for none or later).
func (f *fakeBroker) request(identity []byte, m rpcMsg) string {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	if m.ID == nil {
		f.notified = append(f.notified, m.Method)
		return ""
	}
	if m.Method == "broker.hello" {
		var p struct {
			Role      string `json:"role"`
			Unordered bool   `json:"unordered"`
		}
		_ = json.Unmarshal(m.Params, &p)
		if f.refuse {
			return errorReply(m.ID, -32602, "Invalid params: no clients today", "")
		}
		if p.Role != "client" || !p.Unordered {
			f.ViolationLocked("hello params %s", m.Params)
		}
		f.hellos++
		f.unordered = p.Unordered
		return result(m.ID, fmt.Sprintf(`{"broker":"fake","heartbeat_ms":1000,"max_batch":%d}`, f.maxBatch))
	}
	f.requests++
	f.methods[m.Method]++
	switch m.Method {
	case "add":
		var xs []float64
		if err := json.Unmarshal(m.Params, &xs); err != nil || len(xs) != 2 {
			return errorReply(m.ID, -32602, "Invalid params", "")
		}
		return result(m.ID, strconv.FormatFloat(xs[0]+xs[1], 'f', -1, 64))
	case "echo":
		var xs []json.RawMessage
		if err := json.Unmarshal(m.Params, &xs); err == nil && len(xs) == 1 {
			return result(m.ID, string(xs[0]))
		}
		if m.Params == nil {
			return result(m.ID, "null")
		}
		return result(m.ID, string(m.Params))
	case "sleep":
		var xs []int
		_ = json.Unmarshal(m.Params, &xs)
		ms := 0
		if len(xs) > 0 {
			ms = xs[0]
		}
		reply := result(m.ID, strconv.Itoa(ms))
		f.Later(time.Duration(ms)*time.Millisecond, func() { f.send(identity, reply) })
		return ""
	case "fail":
		return errorReply(m.ID, -32099, "boom", `{"why":"asked to"}`)
	case "hang":
		f.hung = append(f.hung, hungCall{identity: identity, id: m.ID})
		f.maxHung = max(f.maxHung, len(f.hung))
		return ""
	case "broker.submit":
		var p struct {
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
		}
		_ = json.Unmarshal(m.Params, &p)
		f.nextTask++
		id := fmt.Sprintf("t-%d", f.nextTask)
		task := &fakeTask{id: id, method: p.Method, params: p.Params, state: "QUEUED"}
		f.tasks[id] = task
		f.runTaskLocked(task)
		return result(m.ID, fmt.Sprintf(`{"id":%q,"state":"QUEUED"}`, id))
	case "broker.status", "broker.result", "broker.revoke":
		var p struct {
			ID     string `json:"id"`
			WaitMS int    `json:"wait_ms"`
		}
		_ = json.Unmarshal(m.Params, &p)
		task := f.tasks[p.ID]
		if task == nil {
			return result(m.ID, fmt.Sprintf(`{"id":%q,"state":"UNKNOWN"}`, p.ID))
		}
		if m.Method == "broker.revoke" && !done(task.state) {
			task.state = "REVOKED"
			task.errObj = json.RawMessage(`{"code":-32004,"message":"task revoked"}`)
			f.finishLocked(task)
		}
		if m.Method != "broker.result" || done(task.state) || p.WaitMS <= 0 {
			return result(m.ID, task.record())
		}
		ch := make(chan struct{})
		task.waiters = append(task.waiters, ch)
		wait := time.Duration(p.WaitMS) * time.Millisecond
		id := m.ID
		f.Go(func() {
			t := time.NewTimer(wait)
			defer t.Stop()
			select {
			case <-ch:
			case <-t.C:
			case <-f.Ctx.Done():
				return
			}
			f.Mu.Lock()
			rec := task.record()
			f.Mu.Unlock()
			f.send(identity, result(id, rec))
		})
		return ""
	}
	return errorReply(m.ID, -32601, "Method not found", "")
}

func done(state string) bool {
	switch state {
	case "SUCCESS", "FAILURE", "REVOKED", "EXPIRED":
		return true
	}
	return false
}

func (t *fakeTask) record() string {
	s := fmt.Sprintf(`{"id":%q,"method":%q,"state":%q,"attempts":1,"node":"fake-node"`, t.id, t.method, t.state)
	if t.result != nil {
		s += `,"result":` + string(t.result)
	}
	if t.errObj != nil {
		s += `,"error":` + string(t.errObj)
	}
	return s + "}"
}

// runTaskLocked runs a submitted task: QUEUED for 20ms, then RUNNING for its sleep, then done.
func (f *fakeBroker) runTaskLocked(task *fakeTask) {
	f.Later(20*time.Millisecond, func() {
		f.Mu.Lock()
		if done(task.state) {
			f.Mu.Unlock()
			return
		}
		task.state = "RUNNING"
		f.SignalLocked()
		f.Mu.Unlock()
		ms := 0
		if task.method == "sleep" {
			var xs []int
			_ = json.Unmarshal(task.params, &xs)
			if len(xs) > 0 {
				ms = xs[0]
			}
		}
		f.Later(time.Duration(ms)*time.Millisecond, func() {
			f.Mu.Lock()
			defer f.Mu.Unlock()
			if done(task.state) {
				return
			}
			switch task.method {
			case "sleep":
				task.state, task.result = "SUCCESS", json.RawMessage(strconv.Itoa(ms))
			case "fail":
				task.state, task.errObj = "FAILURE", json.RawMessage(`{"code":-32099,"message":"boom"}`)
			default:
				task.state, task.result = "SUCCESS", json.RawMessage(`true`)
			}
			f.finishLocked(task)
		})
	})
}

func (f *fakeBroker) finishLocked(task *fakeTask) {
	for _, ch := range task.waiters {
		close(ch)
	}
	task.waiters = nil
	f.SignalLocked()
}

// later runs fn after d on a goroutine the fake waits for when it closes.
func (f *fakeBroker) send(identity []byte, body string) { f.Send(identity, []byte(body)) }

// release answers every hung call with result.
func (f *fakeBroker) release(res string) {
	f.Mu.Lock()
	hung := f.hung
	f.hung = nil
	f.Mu.Unlock()
	for _, h := range hung {
		f.send(h.identity, result(h.id, res))
	}
}

// snapshot runs fn with the fake's state locked.
func (f *fakeBroker) snapshot(fn func(f *fakeBroker)) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	fn(f)
}

// waitFor blocks until cond (called with the state locked) holds, or fails the test.
func (f *fakeBroker) waitFor(timeout time.Duration, what string, cond func(f *fakeBroker) bool) {
	f.t.Helper()
	f.WaitFor(timeout, what, func() bool { return cond(f) }, nil)
}
