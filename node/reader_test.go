package node

import (
	"encoding/json"
	"testing"

	"github.com/zerotask/zerotask/zmtp"
)

// FuzzIngest feeds any bytes to the node as a message from the broker and runs whatever tasks
// it queued: no panic, every message the node sends is valid JSON, every task is answered
// exactly once (results or refusals), and the credit books balance afterwards.
func FuzzIngest(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":17,"method":"add","params":[5,6]}`,
		`[{"jsonrpc":"2.0","id":17,"method":"add","params":[5,6]},{"jsonrpc":"2.0","id":18,"method":"echo","params":["x"]}]`,
		`{"jsonrpc":"2.0","id":"hello-1","result":{"broker":"b","heartbeat_ms":1000,"max_batch":2}}`,
		`{"jsonrpc":"2.0","id":"hello-1","error":{"code":-32600,"message":"no"}}`,
		`{"jsonrpc":"2.0","method":"broker.tasks","params":{}}`,
		`{"jsonrpc":"2.0","id":1,"method":"su\u0062tract","params":{"a":1,"b":2}}`,
		`[1,2,{"jsonrpc":"2.0","id":null,"method":"echo"}]`,
		`[]`, `{`, ``, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		n, s, r := offlineNode(t, Config{Concurrency: 1, Prefetch: 2, Dispatcher: testDispatcher(t)})
		s.keep = true
		w := n.workers[0]
		r.ingest(body)
		for n.q.len() > 0 {
			w.run(w.next())
		}
		n.out.flush(false)
		answered := 0
		for _, fr := range s.frames {
			if !json.Valid([]byte(fr)) {
				t.Fatalf("sent invalid JSON %q for input %q", fr, body)
			}
			var items []map[string]json.RawMessage
			if fr[0] == '[' {
				_ = json.Unmarshal([]byte(fr), &items)
			} else {
				var one map[string]json.RawMessage
				_ = json.Unmarshal([]byte(fr), &one)
				items = append(items, one)
			}
			for _, it := range items {
				if _, ok := it["method"]; !ok {
					answered++
				}
			}
		}
		if got := int(n.received.Load()); answered != got {
			t.Fatalf("received %d tasks, answered %d (input %q, sent %q)", got, answered, body, s.frames)
		}
		n.out.mu.Lock()
		held := n.out.held
		n.out.mu.Unlock()
		if held != 0 {
			t.Fatalf("held %d after all tasks ran", held)
		}
		if n.out.out.MaxBatch < 1 {
			t.Fatalf("maxBatch %d", n.out.out.MaxBatch)
		}
	})
}

var _ sender = (*zmtp.Socket)(nil)

// TestMessageSizeLimit: results are packed up to MaxMsgSize bytes per message, a result that
// cannot fit in one message is replaced by a -32603 error, and nothing sent is larger.
func TestMessageSizeLimit(t *testing.T) {
	n, s, r := offlineNode(t, Config{Concurrency: 1, Prefetch: 7, MaxMsgSize: 256, Dispatcher: testDispatcher(t)})
	s.keep = true
	w := n.workers[0]
	str := func(k int) string {
		b := make([]byte, k)
		for i := range b {
			b[i] = 'x'
		}
		return string(b)
	}
	// Two results of ~150 bytes: they cannot share a 256-byte message.
	r.ingest([]byte(`[{"jsonrpc":"2.0","id":1,"method":"echo","params":["` + str(110) + `"]},` +
		`{"jsonrpc":"2.0","id":2,"method":"echo","params":["` + str(110) + `"]},` +
		// And one result that cannot fit in any message.
		`{"jsonrpc":"2.0","id":3,"method":"echo","params":["` + str(300) + `"]}]`))
	for n.q.len() > 0 {
		w.run(w.next())
	}
	n.out.flush(false)
	var results, tooLarge int
	for _, fr := range s.frames {
		if len(fr) > 256 {
			t.Errorf("a %d-byte message, limit 256: %s", len(fr), fr)
		}
		var items []map[string]json.RawMessage
		if fr[0] == '[' {
			if err := json.Unmarshal([]byte(fr), &items); err != nil {
				t.Fatal(err)
			}
		} else {
			var one map[string]json.RawMessage
			if err := json.Unmarshal([]byte(fr), &one); err != nil {
				t.Fatal(err)
			}
			items = append(items, one)
		}
		for _, it := range items {
			if string(it["id"]) == "3" {
				var e struct{ Code int }
				_ = json.Unmarshal(it["error"], &e)
				if e.Code != -32603 {
					t.Errorf("oversized result answered %s", it["error"])
				}
				tooLarge++
			} else if _, ok := it["result"]; ok {
				results++
			}
		}
	}
	if results != 2 || tooLarge != 1 || len(s.frames) < 2 {
		t.Errorf("%d results, %d too-large errors in %d messages: %q", results, tooLarge, len(s.frames), s.frames)
	}
}
