package node

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/protocol"
)

// task is one task received from the broker: its id, method and params copied out of the
// broker's message into storage owned by the task, so the message can be released at once.
// Tasks are pooled: a task record is reused for later tasks once its result is appended.
type task struct {
	id     []byte // raw JSON id (the broker's task number), sub-slice of buf
	method []byte // unescaped method name, sub-slice of buf
	params []byte // raw JSON params or nil, sub-slice of buf
	buf    []byte

	next     *task     // queue link (taskQueue.mu held)
	revoked  bool      // a broker.revoke named it while it waited (taskQueue.mu held)
	deadline time.Time // when the task's deadline ends (zero: none), from its timeout_ms

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
	t.deadline = time.Time{}
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

	// Service-time sampling for the credit window: every task while tasks are slow, one in
	// svcSampleEvery while they are fast (a clock read costs about 50 ns here, a few % of a
	// small task's whole cost in the node).
	runs    uint64
	lastSvc time.Duration
}

// svcSampleEvery and svcAlwaysAbove: a worker times one task in svcSampleEvery, or every task
// once the last one timed took svcAlwaysAbove or more.
const (
	svcSampleEvery = 16
	svcAlwaysAbove = 20 * time.Microsecond
)

// maxScratch bounds the result buffer a worker keeps between tasks.
const maxScratch = 64 << 10

func newWorker(n *Node) *worker {
	w := &worker{n: n, scratch: make([]byte, 0, 512)}
	w.ctx.done = make(chan struct{})
	w.ctx.parent = context.Background()
	// One timer per worker, reused for every task with a deadline or a time limit: arming it
	// costs no allocation. It fires on its own goroutine and ends the run it was armed for
	// only (see taskCtx.expire).
	w.ctx.timer = time.AfterFunc(time.Hour, w.ctx.expire)
	w.ctx.timer.Stop()
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

// The errors the node answers with for a task that did not run to its end on its own.
var (
	// errRevoked is what a revoked task answers (the broker has already marked it REVOKED;
	// the answer only releases it).
	errRevoked = protocol.ErrRevoked
	// errExpired: the task's deadline passed while it waited in the node; it was not run.
	errExpired = protocol.ErrExpired
	// errDeadline, errTimeLimit: the run was cancelled when the deadline or the time limit
	// ended, and the handler failed.
	errDeadline  = protocol.ErrDeadline
	errTimeLimit = codec.NewError(CodeDeadline, "task time limit exceeded", nil)
)

// run runs one task and hands its result to the outbox.
func (w *worker) run(t *task) {
	n := w.n
	pol := n.d.Policy(t.method)
	now := time.Time{}
	limit := pol.TimeLimit
	if limit == 0 {
		limit = n.cfg.TimeLimit
	}
	if !t.deadline.IsZero() || limit > 0 {
		now = time.Now()
	}
	w.mu.Lock()
	w.cur = t
	w.ctx.reset()
	w.mu.Unlock()
	// The run ends at the task's deadline or after the time limit, whichever comes first.
	byLimit := false
	if !now.IsZero() {
		end := t.deadline
		if limit > 0 && (end.IsZero() || now.Add(limit).Before(end)) {
			end, byLimit = now.Add(limit), true
		}
		w.ctx.arm(end, now)
	}
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
	var began time.Time
	w.runs++
	timed := w.runs%svcSampleEvery == 1 || w.lastSvc >= svcAlwaysAbove
	if timed {
		began = time.Now()
	}
	switch {
	case t.revoked:
		err = errRevoked
	case !t.deadline.IsZero() && !now.Before(t.deadline):
		err = errExpired // it waited here past its deadline: not run
	default:
		res, err = n.d.Call(&w.ctx, w.scratch[:0], t.method, t.params)
	}
	var served time.Duration // 0: not timed
	if timed {
		served = max(time.Since(began), 1)
		w.lastSvc = served
	}
	if cap(res) > cap(w.scratch) && cap(res) <= maxScratch {
		w.scratch = res[:0]
	}

	w.mu.Lock()
	w.cur = nil
	w.mu.Unlock()
	revoked, expired := w.ctx.disarm()
	n.running.Add(-1)
	var retryAfter time.Duration
	retry := false
	if err != nil {
		switch {
		case revoked && errors.Is(err, context.Canceled):
			err = errRevoked
		case expired && errors.Is(err, context.DeadlineExceeded):
			err = errDeadline
			if byLimit {
				err = errTimeLimit
			}
		case err != errExpired && err != errRevoked:
			retryAfter, retry = pol.Retryable(err)
		}
		n.failed.Add(1)
	} else {
		n.done.Add(1)
	}
	n.out.result(t, res, err, retry, retryAfter, served)
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

// taskCtx is the context a worker hands to its handlers: Run's values, the task's deadline
// (the earlier of the call's deadline and the method's time limit), and a Done channel closed
// when that deadline passes, when the running task is revoked, or when the stop's grace period
// ends. It is reused from task to task (a new channel is made only after a cancellation, and
// the deadline timer is the worker's own), so running a task costs no context allocation; in
// exchange a handler must not keep its ctx after it returns.
type taskCtx struct {
	parent context.Context // values only; never cancelled
	timer  *time.Timer     // fires expire at the deadline; armed per run

	mu       sync.Mutex
	done     chan struct{}
	err      error
	revoked  bool      // cancelled by a revoke (rather than by the end of the grace period)
	expired  bool      // cancelled by the deadline
	deadline time.Time // zero: none
	run      uint64    // the run the context serves now (bumped by reset)
	armed    uint64    // the run the timer was armed for
}

var _ context.Context = (*taskCtx)(nil)

// Deadline returns the run's deadline, if it has one.
func (c *taskCtx) Deadline() (time.Time, bool) {
	c.mu.Lock()
	d := c.deadline
	c.mu.Unlock()
	return d, !d.IsZero()
}

// arm sets the run's deadline and starts the timer (a deadline already passed cancels at once).
func (c *taskCtx) arm(end, now time.Time) {
	c.mu.Lock()
	c.deadline = end
	c.armed = c.run
	c.mu.Unlock()
	if d := end.Sub(now); d > 0 {
		c.timer.Reset(d)
	} else {
		c.expire()
	}
}

// expire cancels the run the timer was armed for, with context.DeadlineExceeded. A timer that
// fires late, once that run is over, finds the run number moved on and does nothing.
func (c *taskCtx) expire() {
	c.mu.Lock()
	if c.armed == c.run && !c.deadline.IsZero() && c.err == nil {
		c.err = context.DeadlineExceeded
		c.expired = true
		close(c.done)
	}
	c.mu.Unlock()
}

// disarm stops the timer at the end of a run and reports how the run's context ended.
func (c *taskCtx) disarm() (revoked, expired bool) {
	c.mu.Lock()
	hadDeadline := !c.deadline.IsZero()
	c.deadline = time.Time{}
	revoked, expired = c.revoked, c.expired
	c.mu.Unlock()
	if hadDeadline {
		c.timer.Stop()
	}
	return revoked, expired
}

// Done returns the channel closed when the task is cancelled.
func (c *taskCtx) Done() <-chan struct{} {
	c.mu.Lock()
	d := c.done
	c.mu.Unlock()
	return d
}

// Err returns context.Canceled once the task is cancelled (context.DeadlineExceeded when its
// deadline passed), nil before.
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
	c.run++
	c.deadline = time.Time{}
	if c.err != nil {
		c.done = make(chan struct{})
		c.err = nil
		c.revoked = false
		c.expired = false
	}
	c.mu.Unlock()
}

// sameID compares two raw JSON ids. The broker's ids are unsigned integers written without
// spaces, so a byte comparison is exact; ids that differ only by JSON spelling (1e1 vs 10) are
// not expected and compare unequal.
func sameID(a, b []byte) bool { return string(a) == string(b) }
