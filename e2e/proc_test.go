package e2e

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// daemon is a long-running `zerotask` child (broker, node, up): its stdout lines are collected,
// its stderr kept for failure messages, and it is killed by PID and reaped when the test ends.
type daemon struct {
	cmd    *exec.Cmd
	mu     sync.Mutex // guards lines and stderr
	lines  []string
	stderr bytes.Buffer
	newOut chan struct{} // capacity 1: a line arrived or stdout closed
	closed chan struct{} // closed when stdout reaches EOF
	exited chan struct{} // closed when Wait returned
	err    error         // Wait's result, valid after exited
}

// startDaemon starts the zerotask binary with args and waits until a stdout line matches ready,
// returning the line's first submatch group (or the whole line).
func startDaemon(t testing.TB, ready *regexp.Regexp, args ...string) (*daemon, []string) {
	t.Helper()
	return startDaemonEnv(t, nil, ready, args...)
}

// startDaemonEnv is startDaemon with extra environment variables.
func startDaemonEnv(t testing.TB, env []string, ready *regexp.Regexp, args ...string) (*daemon, []string) {
	t.Helper()
	d := &daemon{cmd: exec.Command(zerotaskBin, args...), newOut: make(chan struct{}, 1),
		closed: make(chan struct{}), exited: make(chan struct{})}
	if len(env) > 0 {
		d.cmd.Env = append(os.Environ(), env...)
	}
	d.cmd.Stderr = lockedBuffer{d}
	out, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start zerotask %s: %v", strings.Join(args, " "), err)
	}
	go d.read(out)
	go func() {
		<-d.closed // Wait closes the pipe: read everything first
		d.err = d.cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		_ = d.cmd.Process.Kill() // by PID; harmless if it already exited
		select {
		case <-d.exited:
		case <-time.After(10 * time.Second):
			t.Errorf("zerotask %s (pid %d) not reaped 10s after SIGKILL", args[0], d.cmd.Process.Pid)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	m, err := d.expect(ctx, ready)
	if err != nil {
		t.Fatalf("zerotask %s: no line matching %q: %v\nstdout: %q\nstderr:\n%s", strings.Join(args, " "), ready, err, d.Lines(), d.Stderr())
	}
	return d, m
}

type lockedBuffer struct{ d *daemon }

func (w lockedBuffer) Write(b []byte) (int, error) {
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	if w.d.stderr.Len() < 1<<20 {
		w.d.stderr.Write(b)
	}
	return len(b), nil
}

func (d *daemon) read(r io.Reader) {
	defer close(d.closed)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		d.mu.Lock()
		if len(d.lines) < 10_000 {
			d.lines = append(d.lines, sc.Text())
		}
		d.mu.Unlock()
		select {
		case d.newOut <- struct{}{}:
		default:
		}
	}
}

// expect waits for a stdout line matching re and returns its submatches.
func (d *daemon) expect(ctx context.Context, re *regexp.Regexp) ([]string, error) {
	seen := 0
	for {
		d.mu.Lock()
		lines := d.lines[seen:]
		seen = len(d.lines)
		d.mu.Unlock()
		for _, l := range lines {
			if m := re.FindStringSubmatch(l); m != nil {
				return m, nil
			}
		}
		select {
		case <-d.newOut:
		case <-d.closed:
			d.mu.Lock()
			more := len(d.lines) > seen
			d.mu.Unlock()
			if !more {
				return nil, io.EOF
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Lines returns the stdout lines so far.
func (d *daemon) Lines() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.lines...)
}

// Stderr returns what the child wrote on stderr so far.
func (d *daemon) Stderr() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stderr.String()
}

// zerotask runs the binary to completion (bounded by timeout) and returns its exit status,
// stdout and stderr.
func zerotask(t testing.TB, timeout time.Duration, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, zerotaskBin, args...)
	cmd.WaitDelay = 5 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("zerotask %s: still running after %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), timeout, out.String(), errb.String())
	}
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("zerotask %s: %v", strings.Join(args, " "), err)
		}
		code = ee.ExitCode()
	}
	return code, out.String(), errb.String()
}

// brokerLine matches what `zerotask broker` and `zerotask up` print once they listen.
var brokerLine = regexp.MustCompile(`^broker listening on (tcp://\S+) \(PUB (tcp://\S+|none)\)`)

// startBinaryBroker starts `zerotask broker` on free ports and returns its ROUTER and PUB
// endpoints.
func startBinaryBroker(t testing.TB, extra ...string) (d *daemon, router, pub string) {
	t.Helper()
	args := append([]string{"broker", "--listen", "tcp://127.0.0.1:0", "--pub", "tcp://127.0.0.1:0", "--log-level", "warn"}, extra...)
	d, m := startDaemon(t, brokerLine, args...)
	return d, m[1], m[2]
}

// startBinaryNode starts `zerotask node` for the given endpoints.
func startBinaryNode(t testing.TB, router, pub string, extra ...string) *daemon {
	t.Helper()
	args := append([]string{"node", "--broker", router, "--sub", pub, "--log-level", "warn"}, extra...)
	d, _ := startDaemon(t, regexp.MustCompile(`^node serving `), args...)
	return d
}
