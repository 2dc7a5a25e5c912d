package codec

import (
	"testing"
)

// zeroAllocs fails the test unless f allocates nothing on average.
func zeroAllocs(t *testing.T, name string, f func()) {
	t.Helper()
	if n := testing.AllocsPerRun(200, f); n != 0 {
		t.Errorf("%s: %v allocations per run, want 0", name, n)
	}
}

func TestAllocsScan(t *testing.T) {
	frames := map[string]string{
		"request":          `{"jsonrpc":"2.0","method":"subtract","params":[42,23],"id":1}`,
		"notification":     `{"jsonrpc":"2.0","method":"update","params":{"a":[1,2,{"b":"c"}]}}`,
		"response_result":  `{"jsonrpc":"2.0","result":{"x":[1,2,3],"y":"héllo"},"id":"abc"}`,
		"response_error":   `{"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found","data":[1]},"id":"5"}`,
		"batch":            batchOf(64),
		"escaped_method":   `{"jsonrpc":"2.0","method":"sub\u0074ract","id":1}`,
		"error_parse":      `{"jsonrpc":"2.0","method":"foobar, "params": "bar", "baz]`,
		"error_invalid":    `{"jsonrpc":"2.0","method":1,"params":"bar"}`,
		"error_empty":      `[]`,
		"error_bad_utf8":   "{\"jsonrpc\":\"2.0\",\"method\":\"\xff\"}",
		"error_top_scalar": `"x"`,
		"error_too_deep":   nestedRequest(65),
		"error_hard_depth": string(make([]byte, 0)) + "[[[[" + nestedRequest(2000),
		"error_frame_size": string(make([]byte, DefaultMaxFrame+1)),
		"error_batch_size": batchOf(1025),
		"error_bad_error":  `{"jsonrpc":"2.0","error":{"code":1.5,"message":"x"},"id":1}`,
	}
	for name, frame := range frames {
		b := []byte(frame)
		h := Header{Scratch: make([]byte, 0, 64)}
		zeroAllocs(t, "Scan "+name, func() { _ = Scan(b, &h) })
	}
}

func TestAllocsBatchIter(t *testing.T) {
	frame := []byte(`[` + batchOf(64)[1:len(batchOf(64))-1] + `,1,{"jsonrpc":"2.0","result":1,"id":1},{"jsonrpc":"2.0","method":"a\u0062","id":2}]`)
	var it BatchIter
	it.Scratch = make([]byte, 0, 64)
	var h Header
	zeroAllocs(t, "BatchIter", func() {
		it.Reset(frame)
		for it.Next() {
			_ = it.Scan(&h)
			_ = it.Elem()
		}
		if it.Err() != nil {
			t.Fatal(it.Err())
		}
	})
}

func TestAllocsEncode(t *testing.T) {
	buf := make([]byte, 0, 4096)
	id, params, result := []byte(`"abc"`), []byte(`[42,23]`), []byte(`{"x":[1,2,3]}`)
	appErr := NewError(-32000, "bad \"thing\"\n", []byte(`{"why":1}`))
	var bw BatchWriter
	zeroAllocs(t, "AppendResult", func() { buf = AppendResult(buf[:0], id, result) })
	zeroAllocs(t, "AppendError", func() { buf = AppendError(buf[:0], id, appErr) })
	zeroAllocs(t, "AppendError sentinel", func() { buf = AppendError(buf[:0], nil, ErrMethodNotFound) })
	zeroAllocs(t, "AppendRequest", func() { buf = AppendRequest(buf[:0], id, "subtract", params) })
	zeroAllocs(t, "AppendRequestBytes", func() { buf = AppendRequestBytes(buf[:0], id, []byte("subtract"), params) })
	zeroAllocs(t, "AppendNotification", func() { buf = AppendNotification(buf[:0], "update", params) })
	zeroAllocs(t, "AppendString", func() { buf = AppendString(buf[:0], "tab\there \"q\" \x01 é \xff") })
	zeroAllocs(t, "AppendErrorReply", func() { buf = AppendErrorReply(buf[:0], nil, ErrParse) })
	reqFrame := []byte(`{"jsonrpc":"2.0","method":"m","id":7}`)
	zeroAllocs(t, "AppendErrorReply request", func() { buf = AppendErrorReply(buf[:0], reqFrame, ErrMethodNotFound) })
	zeroAllocs(t, "BatchWriter", func() {
		buf = bw.Begin(buf[:0])
		for i := 0; i < 8; i++ {
			buf = bw.Next(buf)
			buf = AppendResult(buf, id, result)
		}
		buf = bw.End(buf)
	})
}

func TestAllocsBuffer(t *testing.T) {
	id, result := []byte(`1`), []byte(`true`)
	// Warm the pool up so the buffer in it has grown to size.
	for i := 0; i < 10; i++ {
		b := Acquire()
		b.B = AppendResult(b.B, id, result)
		Release(b)
	}
	n := testing.AllocsPerRun(200, func() {
		b := Acquire()
		b.B = AppendResult(b.B, id, result)
		Release(b)
	})
	if raceEnabled {
		// sync.Pool drops a quarter of the items put back under -race, on purpose.
		if n > 1 {
			t.Errorf("Acquire/Release under -race: %v allocations per run, want at most 1", n)
		}
		return
	}
	if n != 0 {
		t.Errorf("Acquire/Release: %v allocations per run, want 0", n)
	}
}

func TestBuffer(t *testing.T) {
	b := Acquire()
	if len(b.B) != 0 {
		t.Fatal("Acquire returned a non-empty buffer")
	}
	b.B = AppendResult(b.B, []byte("1"), []byte("2"))
	if string(b.B) != `{"jsonrpc":"2.0","id":1,"result":2}` {
		t.Fatalf("got %s", b.B)
	}
	Release(b)
	Release(nil)
}
