package broker

import (
	"fmt"
	"testing"
)

// TestNodeBytes: a task goes to a node only if the params the node holds stay within
// MaxNodeBytes with it, whatever the node's credit; a big task waits for an answer to make
// room, while another client's small task (of another method) goes at once if it fits the
// room left, else after the next answer or the one after (the hand-out goes round the node's
// methods); and one task always goes to a node that holds none, even past the bound.
func TestNodeBytes(t *testing.T) {
	const size = 3000
	plen := int64(len(stringParams("c", size)))
	for _, tc := range []struct {
		name   string
		bound  int64
		first  int  // tasks handed out before the node is full
		atOnce bool // the small task fits beside them
	}{
		{"two tasks reach the bound", 2 * plen, 2, false},
		{"one byte under three tasks", 3*plen - 1, 2, true},
		{"two tasks and the small one reach the bound", 2*plen + 3, 2, true},
		{"two tasks and one byte less than the small one", 2*plen + 2, 2, false},
		{"a bound below one task", 1, 1, false},
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
			if tc.atOnce {
				if got := n.collect(1); got[0].Method != "small" {
					t.Fatalf("got %s, want the small task", got[0].Method)
				}
				n.none()
				return
			}
			n.none() // it does not fit: it waits for room
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
