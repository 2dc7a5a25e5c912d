package store

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/zerotask/zerotask/internal/minheap"
)

// resultOverhead is what the memory store counts for one result besides its bytes (the map
// entry, the record and its heap slot), so that MaxBytes bounds real memory even for tiny
// results.
const resultOverhead = 128

// maxFree bounds each free list of the memory store (records and tasks kept for reuse).
const maxFree = 4096

// maxKeepBuf is the largest buffer a recycled record keeps: a rare huge result does not pin
// its memory in the free list.
const maxKeepBuf = 4096

// Memory is the in-memory Store: the default, nothing to install. Results live in a map with
// a min-heap by expiry that serves both TTL expiry and the MaxEntries / MaxBytes bounds
// (the result closest to expiry goes first); queued tasks live in per-queue intrusive lists
// and are never evicted. Expired results are swept by Put (no goroutine): a result past its
// TTL is never returned, and the bounds hold at all times.
//
// One mutex guards everything; no call holds it while it blocks. Put, Get, Append, Claim,
// Hold, Ack and Requeue allocate nothing in steady state (records and tasks are recycled
// through free lists), held to it by TestMemoryAllocs.
type Memory struct {
	o   Options
	now func() time.Time // time.Now; tests may replace it before use

	mu       sync.Mutex
	closed   bool
	results  map[string]*mresult
	heap     minheap.Heap[*mresult]
	bytes    int64
	waits    map[string]*mwait
	freeRes  []*mresult
	tasks    map[string]*mtask
	queues   map[string]*mqueue
	owners   map[string]*mowner
	freeTask []*mtask
	keys     map[string]mkey // idempotency keys (Task.Key, Result.Key)
}

type mresult struct {
	r       Result // Result and Error are buffers owned by the record
	expires int64  // unix nanoseconds
	size    int64
	hidx    int
}

// mwait is the rendezvous of every Wait on one id: ch is closed by the Put of that id (or by
// Close); n counts the waits blocked on it, and the last one to give up removes it.
type mwait struct {
	ch chan struct{}
	n  int
}

// mtask is a task in a queue's list or an owner's list (never both: prev/next serve either).
type mtask struct {
	t          Task // Params and Meta are buffers owned by the record
	q          *mqueue
	owner      *mowner // nil while queued
	started    bool    // owner's node runs it (SetRunning); cleared when it leaves owner
	prev, next *mtask
}

type mlist struct {
	head, tail *mtask
	n          int
}

type mqueue struct {
	name string
	mlist
}

// mkey is an idempotency key's binding: the task id it names, until expires (unix ns).
type mkey struct {
	id      string
	expires int64
}

type mowner struct {
	name  string
	lease int64 // unix nanoseconds
	mlist
}

// NewMemory returns an empty memory store with o (zero fields take their defaults).
func NewMemory(o Options) *Memory {
	return &Memory{
		o:       o.withDefaults(),
		now:     time.Now,
		results: make(map[string]*mresult),
		waits:   make(map[string]*mwait),
		tasks:   make(map[string]*mtask),
		queues:  make(map[string]*mqueue),
		owners:  make(map[string]*mowner),
		keys:    make(map[string]mkey),
	}
}

// keyLocked returns the id key is bound to now ("" for none; an expired binding is dropped).
func (m *Memory) keyLocked(key string, now int64) string {
	k, ok := m.keys[key]
	if !ok {
		return ""
	}
	if k.expires <= now {
		delete(m.keys, key)
		return ""
	}
	return k.id
}

// liveLocked reports whether task id is in the store or has a result kept.
func (m *Memory) liveLocked(id string, now int64) bool {
	if _, ok := m.tasks[id]; ok {
		return true
	}
	e, ok := m.results[id]
	return ok && e.expires > now
}

// bindLocked binds key to id until expires, unless it is bound to another id that is still
// live (held, queued, or with a result kept); it reports whether it did. Expired bindings are swept once they could outnumber what can hold them.
func (m *Memory) bindLocked(key, id string, now, expires int64) bool {
	if cur := m.keyLocked(key, now); cur != "" && cur != id && m.liveLocked(cur, now) {
		return false
	}
	m.keys[key] = mkey{id: id, expires: expires}
	if len(m.keys) > 1024 && len(m.keys) > 2*(len(m.results)+len(m.tasks)) {
		for k, v := range m.keys {
			if v.expires <= now {
				delete(m.keys, k)
			}
		}
	}
	return true
}

func resultSize(r *Result) int64 {
	return int64(len(r.ID)+len(r.State)+len(r.Result)+len(r.Error)+len(r.Node)+len(r.Method)) + resultOverhead
}

// Put implements ResultStore. A result larger than MaxBytes fails the whole call with
// ErrTooLarge before anything is stored.
func (m *Memory) Put(ctx context.Context, ttl time.Duration, results ...Result) error {
	if ttl <= 0 {
		return fmt.Errorf("%w: ttl %v", ErrInvalid, ttl)
	}
	for i := range results {
		if results[i].ID == "" {
			return fmt.Errorf("%w: empty result id", ErrInvalid)
		}
		if s := resultSize(&results[i]); s > m.o.MaxBytes {
			return fmt.Errorf("%w: result %q takes %d bytes, MaxBytes is %d", ErrTooLarge, results[i].ID, s, m.o.MaxBytes)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	now := m.now().UnixNano()
	m.expireLocked(now)
	expires := now + int64(ttl)
	for i := range results {
		src := &results[i]
		e, ok := m.results[src.ID]
		if ok {
			m.bytes -= e.size
		} else {
			e = m.newResult()
			m.results[src.ID] = e
		}
		res, er := e.r.Result[:0], e.r.Error[:0]
		e.r = *src
		e.r.Key = ""
		e.r.Result = copyInto(res, src.Result)
		e.r.Error = copyInto(er, src.Error)
		if src.Key != "" {
			m.bindLocked(src.Key, src.ID, now, expires)
		}
		e.size = resultSize(src)
		m.bytes += e.size
		e.expires = expires
		if ok {
			m.heap.Fix(e)
		} else {
			m.heap.Push(e)
		}
		if w := m.waits[src.ID]; w != nil {
			close(w.ch) // every Wait on the id reads the result again
			delete(m.waits, src.ID)
		}
	}
	for m.heap.Len() > 0 && (len(m.results) > m.o.MaxEntries || m.bytes > m.o.MaxBytes) {
		m.evictLocked(m.heap.Min())
	}
	return nil
}

// copyInto copies src into dst[:0]: empty (nil if dst was nil) for an empty src, so that a
// reused buffer keeps its capacity.
func copyInto(dst, src []byte) []byte {
	return append(dst[:0], src...)
}

func (m *Memory) newResult() *mresult {
	if n := len(m.freeRes); n > 0 {
		e := m.freeRes[n-1]
		m.freeRes = m.freeRes[:n-1]
		return e
	}
	return &mresult{}
}

// expireLocked forgets results past their TTL.
func (m *Memory) expireLocked(now int64) {
	for m.heap.Len() > 0 && m.heap.Min().expires <= now {
		m.evictLocked(m.heap.Min())
	}
}

func (m *Memory) evictLocked(e *mresult) {
	m.heap.Remove(e)
	delete(m.results, e.r.ID)
	m.bytes -= e.size
	if len(m.freeRes) >= maxFree {
		return
	}
	res, er := e.r.Result, e.r.Error
	if cap(res) > maxKeepBuf {
		res = nil
	}
	if cap(er) > maxKeepBuf {
		er = nil
	}
	*e = mresult{r: Result{Result: res[:0:cap(res)], Error: er[:0:cap(er)]}}
	m.freeRes = append(m.freeRes, e)
}

// Get implements ResultStore.
func (m *Memory) Get(ctx context.Context, id string, dst *Result) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false, ErrClosed
	}
	return m.getLocked(id, dst), nil
}

func (m *Memory) getLocked(id string, dst *Result) bool {
	e, ok := m.results[id]
	if !ok || e.expires <= m.now().UnixNano() {
		return false
	}
	copyResult(dst, &e.r)
	return true
}

// copyResult copies src into dst, reusing dst's buffers.
func copyResult(dst, src *Result) {
	res, er := dst.Result, dst.Error
	*dst = *src
	dst.Result = copyInto(res, src.Result)
	dst.Error = copyInto(er, src.Error)
}

// Wait implements ResultStore: a channel per waited id, closed by the Put of that id.
func (m *Memory) Wait(ctx context.Context, id string, dst *Result) error {
	for {
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return ErrClosed
		}
		if m.getLocked(id, dst) {
			m.mu.Unlock()
			return nil
		}
		w := m.waits[id]
		if w == nil {
			w = &mwait{ch: make(chan struct{})}
			m.waits[id] = w
		}
		w.n++
		m.mu.Unlock()
		select {
		case <-w.ch: // a Put of id (or Close) removed w: read again
		case <-ctx.Done():
			m.mu.Lock()
			if w.n--; w.n == 0 && m.waits[id] == w {
				delete(m.waits, id) // no wait is left on it: nothing grows with abandoned waits
			}
			m.mu.Unlock()
			return ctx.Err()
		}
	}
}

// Delete implements ResultStore.
func (m *Memory) Delete(ctx context.Context, ids ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	for _, id := range ids {
		if e, ok := m.results[id]; ok {
			m.evictLocked(e)
		}
	}
	return nil
}

// Append implements QueueStore. Tasks whose id the store already holds are skipped.
func (m *Memory) Append(ctx context.Context, tasks ...Task) error {
	for i := range tasks {
		if tasks[i].ID == "" || tasks[i].Queue == "" {
			return fmt.Errorf("%w: task with an empty id or queue", ErrInvalid)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if err := m.checkBoundLocked(tasks); err != nil {
		return err
	}
	for i := range tasks {
		src := &tasks[i]
		if _, dup := m.tasks[src.ID]; dup {
			continue
		}
		t := m.newTaskLocked(src)
		t.q.pushBack(t)
	}
	return nil
}

// Hold implements QueueStore: each new task goes straight to the back of owner's list (as a
// Claim would put it), never into its queue, so MaxQueued does not apply. With no tasks it
// only renews owner's lease.
func (m *Memory) Hold(ctx context.Context, owner string, tasks ...Task) error {
	if owner == "" {
		return fmt.Errorf("%w: empty owner", ErrInvalid)
	}
	for i := range tasks {
		if tasks[i].ID == "" || tasks[i].Queue == "" {
			return fmt.Errorf("%w: task with an empty id or queue", ErrInvalid)
		}
		if tasks[i].Key != "" && tasks[i].KeyTTL <= 0 {
			return fmt.Errorf("%w: task %q: key without a positive KeyTTL", ErrInvalid, tasks[i].ID)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	now := m.now().UnixNano()
	o := m.ownerLocked(owner)
	o.lease = now + int64(m.o.Lease)
	for i := range tasks {
		src := &tasks[i]
		src.Bound = ""
		if _, dup := m.tasks[src.ID]; dup {
			continue
		}
		if src.Key != "" {
			if cur := m.keyLocked(src.Key, now); cur != "" && cur != src.ID && m.liveLocked(cur, now) {
				src.Bound = cur
				continue
			}
			m.keys[src.Key] = mkey{id: src.ID, expires: now + int64(src.KeyTTL)}
		}
		t := m.newTaskLocked(src)
		t.owner = o
		o.pushBack(t)
	}
	return nil
}

// newTaskLocked makes the record of src (copying its buffers), in its queue's set but in no
// list yet.
func (m *Memory) newTaskLocked(src *Task) *mtask {
	t := m.newTask()
	params, meta := t.t.Params, t.t.Meta
	t.t = *src
	t.t.Key, t.t.KeyTTL, t.t.Bound = "", 0, "" // keys live in m.keys, not with the task
	t.started = false
	t.t.Params = copyInto(params, src.Params)
	t.t.Meta = copyInto(meta, src.Meta)
	q := m.queues[src.Queue]
	if q == nil {
		q = &mqueue{name: src.Queue}
		m.queues[src.Queue] = q
	}
	t.q = q
	m.tasks[src.ID] = t
	return t
}

// Locate implements QueueStore.
func (m *Memory) Locate(ctx context.Context, id string) (Where, string, error) {
	if id == "" {
		return WhereNone, "", fmt.Errorf("%w: empty task id", ErrInvalid)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return WhereNone, "", ErrClosed
	}
	t, ok := m.tasks[id]
	switch {
	case !ok:
		return WhereNone, "", nil
	case t.owner != nil && t.started:
		return WhereRunning, t.owner.name, nil
	case t.owner != nil:
		return WhereHeld, t.owner.name, nil
	}
	return WhereQueued, "", nil
}

// SetRunning implements QueueStore.
func (m *Memory) SetRunning(ctx context.Context, owner string, running bool, ids ...string) error {
	if owner == "" {
		return fmt.Errorf("%w: empty owner", ErrInvalid)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	for _, id := range ids {
		if t, ok := m.tasks[id]; ok && t.owner != nil && t.owner.name == owner {
			t.started = running
		}
	}
	return nil
}

// checkBoundLocked fails with ErrQueueFull if appending tasks would take a queue past
// MaxQueued. The common case (one queue, room to spare) needs no bookkeeping.
func (m *Memory) checkBoundLocked(tasks []Task) error {
	for i := range tasks {
		q := m.queues[tasks[i].Queue]
		n := 0
		if q != nil {
			n = q.n
		}
		if n+len(tasks) <= m.o.MaxQueued {
			continue
		}
		// Close to the bound: count exactly what this call adds to the queue (new ids only,
		// each once).
		add := 0
		for j := range tasks {
			if tasks[j].Queue != tasks[i].Queue {
				continue
			}
			if _, dup := m.tasks[tasks[j].ID]; dup || firstIndex(tasks[:j], tasks[j].ID) >= 0 {
				continue
			}
			add++
		}
		if n+add > m.o.MaxQueued {
			return fmt.Errorf("%w: queue %q holds %d tasks, MaxQueued is %d", ErrQueueFull, tasks[i].Queue, n, m.o.MaxQueued)
		}
	}
	return nil
}

func firstIndex(tasks []Task, id string) int {
	for i := range tasks {
		if tasks[i].ID == id {
			return i
		}
	}
	return -1
}

func (m *Memory) newTask() *mtask {
	if n := len(m.freeTask); n > 0 {
		t := m.freeTask[n-1]
		m.freeTask = m.freeTask[:n-1]
		return t
	}
	return &mtask{}
}

func (m *Memory) freeTaskLocked(t *mtask) {
	delete(m.tasks, t.t.ID)
	if len(m.freeTask) >= maxFree {
		return
	}
	params, meta := t.t.Params, t.t.Meta
	if cap(params) > maxKeepBuf {
		params = nil
	}
	if cap(meta) > maxKeepBuf {
		meta = nil
	}
	*t = mtask{t: Task{Params: params[:0:cap(params)], Meta: meta[:0:cap(meta)]}}
	m.freeTask = append(m.freeTask, t)
}

// Claim implements QueueStore. It first gives back the tasks of owners whose lease ran out.
func (m *Memory) Claim(ctx context.Context, queue, owner string, n int, dst []Task) ([]Task, error) {
	if queue == "" || owner == "" || n <= 0 {
		return dst, fmt.Errorf("%w: claim of %d from queue %q by owner %q", ErrInvalid, n, queue, owner)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return dst, ErrClosed
	}
	now := m.now().UnixNano()
	m.expireOwnersLocked(now)
	o := m.ownerLocked(owner)
	o.lease = now + int64(m.o.Lease)
	q := m.queues[queue]
	for ; q != nil && n > 0 && q.head != nil; n-- {
		t := q.head
		q.remove(t)
		t.owner = o
		o.pushBack(t)
		dst = append(dst, t.t)
		if d := &dst[len(dst)-1]; len(d.Params) == 0 || len(d.Meta) == 0 {
			// empty reads back as nil, whatever buffer the record recycled
			if len(d.Params) == 0 {
				d.Params = nil
			}
			if len(d.Meta) == 0 {
				d.Meta = nil
			}
		}
	}
	return dst, nil
}

func (m *Memory) ownerLocked(name string) *mowner {
	o := m.owners[name]
	if o == nil {
		o = &mowner{name: name}
		m.owners[name] = o
	}
	return o
}

// expireOwnersLocked gives back the tasks of every owner whose lease has run out. Owners are
// few (broker instances), so a scan is cheap.
func (m *Memory) expireOwnersLocked(now int64) {
	for _, o := range m.owners {
		if o.lease <= now {
			m.recoverLocked(o)
		}
	}
}

// recoverLocked puts every task of o back at the front of its queue in claim order, with an
// attempt counted, and forgets o.
func (m *Memory) recoverLocked(o *mowner) int {
	n := o.n
	for t := o.tail; t != nil; t = o.tail {
		o.remove(t)
		m.giveBackLocked(t)
	}
	delete(m.owners, o.name)
	return n
}

func (m *Memory) giveBackLocked(t *mtask) {
	t.owner, t.started = nil, false
	t.t.Attempts++
	t.q.pushFront(t)
}

// Ack implements QueueStore.
func (m *Memory) Ack(ctx context.Context, ids ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	for _, id := range ids {
		t, ok := m.tasks[id]
		if !ok {
			continue
		}
		if t.owner != nil {
			t.owner.remove(t)
		} else {
			t.q.remove(t)
		}
		m.freeTaskLocked(t)
	}
	return nil
}

// Requeue implements QueueStore.
func (m *Memory) Requeue(ctx context.Context, ids ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	for i := len(ids) - 1; i >= 0; i-- { // pushed to the front last-first: ids[0] ends up first
		t, ok := m.tasks[ids[i]]
		if !ok || t.owner == nil {
			continue
		}
		t.owner.remove(t)
		m.giveBackLocked(t)
	}
	return nil
}

// Renew implements QueueStore.
func (m *Memory) Renew(ctx context.Context, owner string) error {
	if owner == "" {
		return fmt.Errorf("%w: empty owner", ErrInvalid)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.ownerLocked(owner).lease = m.now().UnixNano() + int64(m.o.Lease)
	return nil
}

// Recover implements QueueStore.
func (m *Memory) Recover(ctx context.Context, owner string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, ErrClosed
	}
	o := m.owners[owner]
	if o == nil {
		return 0, nil
	}
	return m.recoverLocked(o), nil
}

// Len implements QueueStore.
func (m *Memory) Len(ctx context.Context, queue string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, ErrClosed
	}
	if q := m.queues[queue]; q != nil {
		return q.n, nil
	}
	return 0, nil
}

// Stats returns how many results the memory store keeps and the bytes they count for.
func (m *Memory) Stats() (results int, bytes int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.results), m.bytes
}

// Waiting returns how many ids have a Wait blocked on them.
func (m *Memory) Waiting() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.waits)
}

// Close implements Store: it wakes every Wait (with ErrClosed) and forgets everything.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	for id, w := range m.waits {
		close(w.ch)
		delete(m.waits, id)
	}
	m.results, m.tasks, m.queues, m.owners, m.keys = nil, nil, nil, nil, nil
	m.heap.Reset()
	m.freeRes, m.freeTask = nil, nil
	return nil
}

func (l *mlist) pushBack(t *mtask) {
	t.prev, t.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = t
	} else {
		l.head = t
	}
	l.tail = t
	l.n++
}

func (l *mlist) pushFront(t *mtask) {
	t.prev, t.next = nil, l.head
	if l.head != nil {
		l.head.prev = t
	} else {
		l.tail = t
	}
	l.head = t
	l.n++
}

func (l *mlist) remove(t *mtask) {
	if t.prev != nil {
		t.prev.next = t.next
	} else {
		l.head = t.next
	}
	if t.next != nil {
		t.next.prev = t.prev
	} else {
		l.tail = t.prev
	}
	t.prev, t.next = nil, nil
	l.n--
}

// HeapKey and HeapIndex place results in the expiry heap (internal/minheap).
func (e *mresult) HeapKey() int64  { return e.expires }
func (e *mresult) HeapIndex() *int { return &e.hidx }
