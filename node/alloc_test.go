package node

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/zerotask/zerotask/dispatch"
	"github.com/zerotask/zerotask/zmtp"
)

// captureSender is a sender that keeps (copies of) what it is given, or discards it.
type captureSender struct {
	mu      sync.Mutex
	keep    bool
	frames  []string
	sent    uint64
	tryFail error // returned by TrySend when set
}

func (s *captureSender) Send(ctx context.Context, m *zmtp.Msg) error { return s.record(m) }

func (s *captureSender) TrySend(m *zmtp.Msg) error {
	s.mu.Lock()
	err := s.tryFail
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return s.record(m)
}

func (s *captureSender) record(m *zmtp.Msg) error {
	s.mu.Lock()
	s.sent++
	if s.keep {
		s.frames = append(s.frames, string(m.Frames[0]))
	}
	s.mu.Unlock()
	return nil
}

func (s *captureSender) Stats() zmtp.Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return zmtp.Stats{MsgsOut: s.sent}
}

// rawAdd is a raw handler: two small non-negative integers, no parsing library.
var rawAdd = dispatch.HandlerFunc(func(_ context.Context, dst, params []byte) ([]byte, error) {
	var raw [2][]byte
	if !args(params, &raw, "a", "b") {
		return dst, errArithParams
	}
	a, _ := parseInt64(raw[0])
	b, _ := parseInt64(raw[1])
	return strconv.AppendInt(dst, a+b, 10), nil
})

// offlineNode returns a node that is not running, wired to a captureSender and ready to send,
// for driving its pipeline step by step.
func offlineNode(t testing.TB, cfg Config) (*Node, *captureSender, *reader) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := &captureSender{}
	n.out.sock = s
	n.out.mu.Lock()
	n.out.connected, n.out.ready = true, true
	n.out.sess, n.out.endSess = context.WithCancel(context.Background())
	n.out.mu.Unlock()
	t.Cleanup(func() { n.out.endSess(); n.out.timer.Stop() })
	r := &reader{n: n}
	return n, s, r
}

// TestTaskPathAllocs: a raw handler's task, from the broker's message to the result handed to
// the socket (scan, copy, queue, run, append, send), allocates one object in steady state: the
// task's own context (see taskCtx), which must not be reused since a handler may leave a
// goroutine behind that holds it.
func TestTaskPathAllocs(t *testing.T) {
	d := dispatch.New()
	if err := d.Register("add", rawAdd); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		frame string
		tasks int
	}{
		{"one", `{"jsonrpc":"2.0","id":17,"method":"add","params":[5,6]}`, 1},
		{"batch4", `[{"jsonrpc":"2.0","id":17,"method":"add","params":[5,6]},{"jsonrpc":"2.0","id":18,"method":"add","params":[1,2]},` +
			`{"jsonrpc":"2.0","id":19,"method":"add","params":{"a":1,"b":2}},{"jsonrpc":"2.0","id":20,"method":"add","params":[3,4]}]`, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, s, r := offlineNode(t, Config{Concurrency: 1, Prefetch: 7, Dispatcher: d})
			w := n.workers[0]
			frame := []byte(tc.frame)
			step := func() {
				r.ingest(frame)
				for range tc.tasks {
					w.run(w.next())
				}
			}
			s.keep = true
			step()
			if len(s.frames) == 0 {
				t.Fatal("nothing sent")
			}
			t.Logf("sent: %s", s.frames[len(s.frames)-1])
			s.keep = false
			if raceEnabled {
				t.Skip("the race detector allocates")
			}
			if a := testing.AllocsPerRun(1000, step); a != float64(tc.tasks) {
				t.Errorf("%v allocs per message of %d tasks, want %d (one context per task)", a, tc.tasks, tc.tasks)
			}
		})
	}
}

// TestTaskPathAllocsOverSockets: the same over real sockets, end to end through zmtp: a ROUTER
// sends a task and receives its result; everything the node and both sockets do in between
// allocates nothing but the task's context, and nothing at all for a context-free handler
// (the builtin add), which the reader runs itself (runInline).
func TestTaskPathAllocsOverSockets(t *testing.T) {
	for _, tc := range []struct {
		name   string
		h      dispatch.Handler
		allocs float64
	}{{"raw", rawAdd, 1}, {"context-free", arith{}, 0}} {
		t.Run(tc.name, func(t *testing.T) { taskPathAllocsOverSockets(t, tc.h, tc.allocs) })
	}
}

func taskPathAllocsOverSockets(t *testing.T, h dispatch.Handler, allocs float64) {
	d := dispatch.New()
	if err := d.Register("add", h); err != nil {
		t.Fatal(err)
	}
	r := zmtp.NewRouter(zmtp.Options{})
	defer r.Close()
	if err := r.Bind("tcp://127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	n, err := New(Config{Broker: r.LastEndpoint(), Sub: "none", Concurrency: 1, Dispatcher: d, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ret := make(chan error, 1)
	go func() { ret <- n.Serve(ctx) }()
	defer func() {
		cancel()
		<-ret
	}()
	tctx, tcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer tcancel()
	// The hello, then the credit.
	var peer []byte
	for i := 0; i < 2; i++ {
		m, err := r.Recv(tctx)
		if err != nil {
			t.Fatal(err)
		}
		peer = append(peer[:0], m.Frames[0]...)
		if i == 0 {
			reply := `{"jsonrpc":"2.0","id":"hello-1","result":{"broker":"t","heartbeat_ms":1000,"max_batch":1024}}`
			if err := r.SendFrames(tctx, peer, []byte(reply)); err != nil {
				t.Fatal(err)
			}
		}
		m.Release()
	}
	task := []byte(`{"jsonrpc":"2.0","id":17,"method":"add","params":[5,6]}`)
	var last string
	roundTrip := func() {
		if err := r.SendFrames(tctx, peer, task); err != nil {
			t.Fatal(err)
		}
		m, err := r.Recv(tctx)
		if err != nil {
			t.Fatal(err)
		}
		if last == "" {
			last = string(m.Frames[1])
		}
		m.Release()
	}
	for range 100 {
		roundTrip()
	}
	t.Logf("result message: %s", last)
	if _, free := h.(dispatch.ContextFree); free && n.inlined.Load() == 0 {
		t.Error("no task run on the reader")
	}
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	if a := testing.AllocsPerRun(2000, roundTrip); a > allocs+0.05 {
		t.Errorf("%v allocs per task round trip, want %v", a, allocs)
	}
}

// BenchmarkTaskPath measures the node's own cost per task, without sockets: scan the broker's
// message, queue its tasks, run a raw add on one worker, append the results and hand the
// message to the (discarding) socket. Sub-benchmarks by tasks per broker message.
func BenchmarkTaskPath(b *testing.B) {
	d := dispatch.New()
	if err := d.Register("add", rawAdd); err != nil {
		b.Fatal(err)
	}
	for _, k := range []int{1, 16, 256} {
		b.Run("tasks="+strconv.Itoa(k), func(b *testing.B) {
			n, _, r := offlineNode(b, Config{Concurrency: 1, Prefetch: 2 * k, Dispatcher: d})
			w := n.workers[0]
			frame := []byte{'['}
			for i := range k {
				if i > 0 {
					frame = append(frame, ',')
				}
				frame = append(frame, `{"jsonrpc":"2.0","id":`...)
				frame = strconv.AppendInt(frame, int64(1000+i), 10)
				frame = append(frame, `,"method":"add","params":[5,6],"timeout_ms":30000,"attempt":1}`...) // as the broker hands out a call
			}
			frame = append(frame, ']')
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				r.ingest(frame)
				for range k {
					w.run(w.next())
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*k), "ns/task")
		})
	}
}
