package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"strings"
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

// TestPythonNodeReconnects: a libzmq node written from docs/protocol.md alone (testdata/
// pynode.py: hello on each new connection, told by the socket monitor) serves again within 2
// heartbeat intervals after a kill -9 and restart of the broker on the same endpoint, although
// its DEALER reconnects silently.
func TestPythonNodeReconnects(t *testing.T) {
	python := testutil.PythonZMQ(t)
	const hb = time.Second // the broker's default heartbeat interval
	router := testutil.FreeEndpoint(t)
	args := []string{"broker", "--listen", router, "--pub", "none", "--log-level", "warn"}
	b, _ := startDaemon(t, brokerLine, args...)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "testdata/pynode.py", router, "py", "60")
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr testutil.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	hellos := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if run, ok := strings.CutPrefix(sc.Text(), "hello "); ok {
				hellos <- run
			}
		}
		close(hellos)
	}()
	nextHello := func() string {
		select {
		case run, ok := <-hellos:
			if ok {
				return run
			}
		case <-time.After(10 * time.Second):
		}
		t.Fatalf("pynode.py said no hello\nstderr: %s", stderr.String())
		return ""
	}
	echo := func(token string) {
		t.Helper()
		c := newRawPeer(t, router, 0)
		defer c.s.Close()
		r := c.call(t, fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"echo","params":[%q]}`, token))
		if string(r.Result) != fmt.Sprintf("%q", token) {
			t.Fatalf("echo %s: %s", token, r.raw)
		}
	}
	first := nextHello()
	echo("before")
	kill9(t, b)
	startDaemon(t, brokerLine, args...) // reaped by its cleanup
	restarted := time.Now()
	if run := nextHello(); run == first {
		t.Fatalf("hello answered by run %s again after the restart", run)
	}
	echo("after")
	if d := time.Since(restarted); d > 2*hb {
		t.Fatalf("the python node served again %v after the broker restarted, want within %v", d, 2*hb)
	} else {
		t.Logf("serving again %v after the restart", d.Round(time.Millisecond))
	}
}
