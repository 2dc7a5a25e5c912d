package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/testutil"
)

// passwd runs `zerotask passwd name roles` with password on standard input.
func passwd(t *testing.T, name, roles, password string) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdin
	os.Stdin = r
	defer func() { os.Stdin = old; r.Close() }()
	if _, err := w.WriteString(password + "\n"); err != nil {
		t.Fatal(err)
	}
	w.Close()
	code, out, errOut := runArgs(t, "passwd", name, roles)
	if code != exitOK || strings.Contains(out, password) {
		t.Fatalf("passwd %s: exit %d, stdout %q, stderr %q", name, code, out, errOut)
	}
	return out
}

// TestPlainBrokerCommands: a broker with --plain-users (lines from zerotask passwd): the node
// user serves, the client user's call works with its password from the environment or a file,
// a wrong password and a client user acting as a node get nothing, and --plain-users with
// --curve-secret is a usage error.
func TestPlainBrokerCommands(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	file := "# users\n" + passwd(t, "alice", "client", "alice pw") + passwd(t, "worker", "node", "worker-pw")
	if err := os.WriteFile(users, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runArgs(t, "passwd", "bob", "root"); code != exitUsage || !strings.Contains(errOut, "role") {
		t.Fatalf("passwd with a bad role: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := runArgs(t, "broker", "--plain-users", users, "--curve-secret", users); code != exitUsage || !strings.Contains(errOut, "one mechanism") {
		t.Fatalf("--plain-users with --curve-secret: exit %d, stderr %q", code, errOut)
	}

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var bOut, bErr testutil.Buffer
	exited := make(chan int, 3)
	go func() {
		exited <- run(ctx, []string{"broker", "--listen", "tcp://127.0.0.1:0", "--pub", "tcp://127.0.0.1:0",
			"--plain-users", users, "--log-level", "info"}, &stdio{out: &bOut, err: &bErr})
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
	pwFile := filepath.Join(dir, "worker.pw")
	if err := os.WriteFile(pwFile, []byte("worker-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var nErr testutil.Buffer
	go func() {
		exited <- run(ctx, []string{"node", "--broker", router, "--sub", pub, "--plain-user", "worker",
			"--plain-password-file", pwFile, "--log-level", "error"}, &stdio{out: &testutil.Buffer{}, err: &nErr})
	}()
	t.Setenv("ZEROTASK_PLAIN_USER", "alice")
	t.Setenv("ZEROTASK_PLAIN_PASSWORD", "alice pw")
	testutil.Eventually(t, 20*time.Second, func() bool {
		code, out, _ := runArgs(t, "call", "--timeout", "2s", "--broker", router, "add", "2", "3")
		return code == exitOK && out == "5\n"
	}, "PLAIN client call never answered; broker stderr %q node stderr %q", bErr.String(), nErr.String())

	t.Setenv("ZEROTASK_PLAIN_PASSWORD", "wrong")
	if code, out, _ := runArgs(t, "call", "--timeout", "1s", "--broker", router, "add", "1", "1"); code == exitOK {
		t.Fatalf("a wrong password got an answer: %q", out)
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return strings.Contains(bErr.String(), "PLAIN credentials refused") },
		"the broker did not log the refused user: %q", bErr.String())

	// The client user cannot act as a node: its hello is refused and it serves nothing.
	t.Setenv("ZEROTASK_PLAIN_PASSWORD", "alice pw")
	var aErr testutil.Buffer
	nctx, nstop := context.WithCancel(ctx)
	go func() {
		exited <- run(nctx, []string{"node", "--broker", router, "--sub", pub, "--log-level", "warn"}, &stdio{out: &testutil.Buffer{}, err: &aErr})
	}()
	testutil.Eventually(t, 10*time.Second, func() bool { return strings.Contains(bErr.String(), "lacks the role") },
		"the broker did not refuse the client user's hello: %q", bErr.String())
	nstop()
	<-exited
	stop()
	for range 2 {
		<-exited
	}
}
