// Package dispatch owns ZeroTask's name->handler table: it maps JSON-RPC method names to Go
// handlers, decodes params into typed arguments, runs the handler with panic recovery and
// middleware, and turns what happened into a JSON-RPC result or error. Registering a task is
// one line:
//
//	func init() {
//		dispatch.MustRegister("add", dispatch.Pure2(func(a, b int) int { return a + b }))
//	}
//
// A Broker or a Node serves the package's Default dispatcher unless it is handed its own (New).
// dispatch knows nothing of sockets: it takes frames or raw params and appends replies or raw
// results to a caller's buffer. The JSON-RPC encoding itself (scanning frames, writing
// responses, the error codes and the spec-exact replies to bad frames) is package codec's.
//
// # Two tiers
//
// The raw tier is a Handler: params arrive as raw JSON, the result is appended to dst as raw
// JSON, nothing is decoded that the handler does not decode itself (a type with a ServeRPC
// method, or a HandlerFunc). The typed tier adapts ordinary Go functions into Handlers (the
// adapters below); its params decoding and result encoding are resolved once, at registration,
// and use no reflection per request. Both run without allocating: add above, typed, goes from
// request frame to response frame with zero allocations, as does a raw handler (tests hold both
// to it with testing.AllocsPerRun).
//
// # Typed adapters
//
// Go cannot call a function of arbitrary shape without reflect.Value.Call, which this package
// never does per request. Generic adapters do it instead, one per shape and arity (0 to 4
// params), with their type parameters inferred from the function:
//
//	shape                                  adapter    example
//	func(ctx, A, B) (R, error)             Func2      the full shape
//	func(A, B) (R, error)                  Try2       no context
//	func(A, B) R                           Pure2      no context, cannot fail
//	func(ctx, A, B) error                  Proc2      no result: answers null
//
// and the same for 0, 1, 3 and 4 params (Func0..Func4, Try0..Try4, Pure0..Pure4, Proc0..Proc4).
// Register takes a Handler, so a function of any other shape (func(ctx, A) R, func(A) error,
// more than 4 params, variadic) does not compile: wrap it in one of the shapes above; a method
// with many params takes one struct instead. A parameter or result type that JSON cannot carry
// (a channel, a function) is refused by Register with ErrUnsupported.
//
// Params may be a positional array ([5, 6]) or, with the Names option, a named object
// ({"a": 5, "b": 6}); a single struct (or pointer to struct) parameter also takes a params
// object whole, decoded by its json tags (unknown members ignored, missing ones left zero, as
// encoding/json does). Absent params and null mean no params. The predeclared scalar types
// (bool, string, all ints and uints, float32, float64) are parsed by hand, strictly: 5.0 is not
// an int, null is not a string, out-of-range numbers are refused. Everything else decodes with
// codec.Unmarshal (goccy/go-json). A string param costs one allocation (its copy: the handler
// may keep it); results of scalar types are encoded by hand, others with codec.Marshal.
//
// # Errors on the wire
//
// Call and ServeFrame put these JSON-RPC errors on the wire:
//
//   - -32601 Method not found: no such method (rpc.* names can never be registered);
//   - -32602: params that do not fit, with a message saying exactly what was wrong: "expected
//     2 params, got 3", "param 2 (b): expected int, got string", "missing param 2 (b)",
//     `unknown param "c"`, "param 1: field x: expected int, got string";
//   - a handler's own error: if it is or wraps a *codec.Error (build one with Errorf), its code,
//     message and data as they are; any other error as protocol.CodeHandlerError (the first
//     code of the server error range) with err.Error() as the message;
//   - -32603: a panic in a handler or a middleware, with the panic value (at most 256 bytes of
//     it) as the message: "internal error: <value>". The stack goes to the logger (SetLogger,
//     slog.Default by default), never to the peer, and the Dispatcher keeps serving. A typed
//     result that JSON cannot carry (NaN, a channel) is also -32603.
//
// # Retries and time limits
//
// dispatch never retries: it carries what a handler says about a failure and what a method was
// registered with, and the node puts it on the wire (docs/reliability.md). A handler marks an
// error worth another attempt with Retry or RetryAfter, and one that no attempt can fix by
// wrapping ErrSkipRetry (ErrSkipRetry wins); Retryable reads the mark back through any wrapping,
// also from the error Call returns. The registration options TimeLimit (the node cancels a
// run that takes longer) and RetryOnError (every error but ErrSkipRetry and invalid params is
// retryable) make a method's Policy, read with Dispatcher.Policy without allocating.
//
// # Middleware
//
// Use adds Middleware, func(name string, next Handler) Handler. The chain is baked into the
// table when it is built (at registration, and for every method again at each Use), so a call
// pays only for the middleware's own work, and middleware added after registration wraps the
// methods already there. The first middleware added is the outermost. A middleware runs at
// build time once per method, which lets it look up per-method state once (see the examples).
//
// # Concurrency and ownership
//
// The table is copy-on-write behind an atomic pointer: Register and Use may run at any
// time, also while requests are served, and Lookup, Call and ServeFrame never lock. A handler
// must be safe for concurrent use. params, dst and frames belong to the caller: a handler must
// copy what it keeps after it returns. A batch's calls run one after another on the caller's
// goroutine; run several ServeFrame calls in parallel for parallelism.
//
// # Limits
//
//   - Frame size, batch length and nesting depth in ServeFrame: codec.Limits, set with
//     SetLimits; defaults 1 MiB, 1024 elements, 64 levels. Past one, the reply is the matching
//     error (-32600: frame too large, batch too large or nesting too deep) and nothing runs.
//   - Nesting inside params given to Call directly: 1,024 levels (codec.HardMaxDepth), -32602
//     past it.
//   - Arity of a typed adapter: 4 params.
//   - A panic value quoted in a -32603 message: 256 bytes.
//
// # Not answered
//
// A notification is never answered, not even when it fails, and neither is a response object
// (a server that answered responses could bounce errors forever with a peer that does the
// same). A batch of notifications only gets no reply at all.
package dispatch
