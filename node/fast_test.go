package node

import (
	"bytes"
	"strings"
	"testing"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/protocol"
)

// handoutBatch writes n hand-outs as a broker does (protocol.AppendTask, AppendTaskInfo).
func handoutBatch(n int, params string, timeoutMS int64, task string, queue string) []byte {
	b := []byte{'['}
	var w protocol.TaskWriter
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		id := []byte(`"0badcafe.` + strings.Repeat("7", i%5+1) + `"`)
		b = w.Append(b, id, []byte(`"add"`), []byte(params), timeoutMS)
		var pub []byte
		if task != "" {
			pub = []byte(`"` + task + `"`)
		}
		b = protocol.AppendTaskInfo(b, pub, 1, protocol.AppendQueueMember(nil, queue))
	}
	return append(b, ']')
}

// sameAsCodec checks that fastBatch took body exactly as codec's BatchIter reads it.
func sameAsCodec(t *testing.T, r *reader, body []byte) {
	t.Helper()
	var it codec.BatchIter
	it.ResetLimits(body, &r.lim)
	k := 0
	for it.Next() {
		h, err := it.Header()
		if err != nil {
			t.Fatalf("element %d: fastBatch took it, codec says %v: %s", k, err, body)
		}
		if k >= len(r.fast) {
			t.Fatalf("codec reads more elements than fastBatch's %d: %s", len(r.fast), body)
		}
		f := &r.fast[k]
		if f.Kind != h.Kind || !bytes.Equal(f.ID, h.ID) || !bytes.Equal(f.Method, h.Method) || h.MethodEscaped ||
			!bytes.Equal(f.Params, h.Params) || (f.Params == nil) != (h.Params == nil) ||
			!bytes.Equal(f.Ext, h.Ext) || (f.Ext == nil) != (h.Ext == nil) || f.Result != nil || f.Error != nil {
			t.Fatalf("element %d: fastBatch %+v, codec %+v", k, *f, *h)
		}
		k++
	}
	if err := it.Err(); err != nil {
		t.Fatalf("fastBatch took a batch codec fails with %v: %s", err, body)
	}
	if k != len(r.fast) {
		t.Fatalf("fastBatch read %d elements, codec %d: %s", len(r.fast), k, body)
	}
}

// TestFastBatch: batches as a broker writes them are read by fastBatch, with the headers codec
// gives; anything else is left to codec, the bounds included.
func TestFastBatch(t *testing.T) {
	const maxBatch, maxFrame = 8, 2048
	for _, tc := range []struct {
		name string
		body string
		fast bool
	}{
		{"a call's tasks", string(handoutBatch(3, "[5,6]", 30000, "", "")), true},
		{"submitted tasks with a queue", string(handoutBatch(4, `["x",-1.5e3,0]`, 0, "0badcafe-7-ab", "q1")), true},
		{"no params", `[{"jsonrpc":"2.0","id":"e.1","method":"ping","attempt":1}]`, true},
		{"empty params", `[{"jsonrpc":"2.0","id":"e.1","method":"ping","params":[],"attempt":1}]`, true},
		{"no extensions", `[{"jsonrpc":"2.0","id":"e.1","method":"add","params":[1,2]}]`, true},
		{"as many as the bound", string(handoutBatch(maxBatch, "[5,6]", 7, "", "")), true},
		{"past the bound", string(handoutBatch(maxBatch+1, "[5,6]", 7, "", "")), false},
		{"past the frame bound", string(handoutBatch(1, "["+strings.Repeat("1,", maxFrame/2)+"1]", 7, "", "")), false},
		{"not a batch", `{"jsonrpc":"2.0","id":"e.1","method":"add","params":[1,2]}`, false},
		{"empty batch", `[]`, false},
		{"space after the array", `[{"jsonrpc":"2.0","id":"e.1","method":"add","params":[1,2]}] `, false},
		{"space in params", `[{"jsonrpc":"2.0","id":"e.1","method":"add","params":[1, 2]}]`, false},
		{"nested params", `[{"jsonrpc":"2.0","id":"e.1","method":"add","params":[[1],2]}]`, false},
		{"named params", `[{"jsonrpc":"2.0","id":"e.1","method":"add","params":{"a":1,"b":2}}]`, false},
		{"literal in params", `[{"jsonrpc":"2.0","id":"e.1","method":"add","params":[true,2]}]`, false},
		{"bad number", `[{"jsonrpc":"2.0","id":"e.1","method":"add","params":[01,2]}]`, false},
		{"escape in the method", `[{"jsonrpc":"2.0","id":"e.1","method":"a\u0064d","params":[1,2]}]`, false},
		{"non-ASCII in the id", `[{"jsonrpc":"2.0","id":"é.1","method":"add","params":[1,2]}]`, false},
		{"empty method", `[{"jsonrpc":"2.0","id":"e.1","method":"","params":[1,2]}]`, false},
		{"a number id", `[{"jsonrpc":"2.0","id":1,"method":"add","params":[1,2]}]`, false},
		{"meta", `[{"jsonrpc":"2.0","id":"e.1","method":"add","params":[1,2],"attempt":1,"meta":{"a":1}}]`, false},
		{"members out of order", `[{"jsonrpc":"2.0","id":"e.1","method":"add","params":[1,2],"attempt":1,"timeout_ms":5}]`, false},
		{"leading zero timeout", `[{"jsonrpc":"2.0","id":"e.1","method":"add","params":[1,2],"timeout_ms":05}]`, false},
		{"a response", `[{"jsonrpc":"2.0","id":"credit-1","result":4}]`, false},
		{"a task and a response", `[{"jsonrpc":"2.0","id":"e.1","method":"add","params":[1,2]},{"jsonrpc":"2.0","id":"credit-1","result":4}]`, false},
		{"cut short", `[{"jsonrpc":"2.0","id":"e.1","method":"add","params":[1,2]`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &reader{lim: codec.Limits{MaxBatch: maxBatch, MaxFrame: maxFrame}}
			body := []byte(tc.body)
			if got := r.fastBatch(body); got != tc.fast {
				t.Fatalf("fastBatch %v, want %v: %s", got, tc.fast, body)
			}
			if tc.fast {
				sameAsCodec(t, r, body)
			}
		})
	}
}

// FuzzFastBatch: whatever fastBatch takes, codec takes too, with the same headers.
func FuzzFastBatch(f *testing.F) {
	f.Add(handoutBatch(3, "[5,6]", 30000, "", ""))
	f.Add(handoutBatch(2, `["x",-1.5e3]`, 0, "0badcafe-7-ab", "q1"))
	f.Add([]byte(`[{"jsonrpc":"2.0","id":"e.1","method":"ping","attempt":1}]`))
	f.Add([]byte(`[{"jsonrpc":"2.0","id":"e.1","method":"add","params":[]}]`))
	f.Add([]byte(`[{"jsonrpc":"2.0","id":"e.1","method":"add","params":[1, 2]},{"jsonrpc":"2.0","id":"credit-1","result":4}]`))
	f.Add([]byte(`[{"jsonrpc":"2.0","id":"e\u0031","method":"a","params":["\n",1e5,-0.5],"timeout_ms":0,"task":"t","attempt":12,"queue":"q"}]`))
	f.Add([]byte(`[{"jsonrpc":"2.0","id":"e.1","method":"add","params":[[1],{"a":2}],"meta":{"k":"v"}}]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r := &reader{lim: codec.Limits{MaxBatch: 16, MaxFrame: 4096}}
		if r.fastBatch(body) {
			sameAsCodec(t, r, body)
		}
	})
}
