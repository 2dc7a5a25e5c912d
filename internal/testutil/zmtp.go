package testutil

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// maxProcLines bounds how many stdout lines a Proc keeps: a runaway child cannot exhaust the
// test's memory. Lines past the bound are counted in Dropped and otherwise discarded.
const maxProcLines = 1 << 16

// Proc is a child process that a test drives over a line protocol: commands go to its stdin,
// every stdout line is kept in order and read back with Next or Expect. The zmtp interop tests
// use it for their libzmq peers (a Python driver): the child prints "READY <value>" once it can
// be talked to.
//
// A Proc is killed by PID and waited for in the test's cleanup, whatever state it is in (also
// when stopped with SIGSTOP), so no child outlives its test.
type Proc struct {
	t     testing.TB
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser

	mu      sync.Mutex // guards lines, next, closed, dropped, stderr writes
	lines   []string
	next    int
	closed  bool // stdout reached EOF
	dropped int
	notify  chan struct{} // capacity 1: a new line arrived or stdout closed
	stderr  bytes.Buffer
	readerD chan struct{} // closed when the stdout reader goroutine returns
	inMu    sync.Mutex    // serializes writes to stdin
}

// StartProc starts name with args, waits up to ready for its "READY <value>" line and returns
// the process and value. It fails the test if the child exits or stays silent past ready. The
// child is killed (SIGKILL, by PID) and waited for when the test ends.
func StartProc(t testing.TB, ready time.Duration, name string, args ...string) (*Proc, string) {
	t.Helper()
	// The context is only a last resort for exec: the cleanup below kills by PID itself.
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 5 * time.Second
	p := &Proc{t: t, name: name, cmd: cmd, notify: make(chan struct{}, 1), readerD: make(chan struct{})}
	cmd.Stderr = lockedWriter{p}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatalf("%s: stdout pipe: %v", name, err)
	}
	p.stdin, err = cmd.StdinPipe()
	if err != nil {
		cancel()
		t.Fatalf("%s: stdin pipe: %v", name, err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", name, err)
	}
	go p.read(stdout)
	t.Cleanup(func() {
		p.kill()
		cancel()
	})

	rctx, rcancel := context.WithTimeout(context.Background(), ready)
	defer rcancel()
	line, err := p.Expect(rctx, "READY")
	if err != nil {
		t.Fatalf("%s %s: no READY line within %v: %v\nstderr:\n%s", name, strings.Join(args, " "), ready, err, p.Stderr())
	}
	return p, strings.TrimSpace(strings.TrimPrefix(line, "READY"))
}

// lockedWriter collects the child's stderr under the Proc's lock (exec copies it from a
// goroutine of its own).
type lockedWriter struct{ p *Proc }

func (w lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	if w.p.stderr.Len() < 1<<20 {
		w.p.stderr.Write(b)
	}
	return len(b), nil
}

func (p *Proc) read(r io.Reader) {
	defer close(p.readerD)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		p.mu.Lock()
		if len(p.lines) < maxProcLines {
			p.lines = append(p.lines, sc.Text())
		} else {
			p.dropped++
		}
		p.mu.Unlock()
		p.wake()
	}
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.wake()
}

func (p *Proc) wake() {
	select {
	case p.notify <- struct{}{}:
	default:
	}
}

// kill ends the child by PID and waits for it and for the stdout reader. Safe to call twice.
func (p *Proc) kill() {
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Kill() // SIGKILL also ends a SIGSTOPped process
	}
	_ = p.stdin.Close()
	select {
	case <-p.readerD:
	case <-time.After(10 * time.Second):
		p.t.Errorf("%s (pid %d): stdout still open 10s after SIGKILL", p.name, p.PID())
	}
	_ = p.cmd.Wait() // reaps the child; error is the kill signal
}

// PID returns the child's process id.
func (p *Proc) PID() int {
	if p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Signal sends sig to the child (by PID), e.g. syscall.SIGSTOP / SIGCONT.
func (p *Proc) Signal(sig os.Signal) error {
	return p.cmd.Process.Signal(sig)
}

// Send writes one command line to the child's stdin.
func (p *Proc) Send(format string, args ...any) error {
	p.inMu.Lock()
	defer p.inMu.Unlock()
	_, err := fmt.Fprintf(p.stdin, format+"\n", args...)
	return err
}

// ErrProcExited reports that the child closed its stdout before the expected line came.
var ErrProcExited = errors.New("testutil: child process closed its stdout")

// Next returns the next unread stdout line, waiting until ctx ends.
func (p *Proc) Next(ctx context.Context) (string, error) {
	for {
		p.mu.Lock()
		if p.next < len(p.lines) {
			l := p.lines[p.next]
			p.next++
			p.mu.Unlock()
			return l, nil
		}
		closed := p.closed
		p.mu.Unlock()
		if closed {
			return "", ErrProcExited
		}
		select {
		case <-p.notify:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

// Expect returns the next unread line that starts with prefix, skipping (and consuming) the
// lines before it, waiting until ctx ends.
func (p *Proc) Expect(ctx context.Context, prefix string) (string, error) {
	for {
		l, err := p.Next(ctx)
		if err != nil {
			return "", fmt.Errorf("waiting for %q: %w", prefix, err)
		}
		if strings.HasPrefix(l, prefix) {
			return l, nil
		}
	}
}

// Lines returns a copy of every stdout line so far, read or not.
func (p *Proc) Lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// Seen reports whether any stdout line so far (read or not) starts with prefix.
func (p *Proc) Seen(prefix string) bool {
	for _, l := range p.Lines() {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// Stderr returns what the child wrote to stderr so far (at most 1 MiB).
func (p *Proc) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}
