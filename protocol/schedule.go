package protocol

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/zerotask/zerotask/codec"
)

// Periodic tasks and hand-out limits (docs/workflows.md): the broker's methods that steer
// them, the shapes their params and answers take, and their bounds.

// The broker's methods for periodic tasks and limits.
const (
	MethodScheduleSet    = "broker.schedule.set"    // MethodScheduleSet: add or replace a periodic task ({"name":...} as Schedule).
	MethodScheduleRemove = "broker.schedule.remove" // MethodScheduleRemove: remove a periodic task by name; answers whether it existed.
	MethodScheduleList   = "broker.schedule.list"   // MethodScheduleList: the periodic tasks, as an array of Schedule.
	MethodLimitSet       = "broker.limit.set"       // MethodLimitSet: set (or, with no rate and no cap, remove) a hand-out limit (Limit).
	MethodLimitList      = "broker.limit.list"      // MethodLimitList: the hand-out limits, as an array of Limit with their state.
)

// MemberKeyGroup is the task option naming its key group (a customer id, say): the limits of
// scope LimitGroup with that name apply to the task. A task call's extension member, or a
// param of broker.submit. (Not "group": a workflow's graph node of that name is a group.)
const MemberKeyGroup = "key_group"

// The misfire policies of a schedule: what it does about ticks that passed while no broker
// could enqueue them (all stopped, or a clock jump).
const (
	MisfireSkip = "skip" // MisfireSkip: missed ticks are dropped; the next tick runs on time (the default).
	MisfireOnce = "once" // MisfireOnce: the missed ticks run as one task, at once, then ticks run on time.
)

// The scopes of a limit.
const (
	LimitMethod = "method" // LimitMethod: the tasks of one method, whatever their queue.
	LimitQueue  = "queue"  // LimitQueue: the tasks of one named queue (DefaultQueue included), whatever their method.
	LimitGroup  = "group"  // LimitGroup: the tasks whose MemberKeyGroup option names the group.
)

// Bounds of schedules and limits.
const (
	MaxScheduleName  = 128                   // MaxScheduleName bounds a schedule's name, in bytes.
	MaxGroupLen      = 128                   // MaxGroupLen bounds a task's group, in bytes.
	MinEvery         = time.Second           // MinEvery is the shortest interval of a schedule (and cron's finest field, seconds).
	MaxRate          = 1e7                   // MaxRate bounds a limit's rate, in tasks per second.
	MaxBurst         = 1 << 30               // MaxBurst bounds a limit's burst.
	MaxRunningCap    = 1 << 30               // MaxRunningCap bounds a limit's max_running.
	MaxRateLimitWait = time.Hour             // MaxRateLimitWait bounds the pause a node's CodeRateLimited asks for (a longer one is cut to it).
	DefaultSchedules = 10_000                // DefaultSchedules bounds the schedules one broker keeps.
	DefaultLimits    = 10_000                // DefaultLimits bounds the limits one broker keeps.
	MisfireGrace     = time.Second           // MisfireGrace: a tick found later than this after its time is a missed one.
	DefaultBurstSpan = 10 * time.Millisecond // DefaultBurstSpan: a limit set without a burst gets the tasks of this span of its rate (at least 1).
)

// Schedule is a periodic task: what broker.schedule.set takes and broker.schedule.list gives.
// Exactly one of Cron and EveryMS is set.
type Schedule struct {
	// Name names the schedule (1 to MaxScheduleName bytes); a set with a known name replaces it.
	Name string `json:"name"`
	// Cron is a cron expression of 5 fields (minute hour day-of-month month day-of-week) or 6
	// (seconds first), or a descriptor (@hourly, @every 1m, ...), optionally led by CRON_TZ=Zone.
	Cron string `json:"cron,omitempty"`
	// TZ is the IANA time zone Cron is read in ("" for UTC), unless Cron names its own.
	TZ string `json:"tz,omitempty"`
	// EveryMS is an interval in milliseconds (at least MinEvery): ticks fall on the multiples
	// of it since the Unix epoch, so every broker computes the same ticks.
	EveryMS int64 `json:"every_ms,omitempty"`
	// Method, Params and Options are the task each tick submits (Options: the options of
	// broker.submit, such as queue, priority, timeout_ms, max_attempts; not key).
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params,omitempty"`
	Options json.RawMessage `json:"options,omitempty"`
	// Misfire is MisfireSkip (the default) or MisfireOnce.
	Misfire string `json:"misfire,omitempty"`
	// NextMS and LastMS (answers only) are the next tick and the last one enqueued, unix ms.
	NextMS int64 `json:"next_ms,omitempty"`
	LastMS int64 `json:"last_ms,omitempty"`
}

// Limit is a hand-out limit: what broker.limit.set takes and broker.limit.list gives. A limit
// with neither Rate nor MaxRunning, given to broker.limit.set, removes the limit of its scope
// and name.
type Limit struct {
	Scope string `json:"scope"` // LimitMethod, LimitQueue or LimitGroup
	Name  string `json:"name"`  // the method, queue or group
	// Rate is a token bucket's rate in tasks per second (0: none), Burst its size (0: the
	// tasks of DefaultBurstSpan at Rate, at least 1).
	Rate  float64 `json:"rate,omitempty"`
	Burst int     `json:"burst,omitempty"`
	// MaxRunning caps the tasks of the scope held by nodes at once, all nodes together (0: none).
	MaxRunning int `json:"max_running,omitempty"`
	// Running and PausedMS (answers only): the tasks held now, and what is left of a pause a
	// node asked for with CodeRateLimited.
	Running  int   `json:"running,omitempty"`
	PausedMS int64 `json:"paused_ms,omitempty"`
}

// ScheduleKey returns the idempotency key of a schedule's tick: every broker submits a tick
// under it, so that brokers sharing a store enqueue each tick once.
func ScheduleKey(name string, tick time.Time) string {
	return "schedule:" + name + ":" + strconv.FormatInt(tick.UnixMilli(), 10)
}

// CodeRateLimited, with data RateLimitedData, is what a node answers for a handler that
// returned dispatch.RateLimited: the task did not do its work and may run later. The broker
// pauses the task's group (or its method, for a task without a group) for retry_after_ms and
// puts the task back in its queue with no attempt counted.
const CodeRateLimited = -32014

// RateLimitedData is the member that marks a CodeRateLimited error's data.
const RateLimitedData = "rate_limited"

// NewRateLimited returns the error a handler answers to say "rate limited, retry after d".
func NewRateLimited(d time.Duration) *codec.Error {
	ms := max(d.Milliseconds(), 0)
	data := `{"` + RateLimitedData + `":true,"` + MemberRetryAfterMS + `":` + strconv.FormatInt(ms, 10) + `}`
	return codec.NewError(CodeRateLimited, "rate limited, retry after "+d.String(), []byte(data))
}

// The refusals of broker.schedule.set and broker.limit.set past their tables' bounds.
var (
	ErrTooManySchedules = codec.NewError(CodeQueueFull, "queue full: too many schedules", nil) // ErrTooManySchedules: the broker's MaxSchedules.
	ErrTooManyLimits    = codec.NewError(CodeQueueFull, "queue full: too many limits", nil)    // ErrTooManyLimits: the broker's MaxLimits.
)
