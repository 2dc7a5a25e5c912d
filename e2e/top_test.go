//go:build linux

package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/zerotask/zerotask/internal/testutil"
)

// TestTopInPTY runs `zerotask top` in a pseudo-terminal against a broker and a node: it shows
// the node and its queue, redraws in place on the alternate screen, and exits with status 0
// on q, giving the terminal its screen back.
func TestTopInPTY(t *testing.T) {
	_, router, pub := startBinaryBroker(t)
	startBinaryNode(t, router, pub, "--name", "top-node-7")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, zerotaskBin, "top", "--broker", router, "--interval", "100ms")
	cmd.WaitDelay = 5 * time.Second
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: 132, Rows: 40})
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	var mu sync.Mutex
	var screen bytes.Buffer
	read := make(chan struct{})
	go func() {
		defer close(read)
		buf := make([]byte, 4096)
		for {
			n, err := tty.Read(buf)
			mu.Lock()
			screen.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	seen := func(s string) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			return strings.Contains(screen.String(), s)
		}
	}
	testutil.Eventually(t, 20*time.Second, seen("top-node-7"), "top shows the node; screen so far: %q", func() string { mu.Lock(); defer mu.Unlock(); return screen.String() }())
	// Each method the node serves has a queue row, and the screen is redrawn in place.
	testutil.Eventually(t, 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		s := screen.String()
		return strings.Contains(s, "\x1b[?1049h") && strings.Count(s, "\x1b[H") >= 3 && strings.Contains(s, "echo ")
	}, "top redraws in place with the node's queues")
	if _, err := io.WriteString(tty, "q"); err != nil {
		t.Fatal(err)
	}
	werr := cmd.Wait()
	var ee *exec.ExitError
	if werr != nil && !errors.As(werr, &ee) {
		t.Fatal(werr)
	}
	if werr != nil {
		t.Errorf("top exited with %v after q", werr)
	}
	if ctx.Err() != nil {
		t.Fatal("top did not exit on q")
	}
	tty.Close()
	<-read
	mu.Lock()
	defer mu.Unlock()
	if !strings.HasSuffix(strings.TrimRight(screen.String(), "\r\n"), "\x1b[?25h\x1b[?1049l") {
		t.Errorf("top did not leave the alternate screen on exit; output ends %q", tail(screen.String(), 80))
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
