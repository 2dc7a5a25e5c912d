package storetest_test

import (
	"context"
	"testing"

	"github.com/zerotask/zerotask/store"
	"github.com/zerotask/zerotask/store/storetest"
)

// Run the suite against an implementation from its own test: here Redis on a test server,
// a fresh key prefix for each store the suite opens.
func ExampleRun() {
	_ = func(t *testing.T, addr string) {
		n := 0
		storetest.Run(t, func(t *testing.T, o store.Options) store.Store {
			n++
			o.Prefix = "suite" + string(rune('a'+n%26)) + ":"
			r, err := store.DialRedis(context.Background(), "redis://"+addr, o)
			if err != nil {
				t.Fatal(err)
			}
			return r
		})
	}
}
