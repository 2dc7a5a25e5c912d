package protocol_test

import (
	"errors"
	"fmt"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/protocol"
)

func ExampleAppendCredit() {
	buf := make([]byte, 0, 64)
	buf = protocol.AppendCredit(buf, nil, 8)
	fmt.Println(string(buf))
	// Output: {"jsonrpc":"2.0","method":"broker.credit","params":[8]}
}

func ExampleAppendTask() {
	fmt.Println(string(protocol.AppendTask(nil, []byte(`"5f3a09c1.42"`), []byte(`"add"`), []byte("[5,6]"), 1500)))
	// Output: {"jsonrpc":"2.0","id":"5f3a09c1.42","method":"add","params":[5,6],"timeout_ms":1500}
}

func Example_sentinels() {
	// A remote error matches its sentinel by code, whatever its message says.
	var err error = codec.NewError(protocol.CodeQueueFull, "queue full: result waits", nil)
	fmt.Println(errors.Is(err, protocol.ErrQueueFull))
	// Output: true
}
