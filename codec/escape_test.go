package codec

import "testing"

// A Header and its Scratch may live on the caller's stack: Scan makes neither escape.
func TestScanStackScratch(t *testing.T) {
	frame := []byte(`{"jsonrpc":"2.0","method":"sub\u0074ract","id":1}`)
	ok := true
	n := testing.AllocsPerRun(100, func() {
		var buf [64]byte
		h := Header{Scratch: buf[:0]}
		if err := Scan(frame, &h); err != nil || string(h.Method) != "subtract" || h.MethodEscaped {
			ok = false
		}
	})
	if !ok {
		t.Fatal("escaped method not decoded into the stack scratch")
	}
	if n != 0 {
		t.Fatalf("%v allocations: the stack scratch escaped", n)
	}
}
