package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"time"

	"github.com/zerotask/zerotask/protocol"
)

// Task states a Result carries, the same strings as the wire protocol's task states.
const (
	StateSuccess = protocol.StateSuccess
	StateFailure = protocol.StateFailure
	StateRevoked = protocol.StateRevoked
	StateExpired = protocol.StateExpired
)

// Sentinel errors. Errors from a backend wrap these (or the backend's own error) with %w.
var (
	// ErrClosed is returned by every call on a closed store, and by Wait when the store closes
	// under it.
	ErrClosed = errors.New("store: closed")
	// ErrInvalid is returned for an argument the store cannot accept: an empty id, queue or
	// owner, a non-positive claim count or TTL.
	ErrInvalid = errors.New("store: invalid argument")
	// ErrCorrupt is returned when a stored record cannot be decoded (a foreign or damaged key).
	ErrCorrupt = errors.New("store: corrupt record")
	// ErrFenced is returned by Hold, Claim, Renew, Ack and Requeue for an owner whose tasks
	// were given back (its lease ran out and another owner's Claim gave them back, or a new
	// run of its owner id registered): nothing of that call was done. The owner must stop
	// running its tasks (they are others' now) and Register again.
	ErrFenced = errors.New("store: owner fenced: its lease ran out and its tasks were given back")
	// ErrOwnerLive is returned by Register while the owner id's current run holds a live
	// lease (another process uses the same owner id, or the last run of this one has not
	// been gone for a lease yet).
	ErrOwnerLive = errors.New("store: owner id in use: its lease is live")
	// ErrEvictionPolicy is returned by CheckMaxmemoryPolicy for a Redis whose maxmemory-policy
	// may evict the store's keys.
	ErrEvictionPolicy = errors.New("store: redis maxmemory-policy may evict keys")
	// ErrURL is returned by Open for a URL it does not understand.
	ErrURL = errors.New("store: bad store URL")
)

// OwnerLiveError is Register's error while the owner id's current run holds a live lease.
type OwnerLiveError struct {
	Owner string
	// Left is how long the lease has to run, on the store's clock, when Register looked.
	Left time.Duration
}

func (e *OwnerLiveError) Error() string {
	return fmt.Sprintf("store: owner id %q in use: its lease is live for %v more", e.Owner, e.Left)
}

// Unwrap makes errors.Is(err, ErrOwnerLive) hold.
func (e *OwnerLiveError) Unwrap() error { return ErrOwnerLive }

// Task is a queued task as the store keeps it. The store reads only ID and Queue; the rest is
// carried byte for byte.
type Task struct {
	// ID names the task; unique across the store. Holding an ID the store already holds is
	// a no-op (so a retried Hold does not store the task twice).
	ID string
	// Queue is the queue the task waits in (the broker uses the method name).
	Queue string
	// Method is the JSON-RPC method.
	Method string
	// Params is the raw JSON params, empty when the caller sent none (reads back as nil).
	Params []byte
	// Attempts counts how many times the task was given back: Requeue, Recover and an expired
	// owner lease each add one. Hold keeps the value it is given.
	Attempts int
	// Deadline is when the task expires if it is still queued; zero for none. The store keeps
	// it and does not act on it: expiring tasks is the broker's job. It is kept as the time
	// left at the Hold, on Redis's clock, so Claim gives it back on the claimer's clock (see
	// Age): brokers with skewed clocks agree on it.
	Deadline time.Time
	// Age is set by Claim: how long ago the task was held, on the store's clock (Redis TIME).
	// A caller that keeps times of its own in Meta stores them relative to the Hold and adds
	// its now minus Age when it reads them back, as the store does for Deadline.
	Age time.Duration
	// Meta is opaque bytes the broker keeps with the task (reply routing, flags); empty reads
	// back as nil.
	Meta []byte
	// Key is an idempotency key, read by Hold only: the task is stored only if Key is not
	// bound to another task, and then Key is bound to ID for KeyTTL (> 0). "" for none.
	Key    string
	KeyTTL time.Duration
	// Bound is set by Hold when Key is bound to another task: that task's id. The task was not
	// stored.
	Bound string
	// Taken is set by Hold when ID is another task's in the store (held by another owner,
	// queued, or with a result kept: an id collision). The task was not stored, and the other
	// is left as it was.
	Taken bool
}

// Result is a finished task's record.
type Result struct {
	// ID is the task id.
	ID string
	// State is the task's final state (StateSuccess, StateFailure, ...).
	State string
	// Result is the raw JSON result (SUCCESS), empty otherwise. An empty Result and Error read
	// back as empty (nil, or a reused buffer of length 0).
	Result []byte
	// Error is the raw JSON-RPC error object (FAILURE, REVOKED, EXPIRED), empty otherwise.
	Error []byte
	// Attempts is how many hand-outs the task took.
	Attempts int
	// Node names the node that ran it.
	Node string
	// Method is the task's method ("" when not known).
	Method string
	// Submitter is the authenticated name of whoever submitted the task ("" for none): the
	// broker lets only that name (or an admin) read the result.
	Submitter string
	// FinishedAt is when the task finished.
	FinishedAt time.Time
	// Key, when not "", is the task's idempotency key: Put binds it to ID for the result's TTL
	// (unless another task holds it), so that the key is known as long as the result is. It
	// is not stored in the result.
	Key string
	// Owner, when not "", fences the Put: the result is written only while Owner holds the
	// task (a broker that lost the task to another writes no result for it; the other will).
	// It is not stored in the result.
	Owner string
}

// ResultStore keeps the results of finished tasks for a TTL.
//
// Ownership: Put copies what it keeps, so the caller may reuse its buffers once Put returns.
// Get and Wait write into the caller's dst, reusing dst.Result and dst.Error (appending to
// their [:0]), so a caller that reuses one Result reads without allocating its buffers again.
type ResultStore interface {
	// Put stores results, each for ttl (> 0), replacing a result of the same id, and wakes
	// every Wait on their ids. It returns once the results are stored (for Redis: written and
	// acknowledged).
	Put(ctx context.Context, ttl time.Duration, results ...Result) error
	// Get reads the result of id into dst and reports whether it was found (an expired result
	// is not found).
	Get(ctx context.Context, id string, dst *Result) (bool, error)
	// Wait blocks until the result of id is stored (or is already), reads it into dst and
	// returns nil; or returns ctx.Err() when ctx ends first, or ErrClosed. It is woken by the
	// Put, never by polling.
	Wait(ctx context.Context, id string, dst *Result) error
}

// QueueStore keeps the tasks owners hold (in flight) and the queues (FIFO) where tasks given
// back wait until an owner claims them.
//
// Hold stores a task in flight, held by an owner (a broker instance id); Claim takes a queued
// one into that state. Each owner has one lease, set to Options.Lease from now by its every
// Claim, Hold and Renew; when it runs out, the owner is taken for dead and every task it holds
// goes back to the front of its queue with an attempt counted (the next Claim of any owner
// does this). Tasks are never evicted.
//
// Ownership: Hold copies what it keeps. Claim appends to dst tasks whose Params and Meta are
// the caller's to keep.
type QueueStore interface {
	// Register starts a run of owner id owner and returns the run's id (the owner to pass to
	// the other calls, "<owner>#<epoch>") and how many tasks earlier runs of owner still
	// held, which it gave back to the front of their queues with an attempt counted (a
	// restart after a crash). While the previous run's lease is live it fails with an
	// *OwnerLiveError (errors.Is ErrOwnerLive), unless force (the caller found that run dead:
	// its lease is not being renewed). A run's writes are fenced (ErrFenced) once its tasks
	// were given back.
	Register(ctx context.Context, owner string, force bool) (run string, recovered int, err error)
	// Claim takes up to n tasks from the front of queue for owner, appends them to dst and
	// returns it; fewer (none) when the queue holds fewer. It renews owner's lease. A
	// non-empty token makes it idempotent: a Claim with the token of an earlier one that
	// ran (its reply lost to a timeout, say) returns that claim's tasks again, those owner
	// still holds, instead of taking more (tokens are kept for twice the lease plus a minute).
	Claim(ctx context.Context, queue, owner, token string, n int, dst []Task) ([]Task, error)
	// Ack forgets tasks owner holds, and tasks still queued (which removes them from their
	// queue). Unknown ids and tasks another owner holds are ignored.
	Ack(ctx context.Context, owner string, ids ...string) error
	// Requeue gives tasks owner holds back to the front of their queues, in the order given
	// (ids[0] ends up first), each with an attempt counted. Other ids are ignored.
	Requeue(ctx context.Context, owner string, ids ...string) error
	// Renew extends owner's lease to Options.Lease from now. An owner must renew (or claim)
	// more often than the lease, or its tasks are given back.
	Renew(ctx context.Context, owner string) error
	// Recover gives every task owner holds back to the front of its queue, in claim order,
	// each with an attempt counted, ends owner's lease, and returns how many tasks it gave
	// back. A broker restarting under the same owner id calls it first.
	Recover(ctx context.Context, owner string) (int, error)
	// Hold stores tasks as in flight, held by owner, in one step (as if appended and claimed
	// by owner at once, in order): they never wait in a queue. It renews owner's lease. An id
	// owner holds already is left as it is (a write sent again is a no-op); an id the store has
	// as another task (another owner's, queued, or with a result) is left as it is and the task
	// is not stored: Hold sets its Taken. A task with a Key bound to another task (by a Hold, or a Put, whose binding
	// has not expired) that the store still holds or has a result of is not stored: Hold sets
	// its Bound to that task's id (so pass the slice itself to read it); otherwise the Key is
	// bound to the task's ID for KeyTTL (a binding to a task gone without a result is stale).
	// Atomic per call, keys included (two Holds of one key never both store their task);
	// returns once stored (for Redis: written and acknowledged).
	Hold(ctx context.Context, owner string, tasks ...Task) error
	// Locate reports where task id is: WhereNone (acked, never stored), WhereQueued, or
	// WhereHeld or WhereRunning with its owner.
	Locate(ctx context.Context, id string) (Where, string, error)
	// SetRunning marks tasks that owner holds as running (its node reported them started),
	// so that Locate tells any broker so, or clears the mark (running false: owner has them
	// back, to run again). Ids owner does not hold are ignored; the mark also goes when the
	// task leaves owner (Requeue, Recover, an expired lease, Ack).
	SetRunning(ctx context.Context, owner string, running bool, ids ...string) error
}

// Where is where a task is in a QueueStore, as Locate reports it.
type Where uint8

// Places of a task.
const (
	// WhereNone: the store does not hold the task (acked, or never stored).
	WhereNone Where = iota
	// WhereQueued: the task waits in its queue.
	WhereQueued
	// WhereHeld: the task is in flight, held by an owner (claimed or held).
	WhereHeld
	// WhereRunning: the task is held by an owner whose node runs it (SetRunning).
	WhereRunning
)

// String returns "none", "queued", "held" or "running".
func (w Where) String() string {
	switch w {
	case WhereNone:
		return "none"
	case WhereQueued:
		return "queued"
	case WhereHeld:
		return "held"
	case WhereRunning:
		return "running"
	}
	return "Where(" + strconv.Itoa(int(w)) + ")"
}

// Store is a ResultStore and a QueueStore with a Close.
type Store interface {
	ResultStore
	QueueStore
	// Close releases the store: waits blocked in Wait return ErrClosed, later calls return
	// ErrClosed.
	Close() error
}

// Options configures a store. The zero value works: every zero field takes its default.
type Options struct {
	// Prefix is put before every Redis key. Default "zerotask:".
	Prefix string
	// Lease is how long an owner's claim holds without a Claim or Renew. Default 30s.
	Lease time.Duration
	// FlushDelay is how long the Redis writer waits for more writes to join a batch that is
	// not full. Default 0: the writer sends what has gathered as soon as the previous batch is
	// answered (writes made during a round trip leave together), which measured faster than
	// a fixed delay (see the package doc).
	FlushDelay time.Duration
	// FlushMax bounds how many results or tasks the Redis writer sends in one batch. Default
	// 1024 (DefaultFlushMax).
	FlushMax int
	// DialTimeout bounds connecting to Redis. Default 5s.
	DialTimeout time.Duration
	// Logger receives the store's rare events (Redis reconnects). Default slog.Default().
	Logger *slog.Logger
}

// Defaults of Options.
const (
	DefaultPrefix      = "zerotask:"
	DefaultLease       = 30 * time.Second
	DefaultFlushMax    = 1024
	DefaultDialTimeout = 5 * time.Second
)

func (o Options) withDefaults() Options {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Lease <= 0 {
		o.Lease = DefaultLease
	}
	if o.FlushDelay < 0 {
		o.FlushDelay = 0
	}
	if o.FlushMax <= 0 {
		o.FlushMax = DefaultFlushMax
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Open opens the Redis store a "redis://[user:password@]host:port[/db]" URL names (db defaults
// to 0), with default Options: it connects and checks the server's maxmemory-policy
// (CheckMaxmemoryPolicy), failing if it may evict. Query parameters override Options:
// prefix, lease, flush_delay, flush_max (durations in Go syntax, e.g. "lease=10s").
func Open(rawURL string) (Store, error) {
	return OpenOptions(rawURL, Options{})
}

// OpenOptions is Open with o as the base options (URL query parameters override them).
func OpenOptions(rawURL string, o Options) (Store, error) {
	ctx, cancel := context.WithTimeout(context.Background(), o.withDefaults().DialTimeout)
	defer cancel()
	return DialRedis(ctx, rawURL, o)
}

func queryOptions(q url.Values, o Options) (Options, error) {
	for k, vs := range q {
		v := vs[len(vs)-1]
		var err error
		switch k {
		case "prefix":
			o.Prefix = v
		case "lease":
			o.Lease, err = time.ParseDuration(v)
		case "flush_delay":
			o.FlushDelay, err = time.ParseDuration(v)
		case "flush_max":
			o.FlushMax, err = strconv.Atoi(v)
		default:
			return o, fmt.Errorf("unknown parameter %q", k)
		}
		if err != nil {
			return o, fmt.Errorf("parameter %s: %w", k, err)
		}
	}
	return o, nil
}
