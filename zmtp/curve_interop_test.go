package zmtp_test

// CURVE interop with libzmq (python3-zmq through testdata/peers/zpeer.py): every socket pair,
// libzmq as the CURVE client against our server and our client against a libzmq server, with
// messages both ways; and refusals of unknown client keys seen on both sides.

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/zmtp"
)

// pyCurveServer / pyCurveClient are zpeer's arguments for a CURVE role.
func pyCurveServer(p curvePair) []string {
	return []string{"--curve-server=" + p.server.Secret.String(), "--curve-allow=" + p.client.Public.String()}
}

func pyCurveClient(p curvePair) []string {
	return []string{"--curve-client=" + p.client.Secret.String(), "--curve-serverkey=" + p.server.Public.String()}
}

func TestCurveInteropLibzmq(t *testing.T) {
	// Request/reply shapes: the side that starts talks first, the other echoes.
	cases := []struct {
		name   string
		ours   zmtp.SocketType
		theirs string
		// ourServer: our socket is the CURVE server (and binds); else libzmq is, and binds.
		ourServer bool
	}{
		{"libzmq-dealer-to-our-router", zmtp.Router, "DEALER", true},
		{"our-dealer-to-libzmq-router", zmtp.Dealer, "ROUTER", false},
		{"libzmq-req-to-our-rep", zmtp.Rep, "REQ", true},
		{"our-req-to-libzmq-rep", zmtp.Req, "REP", false},
		{"libzmq-router-to-our-dealer", zmtp.Dealer, "ROUTER", true},
		{"our-router-to-libzmq-dealer", zmtp.Router, "DEALER", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newCurvePair(t)
			var s *zmtp.Socket
			var py *py
			if tc.ourServer {
				var ep string
				s, ep = bindSocket(t, tc.ours, zmtp.Options{Security: p.serverMech(), Identity: []byte("ours")})
				args := append([]string{"--type", tc.theirs, "--connect", ep, "--identity", "theirs"}, pyCurveClient(p)...)
				if tc.theirs == "ROUTER" {
					args = append(args, "--echo")
				}
				py = startPy(t, args...)
			} else {
				args := append([]string{"--type", tc.theirs, "--bind", loopback, "--identity", "theirs"}, pyCurveServer(p)...)
				if tc.theirs != "DEALER" {
					args = append(args, "--echo")
				}
				py = startPy(t, args...)
				s = connectSocket(t, tc.ours, zmtp.Options{Security: p.clientMech(), Identity: []byte("ours")}, py.endpoint())
			}
			waitPeers(t, s, 1, joinWait)
			for i, m := range interopMsgs() {
				switch tc.ours {
				case zmtp.Router:
					// libzmq DEALER speaks first; our ROUTER echoes by identity.
					py.send(m...)
					got := recvMsg(t, s, ioWait)
					if string(got[0]) != "theirs" || !framesEqual(got[1:], m) {
						t.Fatalf("message %d: our ROUTER got %s, want [theirs] + %s", i, show(got), show(m))
					}
					sendFrames(t, s, ioWait, got...)
					if back := py.recv(ioWait); !framesEqual(back, m) {
						t.Fatalf("message %d: libzmq DEALER got %s back, want %s", i, show(back), show(m))
					}
				case zmtp.Rep:
					py.send(m...)
					got := recvMsg(t, s, ioWait)
					if !framesEqual(got, m) {
						t.Fatalf("message %d: our REP got %s, want %s", i, show(got), show(m))
					}
					sendFrames(t, s, ioWait, got...)
					if back := py.recv(ioWait); !framesEqual(back, m) {
						t.Fatalf("message %d: libzmq REQ got %s back, want %s", i, show(back), show(m))
					}
				default:
					// our DEALER or REQ speaks first; libzmq echoes.
					sendFrames(t, s, ioWait, m...)
					if got := recvMsg(t, s, ioWait); !framesEqual(got, m) {
						t.Fatalf("message %d: echo through libzmq %s: got %s, want %s", i, tc.theirs, show(got), show(m))
					}
				}
			}
		})
	}
}

func TestCurveInteropLibzmqPubSub(t *testing.T) {
	for _, ourPub := range []bool{true, false} {
		for _, ourServer := range []bool{true, false} {
			t.Run(fmt.Sprintf("our-pub=%v/our-server=%v", ourPub, ourServer), func(t *testing.T) {
				p := newCurvePair(t)
				ourType, theirType := zmtp.Sub, "SUB"
				if ourPub {
					ourType = zmtp.Pub
				} else {
					theirType = "PUB"
				}
				var s *zmtp.Socket
				var py *py
				args := []string{"--type", theirType}
				if !ourPub {
					// libzmq PUB: nothing to subscribe on its side.
				} else {
					args = append(args, "--subscribe", "A")
				}
				if ourServer {
					var ep string
					s, ep = bindSocket(t, ourType, zmtp.Options{Security: p.serverMech()})
					py = startPy(t, append(append(args, "--connect", ep), pyCurveClient(p)...)...)
				} else {
					py = startPy(t, append(append(args, "--bind", loopback), pyCurveServer(p)...)...)
					s = connectSocket(t, ourType, zmtp.Options{Security: p.clientMech()}, py.endpoint())
				}
				if !ourPub {
					if err := s.Subscribe([]byte("A")); err != nil {
						t.Fatal(err)
					}
				}
				waitPeers(t, s, 1, joinWait)
				ctx := testutil.Context(t, 20*time.Second)
				publish := func(frames ...[]byte) {
					if ourPub {
						if err := s.SendFrames(ctx, frames...); err != nil {
							t.Fatalf("PUB send: %v", err)
						}
						return
					}
					py.send(frames...)
				}
				receive := func(d time.Duration) ([][]byte, bool) {
					if ourPub {
						return py.tryRecv(d)
					}
					return tryRecv(s, d)
				}
				// The subscription travels after the handshake: publish probes until one arrives.
				if !testutil.Poll(joinWait, func() bool {
					publish([]byte("A-probe"))
					_, ok := receive(20 * time.Millisecond)
					return ok
				}) {
					t.Fatal("the subscriber never received a message under its subscription")
				}
				publish([]byte("B-filtered"))
				publish([]byte("A"), []byte("multi"), []byte{}, bytes.Repeat([]byte{7}, 3000))
				for {
					got, ok := receive(ioWait)
					if !ok {
						t.Fatal("subscriber: nothing after the probes")
					}
					if len(got) == 1 && string(got[0]) == "A-probe" {
						continue
					}
					if want := [][]byte{[]byte("A"), []byte("multi"), {}, bytes.Repeat([]byte{7}, 3000)}; !framesEqual(got, want) {
						t.Fatalf("subscriber got %s, want %s (B-filtered must not arrive)", show(got), show(want))
					}
					break
				}
			})
		}
	}
}

func TestCurveInteropLibzmqRefusals(t *testing.T) {
	t.Run("libzmq-client-unknown-key", func(t *testing.T) {
		// Our server refuses the key with an ERROR command; libzmq reports a failed
		// handshake, and nothing it sends arrives.
		p := newCurvePair(t)
		stranger := curvePair{server: p.server, client: curveKeys(t)}
		var rec recorder
		r, ep := bindSocket(t, zmtp.Router, zmtp.Options{Security: p.serverMech(), Monitor: rec.Monitor})
		py := startPy(t, append([]string{"--type", "DEALER", "--connect", ep, "--monitor"}, pyCurveClient(stranger)...)...)
		py.send([]byte("must not arrive"))
		py.event("HANDSHAKE_FAILED_", joinWait)
		if py.proc.Seen("EVENT HANDSHAKE_SUCCEEDED") {
			t.Fatalf("libzmq client with an unknown key completed its handshake: %q", py.proc.Lines())
		}
		testutil.Eventually(t, joinWait, func() bool { return r.Stats().HandshakeFailures > 0 },
			"our server counted no failed handshake; events %v", &rec)
		if got, ok := tryRecv(r, 100*time.Millisecond); ok {
			t.Fatalf("our ROUTER received %s from an unknown key", show(got))
		}
	})
	t.Run("our-client-unknown-key", func(t *testing.T) {
		p := newCurvePair(t)
		stranger := curvePair{server: p.server, client: curveKeys(t)}
		var rec recorder
		py := startPy(t, append([]string{"--type", "ROUTER", "--bind", loopback, "--monitor"}, pyCurveServer(p)...)...)
		connectSocket(t, zmtp.Dealer, zmtp.Options{Security: stranger.clientMech(), Monitor: rec.Monitor}, py.endpoint())
		py.event("HANDSHAKE_FAILED_AUTH", joinWait)
		testutil.Eventually(t, joinWait, func() bool { return rec.count(zmtp.EventHandshakeFailed) > 0 },
			"our client reported no failed handshake; events %v", &rec)
		if n := rec.count(zmtp.EventConnected); n != 0 {
			t.Fatalf("our client reported %d ready connections with an unknown key", n)
		}
	})
	t.Run("libzmq-null-client", func(t *testing.T) {
		var rec recorder
		r, ep := bindSocket(t, zmtp.Router, zmtp.Options{Security: newCurvePair(t).serverMech(), Monitor: rec.Monitor})
		py := startPy(t, "--type", "DEALER", "--connect", ep)
		py.send([]byte("must not arrive"))
		testutil.Eventually(t, joinWait, func() bool { return r.Stats().HandshakeFailures > 0 },
			"our CURVE server counted no failed handshake for a NULL peer; events %v", &rec)
		if got, ok := tryRecv(r, 100*time.Millisecond); ok {
			t.Fatalf("our CURVE ROUTER received %s from a NULL peer", show(got))
		}
	})
}

func TestCurveInteropLibzmqHeartbeats(t *testing.T) {
	// Over CURVE, PING and PONG travel encrypted (MESSAGE with the COMMAND flag) both ways:
	// libzmq PINGs every 100ms and drops a connection silent for 300ms; we PING too. The
	// connection must stay up through 15 idle intervals, then carry messages.
	const ivl, timeout = 100 * time.Millisecond, 300 * time.Millisecond
	p := newCurvePair(t)
	var rec recorder
	r, ep := bindSocket(t, zmtp.Router, zmtp.Options{Security: p.serverMech(), Monitor: rec.Monitor,
		HeartbeatInterval: ivl, HeartbeatTimeout: timeout})
	py := startPy(t, append([]string{"--type", "DEALER", "--connect", ep, "--identity", "hb", "--monitor",
		"--heartbeat-ivl", fmt.Sprint(ivl.Milliseconds()), "--heartbeat-timeout", fmt.Sprint(timeout.Milliseconds())},
		pyCurveClient(p)...)...)
	waitPeers(t, r, 1, joinWait)
	py.event("HANDSHAKE_SUCCEEDED", joinWait)
	// The quiet period is the behaviour under test: any disconnect within it fails.
	if testutil.Poll(15*ivl, func() bool {
		return py.proc.Seen("EVENT DISCONNECTED") || rec.count(zmtp.EventDisconnected) > 0 || r.Stats().Peers != 1
	}) {
		t.Fatalf("CURVE connection dropped while idle with heartbeats on; our events: %v; libzmq lines: %q", &rec, py.proc.Lines())
	}
	py.send([]byte("still here"))
	if got := recvMsg(t, r, ioWait); len(got) != 2 || string(got[1]) != "still here" {
		t.Fatalf("after the idle period our ROUTER got %s", show(got))
	}
	sendFrames(t, r, ioWait, []byte("hb"), []byte("and you"))
	if back := py.recv(ioWait); len(back) != 1 || string(back[0]) != "and you" {
		t.Fatalf("after the idle period libzmq got %s", show(back))
	}
}
