package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerotask/zerotask/broker"
	"github.com/zerotask/zerotask/dispatch"
	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/node"
	"github.com/zerotask/zerotask/zmtp"
)

// Tests of one client connected to several brokers (Dial with an endpoint list).

// liveBroker is a real broker on a free loopback port with one node of its own (the builtins),
// in process, stopped when the test ends.
type liveBroker struct {
	b    *broker.Broker
	n    *node.Node
	addr string

	cancelServe context.CancelFunc
	served      chan error
	cancelNode  context.CancelFunc
	ran         chan error
	stopOnce    sync.Once
}

func startLiveBroker(t testing.TB) *liveBroker {
	t.Helper()
	b, err := broker.New(broker.Config{Listen: "tcp://127.0.0.1:0", Pub: broker.PubDisabled, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	lb := &liveBroker{b: b, addr: b.Addr(), served: make(chan error, 1), ran: make(chan error, 1)}
	sctx, scancel := context.WithCancel(context.Background())
	lb.cancelServe = scancel
	go func() { lb.served <- b.Serve(sctx) }()
	d := dispatch.New()
	if err := node.Builtins(d); err != nil {
		t.Fatal(err)
	}
	n, err := node.New(node.Config{Broker: lb.addr, Sub: "none", Dispatcher: d, Concurrency: 8, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	lb.n = n
	nctx, ncancel := context.WithCancel(context.Background())
	lb.cancelNode = ncancel
	go func() { lb.ran <- n.Serve(nctx) }()
	t.Cleanup(lb.stop)
	testutil.Eventually(t, waitLong, func() bool { return n.Stats().Connected && b.Stats().Nodes == 1 },
		"node connected to broker %s", lb.addr)
	return lb
}

// crash stops the broker at once: its sockets close with calls in flight, as in a crash.
func (lb *liveBroker) crash() {
	lb.stopOnce.Do(func() {
		lb.cancelServe()
		<-lb.served
	})
}

// shutdown stops the broker gracefully (broker.Shutdown: -32003 for new tasks, running ones
// finish).
func (lb *liveBroker) shutdown(t testing.TB) {
	lb.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLong)
		defer cancel()
		if err := lb.b.Shutdown(ctx); err != nil {
			t.Errorf("broker shutdown: %v", err)
		}
		lb.cancelServe()
		<-lb.served
	})
}

// stop ends the node, then the broker.
func (lb *liveBroker) stop() {
	lb.cancelNode()
	<-lb.ran
	lb.crash()
}

// dialList dials a client to an endpoint list for the test's duration.
func dialList(t testing.TB, list string, opts ...Option) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	c, err := Dial(ctx, list, append([]Option{WithLogger(quiet), WithHeartbeat(time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// liveConns returns the client's count of connections up.
func liveConns(c *Client) int {
	c.out.mu.Lock()
	defer c.out.mu.Unlock()
	return c.out.live
}

// waitLive waits until the client has n connections up.
func waitLive(t testing.TB, c *Client, n int) {
	t.Helper()
	testutil.Eventually(t, waitLong, func() bool { return liveConns(c) == n }, "%d connections up (have %d)", n, liveConns(c))
}

// checkIdle fails unless every call has completed and given its slot back.
func checkIdle(t testing.TB, c *Client) {
	t.Helper()
	idle := func() bool {
		c.out.mu.Lock()
		defer c.out.mu.Unlock()
		return c.out.pending.len() == 0 && int(c.slots.used.Load()) == 0
	}
	if !testutil.Poll(waitLong, idle) {
		c.out.mu.Lock()
		t.Errorf("not idle: %d calls pending, %d slots taken", c.out.pending.len(), int(c.slots.used.Load()))
		c.out.mu.Unlock()
	}
}

func TestSplitEndpoints(t *testing.T) {
	cases := []struct {
		in   string
		want []string
		err  string // part of the error, "" for none
	}{
		{in: "tcp://127.0.0.1:5555", want: []string{"tcp://127.0.0.1:5555"}},
		{in: " tcp://127.0.0.1:5555 ", want: []string{"tcp://127.0.0.1:5555"}},
		{in: "tcp://a:1,tcp://b:2", want: []string{"tcp://a:1", "tcp://b:2"}},
		{in: "tcp://a:1 ,  tcp://b:2,ipc:///tmp/x", want: []string{"tcp://a:1", "tcp://b:2", "ipc:///tmp/x"}},
		{in: " ", err: "empty endpoint"},
		{in: "tcp://a:1,", err: "endpoint 2 of 2 is empty"},
		{in: ",tcp://a:1", err: "endpoint 1 of 2 is empty"},
		{in: "tcp://a:1, ,tcp://b:2", err: "endpoint 2 of 3 is empty"},
		{in: ",", err: "endpoint 1 of 2 is empty"},
		{in: "tcp://a:1, tcp://a:1", err: "tcp://a:1 listed twice"},
	}
	for _, tc := range cases {
		got, err := splitEndpoints(tc.in)
		switch {
		case tc.err == "" && (err != nil || !slices.Equal(got, tc.want)):
			t.Errorf("splitEndpoints(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("splitEndpoints(%q) = %q, %v; want an error with %q", tc.in, got, err, tc.err)
		}
	}
}

// TestDialBadList: a bad endpoint list fails at once (not when ctx ends), naming what is wrong,
// and leaves nothing running (goleak checks in TestMain).
func TestDialBadList(t *testing.T) {
	good := testutil.FreeEndpoint(t)
	cases := []struct {
		name, list, err string
	}{
		{"trailing comma", good + ",", "endpoint 2 of 2 is empty"},
		{"leading comma", "," + good, "endpoint 1 of 2 is empty"},
		{"empty middle", good + ", ," + good, "endpoint 2 of 3 is empty"},
		{"only spaces", "  ", "empty endpoint"},
		{"duplicate", good + " , " + good, "listed twice"},
		{"bad transport", good + ",udp://127.0.0.1:9", "udp://127.0.0.1:9"},
		{"no host", good + ",tcp://:5555", "tcp://:5555"},
		{"no port", "tcp://127.0.0.1," + good, "tcp://127.0.0.1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), waitLong)
			defer cancel()
			c, err := Dial(ctx, tc.list, WithLogger(quiet))
			if err == nil {
				c.Close()
				t.Fatalf("Dial(%q) succeeded", tc.list)
			}
			if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Dial(%q) waited for its context: %v", tc.list, err)
			}
			if !strings.Contains(err.Error(), tc.err) || !strings.HasPrefix(err.Error(), "client: dial") {
				t.Errorf("Dial(%q) error %q, want one starting %q and naming %q", tc.list, err, "client: dial", tc.err)
			}
		})
	}
}

// TestMultiDialOneDown: Dial succeeds through whichever listed broker is up, first or last.
func TestMultiDialOneDown(t *testing.T) {
	for _, downFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("downFirst=%v", downFirst), func(t *testing.T) {
			f := newFakeBroker(t)
			down := testutil.FreeEndpoint(t)
			list := f.Addr + "," + down
			if downFirst {
				list = down + "," + f.Addr
			}
			c := dialList(t, list)
			var sum int
			if err := c.Call(testutil.Context(t, waitLong), "add", &sum, 2, 3); err != nil || sum != 5 {
				t.Fatalf("add = %d, %v", sum, err)
			}
			if n := liveConns(c); n != 1 {
				t.Errorf("%d connections up, want 1", n)
			}
			f.CheckClean()
		})
	}
}

// TestMultiHellos: every connection gets a hello; hellos said again never break anything; the
// smallest max_batch announced wins; replies come from both brokers.
func TestMultiHellos(t *testing.T) {
	big, small := newFakeBroker(t), newFakeBroker(t)
	small.Mu.Lock()
	small.maxBatch = 7
	small.Mu.Unlock()
	c := dialList(t, big.Addr+","+small.Addr)
	waitLive(t, c, 2)
	hellos := func(f *fakeBroker) (n int) {
		f.snapshot(func(f *fakeBroker) { n = f.hellos })
		return n
	}
	testutil.Eventually(t, waitLong, func() bool { return hellos(big)+hellos(small) >= 2 }, "a hello per connection")
	// Round robin may have carried both to one broker: say more until each had one.
	testutil.Eventually(t, waitLong, func() bool {
		if hellos(big) > 0 && hellos(small) > 0 {
			return true
		}
		c.out.mu.Lock()
		c.out.helloDue++
		c.out.mu.Unlock()
		c.out.wake()
		return false
	}, "a hello at each broker")
	testutil.Eventually(t, waitLong, func() bool {
		c.out.mu.Lock()
		defer c.out.mu.Unlock()
		return c.out.out.MaxBatch == 7
	}, "max_batch 7 from the smaller broker")
	// One more hello from the bigger broker does not raise it.
	c.out.setMaxBatch(1024)
	c.out.mu.Lock()
	if c.out.out.MaxBatch != 7 {
		t.Errorf("max_batch %d after a larger announcement, want 7", c.out.out.MaxBatch)
	}
	c.out.mu.Unlock()

	inputs := make([]any, 300)
	for i := range inputs {
		inputs[i] = []int{i, 1}
	}
	got, err := Map[int](testutil.Context(t, waitLong), c, "add", inputs)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if v != i+1 {
			t.Fatalf("result %d = %d", i, v)
		}
	}
	for _, f := range []*fakeBroker{big, small} {
		f.snapshot(func(f *fakeBroker) {
			if f.methods["add"] == 0 {
				t.Errorf("broker %s got no call", f.Addr)
			}
			if f.maxMembers > 7 {
				t.Errorf("broker %s got a batch of %d, max_batch 7", f.Addr, f.maxMembers)
			}
		})
		f.CheckClean()
	}
	checkIdle(t, c)
}

// TestMultiSpread: over two real brokers, each with a node, calls spread over both and are all
// answered correctly; handles work whichever broker their polls reach.
func TestMultiSpread(t *testing.T) {
	a, b := startLiveBroker(t), startLiveBroker(t)
	c := dialList(t, a.addr+" , "+b.addr)
	waitLive(t, c, 2)
	ctx := testutil.Context(t, 2*waitLong)

	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				var sum int
				if err := c.Call(ctx, "add", &sum, g, i); err != nil || sum != g+i {
					t.Errorf("add(%d, %d) = %d, %v", g, i, sum, err)
					return
				}
			}
		}()
	}
	wg.Wait()

	inputs := make([]any, 2000)
	for i := range inputs {
		inputs[i] = []int{i, i}
	}
	got, err := Map[int](ctx, c, "add", inputs)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if v != 2*i {
			t.Fatalf("Map result %d = %d", i, v)
		}
	}
	for name, lb := range map[string]*liveBroker{"first": a, "second": b} {
		if st := lb.b.Stats(); st.Accepted == 0 {
			t.Errorf("the %s broker accepted no task", name)
		} else {
			t.Logf("the %s broker accepted %d tasks", name, st.Accepted)
		}
	}

	// Handles: each broker knows only its own tasks (memory stores), so about half the polls
	// reach a broker that answers UNKNOWN; the handles must still see their tasks through.
	hs := make([]*Handle, 20)
	for i := range hs {
		if hs[i], err = c.Submit(ctx, "sleep", []any{10 + i}); err != nil {
			t.Fatal(err)
		}
	}
	for i, h := range hs {
		var ms int
		if err := h.Wait(ctx, &ms); err != nil || ms != 10+i {
			t.Errorf("handle %d (%s): Wait = %d, %v", i, h.ID(), ms, err)
		}
	}
	h, err := c.Submit(ctx, "sleep", []any{50})
	if err != nil {
		t.Fatal(err)
	}
	var states []State
	testutil.Eventually(t, waitLong, func() bool {
		s, err := h.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(states) == 0 || states[len(states)-1] != s {
			states = append(states, s)
		}
		return s.Done()
	}, "the task done")
	if states[len(states)-1] != StateSuccess || slices.Contains(states, StateUnknown) {
		t.Errorf("states through Status: %v", states)
	}
	for name, lb := range map[string]*liveBroker{"first": a, "second": b} {
		if lb.b.Stats().Submitted == 0 {
			t.Errorf("the %s broker got no submit", name)
		}
	}
	// A task no broker knows is still reported UNKNOWN, once every answer in a row said so.
	start := time.Now()
	ti, err := c.Status(ctx, "00000000-1")
	if err != nil || ti.State != StateUnknown {
		t.Errorf("Status of an unknown task: %+v, %v", ti, err)
	}
	t.Logf("an unknown task took %v to be reported", time.Since(start))
	checkIdle(t, c)
}

// TestMultiBrokerDown: one of two brokers stops (crash or graceful shutdown) while calls flow:
// the client keeps working through the other; every call in flight either succeeds or fails
// with ErrConnectionLost (or the stopping broker's -32003); none waits for its context.
func TestMultiBrokerDown(t *testing.T) {
	cases := []struct {
		name     string
		graceful bool
	}{
		{"crash", false},
		{"shutdown", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := startLiveBroker(t), startLiveBroker(t)
			c := dialList(t, a.addr+","+b.addr)
			waitLive(t, c, 2)
			ctx := testutil.Context(t, 3*waitLong)

			const (
				phaseBefore = iota
				phaseStopping
				phaseAfter
			)
			var (
				phase              atomic.Int32
				ok                 [3]atomic.Int64
				lost, shutting     atomic.Int64
				stopCalls, callers = loop(8, func(g, i int) bool {
					p := phase.Load()
					cctx, cancel := context.WithTimeout(ctx, waitLong)
					defer cancel()
					var ms int
					arg := 1 + (g+i)%3 // tasks of a few ms, so that some are running when the broker stops
					err := c.Call(cctx, "sleep", &ms, arg)
					switch {
					case err == nil && ms == arg:
						ok[p].Add(1)
					case err == nil:
						t.Errorf("sleep(%d) = %d", arg, ms)
						return false
					case errors.Is(err, ErrConnectionLost):
						lost.Add(1)
					case tc.graceful && errors.Is(err, ErrShuttingDown):
						shutting.Add(1)
					default:
						t.Errorf("call in phase %d: %v", p, err)
						return false
					}
					return true
				})
			)
			testutil.Eventually(t, waitLong, func() bool {
				return ok[phaseBefore].Load() >= 200 && a.b.Stats().Accepted > 0 && b.b.Stats().Accepted > 0
			}, "calls through both brokers")
			phase.Store(phaseStopping)
			if tc.graceful {
				a.shutdown(t)
			} else {
				a.crash()
			}
			acceptedB := b.b.Stats().Accepted
			phase.Store(phaseAfter)
			testutil.Eventually(t, waitLong, func() bool { return ok[phaseAfter].Load() >= 300 },
				"calls after the broker stopped (%d so far)", ok[phaseAfter].Load())
			stopCalls()
			callers.Wait()
			t.Logf("ok before/stopping/after %d/%d/%d, connection lost %d, shutting down %d",
				ok[phaseBefore].Load(), ok[phaseStopping].Load(), ok[phaseAfter].Load(), lost.Load(), shutting.Load())
			if b.b.Stats().Accepted <= acceptedB {
				t.Errorf("the remaining broker took no task after the other stopped")
			}
			waitLive(t, c, 1)
			checkIdle(t, c)
			// The client keeps working through the other broker, alone.
			var sum int
			if err := c.Call(ctx, "add", &sum, 5, 6); err != nil || sum != 11 {
				t.Errorf("add after the broker stopped: %d, %v", sum, err)
			}
		})
	}
}

// TestMultiConnectionsChurn: connections to two live brokers go and come back in every order
// while calls and handles are under way: calls succeed or fail with ErrConnectionLost, handles
// all finish, nothing hangs, nothing is left pending.
func TestMultiConnectionsChurn(t *testing.T) {
	a, b := startLiveBroker(t), startLiveBroker(t)
	eps := []string{a.addr, b.addr}
	c := dialList(t, strings.Join(eps, ","))
	waitLive(t, c, 2)
	ctx := testutil.Context(t, 3*waitLong)

	var okCalls, lost, handles atomic.Int64
	stopCalls, callers := loop(6, func(g, i int) bool {
		cctx, cancel := context.WithTimeout(ctx, waitLong)
		defer cancel()
		var sum int
		if g%3 == 0 {
			// Submit (retried when its connection drops) and Wait: the handle survives.
			var h *Handle
			var err error
			for {
				if h, err = c.Submit(cctx, "add", []any{g, i}); !errors.Is(err, ErrConnectionLost) {
					break
				}
			}
			if err == nil {
				err = h.Wait(cctx, &sum)
			}
			if err != nil || sum != g+i {
				t.Errorf("handle add(%d, %d) = %d, %v", g, i, sum, err)
				return false
			}
			handles.Add(1)
			return true
		}
		err := c.Call(cctx, "add", &sum, g, i)
		switch {
		case err == nil && sum == g+i:
			okCalls.Add(1)
		case errors.Is(err, ErrConnectionLost):
			lost.Add(1)
		default:
			t.Errorf("add(%d, %d) = %d, %v", g, i, sum, err)
			return false
		}
		return true
	})
	progress := func(what string) {
		t.Helper()
		n := okCalls.Load()
		testutil.Eventually(t, waitLong, func() bool { return okCalls.Load() >= n+5 }, "calls go on %s", what)
	}
	disconnect := func(ep string) {
		t.Helper()
		if err := c.sock.Disconnect(ep); err != nil {
			t.Fatal(err)
		}
	}
	connect := func(ep string) {
		t.Helper()
		if err := c.sock.Connect(ep); err != nil {
			t.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 30 {
		i := rng.IntN(2)
		one, other := eps[i], eps[1-i]
		switch round % 3 {
		case 0: // one goes and comes back
			disconnect(one)
			waitLive(t, c, 1)
			progress("with one connection")
			connect(one)
			waitLive(t, c, 2)
		case 1: // both go, come back in either order
			disconnect(one)
			disconnect(other)
			waitLive(t, c, 0)
			connect(other)
			waitLive(t, c, 1)
			progress("after a full outage")
			connect(one)
			waitLive(t, c, 2)
		case 2: // one goes, then the other, each back before the next goes
			disconnect(one)
			connect(one)
			disconnect(other)
			connect(other)
			waitLive(t, c, 2)
		}
		progress("with both connections")
	}
	stopCalls()
	callers.Wait()
	t.Logf("%d calls ok, %d lost with a connection, %d handles done", okCalls.Load(), lost.Load(), handles.Load())
	if handles.Load() == 0 {
		t.Errorf("no handle finished")
	}
	checkIdle(t, c)
}

// scriptSender is a socket stand-in for the outbox: it records what is sent, and its Send can
// be made to block until its context ends (a full queue).
type scriptSender struct {
	mu      sync.Mutex
	sent    []string
	block   bool
	blocked chan struct{} // receives when a Send blocks
}

func (s *scriptSender) TrySend(m *zmtp.Msg) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.block {
		return zmtp.ErrQueueFull
	}
	s.sent = append(s.sent, string(m.Frames[0]))
	return nil
}

func (s *scriptSender) Send(ctx context.Context, m *zmtp.Msg) error {
	s.mu.Lock()
	block := s.block
	s.mu.Unlock()
	if !block {
		return s.TrySend(m)
	}
	s.blocked <- struct{}{}
	<-ctx.Done()
	return fmt.Errorf("%w: %w", zmtp.ErrQueueFull, ctx.Err())
}

func (s *scriptSender) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.sent
	s.sent = nil
	return out
}

// scriptedClient is a Client with no socket: the outbox sends to a scriptSender and the test
// plays the monitor's events and the loop's steps itself.
func scriptedClient(t *testing.T) (*Client, *scriptSender) {
	c := &Client{
		opts:  options{maxInFlight: 100, maxMsgSize: DefaultMaxMsgSize, maxBatch: DefaultMaxBatch},
		log:   quiet,
		ready: make(chan struct{}),
	}
	c.slots.init(100)
	c.life, c.stop = context.WithCancel(context.Background())
	t.Cleanup(c.stop)
	c.out.init(c)
	s := &scriptSender{blocked: make(chan struct{}, 1)}
	c.out.sock = s
	return c, s
}

// step runs what the outbox's loop runs on a wake-up.
func step(o *outbox) {
	o.failLost()
	o.sayHello()
	o.flush(true)
}

func kinds(msgs []string) []string {
	var out []string
	for _, m := range msgs {
		switch {
		case strings.Contains(m, `"broker.hello"`):
			out = append(out, "hello")
		case strings.HasPrefix(m, "["):
			out = append(out, "batch")
		default:
			out = append(out, "call")
		}
	}
	return out
}

// TestOutboxConnections plays connection events at the outbox: it counts connections, says a
// hello per connection, fails the calls sent when one drops and keeps the ones not sent.
func TestOutboxConnections(t *testing.T) {
	c, s := scriptedClient(t)
	o := &c.out
	state := func() (int, bool, int) {
		o.mu.Lock()
		defer o.mu.Unlock()
		return o.live, o.connected, o.helloDue
	}
	enqueue := func(send bool) *call {
		cl := newCall(nil)
		if err := o.enqueue(cl, "add", []byte("[1,2]"), nil, send); err != nil {
			t.Fatal(err)
		}
		return cl
	}
	failed := func(cl *call) error {
		select {
		case <-cl.own:
			return cl.err
		default:
			return nil
		}
	}
	isPending := func(cl *call) bool {
		o.mu.Lock()
		defer o.mu.Unlock()
		return o.pending.get(cl.id) == cl
	}

	// Nothing leaves before a connection.
	early := enqueue(true)
	if got := s.take(); len(got) != 0 {
		t.Fatalf("sent %v with no connection", got)
	}
	o.onConnect()
	o.onConnect()
	if live, conn, due := state(); live != 2 || !conn || due != 2 {
		t.Fatalf("after two connects: live %d connected %v hellos due %d", live, conn, due)
	}
	step(o)
	if got := kinds(s.take()); !slices.Equal(got, []string{"hello", "hello", "call"}) {
		t.Fatalf("sent %v, want two hellos then the early call", got)
	}
	out := enqueue(true)   // sent at once
	held := enqueue(false) // queued, not sent
	if got := kinds(s.take()); !slices.Equal(got, []string{"call"}) {
		t.Fatalf("sent %v, want one call", got)
	}

	// One of two connections drops: the calls out fail (all of them: the DEALER does not say
	// which connection they took), the queued one stays, the lost hellos are said again (one
	// per connection left), and the rest goes out on the remaining connection.
	o.onDisconnect()
	if live, conn, _ := state(); live != 1 || !conn {
		t.Fatalf("after one of two drops: live %d connected %v", live, conn)
	}
	o.failLost()
	for _, cl := range []*call{early, out} {
		if err := failed(cl); !errors.Is(err, ErrConnectionLost) {
			t.Errorf("call %d out when a connection dropped: %v, want ErrConnectionLost", cl.id, err)
		}
	}
	if failed(held) != nil || !isPending(held) {
		t.Fatalf("the queued call did not stay pending")
	}
	if _, _, due := state(); due != 1 {
		t.Errorf("%d hellos due after losing two, want 1 (one connection up)", due)
	}
	o.sayHello()
	o.flush(false)
	if got := kinds(s.take()); !slices.Equal(got, []string{"hello", "call"}) {
		t.Fatalf("sent %v, want a hello then the queued call", got)
	}

	// A connection drops while the loop's send is blocked: the frame in that send was not
	// sent, so its call is not failed; it leaves once the socket takes messages again. (The
	// calls and the hello out before it fail, and the hello is said again.)
	o.onConnect()
	o.mu.Lock()
	o.helloDue = 0 // said already, for this test
	o.mu.Unlock()
	s.mu.Lock()
	s.block = true
	s.mu.Unlock()
	blockedCall := enqueue(false)
	done := make(chan struct{})
	go func() {
		o.flush(true)
		close(done)
	}()
	<-s.blocked
	o.onDisconnect()
	<-done
	o.failLost()
	if err := failed(blockedCall); err != nil || !isPending(blockedCall) {
		t.Fatalf("a call whose send was cut short failed: %v", err)
	}
	if err := failed(held); !errors.Is(err, ErrConnectionLost) {
		t.Errorf("call out before the blocked send: %v, want ErrConnectionLost", err)
	}
	s.mu.Lock()
	s.block = false
	s.mu.Unlock()
	step(o)
	if got := kinds(s.take()); !slices.Equal(got, []string{"hello", "call"}) {
		t.Fatalf("sent %v, want a hello then the call whose send was cut short", got)
	}

	// The last connection drops: everything out fails; a call made now waits for the next
	// connection, which gets one hello (not one per connection ever lost).
	o.onDisconnect()
	if live, conn, due := state(); live != 0 || conn || due != 0 {
		t.Fatalf("after the last drop: live %d connected %v hellos due %d", live, conn, due)
	}
	o.failLost()
	if err := failed(blockedCall); !errors.Is(err, ErrConnectionLost) {
		t.Errorf("call out when the last connection dropped: %v", err)
	}
	waiting := enqueue(true)
	if got := s.take(); len(got) != 0 {
		t.Fatalf("sent %v with no connection", got)
	}
	o.onConnect()
	step(o)
	if got := kinds(s.take()); !slices.Equal(got, []string{"hello", "call"}) {
		t.Fatalf("sent %v, want one hello then the waiting call", got)
	}
	if failed(waiting) != nil {
		t.Errorf("the waiting call failed")
	}

	// Events in any order never drive the count below zero or leave a hello due with no
	// connection.
	for _, seq := range []string{"-", "--++", "+-+-", "++--", "+++-", "-+-+"} {
		for _, ev := range seq {
			if ev == '+' {
				o.onConnect()
			} else {
				o.onDisconnect()
			}
			step(o)
			live, conn, due := state()
			if live < 0 || conn != (live > 0) || (!conn && due != 0) {
				t.Fatalf("after %q: live %d connected %v hellos due %d", seq, live, conn, due)
			}
		}
	}
	s.take()
	last := enqueue(false)
	o.close()
	if err := failed(last); !errors.Is(err, ErrClosed) {
		t.Errorf("a pending call at close: %v", err)
	}
}

// loop runs step(g, i) for i = 0, 1, ... on n goroutines (g = 0..n-1) until step returns false
// or stop is called; wait for them with wg.
func loop(n int, step func(g, i int) bool) (stop func(), wg *sync.WaitGroup) {
	done := make(chan struct{})
	wg = new(sync.WaitGroup)
	for g := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				if !step(g, i) {
					return
				}
			}
		}()
	}
	return sync.OnceFunc(func() { close(done) }), wg
}
