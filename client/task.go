package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/protocol"
)

// State is a task's state as the broker reports it.
type State string

// Task states (package protocol's).
const (
	StateQueued   State = protocol.StateQueued
	StateRunning  State = protocol.StateRunning
	StateSuccess  State = protocol.StateSuccess
	StateFailure  State = protocol.StateFailure
	StateRetry    State = protocol.StateRetry
	StateRevoked  State = protocol.StateRevoked
	StateExpired  State = protocol.StateExpired
	StateUnknown  State = protocol.StateUnknown
	stateNotKnown State = ""
)

// Done reports whether the state is final: SUCCESS, FAILURE, REVOKED, EXPIRED, or UNKNOWN (the
// broker does not know the task, so nothing more will be learned).
func (s State) Done() bool {
	switch s {
	case StateSuccess, StateFailure, StateRevoked, StateExpired, StateUnknown:
		return true
	}
	return false
}

// TaskInfo is the broker's record of a submitted task.
type TaskInfo struct {
	ID       string
	Method   string
	State    State
	Attempts int
	Node     string       // the node that ran it (or runs it)
	Result   []byte       // raw JSON result, for SUCCESS
	Error    *codec.Error // the task's error, for FAILURE (and the broker's, for REVOKED and EXPIRED)
	// Progress is the raw JSON of the last progress report of a running task
	// (dispatch.Progress: {"done":D,"total":T,"note":N}); nil when none, and once finished.
	Progress []byte
	// Meta is the task's meta object (Meta option) as it was submitted, byte for byte; nil
	// when it has none.
	Meta []byte
}

// Err returns the error a finished task stands for: nil for SUCCESS, its error for FAILURE,
// ErrRevoked or ErrExpired for REVOKED and EXPIRED (unless the record carries one), and
// ErrUnknownTask for UNKNOWN. It is nil for states that are not final.
func (ti *TaskInfo) Err() error {
	switch ti.State {
	case StateSuccess:
		return nil
	case StateFailure, StateRevoked, StateExpired:
		if ti.Error != nil {
			return ti.Error
		}
		switch ti.State {
		case StateRevoked:
			return ErrRevoked
		case StateExpired:
			return ErrExpired
		}
		return codec.NewError(codec.CodeInternalError, "task failed without an error object", nil)
	case StateUnknown:
		return fmt.Errorf("%w: %s", ErrUnknownTask, ti.ID)
	}
	return nil
}

// taskRecord is the wire form of a task record.
type taskRecord struct {
	ID       string       `json:"id"`
	Method   string       `json:"method"`
	State    State        `json:"state"`
	Attempts int          `json:"attempts"`
	Node     string       `json:"node"`
	Result   rawJSONField `json:"result"`
	Error    rawJSONField `json:"error"`
	Progress rawJSONField `json:"progress"`
	Meta     rawJSONField `json:"meta"`
}

func decodeTaskInfo(raw []byte) (TaskInfo, error) {
	var r taskRecord
	if err := codec.Unmarshal(raw, &r); err != nil {
		return TaskInfo{}, fmt.Errorf("client: decode task record: %w", err)
	}
	ti := TaskInfo{ID: r.ID, Method: r.Method, State: r.State, Attempts: r.Attempts, Node: r.Node}
	if len(r.Result) > 0 {
		ti.Result = []byte(r.Result)
	}
	if len(r.Error) > 0 && string(r.Error) != "null" {
		ti.Error = decodeError(r.Error)
	}
	if len(r.Progress) > 0 {
		ti.Progress = []byte(r.Progress)
	}
	if len(r.Meta) > 0 {
		ti.Meta = []byte(r.Meta)
	}
	return ti, nil
}

// idParams builds {"id":..} with extra members.
func idParams(id string, waitMS int64) ([]byte, error) {
	p := struct {
		ID     string `json:"id"`
		WaitMS int64  `json:"wait_ms,omitempty"`
	}{id, waitMS}
	return codec.Marshal(p)
}

// unknownTriesPerBroker, times the number of endpoints, is how many UNKNOWN answers in a row a
// client of several brokers takes before it believes one (see taskCall).
const unknownTriesPerBroker = 8

// Pauses between the queries of a task that a broker answered UNKNOWN (several brokers only).
const (
	unknownBackoffMin = 2 * time.Millisecond
	unknownBackoffMax = 250 * time.Millisecond
)

// taskCall calls a broker.* method about one task and decodes the record.
//
// With several endpoints the query goes to whichever broker round robin picks, and a broker
// that does not hold the task (brokers on memory know only their own tasks; brokers sharing a
// store may not know another's queued or running ones) answers UNKNOWN. So an UNKNOWN answer
// is asked again, after a short jittered pause, until another answer comes or unknownTries
// answers in a row said UNKNOWN (about 8 per broker, a couple of seconds with two brokers).
func (c *Client) taskCall(ctx context.Context, method, id string, wait time.Duration) (TaskInfo, error) {
	p, err := idParams(id, wait.Milliseconds())
	if err != nil {
		return TaskInfo{}, err
	}
	backoff := unknownBackoffMin
	for try := 1; ; try++ {
		raw, err := c.CallRaw(ctx, nil, method, p)
		if err != nil {
			return TaskInfo{}, err
		}
		ti, err := decodeTaskInfo(raw)
		if err != nil || ti.State != StateUnknown || try >= c.unknownTries {
			return ti, err
		}
		if err := c.pause(ctx, backoff/2+rand.N(backoff/2+1)); err != nil {
			return TaskInfo{}, err
		}
		backoff = min(2*backoff, unknownBackoffMax)
	}
}

// pause waits for d, or returns ctx's error or ErrClosed when ctx ends or the client closes
// first.
func (c *Client) pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.life.Done():
		return ErrClosed
	}
}

// Status returns the broker's record of the task with this id (broker.status).
func (c *Client) Status(ctx context.Context, id string) (TaskInfo, error) {
	return c.taskCall(ctx, protocol.MethodStatus, id, 0)
}

// Wait blocks until the task is finished or wait has passed, whichever comes first, and
// returns its record then (broker.result: the broker holds the request, nothing polls):
// check TaskInfo.State.Done. Status answers at once; a Handle's Wait waits until the end.
func (c *Client) Wait(ctx context.Context, id string, wait time.Duration) (TaskInfo, error) {
	if wait < 0 {
		wait = 0
	}
	return c.taskCall(ctx, protocol.MethodResult, id, wait)
}

// Revoke revokes the task (broker.revoke): a queued task will not run, a running one has its
// context cancelled on its node. It returns the record after the revoke.
func (c *Client) Revoke(ctx context.Context, id string) (TaskInfo, error) {
	return c.taskCall(ctx, protocol.MethodRevoke, id, 0)
}

// Submit queues method with args as its params (encoded as Call encodes them; nil for none)
// and returns at once with a Handle on the task (broker.submit). opts (Key, Delay, ETA,
// Priority, Queue, MaxAttempts, Backoff, Timeout) set how the broker treats the task; ctx
// bounds the submit only, not the task (give it a Timeout).
//
//	h, err := c.Submit(ctx, "report", []any{"2026-11"}, client.Key("report-2026-11"), client.Delay(time.Hour))
func (c *Client) Submit(ctx context.Context, method string, args []any, opts ...SubmitOption) (*Handle, error) {
	o, err := submitOptions(opts)
	if err != nil {
		return nil, err
	}
	params, err := encodeArgs(nil, args)
	if err != nil {
		return nil, err
	}
	sp := struct {
		Method string       `json:"method"`
		Params rawJSONParam `json:"params,omitempty"`
	}{method, rawJSONParam(params)}
	p, err := codec.Marshal(sp)
	if err != nil {
		return nil, fmt.Errorf("client: encode submit: %w", err)
	}
	if o != nil {
		ext := o.appendMembers(nil, ctx, true)
		p = append(append(p[:len(p)-1], ext...), '}')
	}
	return c.submitRaw(ctx, method, p)
}

// submitRaw sends broker.submit with params p and makes the Handle of its answer.
func (c *Client) submitRaw(ctx context.Context, method string, p []byte) (*Handle, error) {
	raw, err := c.CallRaw(ctx, nil, protocol.MethodSubmit, p)
	if err != nil {
		return nil, err
	}
	var reply struct {
		ID    string `json:"id"`
		State State  `json:"state"`
	}
	if err := codec.Unmarshal(raw, &reply); err != nil || reply.ID == "" {
		return nil, fmt.Errorf("client: bad broker.submit reply %s: %v", raw, err)
	}
	if reply.State == "" {
		reply.State = StateQueued
	}
	return &Handle{c: c, id: reply.ID, method: method, state: reply.State, done: make(chan struct{})}, nil
}

// rawJSONParam marshals as the raw JSON it holds.
type rawJSONParam []byte

// MarshalJSON returns the raw bytes.
func (r rawJSONParam) MarshalJSON() ([]byte, error) {
	if len(r) == 0 {
		return []byte("null"), nil
	}
	return r, nil
}

// Handle is a submitted task. Its methods are safe for concurrent use.
//
// The handle learns that its task finished by long-polling broker.result, one poll at a time,
// re-issued until the task is done, and only while something waits on it: a Wait in progress,
// a Done channel asked for, or an OnDone hook.
type Handle struct {
	c      *Client
	id     string
	method string

	mu       sync.Mutex
	state    State
	finished bool
	info     TaskInfo
	err      error
	done     chan struct{} // closed when finished
	hooks    []func(*Handle)
	waiters  int  // Wait calls in progress
	watched  bool // Done or OnDone asked: poll until finished
	polling  bool
}

// ID returns the task id the broker gave.
func (h *Handle) ID() string { return h.id }

// Status asks the broker for the task's state now (broker.status).
func (h *Handle) Status(ctx context.Context) (State, error) {
	h.mu.Lock()
	if h.finished {
		s := h.state
		h.mu.Unlock()
		return s, nil
	}
	h.mu.Unlock()
	ti, err := h.c.Status(ctx, h.id)
	if err != nil {
		return stateNotKnown, err
	}
	if ti.State.Done() {
		h.finish(ti, nil)
		return ti.State, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.finished {
		// The poller finished the handle while this answer, older, was on its way: the final
		// state stands.
		return h.state, nil
	}
	h.state = ti.State
	return ti.State, nil
}

// Progress asks the broker for the task's last progress report (broker.status): its raw JSON,
// nil when the task has reported none or is finished.
func (h *Handle) Progress(ctx context.Context) ([]byte, error) {
	ti, err := h.c.Status(ctx, h.id)
	if err != nil {
		return nil, err
	}
	return ti.Progress, nil
}

// Wait blocks until the task is finished, or ctx ends, and decodes its result into result (a
// pointer, or nil; see Call). It returns the task's error for a task that failed (a
// *codec.Error), ErrUnknownTask when the broker lost it, or a local error.
func (h *Handle) Wait(ctx context.Context, result any) error {
	h.mu.Lock()
	if !h.finished {
		h.waiters++
		h.pollLocked()
	}
	h.mu.Unlock()
	var err error
	select {
	case <-h.done:
	case <-ctx.Done():
		err = ctx.Err()
	case <-h.c.life.Done():
		err = ErrClosed
	}
	h.mu.Lock()
	if !h.finished {
		h.waiters--
	}
	h.mu.Unlock()
	if err != nil {
		return err
	}
	raw, _, err := h.TryResult()
	if err != nil {
		return err
	}
	return decodeResult(raw, result)
}

// TryResult returns what is known now, without waiting or asking the broker: done is false
// while the task is not known to be finished; once it is, raw is the task's raw JSON result
// and err its error (as Wait returns it). The bytes belong to the handle: do not modify them.
func (h *Handle) TryResult() (raw []byte, done bool, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.finished {
		return nil, false, nil
	}
	return h.info.Result, true, h.err
}

// Info returns the last task record learned (the final one once Done is closed).
func (h *Handle) Info() TaskInfo {
	h.mu.Lock()
	defer h.mu.Unlock()
	ti := h.info
	if ti.ID == "" {
		ti = TaskInfo{ID: h.id, Method: h.method}
	}
	if ti.State == "" {
		ti.State = h.state
	}
	return ti
}

// Done returns a channel closed when the task is finished. Asking for it makes the handle
// watch its task until then.
func (h *Handle) Done() <-chan struct{} {
	h.mu.Lock()
	if !h.finished {
		h.watched = true
		h.pollLocked()
	}
	h.mu.Unlock()
	return h.done
}

// OnDone registers f to run once the task is finished (at once if it is already). Hooks run
// one at a time, in order, on a goroutine of the client's: a hook that blocks delays the hooks
// after it (not the client's calls). Registering a hook makes the handle watch its task.
func (h *Handle) OnDone(f func(*Handle)) {
	h.mu.Lock()
	if h.finished {
		h.mu.Unlock()
		h.c.hooks.add(func() { f(h) })
		return
	}
	h.hooks = append(h.hooks, f)
	h.watched = true
	h.pollLocked()
	h.mu.Unlock()
}

// finish records the final record (or a terminal error) and releases waiters and hooks.
func (h *Handle) finish(ti TaskInfo, err error) {
	h.mu.Lock()
	if h.finished {
		h.mu.Unlock()
		return
	}
	h.finished = true
	h.info = ti
	h.state = ti.State
	if err == nil {
		err = ti.Err()
	}
	h.err = err
	hooks := h.hooks
	h.hooks = nil
	close(h.done)
	h.mu.Unlock()
	for _, f := range hooks {
		h.c.hooks.add(func() { f(h) })
	}
}

// pollLocked starts the poller unless it runs already (h.mu held).
func (h *Handle) pollLocked() {
	if h.polling || h.finished {
		return
	}
	h.polling = h.c.spawn(h.poll)
}

// pollBackoff bounds the wait between polls that failed (connection lost, broker busy).
const (
	pollBackoffMin = 50 * time.Millisecond
	pollBackoffMax = 2 * time.Second
)

// poll long-polls broker.result until the task is finished or nothing waits any more.
func (h *Handle) poll() {
	c := h.c
	backoff := pollBackoffMin
	for {
		ti, err := c.Wait(c.life, h.id, c.opts.pollWait)
		switch {
		case err == nil && ti.State.Done():
			h.finish(ti, nil)
			h.mu.Lock()
			h.polling = false
			h.mu.Unlock()
			return
		case err == nil:
			backoff = pollBackoffMin
			h.mu.Lock()
			if !h.finished { // a Status call may have finished it meanwhile
				h.state = ti.State
				h.info = ti
			}
		case errors.Is(err, ErrClosed) || c.life.Err() != nil:
			h.mu.Lock()
			h.polling = false
			h.mu.Unlock()
			return
		default:
			// Connection lost, broker busy (ErrTooManyInFlight), ...: wait a little, then ask again.
			c.log.Debug("client: result poll failed", "id", h.id, "err", err)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-c.life.Done():
				t.Stop()
			}
			backoff = min(2*backoff, pollBackoffMax)
			h.mu.Lock()
		}
		if h.waiters == 0 && !h.watched {
			h.polling = false
			h.mu.Unlock()
			return
		}
		h.mu.Unlock()
	}
}

// hookRunner runs OnDone hooks one at a time on one goroutine.
type hookRunner struct {
	mu    sync.Mutex
	queue []func()
	kick  chan struct{}
}

func (r *hookRunner) init() { r.kick = make(chan struct{}, 1) }

func (r *hookRunner) add(f func()) {
	r.mu.Lock()
	r.queue = append(r.queue, f)
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

func (r *hookRunner) run(life context.Context) {
	onKick(life, r.kick, func() {
		for {
			r.mu.Lock()
			if len(r.queue) == 0 {
				r.mu.Unlock()
				return
			}
			f := r.queue[0]
			r.queue[0] = nil
			r.queue = r.queue[1:]
			r.mu.Unlock()
			f()
		}
	})
}
