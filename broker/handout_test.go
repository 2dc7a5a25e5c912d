package broker

import (
	"fmt"
	"testing"
)

// TestNodeBytes: a node holds at most MaxNodeBytes of params whatever its credit. At the bound
// it gets nothing more until an answer makes room; another client's small task, of another
// method, goes with the first hand-out or the second after an answer (the hand-out goes round
// the node's methods); and
// one task always goes to a node that holds none, even past the bound.
func TestNodeBytes(t *testing.T) {
	const size = 3000
	plen := int64(len(stringParams("c", size)))
	for _, tc := range []struct {
		name  string
		bound int64
		first int // tasks handed out before the node is full
	}{
		{"two tasks reach the bound", 2 * plen, 2},
		{"one byte under three tasks", 3*plen - 1, 3},
		{"a bound below one task", 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := startBroker(t, Config{MaxNodeBytes: tc.bound})
			n := newNode(t, b, "n", "work", "small")
			n.credit(100)
			c := dealer(t, b)
			for i := range 6 {
				c.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"work","params":%s}`, i, stringParams("c", size)))
			}
			held := n.collect(tc.first)
			n.none()
			other := dealer(t, b)
			other.send(`{"jsonrpc":"2.0","id":"s","method":"small","params":[1]}`)
			n.none() // full: the small task waits for room too
			for answers := 1; ; answers++ {
				if answers > 2 {
					t.Fatal("the small task was not handed out within two answers")
				}
				n.result(held[0].ID, "0")
				held = held[1:]
				c.recv()
				fr, ok := n.tryRecv(wait)
				if !ok {
					t.Fatal("no task after an answer made room")
				}
				small := false
				for _, g := range parseTasks(t, fr[len(fr)-1]) {
					if g.Method == "small" {
						small = true
					} else {
						held = append(held, g)
					}
				}
				if small {
					break
				}
			}
		})
	}
}
