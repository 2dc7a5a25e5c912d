package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zerotask/zerotask/broker"
	"github.com/zerotask/zerotask/client"
	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/node"
	"github.com/zerotask/zerotask/zmtp"
)

// Each answer is its own task's, across broker restarts: a node that held a task of broker
// run A sends its answer after saying hello to run B, when run B has just handed it a new task
// (which took the same task number as run A's task when numbers restarted with every run).
// Run B must ignore the old answer: the new task ends with its own result.

// restartNode is a node on a raw DEALER that follows protocol.md by hand: hello and credit on
// every new connection, tasks answered only when the test says so.
type restartNode struct {
	s         *zmtp.Socket
	connected chan struct{}
}

func newRestartNode(t testing.TB, endpoint string) *restartNode {
	t.Helper()
	n := &restartNode{connected: make(chan struct{}, 16)}
	n.s = zmtp.NewDealer(zmtp.Options{
		Identity:          []byte("restart-node"),
		ReconnectInterval: 10 * time.Millisecond,
		// Each run lives one cycle, shorter than a grown backoff, which then never resets:
		// without a small bound every reconnection waited the default 5 s.
		ReconnectIntervalMax: 50 * time.Millisecond,
		Logger:               testLogger(t),
		Monitor: func(e zmtp.Event) {
			if e.Type == zmtp.EventConnected {
				select {
				case n.connected <- struct{}{}:
				default:
				}
			}
		},
	})
	if err := n.s.Connect(endpoint); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.s.Close() })
	return n
}

func (n *restartNode) send(t testing.TB, body string) {
	t.Helper()
	if err := n.s.SendFrames(testutil.Context(t, 5*time.Second), []byte(body)); err != nil {
		t.Fatalf("node send: %v", err)
	}
}

// hello waits for a new connection, then says hello and grants credit.
func (n *restartNode) hello(t testing.TB) {
	t.Helper()
	select {
	case <-n.connected:
	case <-time.After(10 * time.Second):
		t.Fatal("node: no connection to the broker within 10s")
	}
	n.send(t, `{"jsonrpc":"2.0","id":"hello","method":"broker.hello","params":{"role":"node","name":"restart-node","methods":["echo"],"concurrency":4}}`)
	n.send(t, `{"jsonrpc":"2.0","method":"broker.credit","params":[1000]}`)
}

// handout is a task as the node received it.
type handout struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params []string        `json:"params"`
}

// await receives until the task whose token is want arrives, answering every other task with
// its own token (durable mode hands out an earlier run's tasks again), and returns it.
func (n *restartNode) await(t testing.TB, want string) handout {
	t.Helper()
	ctx := testutil.Context(t, 10*time.Second)
	for {
		m, err := n.s.Recv(ctx)
		if err != nil {
			t.Fatalf("node: no task %q: %v", want, err)
		}
		body := append([]byte(nil), m.Frames[len(m.Frames)-1]...)
		m.Release()
		var tasks []handout
		if body[0] == '[' {
			_ = json.Unmarshal(body, &tasks)
		} else {
			var one handout
			_ = json.Unmarshal(body, &one)
			tasks = append(tasks, one)
		}
		var got *handout
		for i, h := range tasks {
			if h.Method != "echo" || len(h.Params) != 1 {
				continue // a reply to hello or credit, a notice
			}
			if h.Params[0] == want {
				got = &tasks[i]
				continue
			}
			n.answer(t, h.ID, h.Params[0])
		}
		if got != nil {
			return *got
		}
	}
}

func (n *restartNode) answer(t testing.TB, id json.RawMessage, result string) {
	t.Helper()
	n.send(t, fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":%q}`, id, result))
}

// submitEcho submits echo(token) through a fresh client connection and returns the task id.
func submitEcho(t testing.TB, router, token string) (*rawPeer, string) {
	t.Helper()
	c := newRawPeer(t, router, 0)
	r := c.call(t, fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"broker.submit","params":{"method":"echo","params":[%q]}}`, token))
	var sub struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(r.Result, &sub); err != nil || sub.ID == "" {
		t.Fatalf("submit %s: %s", token, r.raw)
	}
	return c, sub.ID
}

// TestOldAnswerAfterRestart runs the restart sequence 100 times in memory mode and 20 times
// in durable mode (Redis; each restart under the same owner id waits out the 2.5 s probe of
// the killed run's lease, so 100 cycles would cost CI over 4 minutes): every new task's result
// is its own. ZEROTASK_RESTART_CYCLES sets the cycles of both.
func TestOldAnswerAfterRestart(t *testing.T) {
	testutil.SkipShort(t, "process drill")
	for _, mode := range []string{"memory", "durable"} {
		t.Run(mode, func(t *testing.T) {
			cycles := map[string]int{"memory": 100, "durable": 20}[mode]
			if v := os.Getenv("ZEROTASK_RESTART_CYCLES"); v != "" {
				n, err := strconv.Atoi(v)
				if err != nil || n < 1 {
					t.Fatalf("ZEROTASK_RESTART_CYCLES=%q: want a positive integer", v)
				}
				cycles = n
			}
			router := testutil.FreeEndpoint(t)
			args := []string{"broker", "--listen", router, "--pub", "none", "--log-level", "warn"}
			if mode == "durable" {
				url, _ := startRedisStore(t)
				args = append(args, "--store", url, "--owner", "restart-broker")
			}
			b, _ := startDaemon(t, brokerLine, args...)
			n := newRestartNode(t, router)
			n.hello(t)
			start := time.Now()
			wrong := 0
			for i := range cycles {
				tokA, tokB := fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i)
				// Run A hands task A to the node, which holds it (a long sleep).
				ca, _ := submitEcho(t, router, tokA)
				a := n.await(t, tokA)
				ca.s.Close()
				// kill -9, and a new run on the same endpoint.
				kill9(t, b)
				b, _ = startDaemon(t, brokerLine, args...)
				n.hello(t)
				// Run B hands task B to the node; the node sends its answer to task A first.
				cb, idB := submitEcho(t, router, tokB)
				bt := n.await(t, tokB)
				n.answer(t, a.ID, tokA)
				n.answer(t, bt.ID, tokB)
				r := cb.call(t, fmt.Sprintf(`{"jsonrpc":"2.0","id":2,"method":"broker.result","params":{"id":%q,"wait_ms":5000}}`, idB))
				var rec struct {
					State  string          `json:"state"`
					Result json.RawMessage `json:"result"`
				}
				if err := json.Unmarshal(r.Result, &rec); err != nil {
					t.Fatalf("cycle %d: result of %s: %s", i, idB, r.raw)
				}
				if rec.State != "SUCCESS" || string(rec.Result) != fmt.Sprintf("%q", tokB) {
					wrong++
					t.Errorf("cycle %d: task B (%s, id at the node %s) ended %s with %s; its own answer is %q (task A's id was %s)",
						i, idB, bt.ID, rec.State, rec.Result, tokB, a.ID)
				}
				cb.s.Close()
				if strings.TrimSpace(string(a.ID)) == strings.TrimSpace(string(bt.ID)) {
					t.Errorf("cycle %d: tasks of two broker runs were handed out under one id %s", i, a.ID)
				}
			}
			t.Logf("%s: %d restart cycles in %v, %d wrong answers", mode, cycles, time.Since(start).Round(time.Millisecond), wrong)
		})
	}
}

// TestStopIsNotAFailure: a node that stops gracefully hands back the tasks it holds but did
// not start; they are not charged an attempt, so with max_attempts 1 they run later on another
// node and end SUCCESS.
func TestStopIsNotAFailure(t *testing.T) {
	b, _ := startBroker(t, broker.Config{})
	c := dial(t, b.Addr())
	n1, stop1 := startNode(t, b, node.Config{Name: "stopping", Concurrency: 1, Prefetch: 2, FixedCredit: true})
	waitConnected(t, n1)
	ctx := testutil.Context(t, 30*time.Second)
	var hs []*client.Handle
	for i := range 3 {
		h, err := c.Submit(ctx, "sleep", []any{client.Named(map[string]int{"ms": 300, "tag": i})}, client.MaxAttempts(1))
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	// The node holds all three (concurrency 1 + prefetch 2) and runs the first.
	testutil.Eventually(t, 10*time.Second, func() bool { s := n1.Stats(); return s.Running == 1 && s.Held == 3 }, "the node holds 3 tasks and runs one")
	stop1()
	n2, _ := startNode(t, b, node.Config{Name: "next", Concurrency: 2})
	waitConnected(t, n2)
	for i, h := range hs {
		var ms float64
		if err := h.Wait(ctx, &ms); err != nil {
			t.Errorf("task %d: %v", i, err)
		}
	}
	if s := b.Stats(); s.HandedBack != 2 || s.Retried != 0 {
		t.Errorf("handed back %d, retried %d; want 2 handed back (the unstarted ones), none retried", s.HandedBack, s.Retried)
	}
}

// TestGoNodeOldAnswerAfterRestart is the restart sequence with the Go node (a `zerotask node`
// process): its sleep of broker run A finishes after its hello to run B, which has just handed
// it a sleep of its own. The new sleep ends with its own result, and the node does not even
// send its old answer to run B (stale stays 0: an answer goes only to the run that handed the
// task out).
func TestGoNodeOldAnswerAfterRestart(t *testing.T) {
	testutil.SkipShort(t, "process drill")
	router := testutil.FreeEndpoint(t)
	args := []string{"broker", "--listen", router, "--pub", "none", "--log-level", "warn"}
	b, _ := startDaemon(t, brokerLine, args...)
	startBinaryNode(t, router, "none", "--concurrency", "2")
	const cycles = 5
	for i := range cycles {
		ca := newRawPeer(t, router, 0)
		ca.send(t, []byte(`{"jsonrpc":"2.0","id":1,"method":"broker.submit","params":{"method":"sleep","params":[700]}}`))
		ca.recv(t, 10*time.Second)
		testutil.Eventually(t, 10*time.Second, func() bool {
			return strings.Contains(ca.call(t, `{"jsonrpc":"2.0","id":2,"method":"broker.stats"}`).raw, `"running":1`)
		}, "cycle %d: the node holds run A's sleep", i)
		ca.s.Close()
		kill9(t, b)
		b, _ = startDaemon(t, brokerLine, args...)
		cb := newRawPeer(t, router, 0)
		r := cb.call(t, `{"jsonrpc":"2.0","id":1,"method":"sleep","params":[1200],"timeout_ms":20000}`)
		if string(r.Result) != "1200" {
			t.Fatalf("cycle %d: run B's sleep 1200 answered %s", i, r.raw)
		}
		var st struct {
			Stale uint64 `json:"stale"`
		}
		if err := json.Unmarshal(cb.call(t, `{"jsonrpc":"2.0","id":2,"method":"broker.stats"}`).Result, &st); err != nil || st.Stale != 0 {
			t.Fatalf("cycle %d: run B counted %d stale answers (%v): the node sent run A's answer to run B", i, st.Stale, err)
		}
		cb.s.Close()
	}
}
