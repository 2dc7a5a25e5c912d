package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/protocol"
)

// Task options travel as ZeroTask extension members (docs/protocol.md, docs/reliability.md):
// beside jsonrpc, id, method and params in a task call's object (other JSON-RPC servers ignore
// them), and as params of broker.submit. They are passed after the params, never among them:
//
//	c.Submit(ctx, "sleep", []any{100}, client.Delay(10*time.Second), client.Key("report-42"))

// SubmitOption sets how the broker treats a submitted task (Submit). Every TaskOption is a
// SubmitOption; Key is a SubmitOption only, since an idempotency key means something only for
// a task the broker keeps a record of.
type SubmitOption interface {
	applySubmit(*taskOptions)
}

// TaskOption sets how the broker treats one task, called (CallWith) or submitted (Submit): its
// delay, priority, queue, deadline and retries.
type TaskOption interface {
	SubmitOption
	applyTask(*taskOptions)
}

// taskOption is a TaskOption (and so a SubmitOption).
type taskOption func(*taskOptions)

func (f taskOption) applySubmit(o *taskOptions) { f(o) }
func (f taskOption) applyTask(o *taskOptions)   { f(o) }

// submitOption is a SubmitOption only.
type submitOption func(*taskOptions)

func (f submitOption) applySubmit(o *taskOptions) { f(o) }

type taskOptions struct {
	key         string
	delay       time.Duration
	eta         time.Time
	priority    int
	hasPriority bool
	queue       string
	maxAttempts int
	backoff     time.Duration
	maxBackoff  time.Duration
	timeout     time.Duration
	meta        []byte
	// continueOnError: a workflow's failure policy (ContinueOnError).
	continueOnError bool
	err             error
}

// Bounds of the task options: the broker's (package protocol's). Past one, the option fails
// locally with ErrBadOption.
const (
	MaxKeyLen      = protocol.MaxKeyLen       // MaxKeyLen bounds an idempotency key, in bytes.
	MaxMetaLen     = protocol.MaxMetaLen      // MaxMetaLen bounds a task's meta object, in bytes as written.
	MaxQueueName   = protocol.MaxQueueName    // MaxQueueName bounds a queue name, in bytes.
	MaxPriority    = protocol.MaxPriority     // MaxPriority is the highest priority (0 is the default and lowest).
	MaxAttemptsCap = protocol.MaxAttemptsCap  // MaxAttemptsCap bounds MaxAttempts.
	MaxDelay       = protocol.DefaultMaxDelay // MaxDelay bounds Delay and ETA (from now): the broker's default bound.
	MaxTimeout     = protocol.MaxTimeout      // MaxTimeout bounds a task's timeout.
)

// ErrBadOption: a task option is out of range; the message says which.
var ErrBadOption = errors.New("client: invalid task option")

// Key gives a submitted task an idempotency key (at most MaxKeyLen bytes): a second Submit
// with the same key, while the broker still knows the first task (queued, running, or its
// result kept), returns the first task's id and runs nothing.
func Key(key string) SubmitOption {
	return submitOption(func(o *taskOptions) {
		if key == "" || len(key) > MaxKeyLen {
			o.fail("Key must be 1 to %d bytes, got %d", MaxKeyLen, len(key))
		}
		o.key = key
	})
}

// Delay holds the task in the broker for d before it is queued (d <= MaxDelay). A delayed task
// is never handed to a node early, so a long delay never causes a second run.
func Delay(d time.Duration) TaskOption {
	return taskOption(func(o *taskOptions) {
		if d < 0 || d > MaxDelay {
			o.fail("Delay %v outside [0, %v]", d, MaxDelay)
		}
		o.delay = d
	})
}

// ETA holds the task in the broker until t (by the broker's clock; at most MaxDelay from now).
// A time in the past queues the task at once.
func ETA(t time.Time) TaskOption {
	return taskOption(func(o *taskOptions) {
		if time.Until(t) > MaxDelay {
			o.fail("ETA %v more than %v away", t, MaxDelay)
		}
		o.eta = t
	})
}

// Priority sets the task's priority within its queue: 0 (the default) to MaxPriority; higher
// runs first, tasks of one priority in order.
func Priority(p int) TaskOption {
	return taskOption(func(o *taskOptions) {
		if p < 0 || p > MaxPriority {
			o.fail("Priority %d outside [0, %d]", p, MaxPriority)
		}
		o.priority, o.hasPriority = p, true
	})
}

// Queue puts the task in the named queue (default "default"); only nodes that take tasks from
// that queue (node.Config.Queues) run it.
func Queue(name string) TaskOption {
	return taskOption(func(o *taskOptions) {
		if name == "" || len(name) > MaxQueueName {
			o.fail("Queue name must be 1 to %d bytes, got %d", MaxQueueName, len(name))
		}
		o.queue = name
	})
}

// MaxAttempts bounds how many times the task is handed to a node (1 to MaxAttemptsCap): a
// retryable failure or the loss of its node runs it again while attempts are left. Default:
// the broker's (broker.Config.MaxAttempts).
func MaxAttempts(n int) TaskOption {
	return taskOption(func(o *taskOptions) {
		if n < 1 || n > MaxAttemptsCap {
			o.fail("MaxAttempts %d outside [1, %d]", n, MaxAttemptsCap)
		}
		o.maxAttempts = n
	})
}

// Backoff sets the delay before the retry of a retryable failure: base doubled per attempt,
// at most max, with jitter. Default: the broker's (broker.Config.RetryBackoff and
// MaxRetryBackoff).
func Backoff(base, max time.Duration) TaskOption {
	return taskOption(func(o *taskOptions) {
		if base < time.Millisecond || max < base || max > MaxDelay {
			o.fail("Backoff(%v, %v): want 1ms <= base <= max <= %v", base, max, MaxDelay)
		}
		o.backoff, o.maxBackoff = base, max
	})
}

// Timeout gives the task a deadline d from now (at most MaxTimeout): still queued then, it
// expires without running (EXPIRED, ErrExpired); running then, its handler's context ends
// (ErrDeadline). For Call the context's deadline does the same, and the earlier one wins.
func Timeout(d time.Duration) TaskOption {
	return taskOption(func(o *taskOptions) {
		if d <= 0 || d > MaxTimeout {
			o.fail("Timeout %v outside (0, %v]", d, MaxTimeout)
		}
		o.timeout = d
	})
}

// Meta gives the task a meta object: a JSON object of at most MaxMetaLen bytes (a W3C
// traceparent, user fields) that travels byte for byte to the handler
// (dispatch.TaskInfo.Meta) and into the task's record (Status). The broker never reads inside
// it. Of several Meta options the last wins; contrib/otel builds one from a span's context.
func Meta(obj json.RawMessage) TaskOption {
	return taskOption(func(o *taskOptions) {
		if len(obj) > MaxMetaLen || len(obj) < 2 || obj[0] != '{' || !json.Valid(obj) {
			o.fail("Meta must be a JSON object of at most %d bytes, starting with '{', got %d bytes", MaxMetaLen, len(obj))
		}
		o.meta = obj
	})
}

func (o *taskOptions) fail(format string, args ...any) {
	if o.err == nil {
		o.err = fmt.Errorf("%w: %s", ErrBadOption, fmt.Sprintf(format, args...))
	}
}

// submitOptions applies opts; nil when there are none.
func submitOptions(opts []SubmitOption) (*taskOptions, error) {
	return applyOptions(opts, SubmitOption.applySubmit)
}

// callOptions applies opts; nil when there are none.
func callOptions(opts []TaskOption) (*taskOptions, error) {
	return applyOptions(opts, TaskOption.applyTask)
}

// applyOptions applies the options that are not nil with apply; nil when there are none.
func applyOptions[O any](opts []O, apply func(O, *taskOptions)) (*taskOptions, error) {
	if len(opts) == 0 {
		return nil, nil
	}
	o := &taskOptions{}
	for _, f := range opts {
		if any(f) != nil {
			apply(f, o)
		}
	}
	return o, o.err
}

// appendMembers appends the options as JSON members, each preceded by a comma. For a task
// call (submit false) ctx's deadline is taken as the task's when no Timeout is earlier.
func (o *taskOptions) appendMembers(dst []byte, ctx context.Context, submit bool) []byte {
	timeout := time.Duration(0)
	if o != nil {
		if o.key != "" {
			dst = protocol.AppendMember(dst, protocol.MemberKey)
			dst = codec.AppendString(dst, o.key)
		}
		if o.delay > 0 {
			dst = appendMS(dst, protocol.MemberDelayMS, o.delay)
		}
		if !o.eta.IsZero() {
			dst = protocol.AppendMember(dst, protocol.MemberETAMS)
			dst = strconv.AppendInt(dst, max(o.eta.UnixMilli(), 0), 10)
		}
		if o.hasPriority {
			dst = protocol.AppendMember(dst, protocol.MemberPriority)
			dst = strconv.AppendInt(dst, int64(o.priority), 10)
		}
		if o.queue != "" {
			dst = protocol.AppendMember(dst, protocol.MemberQueue)
			dst = codec.AppendString(dst, o.queue)
		}
		if o.maxAttempts > 0 {
			dst = protocol.AppendMember(dst, protocol.MemberMaxAttempts)
			dst = strconv.AppendInt(dst, int64(o.maxAttempts), 10)
		}
		if o.backoff > 0 {
			dst = appendMS(dst, protocol.MemberBackoffMS, o.backoff)
			dst = appendMS(dst, protocol.MemberMaxBackoffMS, o.maxBackoff)
		}
		if len(o.meta) > 0 {
			dst = protocol.AppendMember(dst, protocol.MemberMeta)
			dst = append(dst, o.meta...)
		}
		timeout = o.timeout
	}
	if !submit {
		if dl, ok := ctx.Deadline(); ok {
			if left := time.Until(dl); timeout == 0 || left < timeout {
				timeout = max(left, time.Millisecond)
			}
		}
	}
	if timeout > 0 {
		dst = appendMS(dst, protocol.MemberTimeoutMS, min(timeout, MaxTimeout))
	}
	return dst
}

// appendMS appends member name and d in whole milliseconds, rounded up (a deadline never
// shrinks to 0).
func appendMS(dst []byte, name string, d time.Duration) []byte {
	dst = protocol.AppendMember(dst, name)
	ms := (d + time.Millisecond - 1) / time.Millisecond
	return strconv.AppendInt(dst, int64(ms), 10)
}

// isTaskMethod reports whether method is a task call (not broker.* or rpc.*): only task calls
// carry the caller's deadline.
func isTaskMethod(method string) bool {
	return !protocol.IsBrokerMethod(method) && !codec.IsReservedName(method)
}
