package broker

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/zerotask/zerotask/dispatch"
)

// TestEngine: the socket-less Engine runs broker tasks, applies disconnects and timers.
func TestEngine(t *testing.T) {
	d := dispatch.New()
	d.MustRegister("broker.twice", dispatch.Func1(func(ctx context.Context, x int) (int, error) { return 2 * x, nil }))
	last := map[string]string{}
	h, err := NewEngine(Config{Dispatcher: d, Logger: discardLogger()}, func(frames [][]byte) {
		last[string(frames[0])] = string(frames[len(frames)-1])
	})
	if err != nil {
		t.Fatal(err)
	}
	send := func(ident, body string) { h.Receive([][]byte{[]byte(ident), []byte(body)}) }
	send("C", `{"jsonrpc":"2.0","id":1,"method":"broker.twice","params":[21]}`)
	if got := last["C"]; got != `{"jsonrpc":"2.0","id":1,"result":42}` {
		t.Fatalf("broker task reply %s", got)
	}
	send("N", `{"jsonrpc":"2.0","id":"h","method":"broker.hello","params":{"role":"node","name":"n","methods":["work"]}}`)
	send("N", `{"jsonrpc":"2.0","method":"broker.credit","params":[1]}`)
	send("C", `{"jsonrpc":"2.0","id":2,"method":"work"}`)
	if !strings.Contains(last["N"], `"method":"work"`) {
		t.Fatalf("task to the node %s", last["N"])
	}
	h.Disconnect([]byte("N"))
	if s := h.Stats(); s.Queued != 1 || s.Retried != 1 || s.Nodes != 0 {
		t.Fatalf("after disconnect %+v", s)
	}
	send("C", `{"jsonrpc":"2.0","id":3,"method":"work","delay_ms":1000}`)
	h.Tick(time.Now())
	if s := h.Stats(); s.Scheduled != 1 {
		t.Fatalf("scheduled %+v", s)
	}
	h.Tick(time.Now().Add(2 * time.Second))
	if s := h.Stats(); s.Scheduled != 0 || s.Queued != 2 {
		t.Fatalf("after the delay %+v", s)
	}
	if _, err := NewEngine(Config{MaxAttempts: 1000}, nil); err == nil {
		t.Fatal("bad config accepted")
	}
}
