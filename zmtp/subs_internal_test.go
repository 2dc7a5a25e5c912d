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
// and split spines (short words over two letters, longer ones over three, with more peers),
// the trie keeps its invariants after every step, reaches exactly the peers a naive scan of
// every peer's prefixes finds, once each, and an emptied trie is back to a bare root.
func TestPubSubsMatchesReference(t *testing.T) {
	for _, tc := range []struct {
		name            string
		peers, alphabet int
		maxLen, steps   int
	}{
		{"short", 8, 2, 6, 5000},
		{"long", 32, 3, 24, 1500},
		{"deep", 16, 2, 64, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSocket(Pub, Options{})
			defer s.Close()
			peers := make([]*conn, tc.peers)
			for i := range peers {
				peers[i] = &conn{s: s, wake: make(chan struct{}, 1)}
			}
			rng := rand.New(rand.NewPCG(1, 2))
			word := func() []byte {
				b := make([]byte, rng.IntN(tc.maxLen))
				for i := range b {
					b[i] = "abc"[rng.IntN(tc.alphabet)]
				}
				return b
			}
			for step := range tc.steps {
				c := peers[rng.IntN(len(peers))]
				if err := c.subscribe(word(), rng.IntN(3) > 0); err != nil {
					t.Fatal(err)
				}
				checkSpine(t, &s.psubs.root, true)
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
				checkSpine(t, &s.psubs.root, true)
			}
			if r := s.psubs.root; r.w != 0 || len(r.s) != 0 || len(r.ends) != 0 || len(r.forks) != 0 {
				t.Fatalf("emptied trie keeps %d bytes, %d ends and %d forks at its root", len(r.s), len(r.ends), len(r.forks))
			}
		})
	}
}

// checkSpine verifies a spine and its forks: sorted ends and forks within the spine's bytes,
// no fork on the spine's own next byte, weights that add up, no fork heavier than the
// continuation past its offset, nothing stored past the last end or fork, and (but at the
// root) nothing at offset 0. It returns the spine's weight.
func checkSpine(t *testing.T, sp *spine, root bool) int {
	t.Helper()
	w := 0
	for i, e := range sp.ends {
		if e.off > len(sp.s) || (i > 0 && sp.ends[i-1].off >= e.off) || len(e.conns) == 0 || (!root && e.off == 0) {
			t.Fatalf("bad end %d at %d of a %d-byte spine", i, e.off, len(sp.s))
		}
		w++
	}
	hi := 0
	if len(sp.ends) > 0 {
		hi = sp.ends[len(sp.ends)-1].off
	}
	for i, f := range sp.forks {
		if f.off > len(sp.s) || (i > 0 && cmpFork(sp.forks[i-1], f) >= 0) || (!root && f.off == 0) ||
			(f.off < len(sp.s) && sp.s[f.off] == f.b) || len(f.sp.s) == 0 || f.sp.s[0] != f.b {
			t.Fatalf("bad fork %d at %d (%q) of spine %q", i, f.off, f.b, sp.s)
		}
		fw := checkSpine(t, f.sp, false)
		beyond := 0
		for _, e := range sp.ends {
			if e.off > f.off {
				beyond++
			}
		}
		for _, g := range sp.forks {
			if g.off > f.off {
				beyond += g.sp.w
			}
		}
		if fw > beyond {
			t.Fatalf("fork at %d weighs %d, more than the %d past it on spine %q", f.off, fw, beyond, sp.s)
		}
		w += fw
		hi = max(hi, f.off)
	}
	if w != sp.w || (w > 0 && hi != len(sp.s)) {
		t.Fatalf("spine %q: weight %d, counted %d; last end or fork at %d", sp.s, sp.w, w, hi)
	}
	return w
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

// TestPublishCostFlat: with 1,000 subscribers holding adversarial prefixes (lengths 1..1,030,
// each leaving the topics at its last byte, so that the trie branches at every depth of the
// topics' path), a batch of 1,024 notifications costs less than 2x what it costs with none,
// and so does one with 3,000: matching costs a comparison of the topic's bytes, not a step
// per branch. Each figure is the best of several interleaved runs, so that a loaded machine
// slows all alike (BenchmarkPublishAdversarialSubs measures the same).
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
	t.Logf("batch of 1,024 (topics of %d bytes): %v with no adversarial subscriber, %v with 1,000 (%.2fx), %v with 3,000 (%.2fx)",
		len(topics[0]), best[0], best[1], float64(best[1])/float64(best[0]), best[2], float64(best[2])/float64(best[0]))
	bound := 2.0
	if raceEnabled {
		bound = 4 // the detector's instrumentation weighs on the comparison more than on the send
	}
	for i, n := range counts[1:] {
		if r := float64(best[i+1]) / float64(best[0]); r >= bound {
			t.Errorf("%d adversarial subscribers make a batch %.2fx as costly as none, want < %vx", n, r, bound)
		}
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
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				publishBatch(b, pub, topics, body)
			}
		})
	}
}
