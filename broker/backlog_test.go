package broker

import (
	"strings"
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/zmtp"
)

// TestBacklogTotal: the replies kept for all the peers that do not read are bounded together
// (MaxBacklogTotal) as well as per peer (MaxBacklog): two such peers, each under its own bound,
// hold no more than the total (plus at most one message each, the first of a backlog always
// fits), further replies are dropped and counted, and the count of bytes kept goes back to 0
// once they leave.
func TestBacklogTotal(t *testing.T) {
	const perPeer, total = 256 << 10, 384 << 10
	b := startBroker(t, Config{SendHWM: 4, MaxBacklog: perPeer, MaxBacklogTotal: total, Logger: discardLogger()})
	req := `{"jsonrpc":"2.0","id":1,"method":"broker.stats"}`
	batch := "[" + strings.Repeat(req+",", 31) + req + "]"
	var slow []*zmtp.Socket
	for range 2 {
		s := zmtp.NewDealer(zmtp.Options{RecvHWM: 1, MaxMsgSize: -1, Logger: discardLogger()})
		if err := s.Connect(b.Addr()); err != nil {
			t.Fatal(err)
		}
		slow = append(slow, s)
		p := &tpeer{t: t, s: s}
		for range 1500 {
			p.send(batch) // replies pile up in the kernel, in zmtp, then in the broker, then dropped
		}
	}
	kept := func() (sum, most, largest, counted int64) {
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, p := range b.c.peers {
			sum += p.backlog
			most = max(most, p.backlog)
			for _, m := range p.outbox {
				largest = max(largest, int64(len(m)-1))
			}
		}
		return sum, most, largest, b.c.backlog
	}
	// Most of the 3,000 replies are dropped: neither peer reads, so its backlog no longer drains.
	testutil.Eventually(t, 30*time.Second, func() bool { return b.Stats().Unsent >= 1000 }, "replies dropped")
	sum, most, largest, counted := kept()
	if sum != counted {
		t.Errorf("peers hold %d bytes, the broker counts %d", sum, counted)
	}
	if sum > total+2*largest || most > perPeer {
		t.Errorf("kept %d bytes (most %d for one peer), bounds %d in all (plus %d per peer) and %d per peer", sum, most, total, largest, perPeer)
	}
	c := dealer(t, b)
	if got := c.call(`{"jsonrpc":"2.0","id":1,"method":"broker.ping"}`); !strings.Contains(got, "pong") {
		t.Fatalf("ping %s", got)
	}
	for _, s := range slow {
		s.Close()
	}
	testutil.Eventually(t, 10*time.Second, func() bool { _, _, _, n := kept(); return n == 0 }, "the count back to 0 once the peers left")
	t.Logf("kept %d bytes at most %d for one peer (messages up to %d bytes)", sum, most, largest)
}
