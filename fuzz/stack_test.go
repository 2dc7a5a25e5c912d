package fuzz

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/zerotask/zerotask/broker"
	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/dispatch"
	"github.com/zerotask/zerotask/node"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The bounds the stack runs with: small, so that fuzzing reaches them.
const (
	maxMsg    = 64 << 10
	maxQueued = 200
	maxBatch  = 32
)

var (
	identClient = []byte("client")
	identNode   = []byte("node-1")
	// cancelled is the context the node's handlers run under: sleep returns at once.
	cancelled = func() context.Context {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		return ctx
	}()
)

// stack is a broker Engine with one node, whose tasks a node's dispatcher answers.
type stack struct {
	t       testing.TB
	h       *broker.Engine
	node    *dispatch.Dispatcher
	toNode  [][]byte // messages the broker sent the node, not answered yet
	replies int      // messages the broker sent the client
}

func newStack(t testing.TB) *stack {
	bd := dispatch.New()
	bd.MustRegister("broker.double", dispatch.Pure1(func(x int) int { return 2 * x }))
	nd := dispatch.New()
	if err := node.Builtins(nd); err != nil {
		t.Fatal(err)
	}
	nd.SetLogger(quietLogger)
	s := &stack{t: t, node: nd}
	h, err := broker.NewEngine(broker.Config{
		Dispatcher: bd, MaxQueued: maxQueued, MaxBatch: maxBatch, MaxMsgSize: maxMsg,
		MaxInFlightPerClient: 100, MaxResults: 100, MaxWaiting: 10, MaxMethods: 16, ClientShare: 100,
		MaxBacklog: 1 << 20, Logger: quietLogger,
	}, s.sent)
	if err != nil {
		t.Fatal(err)
	}
	s.h = h
	s.from(identNode, []byte(`{"jsonrpc":"2.0","id":"hello-1","method":"broker.hello","params":{"role":"node","name":"n","methods":["add","subtract","echo","sleep"],"queues":["default","high"],"concurrency":4}}`))
	s.from(identNode, []byte(`{"jsonrpc":"2.0","method":"broker.credit","params":[8]}`))
	s.toNode = s.toNode[:0]
	return s
}

// sent receives what the broker sends: every message must be one valid JSON-RPC frame.
func (s *stack) sent(frames [][]byte) {
	body := frames[len(frames)-1]
	var h codec.Header
	if err := codec.Scan(body, &h); err != nil {
		s.t.Fatalf("the broker sent an invalid frame to %q: %v: %.200s", frames[0], err, body)
	}
	switch string(frames[0]) {
	case string(identNode):
		s.toNode = append(s.toNode, append([]byte(nil), body...))
	case string(identClient):
		s.replies++
	default:
		s.t.Fatalf("message to an unknown peer %q", frames[0])
	}
}

func (s *stack) from(ident []byte, frames ...[]byte) {
	s.h.Receive(append([][]byte{ident}, frames...))
}

// pump lets the node answer what it was sent (a bounded number of rounds: answers grant no
// new credit by themselves, so the exchange ends), granting credit back as a node does.
func (s *stack) pump() {
	for round := 0; round < 8 && len(s.toNode) > 0; round++ {
		msgs := s.toNode
		s.toNode = nil
		for _, body := range msgs {
			reply := s.node.ServeFrame(cancelled, nil, body)
			if len(reply) > 0 {
				s.from(identNode, reply)
			}
		}
		s.from(identNode, []byte(fmt.Sprintf(`{"jsonrpc":"2.0","method":"broker.credit","params":[%d]}`, len(msgs))))
	}
}

// check holds the broker to its bounds.
func (s *stack) check() {
	st := s.h.Stats()
	if st.Queued+st.Scheduled > maxQueued || st.Running > 8+8*8 || st.Results > 100 || st.Waiting > 10 || st.Methods > 16 {
		s.t.Fatalf("bounds broken: %+v", st)
	}
}

// seedStream encodes client messages (single-frame, and one with the delimiter frame) as a
// ZMTP byte stream.
func seedStream(bodies ...string) []byte {
	var b []byte
	for i, body := range bodies {
		if i%3 == 2 {
			b = appendFrame(b, nil, true)
		}
		b = appendFrame(b, []byte(body), false)
	}
	return b
}

func FuzzStack(f *testing.F) {
	f.Add(seedStream(`{"jsonrpc":"2.0","id":1,"method":"add","params":[5,6]}`))
	f.Add(seedStream(
		`[{"jsonrpc":"2.0","id":1,"method":"add","params":[1,2]},{"jsonrpc":"2.0","method":"echo","params":["x"]},{"jsonrpc":"2.0","id":"s","method":"subtract","params":{"a":3,"b":1}}]`,
		`{"jsonrpc":"2.0","id":2,"method":"broker.double","params":[21]}`,
		`{"jsonrpc":"2.0","id":3,"method":"sleep","params":[10],"timeout_ms":5,"priority":9}`))
	f.Add(seedStream(
		`{"jsonrpc":"2.0","id":1,"method":"broker.submit","params":{"method":"add","params":[1,2],"key":"k","delay_ms":10,"queue":"high","max_attempts":3,"backoff_ms":1}}`,
		`{"jsonrpc":"2.0","id":2,"method":"broker.submit","params":{"method":"add","params":[1,2],"key":"k"}}`,
		`{"jsonrpc":"2.0","id":3,"method":"broker.result","params":{"id":"00000000-1","wait_ms":100}}`,
		`{"jsonrpc":"2.0","id":4,"method":"broker.revoke","params":["00000000-1"]}`,
		`{"jsonrpc":"2.0","id":5,"method":"broker.stats"}`,
		`{"jsonrpc":"2.0","id":6,"method":"broker.nodes"}`))
	f.Add(seedStream(
		`{"jsonrpc":"2.0","id":1,"method":"broker.hello","params":{"role":"node","methods":["add"]}}`,
		`{"jsonrpc":"2.0","id":67108864,"result":3}`,
		`{"jsonrpc":"2.0","id":2,"method":"broker.credit","params":[5]}`,
		`{"jsonrpc":"2.0","id":3,"method":"broker.running","params":[1,2]}`,
		`{"jsonrpc":"2.0","method":"broker.bye"}`))
	f.Add(seedStream(`{"jsonrpc":"2.0","id":`, `[]`, `[1,2]`, `{"jsonrpc":"2.0","id":true,"method":"add"}`, `{"jsonrpc":"2.0","id":1,"method":"rpc.x"}`))
	f.Add([]byte{0x04, 0x05, 0x04, 'P', 'I', 'N', 'G', 0x01, 0x00, 0x00, 0x02, '{', '}'})
	f.Add(appendFrame(nil, []byte(`{"jsonrpc":"2.0","id":1,"method":"echo","params":["`+string(make([]byte, 300))+`"]}`), false))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := newStack(t)
		for _, msg := range messages(data, maxMsg) {
			s.from(identClient, msg...)
			s.pump()
			s.check()
		}
		// The timers (delays, retries, deadlines, result waits), then a node's loss.
		s.h.Tick(time.Now().Add(time.Hour))
		s.pump()
		s.h.Disconnect(identNode)
		s.h.Disconnect(identClient)
		s.h.Tick(time.Now().Add(2 * time.Hour))
		s.check()
	})
}

// TestMessages: the framing follows RFC 37: short and long frames, MORE, commands skipped,
// malformed frames end the stream.
func TestMessages(t *testing.T) {
	long := make([]byte, 300)
	stream := appendFrame(nil, []byte("a"), true)
	stream = appendFrame(stream, long, false)
	stream = append(stream, 0x04, 0x00) // an empty command
	stream = appendFrame(stream, []byte("b"), false)
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"two messages", stream, "[[a 300] [b]]"},
		{"cut short", stream[:len(stream)-1], "[[a 300]]"},
		{"reserved flag", append([]byte{0x08, 0x01, 'x'}, stream...), "[]"},
		{"command with more", []byte{0x05, 0x00, 0x00, 0x01, 'x'}, "[]"},
		{"past the limit", appendFrame(nil, make([]byte, maxMsg+1), false), "[]"},
		{"message past the limit", appendFrame(appendFrame(nil, make([]byte, maxMsg/2+1), true), make([]byte, maxMsg/2+1), false), "[]"},
		{"unfinished", appendFrame(nil, []byte("x"), true), "[]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got [][]string
			for _, m := range messages(tt.data, maxMsg) {
				var fs []string
				for _, f := range m {
					if len(f) > 10 {
						fs = append(fs, fmt.Sprint(len(f)))
					} else {
						fs = append(fs, string(f))
					}
				}
				got = append(got, fs)
			}
			if fmt.Sprint(got) != tt.want {
				t.Fatalf("got %v, want %s", got, tt.want)
			}
		})
	}
}

// TestStackWalkthrough: the README's add through the whole stack.
func TestStackWalkthrough(t *testing.T) {
	s := newStack(t)
	var replies []string
	s.h = mustEngine(t, func(frames [][]byte) {
		s.sent(frames)
		if string(frames[0]) == string(identClient) {
			replies = append(replies, string(frames[len(frames)-1]))
		}
	}, s)
	for _, msg := range messages(seedStream(`{"jsonrpc":"2.0","id":1,"method":"add","params":[5,6]}`), maxMsg) {
		s.from(identClient, msg...)
		s.pump()
	}
	if len(replies) != 1 || replies[0] != `{"jsonrpc":"2.0","id":1,"result":11}` {
		t.Fatalf("replies %q", replies)
	}
}

// mustEngine builds an Engine for s with its own output function and the node's hello.
func mustEngine(t testing.TB, out func([][]byte), s *stack) *broker.Engine {
	h, err := broker.NewEngine(broker.Config{MaxBatch: maxBatch, MaxMsgSize: maxMsg, Logger: quietLogger}, out)
	if err != nil {
		t.Fatal(err)
	}
	s.h = h
	s.from(identNode, []byte(`{"jsonrpc":"2.0","id":"hello-1","method":"broker.hello","params":{"role":"node","name":"n","methods":["add"],"concurrency":4}}`))
	s.from(identNode, []byte(`{"jsonrpc":"2.0","method":"broker.credit","params":[8]}`))
	s.toNode = s.toNode[:0]
	return h
}
