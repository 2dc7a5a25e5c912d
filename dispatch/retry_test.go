package dispatch

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/protocol"
)

func TestRetryable(t *testing.T) {
	base := errors.New("boom")
	tests := []struct {
		name  string
		err   error
		after time.Duration
		ok    bool
	}{
		{"nil", nil, 0, false},
		{"plain", base, 0, false},
		{"retry", Retry(base), 0, true},
		{"retry after", RetryAfter(base, time.Second), time.Second, true},
		{"negative after", RetryAfter(base, -time.Second), 0, true},
		{"wrapped retry", fmt.Errorf("ctx: %w", Retry(base)), 0, true},
		{"skip inside retry", Retry(fmt.Errorf("x: %w", ErrSkipRetry)), 0, false},
		{"retry inside skip", fmt.Errorf("%w: %w", ErrSkipRetry, Retry(base)), 0, false},
		{"codec error marked", Retry(codec.NewError(-32099, "x", nil)), 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			after, ok := Retryable(tt.err)
			if after != tt.after || ok != tt.ok {
				t.Fatalf("Retryable(%v) = %v, %v; want %v, %v", tt.err, after, ok, tt.after, tt.ok)
			}
		})
	}
	if Retry(nil) != nil || RetryAfter(nil, time.Second) != nil {
		t.Fatal("Retry(nil) must be nil")
	}
	if !errors.Is(Retry(base), base) {
		t.Fatal("Retry must keep errors.Is on the error it carries")
	}
}

// Errors marked with Retry survive Call's error mapping, with and without a *codec.Error.
func TestRetryThroughCall(t *testing.T) {
	d := New()
	d.MustRegister("plain", HandlerFunc(func(ctx context.Context, dst, p []byte) ([]byte, error) {
		return dst, Retry(errors.New("plain"))
	}))
	d.MustRegister("coded", HandlerFunc(func(ctx context.Context, dst, p []byte) ([]byte, error) {
		return dst, RetryAfter(Errorf(-32050, nil, "coded"), time.Minute)
	}))
	for _, tt := range []struct {
		method string
		code   int
		after  time.Duration
	}{{"plain", protocol.CodeHandlerError, 0}, {"coded", -32050, time.Minute}} {
		_, err := d.Call(context.Background(), nil, []byte(tt.method), nil)
		after, ok := Retryable(err)
		if !ok || after != tt.after {
			t.Errorf("%s: Retryable = %v, %v; want %v, true", tt.method, after, ok, tt.after)
		}
		if ce := codec.AsError(err); ce.Code != tt.code {
			t.Errorf("%s: code %d, want %d", tt.method, ce.Code, tt.code)
		}
	}
}

func TestPolicy(t *testing.T) {
	d := New()
	if p := d.Policy([]byte("none")); p != (Policy{}) {
		t.Fatalf("empty dispatcher policy %+v", p)
	}
	d.MustRegister("raw", HandlerFunc(func(ctx context.Context, dst, p []byte) ([]byte, error) { return dst, nil }),
		TimeLimit(time.Second), RetryOnError())
	d.MustRegister("typed", Pure1(func(x int) int { return x }), Names("x"), TimeLimit(2*time.Second))
	d.MustRegister("bare", Pure1(func(x int) int { return x }))
	if err := d.Register("neg", Pure1(func(x int) int { return x }), TimeLimit(-1)); !errors.Is(err, ErrBadOption) {
		t.Fatalf("negative TimeLimit: %v, want ErrBadOption", err)
	}
	if err := d.Register("names-raw", HandlerFunc(func(ctx context.Context, dst, p []byte) ([]byte, error) { return dst, nil }), Names("a")); !errors.Is(err, ErrBadOption) {
		t.Fatalf("Names on a raw handler: %v, want ErrBadOption", err)
	}
	d.Use(func(name string, next Handler) Handler { return next }) // the table is rebuilt: policies stay
	want := map[string]Policy{
		"raw":   {TimeLimit: time.Second, RetryOnError: true},
		"typed": {TimeLimit: 2 * time.Second},
		"bare":  {},
		"neg":   {},
	}
	for name, p := range want {
		if got := d.Policy([]byte(name)); got != p {
			t.Errorf("Policy(%s) = %+v, want %+v", name, got, p)
		}
	}
	// The typed adapter with Names still takes named params.
	if out, err := d.Call(context.Background(), nil, []byte("typed"), []byte(`{"x":3}`)); err != nil || string(out) != "3" {
		t.Fatalf("typed with Names: %s, %v", out, err)
	}
	if n := testing.AllocsPerRun(100, func() { _ = d.Policy([]byte("raw")) }); n != 0 {
		t.Fatalf("Policy allocates %v", n)
	}
}

func TestPolicyRetryable(t *testing.T) {
	on := Policy{RetryOnError: true}
	tests := []struct {
		name string
		p    Policy
		err  error
		ok   bool
	}{
		{"default plain", Policy{}, errors.New("x"), false},
		{"default marked", Policy{}, Retry(errors.New("x")), true},
		{"on plain", on, errors.New("x"), true},
		{"on nil", on, nil, false},
		{"on skip", on, fmt.Errorf("x: %w", ErrSkipRetry), false},
		{"on invalid params", on, codec.NewError(codec.CodeInvalidParams, "bad", nil), false},
		{"on method not found", on, codec.ErrMethodNotFound, false},
		{"on panic", on, codec.NewError(codec.CodeInternalError, "internal error: x", nil), true},
		{"on deadline", on, context.DeadlineExceeded, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, ok := tt.p.Retryable(tt.err); ok != tt.ok {
				t.Fatalf("Retryable = %v, want %v", ok, tt.ok)
			}
		})
	}
}
