package broker

import (
	"time"

	"github.com/zerotask/zerotask/internal/rawjson"
	"github.com/zerotask/zerotask/protocol"
)

// Retries. A task runs again in two cases only: its node was lost while it held it (the task
// goes back to the front of its queue at once, see nodeGone), or its node answered an error
// marked retryable ("retry": true in the response, see docs/reliability.md): the task then
// waits out a backoff in the schedule and is queued again, in state RETRY. Either way only
// while it has attempts left (max_attempts, else Config.MaxAttempts); the attempt count is the
// number of hand-outs.

// taskOpts are the per-task options that few tasks carry, kept beside the slab so that the
// task record stays small: only tasks flagged fOpts have an entry (core.opts, by slot).
type taskOpts struct {
	maxAttempts uint8         // 0: Config.MaxAttempts
	backoff     time.Duration // 0: Config.RetryBackoff
	maxBackoff  time.Duration // 0: Config.MaxRetryBackoff
	key         string        // durable mode: the idempotency key, kept for the result's Put
	owner       string        // the authenticated name of its submitter (auth.go), "" without one
	group       string        // its key group (the key_group option): the group limit that applies
	meta        string        // its meta object (raw JSON as the client wrote it), "" for none
}

// setOpts records t's options when they differ from the defaults.
func (c *core) setOpts(slot uint32, t *task, x *taskExt) {
	if x.maxAttempts == 0 && x.backoff == 0 && x.group == nil && x.meta == nil {
		return
	}
	t.flags |= fOpts
	c.opts[slot] = taskOpts{maxAttempts: uint8(x.maxAttempts), backoff: x.backoff, maxBackoff: x.maxBackoff, group: string(x.group), meta: string(x.meta)}
}

// metaOf returns t's meta object ("" for none).
func (c *core) metaOf(slot uint32, t *task) string {
	if t.flags&fOpts == 0 {
		return ""
	}
	return c.opts[slot].meta
}

// metaSize returns the bytes t's meta takes in its hand-out (0 for none).
func (c *core) metaSize(slot uint32, t *task) int {
	if m := c.metaOf(slot, t); m != "" {
		return protocol.MetaOverhead + len(m)
	}
	return 0
}

// maxAttempts returns how many hand-outs task t may have.
func (c *core) maxAttempts(slot uint32, t *task) int {
	if t.flags&fOpts != 0 {
		if o := c.opts[slot]; o.maxAttempts > 0 {
			return int(o.maxAttempts)
		}
	}
	return c.cfg.MaxAttempts
}

// backoff returns the delay before attempt t.attempts+1 of a task whose node asked for a retry
// (after: the delay the handler chose, 0 for none): RetryBackoff doubled per attempt made,
// capped, its upper half jittered so that a burst of failures does not come back as a burst.
func (c *core) backoff(slot uint32, t *task, after time.Duration) time.Duration {
	base, ceil := c.cfg.RetryBackoff, c.cfg.MaxRetryBackoff
	if t.flags&fOpts != 0 {
		if o := c.opts[slot]; o.backoff > 0 {
			base, ceil = o.backoff, o.maxBackoff
		}
	}
	if after > 0 {
		return min(after, ceil)
	}
	d := base
	for i := 1; i < int(t.attempts) && d < ceil; i++ {
		d *= 2
	}
	d = min(d, ceil)
	half := d / 2
	return half + time.Duration(c.rand()%uint64(half+1))
}

// rand returns the next number of a splitmix64 sequence (the routing state's own: no lock, no
// allocation; jitter needs no better).
func (c *core) rand() uint64 {
	c.rnd += 0x9e3779b97f4a7c15
	z := c.rnd
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

var (
	retryKey      = []byte(`"` + protocol.MemberRetry + `"`)
	retryAfterKey = []byte(`"` + protocol.MemberRetryAfterMS + `"`)
)

// retryAsked reports whether a node's error response obj asks for a retry ("retry":true) and
// the delay it chose (retry_after_ms). Only the envelope outside the error object is searched.
func retryAsked(obj, errObj []byte) (bool, time.Duration) {
	head, tail := envelope(obj, errObj)
	if !containsAny(head, tail, retryKey) {
		return false, 0
	}
	if !rawjson.IsTrue(rawjson.Member(obj, protocol.MemberRetry)) {
		return false, 0
	}
	var after time.Duration
	if containsAny(head, tail, retryAfterKey) {
		if ms, ok := rawjson.ParseUint(rawjson.Member(obj, protocol.MemberRetryAfterMS)); ok {
			after = time.Duration(min(ms, uint64(protocol.MaxTimeout/time.Millisecond))) * time.Millisecond
		}
	}
	return true, after
}

// retry runs a task again after a retryable failure if it has attempts left, and reports
// whether it did (the task is then scheduled in state RETRY). The task is off its node.
func (c *core) retry(slot uint32, t *task, after time.Duration) bool {
	if c.closing && t.state != stRevoked && int(t.attempts) < c.maxAttempts(slot, t) && c.staysStored(t) {
		c.release(slot, t) // to run again after the stop, by the next run or another broker
		return true
	}
	if c.closing || t.state == stRevoked || t.flags&fOrphan != 0 || int(t.attempts) >= c.maxAttempts(slot, t) {
		return false
	}
	d := c.backoff(slot, t, after)
	at := c.now() + int64(d)
	if t.deadline != 0 && at >= t.deadline {
		return false // it would only expire waiting: fail it now with its error
	}
	if t.state == stRunning {
		c.markRunning(t, false)
	}
	t.bump()
	c.cnt.retried++
	c.count(t, outRetried)
	c.schedule(slot, t, at, stRetry)
	c.stateChanged(t)
	return true
}

// errObjCode returns the code of a raw JSON-RPC error object (0 when unreadable).
func errObjCode(errObj []byte) int {
	n, ok := rawjson.ParseInt(rawjson.Member(errObj, "code"))
	if !ok {
		return 0
	}
	return int(n)
}
