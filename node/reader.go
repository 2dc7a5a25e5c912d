package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/dispatch"
	"github.com/zerotask/zerotask/internal/brokerlink"
	"github.com/zerotask/zerotask/protocol"
	"github.com/zerotask/zerotask/zmtp"
)

// receiveHandler returns the DEALER's receive handler: the broker's messages are read into
// tasks on the connection's reader goroutine, which hands each task straight to a worker.
func (n *Node) receiveHandler() func([]*zmtp.Msg) {
	r := &reader{n: n, lim: codec.Limits{MaxFrame: int(n.cfg.MaxMsgSize)}}
	return brokerlink.Handler(r.ingest)
}

// reader turns broker messages into queued tasks. It belongs to one DEALER reader at a time
// (brokerlink.Handler); its buffers are reused from message to message.
type reader struct {
	n     *Node
	lim   codec.Limits
	h     codec.Header
	it    codec.BatchIter
	tasks []*task
	env   envelope  // the extension members of the task being read
	now   time.Time // when the message being read arrived: one clock read per message
	// The last timeout_ms read in this message (its raw digits) and the deadline it gave:
	// the tasks of one message mostly carry the same.
	lastTimeout  [20]byte
	lastTimeoutN int
	lastDeadline time.Time
	skips        int            // messages handed to the workers since an inline run was slow (runInline)
	spare        freeList       // tasks done, taken from the task queue's free list (newTask)
	fast         []codec.Header // the headers of a batch fastBatch read
}

// newTask copies id, method and params into a task from the reader's spare ones, refilled
// from the task queue's free list, or else from the pool.
func (r *reader) newTask(id, method, params []byte) *task {
	if r.spare.head == nil {
		r.spare = r.n.q.takeFree()
	}
	if t := r.spare.pop(); t != nil {
		return fillTask(t, id, method, params)
	}
	return newTask(id, method, params)
}

// putTask keeps t, a task the reader is done with, among its spare ones.
func (r *reader) putTask(t *task) {
	if !r.spare.push(t) {
		putTask(t)
	}
}

// ingest handles one message body: tasks are queued, the hello reply is read, anything else is
// logged and dropped. An array is validated as BatchIter walks it (syntax, limits, what follows
// it), each element scanned once instead of the whole array first: one that turns out malformed
// past its first elements is dropped with its tasks (a response or notice before the fault has
// been acted on, as it would be had it come alone).
func (r *reader) ingest(body []byte) {
	n := r.n
	r.tasks = r.tasks[:0]
	r.now, r.lastTimeoutN = time.Time{}, 0
	if len(body) > 0 && body[0] == '[' && r.fastBatch(body) {
		for k := range r.fast {
			r.one(&r.fast[k])
		}
		clear(r.fast) // no views into body kept past it
	} else if i := codec.SkipSpace(body, 0); i < len(body) && body[i] == '[' {
		r.it.ResetLimits(body, &r.lim)
		for r.it.Next() {
			h, err := r.it.Header()
			if err != nil {
				continue
			}
			r.one(h)
		}
		if err := r.it.Err(); err != nil {
			n.log.Warn("node: bad message from broker", "err", err, "bytes", len(body))
			for _, t := range r.tasks {
				r.putTask(t)
			}
			clear(r.tasks)
			r.tasks = r.tasks[:0]
			return
		}
	} else {
		if err := codec.ScanLimits(body, &r.h, &r.lim); err != nil {
			n.log.Warn("node: bad message from broker", "err", err, "bytes", len(body))
			return
		}
		r.one(&r.h)
	}
	if len(r.tasks) == 0 {
		return
	}
	n.received.Add(uint64(len(r.tasks)))
	ok := n.out.accept(len(r.tasks))
	if ok == 1 && len(r.tasks) == 1 && r.runInline(r.tasks[0]) {
		r.tasks[0] = nil
		r.tasks = r.tasks[:0]
		return
	}
	for _, t := range r.tasks[ok:] {
		n.noCredit.Add(1)
		n.log.Warn("node: task without credit refused", "id", string(t.id))
		n.out.refuse(t.id)
		r.putTask(t)
	}
	if !n.q.push(r.tasks[:ok]) {
		// Stopping: not started, not answered; the bye hands them back.
		for _, t := range r.tasks[:ok] {
			r.putTask(t)
		}
		n.out.release(ok)
	}
	clear(r.tasks)
	r.tasks = r.tasks[:0]
}

// runInline runs t on the reader itself, as a worker would, and reports whether it did. A
// lone task in its message (a sequential call's) whose handler is context-free runs here when
// the node is idle (no task waits, every worker waits), taking a worker's slot meanwhile
// (taskQueue.lend): its reply then leaves from this goroutine, written straight to the
// connection, without the hand-off to a worker and back (a wake-up each way, most of the
// node's share of a call's round trip). Anything else goes to the workers as before: a message
// of several tasks (they run in parallel there, and none waits behind the reader), a task that
// arrives while a worker is busy (under load the reader only reads), a handler
// that reads its context (it may block: the connection would read nothing meanwhile, PINGs
// included), Config.Metrics (run times them), and, once an inline run took svcAlwaysAbove or
// more, the next inlineRetry messages (a slow context-free handler holds up the reader at most
// once per inlineRetry messages).
func (r *reader) runInline(t *task) bool {
	n := r.n
	if n.cfg.Metrics {
		return false
	}
	w := n.inl
	if w.lastSvc >= svcAlwaysAbove {
		if r.skips++; r.skips < inlineRetry {
			return false
		}
		r.skips = 0
	}
	h, found := n.d.LookupCached(&w.look, t.method)
	if !found {
		return false
	}
	if _, free := h.(dispatch.ContextFree); !free {
		return false
	}
	if !n.q.lend(n) {
		return false
	}
	if !r.now.IsZero() {
		w.clock, w.clockRuns = r.now, 0 // read on arrival: as fresh as the task
	}
	n.inlined.Add(1)
	w.runFree(t, h)
	if w.done != nil {
		r.putTask(w.done)
		w.done = nil
	}
	n.q.giveBack(n)
	return true
}

// inlineRetry is how many messages go to the workers after a slow inline run before the reader
// runs one again (runInline).
const inlineRetry = 64

// one handles one JSON-RPC object from the broker.
func (r *reader) one(h *codec.Header) {
	switch h.Kind {
	case codec.KindRequest:
		method := h.Method
		if h.MethodEscaped {
			method = codec.AppendUnescape(nil, method)
		}
		t := r.newTask(h.ID, method, h.Params)
		r.env.read(h.Ext, h.Params)
		// The task's deadline travels as the milliseconds left when the broker handed it out
		// (a ZeroTask extension, outside params): the node's clock takes it from here.
		if raw := r.env.timeoutMS; r.lastTimeoutN > 0 && string(raw) == string(r.lastTimeout[:r.lastTimeoutN]) {
			t.deadline = r.lastDeadline
		} else if ms, ok := envelopeUint(raw); ok && ms > 0 {
			if r.now.IsZero() {
				r.now = time.Now()
			}
			t.deadline = r.now.Add(time.Duration(min(ms, maxTimeoutMS)) * time.Millisecond)
			if len(raw) <= len(r.lastTimeout) {
				r.lastTimeoutN = copy(r.lastTimeout[:], raw)
				r.lastDeadline = t.deadline
			}
		}
		r.taskInfo(t)
		r.tasks = append(r.tasks, t)
	case codec.KindResponse:
		r.n.response(h)
	case codec.KindNotification:
		r.n.notice(h)
	}
}

// taskInfo reads what a handler learns of its task through dispatch.TaskInfoFrom: the task's
// record id (submitted tasks only), attempt number, queue and meta. The queue's name is one of
// the node's own (Config.Queues), so naming it allocates nothing; the id and the meta, when
// there are, cost their copies (the handler may keep them).
func (r *reader) taskInfo(t *task) {
	if a, ok := envelopeUint(r.env.attempt); ok && a <= protocol.MaxAttemptsCap {
		t.attempt = int(a)
	}
	t.queue = protocol.DefaultQueue
	if q, ok := envelopeString(r.env.queue); ok {
		t.queue = r.n.queueName(q)
	}
	if id, ok := envelopeString(r.env.task); ok && len(id) <= maxTaskID {
		t.taskID = string(id)
	}
	if m := r.env.meta; len(m) >= 2 && m[0] == '{' && len(m) <= protocol.MaxMetaLen {
		t.meta = string(m)
	}
}

// maxTaskID bounds the task id a node takes from a hand-out.
const maxTaskID = 256

// maxTimeoutMS bounds a task's timeout_ms, as the broker does.
const maxTimeoutMS = uint64(protocol.MaxTimeout / time.Millisecond)

// notice handles a notification from the broker on the DEALER: a revoke sent straight to the
// node that holds the task (it does not depend on the lossy PUB), or the broker's shutdown.
func (n *Node) notice(h *codec.Header) {
	switch string(h.Method) {
	case protocol.MethodRevoke:
		n.controlOne(h)
	case protocol.MethodShutdown:
		n.log.Info("node: the broker is shutting down")
	case protocol.MethodHelloRequired:
		n.log.Info("node: the broker does not know this connection as a node: saying hello again")
		n.out.rehello()
	default:
		n.log.Debug("node: notification from broker ignored", "method", string(h.Method))
	}
}

// response handles a response from the broker: hello replies, and the answers to credit
// grants sent as round-trip probes.
func (n *Node) response(h *codec.Header) {
	if seq, ok := bytes.CutPrefix(h.ID, []byte(`"`+probePrefix)); ok {
		now := time.Now()
		if v, err := strconv.ParseUint(string(bytes.TrimSuffix(seq, []byte(`"`))), 10, 64); err == nil && h.Error == nil {
			n.out.mu.Lock()
			n.out.win.answered(v, now)
			grew := n.out.grantLocked() > 0
			n.out.mu.Unlock()
			if grew {
				n.out.wake() // a window grown while the node is idle: grant it now, not at the next result
			}
		}
		return
	}
	if !bytes.HasPrefix(h.ID, []byte(`"hello-`)) {
		n.log.Debug("node: unexpected response from broker", "id", string(h.ID))
		return
	}
	if h.Error != nil {
		n.log.Error("node: broker refused hello", "error", string(h.Error))
		return
	}
	var reply struct {
		Broker      string `json:"broker"`
		HeartbeatMS int    `json:"heartbeat_ms"`
		MaxBatch    int    `json:"max_batch"`
		MaxMsgSize  int64  `json:"max_msg_size"`
	}
	if err := codec.Unmarshal(h.Result, &reply); err != nil {
		n.log.Warn("node: bad hello reply", "err", err)
		return
	}
	if reply.MaxBatch > 0 || reply.MaxMsgSize > 0 {
		n.out.mu.Lock()
		if reply.MaxBatch > 0 {
			n.out.out.MaxBatch = reply.MaxBatch
		}
		// The node's messages stay within what the broker receives as well as its own bound:
		// a larger one would close the connection and lose the tasks it holds.
		n.out.out.MaxBytes = int(min(n.cfg.MaxMsgSize, max(reply.MaxMsgSize, 256)))
		if reply.MaxMsgSize <= 0 {
			n.out.out.MaxBytes = int(n.cfg.MaxMsgSize)
		}
		n.out.mu.Unlock()
	}
	seq, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(string(h.ID), `"hello-`), `"`))
	n.out.helloReply(seq, reply.Broker)
	n.log.Info("node: connected to broker", "broker", reply.Broker, "max_batch", reply.MaxBatch)
}

// helloFrame builds the broker.hello request for connection number seq.
func (n *Node) helloFrame(seq int) []byte {
	id := strconv.AppendInt([]byte(`"hello-`), int64(seq), 10)
	id = append(id, '"')
	return protocol.AppendNodeHello(nil, id, &protocol.NodeHello{
		Name:        n.cfg.Name,
		Methods:     n.d.Methods(),
		Concurrency: n.cfg.Concurrency,
		Prefetch:    n.cfg.Prefetch,
		Queues:      n.cfg.Queues,
		MaxMsgSize:  n.cfg.MaxMsgSize,
	})
}

// subLoop receives the PUB control topic until the socket closes: revokes.
func (n *Node) subLoop(life context.Context) {
	for {
		m, err := n.sub.Recv(life)
		if err != nil {
			if !errors.Is(err, zmtp.ErrClosed) && life.Err() == nil {
				n.log.Error("node: receive on SUB failed", "err", err)
			}
			return
		}
		if len(m.Frames) == 2 {
			n.control(m.Frames[1])
		}
		m.Release()
	}
}

// control handles a body published on the control topic: a notification or an array of them.
func (n *Node) control(body []byte) {
	var h codec.Header
	if err := codec.Scan(body, &h); err != nil {
		return
	}
	if h.Kind != codec.KindBatch {
		n.controlOne(&h)
		return
	}
	var it codec.BatchIter
	it.Reset(body)
	for it.Next() {
		if eh, err := it.Header(); err == nil {
			n.controlOne(eh)
		}
	}
}

func (n *Node) controlOne(h *codec.Header) {
	if h.Kind != codec.KindNotification || string(h.Method) != protocol.MethodRevoke {
		return
	}
	var p struct {
		IDs []json.RawMessage `json:"ids"`
		ID  json.RawMessage   `json:"id"`
	}
	if err := codec.Unmarshal(h.Params, &p); err != nil {
		n.log.Warn("node: bad revoke", "err", err)
		return
	}
	if p.ID != nil {
		p.IDs = append(p.IDs, p.ID)
	}
	// The tasks waiting here are marked first: cancelling a running one frees its worker,
	// which would otherwise start the next waiting task before its revoke is read (a revoked
	// graph's prefetched step ran for a moment that way).
	hit := make([]bool, len(p.IDs))
	for i, id := range p.IDs {
		hit[i] = n.q.revoke(id)
	}
	for i, id := range p.IDs {
		for _, w := range n.workers {
			if w.revoke(id) {
				hit[i] = true
			}
		}
		if hit[i] {
			n.revoked.Add(1)
			n.log.Info("node: task revoked", "id", string(id))
		}
	}
}
