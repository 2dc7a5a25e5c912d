package zmtp_test

// Interop with real peers: libzmq (Debian's python3-zmq, driven as a subprocess through
// testdata/peers/zpeer.py) and go-zeromq/zmq4 (in process). Every case uses one peer: zmq4's
// DEALER sends to every peer and zmq4 speaks ZMTP 3.0 only.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"
	"github.com/go-zeromq/zmq4/security/plain"

	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/zmtp"
)

const (
	ioWait   = 5 * time.Second // bound on one send or receive in these tests
	joinWait = 5 * time.Second // bound on a connection becoming ready
)

// plainUsers is the PLAIN server check used by every PLAIN case: one good pair of credentials.
func plainUsers(user, pass string, _ net.Addr) bool { return user == "admin" && pass == "secret" }

// tryPyRecv waits up to d for a message printed by the libzmq peer, without failing.
func (p *py) tryRecv(d time.Duration) ([][]byte, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	line, err := p.proc.Expect(ctx, "MSG ")
	if err != nil {
		return nil, false
	}
	f, err := decodeMsgLine(line)
	return f, err == nil
}

// tryRecv waits up to d for a message on one of our sockets, without failing.
func tryRecv(s *zmtp.Socket, d time.Duration) ([][]byte, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	m, err := s.Recv(ctx)
	if err != nil {
		return nil, false
	}
	f := copyFrames(m.Frames)
	m.Release()
	return f, true
}

// --- libzmq --------------------------------------------------------------------------------

func TestInteropLibzmqDealerToRouter(t *testing.T) {
	// our DEALER -> libzmq ROUTER (echoing), and back.
	p := startPy(t, "--type", "ROUTER", "--bind", loopback, "--echo")
	d := connectSocket(t, zmtp.Dealer, zmtp.Options{Identity: []byte("our-dealer")}, p.endpoint())
	waitPeers(t, d, 1, joinWait)
	for _, m := range interopMsgs() {
		sendFrames(t, d, ioWait, m...)
		if got := recvMsg(t, d, ioWait); !framesEqual(got, m) {
			t.Fatalf("echo from libzmq ROUTER: got %s, want %s", show(got), show(m))
		}
	}
	// A burst in order: no loss, no reordering, with libzmq echoing at its own pace.
	const n = 2000
	ctx := testutil.Context(t, 20*time.Second)
	errc := make(chan error, 1)
	go func() {
		for i := range n {
			if err := d.SendFrames(ctx, []byte(fmt.Sprintf("m%05d", i))); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for i := range n {
		got := recvMsg(t, d, ioWait)
		if want := fmt.Sprintf("m%05d", i); len(got) != 1 || string(got[0]) != want {
			t.Fatalf("burst message %d: got %s, want %q", i, show(got), want)
		}
	}
	if err := <-errc; err != nil {
		t.Fatalf("burst send: %v", err)
	}
}

func TestInteropLibzmqDealerToOurRouter(t *testing.T) {
	// libzmq DEALER -> our ROUTER, and the ROUTER's replies back by identity.
	r, ep := bindSocket(t, zmtp.Router, zmtp.Options{})
	p := startPy(t, "--type", "DEALER", "--connect", ep, "--identity", "py-dealer")
	waitPeers(t, r, 1, joinWait)
	for _, m := range interopMsgs() {
		p.send(m...)
		got := recvMsg(t, r, ioWait)
		if len(got) < 1 || string(got[0]) != "py-dealer" || !framesEqual(got[1:], m) {
			t.Fatalf("our ROUTER got %s, want identity %q then %s", show(got), "py-dealer", show(m))
		}
		sendFrames(t, r, ioWait, got...)
		if back := p.recv(ioWait); !framesEqual(back, m) {
			t.Fatalf("libzmq DEALER got %s, want %s", show(back), show(m))
		}
	}
	// An unknown identity is an error on our ROUTER, never a silent drop.
	ctx := testutil.Context(t, ioWait)
	if err := r.SendFrames(ctx, []byte("nobody"), []byte("x")); !errors.Is(err, zmtp.ErrUnknownPeer) {
		t.Fatalf("send to unknown identity: err = %v, want ErrUnknownPeer", err)
	}
}

func TestInteropLibzmqReqToOurRouter(t *testing.T) {
	// libzmq REQ -> our ROUTER: the REQ puts an empty delimiter frame before its body, and
	// accepts only a reply that keeps it.
	r, ep := bindSocket(t, zmtp.Router, zmtp.Options{})
	p := startPy(t, "--type", "REQ", "--connect", ep, "--identity", "py-req")
	waitPeers(t, r, 1, joinWait)
	for i := range 3 {
		body := []byte(fmt.Sprintf("request %d", i))
		p.send(body)
		got, ok := tryRecv(r, ioWait)
		if !ok {
			t.Fatalf("request %d: our ROUTER received nothing; stats %+v; libzmq lines %q", i, r.Stats(), p.proc.Lines())
		}
		if len(got) != 3 || string(got[0]) != "py-req" || len(got[1]) != 0 || !bytes.Equal(got[2], body) {
			t.Fatalf("our ROUTER got %s, want [py-req, empty delimiter, %q]", show(got), body)
		}
		reply := []byte(fmt.Sprintf("reply %d", i))
		sendFrames(t, r, ioWait, got[0], nil, reply)
		if back := p.recv(ioWait); len(back) != 1 || !bytes.Equal(back[0], reply) {
			t.Fatalf("libzmq REQ got %s, want [%q]", show(back), reply)
		}
	}
}

func TestInteropLibzmqPubToOurSub(t *testing.T) {
	// libzmq PUB -> our SUB: our subscription reaches libzmq, which filters for us.
	p := startPy(t, "--type", "PUB", "--bind", loopback)
	s := connectSocket(t, zmtp.Sub, zmtp.Options{}, p.endpoint())
	if err := s.Subscribe([]byte("A")); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	waitPeers(t, s, 1, joinWait)
	// The subscription travels after the handshake: publish probes until one arrives.
	joined := testutil.Poll(joinWait, func() bool {
		p.send([]byte("A-probe"))
		_, ok := tryRecv(s, 20*time.Millisecond)
		return ok
	})
	if !joined {
		t.Fatal("our SUB never received a libzmq PUB message under its subscription")
	}
	p.send([]byte("B-filtered"))
	p.send([]byte("A"), []byte("multi"), []byte("part"))
	p.send([]byte("A-last"))
	got := nextNonProbe(t, s)
	if want := [][]byte{[]byte("A"), []byte("multi"), []byte("part")}; !framesEqual(got, want) {
		t.Fatalf("our SUB got %s, want %s (B-filtered must not arrive)", show(got), show(want))
	}
	if got := nextNonProbe(t, s); len(got) != 1 || string(got[0]) != "A-last" {
		t.Fatalf("our SUB got %s, want [A-last]", show(got))
	}
	// Unsubscribe reaches libzmq too: after it, only the new subscription's messages arrive.
	if err := s.Unsubscribe([]byte("A")); err != nil {
		t.Fatalf("Unsubscribe: %v", err)
	}
	if err := s.Subscribe([]byte("C")); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	joined = testutil.Poll(joinWait, func() bool {
		p.send([]byte("C-probe"))
		f, ok := tryRecv(s, 20*time.Millisecond)
		for ok && string(f[0]) != "C-probe" {
			f, ok = tryRecv(s, 20*time.Millisecond)
		}
		return ok
	})
	if !joined {
		t.Fatal("our SUB never received a message under its second subscription")
	}
	p.send([]byte("A-after-unsubscribe"))
	p.send([]byte("C-last"))
	for {
		got := recvMsg(t, s, ioWait)
		if string(got[0]) == "C-probe" {
			continue
		}
		if string(got[0]) != "C-last" {
			t.Fatalf("after Unsubscribe(A): got %s, want [C-last]", show(got))
		}
		break
	}
}

// nextNonProbe returns the next message that is not a subscription probe.
func nextNonProbe(t *testing.T, s *zmtp.Socket) [][]byte {
	t.Helper()
	for {
		got := recvMsg(t, s, ioWait)
		if len(got) == 1 && bytes.HasSuffix(got[0], []byte("-probe")) {
			continue
		}
		return got
	}
}

func TestInteropOurPubToLibzmqSub(t *testing.T) {
	// our PUB -> libzmq SUB: libzmq's SUBSCRIBE reaches our PUB, which filters.
	pub, ep := bindSocket(t, zmtp.Pub, zmtp.Options{})
	p := startPy(t, "--type", "SUB", "--connect", ep, "--subscribe", "A")
	waitPeers(t, pub, 1, joinWait)
	ctx := testutil.Context(t, 20*time.Second)
	joined := testutil.Poll(joinWait, func() bool {
		if err := pub.SendFrames(ctx, []byte("A-probe")); err != nil {
			t.Fatalf("PUB send: %v", err)
		}
		_, ok := p.tryRecv(20 * time.Millisecond)
		return ok
	})
	if !joined {
		t.Fatal("libzmq SUB never received a message from our PUB")
	}
	for _, m := range [][][]byte{
		{[]byte("B-filtered")},
		{[]byte("A"), []byte("multi"), {}, []byte("part")},
		{[]byte("A-last")},
	} {
		if err := pub.SendFrames(ctx, m...); err != nil {
			t.Fatalf("PUB send: %v", err)
		}
	}
	next := func() [][]byte {
		for {
			got := p.recv(ioWait)
			if len(got) == 1 && string(got[0]) == "A-probe" {
				continue
			}
			return got
		}
	}
	if want := [][]byte{[]byte("A"), []byte("multi"), {}, []byte("part")}; !framesEqual(next(), want) {
		t.Fatalf("libzmq SUB: want %s first (B-filtered must be filtered by our PUB)", show(want))
	}
	if got := next(); len(got) != 1 || string(got[0]) != "A-last" {
		t.Fatalf("libzmq SUB got %s, want [A-last]", show(got))
	}
}

func TestInteropLibzmqPlain(t *testing.T) {
	t.Run("libzmq-client-good-credentials", func(t *testing.T) {
		r, ep := bindSocket(t, zmtp.Router, zmtp.Options{Security: zmtp.PlainServer(plainUsers)})
		p := startPy(t, "--type", "DEALER", "--connect", ep, "--identity", "plain", "--plain-client", "admin:secret")
		waitPeers(t, r, 1, joinWait)
		p.send([]byte("over plain"))
		got := recvMsg(t, r, ioWait)
		if len(got) != 2 || string(got[0]) != "plain" || string(got[1]) != "over plain" {
			t.Fatalf("our PLAIN ROUTER got %s", show(got))
		}
		sendFrames(t, r, ioWait, got[0], []byte("back"))
		if back := p.recv(ioWait); len(back) != 1 || string(back[0]) != "back" {
			t.Fatalf("libzmq PLAIN client got %s", show(back))
		}
	})
	t.Run("libzmq-client-bad-credentials", func(t *testing.T) {
		var rec recorder
		r, ep := bindSocket(t, zmtp.Router, zmtp.Options{Security: zmtp.PlainServer(plainUsers), Monitor: rec.Monitor})
		p := startPy(t, "--type", "DEALER", "--connect", ep, "--plain-client", "admin:wrong", "--monitor")
		p.send([]byte("must not arrive"))
		// libzmq's client reports the refusal as a failed handshake. (Which kind depends on
		// libzmq: 4.3.4 reports our ERROR command as HANDSHAKE_FAILED_PROTOCOL, even one
		// carrying the ZAP status "400", while it reports its own server's refusal as
		// HANDSHAKE_FAILED_AUTH; the refusal is what this case asserts.)
		p.event("HANDSHAKE_FAILED_", joinWait)
		if p.proc.Seen("EVENT HANDSHAKE_SUCCEEDED") {
			t.Fatalf("libzmq PLAIN client with bad credentials completed its handshake: %q", p.proc.Lines())
		}
		testutil.Eventually(t, joinWait, func() bool { return rec.count(zmtp.EventHandshakeFailed) > 0 },
			"our PLAIN server reported no failed handshake; events: %v", &rec)
		if st := r.Stats(); st.Peers != 0 || st.HandshakeFailures == 0 {
			t.Fatalf("after bad credentials: Peers=%d HandshakeFailures=%d, want 0 and >0", st.Peers, st.HandshakeFailures)
		}
		if got, ok := tryRecv(r, 100*time.Millisecond); ok {
			t.Fatalf("our ROUTER received %s from a client with bad credentials", show(got))
		}
	})
	t.Run("our-client-good-credentials", func(t *testing.T) {
		p := startPy(t, "--type", "ROUTER", "--bind", loopback, "--plain-server", "admin:secret", "--echo")
		d := connectSocket(t, zmtp.Dealer, zmtp.Options{Security: zmtp.PlainClient("admin", "secret")}, p.endpoint())
		waitPeers(t, d, 1, joinWait)
		for _, m := range interopMsgs() {
			sendFrames(t, d, ioWait, m...)
			if got := recvMsg(t, d, ioWait); !framesEqual(got, m) {
				t.Fatalf("echo through libzmq PLAIN server: got %s, want %s", show(got), show(m))
			}
		}
	})
	t.Run("our-client-bad-credentials", func(t *testing.T) {
		var rec recorder
		p := startPy(t, "--type", "ROUTER", "--bind", loopback, "--plain-server", "admin:secret", "--monitor")
		d := connectSocket(t, zmtp.Dealer, zmtp.Options{Security: zmtp.PlainClient("admin", "wrong"), Monitor: rec.Monitor}, p.endpoint())
		// libzmq's ZAP handler denies the credentials (status 400) ...
		p.event("HANDSHAKE_FAILED_AUTH", joinWait)
		// ... and our client sees the ERROR command as a failed handshake, never a ready peer.
		testutil.Eventually(t, joinWait, func() bool { return rec.count(zmtp.EventHandshakeFailed) > 0 },
			"our PLAIN client reported no failed handshake; events: %v", &rec)
		if n := rec.count(zmtp.EventConnected); n != 0 {
			t.Fatalf("our PLAIN client reported %d ready connections with bad credentials", n)
		}
		if err := d.TrySend(&zmtp.Msg{Frames: [][]byte{[]byte("x")}}); !errors.Is(err, zmtp.ErrNoPeer) {
			t.Fatalf("TrySend with no authenticated peer: err = %v, want ErrNoPeer", err)
		}
		if p.proc.Seen("MSG ") {
			t.Fatalf("libzmq PLAIN server received a message from a client with bad credentials")
		}
	})
}

func TestInteropLibzmqHeartbeatKeptAliveByOurPongs(t *testing.T) {
	// libzmq PINGs every 100ms and drops the connection after 300ms without any traffic. We
	// send no PINGs of our own and no data for 15 intervals: only our PONGs keep it open.
	const ivl, timeout = 100 * time.Millisecond, 300 * time.Millisecond
	var rec recorder
	r, ep := bindSocket(t, zmtp.Router, zmtp.Options{Monitor: rec.Monitor})
	p := startPy(t, "--type", "DEALER", "--connect", ep, "--identity", "hb", "--monitor",
		"--heartbeat-ivl", fmt.Sprint(ivl.Milliseconds()), "--heartbeat-timeout", fmt.Sprint(timeout.Milliseconds()))
	waitPeers(t, r, 1, joinWait)
	p.event("HANDSHAKE_SUCCEEDED", joinWait)
	before := r.Stats()
	// The quiet period is the behaviour under test, not synchronization: any disconnect within
	// it, on either side, fails.
	dropped := testutil.Poll(15*ivl, func() bool {
		return p.proc.Seen("EVENT DISCONNECTED") || rec.count(zmtp.EventDisconnected) > 0 || r.Stats().Peers != 1
	})
	if dropped {
		t.Fatalf("connection dropped while idle with libzmq heartbeats on; our events: %v; libzmq lines: %q", &rec, p.proc.Lines())
	}
	after := r.Stats()
	if after.BytesOut <= before.BytesOut {
		t.Logf("note: Stats.BytesOut did not grow while answering PINGs (%d -> %d): commands may not be counted", before.BytesOut, after.BytesOut)
	}
	// Messages still flow both ways.
	p.send([]byte("still here"))
	got := recvMsg(t, r, ioWait)
	if len(got) != 2 || string(got[1]) != "still here" {
		t.Fatalf("after the idle period our ROUTER got %s", show(got))
	}
	sendFrames(t, r, ioWait, []byte("hb"), []byte("and you"))
	if back := p.recv(ioWait); len(back) != 1 || string(back[0]) != "and you" {
		t.Fatalf("after the idle period libzmq got %s", show(back))
	}
}

// TestInteropLibzmqHeartbeatDropsSilentPeer is the control for the test above: with the same
// settings, libzmq does drop a peer that never answers its PINGs (a raw connection that
// completes the handshake and then only listens), so staying connected there is our PONGs'
// doing.
func TestInteropLibzmqHeartbeatDropsSilentPeer(t *testing.T) {
	p := startPy(t, "--type", "ROUTER", "--bind", loopback, "--heartbeat-ivl", "100", "--heartbeat-timeout", "300")
	rc := dialRaw(t, p.endpoint())
	rc.mustHandshake("DEALER", "mute")
	took := rc.waitClosed(3 * time.Second)
	t.Logf("libzmq dropped the peer that never answers PING after %v", took)
}

// --- go-zeromq/zmq4 ------------------------------------------------------------------------

func TestInteropZmq4DealerToRouter(t *testing.T) {
	// our DEALER -> zmq4 ROUTER (echoing from a goroutine), and back.
	zr := newZ(t, zmq4.NewRouter)
	if err := zr.Listen("tcp://127.0.0.1:0"); err != nil {
		t.Fatalf("zmq4 listen: %v", err)
	}
	d := connectSocket(t, zmtp.Dealer, zmtp.Options{Identity: []byte("our-dealer")}, zEndpoint(t, zr))
	waitPeers(t, d, 1, joinWait)
	for _, m := range interopMsgs() {
		sendFrames(t, d, ioWait, m...)
		got := zRecv(t, zr, ioWait)
		if len(got) < 1 || string(got[0]) != "our-dealer" || !framesEqual(got[1:], m) {
			t.Fatalf("zmq4 ROUTER got %s, want [our-dealer] + %s", show(got), show(m))
		}
		if err := zr.Send(zmq4.NewMsgFrom(got...)); err != nil {
			t.Fatalf("zmq4 ROUTER send: %v", err)
		}
		if back := recvMsg(t, d, ioWait); !framesEqual(back, m) {
			t.Fatalf("our DEALER got %s, want %s", show(back), show(m))
		}
	}
}

func TestInteropZmq4DealerToOurRouter(t *testing.T) {
	// zmq4 DEALER -> our ROUTER, and replies back by identity.
	r, ep := bindSocket(t, zmtp.Router, zmtp.Options{})
	zd := newZ(t, zmq4.NewDealer, zmq4.WithID(zmq4.SocketIdentity("z-dealer")))
	if err := zd.Dial(ep); err != nil {
		t.Fatalf("zmq4 dial: %v", err)
	}
	waitPeers(t, r, 1, joinWait)
	for _, m := range interopMsgs() {
		if err := zd.Send(zmq4.NewMsgFrom(m...)); err != nil {
			t.Fatalf("zmq4 DEALER send: %v", err)
		}
		got := recvMsg(t, r, ioWait)
		if len(got) < 1 || string(got[0]) != "z-dealer" || !framesEqual(got[1:], m) {
			t.Fatalf("our ROUTER got %s, want [z-dealer] + %s", show(got), show(m))
		}
		sendFrames(t, r, ioWait, got...)
		if back := zRecv(t, zd, ioWait); !framesEqual(back, m) {
			t.Fatalf("zmq4 DEALER got %s, want %s", show(back), show(m))
		}
	}
}

func TestInteropZmq4PubToOurSub(t *testing.T) {
	zp := newZ(t, zmq4.NewPub)
	if err := zp.Listen("tcp://127.0.0.1:0"); err != nil {
		t.Fatalf("zmq4 listen: %v", err)
	}
	s := connectSocket(t, zmtp.Sub, zmtp.Options{}, zEndpoint(t, zp))
	if err := s.Subscribe([]byte("A")); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	waitPeers(t, s, 1, joinWait)
	joined := testutil.Poll(joinWait, func() bool {
		if err := zp.Send(zmq4.NewMsgString("A-probe")); err != nil {
			t.Fatalf("zmq4 PUB send: %v", err)
		}
		_, ok := tryRecv(s, 20*time.Millisecond)
		return ok
	})
	if !joined {
		t.Fatal("our SUB never received a zmq4 PUB message under its subscription")
	}
	for _, m := range [][][]byte{{[]byte("B-filtered")}, {[]byte("A"), []byte("multi")}, {[]byte("A-last")}} {
		if err := zp.Send(zmq4.NewMsgFrom(m...)); err != nil {
			t.Fatalf("zmq4 PUB send: %v", err)
		}
	}
	if got, want := nextNonProbe(t, s), [][]byte{[]byte("A"), []byte("multi")}; !framesEqual(got, want) {
		t.Fatalf("our SUB got %s, want %s", show(got), show(want))
	}
	if got := nextNonProbe(t, s); len(got) != 1 || string(got[0]) != "A-last" {
		t.Fatalf("our SUB got %s, want [A-last]", show(got))
	}
}

func TestInteropOurPubToZmq4Sub(t *testing.T) {
	pub, ep := bindSocket(t, zmtp.Pub, zmtp.Options{})
	zs := newZ(t, zmq4.NewSub)
	if err := zs.SetOption(zmq4.OptionSubscribe, "A"); err != nil {
		t.Fatalf("zmq4 subscribe: %v", err)
	}
	if err := zs.Dial(ep); err != nil {
		t.Fatalf("zmq4 dial: %v", err)
	}
	waitPeers(t, pub, 1, joinWait)
	ctx := testutil.Context(t, 20*time.Second)
	// zmq4's Recv has no deadline: receive on one goroutine for the whole test, and publish
	// probes until the first message arrives there.
	msgs := make(chan [][]byte, 1024)
	go func() {
		defer close(msgs)
		for {
			m, err := zs.Recv()
			if err != nil {
				return
			}
			select {
			case msgs <- m.Frames:
			default: // the test stopped reading; keep draining until the socket closes
			}
		}
	}()
	t.Cleanup(func() {
		_ = zs.Close()
		for range msgs {
		}
	})
	joined := testutil.Poll(joinWait, func() bool {
		if err := pub.SendFrames(ctx, []byte("A-probe")); err != nil {
			t.Fatalf("PUB send: %v", err)
		}
		select {
		case <-msgs:
			return true
		case <-time.After(20 * time.Millisecond):
			return false
		}
	})
	if !joined {
		t.Fatal("zmq4 SUB never received a message from our PUB")
	}
	for _, m := range [][][]byte{{[]byte("B-filtered")}, {[]byte("A"), []byte("multi")}, {[]byte("A-last")}} {
		if err := pub.SendFrames(ctx, m...); err != nil {
			t.Fatalf("PUB send: %v", err)
		}
	}
	next := func() [][]byte {
		for {
			select {
			case f := <-msgs:
				if len(f) == 1 && string(f[0]) == "A-probe" {
					continue
				}
				return f
			case <-time.After(ioWait):
				t.Fatal("zmq4 SUB: nothing within the deadline")
			}
		}
	}
	if got, want := next(), [][]byte{[]byte("A"), []byte("multi")}; !framesEqual(got, want) {
		t.Fatalf("zmq4 SUB got %s, want %s (B-filtered must be filtered by our PUB)", show(got), show(want))
	}
	if got := next(); len(got) != 1 || string(got[0]) != "A-last" {
		t.Fatalf("zmq4 SUB got %s, want [A-last]", show(got))
	}
}

func TestInteropZmq4Plain(t *testing.T) {
	// zmq4's PLAIN server accepts any credentials, so bad credentials are tested against our
	// server only.
	t.Run("zmq4-client-good-credentials", func(t *testing.T) {
		r, ep := bindSocket(t, zmtp.Router, zmtp.Options{Security: zmtp.PlainServer(plainUsers)})
		zd := newZ(t, zmq4.NewDealer, zmq4.WithID(zmq4.SocketIdentity("zp")), zmq4.WithSecurity(plain.Security("admin", "secret")))
		if err := zd.Dial(ep); err != nil {
			t.Fatalf("zmq4 dial: %v", err)
		}
		waitPeers(t, r, 1, joinWait)
		if err := zd.Send(zmq4.NewMsgString("over plain")); err != nil {
			t.Fatalf("zmq4 send: %v", err)
		}
		got := recvMsg(t, r, ioWait)
		if len(got) != 2 || string(got[0]) != "zp" || string(got[1]) != "over plain" {
			t.Fatalf("our PLAIN ROUTER got %s", show(got))
		}
		sendFrames(t, r, ioWait, got[0], []byte("back"))
		if back := zRecv(t, zd, ioWait); len(back) != 1 || string(back[0]) != "back" {
			t.Fatalf("zmq4 PLAIN client got %s", show(back))
		}
	})
	t.Run("zmq4-client-bad-credentials", func(t *testing.T) {
		var rec recorder
		r, ep := bindSocket(t, zmtp.Router, zmtp.Options{Security: zmtp.PlainServer(plainUsers), Monitor: rec.Monitor})
		zd := newZ(t, zmq4.NewDealer, zmq4.WithSecurity(plain.Security("admin", "wrong")),
			zmq4.WithDialerMaxRetries(0), zmq4.WithAutomaticReconnect(false),
			zmq4.WithLogger(log.New(io.Discard, "", 0))) // its expected dial failures are noise
		_ = zd.Dial(ep) // zmq4 may or may not report the ERROR command; our side is what counts
		testutil.Eventually(t, joinWait, func() bool { return rec.count(zmtp.EventHandshakeFailed) > 0 },
			"our PLAIN server reported no failed handshake; events: %v", &rec)
		if st := r.Stats(); st.Peers != 0 {
			t.Fatalf("after bad credentials: Peers=%d, want 0", st.Peers)
		}
	})
	t.Run("our-client-to-zmq4-server", func(t *testing.T) {
		zr := newZ(t, zmq4.NewRouter, zmq4.WithSecurity(plain.Security("", "")))
		if err := zr.Listen("tcp://127.0.0.1:0"); err != nil {
			t.Fatalf("zmq4 listen: %v", err)
		}
		d := connectSocket(t, zmtp.Dealer, zmtp.Options{Identity: []byte("op"), Security: zmtp.PlainClient("admin", "secret")}, zEndpoint(t, zr))
		waitPeers(t, d, 1, joinWait)
		sendFrames(t, d, ioWait, []byte("over plain"))
		got := zRecv(t, zr, ioWait)
		if len(got) != 2 || string(got[0]) != "op" || string(got[1]) != "over plain" {
			t.Fatalf("zmq4 PLAIN ROUTER got %s", show(got))
		}
	})
}

func TestInteropZmq4HeartbeatTimeoutOn30Peer(t *testing.T) {
	// zmq4 speaks ZMTP 3.0, which has no PING: it is held to the same silence rule, so a zmq4
	// peer that keeps sending stays connected across many timeouts, and once it goes silent
	// it is dropped within the timeout.
	const ivl, timeout = 50 * time.Millisecond, 150 * time.Millisecond
	var rec recorder
	r, ep := bindSocket(t, zmtp.Router, zmtp.Options{HeartbeatInterval: ivl, HeartbeatTimeout: timeout, Monitor: rec.Monitor})
	zd := newZ(t, zmq4.NewDealer, zmq4.WithID(zmq4.SocketIdentity("z30")))
	if err := zd.Dial(ep); err != nil {
		t.Fatalf("zmq4 dial: %v", err)
	}
	waitPeers(t, r, 1, joinWait)
	for i := range 8 { // 8 x timeout/3 = 2.7 timeouts of traffic
		if err := zd.Send(zmq4.NewMsgString(fmt.Sprintf("still here %d", i))); err != nil {
			t.Fatalf("zmq4 send: %v", err)
		}
		if got := recvMsg(t, r, ioWait); len(got) != 2 || string(got[1]) != fmt.Sprintf("still here %d", i) {
			t.Fatalf("our ROUTER got %s", show(got))
		}
		if rec.count(zmtp.EventDisconnected) > 0 {
			t.Fatalf("a ZMTP 3.0 peer sending every %v was disconnected: %v", timeout/3, &rec)
		}
		time.Sleep(timeout / 3) // the peer's pace, not synchronisation
	}
	start := time.Now()
	testutil.Eventually(t, 3*timeout+time.Second, func() bool { return rec.count(zmtp.EventDisconnected) == 1 },
		"a silent ZMTP 3.0 peer is still connected: %v", &rec)
	if took := time.Since(start); took > 3*timeout {
		t.Fatalf("silent ZMTP 3.0 peer dropped after %v, want within %v", took, 3*timeout)
	}
}
