package codec_test

import (
	"errors"
	"fmt"

	"github.com/zerotask/zerotask/codec"
)

func ExampleScan() {
	frame := []byte(`{"jsonrpc":"2.0","method":"subtract","params":[42,23],"id":1}`)
	var h codec.Header
	if err := codec.Scan(frame, &h); err != nil {
		fmt.Println("bad frame:", err)
		return
	}
	fmt.Printf("%s method=%s id=%s params=%s\n", h.Kind, h.Method, h.ID, h.Params)

	err := codec.Scan([]byte(`{"jsonrpc":"2.0","method":1}`), &h)
	fmt.Println(err, errors.Is(err, codec.ErrInvalidRequest))
	// Output:
	// request method=subtract id=1 params=[42,23]
	// jsonrpc: Invalid Request (code -32600) true
}

func ExampleAppendResult() {
	buf := make([]byte, 0, 128) // with room, AppendResult allocates nothing
	buf = codec.AppendResult(buf, []byte(`"abc"`), []byte(`19`))
	fmt.Println(string(buf))
	buf = codec.AppendError(buf[:0], []byte(`7`), codec.ErrMethodNotFound)
	fmt.Println(string(buf))
	// Output:
	// {"jsonrpc":"2.0","id":"abc","result":19}
	// {"jsonrpc":"2.0","id":7,"error":{"code":-32601,"message":"Method not found"}}
}

func ExampleAppendRequest() {
	req := codec.AppendRequest(nil, []byte(`1`), "subtract", []byte(`[42,23]`))
	note := codec.AppendNotification(nil, "update", []byte(`[1,2,3]`))
	fmt.Println(string(req))
	fmt.Println(string(note))
	// Output:
	// {"jsonrpc":"2.0","method":"subtract","params":[42,23],"id":1}
	// {"jsonrpc":"2.0","method":"update","params":[1,2,3]}
}

func ExampleDecodeRequest() {
	req, err := codec.DecodeRequest([]byte(`{"jsonrpc":"2.0","method":"subtract","params":{"minuend":42,"subtrahend":23},"id":3}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	var p struct{ Minuend, Subtrahend int }
	if err := req.UnmarshalParams(&p); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(req.Method, string(req.ID), p.Minuend-p.Subtrahend, req.IsNotification())
	// Output:
	// subtract 3 19 false
}

func ExampleBatchIter() {
	frame := []byte(`[
		{"jsonrpc":"2.0","method":"sum","params":[1,2,4],"id":"1"},
		{"jsonrpc":"2.0","method":"notify_hello","params":[7]},
		{"foo":"boo"}
	]`)
	var h codec.Header
	if err := codec.Scan(frame, &h); err != nil { // validates the whole batch first
		fmt.Println(string(codec.AppendErrorReply(nil, frame, err)))
		return
	}
	var it codec.BatchIter
	it.Reset(frame)
	for it.Next() {
		eh, err := it.Header()
		if err != nil {
			fmt.Println(it.Index(), err)
			continue
		}
		fmt.Println(it.Index(), eh.Kind, string(eh.Method))
	}
	// Output:
	// 0 request sum
	// 1 notification notify_hello
	// 2 jsonrpc: Invalid Request (code -32600)
}

func ExampleBatchWriter() {
	var bw codec.BatchWriter
	out := bw.Begin(nil)
	out = bw.Next(out)
	out = codec.AppendResult(out, []byte(`"1"`), []byte(`7`))
	out = bw.Next(out)
	out = codec.AppendError(out, nil, codec.ErrInvalidRequest)
	out = bw.End(out)
	fmt.Println(string(out))

	// A batch of notifications only: nothing at all is sent.
	out = bw.Begin(out[:0])
	out = bw.End(out)
	fmt.Println(len(out))
	// Output:
	// [{"jsonrpc":"2.0","id":"1","result":7},{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid Request"}}]
	// 0
}

func ExampleAppendErrorReply() {
	// A bad frame: one error object with id null.
	bad := []byte(`{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]`)
	var h codec.Header
	err := codec.Scan(bad, &h)
	fmt.Println(string(codec.AppendErrorReply(nil, bad, err)))

	// A failed request: its id is echoed. A failed notification: no reply.
	req := []byte(`{"jsonrpc":"2.0","method":"foobar","id":"1"}`)
	fmt.Println(string(codec.AppendErrorReply(nil, req, codec.ErrMethodNotFound)))
	note := []byte(`{"jsonrpc":"2.0","method":"foobar"}`)
	fmt.Println(len(codec.AppendErrorReply(nil, note, codec.ErrMethodNotFound)))
	// Output:
	// {"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}
	// {"jsonrpc":"2.0","id":"1","error":{"code":-32601,"message":"Method not found"}}
	// 0
}

func ExampleAcquire() {
	b := codec.Acquire() // owned by the caller until Release
	b.B = codec.AppendResult(b.B, []byte(`1`), []byte(`true`))
	fmt.Println(string(b.B)) // write b.B to the socket here
	codec.Release(b)         // b and b.B must not be touched after this
	// Output:
	// {"jsonrpc":"2.0","id":1,"result":true}
}

func ExampleDecode() {
	msgs, batch, err := codec.Decode([]byte(`[{"jsonrpc":"2.0","result":19,"id":1},{"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found"},"id":2},1]`))
	fmt.Println(batch, err)
	for _, m := range msgs {
		switch m.Kind {
		case codec.KindResponse:
			if m.Response.Error != nil {
				fmt.Println(string(m.Response.ID), m.Response.Error.Code)
			} else {
				fmt.Println(string(m.Response.ID), string(m.Response.Result))
			}
		default:
			fmt.Println(m.Kind, m.Err)
		}
	}
	// Output:
	// true <nil>
	// 1 19
	// 2 -32601
	// invalid jsonrpc: Invalid Request (code -32600)
}

func ExampleIsReserved() {
	fmt.Println(codec.IsReserved([]byte("rpc.discover")), codec.IsReservedName("subtract"))
	// Output:
	// true false
}
