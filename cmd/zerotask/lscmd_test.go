package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/testutil"
)

// TestLsAndRequeueTables: on a terminal `zerotask ls` prints a table ending in a count, and
// `zerotask requeue` a sentence; off one, JSON lines.
func TestLsAndRequeueTables(t *testing.T) {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var upOut, upErr testutil.Buffer
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, []string{"up", "--listen", "tcp://127.0.0.1:0", "--pub", "tcp://127.0.0.1:0", "--log-level", "error"}, &stdio{out: &upOut, err: &upErr})
	}()
	var m []string
	testutil.Eventually(t, 10*time.Second, func() bool {
		m = listening.FindStringSubmatch(upOut.String())
		return m != nil
	}, "zerotask up never said where it listens: stdout %q, stderr %q", upOut.String(), upErr.String())
	router := m[1]
	code, out, errOut := runArgs(t, "submit", "--broker", router, "add", "1", "2", "--delay", "1h")
	id := strings.TrimSpace(out)
	if code != exitOK || id == "" {
		t.Fatalf("submit: exit %d, %q", code, errOut)
	}
	code, out, _ = runTTY(t, "ls", "--broker", router)
	if code != exitOK || !strings.HasPrefix(out, "ID ") || !strings.Contains(out, id+"  QUEUED  add") || !strings.HasSuffix(out, "1 task(s)\n") {
		t.Fatalf("ls on a terminal: exit %d, stdout %q", code, out)
	}
	code, out, _ = runArgs(t, "ls", "--broker", router, "--state", "QUEUED")
	if code != exitOK || !strings.HasPrefix(out, `{"id":"`+id+`"`) || strings.Count(out, "\n") != 1 {
		t.Fatalf("ls off a terminal: exit %d, stdout %q", code, out)
	}
	if code, out, _ := runTTY(t, "revoke", "--broker", router, id); code != exitOK {
		t.Fatalf("revoke: exit %d, %q", code, out)
	}
	if code, out, _ := runTTY(t, "requeue", "--broker", router, id); code != exitOK || out != "1 task(s) requeued\n" {
		t.Fatalf("requeue on a terminal: exit %d, stdout %q", code, out)
	}
	if code, out, _ := runArgs(t, "ls", "--broker", router, "--limit", "0"); code != exitUsage {
		t.Fatalf("ls --limit 0: exit %d, stdout %q", code, out)
	}
	stop()
	if code := <-exited; code != exitOK {
		t.Fatalf("up exited %d: %s", code, upErr.String())
	}
}
