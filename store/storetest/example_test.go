package storetest_test

import (
	"testing"

	"github.com/zerotask/zerotask/store"
	"github.com/zerotask/zerotask/store/storetest"
)

// Run the suite against an implementation from its own test.
func ExampleRun() {
	_ = func(t *testing.T) {
		storetest.Run(t, func(t *testing.T, o store.Options) store.Store {
			return store.NewMemory(o)
		})
	}
}
