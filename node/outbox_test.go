package node

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/zerotask/zerotask/dispatch"
	"github.com/zerotask/zerotask/zmtp"
)

// scriptSock is a sender whose TrySend can be made to refuse (a full send queue); it records
// what it took.
type scriptSock struct {
	mu    sync.Mutex
	full  bool
	sent  [][]byte
	nsent uint64
}

func (s *scriptSock) Send(ctx context.Context, m *zmtp.Msg) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, append([]byte(nil), m.Frames[0]...))
	s.nsent++
	return nil
}

func (s *scriptSock) TrySend(m *zmtp.Msg) error {
	s.mu.Lock()
	full := s.full
	s.mu.Unlock()
	if full {
		return zmtp.ErrQueueFull
	}
	return s.Send(context.Background(), m)
}

func (s *scriptSock) Stats() zmtp.Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return zmtp.Stats{MsgsOut: s.nsent}
}

// take returns and forgets what was sent so far.
func (s *scriptSock) take() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.sent
	s.sent = nil
	return out
}

// credits sums the broker.credit grants in messages.
func credits(t *testing.T, msgs [][]byte) int {
	t.Helper()
	total := 0
	for _, b := range msgs {
		var items []json.RawMessage
		if len(b) > 0 && b[0] == '[' {
			if err := json.Unmarshal(b, &items); err != nil {
				t.Fatalf("bad array %s", b)
			}
		} else {
			items = []json.RawMessage{b}
		}
		for _, it := range items {
			var m struct {
				Method string `json:"method"`
				Params []int  `json:"params"`
			}
			if json.Unmarshal(it, &m) == nil && m.Method == "broker.credit" && len(m.Params) == 1 {
				total += m.Params[0]
			}
		}
	}
	return total
}

// TestCreditQueuedAcrossReconnect: a credit grant packed on a connection but not handed to the
// socket before it dropped (its send queue was full) still goes out after the next hello; the
// new connection's books count it, so the broker is never granted more than the capacity.
func TestCreditQueuedAcrossReconnect(t *testing.T) {
	n, err := New(Config{Concurrency: 2, Prefetch: 2, Sub: "none", Dispatcher: dispatch.New(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	s := &scriptSock{}
	o := &n.out
	o.sock = s
	o.onConnect()
	o.hello()
	o.helloReply(o.helloSeq, "0badcafe")
	s.mu.Lock()
	s.full = true
	s.mu.Unlock()
	o.flush(false) // packs the first grant (the capacity, 4); the socket refuses it
	if got := credits(t, s.take()); got != 0 {
		t.Fatalf("%d credit went out through a full socket", got)
	}
	o.onDisconnect()
	o.onConnect()
	o.hello()
	o.helloReply(o.helloSeq, "0badcafe")
	s.mu.Lock()
	s.full = false
	s.mu.Unlock()
	o.flush(false)
	if got := credits(t, s.take()); got != n.capacity {
		t.Fatalf("granted %d on the new connection, want the capacity %d", got, n.capacity)
	}
}

// TestAnswersGoToTheirRun: answers queued for a broker run (the connection dropped before they
// left) are not sent to another run after the next hello, nor are answers to that run's tasks
// finished later; the same run gets them.
func TestAnswersGoToTheirRun(t *testing.T) {
	for _, tc := range []struct {
		name, run string
		want      int // answers sent after the reconnection
	}{
		{"same run", "0badcafe", 2},
		{"new run", "5f0c2a91", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := New(Config{Concurrency: 2, Prefetch: 2, Sub: "none", Dispatcher: dispatch.New(), Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			s := &scriptSock{}
			o := &n.out
			o.sock = s
			o.onConnect()
			o.hello()
			o.helloReply(o.helloSeq, "0badcafe")
			o.flush(false)
			if got := o.accept(2); got != 2 {
				t.Fatalf("accepted %d tasks", got)
			}
			s.take()
			o.onDisconnect()
			o.result(&task{id: []byte(`"0badcafe.67108864"`), startIdx: -1}, []byte("1"), nil, false, 0, 0)
			o.onConnect()
			o.hello()
			if sent := s.take(); len(sent) != 1 {
				t.Fatalf("sent %q before the hello reply, want the hello alone", sent)
			}
			o.helloReply(o.helloSeq, tc.run)
			o.result(&task{id: []byte(`"0badcafe.134217728"`), startIdx: -1}, []byte("2"), nil, false, 0, 0)
			o.flush(false)
			sent := s.take()
			answers := 0
			for _, b := range sent {
				answers += strings.Count(string(b), `"result"`)
			}
			if answers != tc.want {
				t.Fatalf("%d answers sent to run %s, want %d: %q", answers, tc.run, tc.want, sent)
			}
			if got := credits(t, sent); got != n.capacity {
				t.Fatalf("granted %d after the hello, want the capacity %d", got, n.capacity)
			}
		})
	}
}
