package node

import (
	"testing"

	"github.com/zerotask/zerotask/codec"
)

// TestEnvelopeCompact: the compact path gives what the member walk gives, for hand-outs as a
// ZeroTask broker writes them and for every other shape (which the walk then reads).
func TestEnvelopeCompact(t *testing.T) {
	for i, tail := range []string{
		`"timeout_ms":30000`,
		`"timeout_ms":30000,"attempt":1`,
		`"timeout_ms":5,"task":"b1-7","attempt":12`,
		`"task":"b1-7","attempt":2`,
		`"attempt":3`,
		`"task":"x"`,
		`"timeout_ms":30000,"attempt":1,"queue":"q"`,
		`"timeout_ms":30000,"attempt":1,"meta":{"a":1}`,
		`"timeout_ms":1.5,"attempt":1`,
		`"timeout_ms":1e3`,
		`"attempt":1,"timeout_ms":7`,
		`"timeout_ms":7,"timeout_ms":8`,
		`"task":"a\"b","attempt":1`,
		`"task":1,"attempt":1`,
		`"attempt":"1"`,
		`"timeout_ms" : 5`,
		`"timeout_ms":5 ,"attempt":1`,
		`"other":1,"attempt":1`,
		`"timeout_ms":-1`,
	} {
		raw := []byte(`{"jsonrpc":"2.0","id":"r.1","method":"add","params":[5,6],` + tail + `}`)
		var h codec.Header
		if err := codec.Scan(raw, &h); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		var c envelope
		if compact := c.readCompact(h.Ext); compact != (i < 6) {
			t.Errorf("%s: compact path taken %v, want %v", tail, compact, i < 6)
		}
		var got, want envelope
		got.read(h.Ext, h.Params)
		want.readWalk(h.Ext, h.Params)
		if string(got.timeoutMS) != string(want.timeoutMS) || string(got.attempt) != string(want.attempt) ||
			string(got.queue) != string(want.queue) || string(got.task) != string(want.task) || string(got.meta) != string(want.meta) ||
			(got.timeoutMS == nil) != (want.timeoutMS == nil) || (got.task == nil) != (want.task == nil) || (got.attempt == nil) != (want.attempt == nil) {
			t.Errorf("%s: read %+q, the walk %+q", tail, got, want)
		}
	}
}
