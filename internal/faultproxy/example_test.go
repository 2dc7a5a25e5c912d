package faultproxy_test

import (
	"fmt"
	"time"

	"github.com/zerotask/zerotask/internal/faultproxy"
)

// A proxy in front of a broker's ROUTER: nodes connect to p.Endpoint() instead, every byte
// takes 1-50 ms each way, and the next connection is cut within its first 100 bytes (in the
// ZMTP greeting or handshake).
func Example() {
	p, err := faultproxy.Start(faultproxy.Config{Target: "tcp://127.0.0.1:5555", Seed: 42})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()
	_ = p.SetDelay(time.Millisecond, 50*time.Millisecond)
	p.CutNext(1, faultproxy.Cut{Within: 100, By: time.Second})
	_, _ = p.Stall(faultproxy.Down, 200*time.Millisecond)    // the open connections hear nothing for 200 ms
	p.CutOpen(faultproxy.Cut{Within: 4096, By: time.Second}) // each cut within its next 4 KiB
}
