package broker

import (
	"encoding/json"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/protocol"
	"github.com/zerotask/zerotask/zmtp"
)

// curveWorld is a CURVE broker with three keys: a client ("alice"), a node ("worker") and
// one in both lists ("both").
type curveWorld struct {
	b                               *Broker
	server                          zmtp.CurveKeyPair
	alice, bob, worker, both, admin zmtp.CurveKeyPair
	auth                            Authorizer
}

func newCurveWorld(t *testing.T) *curveWorld {
	t.Helper()
	w := newCurveKeys(t)
	w.b = startBroker(t, w.config(Config{}))
	return w
}

// config returns cfg with the world's CURVE server and roles.
func (w *curveWorld) config(cfg Config) Config {
	auth := w.auth
	cfg.Security = zmtp.CurveServer(w.server, func(k zmtp.CurveKey, _ net.Addr) bool { _, ok := auth(k); return ok })
	cfg.Authorize = auth
	cfg.Logger = discardLogger()
	return cfg
}

// newCurveKeys makes the world's keys and roles, without a broker.
func newCurveKeys(t *testing.T) *curveWorld {
	t.Helper()
	w := &curveWorld{}
	for _, kp := range []*zmtp.CurveKeyPair{&w.server, &w.alice, &w.bob, &w.worker, &w.both, &w.admin} {
		var err error
		if *kp, err = zmtp.NewCurveKeyPair(); err != nil {
			t.Fatal(err)
		}
	}
	clients := map[zmtp.CurveKey]string{w.alice.Public: "alice", w.bob.Public: "bob", w.both.Public: "both"}
	nodes := map[zmtp.CurveKey]string{w.worker.Public: "worker", w.both.Public: ""}
	admins := map[zmtp.CurveKey]string{w.admin.Public: "root"}
	w.auth = KeyRoles(clients, nodes, admins)
	return w
}

// dial connects a DEALER with key pair kp; events reports its disconnections.
func (w *curveWorld) dial(t *testing.T, kp zmtp.CurveKeyPair) (*tpeer, chan zmtp.Event) {
	return w.dialTo(t, w.b, kp)
}

// dialTo connects a DEALER with key pair kp to broker b.
func (w *curveWorld) dialTo(t *testing.T, b *Broker, kp zmtp.CurveKeyPair) (*tpeer, chan zmtp.Event) {
	return w.dialAs(t, b, kp, "")
}

// dialAs connects a DEALER with key pair kp and routing identity identity to broker b.
func (w *curveWorld) dialAs(t *testing.T, b *Broker, kp zmtp.CurveKeyPair, identity string) (*tpeer, chan zmtp.Event) {
	t.Helper()
	events := make(chan zmtp.Event, 16)
	s := zmtp.NewSocket(zmtp.Dealer, zmtp.Options{
		Identity: []byte(identity),
		Logger:   discardLogger(),
		Security: zmtp.CurveClient(w.server.Public, kp),
		Monitor: func(e zmtp.Event) {
			if e.Type == zmtp.EventDisconnected {
				select {
				case events <- e:
				default:
				}
			}
		},
	})
	if err := s.Connect(b.Addr()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &tpeer{t: t, s: s}, events
}

const nodeHello = `{"jsonrpc":"2.0","id":1,"method":"broker.hello","params":{"role":"node","name":"n","methods":["echo"]}}`

func TestRolesClientKeyCannotBeNode(t *testing.T) {
	w := newCurveWorld(t)
	p, events := w.dial(t, w.alice)
	if code := errCode(t, p.call(nodeHello)); code != protocol.CodeForbidden {
		t.Fatalf("client key's node hello: code %d, want %d", code, protocol.CodeForbidden)
	}
	select {
	case <-events:
	case <-time.After(wait):
		t.Fatal("the connection of a client key saying hello as a node stayed open")
	}
	if s := w.b.Stats(); s.Forbidden != 1 || s.Nodes != 0 {
		t.Fatalf("stats: forbidden %d nodes %d, want 1 and 0", s.Forbidden, s.Nodes)
	}
}

func TestRolesNodeKeyCannotSubmit(t *testing.T) {
	w := newCurveWorld(t)
	n, _ := w.dial(t, w.worker)
	if r := decodeResp(t, n.call(nodeHello)); r.Error != nil {
		t.Fatalf("node key's hello: %+v", r.Error)
	}
	for _, req := range []string{
		`{"jsonrpc":"2.0","id":2,"method":"broker.submit","params":{"method":"echo","params":[1]}}`,
		`{"jsonrpc":"2.0","id":3,"method":"echo","params":[1]}`,
	} {
		if code := errCode(t, n.call(req)); code != protocol.CodeForbidden {
			t.Fatalf("node key's %s: code %d, want %d", req, code, protocol.CodeForbidden)
		}
	}
	// A key in both lists is both; the name comes from the list that names it.
	bp, _ := w.dial(t, w.both)
	if r := decodeResp(t, bp.call(nodeHello)); r.Error != nil {
		t.Fatalf("both key's hello: %+v", r.Error)
	}
	if r := decodeResp(t, bp.call(`{"jsonrpc":"2.0","id":2,"method":"broker.submit","params":{"method":"echo","params":[1]}}`)); r.Error != nil {
		t.Fatalf("both key's submit: %+v", r.Error)
	}
	var nodes []struct{ User string }
	c, _ := w.dial(t, w.alice)
	if err := json.Unmarshal(decodeResp(t, c.call(`{"jsonrpc":"2.0","id":9,"method":"broker.nodes"}`)).Result, &nodes); err != nil {
		t.Fatal(err)
	}
	var users []string
	for _, nd := range nodes {
		users = append(users, nd.User)
	}
	if got := strings.Join(users, ","); got != "worker,both" && got != "both,worker" {
		t.Fatalf("broker.nodes users %q, want worker and both", got)
	}
	if s := w.b.Stats(); s.Forbidden != 2 {
		t.Fatalf("forbidden %d, want 2", s.Forbidden)
	}
}

// TestUnknownKeyCounted: a key in no list fails its handshake (our DEALER never has a peer to
// send to), nothing of it is accepted, and broker.stats counts the refusal (handshake_failures).
func TestUnknownKeyCounted(t *testing.T) {
	w := newCurveWorld(t)
	stranger, err := zmtp.NewCurveKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	w.dial(t, stranger)
	testutil.Eventually(t, wait, func() bool { return w.b.Stats().HandshakeFailures >= 1 },
		"no handshake failure counted for a key in no list")
	a, _ := w.dial(t, w.alice)
	var st struct {
		Accepted          uint64 `json:"accepted"`
		HandshakeFailures uint64 `json:"handshake_failures"`
	}
	if err := json.Unmarshal(decodeResp(t, a.call(`{"jsonrpc":"2.0","id":2,"method":"broker.stats"}`)).Result, &st); err != nil {
		t.Fatal(err)
	}
	if st.HandshakeFailures < 1 || st.Accepted != 0 {
		t.Fatalf("broker.stats: handshake_failures %d accepted %d, want >= 1 and 0", st.HandshakeFailures, st.Accepted)
	}
}

// TestTasksBelongToSubmitter: client B cannot read, wait on or revoke client A's task, nor
// take A's idempotency key; an admin key can read it.
func TestTasksBelongToSubmitter(t *testing.T) {
	w := newCurveWorld(t)
	a, _ := w.dial(t, w.alice)
	b, _ := w.dial(t, w.bob)
	adm, _ := w.dial(t, w.admin)
	submit := func(p *tpeer, method, key string) (id string, dup bool) {
		t.Helper()
		r := decodeResp(t, p.call(`{"jsonrpc":"2.0","id":1,"method":"broker.submit","params":{"method":"`+method+`","params":[1],"key":"`+key+`"}}`))
		var v struct {
			ID        string
			Duplicate bool
		}
		if r.Error != nil || json.Unmarshal(r.Result, &v) != nil {
			t.Fatalf("submit: %+v %s", r.Error, r.Result)
		}
		return v.ID, v.Duplicate
	}
	record := func(p *tpeer, method, id string) map[string]any {
		t.Helper()
		r := decodeResp(t, p.call(`{"jsonrpc":"2.0","id":2,"method":"`+method+`","params":{"id":"`+id+`","wait_ms":50}}`))
		var v map[string]any
		if r.Error != nil || json.Unmarshal(r.Result, &v) != nil {
			t.Fatalf("%s: %+v %s", method, r.Error, r.Result)
		}
		return v
	}
	idA, _ := submit(a, "secret", "order-17")
	for _, m := range []string{protocol.MethodStatus, protocol.MethodResult, protocol.MethodRevoke} {
		if st := record(b, m, idA)["state"]; st != protocol.StateUnknown {
			t.Fatalf("B's %s of A's task: state %v, want %s", m, st, protocol.StateUnknown)
		}
	}
	rec := record(a, protocol.MethodStatus, idA)
	if rec["state"] != protocol.StateQueued || rec["submitter"] != "alice" {
		t.Fatalf("A's own task after B's revoke: %v", rec)
	}
	if rec := record(adm, protocol.MethodStatus, idA); rec["submitter"] != "alice" {
		t.Fatalf("admin's status of A's task: %v", rec)
	}
	// B's submit with A's key, and A's with the same key for another method, are new tasks.
	if idB, dup := submit(b, "secret", "order-17"); dup || idB == idA {
		t.Fatalf("B's submit with A's key: id %s duplicate %v (A's %s)", idB, dup, idA)
	}
	if id, dup := submit(a, "other", "order-17"); dup || id == idA {
		t.Fatalf("A's key for another method: id %s duplicate %v", id, dup)
	}
	if id, dup := submit(a, "secret", "order-17"); !dup || id != idA {
		t.Fatalf("A's key again: id %s duplicate %v, want %s", id, dup, idA)
	}
	if rec := record(a, protocol.MethodRevoke, idA); rec["state"] != protocol.StateRevoked {
		t.Fatalf("A's revoke of its task: %v", rec)
	}
	if rec := record(a, protocol.MethodStatus, idA); rec["submitter"] != "alice" {
		t.Fatalf("A's stored record: %v", rec)
	}
	if st := record(b, protocol.MethodStatus, idA)["state"]; st != protocol.StateUnknown {
		t.Fatalf("B's status of A's stored record: %v", st)
	}
}

// TestProtectedMode: New refuses a non-loopback address without Security unless Insecure.
func TestProtectedMode(t *testing.T) {
	for _, tc := range []struct {
		listen, pub string
		insecure    bool
		refused     bool
	}{
		{"tcp://0.0.0.0:0", "none", false, true},
		{"tcp://127.0.0.1:0", "tcp://*:0", false, true},
		{"tcp://0.0.0.0:0", "none", true, false},
		{"tcp://127.0.0.1:0", "tcp://[::1]:0", false, false},
	} {
		b, err := New(Config{Listen: tc.listen, Pub: tc.pub, Insecure: tc.insecure, Logger: discardLogger()})
		if got := errors.Is(err, ErrUnprotected); got != tc.refused {
			t.Errorf("%s %s insecure=%v: err %v, want refused=%v", tc.listen, tc.pub, tc.insecure, err, tc.refused)
		}
		if err == nil {
			b.closeSockets()
		} else if tc.refused && !strings.Contains(err.Error(), "Insecure") {
			t.Errorf("refusal %q does not name Config.Insecure", err)
		}
	}
}
