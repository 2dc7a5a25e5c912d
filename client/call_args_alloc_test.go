//go:build !race

// The race detector allocates: the allocation tests build without it (CI runs them in a pass
// of their own, without -race).

package client

import (
	"context"
	"encoding/json"
	"testing"
)

// TestNotifyAllocs: a notification of two small integers, of a string, or of raw JSON members
// given as a slice made once (as `zerotask bench` sends them), allocates nothing in the client
// once warm. (Passing a json.RawMessage as a variadic argument boxes it, an allocation at the
// call site; small integers box for free.)
func TestNotifyAllocs(t *testing.T) {
	s := newEchoServer(t)
	c := dialEcho(t, s)
	ctx := context.Background()
	raw := []any{json.RawMessage(`5`), json.RawMessage(`6`)}
	cases := []struct {
		name string
		send func() error
	}{
		{"ints", func() error { return c.Notify(ctx, "add", 5, 6) }},
		{"raw members", func() error { return c.Notify(ctx, "add", raw...) }},
		{"a string", func() error { return c.Notify(ctx, "echo", "hello") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for range 200 {
				if err := tc.send(); err != nil {
					t.Fatal(err)
				}
			}
			n := testing.AllocsPerRun(2000, func() {
				if err := tc.send(); err != nil {
					t.Fatal(err)
				}
			})
			if n > 0 {
				t.Errorf("%v allocs per Notify, want 0", n)
			}
		})
	}
}
