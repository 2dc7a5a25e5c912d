package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/zerotask/zerotask/dispatch"
	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/zmtp"
)

func TestMain(m *testing.M) {
	// The Redis tests' clients may leave rueidis's delayed refresh sleeping after Close.
	testutil.VerifyTestMain(m, 5*time.Second, nil)
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// wait is the default bound for anything a test waits for.
const wait = 5 * time.Second

// quiet is how long a test listens to assert that nothing (more) arrives.
const quiet = 150 * time.Millisecond

// startBroker starts a broker on loopback port 0 with cfg and serves it until the test ends.
func startBroker(t testing.TB, cfg Config) *Broker {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "tcp://127.0.0.1:0"
	}
	if cfg.Pub == "" {
		cfg.Pub = "tcp://127.0.0.1:0"
	}
	if cfg.Dispatcher == nil {
		cfg.Dispatcher = dispatch.New()
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	errc := make(chan error, 1)
	go func() { errc <- b.Serve(context.Background()) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = b.Shutdown(ctx)
		select {
		case err := <-errc:
			if !errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		case <-time.After(wait):
			t.Errorf("Serve did not return after Shutdown")
		}
	})
	return b
}

// tpeer is a test peer: a zmtp DEALER (or REQ) speaking raw JSON to the broker.
type tpeer struct {
	t   testing.TB
	s   *zmtp.Socket
	req bool
}

func dialPeer(t testing.TB, b *Broker, typ zmtp.SocketType, identity string) *tpeer {
	t.Helper()
	o := zmtp.Options{Logger: discardLogger()}
	if identity != "" {
		o.Identity = []byte(identity)
	}
	s := zmtp.NewSocket(typ, o)
	if err := s.Connect(b.Addr()); err != nil {
		t.Fatalf("connect: %v", err)
	}
	p := &tpeer{t: t, s: s, req: typ == zmtp.Req}
	t.Cleanup(func() { s.Close() })
	return p
}

func dealer(t testing.TB, b *Broker) *tpeer { return dialPeer(t, b, zmtp.Dealer, "") }

// send sends one JSON body (a DEALER sends it as a single frame).
func (p *tpeer) send(body string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := p.s.SendFrames(ctx, []byte(body)); err != nil {
		p.t.Fatalf("send: %v", err)
	}
}

// sendFrames sends raw frames.
func (p *tpeer) sendFrames(frames ...string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	bs := make([][]byte, len(frames))
	for i, f := range frames {
		bs[i] = []byte(f)
	}
	if err := p.s.SendFrames(ctx, bs...); err != nil {
		p.t.Fatalf("send: %v", err)
	}
}

// recvFrames returns the next message's frames, failing the test after d.
func (p *tpeer) recvFrames(d time.Duration) [][]byte {
	p.t.Helper()
	fr, ok := p.tryRecv(d)
	if !ok {
		p.t.Fatalf("no message within %v", d)
	}
	return fr
}

func (p *tpeer) tryRecv(d time.Duration) ([][]byte, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	m, err := p.s.Recv(ctx)
	if err != nil {
		return nil, false
	}
	defer m.Release()
	out := make([][]byte, len(m.Frames))
	for i, f := range m.Frames {
		out[i] = append([]byte(nil), f...)
	}
	return out, true
}

// recv returns the body of the next message (a single frame is expected).
func (p *tpeer) recv() string {
	p.t.Helper()
	fr := p.recvFrames(wait)
	if len(fr) != 1 {
		p.t.Fatalf("got %d frames %q, want 1", len(fr), fr)
	}
	return string(fr[0])
}

// none asserts that nothing arrives for a short while.
func (p *tpeer) none() {
	p.t.Helper()
	if fr, ok := p.tryRecv(quiet); ok {
		p.t.Fatalf("unexpected message %q", fr)
	}
}

// call sends a request and returns the reply body.
func (p *tpeer) call(body string) string {
	p.t.Helper()
	p.send(body)
	return p.recv()
}

// resp is a decoded JSON-RPC response.
type resp struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	} `json:"error"`
}

func decodeResp(t testing.TB, body string) resp {
	t.Helper()
	var r resp
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("reply %q: %v", body, err)
	}
	return r
}

func decodeResps(t testing.TB, body string) []resp {
	t.Helper()
	var rs []resp
	if err := json.Unmarshal([]byte(body), &rs); err != nil {
		t.Fatalf("reply %q is not an array: %v", body, err)
	}
	return rs
}

// errCode returns the error code of a reply, or 0 for a result.
func errCode(t testing.TB, body string) int {
	r := decodeResp(t, body)
	if r.Error == nil {
		return 0
	}
	return r.Error.Code
}

// tnode is a fake node: a DEALER that says hello and speaks the node side of the protocol in
// raw JSON.
type tnode struct {
	*tpeer
	name string
}

// ntask is a task as a node receives it.
type ntask struct {
	ID        json.RawMessage `json:"id"`
	Method    string          `json:"method"`
	Params    json.RawMessage `json:"params"`
	TimeoutMS int64           `json:"timeout_ms"`
	Meta      json.RawMessage `json:"meta"`
}

func newNode(t testing.TB, b *Broker, name string, methods ...string) *tnode {
	t.Helper()
	return newNodeID(t, b, name, "", methods...)
}

func newNodeID(t testing.TB, b *Broker, name, identity string, methods ...string) *tnode {
	t.Helper()
	n := &tnode{tpeer: dialPeer(t, b, zmtp.Dealer, identity), name: name}
	ms, _ := json.Marshal(methods)
	r := decodeResp(t, n.call(fmt.Sprintf(`{"jsonrpc":"2.0","id":"hello","method":"broker.hello","params":{"role":"node","name":%q,"methods":%s,"concurrency":4}}`, name, ms)))
	if r.Error != nil || !strings.Contains(string(r.Result), `"broker"`) {
		t.Fatalf("hello: %+v %s", r.Error, r.Result)
	}
	return n
}

func (n *tnode) credit(k int) {
	n.t.Helper()
	n.send(fmt.Sprintf(`{"jsonrpc":"2.0","method":"broker.credit","params":[%d]}`, k))
}

func parseTasks(t testing.TB, body []byte) []ntask {
	t.Helper()
	var ts []ntask
	if len(body) > 0 && body[0] == '[' {
		if err := json.Unmarshal(body, &ts); err != nil {
			t.Fatalf("tasks %q: %v", body, err)
		}
		return ts
	}
	var one ntask
	if err := json.Unmarshal(body, &one); err != nil {
		t.Fatalf("task %q: %v", body, err)
	}
	return []ntask{one}
}

// collect receives tasks until it has k of them.
func (n *tnode) collect(k int) []ntask {
	n.t.Helper()
	var all []ntask
	deadline := time.Now().Add(wait)
	for len(all) < k {
		d := time.Until(deadline)
		if d <= 0 {
			n.t.Fatalf("%s: got %d tasks, want %d", n.name, len(all), k)
		}
		fr, ok := n.tryRecv(d)
		if !ok {
			n.t.Fatalf("%s: got %d tasks, want %d", n.name, len(all), k)
		}
		all = append(all, parseTasks(n.t, fr[len(fr)-1])...)
	}
	if len(all) != k {
		n.t.Fatalf("%s: got %d tasks, want exactly %d", n.name, len(all), k)
	}
	return all
}

func (n *tnode) result(id json.RawMessage, result string) {
	n.t.Helper()
	n.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":%s}`, id, result))
}

func (n *tnode) fail(id json.RawMessage, code int, msg string) {
	n.t.Helper()
	n.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"error":{"code":%d,"message":%q}}`, id, code, msg))
}

// sub is a SUB socket on the broker's PUB.
type tsub struct {
	t testing.TB
	s *zmtp.Socket
}

func subscribe(t testing.TB, b *Broker, topics ...string) *tsub {
	t.Helper()
	s := zmtp.NewSub(zmtp.Options{Logger: discardLogger()})
	for _, tp := range topics {
		if err := s.Subscribe([]byte(tp)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Connect(b.PubAddr()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &tsub{t: t, s: s}
}

// next returns the next [topic, body] message, or ok false after d.
func (s *tsub) next(d time.Duration) (topic, body string, ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	m, err := s.s.Recv(ctx)
	if err != nil {
		return "", "", false
	}
	defer m.Release()
	if len(m.Frames) != 2 {
		s.t.Fatalf("PUB message with %d frames", len(m.Frames))
	}
	return string(m.Frames[0]), string(m.Frames[1]), true
}

// until reads messages until one satisfies f, failing after wait.
func (s *tsub) until(f func(topic, body string) bool) (string, string) {
	s.t.Helper()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		tp, body, ok := s.next(time.Until(deadline))
		if ok && f(tp, body) {
			return tp, body
		}
	}
	s.t.Fatalf("no matching PUB message within %v", wait)
	return "", ""
}

// waitPeers waits until the broker's ROUTER sees n connected peers and, for PUB tests, that
// subscriptions had time to arrive.
func waitPeers(t testing.TB, b *Broker, n int) {
	t.Helper()
	testutil.Eventually(t, wait, func() bool { return b.router.Stats().Peers >= n }, "%d peers connected", n)
}
