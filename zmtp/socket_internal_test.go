package zmtp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/testutil"
)

// TestSocketPairs runs every socket pair over tcp and ipc: multipart, empty frames and the
// envelopes of each type, both ways where the pair allows it.
func TestSocketPairs(t *testing.T) {
	msgs := [][][]byte{
		{[]byte("one")},
		{[]byte("multi"), []byte("part"), []byte("message")},
		{{}, []byte("empty first")},
		{[]byte("empty last"), {}},
		{bytes.Repeat([]byte("x"), 300)}, // long frame form
	}
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			t.Run("DEALER-ROUTER", func(t *testing.T) {
				r := newBound(t, Router, Options{}, tr)
				d := newConnected(t, Dealer, Options{Identity: []byte("dealer-1")}, r.LastEndpoint())
				for _, m := range msgs {
					send(t, d, m...)
					got := recv(t, r)
					if string(got[0]) != "dealer-1" || !framesEqual(got[1:], m) {
						t.Fatalf("ROUTER got %s, want [dealer-1]+%s", show(got), show(m))
					}
					send(t, r, got...)
					if back := recv(t, d); !framesEqual(back, m) {
						t.Fatalf("DEALER got %s, want %s", show(back), show(m))
					}
				}
			})
			t.Run("DEALER-ROUTER generated identity", func(t *testing.T) {
				r := newBound(t, Router, Options{}, tr)
				d := newConnected(t, Dealer, Options{}, r.LastEndpoint())
				send(t, d, []byte("hi"))
				got := recv(t, r)
				if len(got[0]) != 5 || got[0][0] != 0 {
					t.Fatalf("generated identity %q: want 5 bytes starting with 0", got[0])
				}
				send(t, r, got[0], []byte("back"))
				if back := recv(t, d); string(back[0]) != "back" {
					t.Fatalf("DEALER got %s", show(back))
				}
			})
			t.Run("REQ-ROUTER", func(t *testing.T) {
				r := newBound(t, Router, Options{}, tr)
				q := newConnected(t, Req, Options{Identity: []byte("req")}, r.LastEndpoint())
				for _, m := range msgs {
					send(t, q, m...)
					got := recv(t, r)
					if string(got[0]) != "req" || len(got[1]) != 0 || !framesEqual(got[2:], m) {
						t.Fatalf("ROUTER got %s, want [req, \"\"]+%s", show(got), show(m))
					}
					send(t, r, got...) // echo, delimiter included
					if back := recv(t, q); !framesEqual(back, m) {
						t.Fatalf("REQ got %s, want %s", show(back), show(m))
					}
				}
			})
			t.Run("REQ-REP", func(t *testing.T) {
				rep := newBound(t, Rep, Options{}, tr)
				q := newConnected(t, Req, Options{}, rep.LastEndpoint())
				for _, m := range msgs {
					send(t, q, m...)
					if got := recv(t, rep); !framesEqual(got, m) {
						t.Fatalf("REP got %s, want %s", show(got), show(m))
					}
					send(t, rep, append([][]byte{[]byte("re:")}, m...)...)
					if back := recv(t, q); !framesEqual(back[1:], m) || string(back[0]) != "re:" {
						t.Fatalf("REQ got %s", show(back))
					}
				}
				// Strict alternation, as libzmq.
				ctx := testutil.Context(t, ioWait)
				if _, err := q.Recv(ctx); !errors.Is(err, ErrState) {
					t.Fatalf("REQ Recv before Send: %v, want ErrState", err)
				}
				if err := rep.SendFrames(ctx, []byte("x")); !errors.Is(err, ErrState) {
					t.Fatalf("REP Send before Recv: %v, want ErrState", err)
				}
			})
			t.Run("DEALER-REP", func(t *testing.T) {
				rep := newBound(t, Rep, Options{}, tr)
				d := newConnected(t, Dealer, Options{}, rep.LastEndpoint())
				send(t, d, []byte("env"), []byte{}, []byte("body"))
				if got := recv(t, rep); len(got) != 1 || string(got[0]) != "body" {
					t.Fatalf("REP got %s", show(got))
				}
				send(t, rep, []byte("reply"))
				if back := recv(t, d); !framesEqual(back, [][]byte{[]byte("env"), {}, []byte("reply")}) {
					t.Fatalf("DEALER got %s", show(back))
				}
			})
			t.Run("DEALER-DEALER", func(t *testing.T) {
				a := newBound(t, Dealer, Options{}, tr)
				b := newConnected(t, Dealer, Options{}, a.LastEndpoint())
				for _, m := range msgs {
					send(t, b, m...)
					if got := recv(t, a); !framesEqual(got, m) {
						t.Fatalf("got %s, want %s", show(got), show(m))
					}
					send(t, a, m...)
					if got := recv(t, b); !framesEqual(got, m) {
						t.Fatalf("got %s, want %s", show(got), show(m))
					}
				}
			})
			t.Run("ROUTER-ROUTER", func(t *testing.T) {
				a := newBound(t, Router, Options{Identity: []byte("A")}, tr)
				b := newConnected(t, Router, Options{Identity: []byte("B")}, a.LastEndpoint())
				waitPeers(t, b, 1)
				send(t, b, []byte("A"), []byte("to a"))
				if got := recv(t, a); !framesEqual(got, [][]byte{[]byte("B"), []byte("to a")}) {
					t.Fatalf("A got %s", show(got))
				}
				send(t, a, []byte("B"), []byte("to b"))
				if got := recv(t, b); !framesEqual(got, [][]byte{[]byte("A"), []byte("to b")}) {
					t.Fatalf("B got %s", show(got))
				}
			})
			t.Run("PUB-SUB", func(t *testing.T) {
				pub := newBound(t, Pub, Options{}, tr)
				sub := newConnected(t, Sub, Options{}, pub.LastEndpoint())
				if err := sub.Subscribe(nil); err != nil {
					t.Fatal(err)
				}
				waitSubscribed(t, pub, 1)
				for _, m := range msgs {
					send(t, pub, m...)
					if got := recv(t, sub); !framesEqual(got, m) {
						t.Fatalf("SUB got %s, want %s", show(got), show(m))
					}
				}
			})
			t.Run("incompatible types", func(t *testing.T) {
				var mu sync.Mutex
				var failed []error
				r := newBound(t, Router, Options{Monitor: func(e Event) {
					if e.Type == EventHandshakeFailed {
						mu.Lock()
						failed = append(failed, e.Err)
						mu.Unlock()
					}
				}}, tr)
				_ = newConnected(t, Pub, Options{ReconnectInterval: time.Hour}, r.LastEndpoint())
				testutil.Eventually(t, wait, func() bool { return r.Stats().HandshakeFailures >= 1 }, "PUB->ROUTER not refused")
				if r.Stats().Peers != 0 {
					t.Fatalf("ROUTER accepted a PUB peer")
				}
			})
		})
	}
}

// waitSubscribed waits until n peers of a PUB hold a subscription.
func waitSubscribed(t testing.TB, pub *Socket, n int) {
	t.Helper()
	testutil.Eventually(t, wait, func() bool { return pub.peerSubscribed() == n }, "want %d subscribed peers", n)
}

// TestMessageSizeLimit: a message at MaxMsgSize (one frame, or frames adding up to it) is
// delivered; one byte more closes the connection, counts a protocol error and delivers
// nothing; the socket keeps serving others.
func TestMessageSizeLimit(t *testing.T) {
	const limit = 100 << 10
	for _, tr := range transports {
		for _, tc := range []struct {
			name   string
			frames []int
			ok     bool
		}{
			{"one frame at limit", []int{limit}, true},
			{"frames adding to limit", []int{limit / 2, limit / 2}, true},
			{"one frame past limit", []int{limit + 1}, false},
			{"frames adding past limit", []int{limit / 2, limit/2 + 1}, false},
		} {
			t.Run(tr+"/"+tc.name, func(t *testing.T) {
				r := newBound(t, Router, Options{MaxMsgSize: limit}, tr)
				d := newConnected(t, Dealer, Options{Identity: []byte("big"), ReconnectInterval: time.Hour}, r.LastEndpoint())
				waitPeers(t, r, 1)
				var frames [][]byte
				for i, n := range tc.frames {
					frames = append(frames, bytes.Repeat([]byte{byte('a' + i)}, n))
				}
				send(t, d, frames...)
				if tc.ok {
					got := recv(t, r)
					if !framesEqual(got[1:], frames) {
						t.Fatalf("got %d frames, want %d", len(got)-1, len(frames))
					}
					return
				}
				testutil.Eventually(t, wait, func() bool { return r.Stats().ProtocolErrors == 1 && r.Stats().Peers == 0 },
					"oversized message: stats %+v", r.Stats())
				if got, ok := tryRecv(r, 50*time.Millisecond); ok {
					t.Fatalf("oversized message delivered: %s", show(got))
				}
			})
		}
	}
}

// TestHugeFrameHeader: a header announcing 2^63 bytes closes the connection before anything
// is allocated for it.
func TestHugeFrameHeader(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			r := newBound(t, Router, Options{}, tr)
			p := dialRaw(t, r.LastEndpoint())
			p.handshake("DEALER", "huge", 1)
			waitPeers(t, r, 1)
			var before, after runtimeMem
			before.read()
			if err := p.write(longHeader(0, 1<<63)); err != nil {
				t.Fatal(err)
			}
			p.waitClosed(wait)
			after.read()
			testutil.Eventually(t, wait, func() bool { return r.Stats().ProtocolErrors == 1 }, "not counted: %+v", r.Stats())
			if grown := int64(after.total) - int64(before.total); grown > 64<<20 {
				t.Fatalf("%d bytes allocated for a 2^63 header", grown)
			}
		})
	}
}

// TestDealerRoundRobin: a DEALER connected to three ROUTERs spreads messages evenly.
func TestDealerRoundRobin(t *testing.T) {
	d := NewDealer(Options{})
	t.Cleanup(func() { d.Close() })
	var rs []*Socket
	for range 3 {
		r := newBound(t, Router, Options{}, "tcp")
		rs = append(rs, r)
		if err := d.Connect(r.LastEndpoint()); err != nil {
			t.Fatal(err)
		}
	}
	waitPeers(t, d, 3)
	const per = 100
	for i := range 3 * per {
		send(t, d, []byte(fmt.Sprint(i)))
	}
	for i, r := range rs {
		for range per {
			recv(t, r)
		}
		if got, ok := tryRecv(r, 20*time.Millisecond); ok {
			t.Fatalf("ROUTER %d got more than %d messages: %s", i, per, show(got))
		}
		if in := r.Stats().MsgsIn; in != per {
			t.Fatalf("ROUTER %d: MsgsIn %d, want %d", i, in, per)
		}
	}
}

// TestDealerWaitsForPeer: Send on a DEALER with no peer waits, then goes to the first peer
// that connects; with a context that ends first it fails with ErrNoPeer; TrySend fails at
// once.
func TestDealerWaitsForPeer(t *testing.T) {
	ep := testutil.FreeEndpoint(t)
	d := newConnected(t, Dealer, Options{ReconnectInterval: 10 * time.Millisecond}, ep)
	m := AcquireMsg()
	m.AddFrame([]byte("early"))
	defer m.Release()
	if err := d.TrySend(m); !errors.Is(err, ErrNoPeer) {
		t.Fatalf("TrySend with no peer: %v, want ErrNoPeer", err)
	}
	short, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := d.Send(short, m); !errors.Is(err, ErrNoPeer) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send with no peer and a short context: %v", err)
	}
	errc := make(chan error, 1)
	go func() { errc <- d.Send(context.Background(), m) }()
	r := NewRouter(Options{})
	t.Cleanup(func() { r.Close() })
	if err := r.Bind(ep); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, r); string(got[1]) != "early" {
		t.Fatalf("ROUTER got %s", show(got))
	}
	if err := <-errc; err != nil {
		t.Fatalf("blocked Send: %v", err)
	}
}

// TestRouterUnknownPeer: sending to an identity nobody has fails at once, also after the peer
// left.
func TestRouterUnknownPeer(t *testing.T) {
	r := newBound(t, Router, Options{}, "tcp")
	if err := r.SendFrames(context.Background(), []byte("nobody"), []byte("x")); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("send to unknown identity: %v", err)
	}
	d := NewDealer(Options{Identity: []byte("gone")})
	if err := d.Connect(r.LastEndpoint()); err != nil {
		t.Fatal(err)
	}
	waitPeers(t, r, 1)
	send(t, r, []byte("gone"), []byte("hello"))
	d.Close()
	waitPeers(t, r, 0)
	if err := r.SendFrames(context.Background(), []byte("gone"), []byte("x")); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("send to a departed peer: %v", err)
	}
}

// TestRouterSlowPeer: a peer that stops reading fills its own queue only: sends to it fail
// with ErrQueueFull (TrySend at once, Send when its context ends) while another peer keeps
// receiving.
func TestRouterSlowPeer(t *testing.T) {
	r := newBound(t, Router, Options{SendHWM: 4}, "tcp")
	slow := newConnected(t, Dealer, Options{Identity: []byte("slow"), RecvHWM: 1}, r.LastEndpoint())
	fast := newConnected(t, Dealer, Options{Identity: []byte("fast")}, r.LastEndpoint())
	waitPeers(t, r, 2)
	_ = slow
	big := bytes.Repeat([]byte("s"), 256<<10)
	m := AcquireMsg()
	defer m.Release()
	m.Frames = append(m.Frames, []byte("slow"), big)
	full := false
	for i := 0; i < 10000 && !full; i++ {
		err := r.TrySend(m)
		switch {
		case errors.Is(err, ErrQueueFull):
			full = true
		case err != nil:
			t.Fatalf("TrySend: %v", err)
		case i%8 == 7:
			time.Sleep(time.Millisecond) // let the writer push into the kernel buffers
		}
	}
	if !full {
		t.Fatal("slow peer's queue never filled")
	}
	// The writer may still move one batch into the kernel: keep sending until a Send has
	// to wait out its context.
	var err error
	for i := 0; i < 1000 && err == nil; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		err = r.Send(ctx, m)
		cancel()
	}
	if !errors.Is(err, ErrQueueFull) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send to a full peer: %v, want ErrQueueFull wrapping the deadline", err)
	}
	// A blocked send to the slow peer does not block sends to the fast one.
	blocked := make(chan error, 1)
	bctx, bcancel := context.WithCancel(context.Background())
	go func() { blocked <- r.Send(bctx, m) }()
	for i := range 100 {
		send(t, r, []byte("fast"), []byte(fmt.Sprint(i)))
		if got := recv(t, fast); string(got[0]) != fmt.Sprint(i) {
			t.Fatalf("fast peer got %s", show(got))
		}
	}
	bcancel()
	// The kernel may have taken one more batch meanwhile (nil); otherwise it waited.
	if err := <-blocked; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("blocked send: %v", err)
	}
}

// TestPubSubFilterAndDrops: the PUB filters by prefix, and drops (counting) for a subscriber
// past its HWM without ever blocking.
func TestPubSubFilterAndDrops(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			pub := newBound(t, Pub, Options{}, tr)
			a := newConnected(t, Sub, Options{}, pub.LastEndpoint())
			b := newConnected(t, Sub, Options{}, pub.LastEndpoint())
			_ = a.Subscribe([]byte("weather."))
			_ = b.Subscribe([]byte("sport."))
			_ = b.Subscribe([]byte("weather.paris"))
			waitSubscribed(t, pub, 2)
			send(t, pub, []byte("news.x"), []byte("nobody"))
			send(t, pub, []byte("weather.london"), []byte("rain"))
			send(t, pub, []byte("weather.paris"), []byte("sun"))
			send(t, pub, []byte("sport.ball"), []byte("3-1"))
			want := map[*Socket][]string{a: {"weather.london", "weather.paris"}, b: {"weather.paris", "sport.ball"}}
			for s, topics := range want {
				for _, tp := range topics {
					if got := recv(t, s); string(got[0]) != tp {
						t.Fatalf("got %s, want topic %s", show(got), tp)
					}
				}
				if got, ok := tryRecv(s, 20*time.Millisecond); ok {
					t.Fatalf("unexpected %s", show(got))
				}
			}
			// Unsubscribe stops the flow.
			_ = b.Unsubscribe([]byte("sport."))
			testutil.Eventually(t, wait, func() bool {
				send(t, pub, []byte("sport.ball"), []byte("late"))
				send(t, pub, []byte("weather.paris"), []byte("marker"))
				got := recv(t, b)
				return string(got[1]) == "marker"
			}, "unsubscribe never took effect")
		})
	}
	t.Run("drops at HWM", func(t *testing.T) {
		pub := newBound(t, Pub, Options{SendHWM: 2}, "tcp")
		sub := newConnected(t, Sub, Options{RecvHWM: 1}, pub.LastEndpoint())
		_ = sub.Subscribe(nil)
		waitSubscribed(t, pub, 1)
		big := bytes.Repeat([]byte("p"), 256<<10)
		testutil.Eventually(t, wait, func() bool {
			start := time.Now()
			for range 16 {
				send(t, pub, big) // never blocks
			}
			if time.Since(start) > time.Second {
				t.Fatalf("PUB send blocked")
			}
			return pub.Stats().Drops > 0
		}, "no drops counted")
	})
}

// TestSubResubscribesAfterReconnect: after the publisher restarts at the same endpoint, the
// SUB reconnects, sends its subscriptions again and receives.
func TestSubResubscribesAfterReconnect(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			ep := endpointFor(t, tr)
			if tr == "tcp" {
				ep = testutil.FreeEndpoint(t)
			}
			pub := NewPub(Options{})
			if err := pub.Bind(ep); err != nil {
				t.Fatal(err)
			}
			sub := newConnected(t, Sub, Options{ReconnectInterval: 10 * time.Millisecond, ReconnectIntervalMax: 50 * time.Millisecond}, ep)
			_ = sub.Subscribe([]byte("t"))
			waitSubscribed(t, pub, 1)
			send(t, pub, []byte("t1"))
			recv(t, sub)
			pub.Close()
			waitPeers(t, sub, 0)
			pub2 := newBound(t, Pub, Options{}, "tcp")
			pub2.Close()
			pub2 = NewPub(Options{})
			t.Cleanup(func() { pub2.Close() })
			if err := pub2.Bind(ep); err != nil {
				t.Fatal(err)
			}
			waitSubscribed(t, pub2, 1)
			send(t, pub2, []byte("x-filtered"))
			send(t, pub2, []byte("t2"))
			if got := recv(t, sub); string(got[0]) != "t2" {
				t.Fatalf("SUB got %s after reconnect", show(got))
			}
			if sub.Stats().Reconnects == 0 {
				t.Fatal("no reconnect counted")
			}
		})
	}
}

// TestReconnectAfterRestart: a DEALER reconnects to a ROUTER restarted at the same endpoint
// and messages flow again.
func TestReconnectAfterRestart(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			ep := endpointFor(t, tr)
			if tr == "tcp" {
				ep = testutil.FreeEndpoint(t)
			}
			r := NewRouter(Options{})
			if err := r.Bind(ep); err != nil {
				t.Fatal(err)
			}
			d := newConnected(t, Dealer, Options{Identity: []byte("d"), ReconnectInterval: 10 * time.Millisecond}, ep)
			send(t, d, []byte("before"))
			recv(t, r)
			r.Close()
			waitPeers(t, d, 0)
			r2 := NewRouter(Options{})
			t.Cleanup(func() { r2.Close() })
			if err := r2.Bind(ep); err != nil {
				t.Fatal(err)
			}
			send(t, d, []byte("after"))
			if got := recv(t, r2); string(got[0]) != "d" || string(got[1]) != "after" {
				t.Fatalf("restarted ROUTER got %s", show(got))
			}
		})
	}
}

// TestPlain: good credentials connect and carry messages; bad ones fail the handshake on
// both sides and nothing is delivered.
func TestPlain(t *testing.T) {
	auth := PlainCredentials(map[string]string{"admin": "secret"})
	for _, tc := range []struct {
		user, pass string
		ok         bool
	}{{"admin", "secret", true}, {"admin", "wrong", false}, {"eve", "secret", false}, {"", "", false}} {
		t.Run(tc.user+":"+tc.pass, func(t *testing.T) {
			r := newBound(t, Router, Options{Security: PlainServer(auth)}, "tcp")
			d := newConnected(t, Dealer, Options{Security: PlainClient(tc.user, tc.pass), ReconnectInterval: time.Hour}, r.LastEndpoint())
			if tc.ok {
				send(t, d, []byte("over plain"))
				if got := recv(t, r); string(got[1]) != "over plain" {
					t.Fatalf("got %s", show(got))
				}
				return
			}
			testutil.Eventually(t, wait, func() bool {
				return r.Stats().HandshakeFailures == 1 && d.Stats().HandshakeFailures == 1
			}, "bad credentials: server %+v client %+v", r.Stats(), d.Stats())
			if r.Stats().Peers != 0 || d.Stats().Peers != 0 {
				t.Fatal("peer connected with bad credentials")
			}
		})
	}
	t.Run("nil auth refuses", func(t *testing.T) {
		r := newBound(t, Router, Options{Security: PlainServer(nil)}, "tcp")
		_ = newConnected(t, Dealer, Options{Security: PlainClient("a", "b"), ReconnectInterval: time.Hour}, r.LastEndpoint())
		testutil.Eventually(t, wait, func() bool { return r.Stats().HandshakeFailures == 1 }, "nil auth accepted")
	})
	t.Run("mechanism mismatch", func(t *testing.T) {
		r := newBound(t, Router, Options{Security: PlainServer(auth)}, "tcp")
		_ = newConnected(t, Dealer, Options{ReconnectInterval: time.Hour}, r.LastEndpoint())
		testutil.Eventually(t, wait, func() bool { return r.Stats().HandshakeFailures == 1 }, "NULL client accepted by a PLAIN server")
	})
}

// TestHeartbeat: a peer that completes the handshake and then stays silent (no PONG) is
// closed after HeartbeatTimeout; a live peer answering PINGs stays through many timeouts.
func TestHeartbeat(t *testing.T) {
	// Generous: a loaded machine under -race can stall a process for a few hundred ms.
	const ivl, timeout = 50 * time.Millisecond, time.Second
	r := newBound(t, Router, Options{HeartbeatInterval: ivl, HeartbeatTimeout: timeout}, "tcp")
	live := newConnected(t, Dealer, Options{Identity: []byte("live")}, r.LastEndpoint())
	p := dialRaw(t, r.LastEndpoint())
	p.handshake("DEALER", "silent", 1)
	waitPeers(t, r, 2)
	// The silent peer gets PINGs, answers nothing, and is closed.
	frames, kind, err := p.readMsg(wait)
	if err != nil || kind != kindCommand {
		t.Fatalf("expected a PING: %v", err)
	}
	if name, data, _ := splitCommand(frames[0]); string(name) != "PING" || len(data) < 2 {
		t.Fatalf("got command %q", frames[0])
	}
	took := p.waitClosed(wait)
	if took > 10*timeout {
		t.Fatalf("silent peer closed after %v, want about %v", took, timeout)
	}
	testutil.Eventually(t, wait, func() bool { return r.Stats().HeartbeatTimeouts == 1 }, "stats %+v", r.Stats())
	waitPeers(t, r, 1)
	// The live peer (our DEALER answers PINGs) is still there well past the timeout.
	deadline := time.Now().Add(5 * timeout / 2)
	for time.Now().Before(deadline) {
		if r.Stats().Peers != 1 {
			t.Fatal("live peer dropped")
		}
		time.Sleep(timeout / 4) // observing over time, not synchronizing
	}
	send(t, live, []byte("still here"))
	recv(t, r)
}

// TestHeartbeatPeerTTL: a peer's PING TTL is honoured: silent past it, the connection closes.
func TestHeartbeatPeerTTL(t *testing.T) {
	r := newBound(t, Router, Options{}, "tcp")
	p := dialRaw(t, r.LastEndpoint())
	p.handshake("DEALER", "ttl", 1)
	waitPeers(t, r, 1)
	ping := appendCommand(nil, "PING", []byte{0, 1}, []byte("ctx")) // TTL 100ms
	if err := p.write(ping); err != nil {
		t.Fatal(err)
	}
	frames, kind, err := p.readMsg(wait)
	if err != nil || kind != kindCommand {
		t.Fatalf("no PONG: %v", err)
	}
	if name, data, _ := splitCommand(frames[0]); string(name) != "PONG" || string(data) != "ctx" {
		t.Fatalf("got %q, want PONG with the context", frames[0])
	}
	if took := p.waitClosed(wait); took > 2*time.Second {
		t.Fatalf("closed after %v with a 100ms TTL", took)
	}
	testutil.Eventually(t, wait, func() bool { return r.Stats().HeartbeatTimeouts == 1 }, "stats %+v", r.Stats())
}

// TestMaxConns: at MaxConns, one more connection is closed at once and counted; freeing a
// slot lets a new one in.
func TestMaxConns(t *testing.T) {
	const max = 3
	r := newBound(t, Router, Options{MaxConns: max}, "tcp")
	var ds []*Socket
	for i := range max {
		ds = append(ds, newConnected(t, Dealer, Options{Identity: []byte{byte('a' + i)}}, r.LastEndpoint()))
	}
	waitPeers(t, r, max)
	p := dialRaw(t, r.LastEndpoint())
	if took := p.waitClosed(wait); took > time.Second {
		t.Fatalf("connection past MaxConns closed after %v", took)
	}
	testutil.Eventually(t, wait, func() bool { return r.Stats().Refused == 1 }, "stats %+v", r.Stats())
	ds[0].Close()
	waitPeers(t, r, max-1)
	_ = newConnected(t, Dealer, Options{Identity: []byte("late")}, r.LastEndpoint())
	waitPeers(t, r, max)
}

// TestHandshakeTimeout: a client that connects and says nothing is closed after
// HandshakeTimeout, and does not delay a good peer meanwhile.
func TestHandshakeTimeout(t *testing.T) {
	const hs = 300 * time.Millisecond
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			r := newBound(t, Router, Options{HandshakeTimeout: hs}, tr)
			silent := dialRaw(t, r.LastEndpoint())
			start := time.Now()
			d := newConnected(t, Dealer, Options{Identity: []byte("good")}, r.LastEndpoint())
			send(t, d, []byte("hello"))
			recv(t, r)
			if took := time.Since(start); took >= hs {
				t.Fatalf("good peer took %v, as long as the silent one's deadline", took)
			}
			if took := silent.waitClosed(wait); took > 10*hs {
				t.Fatalf("silent peer closed after %v", took)
			}
			testutil.Eventually(t, wait, func() bool { return r.Stats().HandshakeFailures == 1 }, "stats %+v", r.Stats())
		})
	}
}

// TestProtocolViolations: each violation closes that connection at once and is counted;
// the socket keeps serving.
func TestProtocolViolations(t *testing.T) {
	null := rawGreeting(1)
	ready := appendCommand(nil, "READY", appendProperty(nil, "Socket-Type", []byte("DEALER")))
	badSig := append([]byte{}, null...)
	badSig[0] = 0x00
	badMech := appendGreeting(nil, "CURVE", false)
	oldVer := append([]byte{}, null...)
	oldVer[10] = 2
	for _, tc := range []struct {
		name      string
		bytes     []byte
		handshake bool // counted as a handshake failure (else a protocol error after READY)
	}{
		{"bad signature", badSig, true},
		{"unknown mechanism", badMech, true},
		{"version 2", oldVer, true},
		{"message before READY", append(append([]byte{}, null...), frameBytes(0, []byte("x"))...), true},
		{"unknown command before READY", append(append([]byte{}, null...), appendCommand(nil, "HELLO")...), true},
		{"no socket type", append(append([]byte{}, null...), appendCommand(nil, "READY")...), true},
		{"reserved flag bits", concat(null, ready, []byte{0x80, 1, 'x'}), false},
		{"command with MORE", concat(null, ready, []byte{flagCommand | flagMore, 1, 'x'}), false},
		{"command inside multipart", concat(null, ready, frameBytes(flagMore, []byte("a")), appendCommand(nil, "PING", []byte{0, 0})), false},
		{"unknown command", concat(null, ready, appendCommand(nil, "BOGUS")), false},
		{"malformed PING", concat(null, ready, appendCommand(nil, "PING")), false},
		{"empty command", concat(null, ready, []byte{flagCommand, 0}), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newBound(t, Router, Options{}, "tcp")
			p := dialRaw(t, r.LastEndpoint())
			_ = p.write(tc.bytes)
			if took := p.waitClosed(wait); took > time.Second {
				t.Fatalf("closed after %v", took)
			}
			testutil.Eventually(t, wait, func() bool {
				st := r.Stats()
				if tc.handshake {
					return st.HandshakeFailures == 1
				}
				return st.ProtocolErrors == 1
			}, "stats %+v", r.Stats())
			d := newConnected(t, Dealer, Options{}, r.LastEndpoint())
			send(t, d, []byte("still serving"))
			recv(t, r)
		})
	}
}

func concat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// TestZMTP30Peer: a ZMTP 3.0 SUB subscribes with a 0x01 message and gets what it asked for;
// a 3.0 peer gets no PING, and once silent past the heartbeat timeout it is closed.
func TestZMTP30Peer(t *testing.T) {
	pub := newBound(t, Pub, Options{HeartbeatInterval: 100 * time.Millisecond, HeartbeatTimeout: time.Second}, "tcp")
	p := dialRaw(t, pub.LastEndpoint())
	p.handshake("SUB", "", 0)
	_ = p.write(frameBytes(0, []byte("\x01news")))
	waitSubscribed(t, pub, 1)
	send(t, pub, []byte("other"))
	send(t, pub, []byte("news!"))
	frames, kind, err := p.readMsg(wait)
	if err != nil || kind != kindData || string(frames[0]) != "news!" {
		t.Fatalf("3.0 SUB got %q kind %v err %v", frames, kind, err)
	}
	// 3.0 has no PING: a peer silent past the heartbeat timeout is closed all the same.
	p.waitClosed(wait)
	testutil.Eventually(t, wait, func() bool { return pub.Stats().HeartbeatTimeouts == 1 && pub.Stats().Peers == 0 },
		"silent 3.0 peer: %+v", pub.Stats())
}

// TestIdentityInUse: a second peer with an identity in use is refused, or takes over with
// RouterHandover.
func TestIdentityInUse(t *testing.T) {
	for _, handover := range []bool{false, true} {
		t.Run(fmt.Sprint("handover=", handover), func(t *testing.T) {
			r := newBound(t, Router, Options{RouterHandover: handover}, "tcp")
			first := newConnected(t, Dealer, Options{Identity: []byte("same")}, r.LastEndpoint())
			waitPeers(t, r, 1)
			second := newConnected(t, Dealer, Options{Identity: []byte("same"), ReconnectInterval: time.Hour}, r.LastEndpoint())
			if !handover {
				testutil.Eventually(t, wait, func() bool { return r.Stats().Refused == 1 }, "second not refused: %+v", r.Stats())
				send(t, r, []byte("same"), []byte("to first"))
				recv(t, first)
				return
			}
			testutil.Eventually(t, wait, func() bool { return first.Stats().Peers == 0 && second.Stats().Peers == 1 }, "no handover")
			send(t, r, []byte("same"), []byte("to second"))
			recv(t, second)
		})
	}
}

// TestRouterAssignIdentities: with RouterAssignIdentities two peers that send the same
// identity both connect, each under an identity of the ROUTER's making (a zero byte and 16
// random bytes), and each gets its own replies.
func TestRouterAssignIdentities(t *testing.T) {
	r := newBound(t, Router, Options{RouterAssignIdentities: true}, "tcp")
	a := newConnected(t, Dealer, Options{Identity: []byte("same")}, r.LastEndpoint())
	b := newConnected(t, Dealer, Options{Identity: []byte("same")}, r.LastEndpoint())
	waitPeers(t, r, 2)
	seen := map[string]*Socket{}
	for _, d := range []*Socket{a, b} {
		send(t, d, []byte("hi"))
		got := recv(t, r)
		id := string(got[0])
		if len(id) != assignedIdentityLen || id[0] != 0 || seen[id] != nil {
			t.Fatalf("identity %x (seen %d)", id, len(seen))
		}
		seen[id] = d
	}
	for id, d := range seen {
		send(t, r, []byte(id), []byte("yours"))
		if got := recv(t, d); string(got[0]) != "yours" {
			t.Fatalf("reply %s", show(got))
		}
	}
	if s := r.Stats(); s.Refused != 0 {
		t.Fatalf("refused %d", s.Refused)
	}
}

// TestRedialBacksOffAfterRefusal: a peer refused right after its handshake (its identity in
// use) is redialled with a growing wait, not every ReconnectInterval.
func TestRedialBacksOffAfterRefusal(t *testing.T) {
	r := newBound(t, Router, Options{}, "tcp")
	newConnected(t, Dealer, Options{Identity: []byte("same")}, r.LastEndpoint())
	waitPeers(t, r, 1)
	const interval, window = 10 * time.Millisecond, 1500 * time.Millisecond
	second := newConnected(t, Dealer, Options{Identity: []byte("same"), ReconnectInterval: interval, ReconnectIntervalMax: time.Second}, r.LastEndpoint())
	time.Sleep(window) // the measurement window itself: how many redials fit in it
	second.Close()
	// 10+20+40+...+640 ms: 7 waits fit in 1.5 s (about 150 without backoff).
	if n := r.Stats().Refused; n < 2 || n > 12 {
		t.Fatalf("%d refusals in %v with a first wait of %v", n, window, interval)
	}
}

// TestCloseUnblocks: Close makes pending Recv and Send return ErrClosed, and later calls too.
func TestCloseUnblocks(t *testing.T) {
	r := newBound(t, Router, Options{}, "tcp")
	d := NewDealer(Options{})
	if err := d.Connect(testutil.FreeEndpoint(t)); err != nil { // nobody there: Send waits
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	go func() { _, err := r.Recv(context.Background()); errs <- err }()
	go func() { errs <- d.SendFrames(context.Background(), []byte("x")) }()
	r.Close()
	d.Close()
	for range 2 {
		if err := <-errs; !errors.Is(err, ErrClosed) {
			t.Fatalf("pending call after Close: %v", err)
		}
	}
	if _, err := r.Recv(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Recv after Close: %v", err)
	}
	if err := d.SendFrames(context.Background(), []byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
	if err := r.Bind("tcp://127.0.0.1:0"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Bind after Close: %v", err)
	}
}

// TestUnbindDisconnect: Unbind closes the endpoint and its connections; Disconnect stops
// redialing.
func TestUnbindDisconnect(t *testing.T) {
	r := newBound(t, Router, Options{}, "tcp")
	ep := r.LastEndpoint()
	d := newConnected(t, Dealer, Options{ReconnectInterval: 10 * time.Millisecond}, ep)
	waitPeers(t, r, 1)
	if err := r.Unbind(ep); err != nil {
		t.Fatal(err)
	}
	waitPeers(t, r, 0)
	waitPeers(t, d, 0)
	if err := d.Disconnect(ep); err != nil {
		t.Fatal(err)
	}
	if err := d.Disconnect(ep); !errors.Is(err, ErrEndpoint) {
		t.Fatalf("second Disconnect: %v", err)
	}
}

// TestBadEndpointsAndOptions covers argument errors.
func TestBadEndpointsAndOptions(t *testing.T) {
	s := NewDealer(Options{})
	defer s.Close()
	for _, ep := range []string{"", "inproc://x", "tcp://nohost", "tcp://:1234", "ipc://"} {
		if err := s.Connect(ep); !errors.Is(err, ErrEndpoint) {
			t.Errorf("Connect(%q): %v, want ErrEndpoint", ep, err)
		}
	}
	long := NewDealer(Options{Identity: bytes.Repeat([]byte("i"), 256)})
	defer long.Close()
	if err := long.Bind("tcp://127.0.0.1:0"); !errors.Is(err, ErrBadOption) {
		t.Errorf("256-byte identity: %v", err)
	}
	bad := NewSocket(SocketType(99), Options{})
	defer bad.Close()
	if err := bad.Bind("tcp://127.0.0.1:0"); !errors.Is(err, ErrNotSupported) {
		t.Errorf("bad type: %v", err)
	}
	pub := NewPub(Options{})
	defer pub.Close()
	if _, err := pub.Recv(context.Background()); !errors.Is(err, ErrNotSupported) {
		t.Errorf("PUB Recv: %v", err)
	}
	if err := pub.Subscribe(nil); !errors.Is(err, ErrNotSupported) {
		t.Errorf("PUB Subscribe: %v", err)
	}
	sub := NewSub(Options{})
	defer sub.Close()
	if err := sub.SendFrames(context.Background(), []byte("x")); !errors.Is(err, ErrNotSupported) {
		t.Errorf("SUB Send: %v", err)
	}
}
