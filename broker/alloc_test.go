package broker

import (
	"bytes"
	"strconv"
	"testing"

	"github.com/zerotask/zerotask/dispatch"
	"github.com/zerotask/zerotask/zmtp"
)

// recorder is a sender that keeps the last message of each destination in reusable buffers,
// for driving the routing state without a network.
type recorder struct {
	n    int
	last map[string]*[]byte
}

func newRecorder() *recorder { return &recorder{last: make(map[string]*[]byte)} }

func (r *recorder) TrySend(m *zmtp.Msg) error {
	r.n++
	b, ok := r.last[string(m.Frames[0])]
	if !ok {
		nb := make([]byte, 0, 1<<16)
		b = &nb
		r.last[string(m.Frames[0])] = b
	}
	*b = append((*b)[:0], m.Frames[len(m.Frames)-1]...)
	return nil
}

func (r *recorder) body(ident string) []byte {
	if b, ok := r.last[ident]; ok {
		return *b
	}
	return nil
}

// rig is a routing state with one node ("N", serving add, with plenty of credit) and one
// client ("C"), driven message by message.
type rig struct {
	tb   testing.TB
	c    *core
	out  *recorder
	msg  zmtp.Msg
	keys [][]byte // the raw hand-out ids of the node's last message (views into it)
	res  []byte
}

func newRig(tb testing.TB, cfg Config) *rig {
	tb.Helper()
	cfg.Dispatcher = dispatch.New()
	cfg.Logger = discardLogger()
	cfg, err := cfg.withDefaults()
	if err != nil {
		tb.Fatal(err)
	}
	cfg.epoch = "0badcafe"
	r := &rig{tb: tb, out: newRecorder()}
	r.c = newCore(&cfg, r.out, nil)
	r.send("N", `{"jsonrpc":"2.0","id":1,"method":"broker.hello","params":{"role":"node","name":"n","methods":["add"]}}`)
	r.send("N", `{"jsonrpc":"2.0","method":"broker.credit","params":[1000000000]}`)
	return r
}

// sendBytes hands one message from ident to the routing state and flushes, as the routing
// loop does when nothing more is queued.
func (r *rig) sendBytes(ident string, body []byte) {
	var id []byte
	switch ident {
	case "C":
		id = identC
	case "N":
		id = identN
	default:
		id = []byte(ident)
	}
	r.msg.Frames = append(r.msg.Frames[:0], id, body)
	r.c.handle(&r.msg)
	r.c.flush()
}

func (r *rig) send(ident, body string) { r.sendBytes(ident, []byte(body)) }

var (
	idPrefix = []byte(`"id":`)
	identN   = []byte("N")
	identC   = []byte("C")
)

// answer makes the node answer every task of its last message with result 11.
func (r *rig) answer() {
	body := r.out.body("N")
	r.keys = r.keys[:0]
	for i := 0; ; {
		j := bytes.Index(body[i:], idPrefix)
		if j < 0 {
			break
		}
		i += j + len(idPrefix)
		k := i + 1
		for k < len(body) && body[k] != '"' {
			k++
		}
		k++
		r.keys = append(r.keys, body[i:k])
		i = k
	}
	r.res = r.res[:0]
	if len(r.keys) > 1 {
		r.res = append(r.res, '[')
	}
	for i, k := range r.keys {
		if i > 0 {
			r.res = append(r.res, ',')
		}
		r.res = append(r.res, `{"jsonrpc":"2.0","id":`...)
		r.res = append(r.res, k...)
		r.res = append(r.res, `,"result":11}`...)
	}
	if len(r.keys) > 1 {
		r.res = append(r.res, ']')
	}
	r.sendBytes("N", r.res)
}

// roundTrip: a client request in, the node's task out, the node's result in, the client's
// reply out.
func (r *rig) roundTrip(req []byte) {
	r.sendBytes("C", req)
	r.answer()
}

var single = []byte(`{"jsonrpc":"2.0","id":12345,"method":"add","params":[5,6]}`)

func batchOf(n int) []byte {
	var b []byte
	b = append(b, '[')
	for i := 0; i < n; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"jsonrpc":"2.0","id":`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `,"method":"add","params":[5,6]}`...)
	}
	return append(b, ']')
}

// TestRoutingPath checks the rig's path does what the allocation test measures.
func TestRoutingPath(t *testing.T) {
	r := newRig(t, Config{})
	r.roundTrip(single)
	if got := string(r.out.body("C")); got != `{"jsonrpc":"2.0","id":12345,"result":11}` {
		t.Fatalf("reply %s", got)
	}
	r.roundTrip(batchOf(64))
	if len(r.keys) != 64 {
		t.Fatalf("node got %d tasks in one message", len(r.keys))
	}
	reply := r.out.body("C")
	if bytes.Count(reply, []byte(`"result":11`)) != 64 || reply[0] != '[' {
		t.Fatalf("batch reply %s", reply)
	}
	if s := r.c.stats(); s.Queued != 0 || s.Running != 0 || s.Succeeded != 65 || r.c.tasks.live != 0 {
		t.Fatalf("stats %+v, live tasks %d", s, r.c.tasks.live)
	}
}

// TestRoutingAllocs: the steady-state routing path allocates nothing: request in, task out,
// result in, reply out, for a lone call, a strict batch and an unordered batch.
func TestRoutingAllocs(t *testing.T) {
	cases := []struct {
		name      string
		req       []byte
		unordered bool
	}{
		{"single", single, false},
		{"batch64", batchOf(64), false},
		{"unordered64", batchOf(64), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, Config{})
			if tc.unordered {
				r.send("C", `{"jsonrpc":"2.0","method":"broker.hello","params":{"unordered":true}}`)
			}
			for i := 0; i < 100; i++ {
				r.roundTrip(tc.req)
			}
			allocs := testing.AllocsPerRun(1000, func() { r.roundTrip(tc.req) })
			if raceEnabled {
				t.Skipf("race detector on: %v allocs/run not asserted", allocs)
			}
			if allocs != 0 {
				t.Fatalf("%v allocs per round trip, want 0", allocs)
			}
		})
	}
}

// BenchmarkRouting measures the routing path per task (driven through the routing state, no
// network): a lone call, and calls in batches of 64.
func BenchmarkRouting(b *testing.B) {
	for _, n := range []int{1, 64} {
		req := single
		if n > 1 {
			req = batchOf(n)
		}
		b.Run("batch="+strconv.Itoa(n), func(b *testing.B) {
			r := newRig(b, Config{})
			for i := 0; i < 100; i++ {
				r.roundTrip(req)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(req)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r.roundTrip(req)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/task")
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "tasks/s")
		})
	}
}

// fullSender refuses messages to one peer (its zmtp queue is full) and records the rest.
type fullSender struct {
	*recorder
	full    string
	refused int
}

func (f *fullSender) TrySend(m *zmtp.Msg) error {
	if string(m.Frames[0]) == f.full {
		f.refused++
		return zmtp.ErrQueueFull
	}
	return f.recorder.TrySend(m)
}

// TestBlockedPeer: a peer whose send queue is full does not hold back the others; its
// messages wait in order and go out when it has room again.
func TestBlockedPeer(t *testing.T) {
	r := newRig(t, Config{})
	fs := &fullSender{recorder: r.out, full: "C"}
	r.c.out = fs
	r.roundTrip([]byte(`{"jsonrpc":"2.0","id":1,"method":"add","params":[1,1]}`))
	r.roundTrip([]byte(`{"jsonrpc":"2.0","id":2,"method":"add","params":[2,2]}`))
	if fs.refused != 1 || len(r.c.peers[r.c.peerIdx["C"]].outbox) != 2 {
		t.Fatalf("refused %d, outbox %d", fs.refused, len(r.c.peers[r.c.peerIdx["C"]].outbox))
	}
	// Another client is served meanwhile.
	r.sendBytes("D", []byte(`{"jsonrpc":"2.0","id":3,"method":"broker.ping"}`))
	if got := string(r.out.body("D")); got != `{"jsonrpc":"2.0","id":3,"result":"pong"}` {
		t.Fatalf("other client: %s", got)
	}
	r.c.tick(r.c.now()) // still full
	if len(r.c.peers[r.c.peerIdx["C"]].outbox) != 2 {
		t.Fatal("outbox lost messages while full")
	}
	var got []string
	fs.full = ""
	r.c.out = senderFunc(func(m *zmtp.Msg) error {
		got = append(got, string(m.Frames[len(m.Frames)-1]))
		return nil
	})
	r.c.tick(r.c.now())
	if len(got) != 2 || got[0] != `{"jsonrpc":"2.0","id":1,"result":11}` || got[1] != `{"jsonrpc":"2.0","id":2,"result":11}` {
		t.Fatalf("sent after unblocking: %q", got)
	}
	if len(r.c.blocked) != 0 {
		t.Fatalf("still blocked: %v", r.c.blocked)
	}
}

type senderFunc func(m *zmtp.Msg) error

func (f senderFunc) TrySend(m *zmtp.Msg) error { return f(m) }

// TestNodeArrayBound: a node may pack the results of a full array of MaxBatch tasks with its
// notices (up to twice MaxBatch members); past that its array is refused.
func TestNodeArrayBound(t *testing.T) {
	r := newRig(t, Config{MaxBatch: 4})
	r.roundTrip(batchOf(4))
	if len(r.keys) != 4 {
		t.Fatalf("node got %d tasks", len(r.keys))
	}
	full := []byte(`[{"jsonrpc":"2.0","method":"broker.credit","params":[1]},{"jsonrpc":"2.0","method":"broker.credit","params":[1]},{"jsonrpc":"2.0","method":"broker.credit","params":[1]},{"jsonrpc":"2.0","method":"broker.credit","params":[1]},{"jsonrpc":"2.0","method":"broker.credit","params":[1]},{"jsonrpc":"2.0","method":"broker.credit","params":[1]},{"jsonrpc":"2.0","method":"broker.credit","params":[1]},{"jsonrpc":"2.0","method":"broker.credit","params":[1]}]`)
	before := r.c.cnt.badFrames
	r.sendBytes("N", full)
	if r.c.cnt.badFrames != before {
		t.Fatalf("an array of 2*MaxBatch from a node was refused: %s", r.out.body("N"))
	}
	over := append(append([]byte(nil), full[:len(full)-1]...), `,{"jsonrpc":"2.0","method":"broker.credit","params":[1]}]`...)
	r.sendBytes("N", over)
	if r.c.cnt.badFrames != before+1 || !bytes.Contains(r.out.body("N"), []byte(`"code":-32600`)) {
		t.Fatalf("an array over 2*MaxBatch from a node: %s", r.out.body("N"))
	}
	checkCounts(t, r.c)
}
