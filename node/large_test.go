package node_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/zerotask/zerotask/client"
	"github.com/zerotask/zerotask/dispatch"
	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/node"
)

// echoParams returns params ["<token>xxx..."] of exactly size bytes, and the result echo
// answers for them.
func echoParams(token string, size int) (params, result []byte) {
	s := `"` + token + strings.Repeat("x", size-4-len(token)) + `"`
	return []byte("[" + s + "]"), []byte(s)
}

// TestLargeTasks: tasks of 500 KiB, 700 KiB and 1 MiB - 200 bytes, queued before a node
// connects and then sent while it runs, all end with their own answers (echo of a unique
// token), and the node's connection never drops (one hello). With default limits everywhere:
// each round has a client of its own, since one client's calls in flight are bounded by their
// bytes (broker MaxInFlightBytes, 4 MiB) and the two rounds together pass that.
func TestLargeTasks(t *testing.T) {
	b := startBroker(t)
	ctx := testutil.Context(t, waitLong)
	sizes := []int{500 << 10, 700 << 10, 1<<20 - 200}

	var wg sync.WaitGroup
	run := func(round string) {
		c := dial(t, b)
		for i, size := range sizes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				params, want := echoParams(fmt.Sprintf("%s-%d-", round, i), size)
				got, err := c.CallRaw(ctx, nil, "echo", params)
				if err != nil || string(got) != string(want) {
					t.Errorf("%s task %d (%d bytes): %d bytes %.40q, %v; want its own echo", round, i, size, len(got), got, err)
				}
			}()
		}
	}
	run("queued")
	testutil.Eventually(t, waitLong, func() bool { return b.Stats().Queued == len(sizes) }, "the tasks queued")
	n, _ := startNode(t, b, node.Config{Concurrency: 2})
	run("running")
	wg.Wait()
	if s := n.Stats(); s.Hellos != 1 || s.Done != uint64(2*len(sizes)) {
		t.Errorf("node stats %+v: want one hello (no dropped connection) and %d tasks done", s, 2*len(sizes))
	}
	if s := b.Stats(); s.Succeeded != uint64(2*len(sizes)) || s.Retried != 0 {
		t.Errorf("broker stats %+v", s)
	}
}

// TestTaskAtSizeBound: params of exactly MaxMsgSize - 159 - the method as a JSON string (the
// bound docs/protocol.md gives) travel to a real node and back; one byte more is refused at
// once with -32600 and never runs.
func TestTaskAtSizeBound(t *testing.T) {
	b := startBroker(t)
	n, _ := startNode(t, b, node.Config{Concurrency: 1})
	c := dial(t, b)
	ctx := testutil.Context(t, waitLong)
	bound := 1<<20 - 159 - len(`"echo"`)

	params, want := echoParams("at-bound-", bound)
	got, err := c.CallRaw(ctx, nil, "echo", params)
	if err != nil || string(got) != string(want) {
		t.Fatalf("task at the bound: %d bytes, %v; want its echo", len(got), err)
	}
	params, _ = echoParams("past-bound-", bound+1)
	_, err = c.CallRaw(ctx, nil, "echo", params)
	if !isCode(err, -32600) || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("task one byte past the bound: %v, want -32600 too large", err)
	}
	if s := n.Stats(); s.Hellos != 1 || s.Done != 1 {
		t.Errorf("node stats %+v: want one hello and one task done", s)
	}
}

// TestReplyPastClientLimit: a client announces its message size in its hello; a result that
// would pass it reaches the client as -32603 with the call's id, and the client's connection
// stays up for the next call.
func TestReplyPastClientLimit(t *testing.T) {
	b := startBroker(t)
	d := dispatch.New()
	if err := node.Builtins(d); err != nil {
		t.Fatal(err)
	}
	big := dispatch.HandlerFunc(func(_ context.Context, dst, _ []byte) ([]byte, error) {
		return append(append(append(dst, '"'), strings.Repeat("b", 8<<10)...), '"'), nil
	})
	if err := d.Register("big", big); err != nil {
		t.Fatal(err)
	}
	startNode(t, b, node.Config{Concurrency: 1, Dispatcher: d})
	ctx := testutil.Context(t, waitLong)
	c, err := client.Dial(ctx, b.Addr(), client.WithLogger(quiet), client.WithMaxMsgSize(4096))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.CallRaw(ctx, nil, "big", nil); !isCode(err, -32603) || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("a result past the client's 4 KiB: %v, want -32603 reply too large", err)
	}
	got, err := c.CallRaw(ctx, nil, "echo", []byte(`["still here"]`))
	if err != nil || string(got) != `"still here"` {
		t.Fatalf("the next call: %s, %v", got, err)
	}
	if s := b.Stats(); s.TooLarge != 1 {
		t.Errorf("Stats.TooLarge %d, want 1", s.TooLarge)
	}
}
