package broker

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/zerotask/zerotask/zmtp"
)

// TestIdentityCannotBeTakenOver: a peer that connects with a node's routing identity, while the
// node is there and while it is away, neither locks the node out nor receives its tasks; the
// broker names connections by identities of its own, which broker.nodes shows. Without
// authentication and with two CURVE keys (a client key posing as the node's identity).
func TestIdentityCannotBeTakenOver(t *testing.T) {
	const ident = "node-a"
	hello := `{"jsonrpc":"2.0","id":"hello","method":"broker.hello","params":{"role":"node","name":"a","methods":["work"],"concurrency":4}}`
	for _, auth := range []bool{false, true} {
		t.Run(map[bool]string{false: "null", true: "curve"}[auth], func(t *testing.T) {
			var b *Broker
			var node, thief, client func() *tpeer
			if auth {
				w := newCurveWorld(t)
				b = w.b
				node = func() *tpeer { p, _ := w.dialAs(t, b, w.worker, ident); return p }
				thief = func() *tpeer { p, _ := w.dialAs(t, b, w.bob, ident); return p }
				client = func() *tpeer { p, _ := w.dial(t, w.alice); return p }
			} else {
				b = startBroker(t, Config{})
				node = func() *tpeer { return dialPeer(t, b, zmtp.Dealer, ident) }
				thief = node
				client = func() *tpeer { return dealer(t, b) }
			}
			sayHello := func(p *tpeer) *tnode {
				t.Helper()
				if r := decodeResp(t, p.call(hello)); r.Error != nil {
					t.Fatalf("hello: %+v", r.Error)
				}
				n := &tnode{tpeer: p, name: "a"}
				n.credit(4)
				return n
			}
			a := sayHello(node())
			th := thief() // while the node is there
			th.send(`{"jsonrpc":"2.0","id":1,"method":"broker.ping"}`)
			th.recv()
			nodes := decodeResp(t, client().call(`{"jsonrpc":"2.0","id":1,"method":"broker.nodes"}`))
			if strings.Contains(string(nodes.Result), hex.EncodeToString([]byte(ident))) {
				t.Fatalf("broker.nodes shows the identity the peer chose: %s", nodes.Result)
			}
			a.s.Close() // the node goes away; the thief stays with its identity
			th2 := thief()
			th2.send(`{"jsonrpc":"2.0","id":1,"method":"broker.ping"}`)
			th2.recv()
			a2 := sayHello(node()) // the node comes back under the same identity: not locked out
			c := client()
			c.send(`{"jsonrpc":"2.0","id":7,"method":"work","params":[1]}`)
			ts := a2.collect(1)
			a2.result(ts[0].ID, `"mine"`)
			if got := c.recv(); got != `{"jsonrpc":"2.0","id":7,"result":"mine"}` {
				t.Fatalf("reply %s", got)
			}
			th.none()
			th2.none()
		})
	}
}
