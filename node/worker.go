package node

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/dispatch"
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
	attempt  int       // its attempt number, from the hand-out's "attempt" (0: not given)
	queue    string    // its queue, from the hand-out's "queue" ("default" when not given)
	taskID   string    // its record's id, from the hand-out's "task" ("" for a call)
	meta     string    // its meta object, from the hand-out's "meta" ("" for none)

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
	return fillTask(taskPool.Get().(*task), id, method, params)
}

// fillTask copies id, method and params into t, a reset task.
func fillTask(t *task, id, method, params []byte) *task {
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
	resetTask(t)
	taskPool.Put(t)
}

// resetTask clears t for its next use.
func resetTask(t *task) {
	t.id, t.method, t.params, t.next = nil, nil, nil, nil
	t.revoked = false
	t.deadline = time.Time{}
	t.attempt, t.queue, t.taskID, t.meta = 0, "", "", ""
	t.startIdx = -1
	if cap(t.buf) > maxPooledTask {
		t.buf = nil
	}
}

// The tasks a node has done go back to its reader through the task queue, not through the
// pool: a worker hands its last task over when it takes the next (popWait, under the lock it
// takes anyway), and the reader takes the whole list when its own runs out (takeFree, one lock
// per refill), so a task costs no pool Get and Put (a tenth of a node's CPU for add).
// maxFreeTasks and maxFreeBytes bound the list, by count and by the bytes of the tasks'
// storage; past them tasks go to the pool. The count covers a node's default window
// (protocol.DefaultPrefetch): every task a busy node holds comes back through the list, where
// 4,096 sent the rest of a full window through the pool (4-5% of the node's CPU for add). The
// bytes keep a list of big tasks from pinning much memory.
const (
	maxFreeTasks = 16384
	maxFreeBytes = 8 << 20
)

// freeList is a stack of reset tasks linked through task.next.
type freeList struct {
	head  *task
	n     int
	bytes int // the tasks' storage, cap(buf) summed
}

// push adds t, reset; it reports false (and keeps nothing) when the list is full.
func (l *freeList) push(t *task) bool {
	resetTask(t)
	if l.n >= maxFreeTasks || l.bytes+cap(t.buf) > maxFreeBytes {
		return false
	}
	t.next, l.head = l.head, t
	l.n++
	l.bytes += cap(t.buf)
	return true
}

// pop takes a task, or nil.
func (l *freeList) pop() *task {
	t := l.head
	if t != nil {
		l.head, t.next = t.next, nil
		l.n--
		l.bytes -= cap(t.buf)
	}
	return t
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

	// idle counts the workers waiting in popWait, and lent the slots of those lent to tasks
	// run on the reader instead (lend): a waiting worker takes a task only while idle > lent,
	// so the tasks running, on workers and on the reader, never outnumber the workers.
	idle    int
	lent    int
	workers int // the node's workers (Config.Concurrency)

	// waiting mirrors n for empty, which every result asks: read without the lock, so that a
	// worker's result does not contend with the reader's push and the other workers' pops.
	waiting atomic.Int64

	free freeList // tasks done, for the reader (see maxFreeTasks)
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
func (q *taskQueue) empty() bool { return q.waiting.Load() == 0 }

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
	q.waiting.Store(int64(q.n))
	q.mu.Unlock()
	return true
}

// popWait blocks until a task is ready and returns it, or returns nil when the queue is
// closed; waited reports whether it had to wait. done, when not nil, is the caller's last
// task, finished: it goes to the free list.
func (q *taskQueue) popWait(done *task) (t *task, waited bool) {
	q.mu.Lock()
	if done != nil && !q.free.push(done) {
		putTask(done)
	}
	q.idle++
	for (q.head == nil || q.idle <= q.lent) && !q.closed {
		waited = true
		q.cond.Wait()
	}
	q.idle--
	t = q.head
	if t != nil {
		q.head = t.next
		if q.head == nil {
			q.tail = nil
		}
		t.next = nil
		q.n--
		q.waiting.Store(int64(q.n))
	}
	q.mu.Unlock()
	return t, waited
}

// takeFree takes the whole free list.
func (q *taskQueue) takeFree() freeList {
	q.mu.Lock()
	l := q.free
	q.free = freeList{}
	q.mu.Unlock()
	return l
}

// lend takes the slot of an idle worker for a task run on the reader (Node.runInline): it
// succeeds when the node is idle (no task waits, every worker waits with nothing to do, none
// lent) and the queue is open; one worker then stays waiting until giveBack. Under load, when
// workers are busy, tasks go to them as before and the reader only reads. While it succeeds
// the node's stop waits for the run (Node.inline).
func (q *taskQueue) lend(n *Node) bool {
	q.mu.Lock()
	ok := q.head == nil && !q.closed && q.lent == 0 && q.idle == q.workers
	if ok {
		q.lent++
		n.inline.Add(1)
	}
	q.mu.Unlock()
	return ok
}

// giveBack returns a slot lend took, and wakes a worker for a task queued meanwhile.
func (q *taskQueue) giveBack(n *Node) {
	q.mu.Lock()
	q.lent--
	if q.head != nil {
		q.cond.Signal()
	}
	q.mu.Unlock()
	n.inline.Done()
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
	q.waiting.Store(0)
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

// worker is one of the node's Concurrency goroutines. It runs one task at a time, each with a
// context of its own (see taskCtx), and keeps a scratch buffer for results and one deadline
// timer, both reused from task to task.
type worker struct {
	n       *Node
	base    context.Context // Serve's context without its cancellation: the values handlers see
	scratch []byte
	timer   *time.Timer // fires expire at or before the running task's deadline (see arm)

	mu      sync.Mutex // guards cur, ctx and timerAt against revokes and the timer
	cur     *task
	ctx     *taskCtx  // the running task's context
	timerAt time.Time // when the timer fires; zero when it may be stopped

	// Service-time sampling for the credit window: every task while tasks are slow, one in
	// svcSampleEvery while they are fast (a clock read costs about 50 ns here, a few % of a
	// small task's whole cost in the node).
	runs    uint64
	lastSvc time.Duration
	timeAll bool // time every run: the reader's (Node.inl), which must learn at once that runs are slow

	// clock is the worker's last clock read, and clockRuns the runs since: a context-free
	// task (runFree) whose deadline is more than clockSlack past it checks its deadline
	// against it instead of reading the clock (see runFree).
	clock     time.Time
	clockRuns uint64

	ms map[string]*methodStats // its tasks' metrics by method (Config.Metrics; w.mu held)

	done *task // the last task run, finished, for the free list (the worker's own goroutine)

	look dispatch.LookupCache // the worker's last method and its handler
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
	w := &worker{n: n, base: context.Background(), scratch: make([]byte, 0, 512), clockRuns: svcSampleEvery}
	// One timer per worker, reused for every task with a deadline or a time limit: arming it
	// costs no allocation. It fires on its own goroutine and ends the run then in progress
	// only if that run's deadline has passed (see expire).
	w.timer = time.AfterFunc(time.Hour, w.expire)
	w.timer.Stop()
	return w
}

func (w *worker) loop() {
	for {
		t, waited := w.nextWait()
		if t == nil {
			w.timer.Stop() // left armed from the last run (see armLocked)
			return
		}
		if waited {
			w.clockRuns = svcSampleEvery // idle for an unknown time: the clock is stale
		}
		w.run(t)
	}
}

// next takes the worker's next task (nil: the queue closed), handing the last one it ran to
// the free list.
func (w *worker) next() *task {
	t, _ := w.nextWait()
	return t
}

// nextWait is next that also reports whether it had to wait.
func (w *worker) nextWait() (*task, bool) {
	t, waited := w.n.q.popWait(w.done)
	w.done = nil
	return t, waited
}

// expire ends the running task's context with context.DeadlineExceeded if its deadline has
// passed, and otherwise arms the timer again for it: the timer is left armed from run to run
// (see arm), so it may fire during a later run, or between runs, when it does nothing.
func (w *worker) expire() {
	w.mu.Lock()
	w.timerAt = time.Time{}
	c := w.ctx
	if c != nil && !c.info.Deadline.IsZero() {
		if d := time.Until(c.info.Deadline); d > 0 {
			w.timerAt = c.info.Deadline
			w.timer.Reset(d)
			c = nil
		}
	} else {
		c = nil
	}
	w.mu.Unlock()
	if c != nil {
		c.cancel(context.DeadlineExceeded, false, true)
	}
}

// armLocked makes sure the timer fires by end (w.mu held). Tasks mostly come with deadlines
// seconds away, each later than the last: a timer that already fires earlier is left as it
// is (expire re-arms it for the run then in progress), which spares a timer reset and stop
// per task.
func (w *worker) armLocked(end time.Time, d time.Duration) {
	if !w.timerAt.IsZero() && !w.timerAt.After(end) {
		return
	}
	w.timerAt = end
	w.timer.Reset(d)
}

// cancelRunning cancels the running task's context, if a task runs (the end of a stop's grace
// period).
func (w *worker) cancelRunning() {
	w.mu.Lock()
	c := w.ctx
	w.mu.Unlock()
	if c != nil {
		c.cancel(context.Canceled, false, false)
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

// clockSlack: a context-free task whose deadline is further than this past the worker's last
// clock read, taken at most svcSampleEvery fast runs ago, is run without reading the clock.
const clockSlack = time.Second

// run runs one task and hands its result to the outbox.
func (w *worker) run(t *task) {
	n := w.n
	h, found := n.d.LookupCached(&w.look, t.method)
	if found && !n.cfg.Metrics {
		if _, free := h.(dispatch.ContextFree); free {
			w.runFree(t, h)
			return
		}
	}
	pol := n.d.Policy(t.method)
	now := time.Time{}
	limit := pol.TimeLimit
	if limit == 0 {
		limit = n.cfg.TimeLimit
	}
	if !t.deadline.IsZero() || limit > 0 {
		now = time.Now()
		w.clock, w.clockRuns = now, 0
	}
	// The run ends at the task's deadline or after the time limit, whichever comes first.
	byLimit := false
	end := t.deadline
	if limit > 0 && (end.IsZero() || now.Add(limit).Before(end)) {
		end, byLimit = now.Add(limit), true
	}
	ctx := &taskCtx{parent: w.base, info: dispatch.TaskInfo{ID: t.taskID, Attempt: t.attempt, Queue: t.queue, Deadline: end, Meta: t.meta}}
	ctx.prog.out, ctx.prog.src = &n.out, t
	expired := false
	w.mu.Lock()
	w.cur, w.ctx = t, ctx
	if !end.IsZero() {
		if d := end.Sub(now); d > 0 {
			w.armLocked(end, d)
		} else {
			expired = true
		}
	}
	w.mu.Unlock()
	if expired {
		ctx.cancel(context.DeadlineExceeded, false, true)
	}
	n.runStarted()
	n.out.start(t)

	var res []byte
	var err error
	var began time.Time
	w.runs++
	timed := n.cfg.Metrics || w.runs%svcSampleEvery == 1 || w.lastSvc >= svcAlwaysAbove
	if timed {
		began = time.Now()
	}
	switch {
	case t.revoked:
		err = errRevoked
	case !t.deadline.IsZero() && !now.Before(t.deadline):
		err = errExpired // it waited here past its deadline: not run
	case !found:
		err = codec.ErrMethodNotFound
	default:
		res, err = n.d.CallHandler(ctx, h, w.scratch[:0], t.method, t.params)
	}
	var served time.Duration // 0: not timed
	if timed {
		served = max(time.Since(began), 1)
		w.lastSvc = served
	}
	ran := !t.revoked && served > 0 && err != errExpired
	if cap(res) > cap(w.scratch) && cap(res) <= maxScratch {
		w.scratch = res[:0]
	}

	w.mu.Lock()
	w.cur, w.ctx = nil, nil
	if n.cfg.Metrics && ran {
		w.observe(t.method, served, err)
	}
	w.mu.Unlock()
	// As net/http does for a request, the task's context ends when its handler returns: a
	// goroutine the handler left behind sees Done, and no later task can cancel it.
	revoked, expired := ctx.finish()
	ctx.endProgress()
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
	w.done = t // to the free list (see maxFreeTasks)
}

// runFree runs a task whose handler reads no context (dispatch.ContextFree): no taskCtx, no
// deadline timer, nothing for a revoke to cancel (the handler could not see it), no lock of
// the worker's. Such handlers are the node's small builtins, run by the hundred thousand a
// second, for which run's per-task context, locks and clock reads were most of the node's
// cost. A task that waited here past its deadline is still answered errExpired and not run:
// the clock is read for a deadline within clockSlack of the worker's last read, and that read
// is at most svcSampleEvery runs old while runs are fast (every run is timed once they are
// slow, and a worker that waited for a task reads the clock afresh).
func (w *worker) runFree(t *task, h dispatch.Handler) {
	n := w.n
	w.runs++
	w.clockRuns++
	timed := w.timeAll || w.runs%svcSampleEvery == 1 || w.lastSvc >= svcAlwaysAbove
	var began time.Time
	if timed || (!t.deadline.IsZero() && (w.clockRuns >= svcSampleEvery || t.deadline.Sub(w.clock) <= clockSlack)) {
		began = time.Now()
		w.clock, w.clockRuns = began, 0
	}
	n.runStarted()
	slow := w.lastSvc >= svcAlwaysAbove
	if slow {
		// Recent runs were slow: this one may outlast runningDelay and need its notice.
		n.out.start(t)
	}
	var res []byte
	var err error
	switch {
	case t.revoked:
		err = errRevoked
	case !t.deadline.IsZero() && !w.clock.Before(t.deadline):
		err = errExpired
	default:
		res, err = n.d.CallHandler(w.base, h, w.scratch[:0], t.method, t.params)
	}
	var served time.Duration
	if timed {
		now := time.Now()
		served = max(now.Sub(began), 1)
		w.lastSvc = served
		w.clock = now
	}
	if cap(res) > cap(w.scratch) && cap(res) <= maxScratch {
		w.scratch = res[:0]
	}
	n.running.Add(-1)
	var retryAfter time.Duration
	retry := false
	if err != nil {
		if err != errExpired && err != errRevoked {
			retryAfter, retry = n.d.Policy(t.method).Retryable(err)
		}
		n.failed.Add(1)
	} else {
		n.done.Add(1)
	}
	n.out.result(t, res, err, retry, retryAfter, served)
	w.done = t // to the free list (see maxFreeTasks)
}

// revoke cancels the context of the running task with this id; it reports whether one ran.
func (w *worker) revoke(id []byte) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cur == nil || !sameID(w.cur.id, id) {
		return false
	}
	w.ctx.cancel(context.Canceled, true, false)
	return true
}

// taskCtx is the context of one task's run: Serve's values, the task's TaskInfo (see
// dispatch.TaskInfoFrom), its deadline (the earlier of the call's deadline and the method's
// time limit), and a Done channel closed when that deadline passes, when the task is revoked,
// when the stop's grace period ends, or at the latest when its handler returns. Each run has
// its own (one allocation per task; Done's channel is made only when asked for), so a
// goroutine a handler leaves behind sees its own task's end and nothing else.
//
// It implements AfterFunc, which context.AfterFunc and the standard library's derived
// contexts (WithCancel, WithTimeout, ...) use instead of starting a goroutine to watch a
// parent of a type they do not know.
type taskCtx struct {
	parent context.Context   // values only; never cancelled
	info   dispatch.TaskInfo // immutable

	mu      sync.Mutex
	done    chan struct{} // nil until Done is called (closedChan when it ended first)
	err     error
	revoked bool // cancelled by a revoke
	expired bool // cancelled by the deadline
	afters  []*afterFunc

	prog taskProgress // its progress reports (taskprogress.go)
}

// afterFunc is a function registered with AfterFunc, run once when the context ends unless
// stopped first.
type afterFunc struct {
	f    func()
	used bool // run or stopped (taskCtx.mu held)
}

// closedChan is the Done of a context that ended before anyone asked for its channel.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

var (
	_ context.Context                            = (*taskCtx)(nil)
	_ interface{ AfterFunc(func()) func() bool } = (*taskCtx)(nil)
)

// Deadline returns the run's deadline, if it has one.
func (c *taskCtx) Deadline() (time.Time, bool) {
	return c.info.Deadline, !c.info.Deadline.IsZero()
}

// Done returns the channel closed when the task's run ends.
func (c *taskCtx) Done() <-chan struct{} {
	c.mu.Lock()
	if c.done == nil {
		if c.err != nil {
			c.done = closedChan
		} else {
			c.done = make(chan struct{})
		}
	}
	d := c.done
	c.mu.Unlock()
	return d
}

// Err returns nil while the run goes on; then context.DeadlineExceeded when its deadline
// passed, context.Canceled otherwise (revoked, stopped, or its handler returned).
func (c *taskCtx) Err() error {
	c.mu.Lock()
	err := c.err
	c.mu.Unlock()
	return err
}

// Value returns the task's *dispatch.TaskInfo for dispatch.TaskInfoKey, and the value of
// Serve's context for any other key.
func (c *taskCtx) Value(key any) any {
	if key == dispatch.TaskInfoKey {
		return &c.info
	}
	if key == dispatch.ProgressKey {
		return c
	}
	return c.parent.Value(key)
}

// AfterFunc arranges for f to run on its own goroutine once the context ends (at once if it
// has), as context.AfterFunc does. stop unregisters f; it reports whether it stopped f from
// running.
func (c *taskCtx) AfterFunc(f func()) (stop func() bool) {
	a := &afterFunc{f: f}
	c.mu.Lock()
	if c.err != nil {
		a.used = true
		c.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	c.afters = append(c.afters, a)
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if a.used {
			return false
		}
		a.used = true
		for i, x := range c.afters {
			if x == a {
				c.afters = append(c.afters[:i], c.afters[i+1:]...)
				break
			}
		}
		return true
	}
}

// cancel ends the run with err (once: the first cause wins) and starts the functions
// registered with AfterFunc.
func (c *taskCtx) cancel(err error, revoked, expired bool) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err, c.revoked, c.expired = err, revoked, expired
	if c.done == nil {
		c.done = closedChan
	} else {
		close(c.done)
	}
	afters := c.afters
	c.afters = nil
	for _, a := range afters {
		a.used = true
	}
	c.mu.Unlock()
	for _, a := range afters {
		go a.f()
	}
}

// finish ends the run as its handler returned (unless it ended before) and reports how it
// ended.
func (c *taskCtx) finish() (revoked, expired bool) {
	c.cancel(context.Canceled, false, false)
	c.mu.Lock()
	revoked, expired = c.revoked, c.expired
	c.mu.Unlock()
	return revoked, expired
}

// sameID compares two raw JSON ids. The broker's ids are unsigned integers written without
// spaces, so a byte comparison is exact; ids that differ only by JSON spelling (1e1 vs 10) are
// not expected and compare unequal.
func sameID(a, b []byte) bool { return string(a) == string(b) }

// runStarted counts a task that begins to run, and raises the peak (Stats.MaxRunning) to it.
func (n *Node) runStarted() {
	r := n.running.Add(1)
	for {
		m := n.maxRunning.Load()
		if r <= m || n.maxRunning.CompareAndSwap(m, r) {
			return
		}
	}
}
