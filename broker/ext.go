package broker

import (
	"bytes"
	"strconv"
	"time"

	"github.com/zerotask/zerotask/internal/rawjson"
	"github.com/zerotask/zerotask/protocol"
)

// Task options travel as ZeroTask extension members (docs/protocol.md, docs/reliability.md):
// top-level members of a task call's object beside jsonrpc, id, method and params (other
// JSON-RPC servers ignore them), or params of broker.submit. They are read from the raw bytes
// without allocating; params are never looked into.
//
//	timeout_ms      deadline, from now: still queued then, the task expires (CodeExpired); running
//	                then, its handler's context ends (the node answers CodeDeadline)
//	delay_ms        held back that long before it is queued
//	eta_ms          held back until that unix time in milliseconds (the later of the two wins)
//	priority        0..MaxPriority within its queue, higher first (default 0)
//	queue           a named queue (default "default"); only nodes serving it run the task
//	max_attempts    hand-outs at most, 1..MaxAttemptsCap (default Config.MaxAttempts)
//	backoff_ms      first retry delay, doubled per attempt (default Config.RetryBackoff)
//	max_backoff_ms  largest retry delay (default Config.MaxRetryBackoff)
//	key             idempotency key, broker.submit only (see keys.go)
//	key_group       the task's key group: the group limit of that name applies (ratelimit_group.go)
//	meta            a JSON object of at most MaxMetaLen bytes, carried byte for byte to the node
//	                and into the record (trace context, user fields); never read inside

// taskExt is what a task's extension members asked for.
type taskExt struct {
	timeout     time.Duration
	delay       time.Duration // from delay_ms and eta_ms, relative to now
	priority    uint8
	queue       []byte // nil: the default queue (a sub-slice of the request)
	key         []byte // nil: none (a sub-slice of the request)
	group       []byte // key_group, nil: none (a sub-slice of the request)
	meta        []byte // meta, nil: none (a sub-slice of the request)
	maxAttempts int
	backoff     time.Duration
	maxBackoff  time.Duration
	bad         string // the first invalid member: the request is answered -32602
}

// The messages of invalid params, with the bounds they name.
var (
	msgPriority    = "priority must be an integer from 0 to " + strconv.Itoa(MaxPriority)
	msgQueue       = "queue must be a string of 1 to " + strconv.Itoa(MaxQueueName) + " bytes without escapes"
	msgQueueNames  = "queue names must be 1 to " + strconv.Itoa(MaxQueueName) + " bytes"
	msgBadName     = "method and queue names must not hold control characters"
	msgMaxAttempts = "max_attempts must be an integer from 1 to " + strconv.Itoa(MaxAttemptsCap)
	msgKeyGroup    = protocol.MemberKeyGroup + " must be a string of 1 to " + strconv.Itoa(protocol.MaxGroupLen) + " bytes without escapes or control characters"
	msgKey         = "key must be a string of 1 to " + strconv.Itoa(MaxKeyLen) + " bytes without escapes"
	msgMeta        = protocol.MemberMeta + " must be a JSON object of at most " + strconv.Itoa(protocol.MaxMetaLen) + " bytes"
)

// set reads one member; unknown names are ignored (as JSON-RPC wants).
func (x *taskExt) set(c *core, name, v []byte, submit bool) {
	switch string(name) {
	case protocol.MemberTimeoutMS:
		x.setTimeout(v)
	case protocol.MemberDelayMS:
		n, ok := rawjson.ParseUint(v)
		if !ok || n > uint64(c.cfg.MaxDelay/time.Millisecond) {
			x.fail("delay_ms must be an integer from 0 to the broker's MaxDelay")
			return
		}
		x.delay = max(x.delay, time.Duration(n)*time.Millisecond)
	case protocol.MemberETAMS:
		n, ok := rawjson.ParseUint(v)
		if !ok {
			x.fail("eta_ms must be a unix time in milliseconds")
			return
		}
		d := time.Duration(int64(n)-c.now()/int64(time.Millisecond)) * time.Millisecond
		if n > 1<<50 || d > c.cfg.MaxDelay {
			x.fail("eta_ms is further away than the broker's MaxDelay")
			return
		}
		x.delay = max(x.delay, d)
	case protocol.MemberPriority:
		n, ok := rawjson.ParseUint(v)
		if !ok || n > MaxPriority {
			x.fail(msgPriority)
			return
		}
		x.priority = uint8(n)
	case protocol.MemberQueue:
		s, ok := rawjson.Unquote(v)
		if !ok || len(s) == 0 || len(s) > MaxQueueName {
			x.fail(msgQueue)
			return
		}
		x.queue = s
	case protocol.MemberMaxAttempts:
		n, ok := rawjson.ParseUint(v)
		if !ok || n == 0 || n > MaxAttemptsCap {
			x.fail(msgMaxAttempts)
			return
		}
		x.maxAttempts = int(n)
	case protocol.MemberBackoffMS, protocol.MemberMaxBackoffMS:
		n, ok := rawjson.ParseUint(v)
		if !ok || n == 0 || n > uint64(c.cfg.MaxDelay/time.Millisecond) {
			x.fail(string(name) + " must be a positive integer up to the broker's MaxDelay")
			return
		}
		if name[0] == 'b' {
			x.backoff = time.Duration(n) * time.Millisecond
		} else {
			x.maxBackoff = time.Duration(n) * time.Millisecond
		}
	case protocol.MemberKeyGroup:
		s, ok := rawjson.Unquote(v)
		if !ok || len(s) == 0 || len(s) > protocol.MaxGroupLen || !protocol.ValidName(s) {
			x.fail(msgKeyGroup)
			return
		}
		x.group = s
	case protocol.MemberMeta:
		// The request was validated by codec: an object here is well-formed JSON.
		if len(v) < 2 || v[0] != '{' || len(v) > protocol.MaxMetaLen {
			x.fail(msgMeta)
			return
		}
		x.meta = v
	case protocol.MemberKey:
		if !submit {
			return // not a task call option: ignored like any unknown member
		}
		s, ok := rawjson.Unquote(v)
		if !ok || len(s) == 0 || len(s) > MaxKeyLen {
			x.fail(msgKey)
			return
		}
		x.key = s
	}
}

// setTimeout reads timeout_ms.
func (x *taskExt) setTimeout(v []byte) {
	n, ok := rawjson.ParseUint(v)
	if !ok || n == 0 {
		x.fail("timeout_ms must be a positive integer")
		return
	}
	x.timeout = time.Duration(min(n, uint64(protocol.MaxTimeout/time.Millisecond))) * time.Millisecond
}

func (x *taskExt) fail(msg string) {
	if x.bad == "" {
		x.bad = msg
	}
}

// finish checks the members against each other (once all are read).
func (x *taskExt) finish(c *core) {
	switch {
	case x.backoff == 0 && x.maxBackoff != 0:
		x.backoff = min(c.cfg.RetryBackoff, x.maxBackoff)
	case x.backoff != 0 && x.maxBackoff == 0:
		x.maxBackoff = max(c.cfg.MaxRetryBackoff, x.backoff)
	case x.maxBackoff < x.backoff:
		x.fail("max_backoff_ms must not be below backoff_ms")
	}
}

// envelope splits obj around inner, a sub-slice of obj (params, or an error object): what is
// left are the envelope's bytes, where the extension members can be.
func envelope(obj, inner []byte) (head, tail []byte) {
	head = obj
	if len(inner) > 0 {
		// inner shares obj's backing array: its offset follows from the capacities.
		if off := cap(obj) - cap(inner); off >= 0 && off+len(inner) <= len(obj) {
			head, tail = obj[:off], obj[off+len(inner):]
		}
	}
	return head, tail
}

func containsAny(head, tail, key []byte) bool {
	return bytes.Contains(head, key) || bytes.Contains(tail, key)
}

// readCallExt reads the extension members of a task call: ext is what codec did not read of
// its object (codec.Header.Ext), which params lies within when members around it are
// extensions. A request without any costs nothing more.
func (c *core) readCallExt(ext, params []byte, x *taskExt) {
	*x = taskExt{}
	if len(ext) == 0 {
		return
	}
	if v, ok := bytes.CutPrefix(ext, compactTimeoutMS); ok && bytes.IndexByte(v, ',') < 0 {
		// Only a timeout, as the Go client writes for every call: no walk (a tenth of the
		// broker's CPU with results). ext was validated by codec, so without a comma it is
		// that one member, and v its whole value.
		x.setTimeout(v)
		return
	}
	var o rawjson.Object
	o.ResetMembers(ext)
	c.readMembers(&o, params, x, false)
}

// compactTimeoutMS is timeout_ms's name as most clients write it, colon included.
var compactTimeoutMS = []byte(`"` + protocol.MemberTimeoutMS + `":`)

// readExt reads the extension members of obj (broker.submit's params object), skipping the
// member whose value is skip (never scanned again).
func (c *core) readExt(obj, skip []byte, x *taskExt, submit bool) {
	*x = taskExt{}
	var o rawjson.Object
	if !o.Reset(obj) {
		return
	}
	c.readMembers(&o, skip, x, submit)
}

// readMembers reads the members of the walk o into x (x zeroed), skipping the member whose
// value is skip.
func (c *core) readMembers(o *rawjson.Object, skip []byte, x *taskExt, submit bool) {
	o.Known(skip)
	for o.Next() {
		if v := o.Value(); len(skip) == 0 || &v[0] != &skip[0] {
			x.set(c, o.Name(), v, submit) // jsonrpc, id, method and the rest: ignored
		}
	}
	if o.Malformed() {
		return
	}
	x.finish(c)
}
