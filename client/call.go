package client

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/zerotask/zerotask/codec"
)

// call is one request waiting for its reply. Calls are pooled; the reader fills result or err
// and completes the call exactly once: by its callback (internal calls), in its Map's queue, or
// on its own channel.
type call struct {
	id     uint64
	own    chan *call  // capacity 1: the channel of a synchronous call
	q      *doneQueue  // a Map's call: completion goes to its queue instead of own
	cb     func(*call) // internal calls: run on completion instead
	result []byte      // raw JSON result, owned by the call
	err    error
	index  int  // Map: the input's index
	pos    int  // Map: the call's position among the in-flight calls
	hello  bool // a broker.hello of the client's own (see outbox.sayHello)
}

// maxKeptResult bounds the result buffer a pooled call keeps.
const maxKeptResult = 64 << 10

var callPool = sync.Pool{New: func() any {
	cl := &call{own: make(chan *call, 1)}
	return cl
}}

// newCall returns a pooled call completing into q (on its own channel when nil).
func newCall(q *doneQueue) *call {
	cl := callPool.Get().(*call)
	cl.q = q
	return cl
}

func putCall(cl *call) {
	cl.id, cl.q, cl.cb, cl.err, cl.index, cl.pos, cl.hello = 0, nil, nil, nil, 0, 0, false
	if cap(cl.result) > maxKeptResult {
		cl.result = nil
	}
	cl.result = cl.result[:0]
	callPool.Put(cl)
}

// complete hands the finished call to whoever waits for it. It never blocks: own has room for
// its one completion, and a Map's queue grows.
func (cl *call) complete() {
	switch {
	case cl.cb != nil:
		cl.cb(cl)
	case cl.q != nil:
		cl.q.push(cl)
	default:
		cl.own <- cl
	}
}

// acquire takes an in-flight slot, waiting until one frees or ctx ends.
func (c *Client) acquire(ctx context.Context) error { return c.slots.acquire(ctx, c.life) }

// tryAcquire takes a slot if one is free now.
func (c *Client) tryAcquire() bool { return c.slots.tryAcquire() }

func (c *Client) release() { c.slots.release() }

// CallRaw calls method with raw JSON params (nil for none; an array or an object otherwise) and
// appends the raw JSON result to dst. It blocks until the reply comes or ctx ends; when ctx ends
// first it returns ctx.Err() at once and the late reply is dropped. A remote error is a
// *codec.Error (see Error); local ones are ErrClosed, ErrConnectionLost, ErrTooLarge and ctx
// errors. params are copied before CallRaw returns. In steady state CallRaw allocates nothing
// beyond what the socket needs.
//
// The deadline of ctx, if it has one, travels with a task call as its "timeout_ms": the task
// expires if it is still queued then, and its handler's context ends then.
func (c *Client) CallRaw(ctx context.Context, dst []byte, method string, params []byte) ([]byte, error) {
	return c.callRaw(ctx, dst, method, params, nil)
}

// callRaw is CallRaw with the task options o (nil for none).
func (c *Client) callRaw(ctx context.Context, dst []byte, method string, params []byte, o *taskOptions) ([]byte, error) {
	var eb [128]byte
	ext := eb[:0]
	if isTaskMethod(method) {
		ext = o.appendMembers(ext, ctx, false)
	}
	if err := c.acquire(ctx); err != nil {
		return dst, err
	}
	cl := newCall(nil)
	if err := c.out.enqueue(cl, method, params, ext, true); err != nil {
		putCall(cl)
		c.release()
		return dst, err
	}
	select {
	case <-cl.own:
	case <-ctx.Done():
		if c.out.abandon(cl) {
			putCall(cl)
			c.release()
			return dst, ctx.Err()
		}
		<-cl.own // its reply is being delivered: take it, it is already here
	}
	err := cl.err
	if err == nil {
		dst = append(dst, cl.result...)
	}
	putCall(cl)
	c.release()
	return dst, err
}

// Call calls method with args as positional params (a JSON array; none when args is empty, or
// the object given by Named) and decodes the result into result (a pointer, or nil to discard
// it; a *json.RawMessage or *[]byte receives the raw JSON). It blocks like CallRaw and returns
// the same errors, plus a local one when args cannot be encoded or the result decoded.
//
// The deadline of ctx travels with the call (see CallRaw). Task options (a queue, a priority,
// retries) go through CallWith.
func (c *Client) Call(ctx context.Context, method string, result any, args ...any) error {
	return c.call(ctx, method, result, args, nil)
}

// CallWith is Call with task options (Delay, ETA, Priority, Queue, MaxAttempts, Backoff,
// Timeout), which set how the broker treats the task; args are the params, as Call's.
//
//	err := c.CallWith(ctx, "report", &out, []any{"2026-11"}, client.Queue("reports"), client.Priority(9))
func (c *Client) CallWith(ctx context.Context, method string, result any, args []any, opts ...TaskOption) error {
	o, err := callOptions(opts)
	if err != nil {
		return err
	}
	return c.call(ctx, method, result, args, o)
}

// call is Call with the task options o (nil for none).
func (c *Client) call(ctx context.Context, method string, result any, args []any, o *taskOptions) error {
	pb := getArgsBuf()
	params, err := encodeArgs((*pb)[:0], args)
	if err != nil {
		putArgsBuf(pb, nil)
		return err
	}
	raw, err := c.callRaw(ctx, nil, method, params, o)
	putArgsBuf(pb, params)
	if err != nil {
		return err
	}
	return decodeResult(raw, result)
}

// Notify sends method with args as a notification: the task runs, nothing comes back, not even
// an error. It returns once the notification is queued for sending (ctx is only checked first:
// a notification does not wait for a slot). ctx's deadline is not the task's; a task that
// needs options and no answer is submitted (Submit) and its handle dropped.
func (c *Client) Notify(ctx context.Context, method string, args ...any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	pb := getArgsBuf()
	params, err := encodeArgs((*pb)[:0], args)
	if err == nil {
		err = c.out.enqueue(nil, method, params, nil, true)
	}
	putArgsBuf(pb, params)
	return err
}

// named marks a value to be sent as the params object itself (see Named).
type named struct{ v any }

// Named wraps a value (a struct or a map) so that Call, Notify and Submit send it as the
// params object, by name, instead of as the single member of a positional array:
//
//	c.Call(ctx, "add", &sum, client.Named(map[string]int{"a": 5, "b": 6}))
func Named(v any) any { return named{v} }

// Call and Notify encode params into a pooled buffer (the outbox copies them into the
// outgoing batch), so that encoding them allocates nothing once warm; buffers grown past
// argsPooledMax are not kept.
const argsPooledMax = 4 << 10

var argsBufs = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

func getArgsBuf() *[]byte { return argsBufs.Get().(*[]byte) }

// putArgsBuf gives the buffer back, params (what encodeArgs returned: the buffer, grown or
// not, or another slice) taking its place when it is not too big.
func putArgsBuf(pb *[]byte, params []byte) {
	if cap(params) > cap(*pb) && cap(params) <= argsPooledMax {
		*pb = params[:0]
	}
	argsBufs.Put(pb)
}

// encodeArgs encodes call arguments as JSON-RPC params, appended to dst when every argument
// is of a kind appendArgs writes itself, else from codec.Marshal. A task option among them is
// refused by name (options go to CallWith or Submit, after the params).
func encodeArgs(dst []byte, args []any) ([]byte, error) {
	if len(args) == 0 {
		return nil, nil
	}
	if b, ok, err := appendArgs(dst, args); ok || err != nil {
		return b, err
	}
	for i, a := range args {
		if _, ok := a.(SubmitOption); ok {
			return nil, fmt.Errorf("%w: argument %d is a task option (%T), not a param: pass options to CallWith or Submit", ErrBadOption, i+1, a)
		}
	}
	if len(args) == 1 {
		if n, ok := args[0].(named); ok {
			b, err := codec.Marshal(n.v)
			if err != nil {
				return nil, fmt.Errorf("client: encode params: %w", err)
			}
			if len(b) == 0 || b[0] != '{' {
				return nil, fmt.Errorf("client: Named(%T) is not a JSON object", n.v)
			}
			return b, nil
		}
	}
	// A copy to Marshal: args itself then stays where its caller made it (a variadic call's
	// slice on the caller's stack), and only the fast path's callers pay nothing for it.
	b, err := codec.Marshal(slices.Clone(args))
	if err != nil {
		return nil, fmt.Errorf("client: encode params: %w", err)
	}
	return b, nil
}

// decodeResult decodes raw into result.
func decodeResult(raw []byte, result any) error {
	switch r := result.(type) {
	case nil:
		return nil
	case *json.RawMessage:
		*r = append((*r)[:0], raw...)
		return nil
	case *[]byte:
		*r = append((*r)[:0], raw...)
		return nil
	}
	if err := codec.Unmarshal(raw, result); err != nil {
		return fmt.Errorf("client: decode result into %T: %w", result, err)
	}
	return nil
}

// appendArgs appends args to dst as a JSON array without reflection when each of them is nil,
// a bool, an integer, a string or a non-empty json.RawMessage, and reports false for anything
// else (encodeArgs then encodes them all with codec.Marshal). A json.RawMessage must hold one
// valid JSON value (RFC 8259, as the broker checks it; codec.Marshal lets some invalid numbers
// through, and a request that is not valid JSON fails the whole batch it travels in). Through
// codec.Marshal the two integers of add(5, 6) cost 10-20 times the CPU of the rest of a
// fire-and-forget send.
func appendArgs(dst []byte, args []any) ([]byte, bool, error) {
	dst = append(dst, '[')
	for i, a := range args {
		if i > 0 {
			dst = append(dst, ',')
		}
		switch v := a.(type) {
		case nil:
			dst = append(dst, "null"...)
		case bool:
			dst = strconv.AppendBool(dst, v)
		case int:
			dst = strconv.AppendInt(dst, int64(v), 10)
		case int64:
			dst = strconv.AppendInt(dst, v, 10)
		case int32:
			dst = strconv.AppendInt(dst, int64(v), 10)
		case int16:
			dst = strconv.AppendInt(dst, int64(v), 10)
		case int8:
			dst = strconv.AppendInt(dst, int64(v), 10)
		case uint:
			dst = strconv.AppendUint(dst, uint64(v), 10)
		case uint64:
			dst = strconv.AppendUint(dst, v, 10)
		case uint32:
			dst = strconv.AppendUint(dst, uint64(v), 10)
		case uint16:
			dst = strconv.AppendUint(dst, uint64(v), 10)
		case uint8:
			dst = strconv.AppendUint(dst, uint64(v), 10)
		case string:
			dst = codec.AppendString(dst, v)
		case json.RawMessage:
			if len(v) == 0 {
				return dst, false, nil // as codec.Marshal has it
			}
			if !oneValue(v) {
				return nil, false, fmt.Errorf("client: encode params: argument %d is a json.RawMessage that is not one valid JSON value", i+1)
			}
			dst = append(dst, v...)
		default:
			return dst, false, nil
		}
	}
	return append(dst, ']'), true, nil
}

// oneValue reports whether raw is one valid JSON value, with whitespace around it at most.
func oneValue(raw []byte) bool {
	i := codec.SkipSpace(raw, 0)
	end, err := codec.SkipValue(raw, i)
	return err == nil && codec.SkipSpace(raw, end) == len(raw)
}
