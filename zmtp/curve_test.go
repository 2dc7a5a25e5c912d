package zmtp_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/zmtp"
)

// curveKeys returns a fresh key pair.
func curveKeys(t testing.TB) zmtp.CurveKeyPair {
	t.Helper()
	kp, err := zmtp.NewCurveKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// curvePair is a server and a client key pair, and the server mechanism accepting the client.
type curvePair struct {
	server, client zmtp.CurveKeyPair
}

func newCurvePair(t testing.TB) curvePair {
	return curvePair{server: curveKeys(t), client: curveKeys(t)}
}

func (p curvePair) serverMech() zmtp.Mechanism {
	return zmtp.CurveServer(p.server, zmtp.CurveAllow(p.client.Public))
}

func (p curvePair) clientMech() zmtp.Mechanism {
	return zmtp.CurveClient(p.server.Public, p.client)
}

func TestCurveSocketPairs(t *testing.T) {
	// Every socket pair over CURVE, each side as client and as server: the messages of the
	// interop cases both ways (multipart, empty frames, frames past the chunk size).
	cases := []struct {
		name       string
		bound, con zmtp.SocketType
	}{
		{"dealer-router", zmtp.Router, zmtp.Dealer},
		{"router-dealer", zmtp.Dealer, zmtp.Router},
		{"req-rep", zmtp.Rep, zmtp.Req},
	}
	for _, tc := range cases {
		for _, serverBound := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/server-bound=%v", tc.name, serverBound), func(t *testing.T) {
				p := newCurvePair(t)
				bm, cm := p.serverMech(), p.clientMech()
				if !serverBound {
					bm, cm = cm, bm
				}
				b, ep := bindSocket(t, tc.bound, zmtp.Options{Security: bm, Identity: []byte("bound")})
				c := connectSocket(t, tc.con, zmtp.Options{Security: cm, Identity: []byte("connected")}, ep)
				waitPeers(t, b, 1, joinWait)
				waitPeers(t, c, 1, joinWait)
				curveExchange(t, tc.bound, b, tc.con, c)
			})
		}
	}
}

// curveExchange sends every interop message from c to b and back.
func curveExchange(t *testing.T, bt zmtp.SocketType, b *zmtp.Socket, ct zmtp.SocketType, c *zmtp.Socket) {
	t.Helper()
	for _, m := range interopMsgs() {
		var out [][]byte
		if ct == zmtp.Router {
			out = append([][]byte{[]byte("bound")}, m...)
		} else {
			out = m
		}
		sendFrames(t, c, ioWait, out...)
		got := recvMsg(t, b, ioWait)
		body := got
		if bt == zmtp.Router {
			if string(got[0]) != "connected" {
				t.Fatalf("identity %q, want %q", got[0], "connected")
			}
			body = got[1:]
		}
		if !framesEqual(body, m) {
			t.Fatalf("%v got %s, want %s", bt, show(body), show(m))
		}
		sendFrames(t, b, ioWait, got...)
		back := recvMsg(t, c, ioWait)
		if ct == zmtp.Router {
			back = back[1:]
		}
		if !framesEqual(back, m) {
			t.Fatalf("%v got %s back, want %s", ct, show(back), show(m))
		}
	}
}

func TestCurveMsgKey(t *testing.T) {
	// A CURVE server's received messages name the key their sender authenticated with; other
	// messages name none.
	p := newCurvePair(t)
	r, ep := bindSocket(t, zmtp.Router, zmtp.Options{Security: p.serverMech()})
	d := connectSocket(t, zmtp.Dealer, zmtp.Options{Security: p.clientMech()}, ep)
	waitPeers(t, r, 1, joinWait)
	sendFrames(t, d, ioWait, []byte("who"))
	ctx := testutil.Context(t, ioWait)
	m, err := r.Recv(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := m.CurveKey(); !ok || k != p.client.Public {
		t.Fatalf("CurveKey() = %v, %v; want the client's key %v", k, ok, p.client.Public)
	}
	sendFrames(t, r, ioWait, m.Frames[0], []byte("back"))
	m.Release()
	back, err := d.Recv(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Release()
	if _, ok := back.CurveKey(); ok {
		t.Fatal("the CURVE client's received message names a key")
	}
	if _, ok := (&zmtp.Msg{}).CurveKey(); ok {
		t.Fatal("a user message names a key")
	}
}

func TestCurvePubSub(t *testing.T) {
	// SUBSCRIBE and CANCEL travel encrypted (COMMAND flag inside MESSAGE); the filter works.
	p := newCurvePair(t)
	pub, ep := bindSocket(t, zmtp.Pub, zmtp.Options{Security: p.serverMech()})
	sub := connectSocket(t, zmtp.Sub, zmtp.Options{Security: p.clientMech()}, ep)
	if err := sub.Subscribe([]byte("a.")); err != nil {
		t.Fatal(err)
	}
	waitPeers(t, pub, 1, joinWait)
	ctx := testutil.Context(t, 10*time.Second)
	// Publish until the subscription has arrived, then check the filter.
	testutil.Eventually(t, joinWait, func() bool {
		_ = pub.SendFrames(ctx, []byte("a.probe"))
		_, ok := tryRecv(sub, 20*time.Millisecond)
		return ok
	}, "subscription never reached the CURVE PUB")
	for {
		if _, ok := tryRecv(sub, 50*time.Millisecond); !ok {
			break
		}
	}
	sendFrames(t, pub, ioWait, []byte("b.skip"))
	sendFrames(t, pub, ioWait, []byte("a.take"), []byte("part2"))
	got := recvMsg(t, sub, ioWait)
	if len(got) != 2 || string(got[0]) != "a.take" || string(got[1]) != "part2" {
		t.Fatalf("SUB got %s, want [a.take part2]", show(got))
	}
}

func TestCurveRefusals(t *testing.T) {
	// Each refusal fails that handshake only: the server keeps serving a good client.
	p := newCurvePair(t)
	other := curveKeys(t)
	var rec recorder
	r, ep := bindSocket(t, zmtp.Router, zmtp.Options{Security: p.serverMech(), Monitor: rec.Monitor})
	good := connectSocket(t, zmtp.Dealer, zmtp.Options{Security: p.clientMech(), Identity: []byte("good")}, ep)
	waitPeers(t, r, 1, joinWait)

	cases := []struct {
		name string
		mech zmtp.Mechanism
	}{
		{"unknown-client-key", zmtp.CurveClient(p.server.Public, other)},
		{"wrong-server-key", zmtp.CurveClient(other.Public, p.client)},
		{"null", zmtp.Null()},
		{"plain", zmtp.PlainClient("u", "p")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var crec recorder
			before := r.Stats().HandshakeFailures
			bad := connectSocket(t, zmtp.Dealer, zmtp.Options{Security: tc.mech, Monitor: crec.Monitor}, ep)
			testutil.Eventually(t, joinWait, func() bool { return r.Stats().HandshakeFailures > before },
				"server saw no failed handshake; events %v", &rec)
			testutil.Eventually(t, joinWait, func() bool { return crec.count(zmtp.EventHandshakeFailed) > 0 },
				"client saw no failed handshake; events %v", &crec)
			if n := crec.count(zmtp.EventConnected); n != 0 {
				t.Fatalf("refused client reported %d ready connections", n)
			}
			if tc.name == "unknown-client-key" {
				// The server said why with an ERROR command.
				var sawErr bool
				crec.mu.Lock()
				for _, e := range crec.events {
					if e.Type == zmtp.EventHandshakeFailed && e.Err != nil && bytes.Contains([]byte(e.Err.Error()), []byte(`ERROR "400"`)) {
						sawErr = true
					}
				}
				crec.mu.Unlock()
				if !sawErr {
					t.Fatalf("refused client did not see the server's ERROR: %v", &crec)
				}
			}
			_ = bad.Close()
			sendFrames(t, good, ioWait, []byte("still"))
			if got := recvMsg(t, r, ioWait); len(got) != 2 || string(got[1]) != "still" {
				t.Fatalf("good client after refusal: got %s", show(got))
			}
		})
	}
}

func TestCurveKeys(t *testing.T) {
	// The Z85 test vector of rfc 32, and the key files curve_keygen and czmq write.
	k, err := zmtp.ParseCurveKey("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7")
	if err != nil {
		t.Fatal(err)
	}
	if k.String() != "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7" {
		t.Fatalf("Z85 round trip: %s", k)
	}
	kp := curveKeys(t)
	pub := kp.Public.String()
	sec := kp.Secret.String()
	for _, tc := range []struct {
		name, text string
		secret     bool
		wantErr    bool
	}{
		{"bare-public", pub + "\n", false, false},
		{"bare-secret", "# comment\n\n" + sec + "\n", true, false},
		{"cert-public", "metadata\ncurve\n    public-key = \"" + pub + "\"\n", false, false},
		{"cert-secret", "metadata\ncurve\n    public-key = \"" + pub + "\"\n    secret-key = \"" + sec + "\"\n", true, false},
		{"cert-secret-as-public", "curve\n    public-key = \"" + pub + "\"\n    secret-key = \"" + sec + "\"\n", false, false},
		{"cert-mismatch", "curve\n    public-key = \"" + curveKeys(t).Public.String() + "\"\n    secret-key = \"" + sec + "\"\n", true, true},
		{"short", "abc\n", false, true},
		{"bad-char", pub[:39] + "~\n", false, true},
		{"empty", "# nothing\n", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.secret {
				got, err := zmtp.ParseCurveSecretFile([]byte(tc.text))
				if (err != nil) != tc.wantErr {
					t.Fatalf("err = %v, want error %v", err, tc.wantErr)
				}
				if err == nil && got != kp {
					t.Fatalf("got %v, want %v", got, kp)
				}
				if err != nil && !errors.Is(err, zmtp.ErrCurveKey) {
					t.Fatalf("err = %v, want ErrCurveKey", err)
				}
				return
			}
			got, err := zmtp.ParseCurvePublicFile([]byte(tc.text))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err == nil && got != kp.Public {
				t.Fatalf("got %v, want %v", got, kp.Public)
			}
		})
	}
}

func TestCurveClosePeers(t *testing.T) {
	// Revoking a key closes its connections only.
	p := newCurvePair(t)
	other := curveKeys(t)
	allowed := map[zmtp.CurveKey]bool{p.client.Public: true, other.Public: true}
	var mu sync.Mutex
	auth := func(k zmtp.CurveKey, _ net.Addr) bool { mu.Lock(); defer mu.Unlock(); return allowed[k] }
	r, ep := bindSocket(t, zmtp.Router, zmtp.Options{Security: zmtp.CurveServer(p.server, auth)})
	a := connectSocket(t, zmtp.Dealer, zmtp.Options{Security: p.clientMech(), Identity: []byte("a")}, ep)
	b := connectSocket(t, zmtp.Dealer, zmtp.Options{Security: zmtp.CurveClient(p.server.Public, other), Identity: []byte("b")}, ep)
	waitPeers(t, r, 2, joinWait)
	mu.Lock()
	delete(allowed, other.Public)
	mu.Unlock()
	if n := r.CloseCurvePeers(func(k zmtp.CurveKey) bool { mu.Lock(); defer mu.Unlock(); return !allowed[k] }); n != 1 {
		t.Fatalf("CloseCurvePeers closed %d connections, want 1", n)
	}
	waitPeers(t, r, 1, joinWait)
	sendFrames(t, a, ioWait, []byte("still"))
	if got := recvMsg(t, r, ioWait); string(got[0]) != "a" {
		t.Fatalf("got %s, want a message from a", show(got))
	}
	// b redials and is refused now: the peer count stays at 1.
	if testutil.Poll(500*time.Millisecond, func() bool { return r.Stats().Peers != 1 }) {
		t.Fatalf("a revoked key came back: %d peers", r.Stats().Peers)
	}
	_ = b
}
