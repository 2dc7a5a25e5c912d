package zmtp

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/testutil"
)

// TestPubSubsMatchesReference: after random subscribes and unsubscribes of prefixes that share
// and split edges, the tree reaches exactly the peers a naive scan of every peer's prefixes
// finds, once each, and an emptied tree is back to a bare root.
func TestPubSubsMatchesReference(t *testing.T) {
	s := NewSocket(Pub, Options{})
	defer s.Close()
	peers := make([]*conn, 8)
	for i := range peers {
		peers[i] = &conn{s: s, wake: make(chan struct{}, 1)}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	word := func() []byte {
		b := make([]byte, rng.IntN(6))
		for i := range b {
			b[i] = "ab"[rng.IntN(2)]
		}
		return b
	}
	for step := range 5000 {
		c := peers[rng.IntN(len(peers))]
		if err := c.subscribe(word(), rng.IntN(3) > 0); err != nil {
			t.Fatal(err)
		}
		topic := word()
		want := map[*conn]bool{}
		for _, p := range peers {
			for pre := range p.psubs {
				if bytes.HasPrefix(topic, []byte(pre)) {
					want[p] = true
				}
			}
		}
		got := map[*conn]int{}
		s.psubs.walk(topic, func(c *conn) { got[c]++ })
		for p, n := range got {
			if n != 1 || !want[p] {
				t.Fatalf("step %d: topic %q reached a peer %d times (want %v)", step, topic, n, want[p])
			}
		}
		if len(got) != len(want) {
			t.Fatalf("step %d: topic %q reached %d peers, want %d", step, topic, len(got), len(want))
		}
	}
	for _, p := range peers {
		p.unsubscribeAll()
	}
	if r := s.psubs.root; len(r.kids) != 0 || len(r.conns) != 0 {
		t.Fatalf("emptied tree keeps %d children and %d peers at its root", len(r.kids), len(r.conns))
	}
}

// TestSubscriptionBytesBound: a SUB whose prefixes would pass MaxSubscriptionBytes loses that
// subscription (counted in SubsRefused) and keeps its others, over a real connection.
func TestSubscriptionBytesBound(t *testing.T) {
	pub := newBound(t, Pub, Options{MaxSubscriptionBytes: 100}, "tcp")
	sub := newConnected(t, Sub, Options{}, pub.LastEndpoint())
	waitPeers(t, pub, 1)
	big := bytes.Repeat([]byte("x"), 101)
	for _, p := range [][]byte{[]byte("a"), big, []byte("b")} {
		if err := sub.Subscribe(p); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, wait, func() bool { return pub.Stats().SubsRefused == 1 }, "refused subscriptions: %d, want 1", pub.Stats().SubsRefused)
	testutil.Eventually(t, wait, func() bool {
		pub.pubMu.Lock()
		defer pub.pubMu.Unlock()
		c := (*pub.peers.Load())[0]
		return len(c.psubs) == 2 && c.psubBytes == 2
	}, "the peer's other subscriptions are not held")
	send(t, pub, big)
	send(t, pub, []byte("b1"))
	if got := recv(t, sub); string(got[0]) != "b1" {
		t.Fatalf("received %q, want b1 (the refused prefix's topic is not sent)", got[0])
	}
}

// adversaries subscribes n in-process peers of pub to prefixes of the long topic base, of
// lengths 1 to 1,030 spread over the peers, each ending in a byte that leaves base: none
// matches a topic built on base, but every depth of the tree branches.
func adversaries(tb testing.TB, pub *Socket, n int, base []byte) {
	for i := range n {
		a, b := net.Pipe()
		tb.Cleanup(func() { a.Close(); b.Close() })
		c := newConn(pub, a, "adversary")
		l := 1 + i*1029/max(n-1, 1)
		p := append(bytes.Clone(base[:l-1]), base[l-1]^0x80)
		if err := c.subscribe(p, true); err != nil {
			tb.Fatal(err)
		}
	}
}

// publishBatch publishes 1,024 notifications to distinct long topics.
func publishBatch(tb testing.TB, pub *Socket, topics [][]byte, body []byte) time.Duration {
	start := time.Now()
	for _, tp := range topics {
		if err := pub.SendFrames(context.Background(), tp, body); err != nil {
			tb.Fatal(err)
		}
	}
	return time.Since(start)
}

func flatCostSetup(tb testing.TB) (base []byte, topics [][]byte, body []byte) {
	base = []byte("tasks." + strings.Repeat("m", 1100))
	for i := range 1024 {
		topics = append(topics, fmt.Appendf(bytes.Clone(base), "%d", i))
	}
	return base, topics, []byte(`{"jsonrpc":"2.0","method":"broker.tasks","params":{"waiting":1}}`)
}

// TestPublishCostFlat: what a batch of 1,024 notifications costs does not grow with the
// number of subscriptions, only with the topics' length: 3,000 subscribers holding
// adversarial prefixes (lengths 1..1,030, each diverging from the topics at its last byte)
// cost less than 1.5x what 1,000 of the same shapes cost (a lookup per peer, or per distinct
// prefix length per peer, would cost 3x). Each figure is the best of several interleaved
// runs, so that a loaded machine slows both alike; the batch without adversaries is logged
// beside them (BenchmarkPublishAdversarialSubs measures the same).
func TestPublishCostFlat(t *testing.T) {
	base, topics, body := flatCostSetup(t)
	counts := []int{0, 1000, 3000}
	pubs := make([]*Socket, len(counts))
	for i, n := range counts {
		pubs[i] = newBound(t, Pub, Options{SendHWM: 1 << 20, SendHWMBytes: -1}, "tcp")
		sub := newConnected(t, Sub, Options{RecvHWM: 1 << 20}, pubs[i].LastEndpoint())
		if err := sub.Subscribe([]byte("tasks.")); err != nil {
			t.Fatal(err)
		}
		waitSubscribed(t, pubs[i], 1)
		adversaries(t, pubs[i], n, base)
	}
	best := []time.Duration{time.Hour, time.Hour, time.Hour}
	for range 15 {
		for i, p := range pubs {
			best[i] = min(best[i], publishBatch(t, p, topics, body))
		}
	}
	ratio := float64(best[2]) / float64(best[1])
	t.Logf("batch of 1,024 (topics of %d bytes): %v with no adversarial subscriber, %v with 1,000, %v with 3,000 (%.2fx)",
		len(topics[0]), best[0], best[1], best[2], ratio)
	if ratio >= 1.5 {
		t.Fatalf("3,000 adversarial subscribers make a batch %.2fx as costly as 1,000, want < 1.5x", ratio)
	}
}

// BenchmarkPublishAdversarialSubs: one batch of 1,024 notifications per op, to one subscribed
// peer, with 0 or 1,000 subscribers holding adversarial prefixes.
func BenchmarkPublishAdversarialSubs(b *testing.B) {
	base, topics, body := flatCostSetup(b)
	for _, n := range []int{0, 1000} {
		b.Run(fmt.Sprintf("adversaries=%d", n), func(b *testing.B) {
			pub := newBound(b, Pub, Options{SendHWM: 1 << 20, SendHWMBytes: -1}, "tcp")
			sub := newConnected(b, Sub, Options{RecvHWM: 1 << 20}, pub.LastEndpoint())
			if err := sub.Subscribe([]byte("tasks.")); err != nil {
				b.Fatal(err)
			}
			waitSubscribed(b, pub, 1)
			adversaries(b, pub, n, base)
			b.ResetTimer()
			for range b.N {
				publishBatch(b, pub, topics, body)
			}
		})
	}
}
