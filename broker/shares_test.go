package broker

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/protocol"
)

// TestFairShares: 10 greedy clients each try to take half of the methods table and half of
// the result waits; each gets its ClientShare (5%) and then -32001 with data naming its share,
// and a polite client that comes after them never gets -32001: the tables have room for it.
func TestFairShares(t *testing.T) {
	const table, greedy = 200, 10
	const tries = table / 2
	b := startBroker(t, Config{MaxMethods: table, MaxWaiting: table})
	share := table * DefaultClientShare / 100
	// A submitted task that stays queued: what the waits wait for.
	setup := dealer(t, b)
	id := submit(t, setup, "pending", "[]")
	waitReq := func(n int) string {
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":"w%d","method":"broker.result","params":{"id":%q,"wait_ms":60000}}`, n, id)
	}
	for g := range greedy {
		c := dealer(t, b)
		for j := range tries {
			c.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"g%d-%d"}`, j, g, j))
			c.send(waitReq(j))
		}
		refused := map[string]int{}
		for range 2 * (tries - share) {
			r := decodeResp(t, c.recv())
			if r.Error == nil || r.Error.Code != CodeQueueFull {
				t.Fatalf("greedy client %d: %+v, want -32001", g, r)
			}
			refused[string(r.Error.Data)]++
		}
		if refused[`{"budget":"client_methods"}`] != tries-share || refused[`{"budget":"client_waits"}`] != tries-share {
			t.Fatalf("greedy client %d refused %v, want %d of each share", g, refused, tries-share)
		}
		c.none()
	}
	if s := b.Stats(); s.Methods != 1+greedy*share || s.Waiting != greedy*share {
		t.Fatalf("methods %d and waits %d held, want %d and %d", s.Methods, s.Waiting, 1+greedy*share, greedy*share)
	}
	polite := dealer(t, b)
	for j := range share {
		polite.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"polite-%d"}`, j, j))
		polite.send(waitReq(j))
	}
	polite.none()
	if s := b.Stats(); s.Methods != 1+(greedy+1)*share || s.Waiting != (greedy+1)*share {
		t.Fatalf("the polite client's methods and waits are not all held: %+v", s)
	}
}

// TestNodeHelloFailsWithoutRoom: a node's hello that cannot register its methods (the
// methods table full) is refused with -32001 and the node is not registered, instead of a
// hello that succeeds while the node serves nothing; once there is room it registers.
func TestNodeHelloFailsWithoutRoom(t *testing.T) {
	b := startBroker(t, Config{MaxMethods: 2, ClientShare: 100})
	c := dealer(t, b)
	c.send(`{"jsonrpc":"2.0","id":1,"method":"m1"}`)
	c.send(`{"jsonrpc":"2.0","id":2,"method":"m2"}`)
	// The two calls travel on another connection than the hello: they must have filled the
	// table before the hello is sent.
	testutil.Eventually(t, 10*time.Second, func() bool { return b.Stats().Methods == 2 }, "the two calls' methods are not registered")
	n := dealer(t, b)
	hello := `{"jsonrpc":"2.0","id":1,"method":"` + protocol.MethodHello + `","params":{"role":"node","methods":["m1","x"]}}`
	r := decodeResp(t, n.call(hello))
	if r.Error == nil || r.Error.Code != CodeQueueFull || !strings.Contains(r.Error.Message, "methods") {
		t.Fatalf("hello with no room: %+v, want -32001 too many methods", r)
	}
	if s := b.Stats(); s.Nodes != 0 || s.Methods != 2 {
		t.Fatalf("after the refused hello: %d nodes, %d methods; want 0 and 2", s.Nodes, s.Methods)
	}
	// Its existing method m1 must not have gained a server either: the task stays queued.
	if r := decodeResp(t, n.call(strings.Replace(hello, `,"x"`, ``, 1))); r.Error != nil {
		t.Fatalf("hello for an existing method: %+v", r.Error)
	}
	if s := b.Stats(); s.Nodes != 1 {
		t.Fatalf("nodes %d after a hello with room, want 1", s.Nodes)
	}
}

// TestTaskBytesBudget: the live tasks' bytes are bounded by MaxTaskBytes, tested at the bound:
// three tasks of 100 KB (a 128 KiB buffer each) fit a budget of exactly three, the fourth is
// refused with -32001 naming the budget and queues nothing, and a finished task makes room.
func TestTaskBytesBudget(t *testing.T) {
	b := startBroker(t, Config{MaxTaskBytes: 3 * taskCost(128<<10), MaxInFlightBytes: 1 << 30})
	c := dealer(t, b)
	params := stringParams("p", 100_000)
	for i := range 3 {
		c.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"echo","params":%s}`, i, params))
	}
	r := decodeResp(t, c.call(`{"jsonrpc":"2.0","id":3,"method":"echo","params":`+params+`}`))
	if r.Error == nil || r.Error.Code != CodeQueueFull || string(r.Error.Data) != `{"budget":"task_bytes"}` {
		t.Fatalf("fourth task: %+v, want -32001 task_bytes", r)
	}
	if s := b.Stats(); s.Queued != 3 {
		t.Fatalf("%d queued, want 3", s.Queued)
	}
	n := newNode(t, b, "n", "echo")
	n.credit(1)
	ts := n.collect(1)
	n.result(ts[0].ID, "1")
	if r := decodeResp(t, c.recv()); r.Error != nil {
		t.Fatalf("reply %+v", r.Error)
	}
	c.send(`{"jsonrpc":"2.0","id":4,"method":"echo","params":` + params + `}`)
	c.none()
	if s := b.Stats(); s.Queued+s.Running != 3 {
		t.Fatalf("after a task finished, %d queued and %d running, want 3 in all", s.Queued, s.Running)
	}
}

// TestManyWaitsOnOneTaskLeave: 10 clients that hold 100,000 broker.result waits on one task
// (each its in-flight limit) and leave cost the broker time in proportion to their waits,
// not to their square (a wait leaves its task's list in O(1)): every wait is released, and
// another client's call answered, well within the deadline.
func TestManyWaitsOnOneTaskLeave(t *testing.T) {
	const clients, each = 10, DefaultMaxInFlightPerClient
	b := startBroker(t, Config{MaxWaiting: clients * each, ClientShare: 100})
	setup := dealer(t, b)
	id := submit(t, setup, "pending", "[]")
	greedy := make([]*tpeer, clients)
	batch := make([]string, 0, 1000)
	for g := range greedy {
		greedy[g] = dealer(t, b)
		for i := 0; i < each; i += cap(batch) {
			batch = batch[:0]
			for j := range cap(batch) {
				batch = append(batch, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"broker.result","params":{"id":%q,"wait_ms":600000}}`, i+j, id))
			}
			greedy[g].send("[" + strings.Join(batch, ",") + "]")
		}
	}
	testutil.Eventually(t, 60*time.Second, func() bool { return b.Stats().Waiting == clients*each }, "the waits are not all held: %d", b.Stats().Waiting)
	start := time.Now()
	for _, g := range greedy {
		g.s.Close()
	}
	testutil.Eventually(t, 60*time.Second, func() bool { return b.Stats().Waiting == 0 }, "the gone clients' waits are held: %d", b.Stats().Waiting)
	left := time.Since(start)
	if r := decodeResp(t, setup.call(`{"jsonrpc":"2.0","id":1,"method":"broker.stats"}`)); r.Error != nil {
		t.Fatalf("broker.stats after the greedy clients left: %+v", r.Error)
	}
	t.Logf("%d waits on one task released %v after their clients left", clients*each, left)
	if bound := map[bool]time.Duration{false: 5 * time.Second, true: 20 * time.Second}[raceEnabled]; left > bound {
		t.Fatalf("releasing %d waits took %v, want under %v", clients*each, left, bound)
	}
}
