package e2e

import (
	"context"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerotask/zerotask/broker"
	"github.com/zerotask/zerotask/dispatch"
	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/node"
	"github.com/zerotask/zerotask/zmtp"
)

// TestPythonCurveClients: libzmq clients (python3-zmq, testdata/pycurve.py) against a CURVE
// broker with key lists and a node that counts the tasks it runs. A client whose key is not
// listed fails its handshake (libzmq reports it) and a NULL client gets nowhere: neither gets a
// task run, and the broker counts both refusals in its stats; a listed key's call runs once.
func TestPythonCurveClients(t *testing.T) {
	python := testutil.PythonZMQ(t)
	keys := func() zmtp.CurveKeyPair {
		kp, err := zmtp.NewCurveKeyPair()
		if err != nil {
			t.Fatal(err)
		}
		return kp
	}
	server, worker, alice, stranger := keys(), keys(), keys(), keys()
	auth := broker.KeyRoles(map[zmtp.CurveKey]string{alice.Public: "alice"}, map[zmtp.CurveKey]string{worker.Public: "worker"}, nil)
	b, _ := startBroker(t, broker.Config{
		Security:  zmtp.CurveServer(server, func(k zmtp.CurveKey, _ net.Addr) bool { _, ok := auth(k); return ok }),
		Authorize: auth,
	})
	var ran atomic.Int64
	d := dispatch.New()
	d.MustRegister("count", dispatch.Pure0(func() int64 { return ran.Add(1) }))
	n, _ := startNode(t, b, node.Config{Dispatcher: d, Security: zmtp.CurveClient(server.Public, worker)})
	waitConnected(t, n)

	// pycall runs one libzmq client with secret ("-": NULL), logs and returns its output lines.
	pycall := func(who, secret string, wait time.Duration) []string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), wait+30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, python, "testdata/pycurve.py", b.Addr(), server.Public.String(), secret,
			strconv.FormatInt(wait.Milliseconds(), 10))
		cmd.WaitDelay = 5 * time.Second
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("pycurve.py: %v\n%s", err, out)
		}
		t.Logf("pycurve.py, %s: %s", who, out)
		return strings.Split(strings.TrimSpace(string(out)), "\n")
	}
	has := func(lines []string, prefix string) bool {
		for _, l := range lines {
			if strings.HasPrefix(l, prefix) {
				return true
			}
		}
		return false
	}

	out := pycall("key not listed", stranger.Secret.String(), 1500*time.Millisecond)
	if !has(out, "NOREPLY") || has(out, "EVENT HANDSHAKE_SUCCEEDED") || !has(out, "EVENT HANDSHAKE_FAILED_") {
		t.Fatalf("libzmq client with a key not listed: %q; want a failed handshake and no reply", out)
	}
	out = pycall("NULL", "-", 1000*time.Millisecond)
	if !has(out, "NOREPLY") || has(out, "EVENT HANDSHAKE_SUCCEEDED") {
		t.Fatalf("libzmq NULL client: %q; want no handshake and no reply", out)
	}
	if s := b.Stats(); s.HandshakeFailures < 2 || s.Accepted != 0 || ran.Load() != 0 {
		t.Fatalf("after the refused clients: handshake failures %d (want >= 2), tasks accepted %d, run %d (want 0)",
			s.HandshakeFailures, s.Accepted, ran.Load())
	}
	out = pycall("listed key", alice.Secret.String(), 20*time.Second)
	if !has(out, `REPLY {"jsonrpc":"2.0","id":1,"result":1}`) {
		t.Fatalf("libzmq client with a listed key: %q; want the result 1", out)
	}
	if got := ran.Load(); got != 1 {
		t.Fatalf("the node ran %d tasks, want only the listed client's", got)
	}
}
