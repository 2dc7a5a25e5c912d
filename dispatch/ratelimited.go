package dispatch

import (
	"time"

	"github.com/zerotask/zerotask/protocol"
)

// RateLimited is what a handler returns when the service behind it said "too many requests,
// retry after d" (HTTP 429): the task did not do its work. The broker pauses the task's key
// group (or its method, for a task without a group) for d, puts the task back in its queue,
// and counts no attempt: a rate-limited task waits, it never fails for it. d is cut to
// protocol.MaxRateLimitWait.
func RateLimited(d time.Duration) error {
	return protocol.NewRateLimited(min(max(d, 0), protocol.MaxRateLimitWait))
}
