package dispatch

import (
	"errors"
	"time"

	"github.com/zerotask/zerotask/codec"
)

// Retries and time limits. dispatch does not retry anything itself: it only carries what a
// handler or a registration says about a failure, and the node puts it on the wire
// (docs/reliability.md). A failed task is run again only when its error is retryable and it
// has attempts left; the broker owns the attempt count and the backoff.

// RetryError marks a handler's error as retryable: the broker may run the task again (on any
// node) after a backoff, if the task has attempts left. Build one with Retry or RetryAfter;
// errors.As finds it through any wrapping, and errors.Is / errors.As still see the error it
// carries.
type RetryError struct {
	Err   error         // the failure itself: what the caller gets if no attempt is left
	After time.Duration // how long to wait before the next attempt; 0 means the broker's backoff
}

// Error returns the message of the error it carries.
func (e *RetryError) Error() string { return e.Err.Error() }

// Unwrap returns the error it carries.
func (e *RetryError) Unwrap() error { return e.Err }

// Retry marks err as retryable (nil stays nil): the task is run again after the broker's
// backoff, exponential with jitter, while it has attempts left; its last failure is the error
// its caller sees. An error that also wraps ErrSkipRetry is not retried.
func Retry(err error) error {
	if err == nil {
		return nil
	}
	return &RetryError{Err: err}
}

// RetryAfter is Retry with the delay before the next attempt chosen by the handler (a rate
// limit's Retry-After, say); the broker caps it at the task's maximum backoff. A delay <= 0
// means the broker's backoff.
func RetryAfter(err error, after time.Duration) error {
	if err == nil {
		return nil
	}
	return &RetryError{Err: err, After: max(after, 0)}
}

// Retryable reports whether err asks to be run again, and after how long (0: the broker's
// backoff): it wraps a *RetryError and does not wrap ErrSkipRetry.
func Retryable(err error) (after time.Duration, ok bool) {
	if err == nil || errors.Is(err, ErrSkipRetry) {
		return 0, false
	}
	var re *RetryError
	if errors.As(err, &re) {
		return re.After, true
	}
	return 0, false
}

// Policy is what a method was registered with beyond its handler: how the node that runs it
// treats time and failures. The zero Policy is the default: no time limit, only errors marked
// with Retry are retryable.
type Policy struct {
	// TimeLimit bounds one run of the method: the node cancels the handler's context when it
	// has run that long (context.DeadlineExceeded) and the task fails (node.CodeDeadline).
	// 0 means none. The call's own deadline, when it has one, bounds the run too.
	TimeLimit time.Duration
	// RetryOnError makes every error of the method retryable, except invalid params (-32602)
	// and errors wrapping ErrSkipRetry, as if each were wrapped with Retry.
	RetryOnError bool
}

// Retryable reports whether err, returned by a method with policy p (directly, or by Call),
// asks for another attempt, and after how long (0: the broker's backoff).
func (p Policy) Retryable(err error) (after time.Duration, ok bool) {
	if after, ok := Retryable(err); ok {
		return after, true
	}
	if !p.RetryOnError || err == nil || errors.Is(err, ErrSkipRetry) {
		return 0, false
	}
	var ce *codec.Error
	if errors.As(err, &ce) && (ce.Code == codec.CodeInvalidParams || ce.Code == codec.CodeMethodNotFound) {
		return 0, false // the same params fail the same way on every node
	}
	return 0, true
}

type policyOption func(*Policy)

func (f policyOption) apply(o *options) { f(&o.policy) }

// TimeLimit bounds how long one run of the method may take (see Policy.TimeLimit). It applies
// to every kind of handler. A negative limit makes Register fail with ErrBadOption.
func TimeLimit(d time.Duration) Option {
	return policyOption(func(p *Policy) { p.TimeLimit = d })
}

// RetryOnError makes the method's errors retryable (see Policy.RetryOnError): the task is run
// again while it has attempts left, unless its error wraps ErrSkipRetry.
func RetryOnError() Option {
	return policyOption(func(p *Policy) { p.RetryOnError = true })
}

// Policy returns the policy method was registered with (the zero Policy for none, or for an
// unknown method). It never allocates: a dispatcher without policies answers without a map
// lookup.
func (d *Dispatcher) Policy(method []byte) Policy {
	t := d.load()
	if t.policies == nil {
		return Policy{}
	}
	return t.policies[string(method)]
}
