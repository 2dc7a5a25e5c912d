package codec_test

import (
	"testing"

	"github.com/zerotask/zerotask/codec"
)

// TestHeaderExt: Ext spans the members codec does not read, from the first one's name to the
// end of the last one's value, in a lone object and in a batch element; nil without any.
func TestHeaderExt(t *testing.T) {
	tests := []struct{ in, ext string }{
		{`{"jsonrpc":"2.0","id":1,"method":"add","params":[5,6]}`, ""},
		{`{"jsonrpc":"2.0","id":1,"method":"add","params":[5,6],"timeout_ms":50}`, `"timeout_ms":50`},
		{`{"jsonrpc":"2.0","id":1,"method":"add","params":[5,6],"timeout_ms":50,"attempt":1}`, `"timeout_ms":50,"attempt":1`},
		{`{"queue":"q","jsonrpc":"2.0","id":1,"method":"add","params":{"a":1}, "attempt" : 2 }`, `"queue":"q","jsonrpc":"2.0","id":1,"method":"add","params":{"a":1}, "attempt" : 2`},
		{`{"jsonrpc":"2.0","id":1,"method":"m","params":{"timeout_ms":1}}`, ""},
		{`{"jsonrpc":"2.0","method":"m","x":{"y":[1,2]}}`, `"x":{"y":[1,2]}`},
		{`{"jsonrpc":"2.0","id":1,"result":3,"retry":true}`, `"retry":true`},
		{`{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m"},"retry_after_ms":5}`, `"retry_after_ms":5`},
	}
	for _, tt := range tests {
		var h codec.Header
		if err := codec.Scan([]byte(tt.in), &h); err != nil {
			t.Fatalf("%s: %v", tt.in, err)
		}
		if string(h.Ext) != tt.ext || (tt.ext == "") != (h.Ext == nil) {
			t.Errorf("%s: Ext %q, want %q", tt.in, h.Ext, tt.ext)
		}
		var it codec.BatchIter
		it.Reset([]byte(`[` + tt.in + `,{"jsonrpc":"2.0","method":"n"}]`))
		for i := 0; it.Next(); i++ {
			bh, err := it.Header()
			if err != nil {
				t.Fatalf("%s: batch element %d: %v", tt.in, i, err)
			}
			want := tt.ext
			if i == 1 {
				want = ""
			}
			if string(bh.Ext) != want || (want == "") != (bh.Ext == nil) {
				t.Errorf("%s: batch element %d: Ext %q, want %q", tt.in, i, bh.Ext, want)
			}
		}
	}
}
