// Package testutil holds helpers shared by ZeroTask's tests: polling a condition with a deadline
// instead of sleeping, finding external peers (python3 with pyzmq, redis-server) in a way that
// fails under CI instead of skipping, and free loopback ports.
package testutil

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// InCI reports whether the tests run under CI (CI=true). Under CI a missing external dependency
// is a failure, never a skip.
func InCI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v == "true" || v == "1" || v == "yes"
}

// Missing reports a missing external dependency: t.Fatalf under CI, t.Skipf elsewhere.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("missing dependency (CI=true makes this a failure): %s", msg)
	}
	t.Skipf("missing dependency: %s (set CI=true to make this a failure)", msg)
}

// Eventually polls cond every few milliseconds until it returns true or the timeout passes, in
// which case the test fails with msg. It is the replacement for sleeping in tests.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	if !Poll(timeout, cond) {
		t.Fatalf("condition not met within %v: %s", timeout, fmt.Sprintf(format, args...))
	}
}

// Poll polls cond with a short, growing interval until it returns true (true) or the timeout
// passes (false).
func Poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	wait := time.Millisecond
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(wait) // polling interval, not synchronization
		if wait < 20*time.Millisecond {
			wait *= 2
		}
	}
}

// Context returns a context that ends after d, cancelled when the test ends.
func Context(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// FreeEndpoint returns "tcp://127.0.0.1:PORT" for a port that was free a moment ago.
func FreeEndpoint(t testing.TB) string {
	return fmt.Sprintf("tcp://127.0.0.1:%d", FreePort(t))
}

// PythonZMQ returns the path of a python3 interpreter that can import zmq (Debian's
// python3-zmq lives under /usr/bin/python3, which may differ from the python3 on PATH). When
// none is found it reports the dependency as missing (a failure under CI).
func PythonZMQ(t testing.TB) string {
	t.Helper()
	candidates := []string{os.Getenv("ZEROTASK_PYTHON"), "/usr/bin/python3", "python3"}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		p, err := exec.LookPath(c)
		if err != nil {
			continue
		}
		if exec.Command(p, "-c", "import zmq").Run() == nil {
			return p
		}
	}
	Missing(t, "python3 with pyzmq (apt-get install -y python3-zmq)")
	return ""
}

// Binary returns the path of an executable on PATH, or reports it missing (a failure under CI).
func Binary(t testing.TB, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "%s (%s)", name, install)
	}
	return p
}

// Buffer is a bytes.Buffer that a test may read while other goroutines write to it (a
// logger, a command's output).
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Go runs run (a node's Serve, say) on a goroutine until stop is called or the test ends; stop
// may be called more than once. stop cancels run's context and waits up to wait for it to
// return; an error from run (other than one wrapping context.Canceled, which is how a server
// says its context ended), or no return in time, fails the test, naming what ran.
func Go(t testing.TB, what string, wait time.Duration, run func(ctx context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil && !errors.Is(err, context.Canceled) {
					t.Errorf("%s: %v", what, err)
				}
			case <-time.After(wait):
				t.Errorf("%s did not return %v after its context ended", what, wait)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// VerifyTestMain runs the tests, then fails the run if any goroutine is left, waiting up to
// wait for goroutines to end first (goleak.Find itself waits only about a second): a Redis
// client that lost its connection may leave rueidis's delayed refresh sleeping for up to a
// second after Close, which then ends by itself. cleanup (may be nil) runs last.
func VerifyTestMain(m *testing.M, wait time.Duration, cleanup func()) {
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(wait)
		err := goleak.Find()
		for err != nil && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond) // polling for goroutines to end, bounded by wait
			err = goleak.Find()
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
			code = 1
		}
	}
	if cleanup != nil {
		cleanup()
	}
	os.Exit(code)
}

// SkipShort skips a long test (a drill, a second run of a suite) under go test -short, for a
// quick local pass. Under CI (CI=true) nothing may be skipped: -short there fails the test.
func SkipShort(t testing.TB, what string) {
	t.Helper()
	if !testing.Short() {
		return
	}
	if InCI() {
		t.Fatalf("%s: -short under CI would skip it (CI=true runs every test)", what)
	}
	t.Skipf("%s: skipped with -short", what)
}
