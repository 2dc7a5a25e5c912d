package client

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/internal/testutil"
)

// lastRaw returns the last raw request object the fake broker got for method, decoded.
func lastRaw(t *testing.T, f *fakeBroker, method string) map[string]json.RawMessage {
	t.Helper()
	var raw string
	f.snapshot(func(f *fakeBroker) {
		if rs := f.raws[method]; len(rs) > 0 {
			raw = rs[len(rs)-1]
		}
	})
	if raw == "" {
		t.Fatalf("no %s request seen", method)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatalf("request %s: %v", raw, err)
	}
	return m
}

// TestTaskOptionsOnCall: CallWith's options become extension members of the request object,
// not params; the context's deadline travels as timeout_ms.
func TestTaskOptionsOnCall(t *testing.T) {
	f := newFakeBroker(t)
	c := dial(t, f)
	tests := []struct {
		name   string
		ctx    time.Duration // 0: no deadline
		opts   []TaskOption
		want   map[string]string // member -> raw value ("" means absent)
		params string
	}{
		{"none", 0, nil, map[string]string{"timeout_ms": "", "priority": ""}, "[5,6]"},
		{"ctx deadline", 5 * time.Second, nil, map[string]string{"timeout_ms": "~5000"}, "[5,6]"},
		{"timeout earlier than ctx", 5 * time.Second, []TaskOption{Timeout(1500 * time.Millisecond)}, map[string]string{"timeout_ms": "1500"}, "[5,6]"},
		{"ctx earlier than timeout", 2 * time.Second, []TaskOption{Timeout(time.Hour)}, map[string]string{"timeout_ms": "~2000"}, "[5,6]"},
		{"all", 0, []TaskOption{Priority(7), Queue("high"), MaxAttempts(3), Backoff(10*time.Millisecond, time.Second), Delay(2500 * time.Microsecond)},
			map[string]string{"priority": "7", "queue": `"high"`, "max_attempts": "3", "backoff_ms": "10", "max_backoff_ms": "1000", "delay_ms": "3"}, "[5,6]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.ctx > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.ctx)
				defer cancel()
			}
			var sum int
			if err := c.CallWith(ctx, "add", &sum, []any{5, 6}, tt.opts...); err != nil || sum != 11 {
				t.Fatalf("add = %d, %v", sum, err)
			}
			m := lastRaw(t, f, "add")
			if string(m["params"]) != tt.params {
				t.Errorf("params %s, want %s", m["params"], tt.params)
			}
			for k, want := range tt.want {
				got := string(m[k])
				switch {
				case strings.HasPrefix(want, "~"):
					// The deadline left when the request is encoded: at most the context's,
					// less the time since it was made (up to a second on a loaded machine).
					g, gerr := strconv.Atoi(got)
					w, _ := strconv.Atoi(want[1:])
					if gerr != nil || g > w || g <= w-1000 {
						t.Errorf("%s = %q, want about %s (at most, and within a second of it)", k, got, want[1:])
					}
				case got != want:
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

// TestTaskOptionsOnSubmit: options become params of broker.submit; ctx's deadline does not.
func TestTaskOptionsOnSubmit(t *testing.T) {
	f := newFakeBroker(t)
	c := dial(t, f)
	ctx := testutil.Context(t, waitLong)
	eta := time.UnixMilli(4102444800000) // 2100-01-01: only encoded here
	h, err := c.Submit(ctx, "add", []any{1, 2}, Key("k-1"), Priority(0), Timeout(90*time.Second))
	if err != nil || h.ID() == "" {
		t.Fatalf("submit: %v", err)
	}
	var p map[string]json.RawMessage
	if err := json.Unmarshal(lastRaw(t, f, "broker.submit")["params"], &p); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"method": `"add"`, "params": "[1,2]", "key": `"k-1"`, "priority": "0", "timeout_ms": "90000"}
	for k, v := range want {
		if string(p[k]) != v {
			t.Errorf("submit param %s = %s, want %s", k, p[k], v)
		}
	}
	if len(p) != len(want) {
		t.Errorf("submit params %v, want only %v", p, want)
	}
	if _, err := c.Submit(ctx, "add", []any{1, 2}, ETA(eta)); err == nil {
		t.Errorf("ETA 2100 accepted (past MaxDelay)")
	}
	if _, err := c.Submit(ctx, "add", []any{1, 2}, ETA(time.Now().Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	var q map[string]json.RawMessage
	_ = json.Unmarshal(lastRaw(t, f, "broker.submit")["params"], &q)
	if ms := string(q["eta_ms"]); len(ms) != 13 {
		t.Errorf("eta_ms %q, want unix milliseconds", ms)
	}
}

// TestTaskOptionsInvalid: bad options fail locally with ErrBadOption, before anything is sent.
func TestTaskOptionsInvalid(t *testing.T) {
	f := newFakeBroker(t)
	c := dial(t, f)
	ctx := testutil.Context(t, waitLong)
	for i, o := range []SubmitOption{Key(""), Key(strings.Repeat("k", MaxKeyLen+1))} {
		if _, err := c.Submit(ctx, "add", []any{1, 2}, o); !errors.Is(err, ErrBadOption) {
			t.Errorf("key %d: Submit %v, want ErrBadOption", i, err)
		}
	}
	bad := []TaskOption{
		Delay(-time.Second), Delay(MaxDelay + time.Second),
		ETA(time.Now().Add(MaxDelay + time.Hour)), Priority(-1), Priority(MaxPriority + 1), Queue(""),
		Queue(strings.Repeat("q", MaxQueueName+1)), MaxAttempts(0), MaxAttempts(MaxAttemptsCap + 1),
		Backoff(0, time.Second), Backoff(time.Second, time.Millisecond), Timeout(0), Timeout(MaxTimeout + 1),
	}
	for i, o := range bad {
		if _, err := c.Submit(ctx, "add", []any{1, 2}, o); !errors.Is(err, ErrBadOption) {
			t.Errorf("option %d: Submit %v, want ErrBadOption", i, err)
		}
		if err := c.CallWith(ctx, "add", nil, []any{1, 2}, o); !errors.Is(err, ErrBadOption) {
			t.Errorf("option %d: CallWith %v, want ErrBadOption", i, err)
		}
	}
	// An option passed as a param (args are []any, so the compiler lets it through) is refused
	// by name, by Call, Notify and Submit alike.
	for _, o := range []any{Key("k"), Priority(3)} {
		if err := c.Call(ctx, "add", nil, 1, 2, o); !errors.Is(err, ErrBadOption) || !strings.Contains(err.Error(), "argument 3 is a task option") {
			t.Errorf("%T among Call's args: %v, want ErrBadOption", o, err)
		}
		if err := c.Notify(ctx, "add", 1, o); !errors.Is(err, ErrBadOption) {
			t.Errorf("%T among Notify's args: %v, want ErrBadOption", o, err)
		}
		if _, err := c.Submit(ctx, "add", []any{o}); !errors.Is(err, ErrBadOption) {
			t.Errorf("%T among Submit's args: %v, want ErrBadOption", o, err)
		}
	}
	f.snapshot(func(f *fakeBroker) {
		if n := f.methods["broker.submit"] + f.methods["add"]; n != 0 {
			t.Errorf("%d requests reached the broker", n)
		}
	})
}

// TestBrokerErrorSentinels: the broker's error codes match the client's sentinels by code.
func TestBrokerErrorSentinels(t *testing.T) {
	for _, tt := range []struct {
		code int
		err  error
	}{
		{-32001, ErrQueueFull}, {-32002, ErrTooManyInFlight}, {-32003, ErrShuttingDown},
		{-32004, ErrRevoked}, {-32005, ErrExpired}, {-32006, ErrNodeLost}, {-32011, ErrDeadline},
	} {
		remote := codec.NewError(tt.code, "whatever the message", nil)
		if !errors.Is(remote, tt.err) {
			t.Errorf("code %d does not match %v", tt.code, tt.err)
		}
	}
	if errors.Is(codec.NewError(-32001, "x", nil), ErrTooManyInFlight) {
		t.Error("codes mix up")
	}
}

// The raw path stays allocation-light with a deadline too: the timeout member is built on the
// stack.
func TestCallRawDeadlineAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector adds allocations")
	}
	f := newFakeBroker(t)
	c := dial(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	params := []byte("[1,2]")
	dst := make([]byte, 0, 64)
	var err error
	for range 100 {
		if dst, err = c.CallRaw(ctx, dst[:0], "add", params); err != nil {
			t.Fatal(err)
		}
	}
	base := testing.AllocsPerRun(200, func() { dst, _ = c.CallRaw(context.Background(), dst[:0], "add", params) })
	with := testing.AllocsPerRun(200, func() { dst, _ = c.CallRaw(ctx, dst[:0], "add", params) })
	if with > base {
		t.Errorf("CallRaw with a deadline: %v allocs, without: %v", with, base)
	}
	if m := lastRaw(t, f, "add"); m["timeout_ms"] == nil {
		t.Errorf("no timeout_ms in %v", m)
	}
}
