package bench

import (
	"context"
	"testing"
)

// maxAllocsPerTask is the end-to-end allocation budget of one sequential add(5, 6) through the
// client's raw path, counted over the whole process: client, broker and node.
const maxAllocsPerTask = 4

// TestEndToEndAllocs holds the steady-state round trip to its allocation budget.
// testing.AllocsPerRun counts every allocation in the process while it runs, so the broker's and
// node's goroutines are counted too.
func TestEndToEndAllocs(t *testing.T) {
	env := startEnv(t, 1)
	ctx := context.Background()
	params := DefaultParams("add")
	dst := make([]byte, 0, 64)
	call := func() {
		var err error
		if dst, err = env.Client.CallRaw(ctx, dst[:0], "add", params); err != nil {
			t.Fatal(err)
		}
		if string(dst) != "11" {
			t.Fatalf("add(5, 6) = %s", dst)
		}
	}
	for range 1000 { // warm pools and buffers
		call()
	}
	allocs := testing.AllocsPerRun(2000, call)
	t.Logf("%.0f allocations per sequential task, end to end", allocs)
	if raceEnabled {
		return
	}
	if allocs > maxAllocsPerTask {
		t.Fatalf("%.0f allocations per task end to end, want at most %d", allocs, maxAllocsPerTask)
	}
}
