// Package otelzerotask traces ZeroTask tasks with OpenTelemetry: the caller's span context
// travels in the task's meta object (a W3C traceparent, and tracestate and baggage with the
// propagators that write them) byte for byte to the handler, whose run becomes a span of the
// same trace.
//
// It lives in its own Go module (contrib/otel), so the core module of ZeroTask depends on no
// OpenTelemetry package. On the calling side, wrap the client, or give Meta as a task option:
//
//	tc := otelzerotask.NewClient(c)
//	h, err := tc.Submit(ctx, "report", []any{"2026-11"}) // a producer span, its context in the meta
//
// On the node, add the middleware to the dispatcher: every task then runs in a consumer span
// (server span for a call) whose parent is the caller's span:
//
//	d := dispatch.New()
//	d.Use(otelzerotask.Middleware())
//
// Both use the global TracerProvider and TextMapPropagator (otel.SetTracerProvider,
// otel.SetTextMapPropagator) unless given others. The meta object is at most
// protocol.MaxMetaLen bytes: a propagator that writes more (large baggage) makes the task fail
// locally with client.ErrBadOption.
package otelzerotask

import (
	"context"
	"encoding/json"
	"errors"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/zerotask/zerotask/client"
	"github.com/zerotask/zerotask/dispatch"
)

// ScopeName is the instrumentation scope of the spans this package starts.
const ScopeName = "github.com/zerotask/zerotask/contrib/otel"

// The attributes of the spans (OpenTelemetry's messaging conventions where one fits).
const (
	AttrSystem      = attribute.Key("messaging.system")           // AttrSystem: always "zerotask".
	AttrOperation   = attribute.Key("messaging.operation.name")   // AttrOperation: "submit", "call" or "process".
	AttrDestination = attribute.Key("messaging.destination.name") // AttrDestination: the task's queue (node side).
	AttrMessageID   = attribute.Key("messaging.message.id")       // AttrMessageID: the task's id (a submitted task).
	AttrMethod      = attribute.Key("zerotask.method")            // AttrMethod: the task's method.
	AttrAttempt     = attribute.Key("zerotask.attempt")           // AttrAttempt: this run's attempt number (node side).
	AttrErrorCode   = attribute.Key("zerotask.error.code")        // AttrErrorCode: the JSON-RPC error code of a failed task or call.
	systemName      = "zerotask"
)

type config struct {
	tp   trace.TracerProvider
	prop propagation.TextMapPropagator
}

// Option configures NewClient, Meta and Middleware.
type Option func(*config)

// WithTracerProvider sets the TracerProvider spans are started with (default: otel's global).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.tp = tp }
}

// WithPropagators sets the propagator that writes the span context into the meta object and
// reads it back (default: otel's global; a W3C TraceContext propagator writes traceparent).
func WithPropagators(p propagation.TextMapPropagator) Option {
	return func(c *config) { c.prop = p }
}

func newConfig(opts []Option) config {
	c := config{}
	for _, o := range opts {
		o(&c)
	}
	if c.tp == nil {
		c.tp = otel.GetTracerProvider()
	}
	if c.prop == nil {
		c.prop = otel.GetTextMapPropagator()
	}
	return c
}

// Meta returns a task option whose meta object carries ctx's span context, as the propagator
// writes it ({"traceparent":"00-...-01"} with the W3C TraceContext propagator). With no span
// in ctx it carries nothing. Of several Meta options the last wins.
func Meta(ctx context.Context, opts ...Option) client.TaskOption {
	c := newConfig(opts)
	return c.meta(ctx)
}

func (c *config) meta(ctx context.Context) client.TaskOption {
	carrier := propagation.MapCarrier{}
	c.prop.Inject(ctx, carrier)
	if len(carrier) == 0 {
		return nil // client options skip nil
	}
	b, err := json.Marshal(map[string]string(carrier))
	if err != nil {
		return nil
	}
	return client.Meta(b)
}

// Client is a client.Client whose Submit and CallWith start a span and carry its context to
// the handler in the task's meta.
type Client struct {
	*client.Client
	cfg    config
	tracer trace.Tracer
}

// NewClient wraps c. Its other methods are c's.
func NewClient(c *client.Client, opts ...Option) *Client {
	cfg := newConfig(opts)
	return &Client{Client: c, cfg: cfg, tracer: cfg.tp.Tracer(ScopeName)}
}

// Submit submits the task within a producer span named "submit METHOD", ended once the broker
// accepted (or refused) it; the task's run on its node is a child of that span. An explicit
// client.Meta among opts is replaced by the span's.
func (t *Client) Submit(ctx context.Context, method string, args []any, opts ...client.SubmitOption) (*client.Handle, error) {
	ctx, span := t.tracer.Start(ctx, "submit "+method, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(AttrSystem.String(systemName), AttrOperation.String("submit"), AttrMethod.String(method)))
	defer span.End()
	if m := t.cfg.meta(ctx); m != nil {
		opts = append(opts[:len(opts):len(opts)], m)
	}
	h, err := t.Client.Submit(ctx, method, args, opts...)
	if err != nil {
		fail(span, err)
		return nil, err
	}
	span.SetAttributes(AttrMessageID.String(h.ID()))
	return h, nil
}

// CallWith calls the task within a client span named "call METHOD", ended with its result;
// the handler's run is a child of that span.
func (t *Client) CallWith(ctx context.Context, method string, result any, args []any, opts ...client.TaskOption) error {
	ctx, span := t.tracer.Start(ctx, "call "+method, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(AttrSystem.String(systemName), AttrOperation.String("call"), AttrMethod.String(method)))
	defer span.End()
	if m := t.cfg.meta(ctx); m != nil {
		opts = append(opts[:len(opts):len(opts)], m)
	}
	err := t.Client.CallWith(ctx, method, result, args, opts...)
	if err != nil {
		fail(span, err)
	}
	return err
}

// Call is CallWith without task options.
func (t *Client) Call(ctx context.Context, method string, result any, args ...any) error {
	return t.CallWith(ctx, method, result, args)
}

// Middleware returns dispatch middleware for a node's (or a broker's) dispatcher: every task
// runs in a span named "process METHOD" (a consumer span for a submitted task, a server span
// for a call), the child of the span context in the task's meta when there is one, with the
// task's id, attempt and queue as attributes; a handler's error marks the span failed.
func Middleware(opts ...Option) dispatch.Middleware {
	cfg := newConfig(opts)
	tracer := cfg.tp.Tracer(ScopeName)
	return func(name string, next dispatch.Handler) dispatch.Handler {
		spanName := "process " + name
		return dispatch.HandlerFunc(func(ctx context.Context, dst, params []byte) ([]byte, error) {
			info, _ := dispatch.TaskInfoFrom(ctx)
			parent := ctx
			if info.Meta != "" {
				parent = cfg.prop.Extract(ctx, metaCarrier(info.Meta))
			}
			kind := trace.SpanKindServer
			attrs := []attribute.KeyValue{AttrSystem.String(systemName), AttrOperation.String("process"), AttrMethod.String(name)}
			if info.ID != "" {
				kind = trace.SpanKindConsumer
				attrs = append(attrs, AttrMessageID.String(info.ID))
			}
			if info.Queue != "" {
				attrs = append(attrs, AttrDestination.String(info.Queue))
			}
			if info.Attempt > 0 {
				attrs = append(attrs, AttrAttempt.Int(info.Attempt))
			}
			sctx, span := tracer.Start(parent, spanName, trace.WithSpanKind(kind), trace.WithAttributes(attrs...))
			defer span.End()
			// The handler's context stays the node's (its deadline, its TaskInfo); the span rides
			// on it so that the handler's own spans are children of this one.
			out, err := next.ServeRPC(trace.ContextWithSpan(ctx, trace.SpanFromContext(sctx)), dst, params)
			if err != nil {
				fail(span, err)
			}
			return out, err
		})
	}
}

// metaCarrier reads the string members of a meta object (the propagator's fields); other
// members (user fields of other types) are skipped. A meta that does not decode carries none.
func metaCarrier(meta string) propagation.MapCarrier {
	var m map[string]any
	if json.Unmarshal([]byte(meta), &m) != nil {
		return nil
	}
	c := make(propagation.MapCarrier, len(m))
	for k, v := range m {
		if s, ok := v.(string); ok {
			c[k] = s
		}
	}
	return c
}

// fail marks span failed with err, and its JSON-RPC code when it has one.
func fail(span trace.Span, err error) {
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
	var e *client.Error
	if errors.As(err, &e) {
		span.SetAttributes(AttrErrorCode.Int(e.Code))
	}
}
