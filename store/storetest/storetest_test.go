package storetest_test

import (
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/store"
	"github.com/zerotask/zerotask/store/storetest"
)

func TestMain(m *testing.M) {
	testutil.VerifyTestMain(m, 5*time.Second, nil)
}

// TestSuiteOnMemory runs the suite on the reference implementation, so that a change to the
// suite is checked where it is made.
func TestSuiteOnMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T, o store.Options) store.Store { return store.NewMemory(o) })
}
