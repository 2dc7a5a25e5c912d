package dashboard_test

import (
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/testutil"
)

func TestMain(m *testing.M) {
	testutil.VerifyTestMain(m, 5*time.Second, nil)
}
