package zmtp

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"testing"
	"time"

	"golang.org/x/crypto/nacl/box"

	"github.com/zerotask/zerotask/internal/testutil"
)

func testCurveKeys(t testing.TB) (server, client CurveKeyPair) {
	t.Helper()
	var err error
	if server, err = NewCurveKeyPair(); err != nil {
		t.Fatal(err)
	}
	if client, err = NewCurveKeyPair(); err != nil {
		t.Fatal(err)
	}
	return server, client
}

// TestAllocsCurve: CURVE's steady-state send and receive allocate nothing (encryption in the
// pending-output chunks, decryption in the received message's buffer), 64 B and 1 KiB. Each
// run sends one message and receives it, so the number of messages in flight (and of pooled
// buffers in use) stays bounded and every allocation counted is a per-message one: the
// sender's, the writer's, the peer's reader's and Recv's (AllocsPerRun counts every goroutine).
func TestAllocsCurve(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sk, ck := testCurveKeys(t)
	for _, size := range []int{64, 1024} {
		r, d := benchPair(t, "tcp", Router, Dealer,
			Options{Security: CurveServer(sk, CurveAllow(ck.Public))},
			Options{Security: CurveClient(sk.Public, ck), Identity: []byte("d")})
		payload := make([]byte, size)
		id := []byte("d")
		recv := func(s *Socket) {
			m, err := s.Recv(ctx)
			if err != nil {
				t.Fatal(err)
			}
			m.Release()
		}
		assertNoAllocs(t, fmt.Sprintf("CURVE %d B DEALER->ROUTER", size), func() {
			_ = d.SendFrames(ctx, payload)
			recv(r)
		}, nil)
		assertNoAllocs(t, fmt.Sprintf("CURVE %d B ROUTER->DEALER", size), func() {
			_ = r.SendFrames(ctx, id, payload)
			recv(d)
		}, nil)
	}
}

// rawCurveClient speaks CURVE's client side by hand over a raw connection, so tests can
// break any step.
type rawCurveClient struct {
	t       testing.TB
	nc      net.Conn
	fr      *frameReader
	server  CurveKeyPair
	own     CurveKeyPair
	cpub    *[32]byte
	csec    *[32]byte
	sTrans  [32]byte
	shared  [32]byte
	cookie  []byte
	nonce   uint64
	vouchTo CurveKey // the server key the vouch names (the real one unless a test changes it)
}

func dialRawCurve(t testing.TB, ep string, server, own CurveKeyPair) *rawCurveClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", ep[len("tcp://"):], 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	c := &rawCurveClient{t: t, nc: nc, fr: newFrameReader(nc, -1), server: server, own: own, nonce: 1, vouchTo: server.Public}
	t.Cleanup(c.fr.release)
	c.cpub, c.csec, _ = box.GenerateKey(rand.Reader)
	if _, err := nc.Write(appendGreeting(nil, "CURVE", false)); err != nil {
		t.Fatal(err)
	}
	var g [greetingSize]byte
	if err := c.fr.readFull(g[:]); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *rawCurveClient) hello() []byte {
	b := make([]byte, curveHelloSize)
	b[0] = 1
	copy(b[74:], c.cpub[:])
	binary.BigEndian.PutUint64(b[106:], c.nonce)
	n := curveNonce("CurveZMQHELLO---", c.nonce)
	spk := [32]byte(c.server.Public)
	box.Seal(b[114:114], make([]byte, 64), &n, &spk, c.csec)
	c.nonce++
	return b
}

func (c *rawCurveClient) send(name string, data []byte) {
	if _, err := c.nc.Write(appendCommand(nil, name, data)); err != nil {
		c.t.Fatalf("write %s: %v", name, err)
	}
}

// recv returns the next command's name and data, or an error (the server closed).
func (c *rawCurveClient) recv() (string, []byte, error) {
	m := AcquireMsg()
	defer m.Release()
	if _, err := c.fr.readMsg(m); err != nil {
		return "", nil, err
	}
	name, data, err := splitCommand(m.Frames[0])
	if err != nil {
		return "", nil, err
	}
	return string(name), append([]byte(nil), data...), nil
}

func (c *rawCurveClient) welcome() {
	name, data, err := c.recv()
	if err != nil || name != "WELCOME" {
		c.t.Fatalf("WELCOME: %q %v", name, err)
	}
	n := longNonce("WELCOME-", data[:16])
	spk := [32]byte(c.server.Public)
	p, ok := box.Open(nil, data[16:], &n, &spk, c.csec)
	if !ok {
		c.t.Fatal("WELCOME box")
	}
	copy(c.sTrans[:], p[:32])
	c.cookie = p[32:]
	box.Precompute(&c.shared, &c.sTrans, c.csec)
}

func (c *rawCurveClient) initiate(md []byte) []byte {
	var vn [16]byte
	_, _ = rand.Read(vn[:])
	n := longNonce("VOUCH---", vn[:])
	vp := append(append([]byte(nil), c.cpub[:]...), c.vouchTo[:]...)
	osk := [32]byte(c.own.Secret)
	vouch := box.Seal(nil, vp, &n, &c.sTrans, &osk)
	plain := append(append(append(append([]byte(nil), c.own.Public[:]...), vn[:]...), vouch...), md...)
	out := append(append([]byte(nil), c.cookie...), make([]byte, 8)...)
	binary.BigEndian.PutUint64(out[len(c.cookie):], c.nonce)
	n = curveNonce("CurveZMQINITIATE", c.nonce)
	c.nonce++
	return box.SealAfterPrecomputation(out, plain, &n, &c.shared)
}

// message encodes one MESSAGE frame with short nonce nonce.
func (c *rawCurveClient) message(nonce uint64, flags byte, payload []byte) []byte {
	body := append([]byte("\x07MESSAGE"), make([]byte, 8+boxTag+1)...)
	binary.BigEndian.PutUint64(body[8:], nonce)
	body[32] = flags
	body = append(body, payload...)
	n := curveNonce("CurveZMQMESSAGEC", nonce)
	sealInPlace(body[16:], &n, &c.shared) // the per-message form, checking the subkey shortcut
	return append(appendFrameHeader(nil, 0, len(body)), body...)
}

// handshake runs the whole client handshake and checks READY.
func (c *rawCurveClient) handshake() {
	c.send("HELLO", c.hello())
	c.welcome()
	c.send("INITIATE", c.initiate(appendMetadata(nil, Dealer, []byte("raw"))))
	name, _, err := c.recv()
	if err != nil || name != "READY" {
		c.t.Fatalf("READY: %q %v", name, err)
	}
}

// closed reports whether the server closed the connection (after an ERROR or not).
func (c *rawCurveClient) closed() bool {
	for range 4 {
		if _, _, err := c.recv(); err != nil {
			return true
		}
	}
	return false
}

// TestCurveHostile: each broken step of a handshake or a MESSAGE closes that connection only;
// a good client on the same socket keeps working throughout.
func TestCurveHostile(t *testing.T) {
	sk, ck := testCurveKeys(t)
	other, _ := testCurveKeys(t)
	r := NewSocket(Router, Options{Security: CurveServer(sk, CurveAllow(ck.Public)), HandshakeTimeout: 5 * time.Second})
	defer r.Close()
	if err := r.Bind("tcp://127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	ep := r.LastEndpoint()
	good := NewSocket(Dealer, Options{Security: CurveClient(sk.Public, ck), Identity: []byte("good")})
	defer good.Close()
	if err := good.Connect(ep); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return r.Stats().Peers == 1 }, "good client not ready")
	ctx := testutil.Context(t, 60*time.Second)
	checkGood := func(t *testing.T) {
		t.Helper()
		if err := good.SendFrames(ctx, []byte("ping")); err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		for {
			// A hostile client's valid messages before its broken one may come first.
			m, err := r.Recv(rctx)
			if err != nil {
				t.Fatalf("good client after the hostile one: %v", err)
			}
			fromGood := string(m.Frames[0]) == "good"
			m.Release()
			if fromGood {
				break
			}
		}
		if n := r.Stats().Peers; n != 1 {
			t.Fatalf("peers = %d, want the good client only", n)
		}
	}

	helloWith := func(mut func([]byte)) func(c *rawCurveClient) {
		return func(c *rawCurveClient) {
			h := c.hello()
			mut(h)
			c.send("HELLO", h)
		}
	}
	initiateWith := func(mut func(c *rawCurveClient, b []byte) []byte) func(c *rawCurveClient) {
		return func(c *rawCurveClient) {
			c.send("HELLO", c.hello())
			c.welcome()
			c.send("INITIATE", mut(c, c.initiate(appendMetadata(nil, Dealer, nil))))
		}
	}
	afterHandshake := func(frames func(c *rawCurveClient) []byte) func(c *rawCurveClient) {
		return func(c *rawCurveClient) {
			c.handshake()
			if _, err := c.nc.Write(frames(c)); err != nil {
				t.Fatal(err)
			}
		}
	}
	cases := []struct {
		name string
		own  CurveKeyPair
		run  func(c *rawCurveClient)
	}{
		{"hello-wrong-version", ck, helloWith(func(b []byte) { b[0] = 2 })},
		{"hello-nonzero-padding", ck, helloWith(func(b []byte) { b[40] = 1 })},
		{"hello-bad-box", ck, helloWith(func(b []byte) { b[150] ^= 1 })},
		{"hello-truncated", ck, func(c *rawCurveClient) { c.send("HELLO", c.hello()[:150]) }},
		{"initiate-truncated-box", ck, initiateWith(func(_ *rawCurveClient, b []byte) []byte { return b[:len(b)-5] })},
		{"initiate-bad-mac", ck, initiateWith(func(_ *rawCurveClient, b []byte) []byte { b[curveCookieSize+8] ^= 1; return b })},
		{"initiate-cookie-from-another-server", ck, initiateWith(func(_ *rawCurveClient, b []byte) []byte {
			// A cookie sealed by another server's key (same layout, so only the key differs).
			var k cookieKeys
			k.every, k.now = time.Minute, time.Now
			var x, y [32]byte
			ck2, err := k.seal(&x, &y)
			if err != nil {
				t.Fatal(err)
			}
			copy(b, ck2)
			return b
		})},
		{"initiate-nonce-not-above-hello", ck, func(c *rawCurveClient) {
			c.send("HELLO", c.hello())
			c.welcome()
			c.nonce = 1 // the HELLO's nonce again
			c.send("INITIATE", c.initiate(appendMetadata(nil, Dealer, nil)))
		}},
		{"initiate-vouch-names-another-server", ck, func(c *rawCurveClient) {
			c.vouchTo = other.Public
			c.send("HELLO", c.hello())
			c.welcome()
			c.send("INITIATE", c.initiate(appendMetadata(nil, Dealer, nil)))
		}},
		{"initiate-vouch-by-another-key", ck, func(c *rawCurveClient) {
			// C in INITIATE is the allowed key, but the vouch is sealed with another secret.
			c.own = CurveKeyPair{Public: ck.Public, Secret: other.Secret}
			c.send("HELLO", c.hello())
			c.welcome()
			c.send("INITIATE", c.initiate(appendMetadata(nil, Dealer, nil)))
		}},
		{"unknown-client-key", other, func(c *rawCurveClient) {
			c.send("HELLO", c.hello())
			c.welcome()
			c.send("INITIATE", c.initiate(appendMetadata(nil, Dealer, nil)))
			name, data, err := c.recv()
			if err != nil || name != "ERROR" || string(data) != "\x03400" {
				t.Fatalf("unknown key: got %q %q %v, want ERROR 400", name, data, err)
			}
		}},
		{"message-replayed-nonce", ck, afterHandshake(func(c *rawCurveClient) []byte {
			m := c.message(c.nonce, 0, []byte("once"))
			return append(m, m...)
		})},
		{"message-decreasing-nonce", ck, afterHandshake(func(c *rawCurveClient) []byte {
			return append(c.message(c.nonce+5, 0, []byte("a")), c.message(c.nonce+4, 0, []byte("b"))...)
		})},
		{"message-bad-mac", ck, afterHandshake(func(c *rawCurveClient) []byte {
			m := c.message(c.nonce, 0, []byte("tampered"))
			m[len(m)-1] ^= 1
			return m
		})},
		{"message-truncated-box", ck, afterHandshake(func(c *rawCurveClient) []byte {
			m := c.message(c.nonce, 0, []byte("x"))
			m = m[:len(m)-3]
			m[1] -= 3 // a shorter frame: the tag no longer matches
			return m
		})},
		{"message-too-short", ck, afterHandshake(func(c *rawCurveClient) []byte {
			return append(appendFrameHeader(nil, 0, 20), append([]byte("\x07MESSAGE"), make([]byte, 12)...)...)
		})},
		{"message-plaintext-frame", ck, afterHandshake(func(c *rawCurveClient) []byte {
			return append(appendFrameHeader(nil, 0, 5), "hello"...)
		})},
		{"message-bad-flags", ck, afterHandshake(func(c *rawCurveClient) []byte { return c.message(c.nonce, 0x80, []byte("x")) })},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := r.Stats()
			c := dialRawCurve(t, ep, sk, tc.own)
			tc.run(c)
			if !c.closed() {
				t.Fatal("the server kept the connection open")
			}
			testutil.Eventually(t, 5*time.Second, func() bool {
				st := r.Stats()
				return st.HandshakeFailures+st.ProtocolErrors > before.HandshakeFailures+before.ProtocolErrors
			}, "no handshake failure or protocol error counted")
			checkGood(t)
		})
	}
	t.Run("good-raw-client", func(t *testing.T) {
		// The raw client itself is right: a correct run delivers its message.
		c := dialRawCurve(t, ep, sk, ck)
		c.handshake()
		if _, err := c.nc.Write(c.message(c.nonce, 0, []byte("raw ok"))); err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		m, err := r.Recv(rctx)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Release()
		if len(m.Frames) != 2 || string(m.Frames[1]) != "raw ok" {
			t.Fatalf("got %q", m.Frames)
		}
	})
}

// TestCurveCookieRotation: a cookie opens with the current key and the one before, not with
// a key two rotations old.
func TestCurveCookieRotation(t *testing.T) {
	now := time.Unix(1000, 0)
	k := cookieKeys{every: time.Minute, now: func() time.Time { return now }}
	var a, b [32]byte
	a[0], b[0] = 1, 2
	c1, err := k.seal(&a, &b)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := k.open(c1); !ok || !bytes.Equal(p[:32], a[:]) || !bytes.Equal(p[32:], b[:]) {
		t.Fatal("fresh cookie does not open")
	}
	now = now.Add(time.Minute) // one rotation: the previous key still opens
	if _, ok := k.open(c1); !ok {
		t.Fatal("cookie of the previous period does not open")
	}
	c2, _ := k.seal(&a, &b)
	now = now.Add(time.Minute) // two rotations after c1
	if _, ok := k.open(c1); ok {
		t.Fatal("cookie two periods old still opens")
	}
	if _, ok := k.open(c2); !ok {
		t.Fatal("cookie of the previous period does not open")
	}
	now = now.Add(10 * time.Minute) // long idle: nothing old opens
	if _, ok := k.open(c2); ok {
		t.Fatal("cookie from long ago still opens")
	}
}
