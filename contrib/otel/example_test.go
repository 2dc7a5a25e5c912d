package otelzerotask_test

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/zerotask/zerotask/client"
	otelzerotask "github.com/zerotask/zerotask/contrib/otel"
	"github.com/zerotask/zerotask/dispatch"
)

// A node's dispatcher with the middleware: every task runs in a span, child of its caller's.
func ExampleMiddleware() {
	otel.SetTextMapPropagator(propagation.TraceContext{}) // and otel.SetTracerProvider(...)
	d := dispatch.New()
	d.Use(otelzerotask.Middleware())
	d.MustRegister("resize", dispatch.HandlerFunc(func(ctx context.Context, dst, params []byte) ([]byte, error) {
		// ctx carries the task's span: spans started from it belong to the caller's trace.
		return append(dst, "true"...), nil
	}))
	// node.New(node.Config{Dispatcher: d, ...})
}

// A traced client: Submit starts a producer span and carries its context in the task's meta.
func ExampleNewClient() {
	ctx := context.Background()
	c, err := client.Dial(ctx, "tcp://127.0.0.1:5555")
	if err != nil {
		return
	}
	defer c.Close()
	tc := otelzerotask.NewClient(c)
	if h, err := tc.Submit(ctx, "resize", []any{"photo.jpg"}); err == nil {
		_ = h.Wait(ctx, nil)
	}
}

// Meta as a task option, for a caller that keeps its own spans.
func ExampleMeta() {
	var c *client.Client // dialled elsewhere
	ctx := context.Background()
	if c != nil {
		_, _ = c.Submit(ctx, "resize", []any{"photo.jpg"}, otelzerotask.Meta(ctx))
	}
}
