package storetest_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/zerotask/zerotask/store"
	"github.com/zerotask/zerotask/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestSuiteOnMemory runs the suite on the reference implementation, so that a change to the
// suite is checked where it is made.
func TestSuiteOnMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T, o store.Options) store.Store { return store.NewMemory(o) })
}
