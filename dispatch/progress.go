package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/zerotask/zerotask/protocol"
)

// ProgressReporter receives a task's progress reports. A runtime that runs tasks (the node)
// answers Value(ProgressKey) on a task's context with one; handlers use Progress and
// ProgressRaw. Implementations keep only the last report and send it on their own schedule, so
// a report never blocks or slows the task.
type ProgressReporter interface {
	// ReportProgress records done out of total units, with a short note.
	ReportProgress(done, total int64, note string)
	// ReportProgressRaw records a JSON value (valid, at most protocol.MaxProgressSize bytes;
	// the caller checked). It must not keep raw.
	ReportProgressRaw(raw []byte)
}

type progressKey struct{}

// ProgressKey is the context key under which a task's context answers its ProgressReporter.
var ProgressKey any = progressKey{}

// WithProgressReporter returns a copy of parent whose Progress calls go to r: for tests of
// handlers, and for runtimes other than the node.
func WithProgressReporter(parent context.Context, r ProgressReporter) context.Context {
	return context.WithValue(parent, ProgressKey, r)
}

// ErrProgress is returned by ProgressRaw for a value that is not JSON or is too large.
var ErrProgress = errors.New("dispatch: progress must be one JSON value of at most protocol.MaxProgressSize bytes")

// Progress reports that the task has done done of total units (note may say what it does). It
// appears in the task's record (broker.status, `zerotask status`, the client's Handle), on the
// broker's state stream and on the dashboard, as {"done":D,"total":T,"note":N}. The node keeps
// only the last report and sends at most one per task per heartbeat interval: calling it in a
// tight loop costs a lock and a copy. Outside a task (a context no runtime made for one) it
// does nothing.
func Progress(ctx context.Context, done, total int64, note string) {
	if r, ok := ctx.Value(ProgressKey).(ProgressReporter); ok && r != nil {
		r.ReportProgress(done, total, note)
	}
}

// ProgressRaw reports the task's progress as any JSON value of at most
// protocol.MaxProgressSize bytes (Progress's coalescing applies). It returns ErrProgress for
// anything else, and nil outside a task.
func ProgressRaw(ctx context.Context, raw []byte) error {
	r, ok := ctx.Value(ProgressKey).(ProgressReporter)
	if !ok || r == nil {
		return nil
	}
	if len(raw) == 0 || len(raw) > protocol.MaxProgressSize || !json.Valid(raw) {
		return fmt.Errorf("%w (got %d bytes)", ErrProgress, len(raw))
	}
	r.ReportProgressRaw(raw)
	return nil
}

// AppendProgress appends the JSON form of a Progress report: {"done":D,"total":T,"note":N}
// (no note when empty), the note cut to keep the value within protocol.MaxProgressSize.
func AppendProgress(dst []byte, done, total int64, note string) []byte {
	const room = protocol.MaxProgressSize - 64 // the numbers and member names
	if len(note) > room {
		note = note[:room]
	}
	dst = append(dst, `{"done":`...)
	dst = strconv.AppendInt(dst, done, 10)
	dst = append(dst, `,"total":`...)
	dst = strconv.AppendInt(dst, total, 10)
	if note != "" {
		dst = append(dst, `,"note":`...)
		b, _ := json.Marshal(note) // a cut may split a rune: Marshal writes U+FFFD for it
		if len(b) > room+2 {
			b, _ = json.Marshal(note[:room/6]) // escapes can grow a byte to six
		}
		dst = append(dst, b...)
	}
	return append(dst, '}')
}
