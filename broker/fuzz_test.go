package broker

import (
	"encoding/json"
	"testing"

	"github.com/zerotask/zerotask/zmtp"
)

// FuzzHandle feeds any frame, from a client and from a node, into the routing state: nothing
// may panic, every message sent is valid JSON, and the counts stay consistent.
func FuzzHandle(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"add","params":[5,6]}`,
		`[{"jsonrpc":"2.0","id":1,"method":"add","params":[5,6]},{"jsonrpc":"2.0","method":"add"},1]`,
		`{"jsonrpc":"2.0","id":1,"method":"broker.submit","params":{"method":"add","params":[1]}}`,
		`{"jsonrpc":"2.0","id":1,"method":"broker.status","params":{"id":"0badcafe-1"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"broker.result","params":{"id":"0badcafe-1","wait_ms":1}}`,
		`{"jsonrpc":"2.0","id":1,"method":"broker.revoke","params":["0badcafe-1"]}`,
		`{"jsonrpc":"2.0","id":"0badcafe.67108864","result":11}`,
		`[{"jsonrpc":"2.0","id":"0badcafe.0","result":1},{"jsonrpc":"2.0","method":"broker.running","params":["0badcafe.0"]},{"jsonrpc":"2.0","method":"broker.credit","params":[2]}]`,
		`{"jsonrpc":"2.0","method":"broker.hello","params":{"role":"node","methods":["add","work"]}}`,
		`{"jsonrpc":"2.0","method":"broker.hello","params":["client",true]}`,
		`{"jsonrpc":"2.0","method":"broker.bye"}`,
		`{"jsonrpc":"2.0","id":1,"method":"broker.nodes"}`,
		`{"jsonrpc":"2.0","id":1,"method":"broker.stats"}`,
		`[]`, `{`, `"x"`,
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, fromNode bool) {
		r := newRig(t, Config{MaxQueued: 100, MaxBatch: 16})
		out := &jsonChecker{t: t}
		r.c.out = out
		ident := identC
		if fromNode {
			ident = identN
		}
		r.msg.Frames = append(r.msg.Frames[:0], ident, body)
		r.c.handle(&r.msg)
		r.c.flush()
		// Whatever was queued or handed out, a node answering everything settles it.
		r.c.out = r.out
		r.send("N", `{"jsonrpc":"2.0","method":"broker.hello","params":{"role":"node","methods":["add","work"]}}`)
		r.send("N", `{"jsonrpc":"2.0","method":"broker.credit","params":[1000]}`)
		r.c.tick(r.c.now())
		checkCounts(t, r.c)
	})
}

type jsonChecker struct{ t *testing.T }

func (j *jsonChecker) TrySend(m *zmtp.Msg) error {
	if body := m.Frames[len(m.Frames)-1]; !json.Valid(body) {
		j.t.Fatalf("sent invalid JSON %q", body)
	}
	return nil
}

// checkCounts verifies that the routing state's counters match its structures.
func checkCounts(t testing.TB, c *core) {
	t.Helper()
	queued, held := 0, 0
	for _, q := range c.queues {
		if q != nil {
			queued += q.live
		}
	}
	for _, p := range c.peers {
		if p.alive {
			held += p.held
		}
	}
	if queued != c.queued || held != c.running || c.tasks.live != c.queued+c.running {
		t.Fatalf("counts: queues %d/%d, held %d/%d, live tasks %d", queued, c.queued, held, c.running, c.tasks.live)
	}
}
