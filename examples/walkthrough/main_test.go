package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestWalkthrough(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	got := out.String()
	if !strings.HasPrefix(got, "add(5, 6) = 11\n") || !strings.HasSuffix(got, "sleep task: SUCCESS\nsleep returned 300\n") {
		t.Fatalf("unexpected output:\n%s", got)
	}
	// QUEUED may pass before the first look; RUNNING lasts 300ms and cannot be missed.
	if !strings.Contains(got, "sleep task: RUNNING\n") {
		t.Fatalf("never saw RUNNING:\n%s", got)
	}
}

// TestWalkthroughFailure: a task that fails ends the watch loop with FAILURE and its error
// (it must not wait for a SUCCESS that never comes).
func TestWalkthroughFailure(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	err := walk(ctx, &out, -1)
	if err == nil || !strings.Contains(err.Error(), "cannot sleep -1 ms") {
		t.Fatalf("walk = %v, want the task's error\n%s", err, out.String())
	}
	if !strings.HasSuffix(out.String(), "sleep task: FAILURE\n") {
		t.Fatalf("unexpected output:\n%s", out.String())
	}
}
