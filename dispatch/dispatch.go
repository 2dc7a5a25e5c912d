package dispatch

//go:generate go run gen_adapters.go

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/internal/rawjson"
	"github.com/zerotask/zerotask/protocol"
)

// Errors returned by registration. They are wrapped with the method name, so test them with
// errors.Is.
var (
	// ErrEmptyName: a method needs a name.
	ErrEmptyName = errors.New("dispatch: empty method name")
	// ErrReservedName: JSON-RPC reserves names starting with "rpc." for the protocol itself.
	ErrReservedName = errors.New(`dispatch: method names starting with "rpc." are reserved`)
	// ErrDuplicate: a name is registered at most once.
	ErrDuplicate = errors.New("dispatch: method already registered")
	// ErrNilHandler: the handler or the adapted function is nil.
	ErrNilHandler = errors.New("dispatch: nil handler")
	// ErrUnsupported: a typed adapter's function has a parameter or result type that JSON
	// cannot carry (a channel, a function, a context.Context past the first parameter); the
	// message names it.
	ErrUnsupported = errors.New("dispatch: unsupported handler type")
	// ErrBadOption: an option does not fit the handler (Names with the wrong count, Names on a
	// raw handler, a negative TimeLimit).
	ErrBadOption = errors.New("dispatch: invalid option")
	// ErrSkipRetry, wrapped in a handler's error (fmt.Errorf("bad input: %w",
	// dispatch.ErrSkipRetry)), says that running the task again cannot help: the error is final
	// even when the method was registered with RetryOnError or the error is also marked with Retry.
	// It is a marker, not a registration error.
	ErrSkipRetry = errors.New("dispatch: skip retry")
)

// Handler is the raw fast path: params arrive as raw JSON (nil when the request has none) and
// the result is appended to dst as raw JSON. ServeRPC returns dst with the result appended, or
// dst (its length unchanged) and an error; a handler that appends nothing answers null.
//
// Ownership: params and dst belong to the caller and are reused after ServeRPC returns, so a
// handler must copy whatever it keeps. A Handler must be safe for concurrent use.
type Handler interface {
	ServeRPC(ctx context.Context, dst, params []byte) ([]byte, error)
}

// ContextFree is implemented by a Handler that never looks at its ctx: no deadline, no
// cancellation, no TaskInfo, no progress reports. A node then runs it without making a
// per-task context (an allocation, and the locks that guard its cancellation), and a revoke
// or a deadline cannot stop it once it runs, as it could not see them anyway. A Handler wrapped
// by middleware is not ContextFree (the middleware may read ctx) unless the wrapper says so.
type ContextFree interface {
	Handler
	ContextFree()
}

// HandlerFunc adapts an ordinary function to the Handler interface, as http.HandlerFunc does.
type HandlerFunc func(ctx context.Context, dst, params []byte) ([]byte, error)

// ServeRPC calls f(ctx, dst, params).
func (f HandlerFunc) ServeRPC(ctx context.Context, dst, params []byte) ([]byte, error) {
	return f(ctx, dst, params)
}

// Middleware wraps the handler of the method called name. It runs when the table is built (at
// registration, and for every method again when Use adds middleware), not per request: the
// Handler it returns is what runs per request, so a middleware can precompute per-method state
// (a metric label, a logger attribute) once. Returning nil leaves next unwrapped.
type Middleware func(name string, next Handler) Handler

// table is one immutable version of the method table. Writers copy it, change the copy and
// publish it with an atomic store; readers load it once per call and never lock.
type table struct {
	handlers map[string]Handler // name -> handler with middleware applied: what Lookup returns
	raw      map[string]Handler // name -> handler as registered
	names    []string           // sorted
	mws      []Middleware       // in Use order: mws[0] is outermost
	policies map[string]Policy  // name -> policy, only for methods registered with one (nil: none)
}

// Dispatcher maps method names to handlers and runs them: the name->handler table of a broker
// or a node. Registration (Handle, Register, Use) may happen at any time, also while requests
// are being served; serving (Lookup, Call, ServeFrame) never locks and allocates nothing of its
// own. The zero value is an empty Dispatcher ready to use.
type Dispatcher struct {
	mu     sync.Mutex // serializes writers; readers only load tab
	tab    atomic.Pointer[table]
	logger atomic.Pointer[slog.Logger]
	limits atomic.Pointer[codec.Limits]
}

// New returns an empty Dispatcher.
func New() *Dispatcher { return &Dispatcher{} }

// Default is the package-level Dispatcher that Register and MustRegister
// fill in. A Broker or Node serves it unless handed its own.
var Default = New()

// Register adds h to Default under name. See Dispatcher.Register.
func Register(name string, h Handler, opts ...Option) error {
	return Default.Register(name, h, opts...)
}

// MustRegister adds h to Default under name and panics on error, for package init code.
func MustRegister(name string, h Handler, opts ...Option) { Default.MustRegister(name, h, opts...) }

// SetLogger sets where panics in handlers are logged; nil means slog.Default().
func (d *Dispatcher) SetLogger(l *slog.Logger) { d.logger.Store(l) }

func (d *Dispatcher) log() *slog.Logger {
	if l := d.logger.Load(); l != nil {
		return l
	}
	return slog.Default()
}

// handle registers h (checked by Register) under name with its policy (the zero Policy for
// none).
func (d *Dispatcher) handle(name string, h Handler, pol Policy) error {
	switch {
	case name == "":
		return ErrEmptyName
	case codec.IsReserved([]byte(name)):
		return fmt.Errorf("dispatch: register %q: %w", name, ErrReservedName)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	old := d.load()
	if _, dup := old.raw[name]; dup {
		return fmt.Errorf("dispatch: register %q: %w", name, ErrDuplicate)
	}
	// Copy-on-write: O(methods) per registration, which happens a few dozen times per process.
	t := &table{
		handlers: make(map[string]Handler, len(old.raw)+1),
		raw:      make(map[string]Handler, len(old.raw)+1),
		names:    make([]string, 0, len(old.names)+1),
		mws:      old.mws,
		policies: old.policies,
	}
	for k, v := range old.raw {
		t.raw[k] = v
		t.handlers[k] = old.handlers[k]
	}
	if pol != (Policy{}) {
		t.policies = make(map[string]Policy, len(old.policies)+1)
		for k, v := range old.policies {
			t.policies[k] = v
		}
		t.policies[name] = pol
	}
	t.raw[name] = h
	t.handlers[name] = wrap(name, h, t.mws) // may run user middleware: we hold mu, not a reader lock
	t.names = append(t.names, old.names...)
	t.names = append(t.names, name)
	slices.Sort(t.names)
	d.tab.Store(t)
	return nil
}

// Register registers h under name: a typed adapter (Func0..Func4, Try0..Try4, Pure0..Pure4,
// Proc0..Proc4), which turns a typed Go function into a Handler
// (dispatch.Pure2(func(a, b int) int { return a + b })), or a raw Handler or HandlerFunc (the
// fast path: params in and result out as raw JSON). The name must be non-empty, must not
// start with "rpc." and must not be taken; the middleware already added with Use wraps h at
// once.
//
// Options: Names applies to typed adapters only (a raw handler decodes its own params);
// TimeLimit and RetryOnError to any handler.
func (d *Dispatcher) Register(name string, h Handler, opts ...Option) error {
	var o options
	for _, op := range opts {
		if op != nil {
			op.apply(&o)
		}
	}
	if o.policy.TimeLimit < 0 {
		return fmt.Errorf("dispatch: register %q: %w: negative TimeLimit %v", name, ErrBadOption, o.policy.TimeLimit)
	}
	h, err := withOptions(h, &o)
	if err != nil {
		return fmt.Errorf("dispatch: register %q: %w", name, err)
	}
	return d.handle(name, h, o.policy)
}

// withOptions applies the decoding options (Names) to h, refusing them on a raw handler.
func withOptions(h Handler, o *options) (Handler, error) {
	if h == nil {
		return nil, ErrNilHandler
	}
	if f, ok := h.(HandlerFunc); ok && f == nil {
		return nil, ErrNilHandler
	}
	if t, ok := h.(typedHandler); ok {
		if err := t.signature().err; err != nil {
			return nil, err
		}
		if o.empty() {
			return h, nil
		}
		return t.withOptions(o)
	}
	if !o.empty() {
		return nil, fmt.Errorf("%w: Names applies to typed adapters only; a raw handler decodes its own params", ErrBadOption)
	}
	return h, nil
}

// MustRegister is Register that panics on error, for package init code.
func (d *Dispatcher) MustRegister(name string, h Handler, opts ...Option) {
	if err := d.Register(name, h, opts...); err != nil {
		panic(err)
	}
}

// Use appends middleware. The first middleware ever added is the outermost: with Use(a, b), a
// call runs a, then b, then the handler. Middleware added after registration takes effect too:
// Use rebuilds every method's chain at once (the table is rebuilt, not consulted per request),
// so requests already running finish with the old chain and later ones get the new one.
func (d *Dispatcher) Use(mw ...Middleware) {
	d.mu.Lock()
	defer d.mu.Unlock()
	old := d.load()
	t := &table{
		handlers: make(map[string]Handler, len(old.raw)),
		raw:      old.raw, // immutable once published: safe to share
		names:    old.names,
		mws:      append(slices.Clip(old.mws), mw...),
		policies: old.policies,
	}
	for name, h := range t.raw {
		t.handlers[name] = wrap(name, h, t.mws)
	}
	d.tab.Store(t)
}

// wrap applies mws to h, the last one innermost.
func wrap(name string, h Handler, mws []Middleware) Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		if mws[i] == nil {
			continue
		}
		if w := mws[i](name, h); w != nil {
			h = w
		}
	}
	return h
}

var emptyTable = &table{}

func (d *Dispatcher) load() *table {
	if t := d.tab.Load(); t != nil {
		return t
	}
	return emptyTable
}

// Lookup returns the handler registered under method, with the middleware chain applied (but
// not Call's panic recovery and error mapping). method is the bare name, without JSON quotes.
// It does not allocate: the map lookup with string(method) uses the bytes in place.
func (d *Dispatcher) Lookup(method []byte) (Handler, bool) {
	h, ok := d.load().handlers[string(method)]
	return h, ok
}

// LookupCache remembers one Lookup for LookupCached: a worker running many tasks of one method
// in a row finds its handler with a compare of the name instead of a map lookup. The zero value
// is empty; one goroutine uses it at a time.
type LookupCache struct {
	tab   *table
	name  []byte
	h     Handler
	found bool
}

// LookupCached is Lookup through c: the handler found last, when method is the same name and
// nothing was registered or wrapped since; a lookup, remembered in c, otherwise.
func (d *Dispatcher) LookupCached(c *LookupCache, method []byte) (Handler, bool) {
	t := d.load()
	if c.tab == t && string(c.name) == string(method) {
		return c.h, c.found
	}
	h, ok := t.handlers[string(method)]
	if len(method) <= maxCachedName {
		c.tab, c.name, c.h, c.found = t, append(c.name[:0], method...), h, ok
	}
	return h, ok
}

// maxCachedName bounds the method name a LookupCache keeps a copy of.
const maxCachedName = 256

// Methods returns the registered method names, sorted.
func (d *Dispatcher) Methods() []string {
	return slices.Clone(d.load().names)
}

// Call runs the method with the raw JSON params (nil or empty when there are none) through the
// middleware chain, and returns dst with the raw JSON result appended. A handler that appends
// nothing answers null.
//
// On failure Call returns dst unchanged and an error that is a *codec.Error or wraps one (find
// it with errors.As):
//   - -32601 "Method not found" for an unknown method (codec.ErrMethodNotFound);
//   - -32602 for params that do not fit a typed adapter, with a message saying what was wrong
//     ("param 2 (b): expected int, got string");
//   - -32603 for a panic in the handler or a middleware; the message carries the panic value
//     only, the stack goes to the logger (SetLogger), and the Dispatcher keeps serving;
//   - the handler's own error: when it is or wraps a *codec.Error (see Errorf) that code, message
//     and data go on the wire; any other error becomes protocol.CodeHandlerError (the start of the
//     server error range) with err.Error() as the message, and the returned error wraps both, so
//     errors.Is still finds the handler's own sentinels.
func (d *Dispatcher) Call(ctx context.Context, dst, method, params []byte) ([]byte, error) {
	h, ok := d.Lookup(method)
	if !ok {
		return dst, codec.ErrMethodNotFound
	}
	return d.call(ctx, h, dst, method, params)
}

// CallHandler runs h, a handler Lookup returned for method, as Call would run it (panic
// recovery, error mapping, null for an empty result): for a caller that looked the handler up
// already, to learn about it (ContextFree) before running it.
func (d *Dispatcher) CallHandler(ctx context.Context, h Handler, dst, method, params []byte) ([]byte, error) {
	return d.call(ctx, h, dst, method, params)
}

// call runs h with panic recovery. The deferred closure does not escape, so it costs no
// allocation; only a panic allocates (the stack trace and the error).
func (d *Dispatcher) call(ctx context.Context, h Handler, dst, method, params []byte) (out []byte, err error) {
	n := len(dst)
	done := false
	defer func() {
		if done {
			return
		}
		// A panic (or runtime.Goexit, where recover returns nil): answer -32603, log the stack.
		r := recover()
		out, err = dst[:n], d.panicked(method, r)
	}()
	out, err = h.ServeRPC(ctx, dst, params)
	done = true
	if err != nil {
		return dst[:n], rpcError(err)
	}
	if len(out) == n {
		out = append(out, "null"...)
	}
	return out, nil
}

// maxPanicMessage bounds the panic value quoted in a -32603 message, so that a handler
// panicking with a huge value cannot make a huge reply.
const maxPanicMessage = 256

func (d *Dispatcher) panicked(method []byte, r any) error {
	stack := debug.Stack()
	msg := "internal error"
	v := "<nil>" // runtime.Goexit, or panic(nil) under GODEBUG=panicnil=1
	if r != nil {
		// fmt recovers from a String or Error method that panics in turn, so formatting the
		// value cannot take the process down from inside this deferred call.
		v = fmt.Sprint(r)
		if len(v) > maxPanicMessage {
			v = v[:maxPanicMessage] + "..."
		}
		msg += ": " + v
	}
	d.log().Error("dispatch: handler panicked", "method", string(method), "panic", v, "stack", string(stack))
	return &panicError{codec.NewError(codec.CodeInternalError, msg, nil)}
}

// ErrPanicked is matched (errors.Is) by the error Call returns for a handler that panicked.
var ErrPanicked = errors.New("dispatch: handler panicked")

// panicError is a panic's -32603, which also matches ErrPanicked.
type panicError struct{ rpc *codec.Error }

func (e *panicError) Error() string   { return e.rpc.Error() }
func (e *panicError) Unwrap() []error { return []error{e.rpc, ErrPanicked} }

// handlerError is what Call returns for a handler error that carries no *codec.Error: the
// protocol.CodeHandlerError that goes on the wire, and the handler's own error for errors.Is /
// errors.As.
type handlerError struct {
	rpc *codec.Error
	err error
}

func (e *handlerError) Error() string   { return e.err.Error() }
func (e *handlerError) Unwrap() []error { return []error{e.rpc, e.err} }

// rpcError maps a handler's error to one that is or wraps a *codec.Error.
func rpcError(err error) error {
	if _, ok := err.(*codec.Error); ok {
		return err
	}
	var ce *codec.Error
	if errors.As(err, &ce) {
		return err
	}
	return &handlerError{rpc: codec.NewError(protocol.CodeHandlerError, err.Error(), nil), err: err}
}

// asRPCError finds the *codec.Error in an error returned by call.
func asRPCError(err error) *codec.Error {
	if ce, ok := err.(*codec.Error); ok {
		return ce
	}
	var ce *codec.Error
	if errors.As(err, &ce) {
		return ce
	}
	return codec.NewError(protocol.CodeHandlerError, err.Error(), nil)
}

// Errorf builds the error a handler returns to choose its own JSON-RPC code, message and data:
// Call puts them on the wire as they are. data is encoded with codec.Marshal (nil means no data;
// a []byte is taken as raw JSON when valid, and as a JSON string otherwise). If data cannot be
// encoded the error carries none. Application codes should avoid the codes JSON-RPC reserves,
// from -32768 to protocol.CodeServerErrorMax, except those of its server-error range
// (protocol.CodeServerErrorMin to CodeServerErrorMax) that ZeroTask does not assign (package
// protocol lists those it does).
func Errorf(code int, data any, format string, args ...any) *codec.Error {
	msg := fmt.Sprintf(format, args...)
	var raw []byte
	switch v := data.(type) {
	case nil:
	case []byte:
		if t := rawjson.TrimSpace(v); len(t) > 0 {
			if end, err := skipValue(t, 0); err == nil && end == len(t) {
				raw = append([]byte(nil), t...)
				break
			}
		}
		raw = codec.AppendString(nil, string(v))
	default:
		if b, err := codec.Marshal(v); err == nil {
			raw = b
		}
	}
	return codec.NewError(code, msg, raw)
}
