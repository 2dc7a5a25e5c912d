package otelzerotask_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/zerotask/zerotask/broker"
	"github.com/zerotask/zerotask/client"
	"github.com/zerotask/zerotask/codec"
	otelzerotask "github.com/zerotask/zerotask/contrib/otel"
	"github.com/zerotask/zerotask/dispatch"
	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/node"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const wait = 10 * time.Second

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// setup runs a broker, a node whose dispatcher has the middleware, and a traced client, all on
// loopback, with spans recorded in memory.
func setup(t *testing.T, d *dispatch.Dispatcher) (*otelzerotask.Client, *tracetest.SpanRecorder, trace.Tracer) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	opts := []otelzerotask.Option{otelzerotask.WithTracerProvider(tp), otelzerotask.WithPropagators(propagation.TraceContext{})}
	d.Use(otelzerotask.Middleware(opts...))

	b, err := broker.New(broker.Config{Listen: "tcp://127.0.0.1:0", Pub: "tcp://127.0.0.1:0", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Go(t, "broker Serve", wait, b.Serve)
	n, err := node.New(node.Config{Broker: b.Addr(), Sub: b.PubAddr(), Dispatcher: d, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Go(t, "node Serve", wait, n.Serve)
	testutil.Eventually(t, wait, func() bool { return n.Stats().Connected && b.Stats().Nodes >= 1 }, "node connected")
	c, err := client.Dial(testutil.Context(t, wait), b.Addr(), client.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return otelzerotask.NewClient(c, opts...), rec, tp.Tracer("test")
}

// TestTraceCrossesTheTask: the handler's span (and a span the handler starts) belong to the
// caller's trace, children of the client's span, for a submitted task and for a call; the
// meta the handler sees is the W3C traceparent of the client's span; a failed task marks its
// span failed with its code.
func TestTraceCrossesTheTask(t *testing.T) {
	d := dispatch.New()
	metas := make(chan string, 4)
	var tracer trace.Tracer
	d.MustRegister("work", dispatch.HandlerFunc(func(ctx context.Context, dst, _ []byte) ([]byte, error) {
		info, _ := dispatch.TaskInfoFrom(ctx)
		metas <- info.Meta
		_, inner := tracer.Start(ctx, "inner")
		inner.End()
		return append(dst, "true"...), nil
	}))
	d.MustRegister("broken", dispatch.HandlerFunc(func(context.Context, []byte, []byte) ([]byte, error) {
		return nil, codec.NewError(4242, "broken on purpose", nil)
	}))
	tc, rec, tr := setup(t, d)
	tracer = tr
	ctx := testutil.Context(t, wait)

	ctx, root := tr.Start(ctx, "root")
	h, err := tc.Submit(ctx, "work", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Wait(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := tc.Call(ctx, "work", nil); err != nil {
		t.Fatal(err)
	}
	var ce *client.Error
	if err := tc.Call(ctx, "broken", nil); !errors.As(err, &ce) || ce.Code != 4242 {
		t.Fatalf("broken: %v", err)
	}
	root.End()

	byName := func(name string) sdktrace.ReadOnlySpan {
		for _, s := range rec.Ended() {
			if s.Name() == name {
				return s
			}
		}
		return nil
	}
	// The node's span ends once the answer is on its way: wait for all of them.
	testutil.Eventually(t, wait, func() bool { return len(rec.Ended()) >= 9 }, "9 spans ended, got %d", len(rec.Ended()))
	traceID := root.SpanContext().TraceID()
	submit, call := byName("submit work"), byName("call work")
	var processes, inners []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.SpanContext().TraceID() != traceID {
			t.Errorf("span %q in trace %s, want %s", s.Name(), s.SpanContext().TraceID(), traceID)
		}
		switch s.Name() {
		case "process work":
			processes = append(processes, s)
		case "inner":
			inners = append(inners, s)
		}
	}
	if submit == nil || call == nil || len(processes) != 2 || len(inners) != 2 {
		t.Fatalf("spans: %d ended, submit %v, call %v, %d process, %d inner", len(rec.Ended()), submit != nil, call != nil, len(processes), len(inners))
	}
	if submit.SpanKind() != trace.SpanKindProducer || call.SpanKind() != trace.SpanKindClient {
		t.Errorf("client span kinds: %v, %v", submit.SpanKind(), call.SpanKind())
	}
	parents := map[trace.SpanID]trace.SpanKind{}
	for _, p := range processes {
		parents[p.Parent().SpanID()] = p.SpanKind()
		if !p.Parent().IsRemote() {
			t.Errorf("process span's parent is not remote: %v", p.Parent())
		}
	}
	if parents[submit.SpanContext().SpanID()] != trace.SpanKindConsumer || parents[call.SpanContext().SpanID()] != trace.SpanKindServer {
		t.Errorf("process spans' parents %v; want the submit span (consumer) and the call span (server)", parents)
	}
	for _, in := range inners {
		if _, ok := parents[in.Parent().SpanID()]; ok || !hasSpan(processes, in.Parent().SpanID()) {
			t.Errorf("the handler's own span is not a child of its process span")
		}
	}
	for range 2 {
		m := <-metas
		var obj map[string]string
		if err := json.Unmarshal([]byte(m), &obj); err != nil || !strings.HasPrefix(obj["traceparent"], "00-"+traceID.String()+"-") {
			t.Errorf("the handler's meta %q: want a traceparent of trace %s", m, traceID)
		}
	}
	if s := byName("process broken"); s == nil || s.Status().Code.String() != "Error" || !hasAttr(s, otelzerotask.AttrErrorCode, 4242) {
		t.Errorf("the failed task's span: %+v", s)
	}
	if s := byName("call broken"); s == nil || s.Status().Code.String() != "Error" {
		t.Errorf("the failed call's span: %+v", s)
	}
}

// TestNoSpanNoMeta: without a span in the caller's context, the task carries no meta and its
// run is the root of a trace of its own.
func TestNoSpanNoMeta(t *testing.T) {
	d := dispatch.New()
	metas := make(chan string, 1)
	d.MustRegister("work", dispatch.HandlerFunc(func(ctx context.Context, dst, _ []byte) ([]byte, error) {
		info, _ := dispatch.TaskInfoFrom(ctx)
		metas <- info.Meta
		return append(dst, "true"...), nil
	}))
	tc, rec, _ := setup(t, d)
	ctx := testutil.Context(t, wait)
	if err := tc.Client.Call(ctx, "work", nil); err != nil {
		t.Fatal(err)
	}
	if m := <-metas; m != "" {
		t.Errorf("meta %q, want none", m)
	}
	testutil.Eventually(t, wait, func() bool { return len(rec.Ended()) == 1 }, "one span, got %d", len(rec.Ended()))
	if p := rec.Ended()[0].Parent(); p.IsValid() {
		t.Errorf("process span has parent %v, want none", p)
	}
}

func hasSpan(spans []sdktrace.ReadOnlySpan, id trace.SpanID) bool {
	for _, s := range spans {
		if s.SpanContext().SpanID() == id {
			return true
		}
	}
	return false
}

func hasAttr(s sdktrace.ReadOnlySpan, key attribute.Key, want int64) bool {
	for _, a := range s.Attributes() {
		if a.Key == key {
			return a.Value.AsInt64() == want
		}
	}
	return false
}
