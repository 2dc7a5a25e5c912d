package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zerotask/zerotask/broker"
	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/zmtp"
)

func TestKeygen(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "broker.key")
	code, out, errOut := runArgs(t, "keygen", base)
	if code != exitOK {
		t.Fatalf("keygen: exit %d, stderr %q", code, errOut)
	}
	pub, err := zmtp.LoadCurvePublic(base)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out) != pub.String() {
		t.Fatalf("keygen printed %q, the public file holds %s", out, pub)
	}
	kp, err := zmtp.LoadCurveSecret(base + "_secret")
	if err != nil || kp.Public != pub {
		t.Fatalf("secret file: %v (public %s, want %s)", err, kp.Public, pub)
	}
	st, err := os.Stat(base + "_secret")
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("secret file mode %v (%v), want 0600", st.Mode().Perm(), err)
	}
	if code, _, _ := runArgs(t, "keygen", base); code == exitOK {
		t.Fatal("keygen overwrote an existing key")
	}
}

func TestProtectedMode(t *testing.T) {
	// A broker asked to bind a non-loopback address without authentication refuses to start
	// and names the way out.
	for _, args := range [][]string{
		{"broker", "--listen", "tcp://0.0.0.0:0", "--pub", "none"},
		{"broker", "--listen", "tcp://127.0.0.1:0", "--pub", "tcp://*:0"},
		{"up", "--listen", "tcp://0.0.0.0:0", "--pub", "none"},
	} {
		code, _, errOut := runArgs(t, args...)
		if code == exitOK || !strings.Contains(errOut, "--insecure") || !strings.Contains(errOut, "--curve-secret") {
			t.Fatalf("%v: exit %d, stderr %q; want a failure naming --insecure and --curve-secret", args, code, errOut)
		}
	}
	if code, _, errOut := runArgs(t, "broker", "--authorized-clients", "x"); code != exitUsage || !strings.Contains(errOut, "need --curve-secret") {
		t.Fatalf("lists without a secret: exit %d, stderr %q", code, errOut)
	}
	for ep, want := range map[string]bool{"tcp://127.0.0.1:1": true, "tcp://[::1]:1": true, "tcp://localhost:1": true,
		"ipc:///tmp/x": true, "tcp://0.0.0.0:1": false, "tcp://*:1": false, "tcp://10.1.2.3:1": false, "tcp://example.org:1": false} {
		if got := broker.LocalEndpoint(ep); got != want {
			t.Errorf("LocalEndpoint(%q) = %v, want %v", ep, got, want)
		}
	}
}

// TestCurveBrokerCommands: a CURVE broker (run in this process) with an authorized client key
// and node key: the node serves, the client's call works with its key given by flag or by
// environment; a key not listed and a client without CURVE get nothing.
func TestCurveBrokerCommands(t *testing.T) {
	dir := t.TempDir()
	keygen := func(name string) (string, zmtp.CurveKey) {
		base := filepath.Join(dir, name)
		if code, out, errOut := runArgs(t, "keygen", base); code != exitOK {
			t.Fatalf("keygen %s: %d %q %q", name, code, out, errOut)
		}
		pub, err := zmtp.LoadCurvePublic(base)
		if err != nil {
			t.Fatal(err)
		}
		return base, pub
	}
	brokerBase, brokerPub := keygen("broker")
	clientBase, clientPub := keygen("client")
	nodeBase, nodePub := keygen("node")
	strangerBase, _ := keygen("stranger")
	adminBase, adminPub := keygen("admin")
	clients := filepath.Join(dir, "clients")
	nodes := filepath.Join(dir, "nodes")
	admins := filepath.Join(dir, "admins")
	if err := os.WriteFile(admins, []byte(adminPub.String()+" root\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(clients, []byte("# clients\n"+clientPub.String()+" alice\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(nodes, []byte(nodePub.String()+"\tworker-1\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var bOut, bErr testutil.Buffer
	exited := make(chan int, 2)
	go func() {
		exited <- run(ctx, []string{"broker", "--listen", "tcp://127.0.0.1:0", "--pub", "tcp://127.0.0.1:0",
			"--curve-secret", brokerBase + "_secret", "--authorized-clients", clients, "--authorized-nodes", nodes,
			"--authorized-admins", admins, "--log-level", "info"}, &stdio{out: &bOut, err: &bErr})
	}()
	var router, pub string
	testutil.Eventually(t, 10*time.Second, func() bool {
		f := strings.Fields(bOut.String())
		for i, w := range f {
			if w == "on" && i+2 < len(f) {
				router, pub = f[i+1], strings.TrimSuffix(f[i+3], ")")
				return true
			}
		}
		return false
	}, "broker never said where it listens: %q %q", bOut.String(), bErr.String())
	var nErr testutil.Buffer
	go func() {
		exited <- run(ctx, []string{"node", "--broker", router, "--sub", pub, "--curve-server", brokerBase,
			"--curve-secret", nodeBase + "_secret", "--log-level", "error"}, &stdio{out: &testutil.Buffer{}, err: &nErr})
	}()

	testutil.Eventually(t, 20*time.Second, func() bool {
		code, out, _ := runArgs(t, "call", "--timeout", "2s", "--broker", router, "--curve-server", brokerPub.String(),
			"--curve-secret", clientBase+"_secret", "add", "2", "3")
		return code == exitOK && out == "5\n"
	}, "CURVE client call never answered; broker stderr %q node stderr %q", bErr.String(), nErr.String())

	// Steering needs an admin key: the client's is refused, the admin's (--authorized-admins) is not.
	for _, k := range []struct {
		base string
		ok   bool
	}{{clientBase, false}, {adminBase, true}} {
		code, out, errOut := runArgs(t, "pause", "--timeout", "5s", "--broker", router, "--curve-server", brokerPub.String(), "--curve-secret", k.base+"_secret", "reports")
		if (code == exitOK) != k.ok {
			t.Fatalf("pause with %s: exit %d, stdout %q, stderr %q", filepath.Base(k.base), code, out, errOut)
		}
	}
	if code, _, errOut := runArgs(t, "resume", "--timeout", "5s", "--broker", router, "--curve-server", brokerPub.String(), "--curve-secret", adminBase+"_secret", "reports"); code != exitOK {
		t.Fatalf("resume with the admin key: exit %d, stderr %q", code, errOut)
	}

	// zerotask bench drives the existing CURVE broker with the client's keys.
	if code, out, errOut := runArgs(t, "bench", "--broker", router, "--curve-server", brokerPub.String(), "--curve-secret", clientBase+"_secret",
		"--tasks", "200", "--duration", "10s", "--phases", "sync", "--warmup", "10", "--json"); code != exitOK || !strings.Contains(out, `"tasks": 200,`) {
		t.Fatalf("bench against the CURVE broker: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	t.Setenv("ZEROTASK_CURVE_SERVER", brokerPub.String())
	t.Setenv("ZEROTASK_CURVE_SECRET", clientBase+"_secret")
	if code, out, errOut := runArgs(t, "call", "--timeout", "5s", "--broker", router, "add", "1", "1"); code != exitOK || out != "2\n" {
		t.Fatalf("call with keys from the environment: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	t.Setenv("ZEROTASK_CURVE_SECRET", strangerBase+"_secret")
	if code, out, _ := runArgs(t, "call", "--timeout", "1s", "--broker", router, "add", "1", "1"); code == exitOK {
		t.Fatalf("a key not listed got an answer: %q", out)
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return strings.Contains(bErr.String(), "CURVE key refused") },
		"the broker did not log the refused key: %q", bErr.String())
	t.Setenv("ZEROTASK_CURVE_SERVER", "")
	t.Setenv("ZEROTASK_CURVE_SECRET", "")
	if code, out, _ := runArgs(t, "call", "--timeout", "1s", "--broker", router, "add", "1", "1"); code == exitOK {
		t.Fatalf("a NULL client got an answer from a CURVE broker: %q", out)
	}

	// SIGHUP reads the lists again: the node's key is revoked, its connection closed, and a
	// call no longer finds a node to run it.
	if err := os.WriteFile(nodes, []byte("# nobody\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sighup(t)
	testutil.Eventually(t, 10*time.Second, func() bool { return strings.Contains(bErr.String(), "connections_closed=") },
		"no reload logged: %q", bErr.String())
	if !strings.Contains(bErr.String(), "connections_closed=2") { // the node's DEALER and SUB
		t.Fatalf("reload closed other than the node's two connections: %q", bErr.String())
	}
	if code, out, _ := runArgs(t, "call", "--timeout", "1s", "--broker", router, "--curve-server", brokerPub.String(),
		"--curve-secret", clientBase+"_secret", "add", "2", "3"); code == exitOK {
		t.Fatalf("a task ran after its node's key was revoked: %q", out)
	}
	stop()
	for range 2 {
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			t.Fatal("broker or node did not stop")
		}
	}
}
