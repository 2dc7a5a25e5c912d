package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerotask/zerotask/broker"
	"github.com/zerotask/zerotask/client"
	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/node"
	"github.com/zerotask/zerotask/zmtp"
)

// Hostile input at the broker: every case gets a JSON-RPC error or its connection closed, the
// broker's memory stays bounded, and a good client's add keeps returning in time.

// rawPeer is a DEALER that sends whatever a test writes, byte for byte.
type rawPeer struct {
	s    *zmtp.Socket
	gone atomic.Int32 // disconnections seen
}

func newRawPeer(t testing.TB, endpoint string, maxMsg int64) *rawPeer {
	t.Helper()
	p := &rawPeer{}
	p.s = zmtp.NewDealer(zmtp.Options{
		MaxMsgSize: maxMsg,
		Logger:     testLogger(t),
		Monitor: func(e zmtp.Event) {
			if e.Type == zmtp.EventDisconnected {
				p.gone.Add(1)
			}
		},
		ReconnectInterval: time.Hour, // one connection: a closed one stays closed
	})
	if err := p.s.Connect(endpoint); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.s.Close() })
	return p
}

func (p *rawPeer) send(t testing.TB, body []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.s.SendFrames(ctx, body); err != nil {
		t.Fatalf("raw send: %v", err)
	}
}

// recv returns the next reply body, or fails the test after timeout.
func (p *rawPeer) recv(t testing.TB, timeout time.Duration) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	m, err := p.s.Recv(ctx)
	if err != nil {
		t.Fatalf("raw recv: %v", err)
	}
	defer m.Release()
	return append([]byte(nil), m.Frames[len(m.Frames)-1]...)
}

// call sends body and returns the reply, decoded.
func (p *rawPeer) call(t testing.TB, body string) reply {
	t.Helper()
	p.send(t, []byte(body))
	raw := p.recv(t, 5*time.Second)
	var r reply
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("reply %s: %v", raw, err)
	}
	r.raw = string(raw)
	return r
}

type reply struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	raw string
}

func (r reply) code() int {
	if r.Error == nil {
		return 0
	}
	return r.Error.Code
}

// hostileSystem is a broker (small queue bound, so a flood reaches it), a node and a good client.
type hostileSystem struct {
	b *broker.Broker
	c *client.Client
}

func startHostile(t *testing.T) hostileSystem {
	b, _ := startBroker(t, broker.Config{MaxQueued: 20_000})
	n, _ := startNode(t, b, node.Config{Concurrency: 4})
	waitConnected(t, n)
	return hostileSystem{b: b, c: dial(t, b.Addr())}
}

// goodAddWait bounds the good client's add while an attack goes on. The typical figure is
// milliseconds (TestHostileSubmitFlood logs the slowest: about 160 ms during a 60,000-submit
// flood on a loaded two-core machine). The race detector slows the broker's routing loop
// several times over, and there the same flood has held one add for 2.7 to 4 s, so under
// -race the bound only proves that the good client is served at all.
var goodAddWait = map[bool]time.Duration{false: 2 * time.Second, true: 15 * time.Second}[raceEnabled]

// goodAdd checks that the good client's add returns 11 within goodAddWait.
func (h hostileSystem) goodAdd(t *testing.T) {
	t.Helper()
	start := time.Now()
	if err := callAdd(t, func(ctx context.Context, sum *int) error { return h.c.Call(ctx, "add", sum, 5, 6) }, goodAddWait); err != nil {
		t.Fatalf("the good client's add failed after %v: %v", time.Since(start), err)
	}
}

func TestHostileFrames(t *testing.T) {
	h := startHostile(t)
	bigBatch := "[" + strings.Repeat(`{"jsonrpc":"2.0","id":1,"method":"add","params":[1,2]},`, 1024) +
		`{"jsonrpc":"2.0","id":1,"method":"add","params":[1,2]}]`
	tests := []struct {
		name string
		body string
		code int
	}{
		{"unparsable", `{"jsonrpc":"2.0","id":1,"method":`, -32700},
		{"binary", "\x00\xff\xfe garbage", -32700},
		{"not an object", `42`, -32600},
		{"no jsonrpc member", `{"id":1,"method":"add"}`, -32600},
		{"wrong version", `{"jsonrpc":"1.0","id":1,"method":"add"}`, -32600},
		{"method not a string", `{"jsonrpc":"2.0","id":1,"method":7}`, -32600},
		{"params a string", `{"jsonrpc":"2.0","id":1,"method":"add","params":"x"}`, -32600},
		{"empty batch", `[]`, -32600},
		{"batch past the limit", bigBatch, -32600},
		{"too deep", strings.Repeat("[", 100) + strings.Repeat("]", 100), -32600},
		{"rpc method", `{"jsonrpc":"2.0","id":1,"method":"rpc.x"}`, -32601},
		{"unknown broker method", `{"jsonrpc":"2.0","id":1,"method":"broker.nope"}`, -32601},
		{"long method name", `{"jsonrpc":"2.0","id":1,"method":"` + strings.Repeat("m", 1<<19) + `"}`, -32600},
	}
	h.goodAdd(t) // the node's methods are registered: the hostile frames may add none
	methods := h.b.Stats().Methods
	p := newRawPeer(t, h.b.Addr(), 2<<20)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := p.call(t, tt.body)
			if r.code() != tt.code {
				t.Fatalf("reply %.300s, want error %d", r.raw, tt.code)
			}
			h.goodAdd(t)
		})
	}
	if s := h.b.Stats(); s.Methods != methods || s.Queued != 0 {
		t.Errorf("hostile frames left queues behind: %+v", s)
	}
}

// TestHostileHugeMethod: a method name of 1 MiB does not fit the frame limit: the connection
// is closed; everyone else keeps working.
func TestHostileHugeMethod(t *testing.T) {
	h := startHostile(t)
	h.goodAdd(t)
	methods := h.b.Stats().Methods
	p := newRawPeer(t, h.b.Addr(), 4<<20)
	p.send(t, []byte(`{"jsonrpc":"2.0","id":1,"method":"`+strings.Repeat("m", 1<<20)+`"}`))
	testutil.Eventually(t, 5*time.Second, func() bool { return p.gone.Load() > 0 }, "the connection closed")
	h.goodAdd(t)
	if s := h.b.Stats(); s.Methods != methods {
		t.Errorf("the huge method left a queue: %+v", s)
	}
}

// TestHostileIDs: ids of every JSON type. Strings, numbers and null are echoed byte for byte;
// the rest is an invalid request, answered with id null.
func TestHostileIDs(t *testing.T) {
	h := startHostile(t)
	p := newRawPeer(t, h.b.Addr(), 0)
	for _, tt := range []struct {
		id   string
		code int
	}{
		{`1`, 0}, {`-1`, 0}, {`0`, 0}, {`1.5`, 0}, {`-1.5e3`, 0}, {`1E400`, 0},
		{`123456789012345678901234567890`, 0}, {`"abc"`, 0}, {`""`, 0}, {`"\u00e9\n"`, 0},
		{`null`, 0}, {`true`, -32600}, {`false`, -32600}, {`{}`, -32600}, {`{"a":1}`, -32600},
		{`[]`, -32600}, {`[1]`, -32600},
	} {
		t.Run(tt.id, func(t *testing.T) {
			r := p.call(t, `{"jsonrpc":"2.0","id":`+tt.id+`,"method":"add","params":[1,2]}`)
			switch {
			case tt.code == 0 && (r.Error != nil || string(r.ID) != tt.id || string(r.Result) != "3"):
				t.Fatalf("reply %s, want result 3 with id %s echoed byte for byte", r.raw, tt.id)
			case tt.code != 0 && (r.code() != tt.code || string(r.ID) != "null"):
				t.Fatalf("reply %s, want error %d with id null", r.raw, tt.code)
			}
			h.goodAdd(t)
		})
	}
}

// TestHostileNodes: answers for tasks never given, answers that name no task, and a client
// playing node without saying hello as one.
func TestHostileNodes(t *testing.T) {
	h := startHostile(t)
	// A node answering for tasks it was never given (ids of this broker run, or of another):
	// ignored and counted, nothing runs twice.
	fake := newRawPeer(t, h.b.Addr(), 0)
	if r := fake.call(t, `{"jsonrpc":"2.0","id":"h","method":"broker.hello","params":{"role":"node","name":"liar","methods":["nothing"]}}`); r.Error != nil {
		t.Fatalf("hello: %s", r.raw)
	}
	run := h.b.ID()
	before := h.b.Stats().Stale
	for _, ans := range []string{
		`{"jsonrpc":"2.0","id":"` + run + `.999999","result":1}`,
		`{"jsonrpc":"2.0","id":"0badcafe.67108864","error":{"code":1,"message":"no"}}`,
		`[{"jsonrpc":"2.0","id":"` + run + `.1","result":1},{"jsonrpc":"2.0","id":"` + run + `.2","result":2}]`,
	} {
		fake.send(t, []byte(ans))
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return h.b.Stats().Stale >= before+4 }, "4 answers counted stale")
	h.goodAdd(t)
	// An answer whose id names no task at all is a protocol violation: the connection closes.
	fake.send(t, []byte(`{"jsonrpc":"2.0","id":999999,"result":1}`))
	testutil.Eventually(t, 5*time.Second, func() bool { return fake.gone.Load() == 1 }, "the liar's connection closed")
	if s := h.b.Stats(); s.Violations != 1 {
		t.Errorf("violations %d, want 1", s.Violations)
	}
	h.goodAdd(t)

	// A client claiming to be a node: node messages without a node hello are refused, and it
	// is told once to say hello (broker.hello_required).
	imp := newRawPeer(t, h.b.Addr(), 0)
	notices := 0
	for _, req := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"broker.credit","params":[100]}`,
		`{"jsonrpc":"2.0","id":2,"method":"broker.running","params":[1]}`,
		`{"jsonrpc":"2.0","id":3,"method":"broker.bye"}`,
	} {
		r := imp.call(t, req)
		if strings.Contains(r.raw, `"broker.hello_required"`) {
			notices++
			raw := imp.recv(t, 5*time.Second)
			r = reply{raw: string(raw)}
			if err := json.Unmarshal(raw, &r); err != nil {
				t.Fatalf("reply %s: %v", raw, err)
			}
		}
		if r.code() != -32602 {
			t.Errorf("%s: reply %s, want -32602", req, r.raw)
		}
	}
	imp.send(t, []byte(`{"jsonrpc":"2.0","method":"broker.credit","params":[100]}`)) // a notification: nothing
	imp.send(t, []byte(`{"jsonrpc":"2.0","id":5,"result":"stolen"}`))
	h.goodAdd(t)
	if notices != 1 {
		t.Errorf("broker.hello_required came %d times, want once", notices)
	}
	if s := h.b.Stats(); s.Nodes != 1 {
		t.Errorf("nodes %d, want 1 (the real one)", s.Nodes)
	}
}

// TestHostileSubmitFlood: one client floods broker.submit; it gets -32001 past the queue
// bound, the broker's queue stays bounded, and the good client's add keeps returning in time,
// during the flood and after.
func TestHostileSubmitFlood(t *testing.T) {
	h := startHostile(t)
	const flood = 60_000
	p := newRawPeer(t, h.b.Addr(), 0)
	var full, ok atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // read every reply, as a real (if greedy) client does
		defer wg.Done()
		for n := 0; n < flood; {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			m, err := p.s.Recv(ctx)
			cancel()
			if err != nil {
				t.Errorf("flood replies: %v after %d", err, n)
				return
			}
			var rs []reply
			body := m.Frames[len(m.Frames)-1]
			if body[0] == '[' {
				_ = json.Unmarshal(body, &rs)
			} else {
				var r reply
				_ = json.Unmarshal(body, &r)
				rs = []reply{r}
			}
			m.Release()
			for _, r := range rs {
				switch r.code() {
				case 0:
					ok.Add(1)
				case -32001:
					full.Add(1)
				default:
					t.Errorf("flood reply error %d", r.code())
				}
			}
			n += len(rs)
		}
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		batch := make([]string, 0, 100)
		for i := 0; i < flood; i += 100 {
			batch = batch[:0]
			for j := range 100 {
				batch = append(batch, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"broker.submit","params":{"method":"flood","params":[%d]}}`, i+j, i+j))
			}
			p.send(t, []byte("["+strings.Join(batch, ",")+"]"))
		}
	}()
	worst := time.Duration(0)
	for {
		select {
		case <-done:
		default:
			start := time.Now()
			h.goodAdd(t)
			worst = max(worst, time.Since(start))
			continue
		}
		break
	}
	wg.Wait()
	h.goodAdd(t)
	s := h.b.Stats()
	t.Logf("flood of %d submits: %d queued, %d refused with -32001; slowest good add during it %v; broker %+v", flood, ok.Load(), full.Load(), worst, s)
	if s.Queued > 20_000 || ok.Load() != 20_000 || full.Load() != flood-20_000 {
		t.Errorf("queued %d (accepted %d, refused %d), want the bound 20,000 accepted and the rest refused", s.Queued, ok.Load(), full.Load())
	}
}
