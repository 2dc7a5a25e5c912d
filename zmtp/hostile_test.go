package zmtp_test

// Hostile peers: raw net.Conn clients (interop_raw_test.go) against our bound ROUTER and PUB.
// A protocol violation closes that connection at once, a silent peer is closed at the
// handshake deadline, memory does not follow what a peer announces, and a good peer on the
// same socket keeps working before, during and after every attack.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/zmtp"
)

const (
	// atOnce bounds how long a protocol violation may keep its connection open. It is far
	// below the handshake deadline the at-once cases use (hostileHandshake), so a close that
	// only came from the deadline fails.
	atOnce           = 500 * time.Millisecond
	hostileHandshake = 3 * time.Second
	hostileMaxMsg    = 1 << 20
)

// target is a bound socket under attack, with a good peer whose check proves it still works.
type target struct {
	name     string
	typ      zmtp.SocketType
	peerType string // what the raw client announces in READY
	// good connects a good peer to s at ep and returns a check that fails the test unless a
	// message goes through (tag makes each check's message unique).
	good func(t *testing.T, s *zmtp.Socket, ep string) func(tag string)
}

var targets = []target{
	{name: "router", typ: zmtp.Router, peerType: "DEALER", good: goodDealer},
	{name: "pub", typ: zmtp.Pub, peerType: "SUB", good: goodSub},
}

// goodDealer connects our DEALER to the ROUTER s; its check is a round trip.
func goodDealer(t *testing.T, r *zmtp.Socket, ep string) func(string) {
	d := connectSocket(t, zmtp.Dealer, zmtp.Options{Identity: []byte("good")}, ep)
	testutil.Eventually(t, joinWait, func() bool { return d.Stats().Peers == 1 }, "good DEALER not connected")
	return func(tag string) {
		t.Helper()
		start := time.Now()
		body := []byte("ping " + tag)
		sendFrames(t, d, ioWait, body)
		got := recvMsg(t, r, ioWait)
		if string(got[0]) != "good" {
			t.Fatalf("%s: ROUTER received %s from a hostile peer", tag, show(got))
		}
		if len(got) != 2 || !bytes.Equal(got[1], body) {
			t.Fatalf("%s: ROUTER got %s, want [good %q]", tag, show(got), body)
		}
		sendFrames(t, r, ioWait, []byte("good"), []byte("pong "+tag))
		if back := recvMsg(t, d, ioWait); len(back) != 1 || string(back[0]) != "pong "+tag {
			t.Fatalf("%s: good DEALER got %s", tag, show(back))
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("%s: good peer round trip took %v", tag, d)
		}
	}
}

// goodSub connects our SUB (subscribed to everything) to the PUB s; its check publishes until
// a message tagged with tag arrives.
func goodSub(t *testing.T, pub *zmtp.Socket, ep string) func(string) {
	s := connectSocket(t, zmtp.Sub, zmtp.Options{}, ep)
	if err := s.Subscribe(nil); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	return func(tag string) {
		t.Helper()
		ctx := testutil.Context(t, ioWait)
		body := []byte("tick " + tag)
		ok := testutil.Poll(2*time.Second, func() bool {
			if err := pub.SendFrames(ctx, body); err != nil {
				t.Fatalf("%s: PUB send: %v", tag, err)
			}
			for {
				got, ok := tryRecv(s, 20*time.Millisecond)
				if !ok {
					return false
				}
				if bytes.Equal(got[0], body) {
					return true
				}
			}
		})
		if !ok {
			t.Fatalf("%s: good SUB received nothing from the PUB within 2s", tag)
		}
	}
}

// heapAlloc returns the live heap after a GC.
func heapAlloc() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// attack is one hostile behaviour: it writes to rc (and may handshake first).
type attack struct {
	name string
	run  func(t *testing.T, rc *rawConn, tg target)
	// afterHandshake: the violation comes after a good handshake (counted as a protocol
	// error); otherwise during it (counted as a failed handshake).
	afterHandshake bool
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	b[0] = 0x42 // not the 0xFF that starts a ZMTP 3 signature
	return b
}

var violations = []attack{
	{name: "random-bytes", run: func(t *testing.T, rc *rawConn, _ target) {
		_ = rc.write(randomBytes(4096))
	}},
	{name: "bad-signature", run: func(t *testing.T, rc *rawConn, _ target) {
		g := greeting(3, 1, "NULL", false)
		g[9] = 0x00 // the signature ends with 0x7F
		_ = rc.write(g)
	}},
	{name: "unknown-mechanism", run: func(t *testing.T, rc *rawConn, _ target) {
		_ = rc.write(greeting(3, 1, "FOOBAR", false))
	}},
	{name: "mechanism-mismatch-plain-to-null", run: func(t *testing.T, rc *rawConn, _ target) {
		_ = rc.write(greeting(3, 1, "PLAIN", false))
	}},
	{name: "incompatible-socket-type", run: func(t *testing.T, rc *rawConn, _ target) {
		_ = rc.write(append(greeting(3, 1, "NULL", false), command("READY", "Socket-Type", "PULL")...))
	}},
	{name: "message-before-ready", run: func(t *testing.T, rc *rawConn, _ target) {
		_ = rc.write(append(greeting(3, 1, "NULL", false), frame(0, []byte("too early"))...))
	}},
	{name: "handshake-command-2^62-bytes", run: func(t *testing.T, rc *rawConn, _ target) {
		_ = rc.write(append(greeting(3, 1, "NULL", false), frameHeader(flagCommand, 1<<62, true)...))
	}},
	{name: "frame-2^63-bytes", afterHandshake: true, run: func(t *testing.T, rc *rawConn, tg target) {
		rc.mustHandshake(tg.peerType, "")
		_ = rc.write(frameHeader(0, 1<<63, true))
	}},
	{name: "frame-2^63-1-bytes", afterHandshake: true, run: func(t *testing.T, rc *rawConn, tg target) {
		rc.mustHandshake(tg.peerType, "")
		_ = rc.write(frameHeader(0, 1<<63-1, true))
	}},
	{name: "frame-max-msg-size-plus-one", afterHandshake: true, run: func(t *testing.T, rc *rawConn, tg target) {
		rc.mustHandshake(tg.peerType, "")
		_ = rc.write(frameHeader(0, hostileMaxMsg+1, true))
	}},
	{name: "frames-past-max-frames", afterHandshake: true, run: func(t *testing.T, rc *rawConn, tg target) {
		rc.mustHandshake(tg.peerType, "")
		_ = rc.write(bytes.Repeat([]byte{flagMore, 0}, zmtp.DefaultMaxFrames+1))
	}},
	{name: "command-2^63-bytes-after-handshake", afterHandshake: true, run: func(t *testing.T, rc *rawConn, tg target) {
		rc.mustHandshake(tg.peerType, "")
		_ = rc.write(frameHeader(flagCommand, 1<<63, true))
	}},
}

// TestHostileProtocolViolations: every violation closes its connection at once, counts in
// Stats, holds no memory for the announced sizes, and never disturbs the good peer.
func TestHostileProtocolViolations(t *testing.T) {
	for _, tg := range targets {
		for _, a := range violations {
			t.Run(tg.name+"/"+a.name, func(t *testing.T) {
				var rec recorder
				s, ep := bindSocket(t, tg.typ, zmtp.Options{
					HandshakeTimeout: hostileHandshake, MaxMsgSize: hostileMaxMsg, Monitor: rec.Monitor,
				})
				check := tg.good(t, s, ep)
				check("before")
				before := s.Stats()
				heap0 := heapAlloc()

				rc := dialRaw(t, ep)
				a.run(t, rc, tg)
				sent := time.Now()
				closed := rc.closedAt(hostileHandshake + time.Second)
				check("during")
				at := <-closed
				if at.IsZero() {
					t.Fatalf("connection still open %v after the violation", hostileHandshake+time.Second)
				}
				if took := at.Sub(sent); took > atOnce {
					t.Fatalf("connection closed after %v, want at once (< %v; the handshake deadline is %v)", took, atOnce, hostileHandshake)
				}
				check("after")

				if grew := int64(heapAlloc()) - int64(heap0); grew > 8<<20 {
					t.Fatalf("heap grew by %d bytes during the attack", grew)
				}
				testutil.Eventually(t, time.Second, func() bool {
					st := s.Stats()
					if a.afterHandshake {
						return st.ProtocolErrors > before.ProtocolErrors
					}
					return st.HandshakeFailures > before.HandshakeFailures
				}, "the violation was not counted (afterHandshake=%v): before %+v after %+v", a.afterHandshake, before, s.Stats())
				// The violation is counted as the connection fails; the peer leaves the
				// socket's table just after, on the connection's own goroutine.
				testutil.Eventually(t, time.Second, func() bool { return s.Stats().Peers == 1 },
					"Peers = %d after the attack, want 1 (the good peer)", s.Stats().Peers)
			})
		}
	}
}

// TestHostileSilentPeers: a peer that connects and never speaks, or stops halfway through its
// greeting or handshake, is closed at the handshake deadline, and does not hold up other
// connections meanwhile (zmq4's accept loop does).
func TestHostileSilentPeers(t *testing.T) {
	const deadline = 300 * time.Millisecond
	stalls := []struct {
		name string
		send func(rc *rawConn)
	}{
		{"connects-never-speaks", func(*rawConn) {}},
		{"truncated-greeting", func(rc *rawConn) { rc.mustWrite(greeting(3, 1, "NULL", false)[:11]) }},
		{"greeting-no-ready", func(rc *rawConn) { rc.mustWrite(greeting(3, 1, "NULL", false)) }},
		{"truncated-ready", func(rc *rawConn) {
			rc.mustWrite(append(greeting(3, 1, "NULL", false), command("READY", "Socket-Type", "DEALER")[:8]...))
		}},
	}
	for _, tg := range targets {
		for _, st := range stalls {
			t.Run(tg.name+"/"+st.name, func(t *testing.T) {
				var rec recorder
				s, ep := bindSocket(t, tg.typ, zmtp.Options{HandshakeTimeout: deadline, Monitor: rec.Monitor})
				rc := dialRaw(t, ep)
				start := time.Now()
				st.send(rc)
				// Watch for the close on its own goroutine, so that the good peer's work
				// below does not count in the measured time.
				closed := rc.closedAt(deadline + 2*time.Second)
				// A good peer connecting after the silent one is served meanwhile.
				check := tg.good(t, s, ep)
				check("during")
				if d := time.Since(start); d >= deadline {
					t.Logf("note: good peer took %v, past the silent peer's deadline", d)
				}
				at := <-closed
				if at.IsZero() {
					t.Fatalf("silent peer still connected %v after the %v handshake deadline", 2*time.Second, deadline)
				}
				total := at.Sub(start)
				if total < deadline*8/10 {
					t.Fatalf("silent peer closed after %v, before the %v handshake deadline", total, deadline)
				}
				if total > deadline+time.Second {
					t.Fatalf("silent peer closed after %v, want around the %v handshake deadline", total, deadline)
				}
				check("after")
				testutil.Eventually(t, time.Second, func() bool { return rec.count(zmtp.EventHandshakeFailed) > 0 },
					"no handshake-failed event for the silent peer: %v", &rec)
			})
		}
	}
}

// TestHostileAnnouncedSizeNotPreallocated: peers that announce frames as large as the limit
// allows and then send almost nothing must not make the engine allocate what they announce.
func TestHostileAnnouncedSizeNotPreallocated(t *testing.T) {
	const (
		limit = 64 << 20
		peers = 8
	)
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			s, ep := bindSocket(t, tg.typ, zmtp.Options{MaxMsgSize: limit})
			check := tg.good(t, s, ep)
			check("before")
			heap0 := heapAlloc()
			conns := make([]*rawConn, peers)
			for i := range conns {
				rc := dialRaw(t, ep)
				rc.mustHandshake(tg.peerType, "")
				rc.mustWrite(append(frameHeader(0, limit, true), make([]byte, 1024)...))
				conns[i] = rc
			}
			check("during")
			grew := int64(heapAlloc()) - int64(heap0)
			if grew >= limit {
				t.Fatalf("heap grew by %d MiB for %d peers that each announced %d MiB and sent 1 KiB", grew>>20, peers, limit>>20)
			}
			t.Logf("heap grew by %d KiB for %d peers announcing %d MiB each", grew>>10, peers, limit>>20)
			for _, rc := range conns {
				if !rc.stillOpen(10 * time.Millisecond) {
					t.Fatal("a peer with a legal, incomplete frame was disconnected")
				}
			}
			check("after")
		})
	}
}

// TestHostileSlowReader: a ROUTER peer that stops reading fills its own queue only. Send to it
// blocks until the context ends, TrySend fails with ErrQueueFull, and every other peer still
// gets its messages promptly. When it reads again, sending to it works again.
func TestHostileSlowReader(t *testing.T) {
	const hwm = 4
	r, ep := bindSocket(t, zmtp.Router, zmtp.Options{SendHWM: hwm})
	check := goodDealer(t, r, ep)
	slow := dialRaw(t, ep)
	slow.mustHandshake("DEALER", "slow")
	waitPeers(t, r, 2, joinWait)
	check("before")

	payload := make([]byte, 128<<10)
	id := []byte("slow")
	// Fill the kernel buffers and the queue: Send until one blocks for its whole context.
	full := false
	sent := 0
	for i := 0; i < 2000 && !full; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		err := r.SendFrames(ctx, id, payload)
		cancel()
		switch {
		case err == nil:
			sent++
		case errIsTimeout(err):
			full = true
		default:
			t.Fatalf("Send to the slow peer: %v", err)
		}
	}
	if !full {
		t.Fatalf("the slow peer's queue never filled after %d messages of %d KiB", sent, len(payload)>>10)
	}
	t.Logf("slow peer took %d messages (%d MiB) before its queue filled", sent, sent*len(payload)>>20)

	// Now: Send waits for its context, TrySend fails at once.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	start := time.Now()
	err := r.SendFrames(ctx, id, payload)
	cancel()
	if !errIsTimeout(err) {
		t.Fatalf("Send to the full peer: err = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("Send to the full peer returned after %v, before its 200ms context ended", d)
	}
	m := zmtp.AcquireMsg()
	m.Frames = append(m.Frames, id, payload)
	start = time.Now()
	err = r.TrySend(m)
	m.Release()
	if !errors.Is(err, zmtp.ErrQueueFull) {
		t.Fatalf("TrySend to the full peer: err = %v, want ErrQueueFull", err)
	}
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Fatalf("TrySend to the full peer took %v, want at once", d)
	}
	// Other peers are not held up: round trips and a burst to the good peer.
	for i := range 5 {
		check(fmt.Sprintf("while full %d", i))
	}

	// The slow peer reads again: everything queued arrives, and sending to it works again.
	drained := make(chan int, 1)
	go func() {
		n := 0
		for {
			f, err := slow.readMsg(2*time.Second, 1<<20)
			if err != nil {
				drained <- n
				return
			}
			if len(f) == 1 && string(f[0]) == "last" {
				drained <- n
				return
			}
			n++
		}
	}()
	sendFrames(t, r, 10*time.Second, id, []byte("last"))
	if n := <-drained; n < sent {
		t.Fatalf("slow peer read %d messages before \"last\", want the %d sent", n, sent)
	}
	check("after")
}

// TestHostileMaxConns: MaxConns connections are served; one more is closed at once and
// counted; when one leaves, a new one gets in.
func TestHostileMaxConns(t *testing.T) {
	const maxConns = 4
	var rec recorder
	r, ep := bindSocket(t, zmtp.Router, zmtp.Options{MaxConns: maxConns, Monitor: rec.Monitor})
	check := goodDealer(t, r, ep) // the good peer holds one of the slots
	raws := make([]*rawConn, maxConns-1)
	for i := range raws {
		raws[i] = dialRaw(t, ep)
		raws[i].mustHandshake("DEALER", fmt.Sprintf("raw%d", i))
	}
	waitPeers(t, r, maxConns, joinWait)
	check("at the bound")

	extra := dialRaw(t, ep)
	_, _ = extra.handshake("DEALER", "extra") // fails: the connection is closed at once
	if took := extra.waitClosed(2 * time.Second); took > atOnce {
		t.Fatalf("connection past MaxConns closed after %v, want at once", took)
	}
	testutil.Eventually(t, time.Second, func() bool { return r.Stats().Refused > 0 && rec.count(zmtp.EventRefused) > 0 },
		"connection past MaxConns not counted: Refused=%d events: %v", r.Stats().Refused, &rec)
	if n := r.Stats().Peers; n != maxConns {
		t.Fatalf("Peers = %d past the bound, want %d", n, maxConns)
	}
	check("past the bound")

	// One leaves: a new connection is served once the engine has seen it go.
	raws[0].c.Close()
	testutil.Eventually(t, 2*time.Second, func() bool {
		rc := dialRaw(t, ep)
		if _, err := rc.handshake("DEALER", "late"); err != nil {
			rc.c.Close()
			return false
		}
		return true
	}, "no new connection accepted after one of %d left", maxConns)
	check("after")
}

// TestHostileMaxMsgSize: a message exactly at MaxMsgSize (one frame, or frames adding up to it)
// passes; one byte more closes the connection, and the good peer keeps working.
func TestHostileMaxMsgSize(t *testing.T) {
	const limit = 4096
	cases := []struct {
		name   string
		frames []int // frame sizes of the message
		pass   bool
	}{
		{"one-frame-at-limit", []int{limit}, true},
		{"frames-summing-to-limit", []int{1000, 0, limit - 1000}, true},
		{"one-frame-one-past", []int{limit + 1}, false},
		{"frames-summing-one-past", []int{1000, 0, limit - 999}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, ep := bindSocket(t, zmtp.Router, zmtp.Options{MaxMsgSize: limit})
			check := goodDealer(t, r, ep)
			before := r.Stats()
			rc := dialRaw(t, ep)
			rc.mustHandshake("DEALER", "sizer")
			frames := make([][]byte, len(tc.frames))
			for i, n := range tc.frames {
				frames[i] = bytes.Repeat([]byte{byte('a' + i)}, n)
			}
			if err := rc.sendMsg(frames...); err != nil && tc.pass {
				t.Fatalf("raw send: %v", err)
			}
			if tc.pass {
				got := recvMsg(t, r, ioWait)
				if string(got[0]) != "sizer" || !framesEqual(got[1:], frames) {
					t.Fatalf("ROUTER got %s, want [sizer] + %d frames of %v bytes", show(got), len(frames), tc.frames)
				}
				if !rc.stillOpen(20 * time.Millisecond) {
					t.Fatal("connection closed after a message at the limit")
				}
			} else {
				if took := rc.waitClosed(2 * time.Second); took > atOnce {
					t.Fatalf("oversized message closed its connection after %v, want at once", took)
				}
				testutil.Eventually(t, time.Second, func() bool { return r.Stats().ProtocolErrors > before.ProtocolErrors },
					"oversized message not counted as a protocol error: %+v", r.Stats())
				if got, ok := tryRecv(r, 50*time.Millisecond); ok && string(got[0]) == "sizer" {
					t.Fatalf("ROUTER delivered the oversized message %s", show(got))
				}
			}
			check("after")
		})
	}
}

// TestHostileSubscriptionFlood: a SUB peer may hold MaxSubscriptions subscriptions on our PUB;
// one more closes its connection.
func TestHostileSubscriptionFlood(t *testing.T) {
	for _, tc := range []struct {
		n    int
		pass bool
	}{{zmtp.MaxSubscriptions, true}, {zmtp.MaxSubscriptions + 1, false}} {
		t.Run(fmt.Sprint(tc.n), func(t *testing.T) {
			pub, ep := bindSocket(t, zmtp.Pub, zmtp.Options{})
			check := goodSub(t, pub, ep)
			rc := dialRaw(t, ep)
			rc.mustHandshake("SUB", "")
			var b []byte
			for i := range tc.n {
				b = append(b, frame(0, []byte(fmt.Sprintf("\x01topic-%06d", i)))...)
			}
			_ = rc.write(b)
			if tc.pass {
				// The subscriptions hold: a message under the last one reaches the raw peer.
				last := []byte(fmt.Sprintf("topic-%06d", tc.n-1))
				ctx := testutil.Context(t, ioWait)
				start := time.Now()
				testutil.Eventually(t, 15*time.Second, func() bool {
					if err := pub.SendFrames(ctx, last); err != nil {
						t.Fatalf("PUB send: %v", err)
					}
					f, err := rc.readMsg(20*time.Millisecond, 1<<16)
					return err == nil && bytes.Equal(f[0], last)
				}, "raw SUB with %d subscriptions received nothing", tc.n)
				t.Logf("%d subscriptions in effect after %v", tc.n, time.Since(start))
			} else {
				// Bounded, not "at once": the engine has to take the first MaxSubscriptions.
				took := rc.waitClosed(15 * time.Second)
				t.Logf("subscription %d closed the connection after %v", tc.n, took)
			}
			check("after")
		})
	}
}

// FuzzHostilePeer throws arbitrary bytes at a bound ROUTER over real loopback connections:
// before any greeting (mode 0), after a good greeting (mode 1) or after a whole NULL handshake
// as a DEALER (mode 2). Whatever the bytes, the engine must not crash, must end or keep the
// connection cleanly, and must keep serving a good peer, checked by a round trip after every
// input.
func FuzzHostilePeer(f *testing.F) {
	ready := command("READY", "Socket-Type", "DEALER", "Identity", "fz")
	f.Add(byte(0), greeting(3, 1, "NULL", false))
	f.Add(byte(0), randomBytes(64))
	f.Add(byte(1), ready)
	f.Add(byte(1), frameHeader(flagCommand, 1<<63, true))
	f.Add(byte(2), frame(0, []byte("hello")))
	f.Add(byte(2), append(frame(flagMore, []byte("a")), frame(0, nil)...))
	f.Add(byte(2), frameHeader(0, 1<<63, true))
	f.Add(byte(2), frame(flagCommand, []byte("\x04PING\x00\x0aab")))
	f.Add(byte(2), []byte{0xFF, 0xFF, 0xFF})

	r := zmtp.NewSocket(zmtp.Router, zmtp.Options{MaxMsgSize: 1 << 16, HandshakeTimeout: time.Second})
	f.Cleanup(func() { _ = r.Close() })
	if err := r.Bind(loopback); err != nil {
		f.Fatalf("bind: %v", err)
	}
	ep := r.LastEndpoint()
	d := zmtp.NewSocket(zmtp.Dealer, zmtp.Options{Identity: []byte("good")})
	f.Cleanup(func() { _ = d.Close() })
	if err := d.Connect(ep); err != nil {
		f.Fatalf("connect: %v", err)
	}
	seq := 0
	f.Fuzz(func(t *testing.T, mode byte, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		rc := dialRaw(t, ep)
		_ = rc.c.(*net.TCPConn).SetLinger(0) // reset on close: no TIME_WAIT pile-up over many inputs
		var prefix []byte
		switch mode % 3 {
		case 1:
			prefix = greeting(3, 1, "NULL", false)
		case 2:
			prefix = append(greeting(3, 1, "NULL", false), ready...)
		}
		_ = rc.write(append(prefix, data...))
		// Let the engine act on the bytes (it may answer, close, or wait for more).
		_ = rc.stillOpen(5 * time.Millisecond)

		// The good peer still gets through; hostile messages that happen to be valid are
		// skipped.
		seq++
		body := []byte(fmt.Sprintf("ping %d", seq))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := d.SendFrames(ctx, body); err != nil {
			t.Fatalf("good DEALER send: %v", err)
		}
		for {
			m, err := r.Recv(ctx)
			if err != nil {
				t.Fatalf("good peer's message lost after input mode=%d % x: %v", mode, data, err)
			}
			ok := len(m.Frames) == 2 && string(m.Frames[0]) == "good" && bytes.Equal(m.Frames[1], body)
			m.Release()
			if ok {
				break
			}
		}
	})
}

// TestMaxFrames: a message of exactly MaxFrames frames is taken, one more frame closes the
// connection at once as a protocol violation; on the ROUTER (data) and on the PUB (its
// subscription path), with the default and with a configured bound.
func TestMaxFrames(t *testing.T) {
	for _, tg := range targets {
		for _, max := range []int{0, 5} {
			bound := max
			if bound == 0 {
				bound = zmtp.DefaultMaxFrames
			}
			t.Run(fmt.Sprintf("%s/max=%d", tg.name, bound), func(t *testing.T) {
				s, ep := bindSocket(t, tg.typ, zmtp.Options{MaxFrames: max})
				msg := func(frames int) []byte {
					b := bytes.Repeat([]byte{flagMore, 0}, frames-1)
					return append(b, 0, 0)
				}
				rc := dialRaw(t, ep)
				rc.mustHandshake(tg.peerType, "")
				rc.mustWrite(msg(bound))
				if tg.typ == zmtp.Router {
					if got := recvMsg(t, s, ioWait); len(got) != bound+1 {
						t.Fatalf("ROUTER got %d frames, want the identity and %d", len(got), bound)
					}
				}
				if !rc.stillOpen(100 * time.Millisecond) {
					t.Fatalf("a message of %d frames (the bound) closed the connection", bound)
				}
				before := s.Stats().ProtocolErrors
				rc.mustWrite(msg(bound + 1))
				if took := rc.waitClosed(atOnce); took > atOnce {
					t.Fatalf("closed after %v", took)
				}
				testutil.Eventually(t, time.Second, func() bool { return s.Stats().ProtocolErrors == before+1 },
					"ProtocolErrors %d, want %d", s.Stats().ProtocolErrors, before+1)
			})
		}
	}
}

// heapInUse returns the bytes of live and not yet swept heap objects (runtime/metrics), after
// a GC when gc is set.
func heapInUse(gc bool) uint64 {
	if gc {
		runtime.GC()
	}
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	return sample[0].Value.Uint64()
}

// TestHostileEmptyFrameFlood: one message of tens of MiB of empty frames (\x01\x00 repeated,
// then a last frame) costs the socket at most 4x the bytes the peer got through, on the ROUTER
// and on the PUB's subscription path, and the memory is back once the peer has left.
func TestHostileEmptyFrameFlood(t *testing.T) {
	const flood = 32 << 20
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			s, ep := bindSocket(t, tg.typ, zmtp.Options{})
			check := tg.good(t, s, ep)
			check("before")
			base := heapInUse(true)

			var peak atomic.Uint64
			stop := make(chan struct{})
			sampled := make(chan struct{})
			go func() {
				defer close(sampled)
				for {
					if h := heapInUse(false); h > peak.Load() {
						peak.Store(h)
					}
					select {
					case <-stop:
						return
					case <-time.After(time.Millisecond):
					}
				}
			}()
			rc := dialRaw(t, ep)
			rc.mustHandshake(tg.peerType, "")
			chunk := bytes.Repeat([]byte{flagMore, 0}, 32<<10)
			written := 0
			for written < flood {
				n, err := rc.c.Write(chunk)
				written += n
				if err != nil {
					break
				}
			}
			if written >= flood {
				_ = rc.write([]byte{0, 0})
			}
			rc.waitClosed(5 * time.Second)
			close(stop)
			<-sampled
			grew := int64(peak.Load()) - int64(base)
			t.Logf("%d bytes written, heap in use grew by at most %d bytes", written, grew)
			if grew > 4*int64(written) {
				t.Fatalf("heap in use grew by %d bytes for %d bytes received (over 4x)", grew, written)
			}
			check("after")
			testutil.Eventually(t, 10*time.Second, func() bool { return heapInUse(true) < base+1<<20 },
				"heap in use %d bytes after the peer left, %d before", heapInUse(false), base)
		})
	}
}

// TestSilentPeerHeartbeat: with heartbeats on, a peer that completes its handshake and then
// sends nothing is dropped within 3 heartbeat intervals (the default HeartbeatTimeout), on
// the ROUTER and on the PUB, whether it speaks ZMTP 3.1 (it leaves our PINGs unanswered) or
// ZMTP 3.0 (which has no PING: it is held to the same rule).
func TestSilentPeerHeartbeat(t *testing.T) {
	const ivl = 100 * time.Millisecond
	// slack covers scheduling on a loaded machine; it is one interval, not a second rule.
	const slack = ivl
	for _, tg := range targets {
		for _, minor := range []byte{0, 1} {
			t.Run(fmt.Sprintf("%s/zmtp-3.%d", tg.name, minor), func(t *testing.T) {
				s, ep := bindSocket(t, tg.typ, zmtp.Options{HeartbeatInterval: ivl})
				check := tg.good(t, s, ep)
				rc := dialRaw(t, ep)
				rc.mustWrite(append(greeting(3, minor, "NULL", false), command("READY", "Socket-Type", tg.peerType)...))
				g := make([]byte, 64)
				_ = rc.c.SetReadDeadline(time.Now().Add(ioWait))
				if _, err := io.ReadFull(rc.r, g); err != nil {
					t.Fatalf("greeting: %v", err)
				}
				if _, _, err := rc.readFrame(ioWait, 1<<10); err != nil {
					t.Fatalf("READY: %v", err)
				}
				before := s.Stats().HeartbeatTimeouts
				took := rc.waitClosed(3*ivl + 5*time.Second)
				if took > 3*ivl+slack {
					t.Fatalf("silent peer closed %v after its handshake, want within 3 intervals (%v)", took, 3*ivl)
				}
				testutil.Eventually(t, time.Second, func() bool { return s.Stats().HeartbeatTimeouts == before+1 },
					"HeartbeatTimeouts %d, want %d", s.Stats().HeartbeatTimeouts, before+1)
				check("after")
				t.Logf("dropped %v after its handshake", took.Round(time.Millisecond))
			})
		}
	}
}

// dialFrom connects to a tcp endpoint from the loopback source address src (any 127/8
// address is this host's), and closes the connection when the test ends.
func dialFrom(t *testing.T, src, ep string) *rawConn {
	t.Helper()
	d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", strings.TrimPrefix(ep, "tcp://"))
	if err != nil {
		t.Fatalf("dial from %s: %v", src, err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, r: bufio.NewReaderSize(c, 4096)}
}

// TestMaxConnsPerAddr: one source address holds at most MaxConnsPerAddr connections (silent
// ones included); one more from it is closed at once and counted, while peers from another
// address still get in, and a slot freed by that address is taken again. ROUTER and PUB.
func TestMaxConnsPerAddr(t *testing.T) {
	const limit = 3
	const hog = "127.0.0.2" // the good peers dial from 127.0.0.1
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			s, ep := bindSocket(t, tg.typ, zmtp.Options{MaxConnsPerAddr: limit})
			check := tg.good(t, s, ep)
			var held []*rawConn
			for range limit {
				rc := dialFrom(t, hog, ep)
				rc.mustHandshake(tg.peerType, "")
				held = append(held, rc)
			}
			refused := s.Stats().Refused
			extra := dialFrom(t, hog, ep)
			if took := extra.waitClosed(atOnce); took > atOnce {
				t.Fatalf("connection past the bound closed after %v", took)
			}
			testutil.Eventually(t, time.Second, func() bool { return s.Stats().Refused == refused+1 },
				"Refused %d, want %d", s.Stats().Refused, refused+1)
			check("past the bound") // another address is not held back
			for _, rc := range held {
				if !rc.stillOpen(20 * time.Millisecond) {
					t.Fatal("a connection within the bound was closed")
				}
			}
			held[0].c.Close()
			testutil.Eventually(t, 2*time.Second, func() bool {
				rc := dialFrom(t, hog, ep)
				if _, err := rc.handshake(tg.peerType, ""); err != nil {
					rc.c.Close()
					return false
				}
				return rc.stillOpen(20 * time.Millisecond)
			}, "no new connection from %s after one of its %d left", hog, limit)
		})
	}
}
