package broker

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/zerotask/zerotask/zmtp"
)

// FuzzParams feeds any bytes to the small parsers the broker uses on broker.* params and node
// ids: none may panic, and the integer parsers agree with strconv.
func FuzzParams(f *testing.F) {
	for _, s := range []string{
		`[16]`, `{"credit":16}`, `[1,2,3]`, `{"ids":[1,2]}`, `{"id":"0badcafe-17","wait_ms":50}`,
		`["add",[5,6]]`, `{"a":{"b":[1,{"c":"\"}"}]},"a":2}`, `[`, `{"x":`, `"\u00e9"`, `18446744073709551615`,
		`18446744073709551616`, `-0`, `007`, ` [ 1 , 2 ] `, `[]`, `{}`, `[[[[[[[[[[]]]]]]]]]]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = member(b, "id")
		for pos := 0; pos < 3; pos++ {
			_ = param(b, "credit", pos)
		}
		var it arrayIter
		if it.reset(b) {
			for n := 0; it.next(); n++ {
				if n > len(b) {
					t.Fatalf("array walk does not end")
				}
			}
		}
		if n, ok := parseUint(b); ok {
			want, err := strconv.ParseUint(string(trimSpace(b)), 10, 64)
			if err != nil || want != n {
				t.Fatalf("parseUint(%q) = %d, strconv says %d, %v", b, n, want, err)
			}
		}
		if n, ok := parseInt(b); ok {
			want, err := strconv.ParseInt(string(trimSpace(b)), 10, 64)
			if err != nil || want != n {
				t.Fatalf("parseInt(%q) = %d, strconv says %d, %v", b, n, want, err)
			}
		}
		if s, ok := unquote(b); ok {
			var v string
			if err := json.Unmarshal(trimSpace(b), &v); err == nil && v != string(s) {
				t.Fatalf("unquote(%q) = %q, json says %q", b, s, v)
			}
		}
	})
}

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
		`{"jsonrpc":"2.0","id":67108864,"result":11}`,
		`[{"jsonrpc":"2.0","id":0,"result":1},{"jsonrpc":"2.0","method":"broker.running","params":[0]},{"jsonrpc":"2.0","method":"broker.credit","params":[2]}]`,
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
