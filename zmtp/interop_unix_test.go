//go:build unix

package zmtp_test

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/zmtp"
)

// TestInteropHeartbeatDetectsFrozenLibzmq freezes the libzmq peer with SIGSTOP: the kernel
// still acknowledges TCP for it, so only our PING/PONG heartbeat can tell that it is gone. Our
// side must report the disconnect within the heartbeat timeout plus a margin, and take the
// peer back once it is thawed (SIGCONT) and reconnects or is redialled.
func TestInteropHeartbeatDetectsFrozenLibzmq(t *testing.T) {
	const (
		ivl     = 100 * time.Millisecond
		timeout = 300 * time.Millisecond
		margin  = 700 * time.Millisecond // one interval of PING scheduling plus slack for CI
	)
	cases := []struct {
		name string
		// setup returns our socket and the frozen-to-be libzmq peer.
		setup func(t *testing.T, o zmtp.Options) (*zmtp.Socket, *py)
		// identity is the peer's routing identity as our socket addresses it (nil: a DEALER).
		identity []byte
	}{
		{
			name: "our-bound-router",
			setup: func(t *testing.T, o zmtp.Options) (*zmtp.Socket, *py) {
				r, ep := bindSocket(t, zmtp.Router, o)
				return r, startPy(t, "--type", "DEALER", "--connect", ep, "--identity", "frozen", "--reconnect-ivl", "50")
			},
			identity: []byte("frozen"),
		},
		{
			name: "our-connecting-dealer",
			setup: func(t *testing.T, o zmtp.Options) (*zmtp.Socket, *py) {
				p := startPy(t, "--type", "ROUTER", "--bind", loopback, "--echo")
				return connectSocket(t, zmtp.Dealer, o, p.endpoint()), p
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var rec recorder
			s, p := tc.setup(t, zmtp.Options{
				HeartbeatInterval: ivl, HeartbeatTimeout: timeout, Monitor: rec.Monitor,
				ReconnectInterval: 50 * time.Millisecond, ReconnectIntervalMax: 100 * time.Millisecond,
			})
			waitPeers(t, s, 1, joinWait)
			roundTrip(t, s, p, tc.identity, "before")

			if err := p.proc.Signal(syscall.SIGSTOP); err != nil {
				t.Fatalf("SIGSTOP pid %d: %v", p.proc.PID(), err)
			}
			stopped := time.Now()
			thawed := false
			thaw := func() {
				if !thawed {
					thawed = true
					_ = p.proc.Signal(syscall.SIGCONT)
				}
			}
			t.Cleanup(thaw) // the Proc's own cleanup kills it either way; SIGCONT first is tidier

			testutil.Eventually(t, timeout+ivl+margin, func() bool {
				return rec.count(zmtp.EventDisconnected) > 0 && s.Stats().Peers == 0
			}, "frozen libzmq peer not detected within %v; Peers=%d events: %v", timeout+ivl+margin, s.Stats().Peers, &rec)
			took := time.Since(stopped)
			// Detection must come from the heartbeat, not earlier: nothing else can see a
			// stopped process.
			if took < timeout-ivl {
				t.Fatalf("disconnect after %v, before the %v heartbeat timeout could pass", took, timeout)
			}
			if st := s.Stats(); st.HeartbeatTimeouts == 0 {
				t.Fatalf("Stats.HeartbeatTimeouts = 0 after a heartbeat disconnect (events: %v)", &rec)
			}
			t.Logf("frozen peer detected after %v (timeout %v)", took, timeout)

			thaw()
			waitPeers(t, s, 1, joinWait)
			roundTrip(t, s, p, tc.identity, "after SIGCONT")
		})
	}
}

// roundTrip checks that one message goes to the libzmq peer and back.
func roundTrip(t *testing.T, s *zmtp.Socket, p *py, identity []byte, tag string) {
	t.Helper()
	body := []byte(fmt.Sprintf("ping %s", tag))
	if identity == nil { // our DEALER, their echoing ROUTER
		sendFrames(t, s, ioWait, body)
		if got := recvMsg(t, s, ioWait); len(got) != 1 || string(got[0]) != string(body) {
			t.Fatalf("%s: echo got %s, want [%q]", tag, show(got), body)
		}
		return
	}
	// our ROUTER, their DEALER: the peer sends, we answer by identity. Sending first lets a
	// reconnecting DEALER be ready before we address it.
	p.send(body)
	got := recvMsg(t, s, ioWait)
	if len(got) != 2 || string(got[0]) != string(identity) || string(got[1]) != string(body) {
		t.Fatalf("%s: our ROUTER got %s", tag, show(got))
	}
	sendFrames(t, s, ioWait, identity, []byte("pong"))
	if back := p.recv(ioWait); len(back) != 1 || string(back[0]) != "pong" {
		t.Fatalf("%s: libzmq got %s", tag, show(back))
	}
}
