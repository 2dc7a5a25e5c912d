package node

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/zerotask/zerotask/codec"
)

// task is one task received from the broker: its id, method and params copied out of the
// broker's message into storage owned by the task, so the message can be released at once.
// Tasks are pooled: a task record is reused for later tasks once its result is appended.
type task struct {
	id     []byte // raw JSON id (the broker's task number), sub-slice of buf
	method []byte // unescaped method name, sub-slice of buf
	params []byte // raw JSON params or nil, sub-slice of buf
	buf    []byte

	next    *task // queue link (taskQueue.mu held)
	revoked bool  // a broker.revoke named it while it waited (taskQueue.mu held)

	// startIdx is the task's index in outbox.started while it runs and its running notice has
	// not been sent; -1 otherwise (outbox.mu held).
	startIdx int
}

// maxPooledTask is the largest task storage kept in the pool; bigger tasks (rare) are left to
// the GC instead of pinning memory.
const maxPooledTask = 64 << 10

var taskPool = sync.Pool{New: func() any { return &task{startIdx: -1} }}

// newTask copies id, method and params into a pooled task.
func newTask(id, method, params []byte) *task {
	t := taskPool.Get().(*task)
	b := append(t.buf[:0], id...)
	b = append(b, method...)
	b = append(b, params...)
	t.buf = b
	t.id = b[:len(id):len(id)]
	t.method = b[len(id) : len(id)+len(method) : len(id)+len(method)]
	if params != nil {
		t.params = b[len(id)+len(method):]
	} else {
		t.params = nil
	}
	return t
}

// putTask returns t to the pool.
func putTask(t *task) {
	t.id, t.method, t.params, t.next = nil, nil, nil, nil
	t.revoked = false
	t.startIdx = -1
	if cap(t.buf) > maxPooledTask {
		t.buf = nil
	}
	taskPool.Put(t)
}

// taskQueue holds tasks received and not started, first in first out, for the workers. It is a
// linked list through task.next: pushing and popping allocate nothing. Its length is bounded by
// the node's capacity because the broker never sends more tasks than the credit granted (tasks
// past it are refused before they are queued).
type taskQueue struct {
	mu     sync.Mutex
	cond   sync.Cond // signalled per pushed task, broadcast on close
	head   *task
	tail   *task
	n      int
	closed bool // the node is stopping: pop returns nil once the queue is empty
}

func (q *taskQueue) init() { q.cond.L = &q.mu }

func (q *taskQueue) len() int {
	q.mu.Lock()
	n := q.n
	q.mu.Unlock()
	return n
}

// empty reports whether no task waits. The answer may be stale by the time it is used; workers
// use it only to decide whether to send now or let a later result carry theirs.
func (q *taskQueue) empty() bool {
	q.mu.Lock()
	e := q.n == 0
	q.mu.Unlock()
	return e
}

// push queues the tasks of one broker message and wakes as many workers. It returns false (and
// queues nothing) when the node is stopping: the caller then drops them.
func (q *taskQueue) push(ts []*task) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	for _, t := range ts {
		if q.tail == nil {
			q.head = t
		} else {
			q.tail.next = t
		}
		q.tail = t
		q.n++
		q.cond.Signal()
	}
	q.mu.Unlock()
	return true
}

// pop blocks until a task is ready and returns it, or returns nil when the queue is closed.
func (q *taskQueue) pop() *task {
	q.mu.Lock()
	for q.head == nil && !q.closed {
		q.cond.Wait()
	}
	t := q.head
	if t != nil {
		q.head = t.next
		if q.head == nil {
			q.tail = nil
		}
		t.next = nil
		q.n--
	}
	q.mu.Unlock()
	return t
}

// close stops the queue: waiting tasks are dropped (returned to the pool and released from the
// node's count) and the workers return once they have nothing running.
func (q *taskQueue) close(n *Node) {
	q.mu.Lock()
	q.closed = true
	dropped := 0
	for t := q.head; t != nil; {
		next := t.next
		putTask(t)
		dropped++
		t = next
	}
	q.head, q.tail, q.n = nil, nil, 0
	q.cond.Broadcast()
	q.mu.Unlock()
	if dropped > 0 {
		n.out.release(dropped)
		n.log.Info("node: handing back tasks not started", "tasks", dropped)
	}
}

// revoke marks the waiting task with this id as revoked; it reports whether it found one.
func (q *taskQueue) revoke(id []byte) bool {
	found := false
	q.mu.Lock()
	for t := q.head; t != nil; t = t.next {
		if sameID(t.id, id) {
			t.revoked = true
			found = true
		}
	}
	q.mu.Unlock()
	return found
}

// worker is one of the node's Concurrency goroutines. It owns a handler context and a scratch
// buffer for results, both reused from task to task.
type worker struct {
	n       *Node
	ctx     taskCtx
	scratch []byte

	mu  sync.Mutex // guards cur against revokes from the SUB reader
	cur *task
}

// maxScratch bounds the result buffer a worker keeps between tasks.
const maxScratch = 64 << 10

func newWorker(n *Node) *worker {
	w := &worker{n: n, scratch: make([]byte, 0, 512)}
	w.ctx.done = make(chan struct{})
	w.ctx.parent = context.Background()
	return w
}

func (w *worker) loop() {
	for {
		t := w.n.q.pop()
		if t == nil {
			return
		}
		w.run(t)
	}
}

// errRevoked is what a revoked task answers (the broker has already marked it REVOKED; the
// answer only releases it).
var errRevoked = codec.NewError(-32004, "task revoked", nil)

// run runs one task and hands its result to the outbox.
func (w *worker) run(t *task) {
	n := w.n
	w.mu.Lock()
	w.cur = t
	w.ctx.reset()
	w.mu.Unlock()
	r := n.running.Add(1)
	for {
		m := n.maxRunning.Load()
		if r <= m || n.maxRunning.CompareAndSwap(m, r) {
			break
		}
	}
	n.out.start(t)

	var res []byte
	var err error
	if t.revoked {
		err = errRevoked
	} else {
		res, err = n.d.Call(&w.ctx, w.scratch[:0], t.method, t.params)
	}
	if cap(res) > cap(w.scratch) && cap(res) <= maxScratch {
		w.scratch = res[:0]
	}

	w.mu.Lock()
	w.cur = nil
	revoked := w.ctx.revoked
	w.mu.Unlock()
	n.running.Add(-1)
	if err != nil {
		if revoked && errors.Is(err, context.Canceled) {
			err = errRevoked
		}
		n.failed.Add(1)
	} else {
		n.done.Add(1)
	}
	n.out.result(t, res, err)
	putTask(t)
}

// revoke cancels the context of the running task with this id; it reports whether one ran.
func (w *worker) revoke(id []byte) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cur == nil || !sameID(w.cur.id, id) {
		return false
	}
	w.ctx.cancel(true)
	return true
}

// taskCtx is the context a worker hands to its handlers: Run's values, no deadline, and a Done
// channel closed when the running task is revoked or the stop's grace period ends. It is reused
// from task to task (a new channel is made only after a cancellation), so running a task costs
// no context allocation; in exchange a handler must not keep its ctx after it returns.
type taskCtx struct {
	parent context.Context // values only; never cancelled

	mu      sync.Mutex
	done    chan struct{}
	err     error
	revoked bool // cancelled by a revoke (rather than by the end of the grace period)
}

var _ context.Context = (*taskCtx)(nil)

// Deadline reports no deadline: tasks have none of their own.
func (c *taskCtx) Deadline() (time.Time, bool) { return time.Time{}, false }

// Done returns the channel closed when the task is cancelled.
func (c *taskCtx) Done() <-chan struct{} {
	c.mu.Lock()
	d := c.done
	c.mu.Unlock()
	return d
}

// Err returns context.Canceled once the task is cancelled, nil before.
func (c *taskCtx) Err() error {
	c.mu.Lock()
	err := c.err
	c.mu.Unlock()
	return err
}

// Value returns the value of Run's context for key.
func (c *taskCtx) Value(key any) any { return c.parent.Value(key) }

// cancel closes Done (once per task).
func (c *taskCtx) cancel(revoked bool) {
	c.mu.Lock()
	if c.err == nil {
		c.err = context.Canceled
		c.revoked = revoked
		close(c.done)
	}
	c.mu.Unlock()
}

// reset readies the context for the next task; only a cancelled context needs a new channel.
func (c *taskCtx) reset() {
	c.mu.Lock()
	if c.err != nil {
		c.done = make(chan struct{})
		c.err = nil
		c.revoked = false
	}
	c.mu.Unlock()
}

// sameID compares two raw JSON ids. The broker's ids are unsigned integers written without
// spaces, so a byte comparison is exact; ids that differ only by JSON spelling (1e1 vs 10) are
// not expected and compare unequal.
func sameID(a, b []byte) bool { return string(a) == string(b) }
