package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/zerotask/zerotask/broker"
	"github.com/zerotask/zerotask/client"
	"github.com/zerotask/zerotask/dispatch"
	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/node"
)

// TestStatusShowsProgress: a task that reports progress 10 times shows the last report in
// `zerotask status`, as JSON and in the table of a terminal, while it runs; a task submitted
// with --meta has it in its record.
func TestStatusShowsProgress(t *testing.T) {
	const wait = 10 * time.Second
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := broker.New(broker.Config{Listen: "tcp://127.0.0.1:0", Pub: "tcp://127.0.0.1:0", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Go(t, "broker Serve", wait, b.Serve)
	release := make(chan struct{})
	d := dispatch.New()
	d.MustRegister("steps", dispatch.HandlerFunc(func(ctx context.Context, dst, _ []byte) ([]byte, error) {
		for i := int64(1); i <= 10; i++ {
			dispatch.Progress(ctx, i, 10, "step "+string(rune('0'+i%10)))
		}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return append(dst, "true"...), nil
	}))
	n, err := node.New(node.Config{Broker: b.Addr(), Sub: b.PubAddr(), Dispatcher: d, Logger: quiet, HeartbeatInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Go(t, "node Serve", wait, n.Serve)
	defer close(release) // before the node stops (deferred calls run before cleanups)
	c, err := client.Dial(testutil.Context(t, wait), b.Addr(), client.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	h, err := c.Submit(testutil.Context(t, wait), "steps", nil)
	if err != nil {
		t.Fatal(err)
	}
	var out string
	testutil.Eventually(t, wait, func() bool {
		_, out, _ = runArgs(t, "status", "--broker", b.Addr(), h.ID())
		return strings.Contains(out, `"progress":{"done":10,"total":10,"note":"step 0"}`)
	}, "status shows the last progress report as JSON: %q", out)
	code, out, errOut := runTTY(t, "status", "--broker", b.Addr(), h.ID())
	if code != exitOK || !strings.Contains(out, "RUNNING") || !strings.Contains(out, "progress 10/10 (100%) step 0") {
		t.Errorf("status on a terminal: exit %d, stdout %q, stderr %q; want the last progress", code, out, errOut)
	}

	// submit --meta: the record carries the object as given; one that is not an object is a
	// usage error.
	const meta = `{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "user": 7}`
	code, out, errOut = runArgs(t, "submit", "--broker", b.Addr(), "--meta", meta, "steps")
	if code != exitOK {
		t.Fatalf("submit --meta: exit %d, stderr %q", code, errOut)
	}
	if _, out, _ = runArgs(t, "status", "--broker", b.Addr(), strings.TrimSpace(out)); !strings.Contains(out, `"meta":`+meta) {
		t.Errorf("status of a task submitted with --meta: %q", out)
	}
	if code, _, errOut = runArgs(t, "submit", "--broker", b.Addr(), "--meta", "[1]", "steps"); code != exitUsage || !strings.Contains(errOut, "--meta") {
		t.Errorf("submit --meta [1]: exit %d, stderr %q; want a usage error", code, errOut)
	}
}
