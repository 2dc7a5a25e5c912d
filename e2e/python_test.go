package e2e

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/node"
)

// TestPythonClient calls add through the broker from libzmq (Debian's python3-zmq): a REQ socket
// and a DEALER socket speaking plain JSON-RPC get 11. Missing python3-zmq fails under CI.
func TestPythonClient(t *testing.T) {
	python := testutil.PythonZMQ(t)
	s := startSystem(t, node.Config{Concurrency: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "testdata/pyclient.py", s.b.Addr())
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pyclient.py: %v\n%s", err, out)
	}
	want := "REQ 11\nDEALER 11\nDEALER+delimiter 11\n"
	if string(out) != want {
		t.Fatalf("pyclient.py printed %q, want %q", out, want)
	}
}
