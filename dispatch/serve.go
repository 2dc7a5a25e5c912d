package dispatch

import (
	"context"

	"github.com/zerotask/zerotask/codec"
)

// SetLimits sets the limits ServeFrame applies to frames: size (default 1 MiB), batch length
// (default 1024) and nesting depth (default 64); a zero field means codec's default (see
// codec.Limits). Past a limit the reply is the matching JSON-RPC error and nothing is called.
func (d *Dispatcher) SetLimits(l codec.Limits) { d.limits.Store(&l) }

// Limits returns the limits ServeFrame applies (zero fields mean codec's defaults).
func (d *Dispatcher) Limits() codec.Limits {
	if l := d.limits.Load(); l != nil {
		return *l
	}
	return codec.Limits{}
}

// ServeFrame is a complete JSON-RPC 2.0 server for one frame, a single object or a batch: it
// runs the calls (through Call: middleware, panic recovery, error mapping) and appends the reply
// to dst. It appends nothing when no reply is due: for a notification (even one that fails), a
// batch of notifications only, and a response object (a response is never answered, so that
// two peers cannot bounce error replies between them forever).
//
// Bad frames get the replies the specification prescribes, built by codec: invalid JSON one
// -32700 object with id null; valid JSON that is not a request, and an empty batch, one -32600
// with id null; a frame past the limits (SetLimits) one error object. In a batch each invalid
// element gets its own -32600 with id null while its valid siblings run; replies come in the
// order of the requests. The calls of a batch run one after another, in order, on the caller's
// goroutine.
//
// ServeFrame allocates nothing of its own (the one exception: a method name written with JSON
// escapes is decoded into a fresh slice): a request to a raw handler, or to a typed one with
// scalar params, goes from frame to reply without allocation. The result is written straight into dst after the response head, never
// copied. frame is only read, and nothing refers to it or to dst once ServeFrame returns.
func (d *Dispatcher) ServeFrame(ctx context.Context, dst, frame []byte) []byte {
	lim := d.limits.Load() // nil: codec's defaults
	// No Header.Scratch: a stack buffer there would escape along with the header's other
	// slices (escape analysis does not tell struct fields apart), costing an allocation per
	// frame to save one on escaped method names, which practically never occur.
	var h codec.Header
	if err := codec.ScanLimits(frame, &h, lim); err != nil {
		return codec.AppendErrorReply(dst, frame, err)
	}
	switch h.Kind {
	case codec.KindRequest:
		return d.serveRequest(ctx, dst, &h)
	case codec.KindNotification:
		d.serveNotification(ctx, dst, &h)
		return dst
	case codec.KindBatch:
		return d.serveBatch(ctx, dst, frame, lim)
	}
	return dst // a response: never answered
}

// serveBatch answers the elements of a batch that Scan accepted with the same limits.
func (d *Dispatcher) serveBatch(ctx context.Context, dst, frame []byte, lim *codec.Limits) []byte {
	start := len(dst)
	var it codec.BatchIter
	it.ResetLimits(frame, lim)
	var bw codec.BatchWriter
	dst = bw.Begin(dst)
	for it.Next() {
		h, err := it.Header()
		if err != nil {
			dst = bw.Next(dst)
			dst = codec.AppendErrorFor(dst, h, err) // -32600, id null
			continue
		}
		switch h.Kind {
		case codec.KindRequest:
			dst = bw.Next(dst)
			dst = d.serveRequest(ctx, dst, h)
		case codec.KindNotification:
			d.serveNotification(ctx, dst, h)
		}
	}
	if err := it.Err(); err != nil {
		// Not reached for a frame Scan accepted with the same limits; answer like Scan would.
		return codec.AppendErrorReply(dst[:start], frame, err)
	}
	return bw.End(dst)
}

// serveRequest appends the response to one request. The success response is written in place:
// codec.AppendResult with an empty result gives `{"jsonrpc":"2.0","id":ID,"result":}`; the
// handler appends its result after the head (the closing brace taken off), and the brace goes
// back on. On error the head is cut off again and codec.AppendError writes the error response.
func (d *Dispatcher) serveRequest(ctx context.Context, dst []byte, h *codec.Header) []byte {
	mark := len(dst)
	method := methodName(h)
	dst = codec.AppendResult(dst, h.ID, emptyResult)
	dst = dst[:len(dst)-1] // the closing brace
	out, err := d.Call(ctx, dst, method, h.Params)
	if err != nil {
		return codec.AppendError(dst[:mark], h.ID, asRPCError(err))
	}
	return append(out, '}')
}

// emptyResult makes codec.AppendResult write the response head with nothing after "result":
// (nil would write null).
var emptyResult = []byte{}

// serveNotification runs a notification; whatever happens, nothing is answered. The handler
// appends its result to dst's spare capacity, which is simply dropped.
func (d *Dispatcher) serveNotification(ctx context.Context, dst []byte, h *codec.Header) {
	_, _ = d.Call(ctx, dst[len(dst):], methodName(h), h.Params)
}

// methodName returns the unescaped method name. Without a scratch buffer Scan leaves an
// escaped name (`"sub\u0074ract"`) as it is; it is decoded here into a fresh slice.
func methodName(h *codec.Header) []byte {
	if !h.MethodEscaped {
		return h.Method
	}
	return codec.AppendUnescape(nil, h.Method)
}
