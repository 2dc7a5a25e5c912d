package dispatch

import (
	"context"
	"time"
)

// TaskInfo describes the task a handler runs, as the runtime that runs it (a node) knows it.
// Read it with TaskInfoFrom. It is the same for every call of TaskInfoFrom within one run, and
// another for the next task: a handler may keep it.
type TaskInfo struct {
	// ID is the task's id as the broker records it and the client's Handle reports it
	// ("41d6d099-17"): the same for every attempt of the task, so a handler can make its
	// effects idempotent with it. Empty for a call (Call, Notify), which has no record.
	ID string
	// Attempt is the task's attempt number: 1 for its first hand-out to a node, 2 for the
	// first retry, and so on. 0 when the runtime does not know it.
	Attempt int
	// Queue is the queue the task came from ("default" unless it was given another).
	Queue string
	// Deadline is when the task's context ends (its deadline or the method's time limit,
	// whichever comes first); zero when it has none.
	Deadline time.Time
	// Meta is the task's meta object exactly as its caller wrote it, byte for byte (a JSON
	// object of at most protocol.MaxMetaLen bytes: a W3C traceparent, user fields); "" when it
	// has none. A string, so that TaskInfo stays comparable and a handler may keep it.
	Meta string
}

// taskInfoKey is the context key of a *TaskInfo.
type taskInfoKey struct{}

// TaskInfoKey is the key under which a task's context answers Value with its *TaskInfo. A
// runtime that builds its own context (the node does, to run a task without allocating a
// context chain) answers it; WithTaskInfo does it for any other context. Handlers use
// TaskInfoFrom.
var TaskInfoKey any = taskInfoKey{}

// WithTaskInfo returns a copy of parent whose TaskInfoFrom is info: for tests of handlers,
// and for runtimes other than the node.
func WithTaskInfo(parent context.Context, info TaskInfo) context.Context {
	return context.WithValue(parent, TaskInfoKey, &info)
}

// TaskInfoFrom returns the task a handler's context belongs to (or any context derived from
// it): its id, attempt, queue and deadline. ok is false outside a task (a context that no
// runtime made for one).
//
//	func charge(ctx context.Context, order string) error {
//		info, _ := dispatch.TaskInfoFrom(ctx)
//		return payments.Charge(ctx, order, "zerotask:"+info.ID) // one charge, however many attempts
//	}
func TaskInfoFrom(ctx context.Context) (info TaskInfo, ok bool) {
	p, ok := ctx.Value(TaskInfoKey).(*TaskInfo)
	if !ok || p == nil {
		return TaskInfo{}, false
	}
	return *p, true
}
