package client

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/zerotask/zerotask/codec"
)

// DefaultMapConcurrency is how many inputs Map keeps in flight unless MapConcurrency says
// otherwise.
const DefaultMapConcurrency = 1000

// MapOption configures Map.
type MapOption func(*mapOptions)

type mapOptions struct {
	concurrency int
}

// MapConcurrency bounds the inputs in flight at once (default 1,000; values below 1 mean 1).
// The client's WithMaxInFlight bounds them too, shared with all other calls.
func MapConcurrency(n int) MapOption { return func(o *mapOptions) { o.concurrency = max(1, n) } }

// MapError is the error of one input of a Map.
type MapError struct {
	Index int   // the input's index
	Err   error // its error: a remote *codec.Error, or a local one
}

// Error returns "client: map input N: ...".
func (e *MapError) Error() string { return fmt.Sprintf("client: map input %d: %v", e.Index, e.Err) }

// Unwrap returns the input's error.
func (e *MapError) Unwrap() error { return e.Err }

// Map calls method once per input and returns the results, decoded as Out, in input order: a
// map-reduce fan-out. Each input becomes the params of one call: a value that encodes to a
// JSON array or object is the params itself (a [2]int{5, 6} or []any{5, 6} is [5,6], a struct
// or map goes by name), anything else is its single positional argument (7 gives [7]). Out is
// given, In is inferred from inputs:
//
//	squares, err := client.Map[int](ctx, c, "square", []int{1, 2, 3})
//
// At most MapConcurrency inputs are in flight; requests leave in batches as results come back,
// so large inputs move at the broker's pace. The first input that fails stops Map: the calls
// still in flight are abandoned (their replies dropped) and Map returns a *MapError naming the
// input. When ctx ends Map returns ctx.Err() the same way. The deadline of ctx, if it has one,
// travels with each call (see CallRaw).
func Map[Out, In any](ctx context.Context, c *Client, method string, inputs []In, opts ...MapOption) ([]Out, error) {
	o := mapOptions{concurrency: DefaultMapConcurrency}
	for _, opt := range opts {
		opt(&o)
	}
	results := make([]Out, len(inputs))
	if len(inputs) == 0 {
		return results, nil
	}
	conc := min(o.concurrency, len(inputs))
	done := newDoneQueue(conc)
	var got, spare []*call        // the finished calls taken from done, and the slice given back
	_, deadline := ctx.Deadline() // each call carries the time left as its timeout_ms
	timed := deadline && isTaskMethod(method)
	var extBuf [32]byte
	live := make([]*call, 0, conc)
	var failed error

	finish := func(cl *call) {
		last := len(live) - 1
		live[cl.pos] = live[last]
		live[cl.pos].pos = cl.pos
		live[last] = nil
		live = live[:last]
		if failed == nil {
			if cl.err != nil {
				failed = &MapError{Index: cl.index, Err: cl.err}
			} else if err := decodeResult(cl.result, &results[cl.index]); err != nil {
				failed = &MapError{Index: cl.index, Err: err}
			}
		}
		putCall(cl)
		c.release()
	}
	abort := func() {
		for len(live) > 0 {
			cl := live[len(live)-1]
			if c.out.abandon(cl) {
				live = live[:len(live)-1]
				putCall(cl)
				c.release()
				continue
			}
			// Its completion is on its way.
			<-done.ready
			got = done.take(spare)
			for _, cl := range got {
				finish(cl)
			}
			spare = got
		}
	}

	next := 0
	for {
		issued := 0
		// The time left, read once for the inputs this round sends (within microseconds of
		// each other).
		ext := extBuf[:0]
		if timed {
			ext = (*taskOptions)(nil).appendMembers(ext, ctx, false)
		}
		for failed == nil && next < len(inputs) && len(live) < conc {
			if !c.tryAcquire() {
				if len(live) > 0 {
					break // results first: they free slots
				}
				if err := c.acquire(ctx); err != nil {
					return nil, err
				}
			}
			params, err := inputParams(any(inputs[next]))
			if err != nil {
				c.release()
				failed = &MapError{Index: next, Err: err}
				break
			}
			cl := newCall(done)
			cl.index, cl.pos = next, len(live)
			if err := c.out.enqueue(cl, method, params, ext, false); err != nil {
				putCall(cl)
				c.release()
				failed = &MapError{Index: next, Err: err}
				break
			}
			live = append(live, cl)
			next++
			issued++
		}
		if issued > 0 {
			c.out.flush(false)
		}
		if failed != nil {
			abort()
			return nil, failed
		}
		if len(live) == 0 {
			return results, nil
		}
		select {
		case <-done.ready:
			got = done.take(spare)
			for _, cl := range got {
				finish(cl)
			}
			spare = got
		case <-ctx.Done():
			abort()
			return nil, ctx.Err()
		}
	}
}

// inputParams encodes one Map input as params.
func inputParams(v any) ([]byte, error) {
	var b []byte
	switch x := v.(type) {
	case json.RawMessage:
		b = x
	case named:
		return encodeArgs(nil, []any{x})
	default:
		var err error
		if b, err = codec.Marshal(v); err != nil {
			return nil, fmt.Errorf("client: encode input: %w", err)
		}
	}
	if len(b) > 0 && (b[0] == '[' || b[0] == '{') {
		return b, nil
	}
	p := make([]byte, 0, len(b)+2)
	p = append(p, '[')
	p = append(p, b...)
	return append(p, ']'), nil
}
