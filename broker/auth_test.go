package broker

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/zerotask/zerotask/protocol"
	"github.com/zerotask/zerotask/zmtp"
)

// curveWorld is a CURVE broker with three keys: a client ("alice"), a node ("worker") and
// one in both lists ("both").
type curveWorld struct {
	b                               *Broker
	server                          zmtp.CurveKeyPair
	alice, bob, worker, both, admin zmtp.CurveKeyPair
}

func newCurveWorld(t *testing.T) *curveWorld {
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
	auth := KeyRoles(clients, nodes, admins)
	w.b = startBroker(t, Config{
		Security:  zmtp.CurveServer(w.server, func(k zmtp.CurveKey, _ net.Addr) bool { _, ok := auth(k); return ok }),
		Authorize: auth,
		Logger:    discardLogger(),
	})
	return w
}

// dial connects a DEALER with key pair kp; events reports its disconnections.
func (w *curveWorld) dial(t *testing.T, kp zmtp.CurveKeyPair) (*tpeer, chan zmtp.Event) {
	t.Helper()
	events := make(chan zmtp.Event, 16)
	s := zmtp.NewSocket(zmtp.Dealer, zmtp.Options{
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
	if err := s.Connect(w.b.Addr()); err != nil {
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
