package broker

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/internal/rawjson"
	"github.com/zerotask/zerotask/protocol"
)

// Hand-out limits (docs/workflows.md, "Rate and concurrency limits"). A limit is a token
// bucket (rate, burst) and a cap on the tasks held by nodes, for one method, one named queue
// or one key group (the task option "group"). They are enforced where tasks are handed out:
// a queue whose limits are closed is not pumped, and its tasks wait in it, in order; nothing
// fails for a limit. A limit that closed is remembered in core.limBlocked and looked at again
// on every flush and tick, when tokens have come back or a held task has finished.
//
// Group limits are per task (ratelimit_group.go). Method and queue limits gate whole queues (a queue is a method in a named queue): q.lims
// lists the limits that apply to q, nil when none does, so a queue without limits pays one nil
// test per hand-out. The running count of such a limit is the sum of q.held over its queues,
// kept by dispatch and unlinkHeld, so it is always exact, even for a limit set while tasks
// run.
//
// A node's CodeRateLimited answer (dispatch.RateLimited) pauses the task's group, or its
// method, for the delay it names: the limit of that scope is made if none is set (a pause
// only, dropped again when the pause ends), and the task goes back to the front of its
// queue with no attempt counted.
//
// Time: the buckets read Config.Clock when it is set (tests drive it), else the routing
// loop's clock of the batch being handled (no extra clock read).

var errTooManyLimits = protocol.ErrTooManyLimits

// limiter is one limit and its state.
type limiter struct {
	scope      string // protocol.LimitMethod, LimitQueue or LimitGroup
	name       string
	rate       float64 // tokens per second, 0: no bucket
	burst      float64
	tokens     float64
	last       int64 // when tokens was last brought up to date (unix ns)
	maxRunning int   // 0: no cap
	running    int   // group limits: tasks of the group held by nodes
	parked     ring  // group limits: keys of the tasks waiting for the group (ratelimit_group.go)
	pausedTill int64 // unix ns: closed until then (a node's CodeRateLimited)
	set        bool  // set by a user (false: made for a pause only)
	blocked    bool  // in core.limBlocked
	queues     []uint32
}

// limitKey names a limit in core.limits.
type limitKey struct{ scope, name string }

// limitNow returns the time the limits run on.
func (c *core) limitNow() int64 {
	if c.cfg.Clock != nil {
		return c.cfg.Clock().UnixNano()
	}
	return c.clock
}

// refill brings l's bucket up to date at now.
func (l *limiter) refill(now int64) {
	if l.rate == 0 {
		return
	}
	if now > l.last {
		l.tokens = min(l.burst, l.tokens+float64(now-l.last)*l.rate/1e9)
		l.last = now
	}
}

// open reports whether l lets one more task out at now, with running tasks held.
func (l *limiter) open(now int64, running int) bool {
	if l.pausedTill > now {
		return false
	}
	if l.maxRunning > 0 && running >= l.maxRunning {
		return false
	}
	if l.rate > 0 {
		l.refill(now)
		if l.tokens < 1 {
			return false
		}
	}
	return true
}

// held returns the tasks of l's scope held by nodes.
func (c *core) held(l *limiter) int {
	if l.scope == groupScope {
		return l.running
	}
	n := 0
	for _, qi := range l.queues {
		n += c.queues[qi].held
	}
	return n
}

// limitsOpen reports whether every limit of q lets one more task out; a closed one is noted
// so that q is pumped again when it opens.
func (c *core) limitsOpen(q *queue) bool {
	now := c.limitNow()
	for _, l := range q.lims {
		if !l.open(now, c.held(l)) {
			c.noteBlocked(l)
			return false
		}
	}
	return true
}

// chargeLimits takes a token from every bucket of q (the hand-out of one of its tasks).
func (c *core) chargeLimits(q *queue) {
	for _, l := range q.lims {
		if l.rate > 0 {
			l.tokens--
		}
	}
}

// noteBlocked remembers that l closed while tasks waited for it.
func (c *core) noteBlocked(l *limiter) {
	if !l.blocked {
		l.blocked = true
		c.limBlocked = append(c.limBlocked, l)
	}
}

// pumpBlocked pumps the queues of the limits that closed, now that time has passed or tasks
// have finished; those still closed stay noted. Limits made for a pause that has ended go.
func (c *core) pumpBlocked() {
	if len(c.limBlocked) == 0 {
		return
	}
	now := c.limitNow()
	list := c.limBlocked
	c.limBlocked = c.limBlockedSpare[:0]
	for _, l := range list {
		l.blocked = false
		if !l.set && l.pausedTill <= now {
			c.dropLimit(l)
			continue
		}
		if l.scope == groupScope {
			c.pumpGroup(l, false)
			continue
		}
		for _, qi := range l.queues {
			c.pumpQueue(c.queues[qi])
		}
		if !l.blocked && l.pausedTill > now {
			c.noteBlocked(l) // paused with nothing waiting: still dropped when the pause ends
		}
	}
	c.limBlockedSpare = list[:0]
}

// limitFor returns the limit of scope and name, making it (unset, open) when make is true.
func (c *core) limitFor(scope, name string, mk bool) *limiter {
	if l := c.limits[limitKey{scope, name}]; l != nil || !mk {
		return l
	}
	l := &limiter{scope: scope, name: name}
	if c.limits == nil {
		c.limits = make(map[limitKey]*limiter)
	}
	c.limits[limitKey{scope, name}] = l
	if scope == groupScope {
		c.groupLimits++
		return l
	}
	for _, q := range c.queues {
		if q != nil && limitApplies(l, q) {
			c.attach(l, q)
		}
	}
	return l
}

// limitApplies reports whether method or queue limit l gates q.
func limitApplies(l *limiter, q *queue) bool {
	switch l.scope {
	case protocol.LimitMethod:
		return q.method == l.name
	case protocol.LimitQueue:
		return qnameOf(q) == l.name
	}
	return false
}

// attach makes l gate q.
func (c *core) attach(l *limiter, q *queue) {
	l.queues = append(l.queues, q.idx)
	q.lims = append(q.lims, l)
}

// attachLimits gives a new queue the limits that apply to it.
func (c *core) attachLimits(q *queue) {
	for _, scope := range [...]string{protocol.LimitMethod, protocol.LimitQueue} {
		name := q.method
		if scope == protocol.LimitQueue {
			name = qnameOf(q)
		}
		if l := c.limits[limitKey{scope, name}]; l != nil {
			c.attach(l, q)
		}
	}
}

// detachLimits takes a queue being dropped out of its limits.
func (c *core) detachLimits(q *queue) {
	for _, l := range q.lims {
		if i := slices.Index(l.queues, q.idx); i >= 0 {
			l.queues = slices.Delete(l.queues, i, i+1)
		}
	}
	q.lims = nil
}

// dropLimit forgets l; its queues are pumped (they may have waited for it).
func (c *core) dropLimit(l *limiter) {
	delete(c.limits, limitKey{l.scope, l.name})
	if l.scope == groupScope {
		c.groupLimits--
		c.pumpGroup(l, true)
		return
	}
	qs := l.queues
	l.queues = nil
	for _, qi := range qs {
		q := c.queues[qi]
		if i := slices.Index(q.lims, l); i >= 0 {
			q.lims = slices.Delete(q.lims, i, i+1)
		}
		if len(q.lims) == 0 {
			q.lims = nil
		}
		c.pumpQueue(q)
	}
}

// setLimit sets (or removes, with neither rate nor cap) a limit; the error is the answer's.
func (c *core) setLimit(lm protocol.Limit) *codec.Error {
	switch lm.Scope {
	case protocol.LimitMethod, protocol.LimitQueue, protocol.LimitGroup:
	default:
		return invalidParams("scope must be " + protocol.LimitMethod + ", " + protocol.LimitQueue + " or " + protocol.LimitGroup)
	}
	if lm.Name == "" || len(lm.Name) > c.cfg.MaxMethodLen || !protocol.ValidName(lm.Name) {
		return invalidParams("name must be a name of 1 to " + itoa(c.cfg.MaxMethodLen) + " bytes without control characters")
	}
	if math.IsNaN(lm.Rate) || lm.Rate < 0 || lm.Rate > protocol.MaxRate {
		return invalidParams("rate must be from 0 to " + itoa(protocol.MaxRate) + " tasks per second")
	}
	if lm.Burst < 0 || lm.Burst > protocol.MaxBurst || lm.MaxRunning < 0 || lm.MaxRunning > protocol.MaxRunningCap {
		return invalidParams("burst and max_running must be from 0 to " + itoa(protocol.MaxBurst))
	}
	l := c.limitFor(lm.Scope, lm.Name, false)
	if lm.Rate == 0 && lm.MaxRunning == 0 {
		if l != nil {
			l.set, l.rate, l.maxRunning = false, 0, 0
			if l.pausedTill <= c.limitNow() {
				c.dropLimit(l)
			}
		}
		return nil
	}
	if l == nil && len(c.limits) >= c.cfg.MaxLimits {
		return errTooManyLimits
	}
	l = c.limitFor(lm.Scope, lm.Name, true)
	now := c.limitNow()
	burst := float64(lm.Burst)
	if burst == 0 {
		burst = max(1, math.Floor(lm.Rate*protocol.DefaultBurstSpan.Seconds()))
	}
	if !l.set || l.rate == 0 {
		l.tokens, l.last = burst, now // a new bucket starts full
	}
	l.set, l.rate, l.burst, l.maxRunning = true, lm.Rate, burst, lm.MaxRunning
	l.tokens = min(l.tokens, burst)
	c.noteBlocked(l) // a raised limit lets waiting tasks out at once
	return nil
}

// pauseLimit closes the limit of scope and name for d (a node's CodeRateLimited).
func (c *core) pauseLimit(scope, name string, d time.Duration) {
	l := c.limitFor(scope, name, false)
	if l == nil {
		if len(c.limits) >= c.cfg.MaxLimits {
			return // the table is full: the task only goes back to its queue
		}
		l = c.limitFor(scope, name, true)
	}
	l.pausedTill = max(l.pausedTill, c.limitNow()+int64(min(d, protocol.MaxRateLimitWait)))
	c.noteBlocked(l)
}

// rateLimited handles a node's CodeRateLimited answer for held task t: its group or its
// method pauses for the delay asked, and t goes back to the front of its queue with no
// attempt counted.
func (c *core) rateLimited(slot uint32, t *task, errObj []byte) {
	ms, _ := rawjson.ParseInt(rawjson.Member(rawjson.Member(errObj, "data"), protocol.MemberRetryAfterMS))
	d := time.Duration(max(ms, 0)) * time.Millisecond
	if g := c.groupOf(slot, t); g != "" {
		c.pauseLimit(groupScope, g, d)
	} else {
		c.pauseLimit(protocol.LimitMethod, c.queues[t.q].method, d)
	}
	c.cnt.rateLimited++
	c.refused(slot, t)
}

// isRateLimited reports whether a node's error object is a CodeRateLimited answer.
func isRateLimited(code int, errObj []byte) bool {
	return code == protocol.CodeRateLimited && rawjson.IsTrue(rawjson.Member(rawjson.Member(errObj, "data"), protocol.RateLimitedData))
}

// appendLimits appends broker.limit.list's answer: every limit, sorted by scope and name.
func (c *core) appendLimits(dst []byte) []byte {
	now := c.limitNow()
	list := make([]protocol.Limit, 0, len(c.limits))
	for _, l := range c.limits {
		lm := protocol.Limit{Scope: l.scope, Name: l.name, Rate: l.rate, MaxRunning: l.maxRunning}
		if l.set {
			lm.Burst = int(l.burst)
		}
		lm.Running = c.held(l)
		if l.pausedTill > now {
			lm.PausedMS = max((l.pausedTill-now)/int64(time.Millisecond), 1)
		}
		list = append(list, lm)
	}
	slices.SortFunc(list, func(a, b protocol.Limit) int {
		if a.Scope != b.Scope {
			if a.Scope < b.Scope {
				return -1
			}
			return 1
		}
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	v, err := codec.Marshal(list)
	if err != nil {
		return append(dst, "[]"...)
	}
	return append(dst, v...)
}

// bLimitSet: broker.limit.set with a Limit object.
func (c *core) bLimitSet(tg target, h *codec.Header) {
	var lm protocol.Limit
	if ps := rawjson.TrimSpace(h.Params); len(ps) == 0 || ps[0] != '{' || codec.Unmarshal(ps, &lm) != nil {
		c.badParams(tg, h.ID, "params must be a limit object")
		return
	}
	if e := c.setLimit(lm); e != nil {
		c.fail(tg, h.ID, e)
		return
	}
	c.pumpBlocked()
	c.ok(tg, h.ID, trueJSON)
}

// invalidParams returns a -32602 error with msg.
func invalidParams(msg string) *codec.Error {
	return &codec.Error{Code: codec.CodeInvalidParams, Message: "Invalid params: " + msg}
}

func itoa[T int | float64](n T) string {
	return string(appendUint(nil, uint64(n)))
}

// initLimits sets Config.Limits (at start, before any task).
func (c *core) initLimits() error {
	for _, lm := range c.cfg.Limits {
		if e := c.setLimit(lm); e != nil {
			return fmt.Errorf("%w: limit %s %q: %s", ErrConfig, lm.Scope, lm.Name, e.Message)
		}
	}
	return nil
}
